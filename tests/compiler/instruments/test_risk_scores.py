"""Clinical risk scores: child_pugh, psi_port, wells_dvt, perc, has_bled, rcri, caprini_2005, charlson,
centor_mcisaac, feverpain, glasgow_blatchford, apache_ii, sofa, lace.

Differential tests run the compiled instruments against two independent implementations that install
offline: open-medicine 0.12 (MIT; open_medicine/mcp/calculators/*.py) and medcalc-bench 1.7.0 (Apache-2.0,
import name `medcalc`; the MedCalc-Bench calculators). Inputs are seeded random samples across each input's
range plus every published cut-off. Neither package's answers are treated as ground truth: where they
differ from the original publication, the test says so, restricts the agreement test to the inputs the
defect cannot reach, and pins the disagreement as a strict xfail citing the paper. Neither package has
LACE; it is checked against a points table written here from van Walraven 2010, independently of the
.score file. FeverPAIN is only in medcalc; LACE, FeverPAIN and the PSI hypoxaemia input have no second
implementation.

Disagreements (each is tested below, by name):
- child_pugh vs medcalc: bilirubin exactly 2.0 mg/dL scores nothing in medcalc (it tests 2 < bili < 3),
  exactly 3.0 scores 3 (bili >= 3), and albumin exactly 2.8 g/dL scores 3. Pugh 1973: 2-3 mg/100 ml and
  2.8-3.5 g/100 ml score 2.
  medcalc has no primary-biliary-cholangitis thresholds (not compared).
- psi_port vs medcalc: medcalc has no step 1 (class I) and returns the point sum for everyone - it is
  compared with `total`, which is that sum (a documented transformation). medcalc scores temperature
  > 39.9 degC; Fine 1997 prints >= 40 degC: they differ only between 39.9 and 40.0 (xfail at 39.95).
  open-medicine returns 0 for class I and the point sum otherwise (compared that way).
- wells_dvt, perc, has_bled, rcri, centor_mcisaac, feverpain: no disagreement (medcalc's split items -
  bedridden / surgery, previous PE / DVT - are mapped to the single item they score).
- caprini_2005 vs open-medicine: open-medicine lacks two items of the 2005 form, "history of prior major
  surgery (< 1 month)" (1) and "hip, pelvis or leg fracture (< 1 month)" (5), and the form's "other risk
  factors" line (xfail). vs medcalc (which follows a later, MDCalc-style form): it never adds the points
  of its yes/no items (its loop builds the explanation but not the sum), so only age, surgery type,
  mobility and BMI are compared; it also scores BMI > 25 as 2 (Caprini 2005: 1). Both are xfail.
- charlson: both packages cap age points at 4 (age >= 80); Charlson 1994 adds 1 point per decade over 40
  without a cap, so they differ from age 90 (xfail). The packages' booleans for graded conditions are fed
  one level at a time (the .score file takes each graded condition as one input).
- glasgow_blatchford vs open-medicine: it scores syncope, hepatic disease and cardiac failure 1 point each;
  Blatchford 2000 scores them 2 (xfail). vs medcalc: boundary values fall through its bands -
  haemoglobin exactly 12.0 g/dL in a man, exactly 10.0 in a woman, BUN exactly 70 mg/dL score 0, and
  13.0 in a man / 12.0 in a woman score 1; Blatchford 2000 bands are closed below (xfail each).
  Both packages take BUN mg/dL: the test passes BUN = urea x 2.8, the factor their cut-offs use
  (18.2 / 22.4 / 28 / 70 mg/dL = 6.5 / 8 / 10 / 25 mmol/L).
- apache_ii vs open-medicine: no disagreement (it has no HCO3 alternative; not compared).
  vs medcalc: it has no points for the low side of MAP, heart rate, respiratory rate, pH, sodium,
  potassium, haematocrit and white cells; adds the GCS instead of 15 - GCS; gives age exactly 45 and 75 no
  points; scores "Nonelective" (non-operative) chronic health 0 instead of 5; and scores creatinine
  >= 1.5 only when a renal-failure flag is set. Knaus 1985 (Figure 1) scores all of these. The agreement
  test runs on the domain where none of this applies and undoes the GCS handling explicitly
  (medcalc - GCS + (15 - GCS)); each defect is a strict xfail.
- sofa vs open-medicine: it has no respiratory-support input and scores P/F < 200 as 3-4 for everyone;
  Vincent 1996 requires respiratory support for grades 3-4 (compared with support, xfail without). It
  has no dobutamine input (not compared). vs medcalc: it gives 2 cardiovascular points to every patient
  with MAP >= 70 and no vasopressor, and 2 points to any patient on noradrenaline or adrenaline without
  dopamine (the dopamine <= 5 branch comes first); Vincent 1996: 0 and 3-4 (xfail). It ignores
  creatinine when urine output is given (not compared: only creatinine is passed).
"""
import itertools
import random
import re

import pytest


pytest.importorskip("open_medicine")
pytest.importorskip("medcalc")
from medcalc import apache_ii as mc_apache  # noqa: E402
from medcalc import caprini_score as mc_caprini  # noqa: E402
from medcalc import cardiac_risk_index as mc_rcri  # noqa: E402
from medcalc import cci as mc_cci  # noqa: E402
from medcalc import centor_score as mc_centor  # noqa: E402
from medcalc import child_pugh_score as mc_child  # noqa: E402
from medcalc import feverpain as mc_feverpain  # noqa: E402
from medcalc import glasgow_bleeding_score as mc_gbs  # noqa: E402
from medcalc import has_bled_score as mc_hasbled  # noqa: E402
from medcalc import perc_rule as mc_perc  # noqa: E402
from medcalc import psi_score as mc_psi  # noqa: E402
from medcalc import sofa as mc_sofa  # noqa: E402
from medcalc import wells_criteria_dvt as mc_wells  # noqa: E402
from open_medicine.mcp.calculators import apache2 as om_apache  # noqa: E402
from open_medicine.mcp.calculators import caprini as om_caprini  # noqa: E402
from open_medicine.mcp.calculators import centor_mcisaac as om_centor  # noqa: E402
from open_medicine.mcp.calculators import charlson as om_charlson  # noqa: E402
from open_medicine.mcp.calculators import child_pugh as om_child  # noqa: E402
from open_medicine.mcp.calculators import glasgow_blatchford as om_gbs  # noqa: E402
from open_medicine.mcp.calculators import hasbled as om_hasbled  # noqa: E402
from open_medicine.mcp.calculators import perc as om_perc  # noqa: E402
from open_medicine.mcp.calculators import psi_port as om_psi  # noqa: E402
from open_medicine.mcp.calculators import rcri as om_rcri  # noqa: E402
from open_medicine.mcp.calculators import sofa as om_sofa  # noqa: E402
from open_medicine.mcp.calculators import wells_dvt as om_wells  # noqa: E402

NAMES = ("child_pugh", "psi_port", "wells_dvt", "perc", "has_bled", "rcri", "caprini_2005", "charlson",
         "centor_mcisaac", "feverpain", "glasgow_blatchford", "apache_ii", "sofa", "lace")


def _rng(name):
    return random.Random(f"risk-scores-{name}")


def _pick(rng, cutoffs, low, high, digits=1):
    """A published cut-off half the time, otherwise a value on the clinical reporting grid."""
    if rng.random() < 0.5:
        return rng.choice(cutoffs)
    return round(rng.uniform(low, high), digits)


# ------------------------------------------------------------------------------------------ Child-Pugh
CP_ASCITES_OM = {"absent": "none", "slight": "mild", "moderate": "severe"}
CP_ASCITES_MC = {"absent": "Absent", "slight": "Slight", "moderate": "Moderate"}
CP_ENC_OM = {"none": "none", "grade_1_2": "grade_1_2", "grade_3_4": "grade_3_4"}
CP_ENC_MC = {"none": "No Encephalopathy", "grade_1_2": "Grade 1-2", "grade_3_4": "Grade 3-4"}


def _child_samples(pbc_allowed=True, n=3000):
    rng = _rng("child_pugh")
    out = []
    for _ in range(n):
        pbc = pbc_allowed and rng.random() < 0.3
        bili_cuts = [3.9, 4.0, 10.0, 10.1] if pbc else [1.9, 2.0, 3.0, 3.1]
        out.append(dict(bilirubin=_pick(rng, bili_cuts, 0.1, 30), albumin=_pick(rng, [2.7, 2.8, 3.5, 3.6], 1.0, 5.5),
                        inr=_pick(rng, [1.6, 1.7, 2.3, 2.4], 0.8, 6.0, 2),
                        ascites=rng.choice(list(CP_ASCITES_OM)), encephalopathy=rng.choice(list(CP_ENC_OM)),
                        pbc_or_psc=pbc))
    return out


