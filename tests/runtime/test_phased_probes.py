"""The probes on a phased task: each plays it phase by phase (its attack with that phase's tools, then that
phase's submit tool), tuning learns each phase's common answer from the train split, and the phased fixture
passes the gate with every probe under its ceiling."""
from collections import Counter

import pytest

from medgym.runtime.agents import make_agent
from medgym.runtime.agents.tuning import phase_steps, tuning
from medgym.runtime.env import make_env
from medgym.runtime.evaluate import probe_table, run_episode

PLAYING = ["guess", "spam", "blind", "lazy", "shotgun", "duplicate", "overorder", "wrong_after_workup"]


@pytest.fixture(scope="module")
def env(phased_build):
    return make_env(phased_build, "chest_pain")


def held_out(env, n=6):
    return [t for split in ("val", "test") for t in env.domain.tasks(split)][:n]


def calls_by_phase(episode) -> dict[str, list[str]]:
    names = [p.name for p in episode.task.phases]
    out = {name: [] for name in names}
    for call in episode.calls:
        out[names[call.phase]].append(call.name)
    return out


@pytest.mark.parametrize("probe", PLAYING)
def test_each_probe_reaches_and_submits_every_phase(env, probe):
    for task in held_out(env):
        record = run_episode(env, make_agent(probe), task.task_id, probe)
        episode = env.episode
        assert episode.done and record["invalid_calls"] == 0, (probe, record["calls"])
        assert list(episode.phase_answers) == [p.name for p in task.phases]
        by_phase = calls_by_phase(episode)
        for phase in task.phases:
            assert by_phase[phase.name][-1] == phase.submit  # each phase ended by its own submission
            assert set(by_phase[phase.name]) <= set(phase.tools)
        assert all(p["reached"] for p in record["reward_details"]["phases"].values())


def test_tuning_learns_each_phases_common_answer_and_plan(env):
    tuned = tuning(env.domain)
    train = env.domain.tasks("train")
    assert set(tuned.phases) == {"triage", "workup", "disposition"}
    for field, phase in [("esi_level", "triage"), ("diagnosis", "workup"), ("disposition", "disposition")]:
        common, _ = Counter(t.truth[field] for t in train).most_common(1)[0]
        assert tuned.phases[phase].answer[field] == common
    assert "disposition" not in tuned.phases["triage"].answer
    assert [n for n, _ in tuned.phases["triage"].plan] == ["get_vital_signs"]
    assert [n for n, _ in tuned.phases["workup"].plan] == ["get_ecg", "order_tests", "get_lab_results"]
    assert all(not name.startswith("submit") for stage in tuned.phases.values() for name, _ in stage.plan)


def test_blind_submits_each_phases_common_answer_whatever_the_case(env):
    tuned = tuning(env.domain)
    seen = set()
    for task in held_out(env):
        run_episode(env, make_agent("blind"), task.task_id, "blind")
        answers = env.episode.phase_answers
        assert answers["triage"]["esi_level"] == tuned.phases["triage"].answer["esi_level"]
        seen.add(tuple(sorted((p, str(sorted(a.items()))) for p, a in answers.items())))
    assert len(seen) == 1


def test_lazy_looks_once_and_shotgun_calls_every_tool_in_each_phase(env):
    task = held_out(env)[0]
    run_episode(env, make_agent("lazy"), task.task_id, "lazy")
    lazy = calls_by_phase(env.episode)
    assert all(len(calls) == 2 for calls in lazy.values())  # one lookup, then the submission
    run_episode(env, make_agent("shotgun"), task.task_id, "shotgun")
    shotgun = calls_by_phase(env.episode)
    for phase in task.phases:
        assert set(shotgun[phase.name]) == set(phase.tools)


def test_duplicate_doubles_each_phases_work_and_submits_once(env):
    task = held_out(env)[0]
    run_episode(env, make_agent("duplicate"), task.task_id, "duplicate")
    by_phase = calls_by_phase(env.episode)
    for phase, steps in phase_steps(task):
        assert len(by_phase[phase.name]) == 2 * (len(steps) - 1) + 1
        assert by_phase[phase.name].count(phase.submit) == 1


def test_the_phased_fixture_keeps_every_probe_under_its_ceiling(env):
    table = probe_table(env)
    for probe, row in table.items():
        assert row["ok"], row
    for probe in ("noop", "guess", "spam", "garbage", "wrong_after_workup"):
        assert table[probe]["mean"] == 0.0, probe
    assert 0.0 < table["blind"]["mean"] <= 0.25  # it earns the base rate of every phase, not a refusal


@pytest.mark.parametrize("probe", ["blind", "shotgun", "duplicate", "overorder", "wrong_after_workup"])
def test_a_tight_turn_limit_packs_each_phase_and_still_submits_every_one(env, probe):
    """Six turns for three phases: each phase's work packs into one turn, its submission into the next."""
    tight = make_env(env.domain.build.path, "chest_pain", max_turns=6)
    task = held_out(tight)[0]
    record = run_episode(tight, make_agent(probe), task.task_id, probe)
    assert tight.episode.done and record["invalid_calls"] == 0 and tight.episode.turns <= 6
    assert list(tight.episode.phase_answers) == [p.name for p in task.phases]
