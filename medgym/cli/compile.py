"""`medgym compile`, `medgym validate` and `medgym schema`: the compiler's commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, console_err, print_plain


def _report(errors) -> None:
    for error in errors:
        print_plain(error.render())
    console_err.print(f"[red]{len(errors)} error{'s' if len(errors) != 1 else ''}[/]")


@app.command("compile")
def compile_command(
    specs: Path = typer.Argument(..., help="the spec folder (with medgym.yaml)"),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="the build folder to write"),
    force: bool = typer.Option(False, "--force", help="recompile even if the specs are unchanged"),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="play every reference solution and require its threshold"),
    no_cache: bool = typer.Option(False, "--no-cache", help="compile and gate every family, not only the changed ones"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON on stdout"),
) -> None:
    """Compile SPECS into a build folder: envs, OpenAI tool lists, task datasets and a manifest."""
    from medgym.compiler.pipeline import compile_specs
    from medgym.dsl.errors import SpecErrors
    from medgym.gate import compile_gate

    if not specs.is_dir():
        abort(f"{specs}: no such spec folder")
    try:
        result = compile_specs(specs, out, force=force, gate=compile_gate if gate else None,
                               cache=None if no_cache else family_cache())
    except SpecErrors as exc:
        _report(exc.errors)
        raise typer.Exit(1)
    counts = result.manifest["counts"]
    state = "up to date" if result.cached else f"compiled in {result.seconds:.2f} s"
    console_err.print(f"[green]{out}[/]: {state}; {counts['domains']} domains, {counts['tools']} tools, "
                      f"{counts['instruments']} instruments, {counts['tasks']} tasks", highlight=False)
    if as_json:
        typer.echo(json.dumps(result.manifest, indent=1))


@app.command("validate")
def validate_command(
    paths: list[Path] = typer.Argument(..., help="spec folders or files inside them (pre-commit passes files)"),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="also play every reference solution"),
    no_cache: bool = typer.Option(False, "--no-cache", help="check every family, not only the changed ones"),
) -> None:
    """Check specs without keeping a build; exit 0, or 1 with `file:line:col: message` lines.

    A folder checks everything in it; files check only what they touch: a family file its family, a lib
    module, table, defaults file or macro file the families that use it, a domain's own files its domain."""
    from medgym.compiler.pipeline import check_specs
    from medgym.gate import compile_gate

    roots: dict[Path, list[Path] | None] = {}  # spec folder -> the files given in it (None: all of it)
    for path in paths:
        root = _spec_root(path)
        if root is None:
            abort(f"{path}: not inside a spec folder (no medgym.yaml above it)")
        if path.is_dir() or roots.get(root, []) is None:
            roots[root] = None
        else:
            roots.setdefault(root, []).append(path.resolve())
    cache = None if no_cache else family_cache()
    errors = [e for root, only in roots.items()
              for e in check_specs(root, gate=compile_gate if gate else None, cache=cache, only=only)]
    if errors:
        _report(errors)
        raise typer.Exit(1)
    console_err.print(f"[green]ok[/]: {', '.join(str(r) for r in roots)}", highlight=False)


def family_cache() -> Path:
    """Where compile and validate keep the per-family cache: `$MEDGYM_CACHE_DIR/compile`."""
    from medgym.runtime.paths import cache_dir

    return cache_dir() / "compile"


def _spec_root(path: Path) -> Optional[Path]:
    path = path.resolve()
    for folder in [path] + list(path.parents):
        if (folder / "medgym.yaml").is_file():
            return folder
    return None


@app.command("schema")
def schema_command(
    kind: Optional[str] = typer.Argument(None, help="one spec kind (project, record, domain, tools, task_family, ...)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write one <kind>.json per kind into this folder"),
) -> None:
    """Print the JSON Schema (draft 2020-12) of the spec files, for editors and pre-commit."""
    from medgym.dsl.models import json_schemas

    schemas = json_schemas()
    if kind is not None and kind not in schemas:
        abort(f"unknown spec kind '{kind}'; kinds: {', '.join(schemas)}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            (out / f"{name}.json").write_text(json.dumps(schema, indent=1) + "\n")
        console_err.print(f"wrote {len(schemas)} schemas to {out}")
        return
    typer.echo(json.dumps(schemas[kind] if kind else schemas, indent=1))
