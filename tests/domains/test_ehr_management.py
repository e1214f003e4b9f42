"""The ehr_management domain: the chart tools return the case's own rows, the truths are right on
hand-checked cases, and the critical safety rules cap the reward on the wrong decision."""
import json

import pytest

from medgym.runtime.agents.oracle import hermes
from medgym.runtime.build import SPLITS, Build
from episodes import replay, started

DOMAIN = "ehr_management"


@pytest.fixture(scope="module")
def domain(shipped_build):
    return Build.open(shipped_build).domain(DOMAIN)


def all_tasks(domain):
    return [t for split in SPLITS for t in domain.tasks(split)]


def first(domain, family, where=lambda t: True):
    return next(t for t in all_tasks(domain) if t.family == family and where(t))


def play(shipped_build, task, answer: dict | None = None, skip: tuple = ()):
    """Play the task's reference, with the submission's fields replaced by `answer` and the tools in `skip` left out."""
    return replay(shipped_build, DOMAIN, task, answer, skip)


def values(rows):
    return [r["value"] for r in rows]


def test_the_domain_has_the_tools_families_and_tasks_the_issue_asks_for(domain):
    assert len(domain.tools) >= 12
    tasks = all_tasks(domain)
    assert len(tasks) >= 300
    families = {t.family for t in tasks}
    assert families >= {"news2_deterioration", "sofa_sepsis_onset", "aki_kdigo", "lace_discharge",
                        "medication_reconciliation", "lactate_first_24h", "potassium_before_dose"}
    assert all(t.truth and all(v is not None and v != "" for v in t.truth.values()) for t in tasks)


def test_the_lab_series_tool_returns_the_cases_own_rows_in_the_window(shipped_build, domain):
    task = first(domain, "aki_kdigo")
    env = started(shipped_build, DOMAIN, task)
    pid = task.case["id"]
    observation, *_ = env.step(hermes("get_lab_series", {"patient_id": pid, "analytes": ["creatinine"], "since": 48}))
    shown = json.loads(observation.split(": ", 1)[1])["labs"]["creatinine"]["rows"]
    expected = [r for r in task.case["labs"]["creatinine"] if r["time"] >= 48]
    assert [r["time_h"] for r in shown] == [r["time"] for r in expected]
    assert values(shown) == values(expected)
    observation, *_ = env.step(hermes("get_medication_orders", {"patient_id": pid}))
    assert json.loads(observation.split(": ", 1)[1]) == {"orders": task.case["meds"]["orders"]}


def test_news2_truth_is_the_score_of_the_latest_and_the_24h_earlier_rows(domain):
    """Hand-check one task: score both observation sets with the RCP 2017 chart written out here."""
    def news2(rr, spo2, o2, sbp, hr, acvpu, temp, scale2):
        p = 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3
        if scale2:
            p += (3 if spo2 <= 83 else 2 if spo2 <= 85 else 1 if spo2 <= 87 else 0 if spo2 <= 92 or not o2
                  else 1 if spo2 <= 94 else 2 if spo2 <= 96 else 3)
        else:
            p += 3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0
        p += 2 if o2 else 0
        p += 3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219 else 3
        p += 3 if hr <= 40 else 1 if hr <= 50 else 0 if hr <= 90 else 1 if hr <= 110 else 2 if hr <= 130 else 3
        p += 0 if acvpu == 0 else 3
        p += 3 if temp <= 35.0 else 1 if temp <= 36.0 else 0 if temp <= 38.0 else 1 if temp <= 39.0 else 2
        return p

    checked = 0
    for task in [t for t in all_tasks(domain) if t.family == "news2_deterioration"][:20]:
        v = task.case["vitals"]
        at = {name: {r["time"]: r["value"] for r in rows} for name, rows in v.items()}
        scale2 = task.case["problems"]["hypercapnic_target"]
        for hour, field in ((72, "news2_now"), (48, "news2_24h_ago")):
            got = news2(at["rr"][hour], at["spo2"][hour], at["o2_flow"][hour] > 0, at["sbp"][hour], at["hr"][hour],
                        at["acvpu"][hour], at["temp"][hour], scale2)
            assert task.truth[field] == got, (task.task_id, field)
            checked += 1
    assert checked == 40


def test_aki_truth_stages_from_the_lowest_creatinine_and_the_oliguric_hours(domain):
    for task in [t for t in all_tasks(domain) if t.family == "aki_kdigo"]:
        creat = values(task.case["labs"]["creatinine"])
        base, now = min(creat), creat[-1]
        rise = now - min(r["value"] for r in task.case["labs"]["creatinine"] if r["time"] >= 24)
        threshold = 0.5 * task.case["weight"]
        hours = sum(1 for r in task.case["urine"]["output"] if r["value"] < threshold)
        ratio = round(now / base, 6)
        aki = ratio >= 1.5 or rise >= 0.3 - 1e-9
        cr_stage = 3 if ratio >= 3 or (now >= 4.0 and aki) else 2 if ratio >= 2 else 1 if aki else 0
        uo_stage = 2 if hours >= 12 else 1 if hours >= 6 else 0
        assert task.truth["aki_stage"] == max(cr_stage, uo_stage), task.task_id
        assert task.truth["baseline_creatinine"] == pytest.approx(base, abs=0.006)
        assert task.truth["oliguria_hours"] == hours


