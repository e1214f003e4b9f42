"""The drug_interaction domain: its tools return the case and the cited tables, its truths agree with an
independent reading of the labels and formulas, its critical rules cap the reward, and the rows vendored from
drug-interaction-mcp and cross-checked against open-medicine match those packages when they are installed."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from medgym.runtime.agents.oracle import hermes
from medgym.runtime.build import Build
from episodes import domain_tasks, replay, result, started

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DIR = ROOT / "specs" / "domains" / "drug_interaction"
NAME = "drug_interaction"


def all_tasks(build):
    return domain_tasks(build, NAME)


def tasks_of(build, family, scenario=None):
    return [t for t in all_tasks(build) if t.family == family and (scenario is None or t.scenario == scenario)]


def call(env, tool, **arguments):
    return result(env.step(hermes(tool, arguments))[0], tool)


def play(build, task, **changes):
    """The reference work-up, then the reference answer with `changes`: (reward, info)."""
    return replay(build, NAME, task, changes)


# ---------------------------------------------------------------- size and shape
def test_the_domain_has_its_tools_families_and_tasks(shipped_build):
    domain = Build.open(shipped_build).domain(NAME)
    tasks = all_tasks(shipped_build)
    families = {t.family for t in tasks}
    assert len(domain.tools) >= 12
    assert len(tasks) >= 300 and len(families) >= 6
    assert all(sum(t.family == f for t in tasks) >= 40 for f in families)
    for t in tasks:  # no empty truth: every answer field the review submits has a value
        assert t.truth["problems"] and t.truth["drug"] and t.truth["action"], t.task_id


# ---------------------------------------------------------------- tools read the case and the tables
def test_lookups_return_the_patients_own_values(shipped_build):
    task = tasks_of(shipped_build, "qt_prolongation")[0]
    env = started(shipped_build, NAME, task)
    pid = task.case["id"]
    assert call(env, "get_medication_list", patient_id=pid)["medications"]["names"] == task.case["medications"]["names"]
    labs = call(env, "get_lab_results", patient_id=pid)["labs"]
    assert labs["potassium"]["value"] == task.case["labs"]["potassium"]
    assert "magnesium" not in labs  # not routine: it has to be ordered
    assert "nothing has been ordered" in env.step(hermes("get_test_results", {"patient_id": pid}))[0]
    env.step(hermes("order_tests", {"patient_id": pid, "tests": ["magnesium"]}))
    tests = call(env, "get_test_results", patient_id=pid)["tests"]
    assert tests["magnesium"]["value"] == task.case["tests"]["magnesium"] and "tsh" not in tests
    ecg = call(env, "get_ecg", patient_id=pid)["ecg"]
    assert ecg["qt"] == {"value": task.case["ecg"]["qt"], "unit": "ms"}
    assert ecg["heart_rate"]["value"] == task.case["ecg"]["heart_rate"]
    profile = call(env, "get_patient_profile", patient_id=pid)["profile"]
    assert profile["weight"]["value"] == task.case["profile"]["weight"] and profile["sex"] == task.case["profile"]["sex"]


def test_the_interaction_table_finds_class_rows_in_either_order(shipped_build):
    env = started(shipped_build, NAME, all_tasks(shipped_build)[0])
    row = call(env, "check_interaction", drug_a="apixaban", drug_b="naproxen")
    assert row["found"] and row["matched"] == "class" and row["severity"] == "major"
    assert "Davidson" in row["source"]
    specific = call(env, "check_interaction", drug_a="clarithromycin", drug_b="simvastatin")
    assert specific["severity"] == "contraindicated" and specific["drug_b"] == "strong_cyp3a4_inhibitor"
    assert call(env, "check_interaction", drug_a="citalopram", drug_b="clarithromycin")["severity"] == "contraindicated"
    assert call(env, "check_interaction", drug_a="haloperidol", drug_b="ondansetron")["severity"] == "major"
    assert call(env, "check_interaction", drug_a="amoxicillin", drug_b="citalopram")["found"] is False
    capped = call(env, "check_interaction", drug_a="diltiazem", drug_b="simvastatin")
    assert capped["max_daily_dose_mg"] == 10


def test_the_cross_reactivity_table_follows_side_chains(shipped_build):
    env = started(shipped_build, NAME, all_tasks(shipped_build)[0])
    look = lambda allergy, drug: call(env, "check_cross_reactivity", allergy=allergy, drug=drug)["action"]  # noqa: E731
    assert look("aminopenicillin_anaphylaxis", "cefalexin") == "stop_or_avoid"
    assert look("aminopenicillin_anaphylaxis", "ceftriaxone") == "proceed"
    assert look("aminopenicillin_anaphylaxis", "meropenem") == "proceed"
    assert look("aminopenicillin_non_anaphylactic", "flucloxacillin") == "stop_or_avoid"
    assert look("sulfonamide_antibiotic", "furosemide") == "proceed"


# ---------------------------------------------------------------- truths, re-derived independently
def cockcroft_gault(age, weight, creatinine, sex):
    crcl = (140 - age) * weight / (72 * creatinine)
    return round(crcl * (0.85 if sex == "female" else 1.0), 1)


def ckd_epi_2021(creatinine, age, sex):
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine / kappa
    egfr = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938 ** age * (1.012 if sex == "female" else 1)
    return math.floor(egfr + 0.5)


def label_dose(drug, age, weight, creatinine, crcl, egfr, current):
    """(dose per administration, frequency) after review, read from the labels without the domain's table."""
    if drug == "rivaroxaban":  # Xarelto PI 2.2: > 50: 20 mg; 15-50: 15 mg; < 15: avoid
        return (20, "once_daily") if crcl > 50 else (15, "once_daily") if crcl >= 15 else (0, "none")
    if drug == "dabigatran":  # Pradaxa PI 2.3: > 30: 150 mg bd; 15-30: 75 mg bd; < 15: avoid
        return (150, "twice_daily") if crcl > 30 else (75, "twice_daily") if crcl >= 15 else (0, "none")
    if drug == "apixaban":  # Eliquis PI 2.2: 2.5 mg bd with two of age >= 80, weight <= 60 kg, creatinine >= 1.5
        criteria = (age >= 80) + (weight <= 60) + (creatinine >= 1.5)
        return (2.5, "twice_daily") if criteria >= 2 else (5, "twice_daily")
    if drug == "enoxaparin":  # Lovenox PI 2.2: 1 mg/kg every 12 h; CrCl < 30: 1 mg/kg once daily
        return (weight, "twice_daily") if crcl >= 30 else (weight, "once_daily")
    if drug == "metformin":  # FDA 2016 / KDIGO 2022: < 30 stop; 30-44 at most 1000 mg/day
        return (0, "none") if egfr < 30 else (min(current, 500), "twice_daily") if egfr < 45 else (current, "twice_daily")
    if drug == "gabapentin":  # Neurontin PI table 2
        if crcl >= 60:
            return current, "three_times_daily"
        return (700, "twice_daily") if crcl >= 30 else (700, "once_daily") if crcl >= 15 else (300, "once_daily")
    if drug == "nitrofurantoin":  # MHRA 2014: avoid below eGFR 45
        return (100, "twice_daily") if egfr >= 45 else (0, "none")
    raise AssertionError(drug)


