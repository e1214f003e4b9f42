"""`medgym plot`'s figures: one quantity per labelled axis, integer steps, per-domain and eval curves."""
from __future__ import annotations

import importlib.util
import json

import pytest

from medgym.cli.plot import figure_panels, draw_panel, plot_run

pytestmark = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")


def _rows():
    rows = []
    for step in range(1, 6):
        row = {"step": step, "reward": 0.1 * step, "accuracy": 0.05 * step, "correct_rate": 0.2, "turns": 2.0,
               "tool_calls": 1.5, "invalid_calls": 1.5, "monologue_rate": 0.5 - 0.1 * step, "kl": 0.01,
               "kl_coef": 4.0, "grad_norm": 35.0, "policy_loss": 0.7, "loss": 0.74, "lr": 1e-5,
               "reward/safety": 0.9, "domain_reward/triage": 0.3, "domain_reward/clinical_diagnosis": 0.1,
               "turn_length": 40.0, "step_s": 9.0}
        if step % 2 == 0:
            row.update({"eval/reward": 0.2, "eval/accuracy": 0.1})
        rows.append(row)
    return rows


def test_every_panel_is_one_quantity_with_a_labelled_axis():
    figures = {name: drawn for name, _, drawn in figure_panels(_rows())}
    panels = {panel[0]: series for drawn in figures.values() for panel, series in drawn}
    # the quantities that hid each other or shared a wrong scale have axes of their own
    for key in ("tool_calls", "invalid_calls", "accuracy", "correct_rate", "grad_norm", "loss", "policy_loss", "lr",
                "monologue_rate", "turn_length"):
        assert key in panels, key
    assert {p[0] for p, _ in figures["domains"]} == {"domain_reward/triage", "domain_reward/clinical_diagnosis"}
    [train, held_out] = panels["reward"]
    assert train[0] == "train" and held_out[0].startswith("eval") and held_out[1] == [2, 4]
    assert all(panel[2] for drawn in figures.values() for panel, _ in drawn)  # every y axis names its unit


def test_drawn_axes_have_integer_steps_and_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for _, _, drawn in figure_panels(_rows()):
        for panel, series in drawn:
            fig, ax = plt.subplots()
            draw_panel(ax, panel, series, dense=False)
            fig.canvas.draw()
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), (panel, ticks)
            assert ax.get_xlabel() == "training step" and ax.get_ylabel() == panel[2]
            if panel[3] in ("unit", "rate"):
                assert ax.get_ylim() == (-0.05, 1.05)
            plt.close(fig)


def test_plot_run_writes_the_figures(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    written = {p.name for p in plot_run(tmp_path)}
    assert {"overview.png", "reward.png", "domains.png", "behaviour.png", "optimisation.png"} <= written
    assert all((tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in written)
