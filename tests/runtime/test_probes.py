"""The adversarial probes: each plays the attack it names, stays under its ceiling on the shipped domains, and
the compile gate rejects a rubric a probe can game."""
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import compile_specs
from medgym.dsl.errors import SpecErrors
from medgym.gate import compile_gate
from medgym.runtime.agents import PROBES, make_agent
from medgym.runtime.agents.tuning import tuning
from medgym.runtime.env import make_env
from medgym.runtime.evaluate import probe_table, run_episode
from medgym.runtime.rewards import call_items
from shipped_domains import SHIPPED_DOMAINS

MINI = Path(__file__).resolve().parents[1] / "compiler" / "fixtures" / "mini"


@pytest.fixture(scope="module")
def triage(shipped_build):
    return make_env(shipped_build, "triage")


def held_out(env, n=None):
    tasks = [t for split in ("val", "test") for t in env.domain.tasks(split)]
    return tasks[:n] if n else tasks


def play(env, probe, task):
    record = run_episode(env, make_agent(probe), task.task_id, probe)
    return record, env.episode


def test_every_probe_is_registered():
    assert set(PROBES) >= {"noop", "guess", "spam", "garbage", "blind", "lazy", "shotgun", "duplicate", "overorder",
                           "wrong_after_workup"}


def test_tuning_learns_answers_plans_and_calculator_links(triage):
    tuned = tuning(triage.domain)
    train = triage.domain.tasks("train")
    levels = [t.truth["esi_level"] for t in train]
    assert tuned.answer["esi_level"] == max(set(levels), key=levels.count)
    assert "get_vital_signs" in [name for name, _ in tuned.plan]
    assert tuned.inputs["calculate_esi"]["heart_rate"] == "vitals.hr"
    assert tuned.echoes["esi_level"] == ("calculate_esi", "level")


def test_blind_answers_the_same_whatever_the_case(triage):
    answers = set()
    for task in held_out(triage, 12):
        record, episode = play(triage, "blind", task)
        assert record["invalid_calls"] == 0 and record["submitted"]
        answers.add(json.dumps({k: v for k, v in episode.answer.items() if k != "patient_id"}, sort_keys=True))
    assert len(answers) == 1


def test_blind_copies_only_what_it_observed(triage):
    task = held_out(triage)[0]
    _, episode = play(triage, "blind", task)
    esi = episode.successful("calculate_esi")[-1].arguments
    assert esi["heart_rate"] == task.case["vitals"]["hr"] and "vitals.hr" in episode.observed


def test_shotgun_orders_every_item_and_echoes_the_calculator(triage):
    task = held_out(triage)[0]
    _, episode = play(triage, "shotgun", task)
    labs = episode.successful("order_stat_labs")[0].arguments["tests"]
    catalogue = triage.domain.tools["order_stat_labs"].spec.parameters["properties"]["tests"]["items"]["enum"]
    assert sorted(labs) == sorted(catalogue)
    assert {t.name for t in triage.domain.tools.values() if t.kind == "instrument"} <= {c.name for c in episode.calls}
    assert episode.answer["esi_level"] == episode.successful("calculate_esi")[-1].result["level"]
    assert episode.task.rubric and len(episode.asked) == len(triage.domain.spec.history_topics)


def test_duplicate_sends_every_reference_call_twice_respelled(triage):
    task = held_out(triage)[0]
    record, episode = play(triage, "duplicate", task)
    reference = [s for s in task.reference if s.name != "submit_answer"]
    calls = [c for c in episode.calls if c.name != "submit_answer"]
    assert len(calls) == 2 * len(reference) and record["invalid_calls"] == 0
    tools = triage.domain.tools
    pairs = list(zip(calls[::2], calls[1::2]))
    respelled = [first for first, second in pairs if first.arguments != second.arguments]
    assert len(respelled) >= len(pairs) // 2  # ids, text and lists are re-spelled (whole numbers come back whole)
    for first, second in pairs:
        assert set(call_items(first, tools[first.name])) == set(call_items(second, tools[second.name]))