def test_renal_truths_match_the_labels_read_independently(shipped_build):
    tasks = tasks_of(shipped_build, "doac_renal_dosing") + tasks_of(shipped_build, "renal_dose_adjustment")
    assert {t.truth["action"] for t in tasks} == {"proceed", "adjust_dose", "stop_or_avoid"}
    for t in tasks:
        p, labs = t.case["profile"], t.case["labs"]
        current = t.vars["current_dose"]
        assert t.truth["crcl"] == pytest.approx(cockcroft_gault(p["age"], p["weight"], labs["creatinine"], p["sex"]), abs=0.11)
        assert t.truth["egfr"] == pytest.approx(ckd_epi_2021(labs["creatinine"], p["age"], p["sex"]), abs=1)
        dose, frequency = label_dose(t.truth["drug"], p["age"], p["weight"], labs["creatinine"], t.truth["crcl"],
                                     t.truth["egfr"], current)
        assert (t.truth["dose_mg"], t.truth["frequency"]) == (pytest.approx(dose), frequency), t.task_id
        assert (t.truth["action"] == "stop_or_avoid") == (dose == 0)
        assert t.truth["critical_if_given"] == (dose == 0)


def test_qtc_truths_are_fridericia_on_the_ecg(shipped_build):
    tasks = tasks_of(shipped_build, "qt_prolongation")
    for t in tasks:
        qt, hr, sex = t.case["ecg"]["qt"], t.case["ecg"]["heart_rate"], t.case["profile"]["sex"]
        qtc = math.floor(qt / (60 / hr) ** (1 / 3) + 0.5)
        assert t.truth["qtc"] == qtc
        assert ("prolonged_qtc" in t.truth["problems"]) == (qtc >= (450 if sex == "male" else 460))
        assert ("hypokalaemia" in t.truth["problems"]) == (t.case["labs"]["potassium"] < 3.5)
    assert any("prolonged_qtc" in t.truth["problems"] for t in tasks)
    assert any(t.truth["problems"] == ["no_problem"] for t in tasks)


# ---------------------------------------------------------------- rewards and safety
def critical(info):
    return [v for v in info["safety_violations"] if v["severity"] == "critical"]


