"""Episode phases through env.step: tools offered per phase, submissions that advance, values handed forward,
the per-phase rubric combined by weight (monotone in correctness), and check_env on the phased fixture."""
import warnings

import pytest
from gymnasium.utils.env_checker import check_env

from medgym.runtime import make_env
from medgym.runtime.agents.oracle import hermes



def task_of(env, scenario: str):
    return next(t for t in env.domain.tasks("train") if t.scenario == scenario)


def start(phased_build, scenario="nstemi", **kwargs):
    env = make_env(phased_build, "chest_pain", **kwargs)
    observation, info = env.reset(options={"task_id": task_of(env, scenario).task_id})
    return env, observation, info


def reference(env) -> list[tuple[str, dict]]:
    return [(s.name, dict(s.arguments)) for s in env.episode.task.reference]


def play(env, steps):
    out = None
    for name, arguments in steps:
        out = env.step(hermes(name, arguments))
        if out[2] or out[3]:
            break
    return out


def replaced(steps, tool: str, **values):
    return [(n, {**a, **values}) if n == tool else (n, a) for n, a in steps]


def wrong_esi(env) -> int:
    return env.episode.task.truth["esi_level"] % 5 + 1


def test_reset_offers_the_first_phase_only(phased_build):
    env, observation, info = start(phased_build)
    assert info["phase"] == "triage"
    assert [t["function"]["name"] for t in info["tools"]] == ["get_vital_signs", "submit_triage"]
    assert [p["name"] for p in info["phases"]] == ["triage", "workup", "disposition"]
    assert "Phase 1 of 3: triage" in observation and "submit_triage(esi_level: integer" in observation
    assert env.observation_space.contains(observation)


def test_another_phases_tool_is_an_error_and_the_episode_goes_on(phased_build):
    env, _, _ = start(phased_build)
    observation, reward, terminated, truncated, info = env.step(hermes("get_ecg", {"patient_id": env.episode.case["id"]}))
    assert "get_ecg is not offered in phase 'triage'" in observation
    assert not terminated and not truncated and reward == 0.0 and env.episode.invalid_calls == 1
    assert not info["tool_results"][0]["ok"] and info["phase"] == "triage"
    observation, *_ = env.step(hermes("submit_answer", {"disposition": "home"}))
    assert "not offered in phase 'triage'" in observation and not env.episode.done


def test_a_submission_opens_the_next_phase_with_what_was_handed_forward(phased_build):
    env, _, _ = start(phased_build)
    steps = reference(env)
    play(env, steps[:1])
    esi = env.episode.task.truth["esi_level"]
    observation, reward, terminated, truncated, info = env.step(hermes(*steps[1]))
    assert not terminated and reward == 0.0
    assert info["phase"] == "workup"
    assert [t["function"]["name"] for t in info["tools"]] == ["get_ecg", "order_tests", "get_lab_results", "submit_workup"]
    assert info["tool_results"][0]["content"]["next_phase"] == "workup"
    assert f"Handed forward: triage.esi_level = {esi}" in observation and "Phase 2 of 3: workup" in observation
    observation, *_ = env.step(hermes("get_vital_signs", {"patient_id": env.episode.case["id"]}))
    assert "not offered in phase 'workup'" in observation


def test_the_reference_scores_every_phase_in_full(phased_build):
    env, _, _ = start(phased_build)
    _, reward, terminated, _, info = play(env, reference(env))
    assert terminated and reward >= 0.95
    phases = info["reward_details"]["phases"]
    assert list(phases) == ["triage", "workup", "disposition"]
    assert all(p["reached"] and p["accuracy"] == 1.0 for p in phases.values())


def test_several_calls_in_one_turn_cross_a_phase_boundary(phased_build):
    env, _, _ = start(phased_build)
    steps = reference(env)
    observation, _, terminated, _, info = env.step("\n".join(hermes(n, a) for n, a in steps[:3]))
    assert all(r["ok"] for r in info["tool_results"]) and info["phase"] == "workup" and not terminated


def score(phased_build, scenario, change) -> float:
    env, _, _ = start(phased_build, scenario)
    _, reward, *_ = play(env, change(env, reference(env)))
    return reward


@pytest.mark.parametrize("scenario", ["stemi", "nstemi", "noncardiac"])
def test_the_combined_reward_is_monotone_in_correct_phases(phased_build, scenario):
    def wrong_triage(env, steps):
        return replaced(steps, "submit_triage", esi_level=wrong_esi(env))

    def wrong_workup(env, steps):
        diagnosis = "noncardiac" if env.episode.task.truth["diagnosis"] != "noncardiac" else "nstemi"
        return replaced(steps, "submit_workup", diagnosis=diagnosis)

    def wrong_both(env, steps):
        return wrong_workup(env, wrong_triage(env, steps))

    def wrong_all(env, steps):
        truth = env.episode.task.truth
        other = "home" if truth["disposition"] != "home" else "ward"
        steps = replaced(wrong_both(env, steps), "submit_answer", disposition=other)
        steps = replaced(steps, "submit_triage", heart_rate=truth["heart_rate"] + 40)
        return replaced(steps, "submit_workup", troponin=truth["troponin"] + 40)

    right = score(phased_build, scenario, lambda env, steps: steps)
    first_right = score(phased_build, scenario, wrong_workup)
    both_wrong = score(phased_build, scenario, wrong_both)
    all_wrong = score(phased_build, scenario, wrong_all)
    assert right > first_right >= both_wrong >= all_wrong
    assert score(phased_build, scenario, wrong_triage) >= both_wrong
    assert all_wrong == 0.0


def test_unreached_phases_score_zero_and_finishing_more_never_scores_lower(phased_build):
    totals = []
    for cut in (2, 6):  # after the triage submission; after the work-up submission
        env, _, _ = start(phased_build, max_turns=cut)
        _, reward, terminated, truncated, info = play(env, reference(env)[:cut])
        assert truncated and not terminated
        phases = info["reward_details"]["phases"]
        assert phases["disposition"]["total"] == 0.0  # never submitted: opened by the second cut, not the first
        assert phases["disposition"]["reached"] == (cut == 6)
        totals.append(reward)
    assert phases["workup"]["total"] > 0.9
    assert 0 < totals[0] <= 0.3 + 1e-9 and totals[0] < totals[1] <= 0.7 + 1e-9


def test_a_critical_violation_in_one_phase_caps_the_episode(phased_build):
    env, _, _ = start(phased_build, "stemi")
    _, reward, _, _, info = play(env, replaced(reference(env), "submit_workup", diagnosis="nstemi"))
    assert reward <= 0.1
    assert [(v["id"], v["phase"]) for v in info["safety_violations"]] == [("stemi_missed", "workup")]


def test_a_later_rubric_reads_what_an_earlier_phase_handed_forward(phased_build):
    env, _, _ = start(phased_build, "noncardiac")
    steps = replaced(replaced(reference(env), "submit_triage", esi_level=2), "submit_answer", disposition="home")
    _, _, _, _, info = play(env, steps)
    assert "urgent_sent_home" in [v["id"] for v in info["safety_violations"]]
    env, _, _ = start(phased_build, "noncardiac")
    steps = replaced(replaced(reference(env), "submit_triage", esi_level=4), "submit_answer", disposition="home")
    _, _, _, _, info = play(env, steps)
    assert "urgent_sent_home" not in [v["id"] for v in info["safety_violations"]]


def test_check_env_passes_on_the_phased_env(phased_build):
    env = make_env(phased_build, "chest_pain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