def _om_child(s):
    return om_child.calculate_child_pugh(om_child.ChildPughParams(
        bilirubin=s["bilirubin"], albumin=s["albumin"], inr=s["inr"], ascites=CP_ASCITES_OM[s["ascites"]],
        encephalopathy=CP_ENC_OM[s["encephalopathy"]], is_primary_biliary_cholangitis=s["pbc_or_psc"]))


def _mc_child(s):
    return mc_child.compute_child_pugh_score_explanation({
        "bilirubin": (s["bilirubin"], "mg/dL"), "albumin": (s["albumin"], "g/dL"), "inr": s["inr"],
        "ascites": CP_ASCITES_MC[s["ascites"]], "encephalopathy": CP_ENC_MC[s["encephalopathy"]]})["Answer"]


def test_child_pugh_matches_open_medicine(fn):
    for s in _child_samples():
        ours, theirs = fn["child_pugh"](**s), _om_child(s)
        assert ours["total"] == theirs.value, s
        assert ours["band"] == "class_" + re.search(r"Class ([ABC])", theirs.interpretation).group(1).lower(), s


def test_child_pugh_matches_medcalc_off_the_cutoffs(fn):
    for s in _child_samples(pbc_allowed=False):
        if s["bilirubin"] in (2.0, 3.0) or s["albumin"] == 2.8:
            continue  # the medcalc boundary defects, pinned below
        assert fn["child_pugh"](**s)["total"] == _mc_child(s), s


CP_BASE = dict(bilirubin=1.0, albumin=4.0, inr=1.0, ascites="absent", encephalopathy="none", pbc_or_psc=False)


@pytest.mark.xfail(strict=True, reason="medcalc scores bilirubin exactly 2.0 mg/dL as 0 points (2 < bili < 3); "
                   "Pugh 1973 (Br J Surg 60:646) prints 2-3 mg/100 ml = 2 points")
def test_child_pugh_medcalc_bilirubin_2(fn):
    s = dict(CP_BASE, bilirubin=2.0)
    assert fn["child_pugh"](**s)["total"] == _mc_child(s)


@pytest.mark.xfail(strict=True, reason="medcalc scores bilirubin exactly 3.0 mg/dL as 3 points (bili >= 3); "
                   "Pugh 1973 prints 2-3 mg/100 ml = 2 and > 3 = 3 points")
def test_child_pugh_medcalc_bilirubin_3(fn):
    s = dict(CP_BASE, bilirubin=3.0)
    assert fn["child_pugh"](**s)["total"] == _mc_child(s)


@pytest.mark.xfail(strict=True, reason="medcalc scores albumin exactly 2.8 g/dL as 3 points; Pugh 1973 prints "
                   "2.8-3.5 g/100 ml = 2 points")
def test_child_pugh_medcalc_albumin_2_8(fn):
    s = dict(CP_BASE, albumin=2.8)
    assert fn["child_pugh"](**s)["total"] == _mc_child(s)


def test_child_pugh_monotone_and_in_range(fn):
    rng = _rng("child_pugh-mono")
    for s in _child_samples(n=800):
        total = fn["child_pugh"](**s)["total"]
        assert 5 <= total <= 15
        for key, step in (("bilirubin", 1), ("inr", 0.3), ("albumin", -0.4)):
            worse = dict(s, **{key: max(0.5, round(s[key] + step * rng.uniform(0.1, 3), 2))})
            assert fn["child_pugh"](**worse)["total"] >= total, (s, worse)


def test_child_pugh_albumin_converts_from_g_per_l(fn):
    for grams_per_litre in (27, 28, 30, 35, 36, 42):
        s = dict(CP_BASE, albumin=grams_per_litre / 10)
        assert fn["child_pugh"](**s) == fn["child_pugh"](**dict(s, albumin=f"{grams_per_litre} g/L"))


# ------------------------------------------------------------------------------------------ PSI / PORT
PSI_BOOLS = ("nursing_home_resident", "neoplastic_disease", "liver_disease", "chf", "cerebrovascular_disease",
             "renal_disease", "altered_mental_status", "pleural_effusion")


def _psi_samples(n=3000):
    rng = _rng("psi")
    out = []
    for _ in range(n):
        s = dict(age=rng.choice([18, 30, 49, 50, 51, 70, 71, 90, rng.randint(18, 105)]),
                 sex=rng.choice(["female", "male"]),
                 respiratory_rate=rng.choice([16, 29, 30, rng.randint(8, 50)]),
                 sbp=rng.choice([89, 90, rng.randint(60, 200)]),
                 temperature=_pick(rng, [34.9, 35.0, 39.9, 40.0], 33, 41.5),
                 heart_rate=rng.choice([124, 125, rng.randint(50, 170)]),
                 ph=_pick(rng, [7.34, 7.35], 7.0, 7.6, 2), bun=rng.choice([29, 30, rng.randint(5, 80)]),
                 sodium=rng.choice([129, 130, rng.randint(115, 150)]), glucose=rng.choice([249, 250, rng.randint(60, 500)]),
                 hematocrit=rng.choice([29, 30, rng.randint(18, 50)]), pao2=rng.choice([59, 60, rng.randint(40, 110)]))
        # a third of the samples: no comorbidity or abnormal finding, so step 1 is exercised
        healthy = rng.random() < 0.33
        for key in PSI_BOOLS:
            s[key] = (not healthy) and rng.random() < 0.2
        out.append(s)
    return out


def _om_psi(s):
    return om_psi.calculate_psi_port(om_psi.PSIPortParams(
        age=s["age"], is_female=s["sex"] == "female", nursing_home_resident=s["nursing_home_resident"],
        neoplastic_disease=s["neoplastic_disease"], liver_disease=s["liver_disease"],
        congestive_heart_failure=s["chf"], cerebrovascular_disease=s["cerebrovascular_disease"],
        renal_disease=s["renal_disease"], altered_mental_status=s["altered_mental_status"],
        respiratory_rate=s["respiratory_rate"], systolic_bp=s["sbp"], temperature_celsius=s["temperature"],
        pulse=s["heart_rate"], arterial_ph=s["ph"], bun=s["bun"], sodium=s["sodium"], glucose=s["glucose"],
        hematocrit=s["hematocrit"], pao2=s["pao2"], pleural_effusion=s["pleural_effusion"]))


def _mc_psi(s):
    args = {"age": (s["age"], "years"), "sex": "Female" if s["sex"] == "female" else "Male",
            "heart_rate": (s["heart_rate"], "beats per minute"), "temperature": (s["temperature"], "degrees celsius"),
            "pH": s["ph"], "respiratory_rate": (s["respiratory_rate"], "breaths per minute"),
            "sys_bp": (s["sbp"], "mm Hg"), "bun": (s["bun"], "mg/dL"), "sodium": (s["sodium"], "mmol/L"),
            "glucose": (s["glucose"], "mg/dL"), "hemocratit": (s["hematocrit"], "%"),
            "partial_pressure_oxygen": (s["pao2"], "mm Hg")}
    args.update({k: s[k] for k in PSI_BOOLS})
    return mc_psi.psi_score_explanation(args)["Answer"]


ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}


def test_psi_matches_open_medicine(fn):
    for s in _psi_samples():
        ours, theirs = fn["psi_port"](**s), _om_psi(s)
        assert ours["risk_class"] == ROMAN[re.search(r"Risk Class (I{1,3}|IV|V)\b", theirs.interpretation).group(1)], s
        # open-medicine reports 0 for class I (no score in Fine 1997 step 1) and the point sum otherwise
        assert theirs.value == (0 if ours["class_i_by_step1"] else ours["total"]), s


def test_psi_total_matches_medcalc_point_sum(fn):
    # medcalc has no step 1: it returns the step-2 point sum for every patient, which is our `total`
    for s in _psi_samples():
        assert fn["psi_port"](**s)["total"] == _mc_psi(s), s


@pytest.mark.xfail(strict=True, reason="medcalc scores temperature > 39.9 degC; Fine 1997 (NEJM 336:243, Table 2) "
                   "scores >= 40 degC, so 39.95 differs")
def test_psi_medcalc_temperature_between_39_9_and_40(fn):
    s = dict(_psi_samples(1)[0], temperature=39.95)
    assert fn["psi_port"](**s)["total"] == _mc_psi(s)


def test_psi_class_i_is_decided_by_step_1_only(fn):
    base = dict(age=45, sex="male", respiratory_rate=20, sbp=120, temperature=37.5, heart_rate=100)
    assert fn["psi_port"](**base)["risk_class"] == 1
    # laboratory values and nursing-home residence are not part of step 1
    assert fn["psi_port"](**dict(base, ph=7.2, bun=40, nursing_home_resident=True))["risk_class"] == 1
    for change in (dict(age=51), dict(chf=True), dict(heart_rate=125), dict(respiratory_rate=30), dict(sbp=89),
                   dict(temperature=34.9), dict(temperature=40.0), dict(altered_mental_status=True)):
        assert fn["psi_port"](**dict(base, **change))["risk_class"] >= 2, change