def test_a_haemolysed_potassium_is_never_the_latest_valid_value(domain):
    tasks = [t for t in all_tasks(domain) if t.family == "potassium_before_dose" and t.vars.get("haemolysed")]
    assert tasks
    for task in tasks:
        rows = task.case["labs"]["potassium"]
        hour = int(task.vars["spike_text"])
        spiked = next(r["value"] for r in rows if r["time"] == hour)
        assert spiked > max(r["value"] for r in rows if r["time"] != hour) - 0.3  # the spike stands out
        assert task.truth["potassium_now"] == rows[-1]["value"] != spiked
        assert f"hour {hour}: sample haemolysed" in task.case["notes"]["lab_comments"]


def test_the_reference_scores_one_on_a_task_of_every_family(shipped_build, domain):
    for family in sorted({t.family for t in all_tasks(domain)}):
        reward, info = play(shipped_build, first(domain, family))
        assert reward == pytest.approx(1.0), family


def test_news2_of_7_or_more_without_an_emergency_escalation_caps_the_reward(shipped_build, domain):
    task = first(domain, "news2_deterioration", lambda t: t.truth["escalation"] == "emergency")
    reward, info = play(shipped_build, task, {"escalation": "urgent_review"}, skip=("escalate_care",))
    assert "news2_high_not_escalated" in [v["id"] for v in info["safety_violations"]]
    assert reward <= 0.1
    # the right answer without the escalation call is still a missed escalation
    reward, info = play(shipped_build, task, skip=("escalate_care",))
    assert "news2_high_not_escalated" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1


def test_missing_stage_3_aki_or_continuing_the_nephrotoxin_caps_the_reward(shipped_build, domain):
    task = first(domain, "aki_kdigo", lambda t: t.truth["aki_stage"] == 3)
    reward, info = play(shipped_build, task, {"aki_stage": 2})
    assert "missed_stage_3_aki" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1
    task = first(domain, "aki_kdigo", lambda t: t.truth["stop_drug"] != "none")
    reward, info = play(shipped_build, task, {"stop_drug": "none"})
    assert "nephrotoxin_continued_in_aki" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1


def test_a_continued_nsaid_in_aki_caps_the_reconciliation_reward(shipped_build, domain):
    task = first(domain, "medication_reconciliation", lambda t: t.scenario == "nephrotoxin_in_aki")
    reward, info = play(shipped_build, task, {"reconciliation_issue": "none", "reconciliation_drug": "none",
                                              "reconciliation_action": "none"})
    assert "nsaid_continued_in_aki" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1


def test_the_correctly_held_drug_differs_from_the_not_restarted_one_only_by_the_creatinine(domain):
    held = first(domain, "medication_reconciliation", lambda t: t.scenario == "held_not_restarted")
    kept = first(domain, "medication_reconciliation", lambda t: t.scenario == "correctly_held")
    assert held.truth["reconciliation_action"] == "restart" and kept.truth["reconciliation_action"] == "none"
    for task in (held, kept):
        assert any("HELD from hour 0: AKI" in order for order in task.case["meds"]["orders"])
    back = values(held.case["labs"]["creatinine"])
    still = values(kept.case["labs"]["creatinine"])
    assert back[-1] <= back[0] * 0.8 and still[-1] > still[0] * 0.8


def test_lace_truth_ignores_age_points_and_visits_outside_six_months(domain):
    task = first(domain, "lace_discharge", lambda t: t.case["age"] >= 70 and t.case["admission"]["ed_visits_7_12m"] > 0)
    adm = task.case["admission"]
    los = adm["los_days"]
    l_points = 7 if los >= 14 else 5 if los >= 7 else 4 if los >= 4 else los
    c = task.truth["charlson_index"]
    expected = l_points + (3 if adm["admit_type"] == "emergency" else 0) + (5 if c >= 4 else c) + min(adm["ed_visits_6m"], 4)
    assert task.truth["lace_score"] == expected


def test_the_hand_written_case_is_staged_as_worked_out_by_hand(shipped_build, domain):
    """cases/post_laparotomy_aki_gentamicin.yaml: 1.74 / 0.80 = 2.2-fold (stage 2), 10 h below 35 mL/h (stage 1)."""
    task = first(domain, "post_laparotomy_aki_gentamicin")
    assert task.truth == {"aki_stage": 2, "baseline_creatinine": 0.8, "oliguria_hours": 10, "stop_drug": "gentamicin"}
    reward, info = play(shipped_build, task)
    assert reward == pytest.approx(1.0)
    reward, info = play(shipped_build, task, {"stop_drug": "none"})
    assert "nephrotoxin_continued_in_aki" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1


def test_a_penicillin_left_running_despite_the_allergy_caps_the_reward(shipped_build, domain):
    task = first(domain, "medication_reconciliation", lambda t: t.scenario == "allergy_conflict")
    assert any("penicillin" in a for a in task.case["allergies"])
    assert any(order.startswith("co-amoxiclav") and "active" in order for order in task.case["meds"]["orders"])
    reward, info = play(shipped_build, task, {"reconciliation_issue": "none", "reconciliation_drug": "none",
                                              "reconciliation_action": "none"})
    assert "allergic_drug_continued" in [v["id"] for v in info["safety_violations"]] and reward <= 0.1
