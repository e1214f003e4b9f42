"""Each ablation switch changes what it says and nothing else (the paper's arms and the run safeguards)."""
from __future__ import annotations

import copy

import pytest
import torch

from medgym.rl import TeacherSchedule
from medgym.rl.config import TrainConfig
from medgym.rl.local import Trainer, read_metrics, shaped_rewards, train, update
from mini_update import played, update_config


def _config(**algorithm) -> TrainConfig:
    return update_config(10, **algorithm)


@pytest.fixture(scope="module")
def setup(tiny_model_dir, mini_build):
    return played(tiny_model_dir, mini_build, seed=2, max_new_tokens=10)


def _update(setup, config):
    """One update with the teacher an exact copy of the student; (new student, metrics)."""
    model, fmt, trajectories, hints = setup
    student, teacher = copy.deepcopy(model), copy.deepcopy(model)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    result = update(student, teacher, optimizer, trajectories, config, fmt, hints=hints, kl_coef=4.0, hint_seed=3)
    return student, result.metrics


def test_hints_off_gives_the_teacher_the_students_own_input(setup):
    _, with_hint = _update(setup, _config())
    _, without = _update(setup, _config(hints=False))
    assert with_hint["hint_tokens"] > 0 and with_hint["kl"] > 0  # the hint moves the teacher
    assert without["hint_tokens"] == 0 and without["kl"] == 0.0  # the same weights on the same input
    assert without["policy_loss"] == pytest.approx(with_hint["policy_loss"], rel=1e-6, abs=1e-9)
    assert without["kl_kept_tokens"] == with_hint["kl_kept_tokens"]


def test_no_truncation_keeps_the_kl_on_every_assistant_token(setup):
    trajectories = setup[2]
    limit = max(len(t.ids) for t in trajectories) - 25  # the last turn of the longest rows lies past it
    truncated = _config()
    truncated.rollout.context_limit = limit
    every = _config(truncate_turns=False)
    every.rollout.context_limit = limit
    _, a = _update(setup, truncated)
    _, b = _update(setup, every)
    assistant = sum(t.assistant_tokens for t in trajectories)
    assert a["kl_kept_tokens"] < assistant and b["kl_kept_tokens"] == assistant
    assert b["policy_loss"] == pytest.approx(a["policy_loss"], rel=1e-6, abs=1e-9)
    assert b["kl"] != pytest.approx(a["kl"], rel=1e-3)


def test_cosine_off_uses_the_env_reward_and_leaves_the_env_reward_alone(setup):
    trajectories = setup[2]
    config = _config()
    env_on, _, shaped_on = shaped_rewards(trajectories, config)
    config.reward.cosine = False
    env_off, correct_off, shaped_off = shaped_rewards(trajectories, config)
    assert torch.equal(env_on, env_off) and torch.equal(shaped_off, env_off)
    assert not torch.equal(shaped_on, env_on)


def _teacher_run(tmp_path, model_dir, build, **algorithm):
    config = TrainConfig.model_validate({
        "model": {"path": str(model_dir)}, "data": {"eval_tasks": 0},
        "rollout": {"group_size": 2, "prompts_per_step": 1, "max_turns": 1, "max_new_tokens": 4, "max_length": 32,
                    "context_limit": 4096},
        "optim": {"lr": 1e-2, "steps": 2, "micro_batch_size": 2},
        "algorithm": algorithm, "run": {"save_every": 100, "tensorboard": False},
    })
    trainer = Trainer(config, tmp_path, build)
    initial = copy.deepcopy(trainer.teacher.state_dict())
    trainer.run()
    return [r["teacher_update"] for r in read_metrics(tmp_path / "metrics.jsonl")], initial, trainer


@pytest.mark.parametrize("algorithm, expected", [
    ({"ema_every": 1, "hard_copy_every": None}, ["ema", "ema"]),   # no periodic hard copy
    ({"ema_every": None, "hard_copy_every": 2}, ["none", "copy"]),  # no EMA
    ({"ema_every": None, "hard_copy_every": None}, ["none", "none"]),  # frozen teacher
])
def test_teacher_schedule_switches(tmp_path, tiny_model_dir, mini_build, algorithm, expected):
    updates, initial, trainer = _teacher_run(tmp_path, tiny_model_dir, mini_build, **algorithm)
    assert updates == expected
    final = trainer.teacher.state_dict()
    student = trainer.model.state_dict()
    if expected[-1] == "copy":
        assert all(torch.equal(final[n], student[n]) for n in final)
    elif "ema" in expected:
        assert any(not torch.equal(final[n], initial[n]) for n in final)
        assert any(not torch.equal(final[n], student[n]) for n in final)
    else:  # frozen: still the initial student, bit for bit, though the student moved
        assert all(torch.equal(final[n], initial[n]) for n in final)
        assert any(not torch.equal(student[n], initial[n]) for n in final)


def test_kl_phase_out_is_monotonic_down_to_the_floor():
    config = _config(kl_phase_out=0.5, kl_phase_out_steps=4, kl_coef_floor=1.0)
    a = config.algorithm
    schedule = TeacherSchedule(ema_decay=a.ema_decay, ema_every=a.ema_every, copy_every=a.hard_copy_every,
                               kl_coef=a.kl_coef, kl_threshold=a.kl_phase_out, coef_floor=a.kl_coef_floor,
                               phase_out_steps=a.kl_phase_out_steps)
    coefs = []
    for kl in [0.1, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]:  # crosses once, then falls back below the threshold
        coefs.append(schedule.kl_coef)
        schedule.step(kl)
    coefs.append(schedule.kl_coef)
    assert coefs[:3] == [4.0, 4.0, 4.0]
    assert coefs[3:] == sorted(coefs[3:], reverse=True) and coefs[3] < 4.0  # never back up
    assert coefs[-1] == 1.0 and min(coefs) == 1.0  # the floor holds


def test_phase_out_settings_reach_the_trainer(tmp_path, tiny_model_dir, mini_build):
    config = TrainConfig.model_validate({"model": {"path": str(tiny_model_dir)}, "data": {"eval_tasks": 0},
                                         "algorithm": {"kl_phase_out": 2.0, "kl_phase_out_steps": 3,
                                                       "kl_coef_floor": 0.5}})
    schedule = Trainer(config, tmp_path, mini_build).schedule
    assert (schedule.kl_threshold, schedule.phase_out_steps, schedule.coef_floor) == (2.0, 3, 0.5)


def test_a_floor_above_lambda_is_a_config_error(tmp_path, tiny_model_dir, mini_build):
    from medgym.rl.config import ConfigError

    config = TrainConfig.model_validate({"model": {"path": str(tiny_model_dir)},
                                         "algorithm": {"kl_coef": 1.0, "kl_coef_floor": 2.0}})
    with pytest.raises(ConfigError, match="coef_floor"):
        train(config, tmp_path, mini_build)
