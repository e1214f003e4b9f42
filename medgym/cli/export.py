"""`medgym export openrlhf`: a compiled build's tasks as an OpenRLHF prompt dataset (JSONL)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, build_or_abort, console_err

export_app = typer.Typer(help="Export tasks as datasets for other trainers.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("openrlhf")
def openrlhf_command(
    out: Path = typer.Option(..., "--out", help="the JSONL file to write (OpenRLHF's --data.prompt_dataset)"),
    split: str = typer.Option("train", "--split", help="train, val or test"),
    domain: Optional[list[str]] = typer.Option(None, "--domain", help="a domain to export (repeatable; default: all)"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="at most this many tasks per domain"),
    config: Optional[Path] = typer.Option(None, "--config", help="a training config: its reward, turn and prompt "
                                                                 "settings go into the labels (default: the "
                                                                 "config defaults)"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Write one row per task: the opening as chat messages (`input`) and a JSON `label` naming the task.

    Train on it with `--data.prompt_dataset OUT --data.input_key input --data.label_key label
    --data.apply_chat_template --train.agent_func_path medgym/rl/openrlhf/agent.py` (what
    `medgym train --backend openrlhf` sets up for you).
    """
    try:
        from medgym.rl.config import ConfigError, load_config
        from medgym.rl.openrlhf.dataset import export_prompts
    except ImportError as exc:
        abort(f"the export needs the rl extra (pip install 'medgym[rl]'): {exc}")
    from medgym.runtime.build import BuildError

    folder = build_or_abort(build)
    try:
        settings = load_config(config) if config is not None else None
        rows = export_prompts(folder, out, split=split, domains=domain or None, limit=limit, config=settings)
    except ConfigError as exc:
        abort(str(exc))
    except (BuildError, ValueError, OSError) as exc:
        abort(str(exc))
    console_err.print(f"wrote {rows} rows to {out}", highlight=False)
    typer.echo(json.dumps({"out": str(out), "rows": rows, "split": split, "build": str(Path(folder).resolve())}))
