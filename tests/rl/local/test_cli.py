"""`medgym train`, `medgym plot` and `medgym eval --agent hf:/openai: --model` through the real CLI app."""
from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import yaml
from typer.testing import CliRunner

import medgym.cli.plot  # noqa: F401  (registers `plot` until the root imports it)
import medgym.cli.train  # noqa: F401  (registers `train`)
from medgym.cli import app

runner = CliRunner()


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _tiny_config(tmp_path, model_dir, build) -> str:
    return _write(tmp_path / "tiny.yaml", {
        "model": {"path": str(model_dir)},
        "data": {"build": str(build), "eval_tasks": 0},
        "rollout": {"group_size": 2, "prompts_per_step": 1, "max_turns": 2, "max_new_tokens": 8, "max_length": 32,
                    "context_limit": 4096},
        "optim": {"lr": 1e-3, "steps": 2},
        "run": {"save_every": 1, "eval_every": 0},
    })


def test_bad_config_values_are_one_clear_line_each(tmp_path):
    config = _write(tmp_path / "bad.yaml", {"rollout": {"group_size": 0, "temperature": -1}, "optim": {"lrr": 1}})
    result = runner.invoke(app, ["train", config, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert f"{config}: rollout.group_size: Input should be greater than or equal to 1" in result.output
    assert f"{config}: rollout.temperature: Input should be greater than 0" in result.output
    assert f"{config}: optim.lrr: Extra inputs are not permitted" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_unreadable_and_malformed_configs(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "missing.yaml: cannot read" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("rollout: [1,\n")
    result = runner.invoke(app, ["train", str(broken), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "broken.yaml:" in result.output and "not valid YAML" in result.output


def test_command_line_overrides_are_validated_too(tmp_path, tiny_model_dir, mini_build):
    config = _tiny_config(tmp_path, tiny_model_dir, mini_build)
    result = runner.invoke(app, ["train", config, "--out", str(tmp_path / "r"), "--backend", "cluster"])
    assert result.exit_code == 2 and f"{config}: backend: Input should be 'local' or 'openrlhf'" in result.output


def test_a_missing_model_folder_is_named(tmp_path, mini_build):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--model", str(tmp_path / "nothing"),
                                 "--build", str(mini_build), "--dry-run"])
    assert result.exit_code == 2 and "is not a local Hugging Face model folder" in result.output


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path, tiny_model_dir, mini_build):
    config = _tiny_config(tmp_path, tiny_model_dir, mini_build)
    result = runner.invoke(app, ["train", config, "--out", str(tmp_path / "r"), "--steps", "7", "--dry-run"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["steps"] == 7 and plan["episodes_per_step"] == 2 and plan["train_tasks"] > 0
    assert plan["model"] == str(tiny_model_dir) and not (tmp_path / "r" / "metrics.jsonl").exists()


def test_openrlhf_backend_absent_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "medgym.rl.openrlhf.launch", None)  # makes the import fail
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--backend", "openrlhf", "--dry-run"])
    assert result.exit_code == 2 and "openrlhf backend is not available" in result.output
    assert "Traceback" not in result.output


def test_openrlhf_backend_gets_the_resolved_config(tmp_path, monkeypatch):
    calls, outcome = [], {"rc": 0}

    class LaunchError(ValueError):
        pass

    def launch(config, out, dry_run):
        calls.append((config, out, dry_run))
        if outcome.get("refuse"):
            raise LaunchError("zero_stage 3 cannot hold the TT-OPD teacher")
        return outcome["rc"]

    module = type(sys)("medgym.rl.openrlhf.launch")
    module.launch, module.LaunchError = launch, LaunchError
    monkeypatch.setitem(sys.modules, "medgym.rl.openrlhf.launch", module)
    args = ["train", "--out", str(tmp_path / "r"), "--backend", "openrlhf", "--steps", "9", "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [(config, out, dry_run)] = calls
    assert config.backend == "openrlhf" and config.optim.steps == 9 and out == tmp_path / "r" and dry_run
    outcome["rc"] = 7  # a failed training run's exit code reaches the shell
    assert runner.invoke(app, args).exit_code == 7
    outcome["refuse"] = True  # a refused config is a clear error, not an internal one
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "zero_stage 3 cannot hold" in refused.output


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_model_dir, mini_build):
    tmp = tmp_path_factory.mktemp("cli")
    config = _tiny_config(tmp, tiny_model_dir, mini_build)
    result = runner.invoke(app, ["train", config, "--out", str(tmp / "run")])
    return tmp / "run", result


def test_train_runs_and_prints_a_summary(cli_run):
    run_dir, result = cli_run
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["last"]["step"] == 2
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-000002"


def test_train_logs_each_step_and_its_stages_when_not_on_a_terminal(cli_run):
    _, result = cli_run
    lines = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines if " reward " in line] == ["1/2", "2/2"]
    assert any(line.startswith("step 1/2 rollout: round 1, 2/2 episodes live") for line in lines)
    assert any(line.startswith("step 2/2 update: 2 episodes") for line in lines)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")
def test_plot_writes_the_curves(cli_run, tmp_path):
    run_dir, _ = cli_run
    result = runner.invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "png")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert {"overview.png", "reward.png", "length.png", "behaviour.png", "distillation.png"} <= set(written)
    assert all((tmp_path / "png" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in written)
    assert result.stdout.splitlines()[0].endswith("overview.png")


def test_plot_without_metrics_says_so(tmp_path):
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "metrics.jsonl does not exist" in result.output


def test_eval_runs_a_trained_checkpoint_as_an_hf_agent(cli_run, mini_build, tmp_path):
    run_dir, _ = cli_run
    model = run_dir / "checkpoints" / "step-000002" / "model"
    result = runner.invoke(app, ["eval", "--agent", f"hf:{model}", "--build", str(mini_build), "--limit", "1",
                                 "--json", "--out", str(tmp_path / "eps.jsonl")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert summary["episodes"] == 1 and summary["agent"] == f"hf:{model}"
    episode = json.loads((tmp_path / "eps.jsonl").read_text())
    assert episode["transcript"][2]["role"] == "assistant"


def test_eval_model_option_is_only_for_endpoints(mini_build):
    result = runner.invoke(app, ["eval", "--agent", "oracle", "--model", "x", "--build", str(mini_build)])
    assert result.exit_code == 2 and "--model names the model of an openai:URL endpoint" in result.output


def test_eval_names_a_missing_model_folder(mini_build, tmp_path):
    result = runner.invoke(app, ["eval", "--agent", f"hf:{tmp_path / 'none'}", "--build", str(mini_build)])
    assert result.exit_code == 2 and "is not a local Hugging Face model folder" in result.output
    assert "Traceback" not in result.output
