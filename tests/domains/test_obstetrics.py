"""The obstetrics domain: the tools return the case's own values, the truths agree with an independent
implementation of the published rules (ACOG CO 700 dating, ACOG PB 222 hypertensive disorders, NICHD 2008 CTG
categories, Manning BPP, Bishop, Apgar), and the critical safety rules cap a missed severe pre-eclampsia or
an unexpedited category III trace."""
from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from medgym.runtime.agents.oracle import hermes
from medgym.runtime.build import SPLITS, Build
from episodes import replay, started

DOMAIN = "obstetrics"


@pytest.fixture(scope="module")
def domain(shipped_build):
    return Build.open(shipped_build).domain(DOMAIN)


@pytest.fixture(scope="module")
def tasks(domain):
    return [t for split in SPLITS for t in domain.tasks(split)]


def family(tasks, name):
    chosen = [t for t in tasks if t.family == name]
    assert chosen, name
    return chosen


def play(shipped_build, task, answer_changes=None, skip=()):
    """Play the task's reference solution, optionally with changed submission fields; return the final info."""
    reward, info = replay(shipped_build, DOMAIN, task, answer_changes, skip)
    return {**info, "reward": reward}


# -- size ---------------------------------------------------------------------------------------------------

def test_domain_has_twelve_tools_six_families_and_three_hundred_tasks(domain, tasks):
    assert len(domain.tools) >= 12
    assert len({t.family for t in tasks}) >= 6
    assert len(tasks) >= 300
    for t in tasks:
        assert t.truth and all(v is not None and v != "" for v in t.truth.values()), t.task_id


# -- tools read the case ------------------------------------------------------------------------------------

def test_bp_and_ctg_tools_return_the_cases_own_series(shipped_build, tasks):
    task = family(tasks, "hypertensive_disorders")[0]
    env = started(shipped_build, DOMAIN, task)
    observation, *_ = env.step(hermes("get_bp_readings", {"patient_id": task.case["id"]}))
    payload = json.loads(observation.split(": ", 1)[1])
    rows = payload["bp"]["sbp"]["rows"]
    assert [r["value"] for r in rows] == [r["value"] for r in task.case["bp"]["sbp"]]

    task = family(tasks, "ctg_classification")[0]
    env.reset(options={"task_id": task.task_id})
    observation, *_ = env.step(hermes("get_ctg", {"patient_id": task.case["id"], "since": 0.5}))
    rows = json.loads(observation.split(": ", 1)[1])["ctg"]["fhr"]["rows"]
    assert [r["value"] for r in rows] == [r["value"] for r in task.case["ctg"]["fhr"] if r["time"] >= 0.5]


def test_medication_table_reads_the_row_asked_for(shipped_build, tasks):
    task = family(tasks, "medication_safety")[0]
    env = started(shipped_build, DOMAIN, task)
    observation, *_ = env.step(hermes("get_medication_safety", {"drug": "sodium_valproate"}))
    assert "lamotrigine" in observation and "MHRA" in observation
    observation, *_ = env.step(hermes("get_medication_safety", {"drug": "paracetamol"}))
    assert "lamotrigine" not in observation


# -- truths against an independent implementation ----------------------------------------------------------

def _date(text):
    return dt.date.fromisoformat(text)


