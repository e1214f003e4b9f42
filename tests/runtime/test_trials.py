"""Trials and reliability: pass^k, pass@k, flip rate and intervals against hand-computed values, the
resumable run file, and `medgym eval --trials`."""
import json

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.runtime.evaluate import evaluate, select_tasks, summarise
from medgym.runtime.runlog import RunWriter, read_run
from medgym.runtime.trials import (bootstrap_interval, flip_rate, pass_at_k, pass_hat_k, paired_bootstrap,
                                   reliability)


def _records(rewards: dict[str, list[float]], domain="d") -> list[dict]:
    return [{"task_id": task, "trial": i, "domain": domain, "reward": r, "components": {"accuracy": r},
             "submitted": True, "turns": 1, "tool_calls": 1, "invalid_calls": 0}
            for task, values in rewards.items() for i, r in enumerate(values)]


# Task a: 3 of 4 trials succeed; b: none; c: all four (threshold 0.5).
FIXTURE = {"a": [1.0, 0.8, 0.2, 0.6], "b": [0.0, 0.1, 0.4, 0.0], "c": [0.9, 1.0, 0.7, 0.5]}


def test_pass_hat_k_and_pass_at_k_match_the_hand_computed_values():
    stats = reliability(_records(FIXTURE), threshold=0.5)
    # pass^k = mean over tasks of C(c,k)/C(4,k): a has c=3, b c=0, c c=4
    assert stats["pass^k"][1] == pytest.approx((3 / 4 + 0 + 1) / 3)
    assert stats["pass^k"][2] == pytest.approx((3 / 6 + 0 + 1) / 3)
    assert stats["pass^k"][3] == pytest.approx((1 / 4 + 0 + 1) / 3)
    assert stats["pass^k"][4] == pytest.approx((0 + 0 + 1) / 3)
    # pass@k = mean of 1 - C(4-c,k)/C(4,k)
    assert stats["pass@k"][1] == pytest.approx((3 / 4 + 0 + 1) / 3)
    assert stats["pass@k"][2] == pytest.approx((1 + 0 + 1) / 3)
    assert stats["success_rate"] == pytest.approx(7 / 12)
    assert stats["flip_rate"] == pytest.approx(1 / 3)  # only a's verdicts disagree
    assert stats["mean_reward"] == pytest.approx(sum(sum(v) for v in FIXTURE.values()) / 12)
    assert stats["tasks"] == 3 and stats["trials"] == 4


def test_pass_hat_one_is_the_success_rate_and_the_curves_are_monotone():
    assert pass_hat_k(5, 2, 1) == pytest.approx(0.4) and pass_hat_k(5, 2, 3) == 0.0
    assert pass_at_k(5, 2, 4) == 1.0 and pass_at_k(5, 0, 3) == 0.0
    values = [pass_hat_k(10, 7, k) for k in range(1, 11)]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_hat_k(3, 1, 4)


def test_bootstrap_interval_of_three_task_means():
    # Task means 0.75, 0, 1: every one of the 27 resamples is equally likely; the all-b (0) and all-c (1)
    # resamples each have probability 1/27 > 2.5%, so the 95% interval is exactly [0, 1].
    assert bootstrap_interval([0.75, 0.0, 1.0]) == (0.0, 1.0)
    low, high = bootstrap_interval([0.5] * 20)
    assert low == high == 0.5
    low, high = bootstrap_interval([i / 99 for i in range(100)])
    assert 0.42 < low < 0.5 < high < 0.58


def test_flip_rate_ignores_tasks_played_once():
    assert flip_rate({"a": [True], "b": [True, False], "c": [False, False]}) == 0.5


def test_paired_bootstrap_on_shared_tasks():
    a = {f"t{i}": 0.5 for i in range(30)} | {"only_a": 1.0}
    b = {f"t{i}": 0.5 + (0.2 if i % 2 else 0.1) for i in range(30)}
    result = paired_bootstrap(a, b)
    assert result["tasks"] == 30 and result["difference"] == pytest.approx(0.15)
    assert 0.1 <= result["interval"][0] < 0.15 < result["interval"][1] <= 0.2 and result["p_value"] == 0.0
    same = paired_bootstrap(a, a)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0


def test_summary_carries_reliability_per_domain_and_overall():
    records = _records(FIXTURE, "x") + _records({"z": [1.0, 1.0, 1.0, 1.0]}, "y")
    summary = summarise(records, "probe", threshold=0.5)
    assert summary["per_domain"]["y"]["pass^k"][4] == 1.0
    assert summary["pass^k"][4] == pytest.approx(0.5)  # c and z of four tasks
    assert summary["flip_rate"] == pytest.approx(0.25)
    low, high = summary["mean_reward_ci95"]
    assert low <= summary["mean_reward"] <= high


