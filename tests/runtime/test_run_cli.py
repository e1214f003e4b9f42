"""`medgym run` explains itself: commands cost no turn, list arguments need no JSON, turns left are shown and
the episode ends with the truth, the per-field result, missed process items and violated rules; the small
things a new user meets first (--version, list, bad --task and --build)."""
import json

from typer.testing import CliRunner

from medgym.cli import app
from medgym.cli.run import _shorthand
from medgym.runtime.build import Build


def _triage_task(build):
    return Build.open(build).domain("triage").tasks("train")[0]


def test_commands_cost_no_turn_and_show_tools_with_signatures(shipped_build):
    task = _triage_task(shipped_build)
    typed = [":help", ":tools", ":policy", ":tool get_vital_signs", ":ticket", f"get_vital_signs patient_id={task.case['id']}", ":quit"]
    result = CliRunner().invoke(app, ["run", "--build", str(shipped_build), "--task", task.task_id],
                                input="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    assert "cost no turn" in result.output or "costs a turn" in result.output
    assert "get_vital_signs(patient_id: string) - " in result.output  # a signature, not just a name
    policy = Build.open(shipped_build).domain("triage").spec.policy
    assert policy.splitlines()[0][:40] in result.output
    max_turns = Build.open(shipped_build).domain("triage").spec.max_turns
    # five commands later the vital signs call is still the first turn
    assert f"({max_turns} turns left)" in result.output and f"({max_turns - 1} turns left)" in result.output
    assert f"({max_turns - 2} turns left)" not in result.output


def test_list_arguments_need_no_json_quoting(shipped_build):
    tools = Build.open(shipped_build).domain("triage").tools
    call = _shorthand("order_stat_labs patient_id=ED-1 tests=troponin,lactate", tools)
    payload = json.loads(call.removeprefix("<tool_call>").removesuffix("</tool_call>"))
    assert payload == {"name": "order_stat_labs", "arguments": {"patient_id": "ED-1", "tests": ["troponin", "lactate"]}}
    quoted = _shorthand('order_stat_labs patient_id=ED-1 tests=["troponin"]', tools)
    assert '"tests": ["troponin"]' in quoted


def test_the_episode_ends_with_truth_fields_missed_items_and_rules(shipped_build):
    task = _triage_task(shipped_build)
    result = CliRunner().invoke(app, ["run", "--build", str(shipped_build), "--task", task.task_id,
                                      "--agent", "lazy"])
    assert result.exit_code == 0, result.output
    assert "answer against the truth" in result.output and "process items missed" in result.output
    for name in task.truth:
        if name in task.rubric.accuracy:
            assert name in result.output
    final = json.loads(result.stdout)
    for rule in final["violations"]:
        assert f"violated {rule}" in result.output


def test_version_and_friendly_errors(shipped_build, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("medgym ")
    result = runner.invoke(app, ["run", "--build", str(shipped_build), "--task", "nope"])
    assert result.exit_code == 2 and "no task 'nope'" in result.output
    specs = tmp_path / "specs"
    (specs / "domains").mkdir(parents=True)
    result = runner.invoke(app, ["eval", "--build", str(specs)])
    assert result.exit_code == 2 and "is a specs folder" in result.output and f"--out {specs}" not in result.output


def test_list_never_cuts_a_name(shipped_build):
    result = CliRunner().invoke(app, ["list", "domains", "--build", str(shipped_build)], terminal_width=80)
    assert result.exit_code == 0, result.output
    for name in Build.open(shipped_build).domain_names:
        domain = Build.open(shipped_build).domain(name)
        assert name in result.output and domain.spec.env_id in result.output
    assert "…" not in result.output