def test_wrong_after_workup_is_wrong_in_every_field(triage):
    for task in held_out(triage, 10):
        record, episode = play(triage, "wrong_after_workup", task)
        assert record["components"]["accuracy"] == 0.0 and record["reward"] == 0.0
        assert record["components"]["process"] >= 0.9  # the work-up itself was the reference's


def test_overorder_costs_the_reference_its_extra_orders(triage):
    task = held_out(triage)[0]
    oracle = run_episode(triage, make_agent("oracle"), task.task_id)
    over = run_episode(triage, make_agent("overorder"), task.task_id)
    assert over["components"]["accuracy"] == oracle["components"]["accuracy"] == 1.0
    assert over["components"]["process"] < oracle["components"]["process"] - 0.2
    assert over["reward"] < oracle["reward"]


@pytest.mark.parametrize("domain", SHIPPED_DOMAINS)
def test_probes_stay_under_their_ceilings(shipped_build, domain):
    table = probe_table(make_env(shipped_build, domain))
    assert set(table) == set(PROBES)
    for probe, row in table.items():
        assert row["ok"], row
        assert row["mean"] <= row["reference"] - 0.02 or row["mean"] <= 0.32, row
    for probe in ("noop", "guess", "spam", "garbage", "wrong_after_workup"):
        assert table[probe]["mean"] == 0.0, probe
    assert table["duplicate"]["mean"] < table["duplicate"]["reference"]


def gameable(tmp_path: Path, extra_domain_yaml: str = "") -> Path:
    """The mini fixture with a family whose answer never depends on the case: every patient is sent to the
    ward with the same score, so a constant answer is always right."""
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    family = specs / "domains" / "clinic" / "tasks" / "cap.yaml"
    text = family.read_text()
    text = text.replace('''  disposition: "=if truth.curb65 <= 1 then 'home' elif truth.curb65 == 2 then 'ward' else 'icu'"''',
                        "  disposition: ward")
    family.write_text(text)
    domain = specs / "domains" / "clinic" / "domain.yaml"
    domain.write_text(domain.read_text() + extra_domain_yaml)
    return specs


def test_the_gate_rejects_a_rubric_a_probe_can_game(tmp_path):
    specs = gameable(tmp_path)
    with pytest.raises(SpecErrors) as caught:
        compile_specs(specs, tmp_path / "build", gate=compile_gate)
    errors = [e for e in caught.value.errors if "probe 'blind'" in e.message]
    assert errors, str(caught.value)
    assert errors[0].pos.path.endswith("domains/clinic/domain.yaml") and errors[0].pos.line >= 1
    assert "above its ceiling (0.25)" in errors[0].message and not (tmp_path / "build").exists()


def test_a_declared_ceiling_is_checked_at_its_line(tmp_path):
    specs = gameable(tmp_path, "  blind: 0.3\n")  # into the fixture's probes: block, the file's last
    with pytest.raises(SpecErrors) as caught:
        compile_specs(specs, tmp_path / "build", gate=compile_gate)
    blind = next(e for e in caught.value.errors if "probe 'blind'" in e.message)
    lines = (specs / "domains" / "clinic" / "domain.yaml").read_text().splitlines()
    assert lines[blind.pos.line - 1].strip().startswith("blind:")
    assert "ceiling (0.3)" in blind.message


def test_an_unknown_probe_name_is_a_located_error(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    domain = specs / "domains" / "clinic" / "domain.yaml"
    domain.write_text(domain.read_text() + "  blnd: 0.3\n")  # into the fixture's probes: block
    with pytest.raises(SpecErrors) as caught:
        compile_specs(specs, tmp_path / "build")
    assert "domains/clinic/domain.yaml" in str(caught.value) and "blnd" in str(caught.value)


def test_cli_prints_the_probe_table(shipped_build):
    result = CliRunner().invoke(app, ["eval", "--agent", "probes", "--build", str(shipped_build), "--domain",
                                      "triage", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert set(table["triage"]) == set(PROBES) and all(row["ok"] for row in table["triage"].values())