def test_continuing_a_contraindicated_drug_caps_the_reward(shipped_build):
    cases = [
        tasks_of(shipped_build, "statin_cyp3a4", "simvastatin_strong_inhibitor")[0],
        next(t for t in tasks_of(shipped_build, "renal_dose_adjustment", "metformin") if t.truth["action"] == "stop_or_avoid"),
        next(t for t in tasks_of(shipped_build, "pregnancy_lactation") if t.truth["critical_if_given"]),
        next(t for t in tasks_of(shipped_build, "qt_prolongation") if t.truth["critical_if_given"]),
    ]
    for task in cases:
        reward, _ = play(shipped_build, task)
        assert reward >= 0.95, task.task_id
        reward, info = play(shipped_build, task, action="proceed")
        assert reward <= 0.1 and critical(info), task.task_id


def test_a_full_dose_doac_below_its_cut_off_is_critical(shipped_build):
    task = next(t for t in tasks_of(shipped_build, "doac_renal_dosing", "rivaroxaban") if t.truth["dose_mg"] == 15)
    reward, info = play(shipped_build, task, dose_mg=20)
    assert reward <= 0.1 and any(v["id"] == "dose_above_renal_band" for v in critical(info))
    enox = next(t for t in tasks_of(shipped_build, "doac_renal_dosing", "enoxaparin") if t.truth["frequency"] == "once_daily")
    reward, info = play(shipped_build, enox, frequency="twice_daily")
    assert reward <= 0.1 and critical(info)


def test_the_reward_is_monotone_in_correctness(shipped_build):
    for task in tasks_of(shipped_build, "anticoagulant_bleeding", "nsaid")[:4]:
        wrong = {"problems": ["no_problem"], "drug": "amlodipine", "action": "proceed", "alternative": "none"}
        rewards = [play(shipped_build, task, **answer)[0] for answer in (
            wrong, dict(wrong, drug=task.truth["drug"]), dict(wrong, drug=task.truth["drug"], problems=task.truth["problems"]), {})]
        assert rewards[0] == 0.0 and rewards == sorted(rewards) and rewards[-1] >= 0.95, rewards


def test_an_over_the_counter_nsaid_is_found_only_by_asking(shipped_build):
    task = tasks_of(shipped_build, "anticoagulant_bleeding", "otc_ibuprofen")[0]
    env = started(shipped_build, NAME, task)
    meds = call(env, "get_medication_list", patient_id=task.case["id"])["medications"]["names"]
    assert task.truth["drug"] not in meds
    answer = call(env, "ask_patient", patient_id=task.case["id"], question="Do you buy any painkillers yourself?")
    assert answer["topic"] == "otc" and task.truth["drug"] in answer["answer"]


# ---------------------------------------------------------------- vendored reference data
def test_the_label_interaction_tool_returns_the_vendored_rows(shipped_build):
    env = started(shipped_build, NAME, all_tasks(shipped_build)[0])
    row = call(env, "check_label_interaction", drug_a="warfarin", drug_b="paracetamol")
    assert row["found"] and row["severity"] == "caution" and row["drug_a"] in ("acetaminophen", "warfarin")
    assert row["source"].startswith("drug-interaction-mcp 0.1.0 (Pillright 2026, MIT licence)")
    assert call(env, "check_label_interaction", drug_a="linezolid", drug_b="ssri")["severity"] == "danger"


@pytest.mark.skipif(importlib.util.find_spec("drug_interaction_mcp") is None, reason="drug-interaction-mcp not installed")
def test_the_vendored_rows_are_the_packages():
    sys.path.insert(0, str(Path(__file__).parent))
    from drug_interaction_vendor import render, rows

    assert (DOMAIN_DIR / "tables" / "rx_label_interactions.yaml").read_text() == render()
    from drug_interaction_mcp.interactions import INTERACTIONS

    vendored, _, dropped = rows()
    assert len(vendored) + len(dropped) == len(INTERACTIONS)


@pytest.mark.skipif(importlib.util.find_spec("open_medicine") is None, reason="open-medicine not installed")
def test_renal_bands_agree_with_open_medicine():
    import open_medicine

    data = json.loads((Path(open_medicine.__file__).parent / "mcp" / "calculators" / "data" / "renal_dose_adjustments.json").read_text())
    ours = {r["drug"]: r for r in yaml.safe_load((DOMAIN_DIR / "tables" / "rx_renal_dosing.yaml").read_text())["rows"]}
    for drug, cuts in {"gabapentin": ["cut_1", "cut_2", "cut_3"], "metformin": ["cut_1", "cut_2"], "spironolactone": ["cut_1", "cut_2"]}.items():
        theirs = data[drug]
        assert theirs["label_renal_metric"] == ours[drug]["measure"]
        lower_edges = sorted((t["min"] for t in theirs["tiers"] if t["min"]), reverse=True)
        assert lower_edges == [ours[drug][c] for c in cuts], drug
    contraindicated = {t["adjustment_type"] for t in data["metformin"]["tiers"] if t["max"] == 29}
    assert contraindicated == {"contraindicated"} and ours["metformin"]["dose_4"] == 0
