"""The root Typer app and the one way a command fails: `abort(message, code)`."""
from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="medgym",
    help="Compile clinical specs into Gymnasium environments, evaluate agents and train them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        typer.echo(f"medgym {metadata.version('medgym')}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Compile clinical specs into Gymnasium environments, evaluate agents and train them."""


# emoji=False: rich would turn `:100:` in `file.yaml:100:18` (or any text with `:name:`) into an emoji.
console_err = Console(stderr=True, emoji=False)


def print_plain(text: str) -> None:
    """One diagnostic line (or block) to stderr exactly as written: no markup, emoji or highlighting."""
    typer.echo(text, err=True)


def abort(message: str, code: int = 2) -> NoReturn:
    """Print one red line to stderr and exit: 1 = checks failed, 2 = usage or input error."""
    # Messages quote user input and install hints such as medgym[rl]: never read them as rich markup.
    console_err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def build_or_abort(build=None):
    """A build folder for a command: the one given, else the shipped specs compiled on first use.

    Spec errors print located, one per line (exit 1); a missing or damaged build names the fix (exit 2).
    """
    from medgym.dsl.errors import SpecErrors
    from medgym.runtime.build import BuildError
    from medgym.shipped import ensure_build

    try:
        if build is not None:
            return ensure_build(build)
        with console_err.status("compiling the shipped specs (first use)...", spinner="dots"):
            return ensure_build(None)
    except SpecErrors as exc:
        for error in exc.errors:
            print_plain(str(error))
        abort(f"{len(exc.errors)} spec error(s)", 1)
    except (FileNotFoundError, BuildError) as exc:
        abort(str(exc))
