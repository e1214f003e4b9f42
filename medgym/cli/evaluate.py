"""`medgym eval`: run an agent over compiled tasks, write the episodes as JSONL and print a summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich import box
from rich.table import Table

from medgym.cli._app import abort, app, build_or_abort, console_err


@app.command("eval")
def eval_command(
    agent: str = typer.Option("oracle", "--agent", help="oracle, noop, guess, spam, garbage, hf:PATH (a local "
                                                        "model), openai:URL (a chat completions endpoint)"),
    model: Optional[str] = typer.Option(None, "--model", help="the model name to request from an openai:URL "
                                                              "endpoint (default: the first it lists)"),
    domain: Optional[List[str]] = typer.Option(None, "--domain", help="a domain to evaluate (repeatable; default: all)"),
    split: str = typer.Option("test", "--split", help="train, val, test or all"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="at most this many tasks per domain"),
    out: Optional[Path] = typer.Option(None, "--out", help="write one JSON line per episode here"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Evaluate an agent; prints a summary table (and JSON with --json)."""
    from medgym.runtime.agents import UnknownAgent, make_agent
    from medgym.runtime.build import Build, BuildError
    from medgym.runtime.evaluate import evaluate, select_tasks

    folder = build_or_abort(build)
    chosen_split = None if split == "all" else split
    options = {}
    if model is not None:
        if not agent.startswith("openai:"):
            abort("--model names the model of an openai:URL endpoint; other agents take none")
        options["model"] = model
    try:
        make_agent(agent, **options)
        select_tasks(Build.open(folder), domain, chosen_split, 1)
    except (UnknownAgent, BuildError, ValueError) as exc:
        abort(str(exc))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn(f"eval {agent}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console_err, transient=True) as progress:
        bar = progress.add_task("episodes", total=None)
        summary = evaluate(folder, agent, domains=domain, split=chosen_split, limit=limit, out=out,
                           progress=lambda done, total: progress.update(bar, completed=done, total=total),
                           agent_options=options)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    _print_summary(summary, out)


SHORT = {"accuracy": "acc", "process": "proc", "safety": "safe", "format": "fmt", "coherence": "coh",
         "assertion": "assert"}


def _print_summary(summary: dict, out: Optional[Path]) -> None:
    names = sorted({k for d in summary["per_domain"].values() for k in d["components"]})
    table = Table(title=f"medgym eval: {summary['agent']}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("domain", no_wrap=True, min_width=max(len(d) for d in [*summary["per_domain"], "domain"]))
    for column in ["n", "reward", "min"] + [SHORT.get(k, k) for k in names]:
        table.add_column(column, justify="right", no_wrap=True, min_width=max(len(column), 4))
    rows = list(summary["per_domain"].items()) + [("all", summary)]
    for name, row in rows:
        table.add_row(name, str(row["episodes"]), f"{row['mean_reward']:.3f}", f"{row['min_reward']:.2f}",
                      *[f"{row['components'][k]:.2f}" if k in row["components"] else "-" for k in names])
    console_err.print(table)
    if out is not None:
        console_err.print(f"episodes written to {out}", highlight=False)
