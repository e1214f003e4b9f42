"""The reward engine's formulas, checked by hand on constructed episodes of the mini fixture."""
import pytest

from medgym.runtime.build import Build
from medgym.runtime.episode import CallRecord, Episode, EpisodeView
from medgym.runtime.rewards import CRITICAL_CAP, accuracy, format_score, match_field, process, score_episode

TASK = "clinic/cap_disposition-v1/0013"


@pytest.fixture
def domain(mini_build):
    return Build.open(mini_build).domain("clinic")


def play(domain, calls, answer=None, invalid=0, no_call=0):
    episode = Episode(domain.task(TASK))
    for name, arguments in calls:
        episode.calls.append(CallRecord(1, name, arguments, True, {}))
    episode.answer, episode.invalid_calls, episode.no_call_turns = answer, invalid, no_call
    return episode


def reference_calls(domain):
    return [(s["name"], s["arguments"]) for s in domain.task(TASK)["reference"]]


def test_match_kinds():
    assert match_field({"match": "exact"}, " Home ", "home") == 1.0
    assert match_field({"match": "numeric", "tolerance": 0.5}, 7.4, 7) == 1.0
    assert match_field({"match": "numeric", "rel_tolerance": 0.1}, 115, 100) == 0.0
    assert match_field({"match": "set_f1"}, ["A41.9", "R65.20"], ["a41.9"]) == pytest.approx(2 / 3)
    assert match_field({"match": "token_f1"}, "community acquired pneumonia", "pneumonia") == pytest.approx(0.5)
    assert match_field({"match": "option"}, "(B) Pulmonary embolism", "b") == 1.0
    assert match_field({"match": "exact"}, None, "home") == 0.0


def test_accuracy_is_the_weighted_mean():
    fields = {"a": {"match": "exact", "weight": 3}, "b": {"match": "exact", "weight": 1}}
    assert accuracy(fields, {"a": 1, "b": 0}, {"a": 1, "b": 1}) == 0.75
    assert accuracy(fields, None, {"a": 1}) == 0.0


def test_reference_scores_one(domain):
    calls = reference_calls(domain)
    episode = play(domain, calls, answer=calls[-1][1])
    episode.calls[3].result = {"total": calls[-1][1]["curb65"]}  # what the calculator returned
    reward = score_episode(domain, episode)
    assert reward.total == 1.0 and not reward.violations


def test_process_counts_items_and_penalties(domain):
    spec = domain.task(TASK)["rubric"]["process"]
    pid = domain.task(TASK)["case"]["id"]
    # require (2) + before_answer (1) + order (1) = 4 items; only get_vital_signs done
    only_vitals = play(domain, [("get_vital_signs", {"patient_id": pid})], answer={"curb65": 0})
    assert process(spec, only_vitals, "submit_answer") == pytest.approx(1 / 4)
    full = reference_calls(domain)[:-1]
    repeated = play(domain, full + [("get_vital_signs", {"patient_id": pid})], answer={"curb65": 0})
    assert process(spec, repeated, "submit_answer") == pytest.approx(1 - 0.05)
    irrelevant = play(domain, full + [("ask_patient", {"patient_id": pid, "question": "q"})], answer={"curb65": 0})
    assert process(spec, irrelevant, "submit_answer") == pytest.approx(1 - 0.05)
    over = play(domain, full * 3, answer={"curb65": 0})  # 12 calls, limit max(6, 2 x 5) = 10, 8 repeats
    assert process(spec, over, "submit_answer") == pytest.approx(max(0.0, 1 - 8 * 0.05 - 2 * 0.1))


def test_format_counts_invalid_and_silent_turns(domain):
    episode = play(domain, [("get_vital_signs", {})] * 3, answer={"x": 1}, invalid=1)
    assert format_score(episode) == pytest.approx(3 / 4)
    episode.answer = None
    assert format_score(episode) == pytest.approx(3 / 8)
    assert format_score(play(domain, [], no_call=2)) == 0.0


def test_critical_violation_caps_the_composite(domain):
    calls = reference_calls(domain)
    answer = dict(calls[-1][1], disposition="home")  # truth is icu with CURB-65 >= 3
    reward = score_episode(domain, play(domain, calls, answer=answer))
    assert "icu_patient_home" in [v["id"] for v in reward.violations]
    assert reward.components["safety"] == 0.0 and reward.total == CRITICAL_CAP


def test_builtin_rules_no_decision_and_premature_closure(domain):
    none = score_episode(domain, play(domain, []))
    assert [v["id"] for v in none.violations] == ["no_decision"] and none.components["safety"] == 0.25
    rushed = score_episode(domain, play(domain, [("submit_answer", {"curb65": 3})], answer={"curb65": 3}))
    assert "premature_closure" in [v["id"] for v in rushed.violations]


def test_coherence_uses_the_calculator_result(domain):
    calls = reference_calls(domain)
    episode = play(domain, calls, answer=dict(calls[-1][1], curb65=calls[-1][1]["curb65"] - 1))
    episode.calls[3].result = {"total": calls[-1][1]["curb65"]}
    assert score_episode(domain, episode).components["coherence"] == 0.0
    episode.answer = calls[-1][1]
    assert score_episode(domain, episode).components["coherence"] == 1.0


def test_view_is_lenient(domain):
    view = EpisodeView(play(domain, []))
    assert view.answer == {} and view.result("calculate_curb65") == {} and view.vars["nothing"] is None
    assert view.called("get_vital_signs") is False and view.calls("get_vital_signs") == 0
    assert not view.observed("vitals")
