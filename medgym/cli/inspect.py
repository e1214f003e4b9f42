"""`medgym list` and `medgym score`: look into a build."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from medgym.cli._app import abort, app, build_or_abort, console_err


@app.command("list")
def list_command(
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON on stdout"),
) -> None:
    """List the domains, their tools, instruments and task counts."""
    folder = build_or_abort(build)
    manifest = json.loads((folder / "manifest.json").read_text())
    instruments = json.loads((folder / "instruments.json").read_text())
    domains = {}
    for name, summary in manifest["domains"].items():
        domain = json.loads((folder / name / "domain.json").read_text())
        domains[name] = {**summary, "tool_names": [t["name"] for t in domain["tools"]]}
    if as_json:
        typer.echo(json.dumps({"counts": manifest["counts"], "domains": domains,
                               "instruments": {k: v["title"] for k, v in instruments.items()}}, indent=1))
        return
    table = Table(title=f"medgym build {folder}")
    for column in ("domain", "env id", "tools", "tasks (train/val/test)", "families"):
        table.add_column(column)
    for name, info in domains.items():
        splits = info["splits"]
        table.add_row(name, info["env_id"], str(info["tools"]), f"{info['tasks']} ({splits['train']}/{splits['val']}/{splits['test']})",
                      str(info["families"]))
    console_err.print(table)
    ins = Table(title="instruments")
    ins.add_column("name")
    ins.add_column("title")
    ins.add_column("source")
    for name, meta in instruments.items():
        ins.add_row(name, meta["title"], meta["source"][:70])
    console_err.print(ins)


@app.command("score")
def score_command(
    instrument: str = typer.Argument(..., help="instrument name, e.g. curb65"),
    inputs: str = typer.Option(..., "--inputs", help='JSON object of inputs, e.g. \'{"age": 70, ...}\''),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Run one instrument on JSON inputs and print its result as JSON."""
    from medgym.dsl.support import InstrumentInputError, load_sibling

    try:
        given = json.loads(inputs)
    except json.JSONDecodeError as exc:
        abort(f"--inputs is not valid JSON: {exc}")
    if not isinstance(given, dict):
        abort("--inputs must be a JSON object")
    folder = build_or_abort(build)
    module = load_sibling(str(folder / "manifest.json"), "instruments.py")
    function = module.FUNCTIONS.get(instrument)
    if function is None:
        from medgym.dsl.errors import did_you_mean

        abort(f"unknown instrument '{instrument}' {did_you_mean(instrument, module.FUNCTIONS)}".strip())
    try:
        result = function(**given)
    except InstrumentInputError as exc:
        abort(str(exc))
    except TypeError as exc:  # an input name the instrument does not take
        abort(f"{instrument}: {exc}")
    typer.echo(json.dumps(result, indent=1))
