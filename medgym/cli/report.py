"""`medgym report`, `medgym view`, `medgym compare` and `medgym rescore`: reading evaluation runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from medgym.cli._app import abort, app, build_or_abort, console_err


def _runs(paths: List[Path]):
    from medgym.report import load_run
    from medgym.runtime.runlog import RunLogError

    try:
        return [load_run(path) for path in paths]
    except RunLogError as exc:
        abort(str(exc))


@app.command("report")
def report_command(
    runs: List[Path] = typer.Argument(..., help="run files written by `medgym eval --out` (two or more: compared)"),
    out: Path = typer.Option(Path("report.html"), "--out", help="the HTML file to write"),
) -> None:
    """Write one self-contained HTML report: tables, pass^k curves, safety, tool use, worst tasks, comparison."""
    from medgym.report import render_report

    loaded = _runs(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(loaded), encoding="utf-8")
    console_err.print(f"report written to {out}", highlight=False)


@app.command("view")
def view_command(
    run: Path = typer.Argument(..., help="a run file written by `medgym eval --out`"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the page here (default: RUN.html beside the run)"),
    serve: bool = typer.Option(False, "--serve", help="also serve it on localhost until Ctrl-C"),
    port: int = typer.Option(8765, "--port", help="the port for --serve"),
) -> None:
    """Write (and with --serve, serve) a page that lists the run's episodes and shows each turn by turn."""
    from medgym.report import render_viewer

    loaded = _runs([run])[0]
    page = out or run.with_suffix(".html")
    page.write_text(render_viewer(loaded.records, run.name), encoding="utf-8")
    console_err.print(f"viewer written to {page}", highlight=False)
    if serve:
        _serve(page, port)


def _serve(page: Path, port: int) -> None:
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(page.parent.resolve()))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        abort(f"cannot serve on port {port}: {exc.strerror}; pick another with --port")
    console_err.print(f"serving http://127.0.0.1:{port}/{page.name} (Ctrl-C stops)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("compare")
def compare_command(
    a: Path = typer.Argument(..., help="the baseline run file"),
    b: Path = typer.Argument(..., help="the run compared with it"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON on stdout"),
) -> None:
    """B minus A on the tasks both ran: mean rewards, the difference, its paired-bootstrap 95% CI and p."""
    from medgym.report import compare

    run_a, run_b = _runs([a, b])
    result = compare(run_a, run_b)
    if as_json:
        typer.echo(json.dumps(result, indent=1))
    table = Table(title=f"{result['b']} minus {result['a']}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("domain", "tasks", "A", "B", "B-A", "95% CI", "p"):
        table.add_column(column, justify="left" if column == "domain" else "right", no_wrap=True)
    for name, row in result["rows"].items():
        low, high = row["interval"]
        table.add_row(name, str(row["tasks"]), f"{row['mean_a']:.3f}", f"{row['mean_b']:.3f}",
                      f"{row['difference']:+.3f}", f"{low:+.3f}..{high:+.3f}", f"{row['p_value']:.3f}")
    console_err.print(table)
    for note in result["notes"]:
        console_err.print(f"note: {note}", highlight=False)


@app.command("rescore")
def rescore_command(
    run: Path = typer.Argument(..., help="a run file written by `medgym eval --out` (with transcripts)"),
    build: Optional[Path] = typer.Option(None, "--build", help="the build to score with (default: the shipped specs)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
    check: bool = typer.Option(False, "--check", help="exit 1 when any reward changed"),
) -> None:
    """Replay every stored episode through the build and recompute its reward; report what changed."""
    from medgym.runtime.rescore import rescore
    from medgym.runtime.runlog import RunLogError, read_episodes

    folder = build_or_abort(build)
    try:
        records = read_episodes(run)
    except RunLogError as exc:
        abort(str(exc))
    result = rescore(records, folder)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    console_err.print(f"{result['episodes']} episode(s) rescored: {result['unchanged']} unchanged, "
                      f"{result['changed']} changed; mean reward {result['mean_stored']:.4f} stored, "
                      f"{result['mean_rescored']:.4f} now", highlight=False)
    for row in result["changes"][:20]:
        parts = [f"{k} {v:+.3f}" for k, v in row["components"].items()]
        parts += [f"+{v}" for v in row["violations_added"]] + [f"-{v}" for v in row["violations_removed"]]
        console_err.print(f"  {row['episode']}: {row['stored']:.4f} -> {row['reward']:.4f} ({', '.join(parts)})",
                          highlight=False, markup=False)
    for problem in result["problems"]:
        console_err.print(f"  skipped {problem}", highlight=False, markup=False)
    if check and result["changed"]:
        raise typer.Exit(1)