def test_psi_monotone_in_age_and_findings(fn):
    for s in _psi_samples(600):
        r = fn["psi_port"](**s)
        older = fn["psi_port"](**dict(s, age=min(120, s["age"] + 7)))
        assert older["total"] >= r["total"] and older["risk_class"] >= r["risk_class"]
        for key in PSI_BOOLS:
            if not s[key]:
                more = fn["psi_port"](**dict(s, **{key: True}))
                assert more["total"] > r["total"] and more["risk_class"] >= r["risk_class"], key
        assert 1 <= r["risk_class"] <= 5


def test_psi_unit_round_trips(fn):
    s = _psi_samples(1)[0]
    base = fn["psi_port"](**dict(s, temperature=40.0, pao2=60))
    assert fn["psi_port"](**dict(s, temperature="104 degF", pao2="7.99934 kPa")) == base


# ------------------------------------------------------------------------------------------ Wells DVT
WELLS_ITEMS = ("active_cancer", "paralysis_or_immobilisation", "bedridden_or_major_surgery", "deep_vein_tenderness",
               "entire_leg_swollen", "calf_swelling_3cm", "pitting_oedema", "collateral_veins", "previous_dvt",
               "alternative_diagnosis_as_likely")
WELLS_OM = dict(active_cancer="active_cancer", paralysis_or_immobilisation="paralysis_or_casting",
                bedridden_or_major_surgery="bedridden_or_major_surgery",
                deep_vein_tenderness="tenderness_along_deep_veins", entire_leg_swollen="entire_leg_swollen",
                calf_swelling_3cm="calf_swelling_gt_3cm", pitting_oedema="pitting_edema",
                collateral_veins="collateral_superficial_veins", previous_dvt="previously_documented_dvt",
                alternative_diagnosis_as_likely="alternative_diagnosis_likely")
WELLS_MC = dict(active_cancer="active_cancer", paralysis_or_immobilisation="paralysis_paresis_immobilization_in_lower_extreme",
                deep_vein_tenderness="localized_tenderness_on_deep_venuous_system", entire_leg_swollen="leg_swollen",
                calf_swelling_3cm="calf_swelling_3cm", pitting_oedema="pitting_edema_on_symptomatic_leg",
                collateral_veins="collateral_superficial_veins", previous_dvt="previous_dvt",
                alternative_diagnosis_as_likely="alternative_to_dvt_diagnosis")


def test_wells_dvt_matches_both_on_every_combination(fn):
    rng = _rng("wells_dvt")
    for values in itertools.product([False, True], repeat=len(WELLS_ITEMS)):
        s = dict(zip(WELLS_ITEMS, values))
        ours = fn["wells_dvt"](**s)
        om = om_wells.calculate_wells_dvt(om_wells.WellsDVTParams(**{WELLS_OM[k]: v for k, v in s.items()}))
        assert ours["total"] == om.value, s
        expected_band = "low" if om.value <= 0 else "moderate" if om.value <= 2 else "high"
        assert ours["band"] == expected_band and ours["likely"] == (om.value >= 2)
        mc_args = {WELLS_MC[k]: v for k, v in s.items() if k in WELLS_MC}
        # medcalc splits "bedridden >= 3 days" and "major surgery within 12 weeks" (one Wells item)
        split = rng.choice([(True, False), (False, True), (True, True)]) if s["bedridden_or_major_surgery"] else (False, False)
        mc_args["bedridden_for_atleast_3_days"], mc_args["major_surgery_in_last_12_weeks"] = split
        assert ours["total"] == mc_wells.compute_wells_criteria_dvt_explanation(mc_args)["Answer"], s
        assert -2 <= ours["total"] <= 9


def test_wells_dvt_monotone(fn):
    for values in itertools.product([False, True], repeat=len(WELLS_ITEMS)):
        s = dict(zip(WELLS_ITEMS, values))
        total = fn["wells_dvt"](**s)["total"]
        for key in WELLS_ITEMS[:-1]:
            if not s[key]:
                assert fn["wells_dvt"](**dict(s, **{key: True}))["total"] == total + 1
        if not s["alternative_diagnosis_as_likely"]:
            assert fn["wells_dvt"](**dict(s, alternative_diagnosis_as_likely=True))["total"] == total - 2


# ------------------------------------------------------------------------------------------ PERC
PERC_BOOLS = ("unilateral_leg_swelling", "hemoptysis", "recent_surgery_or_trauma", "prior_pe_or_dvt", "hormone_use")


def _perc_samples(n=2000):
    rng = _rng("perc")
    return [dict(age=rng.choice([49, 50, rng.randint(18, 95)]), heart_rate=rng.choice([99, 100, rng.randint(50, 150)]),
                 spo2=rng.choice([94, 95, rng.randint(85, 100)]), gestalt_low_risk=rng.random() < 0.8,
                 **{k: rng.random() < 0.2 for k in PERC_BOOLS}) for _ in range(n)]


def test_perc_matches_both(fn):
    rng = _rng("perc-split")
    for s in _perc_samples():
        ours = fn["perc"](**s)
        om = om_perc.calculate_perc(om_perc.PERCParams(
            age_gte_50=s["age"] >= 50, heart_rate_gte_100=s["heart_rate"] >= 100, spo2_lt_95=s["spo2"] < 95,
            unilateral_leg_swelling=s["unilateral_leg_swelling"], hemoptysis=s["hemoptysis"],
            recent_surgery_or_trauma=s["recent_surgery_or_trauma"], prior_dvt_pe=s["prior_pe_or_dvt"],
            estrogen_use=s["hormone_use"]))
        assert ours["total"] == om.value, s
        pe, dvt = rng.choice([(True, False), (False, True), (True, True)]) if s["prior_pe_or_dvt"] else (False, False)
        mc = mc_perc.compute_perc_rule_explanation({
            "age": (s["age"], "years"), "heart_rate": (s["heart_rate"], "beats per minute"), "oxygen_sat": (s["spo2"], "%"),
            "unilateral_leg_swelling": s["unilateral_leg_swelling"], "hemoptysis": s["hemoptysis"],
            "recent_surgery_or_trauma": s["recent_surgery_or_trauma"], "previous_pe": pe, "previous_dvt": dvt,
            "hormonal_use": s["hormone_use"]})["Answer"]
        assert ours["total"] == mc, s
        assert ours["perc_negative"] == (ours["total"] == 0)
        assert ours["rule_out"] == (ours["total"] == 0 and s["gestalt_low_risk"])


def test_perc_monotone(fn):
    for s in _perc_samples(300):
        total = fn["perc"](**s)["total"]
        for key in PERC_BOOLS:
            assert fn["perc"](**dict(s, **{key: True}))["total"] >= total
        assert fn["perc"](**dict(s, age=s["age"] + 10))["total"] >= total


# ------------------------------------------------------------------------------------------ HAS-BLED
HB_BOOLS = ("uncontrolled_hypertension", "abnormal_renal_function", "abnormal_liver_function", "stroke", "bleeding",
            "labile_inr", "antiplatelet_or_nsaid", "alcohol_excess")


def test_has_bled_matches_both_on_every_combination(fn):
    rng = _rng("has_bled")
    for values in itertools.product([False, True], repeat=len(HB_BOOLS)):
        s = dict(zip(HB_BOOLS, values), age=rng.choice([64, 65, 66, rng.randint(30, 95)]))
        ours = fn["has_bled"](**s)
        om = om_hasbled.calculate_hasbled(om_hasbled.HASBLEDParams(
            hypertension=s["uncontrolled_hypertension"], abnormal_renal_function=s["abnormal_renal_function"],
            abnormal_liver_function=s["abnormal_liver_function"], stroke=s["stroke"], bleeding=s["bleeding"],
            labile_inr=s["labile_inr"], elderly=s["age"] > 65, drugs=s["antiplatelet_or_nsaid"], alcohol=s["alcohol_excess"]))
        mc = mc_hasbled.compute_has_bled_score_explanation({
            "age": (s["age"], "years"), "hypertension": s["uncontrolled_hypertension"],
            "liver_disease_has_bled": s["abnormal_liver_function"], "renal_disease_has_bled": s["abnormal_renal_function"],
            "stroke": s["stroke"], "prior_bleeding": s["bleeding"], "labile_inr": s["labile_inr"],
            "medications_for_bleeding": s["antiplatelet_or_nsaid"],
            "alcoholic_drinks": rng.randint(8, 30) if s["alcohol_excess"] else rng.randint(0, 7)})["Answer"]
        assert ours["total"] == om.value == mc, s
        assert ours["high_risk"] == (ours["total"] >= 3) and 0 <= ours["total"] <= 9
        for key in HB_BOOLS:
            if not s[key]:
                assert fn["has_bled"](**dict(s, **{key: True}))["total"] == ours["total"] + 1


# ------------------------------------------------------------------------------------------ RCRI
RCRI_BOOLS = ("high_risk_surgery", "ischemic_heart_disease", "heart_failure", "cerebrovascular_disease",
              "insulin_treated_diabetes")


