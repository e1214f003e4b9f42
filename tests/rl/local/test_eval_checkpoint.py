"""A checkpoint of a local training run, evaluated with `medgym eval --agent hf:RUN/checkpoints/...`, sees the
prompt it was trained on: the same opening tokens (the run's prompt form, rendered by the one function both
use), the run's turn limit and per-turn token budget; each result line records that input, the truth and the
per-field results."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

from medgym.agents import make_agent
from medgym.cli import app
from medgym.rl.config import TrainConfig
from medgym.rl.local import train
from medgym.rl.local.chat import ChatFormat
from medgym.rl.local.rollout import EnvPool, play
from medgym.runtime.build import Build
from medgym.runtime.env import make_env
from medgym.runtime.evaluate import run_episode


@pytest.fixture(scope="module")
def card_run(tmp_path_factory, tiny_model_dir, mini_build):
    """One training step with the short card prompt (not the evaluator's default, the full policy)."""
    config = TrainConfig.model_validate({
        "model": {"path": str(tiny_model_dir)},
        "rollout": {"group_size": 2, "prompts_per_step": 1, "max_turns": 2, "max_new_tokens": 8, "max_length": 32,
                    "context_limit": 4096, "prompt": "card"},
        "data": {"eval_tasks": 0},
        "optim": {"lr": 1e-2, "steps": 1, "micro_batch_size": 2},
        "run": {"save_every": 1, "keep_checkpoints": 0, "eval_every": 0},
    })
    run_dir = tmp_path_factory.mktemp("card-run")
    train(config, run_dir, mini_build)
    return config, run_dir / "checkpoints" / "step-000001" / "model"


def _task(mini_build) -> str:
    return Build.open(mini_build).domain("clinic").tasks("test")[0].task_id


def test_the_checkpoint_is_evaluated_on_the_opening_it_was_trained_on(card_run, mini_build):
    config, model_dir = card_run
    agent = make_agent(f"hf:{model_dir}")
    assert agent.fmt.prompt == "card" and agent.max_new_tokens == config.rollout.max_new_tokens
    task = _task(mini_build)
    record = run_episode(make_env(mini_build, "clinic"), agent, task)

    # the trainer's own rollout of the same task, with the run's settings
    torch.manual_seed(0)
    trained = play(agent.model, ChatFormat(agent.tokenizer, config.rollout.prompt),
                   EnvPool(mini_build, "composite", config.rollout.max_turns), [("clinic", task)], samples=1,
                   max_new_tokens=config.rollout.max_new_tokens, context_limit=config.rollout.context_limit)[0]
    seen = agent.conversation
    assert seen.ids[: seen.prompt_len] == trained.conversation.ids[: trained.conversation.prompt_len]
    opening = trained.conversation.fmt.render(trained.conversation.messages[:2], trained.conversation.tools, True)
    assert record["input"]["sha256"] == hashlib.sha256(opening.encode()).hexdigest()
    assert record["input"]["prompt"] == "card" and "Tools:\n" in record["input"]["text"]
    assert record["transcript"][0] == trained.conversation.messages[0]  # the system message it saw, not the policy


def test_cli_eval_of_a_checkpoint_takes_the_runs_settings_and_records_the_input(card_run, mini_build, tmp_path):
    config, model_dir = card_run
    out = tmp_path / "eval.jsonl"
    result = CliRunner().invoke(app, ["eval", "--agent", f"hf:{model_dir}", "--build", str(mini_build),
                                      "--split", "test", "--limit", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["run"]["sampling"]["prompt"] == "card"
    assert summary["run"]["sampling"]["max_turns"] == config.rollout.max_turns
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for line in lines:
        assert line["max_turns"] == config.rollout.max_turns and line["input"]["prompt"] == "card"
        assert line["input"]["tokens"] > 0 and len(line["input"]["sha256"]) == 64
        assert set(line["truth"]) == set(line["fields"]) == {"curb65", "disposition"}
        assert line["usage"]["completion_tokens"] <= config.rollout.max_new_tokens * line["turns"]
    # an explicit flag still wins over the run's setting, and is recorded
    result = CliRunner().invoke(app, ["eval", "--agent", f"hf:{model_dir}", "--build", str(mini_build),
                                      "--split", "test", "--limit", "1", "--prompt", "policy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["sampling"]["prompt"] == "policy"


def test_cli_eval_takes_the_rollout_settings_of_a_train_config(tiny_model_dir, mini_build, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("rollout: {prompt: card, max_turns: 1, max_new_tokens: 4, temperature: 0.7, top_p: 0.9}\n")
    out = tmp_path / "eval.jsonl"
    result = CliRunner().invoke(app, ["eval", "--agent", f"hf:{tiny_model_dir}", "--config", str(config),
                                      "--build", str(mini_build), "--split", "test", "--limit", "1", "--trials", "2",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    sampling = json.loads(result.stdout)["run"]["sampling"]
    assert sampling == {"prompt": "card", "max_new_tokens": 4, "temperature": 0.7, "top_p": 0.9,
                        "context_limit": 16384, "max_turns": 1}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["turns"] for line in lines] == [1, 1] and all(line["usage"]["completion_tokens"] <= 4 for line in lines)
    assert lines[0]["sampling_seed"] != lines[1]["sampling_seed"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollout: {prompt: essay}\n")
    result = CliRunner().invoke(app, ["eval", "--agent", f"hf:{tiny_model_dir}", "--config", str(bad),
                                      "--build", str(mini_build)])
    assert result.exit_code == 2 and "rollout.prompt" in result.output
