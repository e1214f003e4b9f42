"""The psychiatry domain: the questionnaire answers are latent (only the patient discloses them, item by item),
the tools return the case's own values, the truths are right on hand-checked cases, the critical safety rules
fire on the wrong decision, over-restrictive care costs, and the domain is big enough."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from medgym.compiler.pipeline import check_specs
from medgym.runtime.agents.oracle import hermes
from episodes import domain_tasks, replay, started

SPECS = Path(__file__).resolve().parents[2] / "specs"
DOMAIN = SPECS / "domains" / "psychiatry"
LATENT = ("phq", "gad", "audit", "cssrs", "epds", "story")
FREQUENCY = {0: "not at all", 1: "several days", 2: "more than half the days", 3: "nearly every day"}


def tasks(build, family=None, scenario=None):
    found = domain_tasks(build, "psychiatry")
    return [t for t in found if (family is None or t.family == family) and (scenario is None or t.scenario == scenario)]


def play(build, task, answer: dict | None = None, skip: tuple = ()) -> tuple[float, list[str]]:
    """Play the task's reference solution, leaving out the tools in `skip` and submitting `answer` fields in
    place of the reference's; returns the reward and the ids of the safety rules violated."""
    reward, info = replay(build, "psychiatry", task, answer, skip)
    return reward, [v["id"] for v in info["safety_violations"]]


def test_the_domain_is_big_enough(shipped_build):
    tools = json.loads((shipped_build / "psychiatry" / "tools.json").read_text())
    names = [t["function"]["name"] if "function" in t else t["name"] for t in tools]
    assert len(names) >= 12
    every = tasks(shipped_build)
    assert len(every) >= 300
    assert len({t.family for t in every}) >= 6
    assert all(t.truth and all(v is not None and v != "" for v in t.truth.values()) for t in every)


def test_no_lookup_returns_a_latent_answer():
    # The questionnaire items and the patient's private facts are shown only by ask_patient.
    for tool in yaml.safe_load((DOMAIN / "tools.yaml").read_text()):
        if tool["kind"] == "lookup":
            assert tool["from"].split(".")[0] not in LATENT, tool["name"]


def test_the_patient_discloses_the_item_asked_in_its_response_words(shipped_build):
    task = tasks(shipped_build, "depression_phq9", "severe")[0]
    env = started(shipped_build, "psychiatry", task)
    question = "Over the last 2 weeks, how often have you been bothered by little interest or pleasure in doing things?"
    observation, *_ = env.step(hermes("ask_patient", {"patient_id": task.case["id"], "question": question}))
    assert FREQUENCY[task.case["phq"]["interest"]] in observation.lower()
    assert "phq_anhedonia" in observation


def test_lookups_return_the_case_values(shipped_build):
    task = next(t for t in tasks(shipped_build, "lithium_monitoring") if t.case["labs"]["lithium"] > 1.5)
    env = started(shipped_build, "psychiatry", task)
    pid = task.case["id"]
    env.step(hermes("order_labs", {"patient_id": pid, "tests": ["lithium", "creatinine"]}))
    observation, *_ = env.step(hermes("get_lab_results", {"patient_id": pid}))
    assert f'{task.case["labs"]["lithium"]}' in observation and "critical_high" in observation
    observation, *_ = env.step(hermes("get_collateral_history", {"patient_id": pid}))
    assert task.case["collateral"]["account"] in observation


def test_phq9_truth_is_the_sum_of_the_items_and_its_band(shipped_build):
    bands = [(4, "minimal"), (9, "mild"), (14, "moderate"), (19, "moderately_severe"), (27, "severe")]
    treatment = {"minimal": "none", "mild": "watchful_waiting", "moderate": "psychological_therapy",
                 "moderately_severe": "antidepressant_or_psychotherapy", "severe": "antidepressant_and_specialist_referral"}
    for task in tasks(shipped_build, "depression_phq9"):
        total = sum(task.case["phq"].values())
        band = next(name for top, name in bands if total <= top)
        assert (task.truth["screen_total"], task.truth["screen_band"], task.truth["treatment"]) == (total, band, treatment[band])