def test_rcri_matches_both(fn):
    rng = _rng("rcri")
    for values in itertools.product([False, True], repeat=len(RCRI_BOOLS)):
        for creatinine in (0.8, 2.0, 2.01, 2.1, round(rng.uniform(0.3, 8), 2)):
            s = dict(zip(RCRI_BOOLS, values), creatinine=creatinine)
            ours = fn["rcri"](**s)
            om = om_rcri.calculate_rcri(om_rcri.RCRIParams(
                high_risk_surgery=s["high_risk_surgery"], history_of_ischemic_heart_disease=s["ischemic_heart_disease"],
                history_of_congestive_heart_failure=s["heart_failure"],
                history_of_cerebrovascular_disease=s["cerebrovascular_disease"],
                preoperative_insulin_treatment=s["insulin_treated_diabetes"],
                preoperative_creatinine_above_2=creatinine > 2.0))
            mc = mc_rcri.compute_cardiac_index_explanation({
                "elevated_risk_surgery": s["high_risk_surgery"], "ischemetic_heart_disease": s["ischemic_heart_disease"],
                "congestive_heart_failure": s["heart_failure"], "cerebrovascular_disease": s["cerebrovascular_disease"],
                "pre_operative_insulin_treatment": s["insulin_treated_diabetes"],
                "pre_operative_creatinine": (creatinine, "mg/dL")})["Answer"]
            assert ours["total"] == om.value == mc, s
            assert ours["risk_class"] == min(ours["total"], 3) + 1
            assert ours["band"] == ["class_i", "class_ii", "class_iii", "class_iv"][ours["risk_class"] - 1]


def test_rcri_monotone_in_creatinine(fn):
    base = {k: False for k in RCRI_BOOLS}
    totals = [fn["rcri"](**dict(base, creatinine=c / 10))["total"] for c in range(1, 100)]
    assert totals == sorted(totals) and totals[19] == 0 and totals[20] == 1  # 2.0 -> 0, 2.1 -> 1


# ------------------------------------------------------------------------------------------ Caprini 2005
CAPRINI_BOOL_POINTS = {
    "minor_surgery": 1, "prior_major_surgery": 1, "varicose_veins": 1, "inflammatory_bowel_disease": 1,
    "swollen_legs": 1, "acute_mi": 1, "chf": 1, "sepsis": 1, "serious_lung_disease": 1,
    "abnormal_pulmonary_function": 1, "medical_bed_rest": 1, "other_risk_factor": 1, "ocp_or_hrt": 1,
    "pregnancy_or_postpartum": 1, "obstetric_history": 1, "arthroscopic_surgery": 2, "malignancy": 2,
    "major_surgery": 2, "laparoscopic_surgery": 2, "confined_to_bed": 2, "plaster_cast": 2,
    "central_venous_access": 2, "history_dvt_pe": 3, "family_history_thrombosis": 3, "factor_v_leiden": 3,
    "prothrombin_20210a": 3, "elevated_homocysteine": 3, "lupus_anticoagulant": 3, "anticardiolipin_antibodies": 3,
    "hit": 3, "other_thrombophilia": 3, "lower_extremity_arthroplasty": 5, "hip_pelvis_leg_fracture": 5,
    "stroke": 5, "multiple_trauma": 5, "spinal_cord_injury": 5}
CAPRINI_OM = {  # ours -> open-medicine; prior_major_surgery, hip_pelvis_leg_fracture, other_risk_factor: not in it
    "minor_surgery": "minor_surgery", "varicose_veins": "varicose_veins",
    "inflammatory_bowel_disease": "inflammatory_bowel_disease", "swollen_legs": "swollen_legs", "acute_mi": "acute_mi",
    "chf": "chf", "sepsis": "sepsis", "serious_lung_disease": "serious_lung_disease",
    "abnormal_pulmonary_function": "abnormal_pulmonary_function", "medical_bed_rest": "medical_patient_at_bed_rest",
    "ocp_or_hrt": "ocp_or_hrt", "pregnancy_or_postpartum": "pregnancy_or_postpartum",
    "obstetric_history": "history_unexplained_stillborn_or_recurrent_abortion",
    "arthroscopic_surgery": "arthroscopic_surgery", "malignancy": "malignancy", "major_surgery": "major_open_surgery",
    "laparoscopic_surgery": "laparoscopic_surgery", "confined_to_bed": "confined_to_bed",
    "plaster_cast": "immobilizing_plaster_cast", "central_venous_access": "central_venous_access",
    "history_dvt_pe": "history_dvt_pe", "family_history_thrombosis": "family_history_thrombosis",
    "factor_v_leiden": "factor_v_leiden", "prothrombin_20210a": "prothrombin_20210a",
    "elevated_homocysteine": "elevated_homocysteine", "lupus_anticoagulant": "lupus_anticoagulant",
    "anticardiolipin_antibodies": "anticardiolipin_antibodies", "hit": "hit", "other_thrombophilia": "other_thrombophilia",
    "lower_extremity_arthroplasty": "major_lower_extremity_arthroplasty", "stroke": "stroke",
    "multiple_trauma": "multiple_trauma", "spinal_cord_injury": "acute_spinal_cord_injury"}
OM_ONLY_MISSING = ("prior_major_surgery", "hip_pelvis_leg_fracture", "other_risk_factor")


def _caprini_samples(n=2000, p=0.12):
    rng = _rng("caprini")
    return [dict(age=rng.choice([40, 41, 60, 61, 74, 75, rng.randint(18, 100)]),
                 bmi=rng.choice([25.0, 25.1, round(rng.uniform(17, 45), 1)]),
                 **{k: rng.random() < p for k in CAPRINI_BOOL_POINTS}) for _ in range(n)]


def _om_caprini(s):
    age = s["age"]
    return om_caprini.calculate_caprini(om_caprini.CapriniParams(
        age_41_60=41 <= age <= 60, age_61_74=61 <= age <= 74, age_75_or_older=age >= 75, bmi_over_25=s["bmi"] > 25,
        **{CAPRINI_OM[k]: s[k] for k in CAPRINI_OM})).value


def test_caprini_matches_open_medicine_on_its_items(fn):
    for s in _caprini_samples():
        s = dict(s, **{k: False for k in OM_ONLY_MISSING})
        assert fn["caprini_2005"](**s)["total"] == _om_caprini(s), s


@pytest.mark.xfail(strict=True, reason="open-medicine omits two items of the Caprini 2005 form (Dis Mon 51:70): "
                   "history of prior major surgery < 1 month (1) and hip, pelvis or leg fracture < 1 month (5)")
def test_caprini_open_medicine_lacks_2005_items(fn):
    s = dict(_caprini_samples(1)[0], **{k: False for k in CAPRINI_BOOL_POINTS}, prior_major_surgery=True,
             hip_pelvis_leg_fracture=True)
    assert fn["caprini_2005"](**s)["total"] == _om_caprini(s)


MC_SURGERY = {"minor_surgery": "minor", "major_surgery": "major", "laparoscopic_surgery": "laparoscopic",
              "arthroscopic_surgery": "arthroscopic",
              "lower_extremity_arthroplasty": "elective major lower extremity arthroplasty"}
MC_BOOLS = {"prior_major_surgery": "major_surgery", "chf": "chf", "sepsis": "sepsis", "serious_lung_disease": "pneumonia",
            "plaster_cast": "immobilizing_plaster_case", "hip_pelvis_leg_fracture": "hip_pelvis_leg_fracture",
            "stroke": "stroke", "multiple_trauma": "multiple trauma", "spinal_cord_injury": "acute_spinal_chord_injury",
            "varicose_veins": "varicose_veins", "swollen_legs": "current_swollen_legs",
            "central_venous_access": "current_central_venuous", "history_dvt_pe": "previous_dvt",
            "family_history_thrombosis": "family_history_thrombosis", "factor_v_leiden": "positive_factor_v",
            "prothrombin_20210a": "positive_prothrombin", "elevated_homocysteine": "serum_homocysteine",
            "lupus_anticoagulant": "positive_lupus_anticoagulant",
            "anticardiolipin_antibodies": "elevated_anticardiolipin_antibody", "hit": "heparin_induced_thrombocytopenia",
            "other_thrombophilia": "congenital_acquired_thrombophilia",
            "inflammatory_bowel_disease": "inflammatory_bowel_disease", "acute_mi": "acute_myocardial_infarction",
            "abnormal_pulmonary_function": "copd", "malignancy": "malignancy"}


def _mc_caprini_samples(n=2000):
    """medcalc takes one surgery type and one mobility level: samples hold at most one of each. Its yes/no
    items are never added to its sum (pinned below), so they are all absent here."""
    rng = _rng("caprini-mc")
    out = []
    for s in _caprini_samples(n):
        for k in CAPRINI_BOOL_POINTS:
            s[k] = False
        surgery = rng.choice([None, *MC_SURGERY])
        if surgery:
            s[surgery] = True
        mobility = rng.choice([None, "medical_bed_rest", "confined_to_bed"])
        if mobility:
            s[mobility] = True
        s["bmi"] = min(s["bmi"], 25.0)  # medcalc scores BMI > 25 as 2, pinned below
        out.append(s)
    return out


