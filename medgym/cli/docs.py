"""`medgym docs`: documentation generated from the specs (the instrument catalogue)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, build_or_abort, console_err

docs_app = typer.Typer(help="Documentation generated from the compiled specs.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("instruments")
def instruments_command(
    out: Path = typer.Option(Path("docs/instruments.md"), "--out", help="the Markdown file to write"),
    check: bool = typer.Option(False, "--check", help="write nothing; exit 1 when the file is out of date"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Write the instrument catalogue: every instrument's title, sources, inputs, examples and where it is used."""
    from medgym.catalogue import instrument_catalogue

    text = instrument_catalogue(build_or_abort(build))
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            abort(f"{out} is out of date: run `medgym docs instruments --out {out}`", 1)
        console_err.print(f"{out}: up to date", highlight=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console_err.print(f"wrote {out}", highlight=False)