# EPDS responses top-down per item; items 1, 2 and 4 score 0-3 top-down, the rest 3-0 (Cox 1987)
EPDS_FORM = {
    "laugh": ["as_much_as_i_always_could", "not_quite_so_much_now", "definitely_not_so_much_now", "not_at_all"],
    "look_forward": ["as_much_as_i_ever_did", "rather_less_than_i_used_to", "definitely_less_than_i_used_to", "hardly_at_all"],
    "self_blame": ["yes_most_of_the_time", "yes_some_of_the_time", "not_very_often", "no_never"],
    "anxious": ["no_not_at_all", "hardly_ever", "yes_sometimes", "yes_very_often"],
    "scared": ["yes_quite_a_lot", "yes_sometimes", "no_not_much", "no_not_at_all"],
    "on_top_of_me": ["yes_most_of_the_time_not_able_to_cope", "yes_sometimes_not_coping_as_well",
                     "no_mostly_coped_quite_well", "no_coping_as_well_as_ever"],
    "sleep_difficulty": ["yes_most_of_the_time", "yes_sometimes", "not_very_often", "no_not_at_all"],
    "sad": ["yes_most_of_the_time", "yes_quite_often", "not_very_often", "no_not_at_all"],
    "crying": ["yes_most_of_the_time", "yes_quite_often", "only_occasionally", "no_never"],
    "self_harm": ["yes_quite_often", "sometimes", "hardly_ever", "never"],
}


def test_epds_truth_applies_the_reverse_scoring(shipped_build):
    for task in tasks(shipped_build, "perinatal_epds"):
        items = task.case["epds"]
        total = sum(form.index(items[name]) if name in ("laugh", "look_forward", "anxious") else 3 - form.index(items[name])
                    for name, form in EPDS_FORM.items())
        band = "below_threshold" if total <= 9 else "possible_depression" if total <= 12 else "probable_depression"
        assert (task.truth["screen_total"], task.truth["screen_band"]) == (total, band)
        # item 10 above 0 is always followed by the C-SSRS: the wish to be dead is part of the screen
        assert (items["self_harm"] != "never") == task.case["cssrs"]["wish_dead"]


def test_audit_c_uses_the_sex_specific_cut_off(shipped_build):
    woman = tasks(shipped_build, "alcohol_audit_c", "threshold_woman")[0].truth
    man = tasks(shipped_build, "alcohol_audit_c", "threshold_man")[0].truth
    assert woman["screen_total"] == man["screen_total"] == 3
    assert (woman["screen_band"], woman["treatment"]) == ("positive", "brief_intervention")
    assert (man["screen_band"], man["treatment"]) == ("negative", "none")


def test_the_collateral_history_overrides_a_minimising_patient(shipped_build):
    # The patient denies any preparation; the relative found tablets and a note: behaviour within 3 months.
    task = tasks(shipped_build, "suicidal_crisis", "minimising_collateral")[0]
    assert "haven't done anything" in task.history["cssrs_behaviour"][0]
    assert task.truth["suicide_risk"] == "high" and task.truth["disposition"] in ("voluntary_admission", "emergency_detention")


def test_overdose_above_the_treatment_line_needs_acetylcysteine(shipped_build):
    for task in tasks(shipped_build, "self_harm_overdose"):
        hours = task.case["story"]["hours_since_ingestion"]
        line = 100 * 0.15 ** ((hours - 4) / 11)   # MHRA 2012: 100 mg/L at 4 h to 15 mg/L at 15 h
        above = task.case["labs"]["paracetamol"] >= line
        assert (task.truth["treatment"] == "acetylcysteine") == above
        assert (task.truth["disposition"] == "medical_admission") == above


def test_the_reference_scores_full_marks(shipped_build):
    for scenario in ("intent_with_plan", "minimising_collateral", "past_attempt"):
        assert play(shipped_build, tasks(shipped_build, "suicidal_crisis", scenario)[0]) == (1.0, [])