def _mc_caprini(s, previous_pe=False):
    surgery = next((MC_SURGERY[k] for k in MC_SURGERY if s[k]), "none")
    mobility = "confined to bed >72 hours" if s["confined_to_bed"] else "on bed rest" if s["medical_bed_rest"] else "normal"
    args = {"sex": "Male", "age": (s["age"], "years"), "surgery_type": surgery, "mobility": mobility,
            "bmi": (s["bmi"], "kg/m^2"), "previous_pe": previous_pe}
    args.update({mc: s[ours] for ours, mc in MC_BOOLS.items()})
    return mc_caprini.caprini_score_explanation(args)["Answer"]


def test_caprini_matches_medcalc_on_its_items(fn):
    for s in _mc_caprini_samples():
        assert fn["caprini_2005"](**s)["total"] == _mc_caprini(s), s


@pytest.mark.xfail(strict=True, reason="medcalc scores BMI > 25 as 2 points; the Caprini 2005 form scores "
                   "'obesity (BMI > 25)' 1 point")
def test_caprini_medcalc_bmi(fn):
    s = dict(_mc_caprini_samples(1)[0], bmi=30.0)
    assert fn["caprini_2005"](**s)["total"] == _mc_caprini(s)


@pytest.mark.parametrize("item", ["history_dvt_pe", "malignancy", "prior_major_surgery", "hip_pelvis_leg_fracture"])
@pytest.mark.xfail(strict=True, reason="medcalc caprini_score never adds the points of its yes/no items (the loop "
                   "writes the explanation only); the Caprini 2005 form scores each ticked factor (3, 2, 1, 5 here)")
def test_caprini_medcalc_yes_no_items(fn, item):
    s = dict(_mc_caprini_samples(1)[0], **{item: True})
    assert fn["caprini_2005"](**s)["total"] == _mc_caprini(s)


def test_caprini_points_and_monotone(fn):
    base = dict(age=30, bmi=22)
    assert fn["caprini_2005"](**base)["total"] == 0
    for key, points in CAPRINI_BOOL_POINTS.items():
        assert fn["caprini_2005"](**dict(base, **{key: True}))["total"] == points, key
    ages = [fn["caprini_2005"](**dict(base, age=a))["total"] for a in range(18, 110)]
    assert ages == sorted(ages) and ages[40 - 18] == 0 and ages[41 - 18] == 1 and ages[61 - 18] == 2 and ages[75 - 18] == 3
    for s in _caprini_samples(300):
        total = fn["caprini_2005"](**s)["total"]
        for key in CAPRINI_BOOL_POINTS:
            if not s[key]:
                assert fn["caprini_2005"](**dict(s, **{key: True}))["total"] == total + CAPRINI_BOOL_POINTS[key]


# ------------------------------------------------------------------------------------------ Charlson
CH_BOOLS_OM = {"myocardial_infarction": "myocardial_infarction", "chf": "congestive_heart_failure",
               "peripheral_vascular_disease": "peripheral_vascular_disease",
               "cerebrovascular_disease": "cerebrovascular_disease", "dementia": "dementia",
               "chronic_pulmonary_disease": "chronic_pulmonary_disease",
               "connective_tissue_disease": "connective_tissue_disease", "peptic_ulcer_disease": "peptic_ulcer_disease",
               "hemiplegia": "hemiplegia", "renal_disease": "moderate_severe_renal_disease", "leukemia": "leukemia",
               "lymphoma": "lymphoma", "aids": "aids"}
CH_BOOLS_MC = {"myocardial_infarction": "mi", "chf": "chf", "peripheral_vascular_disease": "peripheral_vascular_disease",
               "cerebrovascular_disease": "cva", "dementia": "dementia", "chronic_pulmonary_disease": "copd",
               "connective_tissue_disease": "connective_tissue_disease", "peptic_ulcer_disease": "peptic_ucler_disease",
               "hemiplegia": "hemiplegia", "renal_disease": "moderate_to_severe_ckd", "leukemia": "leukemia",
               "lymphoma": "lymphoma", "aids": "aids"}
CH_GRADES = {"liver_disease": ("none", "mild", "moderate_severe"), "diabetes": ("none", "uncomplicated", "end_organ_damage"),
             "solid_tumor": ("none", "localized", "metastatic")}
MC_GRADE = {"none": "none", "mild": "mild", "moderate_severe": "moderate to severe", "uncomplicated": "uncomplicated",
            "end_organ_damage": "end-organ damage", "localized": "localized", "metastatic": "metastatic"}


def _charlson_samples(n=3000, max_age=89):
    rng = _rng(f"charlson-{max_age}")
    return [dict(age=rng.choice([49, 50, 59, 60, 69, 70, 79, 80, 89, 90, 99, 100, rng.randint(18, 105)]) if max_age > 89
                 else rng.choice([49, 50, 59, 60, 69, 70, 79, 80, 89, rng.randint(18, 89)]),
                 **{k: rng.random() < 0.15 for k in CH_BOOLS_OM},
                 **{k: rng.choice(v) for k, v in CH_GRADES.items()}) for _ in range(n)]


def _om_charlson(s):
    return om_charlson.calculate_charlson(om_charlson.CharlsonParams(
        age=s["age"], **{om: s[ours] for ours, om in CH_BOOLS_OM.items()},
        mild_liver_disease=s["liver_disease"] == "mild", moderate_severe_liver_disease=s["liver_disease"] == "moderate_severe",
        uncomplicated_diabetes=s["diabetes"] == "uncomplicated",
        diabetes_with_end_organ_damage=s["diabetes"] == "end_organ_damage",
        solid_tumor=s["solid_tumor"] == "localized", metastatic_solid_tumor=s["solid_tumor"] == "metastatic")).value


def _mc_charlson(s):
    args = {"age": (s["age"], "years"), "tia": False, **{mc: s[ours] for ours, mc in CH_BOOLS_MC.items()},
            "liver_disease": MC_GRADE[s["liver_disease"]], "solid_tumor": MC_GRADE[s["solid_tumor"]],
            "diabetes_mellitus": "none or diet-controlled" if s["diabetes"] == "none" else MC_GRADE[s["diabetes"]]}
    return mc_cci.compute_cci_explanation(args)["Answer"]


def test_charlson_matches_both_below_age_90(fn):
    for s in _charlson_samples():
        ours = fn["charlson"](**s)
        assert ours["total"] == _om_charlson(s) == _mc_charlson(s), s
        assert ours["comorbidity_index"] == ours["total"] - ours["age_points_used"]


@pytest.mark.xfail(strict=True, reason="both packages cap the age points at 4 (>= 80 years); Charlson 1994 (J Clin "
                   "Epidemiol 47:1245) adds 1 point for each decade over 40 with no cap, so 90-99 scores 5")
def test_charlson_age_over_90(fn):
    s = dict(_charlson_samples(1)[0], age=92)
    assert fn["charlson"](**s)["total"] in (_om_charlson(s), _mc_charlson(s))


def test_charlson_monotone(fn):
    for s in _charlson_samples(400, max_age=120):
        r = fn["charlson"](**s)
        assert r["comorbidity_index"] >= 0 and r["total"] >= r["comorbidity_index"]
        assert fn["charlson"](**dict(s, age=min(120, s["age"] + 10)))["total"] >= r["total"]
        for key in CH_BOOLS_OM:
            if not s[key]:
                assert fn["charlson"](**dict(s, **{key: True}))["comorbidity_index"] > r["comorbidity_index"]
        for key, grades in CH_GRADES.items():
            level = grades.index(s[key])
            if level < 2:
                worse = fn["charlson"](**dict(s, **{key: grades[level + 1]}))
                assert worse["comorbidity_index"] > r["comorbidity_index"], key


# ------------------------------------------------------------------------------------------ Centor / McIsaac
CENTOR_BOOLS = ("cough_absent", "anterior_cervical_nodes", "tonsillar_swelling_or_exudate")


