"""The local trainer end to end on the tiny model: metrics, the teacher's schedule, checkpoints and resume."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from medgym.rl.config import TrainConfig
from medgym.rl.local import TrainError, read_metrics, train
from medgym.rl.local.checkpoint import latest_checkpoint

METRIC_KEYS = {
    "step", "accuracy", "reward", "reward_shaped", "reward/accuracy", "reward/process", "reward/safety",
    "reward/format", "reward/coherence", "response_length", "turns", "tool_calls", "invalid_calls", "kl",
    "kl_coef", "grad_norm", "lr", "step_s", "rollout_s", "update_s", "env_share", "rollout_tokens_per_s",
    "teacher_update", "task_ids", "data_cursor", "policy_loss", "loss", "submitted", "overflow",
    "turn_length", "monologue_rate", "domain_reward/clinic",
}


def _config(model_dir, steps=3, **run) -> TrainConfig:
    return TrainConfig.model_validate({
        "model": {"path": str(model_dir)},
        "rollout": {"group_size": 2, "prompts_per_step": 2, "max_turns": 2, "max_new_tokens": 8, "max_length": 32,
                    "context_limit": 4096},
        "data": {"eval_tasks": 1},
        "optim": {"lr": 1e-2, "steps": steps, "micro_batch_size": 2},
        "algorithm": {"ema_every": 2, "hard_copy_every": 3},
        "run": {"save_every": 1, "keep_checkpoints": 0, "eval_every": 3, **run},
    })


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model_dir, mini_build):
    """Three uninterrupted steps."""
    run_dir = tmp_path_factory.mktemp("full")
    summary = train(_config(tiny_model_dir), run_dir, mini_build)
    return run_dir, summary


def test_metrics_are_written_per_step_with_every_signal(full_run):
    run_dir, summary = full_run
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and summary["steps"] == 3
    for row in rows:
        assert METRIC_KEYS <= set(row), METRIC_KEYS - set(row)
        assert row["episodes"] == 4 and len(row["task_ids"]) == 2
        assert row["response_length"] > 0 and row["turns"] >= 1 and row["kl"] >= 0 and row["kl_coef"] == 4.0
    assert "eval/accuracy" in rows[2] and "eval/accuracy" not in rows[0]
    assert [r["data_cursor"] for r in rows] == [0, 2, 4]


def test_the_run_folder_keeps_the_config(full_run, tiny_model_dir):
    run_dir, _ = full_run
    saved = TrainConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert saved == _config(tiny_model_dir)
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 3


def test_the_teacher_changes_exactly_on_its_schedule(full_run, tiny_model_dir):
    """ema_every=2, hard_copy_every=3: step 1 nothing, step 2 an EMA (0.995), step 3 a hard copy."""
    run_dir, _ = full_run
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["teacher_update"] for r in rows] == ["none", "ema", "copy"]
    initial = _weights(tiny_model_dir)
    ckpt = {s: run_dir / "checkpoints" / f"step-{s:06d}" for s in (1, 2, 3)}
    teacher = {s: _weights(ckpt[s] / "teacher") for s in ckpt}
    student = {s: _weights(ckpt[s] / "model") for s in ckpt}
    for name, value in initial.items():
        assert torch.equal(teacher[1][name], value), "the teacher moved before its first update"
        torch.testing.assert_close(teacher[2][name], 0.995 * value + 0.005 * student[2][name], rtol=0, atol=1e-6)
        assert torch.equal(teacher[3][name], student[3][name])
    assert any(not torch.equal(student[1][n], v) for n, v in initial.items()), "the student did not learn"


def test_resume_continues_with_the_same_data_and_weights(full_run, tmp_path, tiny_model_dir, mini_build):
    run_dir, _ = full_run
    resumed = tmp_path / "resumed"
    train(_config(tiny_model_dir, steps=2), resumed, mini_build)  # "killed" after step 2
    assert latest_checkpoint(resumed).name == "step-000002"
    summary = train(_config(tiny_model_dir, steps=3), resumed, mini_build)
    assert summary["resumed_from"] == 2 and summary["steps_this_run"] == 1
    whole, again = read_metrics(run_dir / "metrics.jsonl"), read_metrics(resumed / "metrics.jsonl")
    assert [r["step"] for r in again] == [1, 2, 3]
    assert again[2]["task_ids"] == whole[2]["task_ids"] and again[2]["data_cursor"] == whole[2]["data_cursor"]
    for key in ("reward", "response_length", "kl", "teacher_update"):
        assert again[2][key] == pytest.approx(whole[2][key], rel=1e-5, abs=1e-7) if isinstance(whole[2][key], float) \
            else again[2][key] == whole[2][key]
    a = _weights(run_dir / "checkpoints" / "step-000003" / "model")
    b = _weights(resumed / "checkpoints" / "step-000003" / "model")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_a_finished_run_is_not_retrained(full_run, tiny_model_dir, mini_build):
    run_dir, _ = full_run
    before = (run_dir / "metrics.jsonl").read_text()
    summary = train(_config(tiny_model_dir), run_dir, mini_build)
    assert summary["steps_this_run"] == 0 and (run_dir / "metrics.jsonl").read_text() == before


def test_resume_refuses_a_different_config(full_run, tiny_model_dir, mini_build):
    run_dir, _ = full_run
    changed = _config(tiny_model_dir, steps=4)
    changed.optim.lr = 0.5
    with pytest.raises(TrainError, match="different config"):
        train(changed, run_dir, mini_build)


def test_old_checkpoints_are_pruned(tmp_path, tiny_model_dir, mini_build):
    config = _config(tiny_model_dir, steps=2, keep_checkpoints=1)
    config.algorithm.name = "grpo"
    train(config, tmp_path, mini_build)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-000002"]
    assert not (tmp_path / "checkpoints" / "step-000002" / "teacher").exists()  # GRPO keeps no teacher
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["kl"] for r in rows] == [None, None] and [r["teacher_update"] for r in rows] == ["none", "none"]