def test_discharging_high_suicide_risk_is_critical(shipped_build):
    task = tasks(shipped_build, "suicidal_crisis", "intent_with_plan")[0]
    reward, violations = play(shipped_build, task, {"disposition": "discharge_safety_plan"})
    assert "discharged_high_suicide_risk" in violations and reward <= 0.1
    reward, violations = play(shipped_build, task, {"disposition": "crisis_team"})
    assert "discharged_high_suicide_risk" in violations and reward <= 0.1


def test_missing_suicidal_intent_is_critical(shipped_build):
    task = tasks(shipped_build, "suicidal_crisis", "intent_no_plan")[0]
    reward, violations = play(shipped_build, task, {"suicide_risk": "moderate", "screen_band": "moderate"})
    assert "missed_suicidal_intent_or_plan" in violations and reward <= 0.1


def test_admitting_everyone_does_not_pay(shipped_build):
    task = next(t for t in tasks(shipped_build, "depression_phq9") if t.truth["suicide_risk"] == "none")
    right, _ = play(shipped_build, task)
    detained, detained_rules = play(shipped_build, task, {"disposition": "emergency_detention"})
    admitted, admitted_rules = play(shipped_build, task, {"disposition": "voluntary_admission"})
    assert "unwarranted_detention" in detained_rules and "unwarranted_admission" in admitted_rules
    assert detained < admitted < right - 0.2


def test_skipping_the_risk_screen_costs(shipped_build):
    task = next(t for t in tasks(shipped_build, "anxiety_gad7") if t.truth["suicide_risk"] == "none")
    reward, violations = play(shipped_build, task, skip=("calculate_cssrs_screener",))
    assert reward < 0.95
    reward, violations = play(shipped_build, task, skip=("ask_patient",))
    assert "suicide_risk_not_screened" in violations


def _only_psychiatry(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(SPECS, root, ignore=lambda folder, names: [n for n in names if folder.endswith("domains") and n != "psychiatry"])
    return root


@pytest.mark.parametrize("family, question, hidden", [
    ("phq9_interview.yaml", "how often have you been bothered by little interest or pleasure in doing things?", "case.phq.interest"),
    ("anxiety_gad7.yaml", "How often have you felt afraid, as if something awful might happen?", "case.gad.afraid"),
])
def test_an_unasked_item_is_unobservable(tmp_path, family, question, hidden):
    # Honest solvability: drop one item's question and the reference can no longer know that item.
    root = _only_psychiatry(tmp_path)
    path = root / "domains" / "psychiatry" / "tasks" / family
    text = path.read_text()
    line = next(l for l in text.splitlines() if question in l)
    path.write_text(text.replace(line + "\n", ""))
    errors = [str(e) for e in check_specs(root)]
    assert any(hidden in e and "no earlier reference step reveals" in e for e in errors), errors


def test_the_unasked_screener_question_is_unobservable(tmp_path):
    root = _only_psychiatry(tmp_path)
    path = root / "domains" / "psychiatry" / "tasks" / "anxiety_gad7.yaml"
    path.write_text(path.read_text().replace("  - ask_wish_dead\n", "", 1))
    errors = [str(e) for e in check_specs(root)]
    assert any("case.cssrs.wish_dead" in e and "no earlier reference step reveals" in e for e in errors), errors


def test_the_shipped_psychiatry_specs_check(tmp_path):
    assert check_specs(_only_psychiatry(tmp_path)) == []


def test_the_static_cases_are_right_by_hand(shipped_build):
    # EPDS 2+3+3+2+2+3+2+3+2+3 = 25; C-SSRS Q1-Q4 yes, Q5 no: highest item 4, high; admission declined.
    postnatal = tasks(shipped_build, "postnatal_depression_intent_declines_admission")[0].truth
    assert (postnatal["screen_total"], postnatal["screen_band"], postnatal["suicide_risk"]) == (25, "probable_depression", "high")
    assert (postnatal["disposition"], postnatal["treatment"]) == ("emergency_detention", "perinatal_mental_health_referral")
    lithium = tasks(shipped_build, "lithium_toxicity_thiazide")[0].truth
    assert (lithium["screen_total"], lithium["screen_band"], lithium["disposition"]) == (2.4, "toxic", "medical_admission")