def test_centor_matches_both(fn):
    rng = _rng("centor")
    for values in itertools.product([False, True], repeat=3):
        for age in (3, 14, 15, 44, 45, 80, rng.randint(3, 100)):
            for temperature in (37.0, 38.0, 38.1, round(rng.uniform(35, 41), 1)):
                s = dict(zip(CENTOR_BOOLS, values), age=age, temperature=temperature)
                ours = fn["centor_mcisaac"](**s)
                om = om_centor.calculate_centor_mcisaac(om_centor.CentorMcIsaacParams(
                    age=age, tonsillar_swelling_or_exudate=s["tonsillar_swelling_or_exudate"],
                    tender_anterior_cervical_lymphadenopathy=s["anterior_cervical_nodes"], fever=temperature > 38,
                    absence_of_cough=s["cough_absent"])).value
                mc = mc_centor.compute_centor_score_explanation({
                    "age": (age, "years"), "temperature": (temperature, "degrees celsius"),
                    "exudate_swelling_tonsils": s["tonsillar_swelling_or_exudate"],
                    "tender_lymph_nodes": s["anterior_cervical_nodes"], "cough_absent": s["cough_absent"]})["Answer"]
                assert ours["total"] == om == mc, s
                assert ours["centor"] == sum(values) + (temperature > 38)
                assert -1 <= ours["total"] <= 5


CENTOR_BASE = dict(age=30, cough_absent=True, anterior_cervical_nodes=False, tonsillar_swelling_or_exudate=False)


def test_centor_temperature_in_fahrenheit(fn):
    assert fn["centor_mcisaac"](**CENTOR_BASE, temperature="100.2 degF") == fn["centor_mcisaac"](**CENTOR_BASE, temperature=37.9)
    assert fn["centor_mcisaac"](**CENTOR_BASE, temperature="100.6 degF")["total"] == 2


def test_centor_100_4_degf_is_38_degc(fn):
    """Converted values keep 12 significant digits (dsl/support.converted), so 100.4 degF is exactly 38.0 degC
    and does not pass the '> 38 degC' criterion by floating-point noise."""
    assert fn["centor_mcisaac"](**CENTOR_BASE, temperature="100.4 degF") == fn["centor_mcisaac"](**CENTOR_BASE, temperature=38.0)


# ------------------------------------------------------------------------------------------ FeverPAIN
FP_MC = {"fever_24h": "fever_24_hours", "purulence": "purulent_tonsils", "attend_rapidly": "symptom_onset",
         "severely_inflamed_tonsils": "severe_tonsil_inflammation", "no_cough_or_coryza": "cough_coryza_absent"}


def test_feverpain_matches_medcalc_on_every_combination(fn):
    for values in itertools.product([False, True], repeat=5):
        s = dict(zip(FP_MC, values))
        ours = fn["feverpain"](**s)
        assert ours["total"] == sum(values) == mc_feverpain.compute_fever_pain_explanation(
            {FP_MC[k]: v for k, v in s.items()})["Answer"]
        assert ours["band"] == ("low" if sum(values) <= 1 else "moderate" if sum(values) <= 3 else "high")


# ------------------------------------------------------------------------------------------ Glasgow-Blatchford
GBS_OTHER = ("melena", "syncope", "hepatic_disease", "cardiac_failure")


def _gbs_samples(n=3000, others=True):
    rng = _rng(f"gbs-{others}")
    out = []
    for _ in range(n):
        sex = rng.choice(["female", "male"])
        out.append(dict(urea=_pick(rng, [6.4, 6.5, 7.9, 8.0, 9.9, 10.0, 24.9, 25.0], 1, 40), sex=sex,
                        hemoglobin=_pick(rng, [9.9, 10.0, 11.9, 12.0, 12.9, 13.0], 5, 17),
                        sbp=rng.choice([89, 90, 99, 100, 109, 110, rng.randint(60, 180)]),
                        heart_rate=rng.choice([99, 100, rng.randint(50, 150)]),
                        **{k: (others or k == "melena") and rng.random() < 0.25 for k in GBS_OTHER}))
    return out


def _bun(urea):
    return round(urea * 2.8, 6)  # the factor both packages' cut-offs use


def _om_gbs(s):
    return om_gbs.calculate_glasgow_blatchford(om_gbs.GlasgowBlatchfordParams(
        bun=_bun(s["urea"]), hemoglobin=s["hemoglobin"], systolic_bp=s["sbp"], pulse=s["heart_rate"],
        is_male=s["sex"] == "male", melena=s["melena"], syncope=s["syncope"], hepatic_disease=s["hepatic_disease"],
        cardiac_failure=s["cardiac_failure"])).value


def _mc_gbs(s):
    return mc_gbs.glasgow_bleeding_score_explanation({
        "hemoglobin": (s["hemoglobin"], "g/dL"), "bun": (_bun(s["urea"]), "mg/dL"), "sys_bp": (s["sbp"], "mm Hg"),
        "sex": "Male" if s["sex"] == "male" else "Female", "heart_rate": (s["heart_rate"], "beats per minute"),
        "melena_present": s["melena"], "syncope": s["syncope"], "hepatic_disease_history": s["hepatic_disease"],
        "cardiac_failure": s["cardiac_failure"]})["Answer"]


def test_gbs_matches_open_medicine_without_the_2_point_markers(fn):
    for s in _gbs_samples(others=False):
        assert fn["glasgow_blatchford"](**s)["total"] == _om_gbs(s), s


@pytest.mark.parametrize("marker", ["syncope", "hepatic_disease", "cardiac_failure"])
@pytest.mark.xfail(strict=True, reason="open-medicine scores syncope, hepatic disease and cardiac failure 1 point "
                   "each; Blatchford 2000 (Lancet 356:1318, Table 1) scores each 2")
def test_gbs_open_medicine_two_point_markers(fn, marker):
    s = dict(_gbs_samples(1, others=False)[0], **{marker: True})
    assert fn["glasgow_blatchford"](**s)["total"] == _om_gbs(s)


def _on_medcalc_boundary(s):
    hb = s["hemoglobin"]
    return s["urea"] == 25.0 or (hb in (12.0, 13.0) if s["sex"] == "male" else hb in (10.0, 12.0))


def test_gbs_matches_medcalc_off_its_boundary_defects(fn):
    for s in _gbs_samples():
        if not _on_medcalc_boundary(s):
            assert fn["glasgow_blatchford"](**s)["total"] == _mc_gbs(s), s


GBS_BASE = dict(urea=5.0, hemoglobin=14.0, sex="male", sbp=120, heart_rate=80, melena=False, syncope=False,
                hepatic_disease=False, cardiac_failure=False)


@pytest.mark.parametrize("change", [dict(sex="male", hemoglobin=12.0), dict(sex="male", hemoglobin=13.0),
                                    dict(sex="female", hemoglobin=10.0), dict(sex="female", hemoglobin=12.0),
                                    dict(urea=25.0)], ids=["male-12", "male-13", "female-10", "female-12", "bun-70"])
@pytest.mark.xfail(strict=True, reason="medcalc leaves band edges out (e.g. 12 < Hb <= 13 and 10 <= Hb < 12 for men, "
                   "BUN > 70); Blatchford 2000 bands are closed below: men Hb 12.0-<13.0 = 1, >= 13.0 = 0, 10.0-<12.0 = 3; "
                   "women 10.0-<12.0 = 1, >= 12.0 = 0; urea >= 25 mmol/L = 6")
def test_gbs_medcalc_boundaries(fn, change):
    s = dict(GBS_BASE, **change)
    assert fn["glasgow_blatchford"](**s)["total"] == _mc_gbs(s)


def test_gbs_range_monotone_and_units(fn):
    for s in _gbs_samples(500):
        r = fn["glasgow_blatchford"](**s)["total"]
        assert 0 <= r <= 23
        assert fn["glasgow_blatchford"](**dict(s, urea=s["urea"] + 3))["total"] >= r
        assert fn["glasgow_blatchford"](**dict(s, hemoglobin=max(2, s["hemoglobin"] - 1.5)))["total"] >= r
        assert fn["glasgow_blatchford"](**dict(s, sbp=max(20, s["sbp"] - 15)))["total"] >= r
        for key in GBS_OTHER:
            if not s[key]:
                assert fn["glasgow_blatchford"](**dict(s, **{key: True}))["total"] > r
    s = dict(GBS_BASE, hemoglobin=12.0)
    assert fn["glasgow_blatchford"](**s) == fn["glasgow_blatchford"](**dict(s, hemoglobin="120 g/L"))