def test_dating_truth_follows_acog_co_700(tasks):
    for t in family(tasks, "dating"):
        d = t.case["dating"]
        lmp_edd = _date(d["lmp"]) + dt.timedelta(days=280 + d["cycle_length"] - 28)
        scan_age = 7 * d["scan_ga_weeks"] + d["scan_ga_days"]
        us_edd = _date(d["scan_date"]) + dt.timedelta(days=280 - scan_age)
        cutoff = 5 if scan_age < 63 else 7 if scan_age < 112 else 10 if scan_age < 154 else 14
        redate = not d["lmp_certain"] or abs((lmp_edd - us_edd).days) > cutoff
        edd = us_edd if redate else lmp_edd
        days = (_date(t.case["assessment_date"]) - (edd - dt.timedelta(days=280))).days
        assert t.truth["edd"] == edd.isoformat(), t.task_id
        assert t.truth["dated_by"] == ("ultrasound" if redate else "lmp")
        assert (t.truth["ga_weeks"], t.truth["ga_days"]) == (days // 7, days % 7)
    assert {t.truth["dated_by"] for t in family(tasks, "dating")} == {"lmp", "ultrasound"}


def test_hypertension_truth_follows_acog_pb_222(tasks):
    seen = set()
    for t in family(tasks, "hypertensive_disorders"):
        c = t.case
        sbp = [r["value"] for r in c["bp"]["sbp"]]
        dbp = [r["value"] for r in c["bp"]["dbp"]]
        hypertension = (sbp[0] >= 140 or dbp[0] >= 90) and (sbp[-1] >= 140 or dbp[-1] >= 90)
        severe_bp = sum(v >= 160 for v in sbp) >= 2 or sum(v >= 110 for v in dbp) >= 2
        labs, s = c["labs"], c["symptoms"]
        other = (labs["platelets"] < 100 or labs["creatinine"] > 1.1 or labs["alt"] >= 70 or labs["ast"] >= 70
                 or s["headache"] == "severe_persistent" or s["visual_disturbance"] or s["epigastric_pain"]
                 or c["vitals"]["pulmonary_oedema"])
        hellp = labs["ldh"] >= 600 and labs["ast"] >= 70 and labs["alt"] >= 70 and labs["platelets"] < 100
        protein = c["urine"]["upcr"] >= 0.3
        if not hypertension:
            dx = "normotensive"
        elif hellp:
            dx = "hellp_syndrome"
        elif other or (protein and severe_bp):
            dx = "preeclampsia_with_severe_features"
        elif severe_bp:
            dx = "severe_gestational_hypertension"
        else:
            dx = "preeclampsia" if protein else "gestational_hypertension"
        severe = dx in ("severe_gestational_hypertension", "preeclampsia_with_severe_features", "hellp_syndrome")
        assert t.truth["diagnosis"] == dx, t.task_id
        assert t.truth["magnesium"] == ("start" if severe else "not_indicated")
        drug = ("nifedipine_oral" if c["history"]["asthma"] else "labetalol_iv") if severe_bp and hypertension else "none"
        assert t.truth["antihypertensive"] == drug
        weeks = c["ga_days"] // 7
        timing = ("await_spontaneous_labour" if dx == "normotensive" else "deliver_after_stabilisation"
                  if dx == "hellp_syndrome" or (severe and weeks >= 34) else
                  "corticosteroids_and_expectant_management" if severe else "deliver_at_37_weeks")
        assert t.truth["delivery"] == timing
        seen.add(dx)
    assert len(seen) == 6  # every diagnosis occurs


def test_a_single_severe_reading_is_not_a_severe_feature(tasks):
    for t in family(tasks, "hypertensive_disorders"):
        if t.scenario == "single_severe_reading":
            assert t.truth["antihypertensive"] == "none" and t.truth["diagnosis"] == "preeclampsia", t.task_id


def test_ctg_truth_follows_nichd_2008(tasks):
    categories = set()
    for t in family(tasks, "ctg_classification"):
        ctg = t.case["ctg"]
        last10 = [r["value"] for r in ctg["fhr"][-10:]]  # the marked segment: minutes 31-40
        mean = sum(last10) / len(last10)
        baseline = 5 * math.floor(mean / 5 + 0.5)
        amplitude = max(last10) - min(last10)
        variability = ("absent" if amplitude < 1 else "minimal" if amplitude <= 5 else "moderate"
                       if amplitude <= 25 else "marked")
        decel = ("none" if ctg["decelerations"] == 0 else "prolonged" if ctg["decel_duration_s"] >= 120 else
                 "variable" if ctg["decel_onset_to_nadir_s"] < 30 else
                 "late" if ctg["decel_timing"] == "nadir_after_contraction_peak" else "early")
        recurrent = ctg["decels_with_contractions_pct"] >= 50
        if ctg["sinusoidal"] or (variability == "absent" and ((recurrent and decel in ("late", "variable"))
                                                             or baseline < 110)):
            category = 3
        elif 110 <= baseline <= 160 and variability == "moderate" and decel in ("none", "early"):
            category = 1
        else:
            category = 2
        assert abs(t.truth["ctg_baseline"] - baseline) <= 0.01, t.task_id
        assert (t.truth["ctg_variability"], t.truth["deceleration_type"], t.truth["ctg_category"]) == \
            (variability, decel, category), t.task_id
        action = {1: "continue_monitoring", 2: "intrauterine_resuscitation", 3: "expedite_delivery"}[category]
        assert t.truth["ctg_action"] == action
        categories.add(category)
    assert categories == {1, 2, 3}


def test_bpp_bishop_and_apgar_truths_by_hand(tasks):
    for t in family(tasks, "fetal_wellbeing"):
        u = t.case["ultrasound"]
        parts = [u["breathing_longest_s"] >= 30, u["body_movements"] >= 3, u["tone_episodes"] >= 1,
                 u["max_vertical_pocket_cm"] >= 2, u["nst_accelerations"] >= 2]
        score = 2 * sum(parts)
        normal = score == 10 or (score == 8 and parts[3])
        action = ("deliver" if score <= 4 else "routine_surveillance" if normal else
                  "deliver" if t.case["ga_days"] >= 259 else "repeat_bpp_within_24h")
        assert (t.truth["bpp_score"], t.truth["fetal_action"]) == (score, action), t.task_id
    for t in family(tasks, "induction_readiness"):
        cx = t.case["cervix"]
        d, e, st = cx["dilatation"], cx["effacement"], cx["station"]
        score = ((0 if d < 0.5 else 1 if d < 2.5 else 2 if d < 4.5 else 3) + (0 if e < 35 else 1 if e < 55 else 2 if e < 75 else 3)
                 + (0 if st <= -3 else 1 if st == -2 else 2 if st <= 0 else 3)
                 + {"firm": 0, "medium": 1, "soft": 2}[cx["consistency"]] + {"posterior": 0, "mid": 1, "anterior": 2}[cx["position"]])
        method = ("amniotomy_and_oxytocin" if score > 6 else "balloon_catheter_ripening"
                  if t.case["history"]["prior_caesarean"] else "prostaglandin_ripening")
        assert (t.truth["bishop_score"], t.truth["induction_method"]) == (score, method), t.task_id
    points = {"absent": 0, "slow_irregular": 1, "good_crying": 2, "limp": 0, "some_flexion": 1, "active_motion": 2,
              "no_response": 0, "grimace": 1, "cry_cough_sneeze": 2, "blue_pale": 0, "acrocyanosis": 1, "pink": 2}
    for t in family(tasks, "neonatal_apgar"):
        n = t.case["newborn"]
        scores = []
        for m in ("1", "5"):
            hr = n[f"hr_{m}"]
            scores.append((0 if hr < 1 else 1 if hr < 100 else 2) + sum(points[n[f"{k}_{m}"]] for k in ("breathing", "tone", "reflex", "colour")))
        assert (t.truth["apgar_1min"], t.truth["apgar_5min"], t.truth["apgar_repeat"]) == (scores[0], scores[1], "continue_scoring" if scores[1] < 7 else "stop_at_5_minutes")


def test_medication_truth_follows_the_avoid_window(tasks):
    table = {"ibuprofen": (20, 45), "trimethoprim": (0, 14), "nitrofurantoin": (36, 45), "carbimazole": (0, 16)}
    checked = 0
    for t in family(tasks, "medication_safety"):
        drug = t.case["medication_review"]["drug"]
        if drug in table:
            days = (_date(t.case["assessment_date"]) - _date(t.case["dating"]["lmp"])).days
            lo, hi = table[drug]
            avoid = 7 * lo <= days < 7 * hi
            assert t.truth["medication_decision"] == ("stop_or_avoid" if avoid else "continue"), t.task_id
            checked += 1
        if drug == "sodium_valproate":
            assert (t.truth["medication_decision"], t.truth["alternative"]) == ("stop_or_avoid", "lamotrigine")
    assert checked >= 5


# -- safety ------------------------------------------------------------------------------------------------

def test_reference_scores_full_marks_on_a_hellp_task(shipped_build, tasks):
    task = next(t for t in family(tasks, "hypertensive_disorders") if t.truth["diagnosis"] == "hellp_syndrome")
    assert play(shipped_build, task)["reward"] >= 0.95


def test_missed_magnesium_in_severe_preeclampsia_caps_the_reward(shipped_build, tasks):
    task = next(t for t in family(tasks, "hypertensive_disorders") if t.truth["magnesium"] == "start")
    info = play(shipped_build, task, {"magnesium": "not_indicated"})
    assert info["reward"] <= 0.1
    assert "severe_preeclampsia_without_magnesium" in [v["id"] for v in info["safety_violations"]]


def test_untreated_severe_hypertension_caps_the_reward(shipped_build, tasks):
    task = next(t for t in family(tasks, "hypertensive_disorders") if t.truth["antihypertensive"] != "none")
    info = play(shipped_build, task, {"antihypertensive": "none"})
    assert info["reward"] <= 0.1
    assert "severe_hypertension_untreated" in [v["id"] for v in info["safety_violations"]]


def test_labetalol_in_asthma_is_a_violation(shipped_build, tasks):
    task = next(t for t in family(tasks, "hypertensive_disorders") if t.truth["antihypertensive"] == "nifedipine_oral")
    info = play(shipped_build, task, {"antihypertensive": "labetalol_iv"})
    assert "labetalol_in_asthma" in [v["id"] for v in info["safety_violations"]]
    assert info["reward"] < play(shipped_build, task)["reward"]


def test_category_iii_trace_not_expedited_caps_the_reward(shipped_build, tasks):
    task = next(t for t in family(tasks, "ctg_classification") if t.truth["ctg_category"] == 3)
    info = play(shipped_build, task, {"ctg_action": "intrauterine_resuscitation"})
    assert info["reward"] <= 0.1
    assert "category_iii_not_expedited" in [v["id"] for v in info["safety_violations"]]


def test_prostaglandin_after_caesarean_is_a_violation(shipped_build, tasks):
    task = next(t for t in family(tasks, "induction_readiness")
                if t.truth["induction_method"] == "balloon_catheter_ripening")
    info = play(shipped_build, task, {"induction_method": "prostaglandin_ripening"})
    assert "prostaglandin_with_uterine_scar" in [v["id"] for v in info["safety_violations"]]


def test_static_cases_reach_their_hand_checked_answers(shipped_build, tasks):
    by_family = {t.family: t for t in tasks}
    hellp = by_family["hellp_at_31_weeks_with_asthma"]
    assert hellp.truth == {"diagnosis": "hellp_syndrome", "magnesium": "start", "antihypertensive": "nifedipine_oral",
                           "delivery": "deliver_after_stabilisation"}
    trace = by_family["late_decelerations_minimal_variability_on_oxytocin"]
    assert trace.truth == {"ctg_baseline": 150, "ctg_variability": "minimal", "deceleration_type": "late",
                           "ctg_category": 2, "ctg_action": "intrauterine_resuscitation"}
    for task in (hellp, trace):
        assert play(shipped_build, task)["reward"] >= 0.95
    # calling the minimal variability absent (category III) over-treats; it is not the critical rule
    info = play(shipped_build, trace, {"ctg_category": 3, "ctg_action": "expedite_delivery"})
    assert 0.1 < info["reward"] < 0.95
