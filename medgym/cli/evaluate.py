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
from medgym.dsl.components import COMPONENTS


@app.command("eval")
def eval_command(
    agent: str = typer.Option("oracle", "--agent", help="oracle, a probe (noop, guess, spam, garbage, blind, lazy, "
                                                        "shotgun, duplicate, overorder, wrong_after_workup), "
                                                        "probes (every probe against its ceiling), hf:PATH (a "
                                                        "local model), openai:URL (a chat completions endpoint)"),
    model: Optional[str] = typer.Option(None, "--model", help="the model name to request from an openai:URL "
                                                              "endpoint (default: the first it lists)"),
    domain: Optional[List[str]] = typer.Option(None, "--domain", help="a domain to evaluate (repeatable; default: all)"),
    split: str = typer.Option("test", "--split", help="train, val, test or all"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="at most this many tasks per domain, taken "
                                                                     "one family after another"),
    trials: int = typer.Option(1, "--trials", min=1, help="play each task this many times (pass^k needs k <= trials)"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="episodes played at once (for openai:URL)"),
    seed: int = typer.Option(0, "--seed", help="base of the per-trial sampling seeds"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="policy (the full policy and tool schemas) or card "
                                                                "(the card and one-line signatures); default: "
                                                                "the checkpoint's training setting, else policy"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="tokens per model turn"),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", min=1, help="assistant turns per episode "
                                                                            "(default: the domain's)"),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="sampling temperature (0: greedy)"),
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0, help="nucleus sampling mass"),
    config: Optional[Path] = typer.Option(None, "--config", help="a `medgym train` config: its rollout section "
                                                                 "sets prompt, tokens, turns and sampling"),
    threshold: float = typer.Option(0.5, "--success-threshold", min=0.0, max=1.0,
                                    help="an episode succeeds when its reward reaches this (as in training)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write one JSON line per episode here"),
    resume: bool = typer.Option(False, "--resume", help="keep the finished episodes in --out and play the rest"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Evaluate an agent; prints a summary table (and JSON with --json)."""
    from medgym.agents import UnknownAgent, load_agent_kind, make_agent
    from medgym.runtime.agents import MODEL_AGENTS
    from medgym.runtime.build import Build, BuildError
    from medgym.runtime.evaluate import evaluate, select_tasks
    from medgym.runtime.runlog import RunLogError

    folder = build_or_abort(build)
    chosen_split = None if split == "all" else split
    if agent == "probes":
        _probes(folder, domain, as_json)
        return
    if resume and out is None:
        abort("--resume continues the run file named by --out")
    if prompt not in (None, "policy", "card"):
        abort(f"--prompt must be policy or card, got {prompt!r}")
    settings = _config_settings(config) if config else {}
    settings.update({k: v for k, v in {"prompt": prompt, "max_new_tokens": max_new_tokens, "max_turns": max_turns,
                                        "temperature": temperature, "top_p": top_p}.items() if v is not None})
    kind = agent.split(":", 1)[0]
    if kind == "hf" and concurrency > 1:
        abort("--concurrency is for openai:URL endpoints; a local hf: model plays one episode at a time")
    if kind == "hf" and ":" in agent:
        try:
            load_agent_kind(agent)  # the rl extra, with a clear message when it is missing
        except UnknownAgent as exc:
            abort(str(exc))
        from medgym.rl.agents import trained_settings

        settings = {**trained_settings(agent.split(":", 1)[1]), **settings}
    turns = settings.pop("max_turns", None)
    options = dict(settings) if kind in MODEL_AGENTS else {}
    if settings and kind not in MODEL_AGENTS:
        abort(f"--{next(iter(settings)).replace('_', '-')} sets a model agent's sampling; {agent} takes none")
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
    try:
        with Progress(*columns, console=console_err, transient=True) as progress:
            bar = progress.add_task("episodes", total=None)
            summary = evaluate(folder, agent, domains=domain, split=chosen_split, limit=limit, out=out,
                               progress=lambda done, total: progress.update(bar, completed=done, total=total),
                               agent_options=options, trials=trials, concurrency=concurrency, seed=seed,
                               max_turns=turns, threshold=threshold, resume=resume)
    except RunLogError as exc:
        abort(str(exc))
    except RuntimeError as exc:  # an endpoint that stayed down: what finished is in --out
        kept = f"; the finished episodes are in {out}: rerun with --resume" if out else ""
        abort(f"{exc}{kept}", 1)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    _print_summary(summary, out)


def _config_settings(path: Path) -> dict:
    """The rollout settings of a `medgym train` config, as eval options."""
    from medgym.rl.config import ConfigError, load_config

    try:
        rollout = load_config(path).rollout
    except ConfigError as exc:
        abort(str(exc))
    return {"prompt": rollout.prompt, "max_new_tokens": rollout.max_new_tokens, "max_turns": rollout.max_turns,
            "temperature": rollout.temperature, "top_p": rollout.top_p, "context_limit": rollout.context_limit}


def _probes(folder: Path, domains: Optional[List[str]], as_json: bool) -> None:
    """Every adversarial probe on each domain's held-out tasks, against the ceiling the domain declares."""
    from medgym.runtime.build import Build, BuildError
    from medgym.runtime.env import make_env
    from medgym.runtime.evaluate import probe_table

    try:
        names = domains or Build.open(folder).domain_names
        envs = [make_env(folder, name) for name in names]
    except BuildError as exc:
        abort(str(exc))
    with console_err.status("playing the probes...", spinner="dots"):
        tables = {env.domain.name: probe_table(env) for env in envs}
    if as_json:
        typer.echo(json.dumps(tables, indent=1))
    table = Table(title="medgym probes: mean reward on the held-out tasks / ceiling", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    table.add_column("probe", no_wrap=True)
    for name in tables:
        table.add_column(name, justify="right", no_wrap=True)
    probes = list(next(iter(tables.values()))) if tables else []
    first = next(iter(tables.values()))[probes[0]] if probes else None
    if first is not None:
        table.add_row("reference", *[f"{t[probes[0]]['reference']:.3f}" for t in tables.values()])
        table.add_row("constant answer right", *[f"{t[probes[0]]['base_rate']:.0%} of tasks" for t in tables.values()])
    for probe in probes:
        table.add_row(probe, *[_probe_cell(t[probe]) for t in tables.values()])
    console_err.print(table)
    failed = [f"{d}:{p}" for d, t in tables.items() for p, row in t.items() if not row["ok"]]
    if failed:
        abort(f"{len(failed)} probe(s) above their ceiling: {', '.join(failed)}", 1)


def _probe_cell(row: dict) -> str:
    mark = "ok" if row["ok"] else "OVER"
    return f"{row['mean']:.3f} / {row['ceiling']:.2f} {mark}"


SHORT = {c.name: c.short for c in COMPONENTS}


def _print_summary(summary: dict, out: Optional[Path]) -> None:
    """Two tables (reliability, then components) so that both fit an 80-column terminal."""
    present = {k for d in summary["per_domain"].values() for k in d["components"]}
    names = [c.name for c in COMPONENTS if c.name in present]  # in their declared order
    trials = max((d["trials"] if isinstance(d["trials"], int) else max(d["trials"]) for d in
                  summary["per_domain"].values()), default=1)
    rows = list(summary["per_domain"].items()) + [("all", summary)]
    width = max(len(d) for d in [*summary["per_domain"], "domain"])
    table = _table(f"medgym eval: {summary['agent']}", width,
                   ["n", "reward", "95% CI", "success", *([f"pass^{trials}", "flips"] if trials > 1 else []), "min"])
    for name, row in rows:
        low, high = row["mean_reward_ci95"]
        extra = [f"{row['pass^k'].get(trials, 0.0):.2f}", f"{row['flip_rate']:.2f}"] if trials > 1 else []
        table.add_row(name, str(row["episodes"]), f"{row['mean_reward']:.3f}", f"{low:.2f}-{high:.2f}",
                      f"{row['success_rate']:.2f}", *extra, f"{row['min_reward']:.2f}")
    console_err.print(table)
    parts = _table("component means", width, [SHORT.get(k, k) for k in names])
    for name, row in rows:
        parts.add_row(name, *[f"{row['components'][k]:.2f}" if k in row["components"] else "-" for k in names])
    console_err.print(parts)
    if out is not None:
        console_err.print(f"episodes written to {out}", highlight=False)


def _table(title: str, width: int, columns: list[str]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("domain", no_wrap=True, min_width=width)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True, min_width=9 if column == "95% CI" else max(len(column), 4))
    return table
