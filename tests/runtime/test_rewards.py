"""The reward engine's formulas, checked by hand on constructed episodes of the mini fixture."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgym.runtime.build import Build
from medgym.runtime.episode import CallRecord, Episode, EpisodeView, canonical
from medgym.dsl.build import AccuracyRule
from medgym.runtime.rewards import (CRITICAL_CAP, IRRELEVANT_TOOL_COST, REPEAT_COST, UNNEEDED_ORDER_COST,
                                    UNNEEDED_QUESTION_COST, accuracy, composite, format_score, match_field, process,
                                    score_episode)

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
    return [(s.name, s.arguments) for s in domain.task(TASK).reference]


def test_match_kinds():
    assert match_field(AccuracyRule(match="exact"), " Home ", "home") == 1.0
    assert match_field(AccuracyRule(match="numeric", tolerance=0.5), 7.4, 7) == 1.0
    assert match_field(AccuracyRule(match="numeric", rel_tolerance=0.1), 115, 100) == 0.0
    assert match_field(AccuracyRule(match="set_f1"), ["A41.9", "R65.20"], ["a41.9"]) == pytest.approx(2 / 3)
    assert match_field(AccuracyRule(match="token_f1"), "community acquired pneumonia", "pneumonia") == pytest.approx(0.5)
    assert match_field(AccuracyRule(match="option"), "(B) Pulmonary embolism", "b") == 1.0
    assert match_field(AccuracyRule(match="exact"), None, "home") == 0.0


def test_accuracy_is_the_weighted_mean():
    fields = {"a": AccuracyRule(match="exact", weight=3), "b": AccuracyRule(match="exact", weight=1)}
    assert accuracy(fields, {"a": 1, "b": 0}, {"a": 1, "b": 1}) == 0.75
    assert accuracy(fields, None, {"a": 1}) == 0.0


def test_reference_scores_one(domain):
    calls = reference_calls(domain)
    episode = play(domain, calls, answer=calls[-1][1])
    episode.calls[3].result = {"total": calls[-1][1]["curb65"]}  # what the calculator returned
    reward = score_episode(domain, episode)
    assert reward.total == 1.0 and not reward.violations


def test_process_counts_items_and_penalties(domain):
    spec = domain.task(TASK).rubric.process
    pid = domain.task(TASK).case["id"]
    # require (2) + before_answer (1) + order (1) = 4 items; only get_vital_signs done
    only_vitals = play(domain, [("get_vital_signs", {"patient_id": pid})], answer={"curb65": 0})
    assert process(spec, only_vitals, domain) == pytest.approx(1 / 4)
    full = reference_calls(domain)[:-1]
    repeated = play(domain, full + [("get_vital_signs", {"patient_id": pid})], answer={"curb65": 0})
    assert process(spec, repeated, domain) == pytest.approx(1 - REPEAT_COST)
    over = play(domain, full * 3, answer={"curb65": 0})  # 12 calls, limit max(6, 2 x 5) = 10, 8 repeats
    assert process(spec, over, domain) == pytest.approx(max(0.0, 1 - 8 * REPEAT_COST - 2 * 0.1))


def test_costs_are_counted_per_item(domain):
    """Ordering what the case does not need costs per test, not per call; a test already ordered is a repeat;
    an unneeded history topic and a tool the task has no use for cost too."""
    spec = domain.task(TASK).rubric.process
    pid = domain.task(TASK).case["id"]
    full = reference_calls(domain)[:-1]
    score = lambda extra: process(spec, play(domain, full + extra, answer={"curb65": 0}), domain)  # noqa: E731
    assert score([]) == 1.0
    assert score([("order_labs", {"patient_id": pid, "tests": ["crp"]})]) == pytest.approx(1 - UNNEEDED_ORDER_COST)
    assert score([("order_labs", {"patient_id": pid, "tests": ["bun", "crp"]})]) == \
        pytest.approx(1 - REPEAT_COST - UNNEEDED_ORDER_COST)
    assert score([("lookup_antibiotics", {"severity": "low"})]) == pytest.approx(1 - IRRELEVANT_TOOL_COST)
    episode = play(domain, full, answer={"curb65": 0})
    episode.calls.append(CallRecord(1, "ask_patient", {"patient_id": pid, "question": "When?"}, True, {}, topic="onset"))
    assert process(spec, episode, domain) == pytest.approx(1 - UNNEEDED_QUESTION_COST)
    episode.calls.append(CallRecord(1, "ask_patient", {"patient_id": pid, "question": "How long?"}, True, {}, topic="onset"))
    assert process(spec, episode, domain) == pytest.approx(1 - UNNEEDED_QUESTION_COST - REPEAT_COST)


def test_every_test_ordered_in_one_call_is_an_item(domain):
    spec = domain.task(TASK).rubric.process
    pid = domain.task(TASK).case["id"]
    full = reference_calls(domain)[:-1]
    labs = [k for k, v in domain.spec.fields.items() if k.startswith("labs.")]
    unneeded = len(labs) - 1  # bun is needed
    shotgun = play(domain, full + [("order_labs", {"patient_id": pid, "tests": [k.split(".")[1] for k in labs]})],
                   answer={"curb65": 0})
    assert unneeded >= 1
    assert process(spec, shotgun, domain) == pytest.approx(max(0.0, 1 - REPEAT_COST - unneeded * UNNEEDED_ORDER_COST))


def test_repeats_are_detected_on_normalised_arguments(domain):
    """Re-sending a call with the id lower-cased and a trailing space, or a list reordered, is still a repeat."""
    spec = domain.task(TASK).rubric.process
    pid = domain.task(TASK).case["id"]
    full = reference_calls(domain)[:-1]
    altered = [("get_vital_signs", {"patient_id": pid.lower() + " "}),
               ("order_labs", {"patient_id": f"  {pid}", "tests": [" BUN "]})]
    episode = play(domain, full + altered, answer={"curb65": 0})
    assert process(spec, episode, domain) == pytest.approx(1 - 2 * REPEAT_COST)
    assert canonical({"a": [" X ", "y", "x"], "n": 3}) == canonical({"n": 3.0, "a": ["Y", "x"]})
    assert canonical("Chest  X-ray") == canonical(" chest x-ray ") != canonical("chest xray")


def test_a_wrong_answer_after_the_full_work_up_scores_zero(domain):
    """Process, format, safety and coherence never buy reward for a wrong answer."""
    calls = reference_calls(domain)
    truth = domain.task(TASK).truth
    wrong = dict(calls[-1][1], curb65=(truth["curb65"] + 2) % 6,
                 disposition=next(d for d in ("home", "ward", "icu") if d != truth["disposition"]))
    episode = play(domain, calls, answer=wrong)
    episode.calls[3].result = {"total": wrong["curb65"]}  # the calculator agreed: it was fed wrong inputs
    reward = score_episode(domain, episode)
    assert reward.components["accuracy"] == 0.0 and reward.components["process"] == 1.0
    assert reward.components["coherence"] == 0.0  # agreeing with a wrongly fed calculator is not coherent credit
    assert reward.total == 0.0


def test_half_right_answers_earn_less_than_right_ones(domain):
    calls = reference_calls(domain)
    truth = domain.task(TASK).truth
    half = dict(calls[-1][1], disposition=next(d for d in ("home", "ward", "icu") if d != truth["disposition"]))
    episode = play(domain, calls, answer=half)
    episode.calls[3].result = {"total": truth["curb65"]}
    reward = score_episode(domain, episode)
    assert reward.components["accuracy"] == 0.5
    assert 0 < reward.total <= 0.5


@given(st.dictionaries(st.sampled_from(["process", "safety", "format", "coherence", "assertion"]),
                       st.floats(0, 1), min_size=4), st.floats(0, 1), st.floats(0, 1))
def test_the_composite_is_monotone_in_correctness(others, accuracy_value, bump):
    weights = {"accuracy": 0.3, "process": 0.2, "safety": 0.25, "format": 0.1, "coherence": 0.15, "assertion": 0.15}
    components = {"accuracy": accuracy_value, **others}
    total = composite(weights, components)
    assert 0.0 <= total <= accuracy_value + 1e-12  # never more than the answer is right
    assert composite(weights, {**components, "accuracy": 0.0}) == 0.0
    better = composite(weights, {**components, "accuracy": min(1.0, accuracy_value + bump)})
    assert better >= total - 1e-12
    for name in others:
        assert composite(weights, {**components, name: min(1.0, others[name] + bump)}) >= total - 1e-12
    assert composite(weights, {k: 1.0 for k in components}) == pytest.approx(1.0)


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
    assert none.total == 0.0
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


def test_a_rule_about_the_decision_does_not_fire_without_one(shipped_build):
    """`acuity_assigned_without_vital_signs` judges a decision; an episode that made none only violates
    no_decision. The same rule fires once an answer comes without the vital signs."""
    triage = Build.open(shipped_build).domain("triage")
    rule = next(r for r in triage.spec.safety if r.id == "acuity_assigned_without_vital_signs")
    assert rule.needs_answer is True
    task = triage.tasks("test")[0]
    silent = score_episode(triage, Episode(task))
    assert [v["id"] for v in silent.violations] == ["no_decision"]
    rushed = Episode(task)
    rushed.calls.append(CallRecord(1, "get_patient_presentation", {"patient_id": task.case["id"]}, True, {}))
    rushed.answer = {"esi_level": 3, "disposition": "urgent_bed", "protocol": "none"}
    assert "acuity_assigned_without_vital_signs" in [v["id"] for v in score_episode(triage, rushed).violations]


def test_a_rule_about_actions_fires_without_an_answer(shipped_build):
    triage = Build.open(shipped_build).domain("triage")
    rule = next(r for r in triage.spec.safety if r.id == "aspirin_or_nsaid_despite_allergy")
    assert rule.needs_answer is False
