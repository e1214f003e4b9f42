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

# One panel per quantity: (metric key, title, y-axis label with its unit, kind). A panel draws the training
# series and, where the run logged it, the same metric on the held-out eval tasks (``eval/<key>``). "rate" and
# "unit" panels keep the 0..1 range in view. Panels of a file are small multiples; a missing metric is skipped.
Panel = tuple[str, str, str, str]
FIGURES: list[tuple[str, str, list[Panel]]] = [
    ("reward", "Outcome", [
        ("reward", "Env reward", "reward per episode (0-1)", "unit"),
        ("accuracy", "Accuracy", "accuracy component (0-1)", "unit"),
        ("correct_rate", "Correct episodes", "share of episodes", "rate"),
        ("reward_shaped", "Shaped reward (cosine length)", "reward the advantages use", "value"),
    ]),
    ("components", "Reward components", []),  # every reward/<component> the run logged, one panel each
    ("domains", "Reward by domain", []),      # every domain_reward/<domain>, one panel each
    ("length", "Response length", [
        ("response_length", "Assistant tokens per episode (mean)", "tokens", "value"),
        ("response_length_max", "Assistant tokens per episode (max)", "tokens", "value"),
        ("turn_length", "Assistant tokens per turn", "tokens", "value"),
        ("overflow", "Episodes over the context", "share of episodes", "rate"),
    ]),
    ("behaviour", "Multi-turn behaviour", [
        ("turns", "Turns per episode", "assistant turns", "value"),
        ("tool_calls", "Tool calls per episode", "calls", "value"),
        ("invalid_calls", "Invalid calls per episode", "calls", "value"),
        ("no_call_turns", "Turns without a call per episode", "turns", "value"),
        ("monologue_rate", "Monologue (one turn, no tool call)", "share of episodes", "rate"),
        ("submitted", "Episodes that submitted", "share of episodes", "rate"),
    ]),
    ("distillation", "Distillation", [
        ("kl", "KL(student || teacher)", "nats per kept token", "value"),
        ("kl_coef", "Distillation weight lambda", "lambda", "value"),
        ("kl_kept_tokens", "Tokens in the KL (after turn truncation)", "tokens per step", "value"),
    ]),
    ("optimisation", "Optimisation", [
        ("policy_loss", "Policy loss (GRPO)", "loss", "value"),
        ("loss", "Total loss", "loss", "value"),
        ("grad_norm", "Gradient norm (before clipping)", "L2 norm", "value"),
        ("lr", "Learning rate", "learning rate", "sci"),
    ]),
    ("time", "Time and throughput", [
        ("step_s", "Seconds per step", "s", "value"),
        ("rollout_s", "Rollout", "s", "value"),
        ("update_s", "Update", "s", "value"),
        ("rollout_tokens_per_s", "Rollout throughput", "generated tokens / s", "value"),
    ]),
]
_FAMILIES = {"components": ("reward/", "component (0-1)"), "domains": ("domain_reward/", "reward per episode (0-1)")}


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


def figure_panels(rows: list[dict]) -> list[tuple[str, str, list[tuple[Panel, list]]]]:
    """The figures to draw: (file name, title, [(panel, [(label, steps, values, style)])]) with data only."""
    keys = sorted({k for r in rows for k in r})
    out = []
    for name, title, panels in FIGURES:
        if name in _FAMILIES:
            prefix, unit = _FAMILIES[name]
            panels = [(k, k[len(prefix):], unit, "unit") for k in keys if k.startswith(prefix)]
        drawn = []
        for panel in panels:
            key = panel[0]
            series = [("train", *_series(rows, key), "train")]
            if f"eval/{key}" in keys:
                series.append(("eval (held-out, greedy)", *_series(rows, f"eval/{key}"), "eval"))
            series = [line for line in series if line[1]]
            if series:
                drawn.append((panel, series))
        if drawn:
            out.append((name, title, drawn))
    return out


_STYLES = {"train": {"color": "tab:blue", "marker": "o", "linestyle": "-"},
           "eval": {"color": "tab:orange", "marker": "s", "linestyle": "--"}}


def draw_panel(ax, panel: Panel, series: list, dense: bool) -> None:
    """One quantity on one axis: its title, the y label with its unit, integer steps on x."""
    from matplotlib.ticker import MaxNLocator

    _, title, ylabel, kind = panel
    for label, steps, values, style in series:
        ax.plot(steps, values, label=label, markersize=3, **{**_STYLES[style], **({"marker": None} if dense else {})})
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if kind in ("unit", "rate"):
        ax.set_ylim(-0.05, 1.05)
    if kind == "sci":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)
    if len(series) > 1:
        ax.legend(fontsize=7)


def _grid(count: int, columns: int):
    import matplotlib.pyplot as plt

    columns = min(columns, count)
    height = math.ceil(count / columns)
    fig, axes = plt.subplots(height, columns, figsize=(3.6 * columns, 2.9 * height), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, list(axes.flat)


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Draw one PNG per figure (small multiples, one quantity per axis) and ``overview.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    rows = read_rows(run_dir)
    out_dir = Path(out_dir) if out_dir else Path(run_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = figure_panels(rows)
    dense = len(rows) >= 30
    written = []
    for name, title, drawn in figures:
        fig, axes = _grid(len(drawn), 4)
        for ax, (panel, series) in zip(axes, drawn):
            draw_panel(ax, panel, series, dense)
        fig.suptitle(f"{title}: {Path(run_dir).name}", fontsize=11)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    everything = [item for _, _, drawn in figures for item in drawn]
    fig, axes = _grid(len(everything), 5)
    for ax, (panel, series) in zip(axes, everything):
        draw_panel(ax, panel, series, dense)
    fig.suptitle(f"{Path(run_dir).name}: {len(rows)} steps", fontsize=12)
    fig.tight_layout()
    overview = out_dir / "overview.png"
    fig.savefig(overview, dpi=90)
    plt.close(fig)
    return [overview, *written]


@app.command("plot")
def plot_command(
    run_dir: Path = typer.Argument(..., help="a run folder written by `medgym train --out`"),
    out: Optional[Path] = typer.Option(None, "--out", help="where the PNGs go (default: RUN_DIR/plots)"),
) -> None:
    """Draw a run's training curves (reward, per-domain and eval reward, length, turns, tool calls, monologue
    rate, KL, optimisation, time) as PNGs."""
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
