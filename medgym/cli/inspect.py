"""`medgym list`, `medgym score` and `medgym describe`: look into a build."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from medgym.cli._app import abort, app, build_or_abort, console_err

_LIST_WHAT = ("domains", "instruments")


@app.command("list")
def list_command(
    what: Optional[str] = typer.Argument(None, help="domains or instruments (default: both)"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON on stdout"),
) -> None:
    """List the domains, their tools, instruments and task counts (`medgym list instruments`: instruments only)."""
    if what is not None and what not in _LIST_WHAT:
        abort(f"nothing called {what!r} to list; list domains or instruments")
    folder = build_or_abort(build)
    manifest = json.loads((folder / "manifest.json").read_text())
    instruments = json.loads((folder / "instruments.json").read_text())
    domains = {}
    for name, summary in manifest["domains"].items():
        domain = json.loads((folder / name / "domain.json").read_text())
        domains[name] = {**summary, "tool_names": [t["name"] for t in domain["tools"]]}
    if as_json:
        listing = {k: {"title": v["title"], "sources": _sources(v), "file": v.get("file")} for k, v in instruments.items()}
        if what == "instruments":
            typer.echo(json.dumps(listing, indent=1))
        else:
            typer.echo(json.dumps({"counts": manifest["counts"], "domains": domains,
                                   "instruments": {k: v["title"] for k, v in instruments.items()}}, indent=1))
        return
    if what != "instruments":
        table = Table(title=f"medgym build {folder}", caption="split: train/val/test tasks", box=box.SIMPLE_HEAD,
                      pad_edge=False, padding=0)  # the column divider is the one space between columns
        widths = {"domain": max(map(len, domains), default=6), "env id": max((len(d["env_id"]) for d in domains.values()),
                                                                              default=6)}
        for column in ("domain", "env id", "tools", "tasks", "split", "families"):
            table.add_column(column, no_wrap=True, min_width=widths.get(column))  # names are never cut
        for name, info in domains.items():
            splits = info["splits"]
            table.add_row(name, info["env_id"], str(info["tools"]), str(info["tasks"]),
                          f"{splits['train']}/{splits['val']}/{splits['test']}", str(info["families"]))
        console_err.print(table)
    if what != "domains":
        _print_instruments(instruments)


def _print_instruments(instruments: dict) -> None:
    ins = Table(title=f"{len(instruments)} instruments")
    ins.add_column("name", no_wrap=True)
    ins.add_column("title (variant)")
    ins.add_column("source")
    for name, meta in instruments.items():
        sources = _sources(meta)
        first = sources[0] if sources else ""
        more = f" (+{len(sources) - 1} more)" if len(sources) > 1 else ""
        ins.add_row(name, meta["title"], textwrap.shorten(first, 90, placeholder=" ...") + more)  # at a word
    console_err.print(ins)


def _sources(meta: dict) -> list[str]:
    return list(meta.get("sources") or ([meta["source"]] if meta.get("source") else []))


@app.command("score")
def score_command(
    instrument: str = typer.Argument(..., help="instrument name, e.g. curb65"),
    inputs: Optional[str] = typer.Option(None, "--inputs", help='JSON object of inputs, e.g. \'{"age": 70, '
                                         '"creatinine": "183 umol/L"}\' (text with a unit is converted)'),
    describe: bool = typer.Option(False, "--describe", help="print the instrument's inputs and outputs instead"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Run one instrument on JSON inputs and print its result as JSON (every input problem is reported at once)."""
    from medgym.dsl.support import InstrumentInputError, read_inputs

    if describe:
        _describe(instrument, build, as_json=False)
        return
    if inputs is None:
        abort(f"give the inputs with --inputs JSON (see `medgym score {instrument} --describe`)")
    try:
        given = json.loads(inputs)
    except json.JSONDecodeError as exc:
        abort(f"--inputs is not valid JSON: {exc}")
    if not isinstance(given, dict):
        abort("--inputs must be a JSON object")
    function, _ = _instrument(instrument, build)
    try:
        spec = getattr(function, "input_spec", None)
        if spec is not None:
            _note_conversions(spec, given, read_inputs(instrument, spec, given))
        result = function(**given)
    except InstrumentInputError as exc:
        abort(f"{exc}\n(`medgym score {instrument} --describe` lists the inputs)")
    except TypeError as exc:  # a build from an older medgym: an input name the instrument does not take
        abort(f"{instrument}: {exc}")
    typer.echo(json.dumps(result, indent=1))