def test_run_file_keeps_whole_keyed_lines_only(tmp_path):
    path = tmp_path / "run.jsonl"
    with RunWriter(path, resume=False) as writer:
        writer.write({"task_id": "a", "trial": 0, "reward": 1.0})
        writer.write({"task_id": "a", "trial": 1, "reward": 0.0})
    with path.open("ab") as raw:
        raw.write(b'{"no_key": true}\n{"task_id": "a", "trial": 0, "reward": 9}\n{"task_id": "b", "tri')
    records, good = read_run(path)
    assert [(r["task_id"], r["trial"], r["reward"]) for r in records] == [("a", 0, 1.0), ("a", 1, 0.0)]
    with RunWriter(path, resume=True) as writer:  # the cut-off tail goes; the next line starts on its own
        assert path.stat().st_size == good
        writer.write({"task_id": "b", "trial": 0, "reward": 0.5})
    assert [r["task_id"] for r in read_run(path)[0]] == ["a", "a", "b"]
    assert path.read_bytes().endswith(b"\n") and b'"tri{' not in path.read_bytes()


def test_limit_takes_tasks_across_families(shipped_build):
    from medgym.runtime.build import Build

    build = Build.open(shipped_build)
    chosen = select_tasks(build, ["triage"], "test", 5, stratified=True)
    families = {build.domain("triage").task(t).family for _, t in chosen}
    assert len(chosen) == 5 and len(families) == 5


def test_cli_eval_trials_reports_pass_hat_k_flip_rate_and_intervals(mini_build, tmp_path):
    out = tmp_path / "guess.jsonl"
    result = CliRunner().invoke(app, ["eval", "--agent", "guess", "--build", str(mini_build), "--trials", "4",
                                      "--split", "test", "--limit", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == summary["episodes"] == 12 and summary["trials"] == 4
    assert {(r["task_id"], r["trial"]) for r in lines} == {(t, k) for t in {r["task_id"] for r in lines} for k in range(4)}
    assert set(summary["pass^k"]) == set(summary["pass@k"]) == {"1", "2", "3", "4"}
    # recomputed by hand from the written lines
    by_task: dict[str, list[bool]] = {}
    for r in lines:
        by_task.setdefault(r["task_id"], []).append(r["reward"] >= summary["success_threshold"])
    for k in range(1, 5):
        expected = sum(pass_hat_k(4, sum(v), k) for v in by_task.values()) / len(by_task)
        assert summary["pass^k"][str(k)] == pytest.approx(expected, abs=1e-4)
    assert summary["flip_rate"] == pytest.approx(sum(0 < sum(v) < 4 for v in by_task.values()) / 3, abs=1e-4)
    assert len(summary["mean_reward_ci95"]) == 2 and "flip_rate" in summary["per_domain"]["clinic"]
    first = lines[0]
    assert first["run"]["spec_hash"] and first["run"]["agent"] == "guess" and first["run"]["trials"] == 4
    assert first["sampling_seed"] != lines[-1]["sampling_seed"]
    assert {"truth", "fields", "process_met", "process_missed", "rules_fired", "input"} <= set(first)
    assert first["input"]["sha256"] and set(first["fields"]) == set(first["truth"])


def test_oracle_trials_succeed_every_time(mini_build):
    summary = evaluate(mini_build, "oracle", split="test", trials=3)
    assert summary["pass^k"] == {1: 1.0, 2: 1.0, 3: 1.0} and summary["flip_rate"] == 0.0


def test_resume_refuses_a_file_from_another_run(mini_build, tmp_path):
    out = tmp_path / "run.jsonl"
    evaluate(mini_build, "guess", split="test", limit=2, out=out)
    result = CliRunner().invoke(app, ["eval", "--agent", "oracle", "--build", str(mini_build), "--split", "test",
                                      "--limit", "2", "--out", str(out), "--resume"])
    assert result.exit_code == 2 and "cannot resume" in result.output and "agent" in result.output


def test_resume_plays_only_what_is_missing(mini_build, tmp_path):
    out = tmp_path / "run.jsonl"
    evaluate(mini_build, "oracle", split="test", limit=3, trials=2, out=out)
    clean = out.read_text().splitlines()
    out.write_text("\n".join(clean[:2]) + "\n" + clean[2][: len(clean[2]) // 2])  # as a kill would leave it
    summary = evaluate(mini_build, "oracle", split="test", limit=3, trials=2, out=out, resume=True)
    again = out.read_text().splitlines()
    assert summary["episodes"] == 6 and len(again) == 6 and again[:2] == clean[:2]
    key = lambda line: (json.loads(line)["task_id"], json.loads(line)["trial"])  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, clean))
