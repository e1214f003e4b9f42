"""`medgym plot RUN_DIR`: the training curves of a run, from its metrics.jsonl, as PNG files.

People read training dynamics as pictures: response-length explosion, multi-turn collapse (turns and tool
calls falling to one), a KL that runs away or a distillation coefficient that phases out. ``plot_run`` works
without the CLI and without torch, so curves copied from a cluster can be drawn on a laptop.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, console_err

# (file name, title, [(metric, label)] on the left axis, [(metric, label)] on a right axis for another scale);
# a metric missing from the run is skipped.
PANELS = [
    ("reward", "Outcome", [("reward", "env reward (mean)"), ("reward_shaped", "shaped reward (cosine)"),
                           ("accuracy", "accuracy"), ("correct_rate", "correct rate"),
                           ("eval/reward", "eval reward"), ("eval/accuracy", "eval accuracy")], []),
    ("components", "Reward components", None, []),  # every reward/<component> the run logged
    ("length", "Response length (assistant tokens per episode)",
     [("response_length", "mean"), ("response_length_max", "max")], []),
    ("behaviour", "Multi-turn behaviour (per episode)",
     [("turns", "turns"), ("tool_calls", "tool calls"), ("invalid_calls", "invalid calls"),
      ("no_call_turns", "turns without a call")],
     [("submitted", "submitted (rate)"), ("overflow", "over context (rate)")]),
    ("distillation", "Distillation", [("kl", "KL(student || teacher)")], [("kl_coef", "lambda (right axis)")]),
    ("optimisation", "Optimisation", [("grad_norm", "grad norm"), ("policy_loss", "policy loss"), ("loss", "loss")],
     [("lr", "learning rate (right axis)")]),
    ("time", "Time per step (s)", [("step_s", "step"), ("rollout_s", "rollout"), ("update_s", "update")], []),
]


class PlotError(RuntimeError):
    pass


def read_rows(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise PlotError(f"{path} does not exist: give a run folder written by `medgym train --out`")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut off by a killed run
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("step"), int)]
    if not rows:
        raise PlotError(f"{path} holds no step metrics yet")
    return rows


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):  # bools plot as 0/1
            steps.append(row["step"])
            values.append(float(value))
    return steps, values


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Draw one PNG per panel (and ``overview.png`` with all of them) into ``out_dir`` (RUN_DIR/plots)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    rows = read_rows(run_dir)
    out_dir = Path(out_dir) if out_dir else Path(run_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = []
    for name, title, keys, right in PANELS:
        if keys is None:
            keys = [(k, k.split("/", 1)[1]) for k in sorted({k for r in rows for k in r})
                    if k.startswith("reward/")]
        left_lines = [line for line in ((label, *_series(rows, key)) for key, label in keys) if line[1]]
        right_lines = [line for line in ((label, *_series(rows, key)) for key, label in right) if line[1]]
        if left_lines or right_lines:
            panels.append((name, title, left_lines, right_lines))
    written = []

    def draw(ax, title, left_lines, right_lines):
        marker = {"marker": "o", "markersize": 3} if len(rows) < 30 else {}
        for label, steps, values in left_lines:
            ax.plot(steps, values, label=label, **marker)
        handles, labels = ax.get_legend_handles_labels()
        if right_lines:
            twin = ax.twinx()
            colours = iter(["tab:gray", "tab:olive", "tab:cyan"])
            for label, steps, values in right_lines:
                twin.plot(steps, values, label=label, linestyle="--", color=next(colours), **marker)
            if all(0.0 <= v <= 1.0 for _, _, values in right_lines for v in values):
                twin.set_ylim(-0.05, 1.05)  # rates: keep the whole 0..1 range in view
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(handles, labels, fontsize=7)

    for name, title, left_lines, right_lines in panels:
        fig, ax = plt.subplots(figsize=(6, 4))
        draw(ax, title, left_lines, right_lines)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    columns = 2
    height = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(height, columns, figsize=(12, 3.6 * height), squeeze=False)
    for ax, (name, title, left_lines, right_lines) in zip(axes.flat, panels):
        draw(ax, title, left_lines, right_lines)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{Path(run_dir).name}: {len(rows)} steps", fontsize=12)
    fig.tight_layout()
    overview = out_dir / "overview.png"
    fig.savefig(overview, dpi=100)
    plt.close(fig)
    return [overview, *written]


@app.command("plot")
def plot_command(
    run_dir: Path = typer.Argument(..., help="a run folder written by `medgym train --out`"),
    out: Optional[Path] = typer.Option(None, "--out", help="where the PNGs go (default: RUN_DIR/plots)"),
) -> None:
    """Draw a run's training curves (reward, components, length, turns and tool calls, KL, grad norm) as PNGs."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        abort("medgym plot needs matplotlib: pip install matplotlib (it comes with pip install 'medgym[rl]')")
    try:
        written = plot_run(run_dir, out)
    except PlotError as exc:
        abort(str(exc))
    for path in written:
        typer.echo(str(path))
    console_err.print(f"{len(written)} plots written", highlight=False)
