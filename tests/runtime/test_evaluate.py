"""Agents and the evaluation runner on the shipped domains, the reference gate, and the eval/run CLI."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import compile_specs
from medgym.dsl.errors import SpecErrors
from medgym.gate import compile_gate
from medgym.runtime.agents import PROBES, UnknownAgent, make_agent
from medgym.runtime.evaluate import evaluate
from shipped_domains import SHIPPED_DOMAINS

MINI = Path(__file__).resolve().parents[1] / "compiler" / "fixtures" / "mini"


@pytest.fixture(scope="module")
def oracle_summary(shipped_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "oracle.jsonl"
    return evaluate(shipped_build, "oracle", split=None, out=out), out


def test_oracle_solves_every_task(oracle_summary):
    summary, _ = oracle_summary
    assert summary["episodes"] >= 400
    for name, domain in summary["per_domain"].items():
        assert domain["mean_reward"] >= 0.95, name
        assert domain["min_reward"] >= 0.9, name
    assert summary["invalid_calls"] == 0 and summary["submitted"] == 1.0


def test_episode_records_carry_transcript_and_components(oracle_summary):
    _, out = oracle_summary
    record = json.loads(out.read_text().splitlines()[0])
    assert {"task_id", "seed", "agent", "turns", "tool_calls", "reward", "components", "transcript"} <= set(record)
    assert record["transcript"][0]["role"] == "system" and record["transcript"][2]["role"] == "assistant"
    assert len(record["transcript"]) == 2 + 2 * record["turns"]
    assert record["tool_calls"] == record["valid_calls"] >= record["turns"]


@pytest.mark.parametrize("probe", ["noop", "guess", "spam", "garbage"])
def test_degenerate_probes_score_nothing(shipped_build, probe):
    """They never submit a right answer, so the reward, monotone in correctness, is 0 (tests/runtime/
    test_probes.py covers the tuned probes and their ceilings)."""
    assert probe in PROBES
    summary = evaluate(shipped_build, probe, split="test")
    for name, domain in summary["per_domain"].items():
        assert domain["mean_reward"] == 0.0, (name, domain)


def test_unknown_agent_is_a_clear_error():
    with pytest.raises(UnknownAgent, match="choose one of oracle"):
        make_agent("oracel")


def test_gate_reports_a_reference_that_misses_its_threshold(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    family = specs / "domains" / "clinic" / "tasks" / "cap.yaml"
    text = family.read_text()
    broken = text.replace("  safety:\n", "  safety:\n    - id: never_asked\n      when: not called(\"ask_patient\")\n"
                          "      severity: critical\n      category: missed_history\n      message: No history.\n", 1)
    assert broken != text
    family.write_text(broken)
    with pytest.raises(SpecErrors) as caught:
        compile_specs(specs, tmp_path / "build", gate=compile_gate)
    message = str(caught.value)
    assert "domains/clinic/tasks/cap.yaml" in message and "the reference solution scores 0.100 < 0.95" in message
    assert "never_asked" in message and not (tmp_path / "build").exists()


def test_cli_eval_json_summary_and_jsonl(shipped_build, tmp_path):
    out = tmp_path / "eps.jsonl"
    result = CliRunner().invoke(app, ["eval", "--agent", "guess", "--build", str(shipped_build), "--domain", "triage",
                                      "--limit", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 3 and set(summary["per_domain"]) == {"triage"}
    assert len(out.read_text().splitlines()) == 3


def test_cli_eval_rejects_bad_names(shipped_build):
    result = CliRunner().invoke(app, ["eval", "--agent", "nobody", "--build", str(shipped_build)])
    assert result.exit_code == 2 and "unknown agent" in result.output
    result = CliRunner().invoke(app, ["eval", "--domain", "cardiology", "--build", str(shipped_build)])
    assert result.exit_code == 2 and "no domain 'cardiology'" in result.output


def test_cli_run_plays_typed_calls(shipped_build):
    from medgym.runtime.build import Build

    task = Build.open(shipped_build).domain("triage").tasks("train")[0]
    typed = [f"get_vital_signs patient_id={task.case['id']}", ":quit"]
    result = CliRunner().invoke(app, ["run", "--build", str(shipped_build), "--task", task.task_id],
                                input="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    assert "get_vital_signs:" in result.output and '"hr"' in result.output


def test_cli_run_with_the_oracle_prints_the_reward(shipped_build):
    result = CliRunner().invoke(app, ["run", "--build", str(shipped_build), "--domain", "clinical_diagnosis",
                                      "--agent", "oracle", "--seed", "4"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout)
    assert final["reward"] == 1.0


def test_runtime_imports_neither_compiler_nor_torch(shipped_build):
    code = ("import sys; from medgym.runtime import make_env; from medgym.runtime.evaluate import evaluate; "
            f"s = evaluate({str(shipped_build)!r}, 'oracle', split='test', limit=2); "
            "bad = [m for m in sys.modules if m.startswith(('medgym.compiler', 'torch', 'medgym.rl'))]; "
            f"print(bad); assert not bad and s['episodes'] == {2 * len(SHIPPED_DOMAINS)}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
