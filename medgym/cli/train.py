"""`medgym train`: GRPO / TT-OPD on compiled envs, locally (transformers) or on OpenRLHF."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, build_or_abort, console_err


@app.command("train")
def train_command(
    config: Optional[Path] = typer.Argument(None, help="a YAML training config (default: the embedded CPU run)"),
    out: Path = typer.Option(..., "--out", help="the run folder: config, metrics.jsonl, checkpoints (resumed if "
                                                "it holds one)"),
    model: Optional[str] = typer.Option(None, "--model", help="a local Hugging Face model folder (overrides "
                                                              "model.path)"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="total optimiser steps (overrides optim.steps)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="local or openrlhf (overrides backend)"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (overrides data.build; default: the "
                                                               "shipped specs)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the config, model and data, print the plan, train "
                                                          "nothing"),
) -> None:
    """Train a policy with GRPO or TT-OPD; prints a JSON summary when done."""
    try:
        from medgym.rl.config import ConfigError, load_config
    except ImportError as exc:  # medgym.rl is torch code; a core install has none
        abort(f"training needs the rl extra: pip install torch==2.13.0 && pip install 'medgym[rl]' ({exc})")

    try:
        cfg = load_config(config)
        data = cfg.model_dump()
        if model is not None:
            data["model"]["path"] = model
        if steps is not None:
            data["optim"]["steps"] = steps
        if backend is not None:
            data["backend"] = backend
        if build is not None:
            data["data"]["build"] = str(build)
        cfg = _validated(data, config)
    except ConfigError as exc:
        abort(str(exc))
    if cfg.backend == "openrlhf":
        _openrlhf(cfg, out, dry_run)
        return
    _local(cfg, out, dry_run)


def _validated(data: dict, source: Optional[Path]):
    """Re-validate after the command-line overrides, naming the option when one of them is the bad value."""
    from pydantic import ValidationError

    from medgym.rl.config import ConfigError, TrainConfig

    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        where = str(source) if source else "(command line)"
        raise ConfigError("\n".join(f"{where}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                                    for e in exc.errors())) from None


def _openrlhf(cfg, out: Path, dry_run: bool) -> None:
    try:
        from medgym.rl.openrlhf.launch import LaunchError, launch
    except ImportError as exc:
        abort(f"the openrlhf backend is not available in this install (medgym.rl.openrlhf.launch: {exc}); "
              f"use --backend local")
    if not cfg.data.build:  # the shipped specs, compiled on first use (rl itself never calls the compiler)
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"build": str(build_or_abort(None))})})
    try:
        rc = launch(cfg, out, dry_run)
    except LaunchError as exc:
        abort(str(exc))
    if rc:
        raise typer.Exit(rc)


def _local(cfg, out: Path, dry_run: bool) -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        abort("local training needs the rl extra: pip install 'medgym[rl]'")
    from medgym.rl.config import DEFAULT_MODEL, ConfigError
    from medgym.rl.local import ChatTemplateError, ModelError, TrainError, resolve_model_path, train
    from medgym.rl.local.checkpoint import latest_checkpoint
    from medgym.runtime.build import BuildError

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is the one to read
    folder = build_or_abort(Path(cfg.data.build) if cfg.data.build else None)
    if dry_run:
        _plan(cfg, out, folder, latest_checkpoint(out))
        return
    try:
        if cfg.model.path == DEFAULT_MODEL and latest_checkpoint(out) is None:
            with console_err.status("preparing the embedded model (converted once into the cache)...",
                                    spinner="dots"):
                resolve_model_path(cfg.model.path)
        if console_err.is_terminal:
            summary = _train_with_bar(cfg, out, folder, train)
        else:  # a log file or a pipe: plain lines, one per step and per stage of a step
            summary = train(cfg, out, folder, on_step=lambda m: _line(f"step {m['step']}/{cfg.optim.steps}  "
                                                                      f"{step_text(m)}"),
                            on_progress=lambda p: _line(progress_text(p, cfg.optim.steps)))
    except (ConfigError, ModelError, ChatTemplateError, TrainError, BuildError) as exc:
        abort(str(exc))
    typer.echo(json.dumps(summary, indent=1, default=str))
    console_err.print(f"metrics in {out / 'metrics.jsonl'}; draw them with `medgym plot {out}`", highlight=False)


def step_text(metrics: dict) -> str:
    """The one-line summary of a finished step."""
    kl = metrics.get("kl")
    return (f"reward {metrics['reward']:.3f}  acc {metrics['accuracy']:.3f}  turns {metrics['turns']:.1f}  "
            f"calls {metrics['tool_calls']:.1f}  len {metrics['response_length']:.0f}"
            + (f"  kl {kl:.4f}" if kl is not None else "") + f"  {metrics['step_s']:.1f}s")


def progress_text(progress: dict, steps: int) -> str:
    """What a step is doing now: its rollout round (live episodes, tokens so far), update, eval or save."""
    head = f"step {progress['step']}/{steps} {progress['phase']}"
    if progress["phase"] == "rollout":
        return (f"{head}: round {progress['round']}, {progress['live']}/{progress['episodes']} episodes live, "
                f"{progress['generated_tokens']} tokens generated")
    if progress["phase"] == "update":
        return f"{head}: {progress['episodes']} episodes, {progress['tokens']} tokens"
    return head


def _line(text: str) -> None:
    console_err.print(text, highlight=False, soft_wrap=True)


def _train_with_bar(cfg, out: Path, folder: Path, train) -> dict:
    """A terminal: one progress bar over the steps, its text the current stage, the last step's line kept."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("train {task.fields[what]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[last]}"))
    with Progress(*columns, console=console_err, transient=False) as progress:
        bar = progress.add_task("steps", total=cfg.optim.steps, what=cfg.algorithm.name, last="")

        def on_step(metrics: dict) -> None:
            progress.update(bar, completed=metrics["step"], last=step_text(metrics))
            progress.console.print(f"step {metrics['step']}/{cfg.optim.steps}  {step_text(metrics)}",
                                   highlight=False)

        def on_progress(info: dict) -> None:
            progress.update(bar, last=progress_text(info, cfg.optim.steps))

        return train(cfg, out, folder, on_step=on_step, on_progress=on_progress)


def _plan(cfg, out: Path, build: Path, checkpoint) -> None:
    """--dry-run: what would run, after checking that the model folder and the tasks exist."""
    from medgym.rl.config import DEFAULT_MODEL
    from medgym.rl.local import ModelError, resolve_model_path
    from medgym.runtime.build import Build, BuildError
    from medgym.runtime.evaluate import select_tasks

    try:
        b = Build.open(build)
        tasks = select_tasks(b, cfg.data.domains or b.domain_names, cfg.data.train_split, cfg.data.max_tasks)
        model = cfg.model.path if cfg.model.path == DEFAULT_MODEL else str(resolve_model_path(cfg.model.path))
    except (BuildError, ModelError) as exc:
        abort(str(exc))
    plan = {"backend": "local", "algorithm": cfg.algorithm.name, "model": model, "build": str(build),
            "train_tasks": len(tasks), "steps": cfg.optim.steps,
            "episodes_per_step": cfg.rollout.prompts_per_step * cfg.rollout.group_size,
            "run_dir": str(out), "resume_from": str(checkpoint) if checkpoint else None,
            "config": cfg.model_dump(mode="json")}
    typer.echo(json.dumps(plan, indent=1))