@app.command("describe")
def describe_command(
    instrument: str = typer.Argument(..., help="instrument name, e.g. meld_na"),
    as_json: bool = typer.Option(False, "--json", help="print JSON on stdout"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Print an instrument's inputs (types, units and the units also accepted, ranges, defaults) and outputs."""
    _describe(instrument, build, as_json)


def _instrument(name: str, build: Optional[Path]):
    """(the compiled function, its instruments.json entry), or abort naming the instruments there are."""
    from medgym.dsl.errors import did_you_mean
    from medgym.dsl.support import load_sibling

    folder = build_or_abort(build)
    module = load_sibling(str(folder / "manifest.json"), "instruments.py")
    function = module.FUNCTIONS.get(name)
    if function is None:
        hint = did_you_mean(name, module.FUNCTIONS) or "`medgym list instruments` lists them"
        abort(f"unknown instrument '{name}' ({hint})")
    meta = json.loads((folder / "instruments.json").read_text()).get(name, {})
    return function, meta


def _note_conversions(spec: tuple, given: dict, values: dict) -> None:
    """Say on stderr which values given as text were converted, so the result can be checked by hand."""
    for item in spec:
        name = item["name"] if isinstance(item, dict) else item[0]
        if isinstance(given.get(name), str) and isinstance(values.get(name), (int, float)):
            console_err.print(f"{name}: {given[name].strip()} = {values[name]:.6g} {item.get('unit') or ''}".rstrip(),
                              highlight=False)


def describe_instrument(function, meta: dict) -> dict:
    """The description `medgym describe` prints: inputs with units accepted, ranges, defaults; the outputs."""
    described = {}
    for item in getattr(function, "input_spec", ()):
        if not isinstance(item, dict):
            continue
        info = meta.get("inputs", {}).get(item["name"], {})
        described[item["name"]] = {
            "type": item["type"], "unit": item["unit"], "also_accepts": [k for k in item["accepts"] if k != item["unit"]],
            "min": item["low"], "max": item["high"], "values": list(item["values"]), "required": not item["has_default"],
            "default": item["default"], "description": info.get("description", "")}
    return {"title": meta.get("title", ""), "sources": _sources(meta), "file": meta.get("file"),
            "inputs": described, "outputs": meta.get("outputs", {})}


def _describe(name: str, build: Optional[Path], as_json: bool) -> None:
    function, meta = _instrument(name, build)
    info = describe_instrument(function, meta)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    typer.echo("\n".join(describe_lines(name, info)))


def describe_lines(name: str, info: dict) -> list[str]:
    lines = [f"{name}: {info['title']}"]
    lines += [f"  source: {source}" for source in info["sources"]]
    lines += ["", "inputs (give numbers in the unit shown, or as text with any unit accepted: \"183 umol/L\"):"]
    for input_name, item in info["inputs"].items():
        text = f"  {input_name}: {item['type']}"
        if item["min"] is not None or item["max"] is not None:
            low = "" if item["min"] is None else f"{item['min']:g}"
            high = "" if item["max"] is None else f"{item['max']:g}"
            text += f" in {low}..{high}" + (f" {item['unit']}" if item["unit"] else "")
        text += "" if item["required"] else f", optional (default {json.dumps(item['default'])})"
        if item["description"]:
            text += f" - {item['description']}"
        lines.append(text)
        if item["also_accepts"]:
            lines.append(f"      also accepts: {', '.join(item['also_accepts'])}")
        if item["type"] == "date":
            lines.append("      written YYYY-MM-DD, e.g. 2024-03-15")
    lines += ["", "outputs:"]
    for output, spec in info["outputs"].items():
        lines.append(f"  {output}: {spec['type']}")
    return lines