# ------------------------------------------------------------------------------------------ APACHE II
def _apache_samples(n=3000):
    rng = _rng("apache")
    out = []
    for _ in range(n):
        out.append(dict(
            temperature=_pick(rng, [29.9, 30, 31.9, 32, 33.9, 34, 35.9, 36, 38.4, 38.5, 38.9, 39, 40.9, 41], 28, 42.5),
            map=rng.choice([49, 50, 69, 70, 109, 110, 129, 130, 159, 160, rng.randint(30, 180)]),
            heart_rate=rng.choice([39, 40, 54, 55, 69, 70, 109, 110, 139, 140, 179, 180, rng.randint(30, 200)]),
            respiratory_rate=rng.choice([5, 6, 9, 10, 11, 12, 24, 25, 34, 35, 49, 50, rng.randint(3, 60)]),
            fio2=rng.choice([21, 40, 49, 50, 60, 100, rng.randint(21, 100)]),
            pao2=rng.choice([54, 55, 60, 61, 70, 71, rng.randint(40, 500)]), paco2=rng.choice([40, rng.randint(20, 90)]),
            ph=_pick(rng, [7.14, 7.15, 7.24, 7.25, 7.32, 7.33, 7.49, 7.5, 7.59, 7.6, 7.69, 7.7], 6.9, 7.8, 2),
            sodium=rng.choice([110, 111, 119, 120, 129, 130, 149, 150, 154, 155, 159, 160, 179, 180, rng.randint(105, 185)]),
            potassium=_pick(rng, [2.4, 2.5, 2.9, 3.0, 3.4, 3.5, 5.4, 5.5, 5.9, 6.0, 6.9, 7.0], 2, 8),
            creatinine=_pick(rng, [0.5, 0.6, 1.4, 1.5, 1.9, 2.0, 3.4, 3.5], 0.2, 8),
            acute_renal_failure=rng.random() < 0.2,
            hematocrit=_pick(rng, [19.9, 20, 29.9, 30, 45.9, 46, 49.9, 50, 59.9, 60], 15, 65),
            wbc=_pick(rng, [0.9, 1, 2.9, 3, 14.9, 15, 19.9, 20, 39.9, 40], 0.2, 50),
            gcs=rng.randint(3, 15), age=rng.choice([44, 45, 54, 55, 64, 65, 74, 75, rng.randint(16, 100)]),
            chronic_health=rng.random() < 0.3,
            admission=rng.choice(["nonoperative", "emergency_postoperative", "elective_postoperative"])))
    return out


OM_ADMISSION = {"nonoperative": "nonoperative", "emergency_postoperative": "emergency_surgery",
                "elective_postoperative": "elective_surgery"}


def _om_apache(s):
    return om_apache.calculate_apache2(om_apache.APACHE2Params(
        temperature=s["temperature"], mean_arterial_pressure=s["map"], heart_rate=s["heart_rate"],
        respiratory_rate=s["respiratory_rate"], fio2=s["fio2"] / 100, pao2=s["pao2"], paco2=s["paco2"],
        arterial_ph=s["ph"], serum_sodium=s["sodium"], serum_potassium=s["potassium"], serum_creatinine=s["creatinine"],
        acute_renal_failure=s["acute_renal_failure"], hematocrit=s["hematocrit"], white_blood_cell_count=s["wbc"],
        gcs=s["gcs"], age=s["age"], admission_type=OM_ADMISSION[s["admission"]],
        severe_organ_insufficiency_or_immunocompromised=s["chronic_health"])).value


def _aado2(s):
    return s["fio2"] / 100 * 713 - s["paco2"] / 0.8 - s["pao2"]


def test_apache_matches_open_medicine(fn):
    for s in _apache_samples():
        if s["fio2"] >= 50 and abs(_aado2(s) - round(_aado2(s))) < 1e-9 and round(_aado2(s)) in (200, 350, 500):
            continue  # a float rounding tie at an A-aDO2 cut-off (open-medicine uses 0.5 * 713 in another order)
        ours = fn["apache_ii"](**s)
        assert ours["total"] == _om_apache(s), s
        assert 0 <= ours["total"] <= 71


MC_SURGERY_TYPE = {"emergency_postoperative": "Emergency", "elective_postoperative": "Elective",
                   "nonoperative": "Nonelective"}


def _mc_apache(s, sbp, dbp):
    return mc_apache.apache_ii_explanation({
        "sodium": (s["sodium"], "mmol/L"), "pH": s["ph"], "heart_rate": (s["heart_rate"], "beats per minute"),
        "respiratory_rate": (s["respiratory_rate"], "breaths per minute"), "potassium": (s["potassium"], "mmol/L"),
        "creatinine": (s["creatinine"], "mg/dL"), "age": (s["age"], "years"),
        "acute_renal_failure": s["acute_renal_failure"], "chronic_renal_failure": False,
        "hemocratit": (s["hematocrit"], "%"), "wbc": (s["wbc"], "mm^3"), "fio2": (s["fio2"], "%"), "gcs": s["gcs"],
        "a_a_gradient": _aado2(s), "partial_pressure_oxygen": (s["pao2"], "mm Hg"),
        "temperature": (s["temperature"], "degrees celsius"), "sys_bp": (sbp, "mm hg"), "dia_bp": (dbp, "mm hg"),
        "organ_failure_immunocompromise": s["chronic_health"], "surgery_type": MC_SURGERY_TYPE[s["admission"]]})["Answer"]


def _mc_apache_domain(n=2000):
    """Only values medcalc scores as Knaus 1985 does: the normal and high sides of each variable, integer MAP
    (its bands are open between 109 and 110), age not 45 or 75, creatinine >= 1.5 only with acute renal
    failure, no non-operative chronic-health points, and A-aDO2 outside its gaps (349-350, 499-500)."""
    rng = _rng("apache-mc")
    out = []
    while len(out) < n:
        dbp = rng.randint(50, 130)
        sbp = rng.randint(dbp + 20, dbp + 110)
        if (sbp + 2 * dbp) % 3 or (sbp + 2 * dbp) // 3 < 70:
            continue
        s = dict(temperature=round(rng.uniform(36, 42), 1), map=(sbp + 2 * dbp) // 3, heart_rate=rng.randint(70, 200),
                 respiratory_rate=rng.randint(12, 60), fio2=rng.choice([21, 30, 40, 49, 50, 60, 80, 100]),
                 pao2=rng.randint(40, 400), paco2=rng.choice([24, 32, 40, 48]), ph=round(rng.uniform(7.33, 7.8), 2),
                 sodium=rng.randint(130, 190), potassium=round(rng.uniform(3.5, 8), 1),
                 creatinine=round(rng.uniform(0.6, 6), 1), acute_renal_failure=rng.random() < 0.5,
                 hematocrit=round(rng.uniform(30, 70), 1), wbc=round(rng.uniform(3, 60), 1), gcs=rng.randint(3, 15),
                 age=rng.choice([a for a in range(16, 100) if a not in (45, 75)]), chronic_health=rng.random() < 0.4,
                 admission=rng.choice(["emergency_postoperative", "elective_postoperative"]))
        if s["creatinine"] >= 1.5 and not s["acute_renal_failure"]:
            continue
        if s["fio2"] >= 50 and (349 < _aado2(s) < 350 or 499 < _aado2(s) < 500):
            continue
        out.append((s, sbp, dbp))
    return out


def test_apache_matches_medcalc_on_its_domain(fn):
    for s, sbp, dbp in _mc_apache_domain():
        # medcalc adds the GCS itself; Knaus 1985 scores 15 - GCS: undone here, pinned raw below
        assert fn["apache_ii"](**s)["total"] == _mc_apache(s, sbp, dbp) - s["gcs"] + (15 - s["gcs"]), s


APACHE_BASE = dict(temperature=37.0, map=90, heart_rate=90, respiratory_rate=18, fio2=21, pao2=90, paco2=40, ph=7.40,
                   sodium=140, potassium=4.0, creatinine=1.0, acute_renal_failure=False, hematocrit=40, wbc=8, gcs=15,
                   age=30, chronic_health=False, admission="elective_postoperative")


@pytest.mark.parametrize("change", [dict(map=60), dict(heart_rate=50), dict(respiratory_rate=8), dict(ph=7.20),
                                    dict(sodium=125), dict(potassium=3.2), dict(hematocrit=25), dict(wbc=2),
                                    dict(age=45), dict(age=75), dict(creatinine=2.5),
                                    dict(chronic_health=True, admission="nonoperative"), dict()],
                         ids=["low-map", "low-hr", "low-rr", "low-ph", "low-na", "low-k", "low-hct", "low-wbc",
                              "age-45", "age-75", "creatinine-2.5-no-arf", "nonoperative-chronic", "gcs-15-raw"])
@pytest.mark.xfail(strict=True, reason="medcalc apache_ii omits the low-side bands, adds the GCS instead of 15 - GCS, "
                   "skips ages 45 and 75, scores creatinine >= 1.5 only with a renal-failure flag and gives "
                   "non-operative chronic health 0; Knaus 1985 (Crit Care Med 13:818, Figure 1) scores all of these")
def test_apache_medcalc_defects(fn, change):
    s = dict(APACHE_BASE, **change)
    mapped = 90 if s["map"] == 90 else 60
    sbp, dbp = (120, 75) if mapped == 90 else (80, 50)
    assert fn["apache_ii"](**s)["total"] == _mc_apache(s, sbp, dbp)


def test_apache_properties(fn):
    # GCS points rise as the GCS falls; age and chronic health never lower the score
    for s in _apache_samples(400):
        r = fn["apache_ii"](**s)
        assert r["acute_physiology_score"] <= r["total"]
        if s["gcs"] > 3:
            assert fn["apache_ii"](**dict(s, gcs=s["gcs"] - 1))["total"] == r["total"] + 1
        assert fn["apache_ii"](**dict(s, age=min(120, s["age"] + 10)))["total"] >= r["total"]
        assert fn["apache_ii"](**dict(s, chronic_health=True))["total"] >= r["total"]
        if not s["acute_renal_failure"]:
            doubled = fn["apache_ii"](**dict(s, acute_renal_failure=True))["total"]
            assert doubled - r["total"] in (0, 2, 3, 4)
    # FiO2 rule: below 50% only PaO2 counts, at 50% or more only the A-aDO2
    low = fn["apache_ii"](**dict(APACHE_BASE, fio2=49, pao2=300))
    assert low["total"] == 0
    high = fn["apache_ii"](**dict(APACHE_BASE, fio2=100, pao2=100, paco2=40))  # A-aDO2 563
    assert high["total"] == 4 and high["a_a_gradient"] == 563
    # units: degF, kPa and x10^3/uL convert to the declared units
    same = fn["apache_ii"](**dict(APACHE_BASE, temperature="98.6 degF", pao2="12 kPa", wbc="8 x10^3/uL"))
    assert same == fn["apache_ii"](**dict(APACHE_BASE, pao2=12 * 1000 / 133.322))


# ------------------------------------------------------------------------------------------ SOFA
def _sofa_samples(n=3000):
    rng = _rng("sofa")
    out = []
    for _ in range(n):
        drug = rng.random()
        s = dict(pao2=rng.randint(40, 500), fio2=rng.choice([21, 30, 40, 50, 60, 80, 100]),
                 respiratory_support=rng.random() < 0.5,
                 platelets=rng.choice([19, 20, 49, 50, 99, 100, 149, 150, rng.randint(5, 400)]),
                 bilirubin=_pick(rng, [1.1, 1.2, 1.9, 2.0, 5.9, 6.0, 11.9, 12.0], 0.2, 20),
                 map=rng.choice([69, 70, rng.randint(40, 110)]), gcs=rng.randint(3, 15),
                 creatinine=_pick(rng, [1.1, 1.2, 1.9, 2.0, 3.4, 3.5, 4.9, 5.0], 0.3, 8),
                 dopamine=0, epinephrine=0, norepinephrine=0)
        if drug < 0.15:
            s["dopamine"] = rng.choice([3, 5, 5.1, 10, 15, 15.1, 20])
        elif drug < 0.3:
            s["norepinephrine"] = rng.choice([0.05, 0.1, 0.11, 0.3])
        elif drug < 0.4:
            s["epinephrine"] = rng.choice([0.05, 0.1, 0.11, 0.3])
        if rng.random() < 0.3:
            s["urine_output"] = rng.choice([150, 199, 200, 499, 500, rng.randint(0, 3000)])
        out.append(s)
    return out


def _om_sofa(s):
    return om_sofa.calculate_sofa(om_sofa.SOFAParams(
        pao2_fio2=s["pao2"] / (s["fio2"] / 100), platelets=s["platelets"], bilirubin=s["bilirubin"], map_pressure=s["map"],
        dopamine=s["dopamine"], epinephrine=s["epinephrine"], norepinephrine=s["norepinephrine"], gcs=s["gcs"],
        creatinine=s["creatinine"], urine_output=s.get("urine_output"))).value


def test_sofa_matches_open_medicine_with_respiratory_support(fn):
    for s in _sofa_samples():
        s = dict(s, respiratory_support=True)  # open-medicine has no such input: it always allows grades 3-4
        ours = fn["sofa"](**s)
        assert ours["total"] == _om_sofa(s), s
        parts = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
        assert ours["total"] == sum(ours[p] for p in parts) and 0 <= ours["total"] <= 24


@pytest.mark.xfail(strict=True, reason="open-medicine scores P/F < 200 as 3-4 without respiratory support; Vincent "
                   "1996 (Intensive Care Med 22:707, Table 1) grades 3-4 need respiratory support")
def test_sofa_open_medicine_without_respiratory_support(fn):
    s = dict(_sofa_samples(1)[0], pao2=60, fio2=50, respiratory_support=False)
    assert fn["sofa"](**s)["total"] == _om_sofa(s)


def _mc_sofa(s, sbp, dbp):
    args = {"partial_pressure_oxygen": (s["pao2"], "mm Hg"), "fio2": (s["fio2"] / 100, ""),
            "mechanical_ventilation": s["respiratory_support"], "cpap": False,
            "platelet_count": (s["platelets"] * 1000, "µL"), "gcs": s["gcs"], "bilirubin": (s["bilirubin"], "mg/dL"),
            "creatinine": (s["creatinine"], "mg/dL"), "sys_bp": (sbp, "mm Hg"), "dia_bp": (dbp, "mm Hg"),
            "dopamine": (s["dopamine"], "µg/kg/min"), "dobutamine": (0, "µg/kg/min"),
            "epinephrine": (s["epinephrine"], "µg/kg/min"), "norepinephrine": (s["norepinephrine"], "µg/kg/min")}
    return mc_sofa.compute_sofa_explanation(args)["Answer"]


def test_sofa_matches_medcalc_when_hypotensive_without_drugs(fn):
    """medcalc's cardiovascular branch is right only for MAP < 70 without vasoactive drugs (1 point), so the
    other five systems are compared there; P/F ratios medcalc leaves unscored (199-200 with support) are
    skipped and urine output is not passed (medcalc then ignores creatinine)."""
    for s in _sofa_samples():
        s = dict(s, dopamine=0, epinephrine=0, norepinephrine=0, map=60)
        s.pop("urine_output", None)
        ratio = s["pao2"] / (s["fio2"] / 100)
        if 199 <= ratio < 200 or (ratio < 100 and not s["respiratory_support"]):
            continue
        assert fn["sofa"](**s)["total"] == _mc_sofa(s, sbp=80, dbp=50), s


@pytest.mark.parametrize("change", [dict(map=75), dict(map=75, norepinephrine=0.3), dict(map=60, epinephrine=0.05)],
                         ids=["no-drug", "noradrenaline-0.3", "adrenaline-0.05"])
@pytest.mark.xfail(strict=True, reason="medcalc gives 2 cardiovascular points for 'dopamine <= 5' even at dopamine 0, "
                   "before looking at MAP or other drugs; Vincent 1996 scores MAP >= 70 without drugs 0, "
                   "noradrenaline > 0.1 4 and adrenaline <= 0.1 3")
def test_sofa_medcalc_cardiovascular(fn, change):
    s = dict(_sofa_samples(1)[0], dopamine=0, epinephrine=0, norepinephrine=0, **change)
    s.pop("urine_output", None)
    sbp, dbp = (105, 60) if s["map"] == 75 else (80, 50)
    assert fn["sofa"](**s)["total"] == _mc_sofa(s, sbp, dbp)


def test_sofa_monotone_and_units(fn):
    for s in _sofa_samples(400):
        r = fn["sofa"](**s)["total"]
        for key, worse in (("bilirubin", s["bilirubin"] + 3), ("creatinine", s["creatinine"] + 1.5),
                           ("platelets", max(0, s["platelets"] - 40)), ("gcs", max(3, s["gcs"] - 3)),
                           ("pao2", max(10, s["pao2"] - 60)), ("norepinephrine", s["norepinephrine"] + 0.2),
                           ("respiratory_support", True), ("urine_output", 100)):
            assert fn["sofa"](**dict(s, **{key: worse}))["total"] >= r, key
    s = _sofa_samples(1)[0]
    assert fn["sofa"](**dict(s, platelets=99)) == fn["sofa"](**dict(s, platelets="99 x10^3/uL"))


# ------------------------------------------------------------------------------------------ LACE
def _lace_points(los, acute, charlson, ed):
    """van Walraven 2010 (CMAJ 182:551), written here independently of the .score file."""
    l_table = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 4}
    l_points = l_table.get(los, 5 if los <= 13 else 7)
    c_points = {0: 0, 1: 1, 2: 2, 3: 3}.get(charlson, 5)
    return l_points + (3 if acute else 0) + c_points + min(ed, 4)


def test_lace_matches_the_published_table(fn):
    for los in list(range(0, 20)) + [30, 100]:
        for acute in (False, True):
            for charlson in range(0, 8):
                for ed in range(0, 7):
                    r = fn["lace"](length_of_stay=los, acute_admission=acute, charlson_index=charlson,
                                   ed_visits_6_months=ed)
                    assert r["total"] == _lace_points(los, acute, charlson, ed)
                    assert 0 <= r["total"] <= 19
                    assert r["band"] == ("low" if r["total"] <= 4 else "moderate" if r["total"] <= 9 else "high")


def test_lace_monotone(fn):
    args = dict(length_of_stay=0, acute_admission=False, charlson_index=0, ed_visits_6_months=0)
    for key, values in (("length_of_stay", range(0, 40)), ("charlson_index", range(0, 12)),
                        ("ed_visits_6_months", range(0, 10))):
        totals = [fn["lace"](**dict(args, **{key: v}))["total"] for v in values]
        assert totals == sorted(totals), key
