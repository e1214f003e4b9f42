"""Body, cardiovascular, metabolic and drug-dosing formulas: map, bmi, bsa, ideal_body_weight,
adjusted_body_weight, target_weight, qtc_bazett, qtc_fridericia, qtc_framingham, qtc_hodges, qtc_rautaharju,
ldl_friedewald, homa_ir, fib4, maintenance_fluids, morphine_milligram_equivalents, steroid_conversion,
framingham_hard_chd.

Differential tests run the compiled instruments against two independent implementations that install
offline: medcalc-bench 1.7.0 (Apache-2.0, import name `medcalc`; medcalc/<calculator>.py) and open-medicine
0.12 (MIT; open_medicine/mcp/calculators/<calculator>.py), on seeded random samples across each input's
range. Neither is treated as ground truth: where they disagree with the original publication, the test says
so and the publication decides. Every disagreement, and the transformation or tolerance that accounts for it:

- Rounding. medcalc rounds results (and often intermediates) to 3 decimals, open-medicine to 1 or 2 with
  Python's round-half-even; these instruments round as stated in each file's header (half up). Tolerances
  are half a unit of the coarser rounding plus the intermediate rounding's effect.
- QTc (all five): medcalc first rounds RR = 60 / HR to 3 decimals, which moves a QTc by up to about 1 ms at
  fast rates. The test patches medcalc's round_number to the identity for the intermediate (a documented
  transformation), after which the formulas agree to our 0.5 ms rounding. open-medicine (Bazett, Fridericia)
  calls QTc prolonged only ABOVE 450 / 460 ms; these instruments use 450 / 460 ms or more (AHA/ACCF/HRS
  2009, as quoted in each header): they disagree only at exactly 450 (men) and 460 (women).
- BMI: open-medicine classifies the BMI rounded to one decimal, so 24.96 (the CDC worked example) becomes
  25.0 "overweight"; WHO states its cut-offs to two decimals (normal 18.50-24.99), which this instrument
  follows. Categories are compared away from the cut-offs, and the CDC case is pinned as a documented
  difference.
- HOMA-IR: medcalc uses insulin x glucose (mg/dL) / 405 with glucose converted at 18.016 mg/dL per mmol/L
  (molar mass 180.16), i.e. a constant of 405 / 18.016 = 22.48 instead of Matthews' 22.5 (0.09% apart);
  glucose is passed to it in mg/dL. Two medcalc defects are strict xfails: it MULTIPLIES insulin in pmol/L
  by 6 (1 microU/mL = 6 pmol/L means dividing), and its unit converter rounds moles to 3 decimals, so
  glucose given in mmol/L is off by up to about 10% (5.5 mmol/L is read as 5.0).
- Steroid conversion: medcalc stores ratios to dexamethasone rounded to two decimals (26.67, 33.33, 5.33,
  6.67) and rounds the conversion factor to three: up to about 0.15% from the exact BNF ratios.
  Deflazacort is not in medcalc.
- MME: medcalc's table equals the CDC 2022 factors for the ten opioids here, but its transdermal fentanyl
  key ('FentANYL patch') does not match the spelling its code tests ('FentaNYL patch'), so patch doses go
  through the milligram branch: strict xfail. medcalc's extra entries (buccal fentanyl 0.13,
  buprenorphine 10) are not in the CDC 2022 table and are not compared.
- Framingham: medcalc implements the continuous ATP III Framingham equation, not the point tables, and
  (1) converts cholesterol to mmol/L before taking logarithms of coefficients fitted in mg/dL and (2)
  rounds the 10-year risk fraction to one decimal (so it returns 0, 10, 20 ... %): strict xfail on the
  unmodified call. With cholesterol passed unconverted and its round() replaced by the identity, the
  equation is compared with the point model: they are different published variants (the tables
  approximate the equation), so only the ATP III category is compared, away from the 10% and 20%
  boundaries.
- target_weight: medcalc-bench 1.7.0 medcalc/target_weight.py does not import (ImportError:
  convert_height_to_target_unit_explanation is missing from medcalc/utils/height_conversion.py), and
  open-medicine has no target-weight calculator; it is checked by its round trip with bmi instead.
- No independent implementation installs for Du Bois BSA, the BSA/ABW percent outputs or the FIB-4
  Sterling cut-offs (open-medicine uses only the MASLD cut-offs 1.30 / 2.67, compared below).
"""
import math
import random
import re
import sys

import pytest

from medgym.compiler.pipeline import compile_specs
from medgym.dsl import units as u
from medgym.runtime.build import Build
from medgym.shipped import shipped_specs

try:  # declared test dependencies (pyproject [test]); without them only the differential tests are skipped
    import medcalc.adjusted_body_weight as mc_abw
    import medcalc.bmi_calculator as mc_bmi
    import medcalc.bsa_calculator as mc_bsa
    import medcalc.fibrosis_4 as mc_fib4
    import medcalc.framingham_risk_score as mc_framingham
    import medcalc.homa_ir as mc_homa
    import medcalc.ideal_body_weight as mc_ibw
    import medcalc.ldl_calculated as mc_ldl
    import medcalc.maintenance_fluid_calc as mc_fluids
    import medcalc.mean_arterial_pressure as mc_map
    import medcalc.mme as mc_mme
    import medcalc.qt_calculator_bazett as mc_bazett
    import medcalc.qt_calculator_framingham as mc_qt_framingham
    import medcalc.qt_calculator_fredericia as mc_fridericia
    import medcalc.qt_calculator_hodges as mc_hodges
    import medcalc.qt_calculator_rautaharju as mc_rautaharju
    import medcalc.steroid_conversion as mc_steroid
    MEDCALC = True
except ImportError:  # pragma: no cover
    MEDCALC = False
try:
    from open_medicine.mcp.calculators import bmi as om_bmi
    from open_medicine.mcp.calculators import bsa_mosteller as om_bsa
    from open_medicine.mcp.calculators import corrected_qtc as om_qtc
    from open_medicine.mcp.calculators import fib4 as om_fib4
    from open_medicine.mcp.calculators import maintenance_iv_fluids as om_fluids
    OPEN_MEDICINE = True
except ImportError:  # pragma: no cover
    OPEN_MEDICINE = False
with_medcalc = pytest.mark.skipif(not MEDCALC, reason="medcalc-bench is not installed")
with_open_medicine = pytest.mark.skipif(not OPEN_MEDICINE, reason="open-medicine is not installed")

NAMES = ("map", "bmi", "bsa", "ideal_body_weight", "adjusted_body_weight", "target_weight", "qtc_bazett",
         "qtc_fridericia", "qtc_framingham", "qtc_hodges", "qtc_rautaharju", "ldl_friedewald", "homa_ir", "fib4",
         "maintenance_fluids", "morphine_milligram_equivalents", "steroid_conversion", "framingham_hard_chd")
N = 300  # random samples per differential comparison


def _rng(name):
    return random.Random(f"body-cardio-{name}")


def _ranges(name):
    """{input: (min, max)} as declared in the .score file, so samples cover each input's range."""
    text = (shipped_specs() / "instruments" / f"{name}.score").read_text()
    return {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^\s+(\w+): (?:number|int)[^\n]*? in (-?[\d.]+)\.\.(-?[\d.]+)", text, re.M)}


def _answer(module_function, params):
    return module_function(params)["Answer"]


# ------------------------------------------------------------------------------------------ MAP
@with_medcalc
def test_map_matches_medcalc(fn):
    rng = _rng("map")
    for _ in range(N):
        sbp = rng.uniform(60, 300)
        dbp = rng.uniform(10, min(sbp, 250))
        ours = fn["map"](sbp=sbp, dbp=dbp)["map"]
        theirs = _answer(mc_map.mean_arterial_pressure_explanation, {"sys_bp": [sbp, "mm hg"], "dia_bp": [dbp, "mm hg"]})
        assert abs(ours - theirs) <= 0.05 + 0.0005 + 1e-9, (sbp, dbp, ours, theirs)


def test_map_rises_with_either_pressure_and_lies_between_them(fn):
    rng = _rng("map-monotone")
    for _ in range(N):
        sbp, dbp = rng.uniform(60, 290), rng.uniform(10, 60)
        base = fn["map"](sbp=sbp, dbp=dbp)["map"]
        assert dbp - 0.05 <= base <= sbp + 0.05
        assert fn["map"](sbp=sbp + 10, dbp=dbp)["map"] >= base
        assert fn["map"](sbp=sbp, dbp=dbp + 10)["map"] >= base


# ------------------------------------------------------------------------------------------ BMI
@with_medcalc
def test_bmi_matches_medcalc(fn):
    rng = _rng("bmi")
    for _ in range(N):
        weight, height = round(rng.uniform(1, 500), 1), rng.randint(50, 250)  # whole cm: medcalc rounds m to 3 decimals
        ours = fn["bmi"](weight=weight, height=height)["bmi"]
        theirs = _answer(mc_bmi.bmi_calculator_explanation, {"weight": (weight, "kg"), "height": (height, "cm")})
        assert abs(ours - theirs) <= 0.005 + 0.0005 + 1e-9, (weight, height, ours, theirs)


WHO_CUTS = (18.5, 25.0, 30.0, 35.0, 40.0)
OM_CLASS = {"Underweight": "underweight", "Normal weight": "normal", "Overweight": "overweight",
            "Obesity class I": "obese_1", "Obesity class II": "obese_2", "Obesity class III": "obese_3"}


def _om_bmi_band(result):
    category = result.interpretation.split("WHO category: ")[1]
    return OM_CLASS[category.split(" (")[0]]


@with_open_medicine
def test_bmi_matches_open_medicine_away_from_the_cut_offs(fn):
    rng = _rng("bmi-om")
    compared = 0
    for _ in range(N):
        weight, height = rng.uniform(20, 250), rng.uniform(120, 220)
        ours = fn["bmi"](weight=weight, height=height)
        theirs = om_bmi.calculate_bmi(om_bmi.BMIParams(weight_kg=weight, height_cm=height))
        assert abs(ours["bmi"] - theirs.value) <= 0.05 + 0.005 + 1e-9
        if min(abs(ours["bmi"] - cut) for cut in WHO_CUTS) > 0.06:  # one-decimal rounding cannot cross a cut-off
            compared += 1
            assert ours["band"] == _om_bmi_band(theirs), (weight, height, ours, theirs.interpretation)
    assert compared > N * 0.8


@with_open_medicine
def test_bmi_cdc_example_is_normal_here_and_overweight_in_open_medicine(fn):
    """CDC 'About Adult BMI': 150 lb, 65 in -> 24.96. WHO normal is 18.50-24.99 (two decimals), so it is
    normal; open-medicine rounds to 25.0 before classifying. A documented difference, WHO decides."""
    ours = fn["bmi"](weight=68.0389, height=165.1)
    theirs = om_bmi.calculate_bmi(om_bmi.BMIParams(weight_kg=68.0389, height_cm=165.1))
    assert ours["bmi"] == 24.96 and ours["band"] == "normal"
    assert theirs.value == 25.0 and _om_bmi_band(theirs) == "overweight"


def test_bmi_rises_with_weight_and_falls_with_height(fn):
    rng = _rng("bmi-monotone")
    for _ in range(N):
        weight, height = rng.uniform(2, 450), rng.uniform(55, 240)
        base = fn["bmi"](weight=weight, height=height)["bmi"]
        assert fn["bmi"](weight=weight + 5, height=height)["bmi"] >= base
        assert fn["bmi"](weight=weight, height=height + 5)["bmi"] <= base


# ------------------------------------------------------------------------------------------ BSA
@with_medcalc
def test_bsa_mosteller_matches_medcalc(fn):
    rng = _rng("bsa")
    for _ in range(N):
        weight, height = round(rng.uniform(0.5, 500), 2), round(rng.uniform(30, 250), 1)
        ours = fn["bsa"](weight=weight, height=height)["bsa"]
        theirs = _answer(mc_bsa.bsa_calculator_explaination, {"weight": (weight, "kg"), "height": (height, "cm")})
        assert abs(ours - theirs) <= 0.005 + 0.0005 + 1e-9, (weight, height, ours, theirs)


@with_open_medicine
def test_bsa_mosteller_matches_open_medicine(fn):
    """Both round to 2 decimals: half up here, half even (Python round) there, so an exact tie may differ by
    0.01; the unrounded values agree."""
    rng = _rng("bsa-om")
    for _ in range(N):
        weight, height = rng.uniform(0.5, 500), rng.uniform(30, 250)
        ours = fn["bsa"](weight=weight, height=height)["bsa"]
        theirs = om_bsa.calculate_bsa_mosteller(om_bsa.BSAMostellerParams(height_cm=height, weight_kg=weight)).value
        exact = math.sqrt(height * weight / 3600)
        assert abs(ours - theirs) < 1e-9 or abs((exact * 100) % 1 - 0.5) < 1e-6, (weight, height, ours, theirs)


def test_bsa_rises_with_weight_and_height_in_both_formulas(fn):
    rng = _rng("bsa-monotone")
    for _ in range(N):
        weight, height = rng.uniform(1, 450), rng.uniform(35, 240)
        base = fn["bsa"](weight=weight, height=height)
        for bigger in (fn["bsa"](weight=weight + 5, height=height), fn["bsa"](weight=weight, height=height + 5)):
            assert bigger["bsa"] >= base["bsa"] and bigger["bsa_dubois"] >= base["bsa_dubois"]


# ------------------------------------------------------------------------------------------ IBW / ABW
def _mc_sex(sex):
    return "Male" if sex == "male" else "Female"


@with_medcalc
def test_ideal_body_weight_matches_medcalc(fn):
    """medcalc converts cm to inches at 0.393701 rounded to 3 decimals (<= 0.002 kg) and rounds to 3
    decimals; this rounds to 1."""
    rng = _rng("ibw")
    for _ in range(N):
        sex, height = rng.choice(["female", "male"]), round(rng.uniform(120, 250), 1)
        ours = fn["ideal_body_weight"](sex=sex, height=height)["ibw"]
        theirs = _answer(mc_ibw.ibw_explanation, {"height": (height, "cm"), "sex": _mc_sex(sex)})
        assert abs(ours - theirs) <= 0.05 + 0.002 + 1e-9, (sex, height, ours, theirs)


@with_medcalc
def test_adjusted_body_weight_matches_medcalc(fn):
    rng = _rng("abw")
    for _ in range(N):
        sex, height, weight = rng.choice(["female", "male"]), round(rng.uniform(120, 250), 1), round(rng.uniform(10, 500), 1)
        ours = fn["adjusted_body_weight"](sex=sex, height=height, weight=weight)
        theirs = _answer(mc_abw.abw_explanation, {"weight": (weight, "kg"), "height": (height, "cm"), "sex": _mc_sex(sex)})
        assert abs(ours["abw"] - theirs) <= 0.05 + 0.002 + 1e-9, (sex, height, weight, ours, theirs)


def test_ideal_and_adjusted_body_weight_agree_and_behave(fn):
    rng = _rng("ibw-abw")
    for _ in range(N):
        sex, height, weight = rng.choice(["female", "male"]), rng.uniform(121, 249), rng.uniform(11, 499)
        ibw = fn["ideal_body_weight"](sex=sex, height=height)["ibw"]
        abw = fn["adjusted_body_weight"](sex=sex, height=height, weight=weight)
        assert abw["ibw"] == ibw
        assert min(ibw, weight) - 0.05 <= abw["abw"] <= max(ibw, weight) + 0.05  # between IBW and actual weight
        assert fn["ideal_body_weight"](sex=sex, height=height + 1)["ibw"] >= ibw  # taller -> heavier IBW
        assert fn["adjusted_body_weight"](sex=sex, height=height, weight=weight + 1)["abw"] >= abw["abw"]
    # men's base is 4.5 kg above women's at every height
    assert fn["ideal_body_weight"](sex="male", height=170)["ibw"] - fn["ideal_body_weight"](sex="female", height=170)["ibw"] == pytest.approx(4.5)


# ------------------------------------------------------------------------------------------ target weight
def test_target_weight_round_trips_with_bmi(fn):
    """target_weight(bmi(w, h), h) == w: the inverse of the BMI definition (medcalc's target_weight does not
    import, see the module docstring)."""
    rng = _rng("target")
    for _ in range(N):
        height, weight = rng.uniform(120, 220), rng.uniform(25, 180)
        bmi = fn["bmi"](weight=weight, height=height)["bmi"]
        if not 10 <= bmi <= 60:
            continue
        back = fn["target_weight"](target_bmi=bmi, height=height)["target_weight"]
        assert abs(back - weight) <= 0.05 + 0.005 * (height / 100) ** 2 + 1e-9, (weight, height, bmi, back)
        assert fn["target_weight"](target_bmi=min(bmi + 1, 60), height=height)["target_weight"] >= back


# ------------------------------------------------------------------------------------------ QTc
QTC = {"qtc_bazett": (mc_bazett.bazett_calculator_explanation if MEDCALC else None, "bazett"),
       "qtc_fridericia": (mc_fridericia.fredericia_calculator_explanation if MEDCALC else None, "fridericia"),
       "qtc_framingham": (mc_qt_framingham.framingham_calculator_explanation if MEDCALC else None, None),
       "qtc_hodges": (mc_hodges.hodges_calculator_explanation if MEDCALC else None, None),
       "qtc_rautaharju": (mc_rautaharju.rautaharju_calculator_explanation if MEDCALC else None, None)}
QTC_MODULES = {"qtc_bazett": "qt_calculator_bazett", "qtc_fridericia": "qt_calculator_fredericia",
               "qtc_framingham": "qt_calculator_framingham", "qtc_hodges": "qt_calculator_hodges",
               "qtc_rautaharju": "qt_calculator_rautaharju"}


@with_medcalc
@pytest.mark.parametrize("name", sorted(QTC))
def test_qtc_matches_medcalc_without_its_rr_rounding(fn, name, monkeypatch):
    """medcalc rounds RR = 60/HR to 3 decimals before correcting; with that intermediate rounding removed
    (round_number -> identity, a documented transformation) the formulas agree to our whole-ms rounding."""
    monkeypatch.setattr(sys.modules[f"medcalc.{QTC_MODULES[name]}"], "round_number", lambda x: x)
    function = QTC[name][0]
    rng = _rng(name)
    for _ in range(N):
        qt, hr, sex = rng.uniform(150, 800), rng.uniform(20, 300), rng.choice(["female", "male"])
        ours = fn[name](qt=qt, heart_rate=hr, sex=sex)["qtc"]
        theirs = _answer(function, {"heart_rate": (hr, "beats per minute"), "qt_interval": (qt, "msec")})
        assert abs(ours - theirs) <= 0.5 + 1e-6, (name, qt, hr, ours, theirs)


@with_medcalc
@pytest.mark.parametrize("name", sorted(QTC))
def test_qtc_medcalc_rr_rounding_moves_results_by_under_2_ms(fn, name):
    """The unmodified medcalc call, for the record: its RR rounding costs at most a couple of ms in range."""
    rng = _rng(name + "-raw")
    for _ in range(N):
        qt, hr = rng.uniform(150, 800), rng.uniform(20, 300)
        ours = fn[name](qt=qt, heart_rate=hr, sex="male")["qtc"]
        theirs = _answer(QTC[name][0], {"heart_rate": (hr, "beats per minute"), "qt_interval": (qt, "msec")})
        assert abs(ours - theirs) <= 2.5, (name, qt, hr, ours, theirs)


def _om_qtc_band(interpretation):
    if "Markedly prolonged" in interpretation:
        return "markedly_prolonged"
    return "prolonged" if "Prolonged" in interpretation else "normal"


@with_open_medicine
@pytest.mark.parametrize("name", ["qtc_bazett", "qtc_fridericia"])
def test_qtc_matches_open_medicine(fn, name):
    """open-medicine rounds to 0.1 ms and calls QTc prolonged only above 450/460 ms (strictly), this at 450/460
    ms or more: categories are compared where the two readings cannot differ."""
    method = om_qtc.QTcMethod(QTC[name][1])
    rng = _rng(name + "-om")
    for _ in range(N):
        qt, hr, sex = rng.uniform(150, 800), rng.uniform(20, 300), rng.choice(["female", "male"])
        ours = fn[name](qt=qt, heart_rate=hr, sex=sex)
        theirs = om_qtc.calculate_corrected_qtc(om_qtc.CorrectedQTcParams(qt_ms=qt, heart_rate=hr, method=method,
                                                                          is_female=sex == "female"))
        assert abs(ours["qtc"] - theirs.value) <= 0.5 + 0.05 + 1e-9
        limit = 450 if sex == "male" else 460
        if min(abs(theirs.value - limit), abs(theirs.value - 500)) > 1:
            assert ours["band"] == _om_qtc_band(theirs.interpretation), (qt, hr, sex, ours, theirs.interpretation)


@with_open_medicine
def test_qtc_at_exactly_450_ms_in_a_man_is_prolonged_here_not_in_open_medicine(fn):
    """The documented threshold difference (>= 450 here per the AHA/ACCF/HRS 2009 wording as quoted; > 450 in
    open-medicine)."""
    ours = fn["qtc_bazett"](qt=450, heart_rate=60, sex="male")
    theirs = om_qtc.calculate_corrected_qtc(om_qtc.CorrectedQTcParams(qt_ms=450, heart_rate=60, is_female=False))
    assert ours["qtc"] == 450 and ours["band"] == "prolonged"
    assert theirs.value == 450 and _om_qtc_band(theirs.interpretation) == "normal"


@pytest.mark.parametrize("name", sorted(QTC))
def test_qtc_rises_with_qt_equals_qt_at_60_and_is_within_range(fn, name):
    rng = _rng(name + "-monotone")
    for _ in range(N):
        qt, hr, sex = rng.uniform(150, 790), rng.uniform(20, 300), rng.choice(["female", "male"])
        base = fn[name](qt=qt, heart_rate=hr, sex=sex)
        assert fn[name](qt=qt + 10, heart_rate=hr, sex=sex)["qtc"] >= base["qtc"]
        assert base["band"] in ("normal", "prolonged", "markedly_prolonged")
        assert base["rr_interval"] == pytest.approx(60 / hr, abs=0.0005)
        assert fn[name](qt=qt, heart_rate=60, sex=sex)["qtc"] == round(qt + 1e-9)  # RR = 1 s: no correction
    # every formula corrects upward at fast rates and downward at slow ones
    assert fn[name](qt=400, heart_rate=100, sex="male")["qtc"] > 400 > fn[name](qt=400, heart_rate=50, sex="male")["qtc"]


def test_qtc_sci_rep_2021_figure_increments(fn):
    """Scientific Reports 2021 (doi:10.1038/s41598-021-93774-9) Figure 1: between recordings A (52.7 bpm, QT 405)
    and C (85.9 bpm, QT 395) the QTc rises by 92 (Bazett), 58 (Fridericia), 58 (Framingham) and 48 ms (Hodges),
    and by 62 ms for the paper's Rautaharju correction, which is not the form implemented here (63 ms)."""
    def rise(name):
        a = fn[name](qt=405, heart_rate=52.7, sex="male")["qtc"]
        c = fn[name](qt=395, heart_rate=85.9, sex="male")["qtc"]
        return c - a
    assert rise("qtc_bazett") == pytest.approx(92, abs=1.5)
    assert rise("qtc_fridericia") == pytest.approx(58, abs=1.5)
    assert rise("qtc_framingham") == pytest.approx(58, abs=1.5)
    assert rise("qtc_hodges") == pytest.approx(48, abs=1.5)
    assert rise("qtc_rautaharju") == pytest.approx(63, abs=1.5)


# ------------------------------------------------------------------------------------------ LDL
@with_medcalc
def test_ldl_friedewald_matches_medcalc(fn):
    rng = _rng("ldl")
    for _ in range(N):
        tc, hdl, tg = rng.uniform(100, 500), rng.uniform(15, 120), rng.uniform(20, 400)
        ours = fn["ldl_friedewald"](total_cholesterol=tc, hdl=hdl, triglycerides=tg)["ldl"]
        theirs = _answer(mc_ldl.compute_ldl_explanation, {"total_cholestrol": (tc, "mg/dL"), "hdl_cholestrol": (hdl, "mg/dL"),
                                                          "triglycerides": (tg, "mg/dL")})
        assert abs(ours - theirs) <= 0.5 + 0.0005 + 1e-9, (tc, hdl, tg, ours, theirs)


def test_ldl_friedewald_refuses_triglycerides_above_400(fn):
    """Friedewald 1972: not valid above 400 mg/dL; the error names the input and its range."""
    fn["ldl_friedewald"](total_cholesterol=250, hdl=40, triglycerides=400)
    with pytest.raises(ValueError, match="triglycerides"):
        fn["ldl_friedewald"](total_cholesterol=250, hdl=40, triglycerides=401)


def test_ldl_friedewald_is_monotone(fn):
    rng = _rng("ldl-monotone")
    for _ in range(N):
        tc, hdl, tg = rng.uniform(100, 500), rng.uniform(15, 120), rng.uniform(20, 390)
        base = fn["ldl_friedewald"](total_cholesterol=tc, hdl=hdl, triglycerides=tg)["ldl"]
        assert fn["ldl_friedewald"](total_cholesterol=tc + 10, hdl=hdl, triglycerides=tg)["ldl"] >= base
        assert fn["ldl_friedewald"](total_cholesterol=tc, hdl=hdl + 10, triglycerides=tg)["ldl"] <= base
        assert fn["ldl_friedewald"](total_cholesterol=tc, hdl=hdl, triglycerides=tg + 10)["ldl"] <= base


# ------------------------------------------------------------------------------------------ HOMA-IR
@with_medcalc
def test_homa_ir_matches_medcalc_to_its_405_constant(fn):
    rng = _rng("homa")
    for _ in range(N):
        insulin, glucose = rng.uniform(0.5, 300), rng.uniform(2, 40)
        ours = fn["homa_ir"](insulin=insulin, glucose=glucose)["homa_ir"]
        # glucose goes to medcalc in mg/dL (x 18.016, its own molar mass): its mmol/L path is lossy (xfail below)
        theirs = _answer(mc_homa.compute_homa_ir_explanation, {"insulin": [insulin, "µIU/mL"], "glucose": [glucose * 18.016, "mg/dL"]})
        exact = insulin * glucose / 22.5
        assert abs(theirs - exact * 22.5 * 18.016 / 405) <= 0.0005 + 1e-9 * exact  # medcalc = mg/dL form / 405
        assert abs(ours - theirs) <= 0.005 + 0.0009 * exact + 0.0005, (insulin, glucose, ours, theirs)


@with_medcalc
@pytest.mark.xfail(strict=True, reason="medcalc-bench's unit converter (utils/unit_converter_new.py) rounds the "
                   "amount in mol to 3 decimals, so glucose 5.5 mmol/L becomes 0.006 mol -> 5.0 mmol/L worth; "
                   "Matthews 1985 takes glucose in mmol/L as measured")
def test_homa_ir_medcalc_glucose_in_mmol_per_l(fn):
    ours = fn["homa_ir"](insulin=10, glucose=5.5)["homa_ir"]
    theirs = _answer(mc_homa.compute_homa_ir_explanation, {"insulin": [10, "µIU/mL"], "glucose": [5.5, "mmol/L"]})
    assert theirs == pytest.approx(ours, rel=0.01)


@with_medcalc
@pytest.mark.xfail(strict=True, reason="medcalc-bench homa_ir.py multiplies insulin in pmol/L by 6; since "
                   "1 microU/mL = 6 pmol/L it must divide (Matthews 1985 uses microU/mL)")
def test_homa_ir_medcalc_pmol_per_l_conversion(fn):
    ours = fn["homa_ir"](insulin=10, glucose=5)["homa_ir"]  # 10 microU/mL = 60 pmol/L
    theirs = _answer(mc_homa.compute_homa_ir_explanation, {"insulin": [60, "pmol/L"], "glucose": [5, "mmol/L"]})
    assert theirs == pytest.approx(ours, rel=0.01)


def test_homa_ir_rises_with_insulin_and_glucose(fn):
    rng = _rng("homa-monotone")
    for _ in range(N):
        insulin, glucose = rng.uniform(0.5, 900), rng.uniform(1.5, 45)
        base = fn["homa_ir"](insulin=insulin, glucose=glucose)["homa_ir"]
        assert base >= 0
        assert fn["homa_ir"](insulin=insulin + 5, glucose=glucose)["homa_ir"] >= base
        assert fn["homa_ir"](insulin=insulin, glucose=glucose + 1)["homa_ir"] >= base


# ------------------------------------------------------------------------------------------ FIB-4
@with_medcalc
def test_fib4_matches_medcalc(fn):
    rng = _rng("fib4")
    for _ in range(N):
        age, ast, alt, plt = rng.randint(18, 110), rng.uniform(5, 2000), rng.uniform(5, 2000), rng.uniform(10, 1000)
        ours = fn["fib4"](age=age, ast=ast, alt=alt, platelets=plt)["fib4"]
        theirs = _answer(mc_fib4.compute_fib4_explanation, {"age": (age, "years"), "ast": (ast, "U/L"), "alt": (alt, "U/L"),
                                                            "platelet_count": (plt * 1e9, "L")})
        assert abs(ours - theirs) <= 0.005 + 0.0005 + 1e-9 * theirs, (age, ast, alt, plt, ours, theirs)


OM_FIB4 = {"Low risk": "low", "Indeterminate": "indeterminate", "High risk": "high"}


@with_open_medicine
def test_fib4_matches_open_medicine_with_the_masld_cut_offs(fn):
    rng = _rng("fib4-om")
    for _ in range(N):
        age, ast, alt, plt = rng.randint(18, 110), rng.uniform(5, 300), rng.uniform(5, 300), rng.uniform(20, 600)
        ours = fn["fib4"](age=age, ast=ast, alt=alt, platelets=plt, cutoffs="masld")
        theirs = om_fib4.calculate_fib4(om_fib4.FIB4Params(age=age, ast=ast, alt=alt, platelets=plt))
        assert abs(ours["fib4"] - theirs.value) <= 0.01 + 1e-9  # half up here, half even there
        if min(abs(theirs.value - 1.30), abs(theirs.value - 2.67)) > 0.011:
            label = next(v for k, v in OM_FIB4.items() if k in theirs.interpretation)
            assert ours["band"] == label, (age, ast, alt, plt, ours, theirs.interpretation)


def test_fib4_is_monotone_and_the_masld_cut_offs_are_stricter(fn):
    rng = _rng("fib4-monotone")
    for _ in range(N):
        age, ast, alt, plt = rng.randint(18, 100), rng.uniform(5, 2000), rng.uniform(5, 2000), rng.uniform(10, 1000)
        base = fn["fib4"](age=age, ast=ast, alt=alt, platelets=plt)
        assert fn["fib4"](age=age + 5, ast=ast, alt=alt, platelets=plt)["fib4"] >= base["fib4"]
        assert fn["fib4"](age=age, ast=ast + 5, alt=alt, platelets=plt)["fib4"] >= base["fib4"]
        assert fn["fib4"](age=age, ast=ast, alt=alt, platelets=plt + 5)["fib4"] <= base["fib4"]
        assert fn["fib4"](age=age, ast=ast, alt=alt + 5, platelets=plt)["fib4"] <= base["fib4"]
        masld = fn["fib4"](age=age, ast=ast, alt=alt, platelets=plt, cutoffs="masld")
        assert masld["fibrosis_risk"] >= base["fibrosis_risk"]  # lower cut-offs never classify lower


# ------------------------------------------------------------------------------------------ fluids
@with_medcalc
def test_maintenance_fluids_hourly_matches_medcalc(fn):
    rng = _rng("fluids")
    weights = [rng.uniform(1, 250) for _ in range(N)] + [1, 9.99, 10, 10.01, 20, 20.01, 250]
    for weight in weights:
        ours = fn["maintenance_fluids"](weight=weight)["hourly_rate"]
        theirs = _answer(mc_fluids.maintenance_fluid_explanation, {"weight": (weight, "kg")})
        assert abs(ours - theirs) <= 0.05 + 0.0005 + 1e-9, (weight, ours, theirs)


@with_open_medicine
def test_maintenance_fluids_hourly_and_daily_match_open_medicine(fn):
    rng = _rng("fluids-om")
    for weight in [rng.uniform(1, 250) for _ in range(N)] + [10, 20]:
        ours = fn["maintenance_fluids"](weight=weight)
        theirs = om_fluids.calculate_maintenance_iv_fluids(om_fluids.MaintenanceIVFluidsParams(weight_kg=weight))
        daily = float(re.search(r"\(([\d.]+) mL/day\)", theirs.interpretation).group(1))
        assert abs(ours["hourly_rate"] - theirs.value) <= 0.05 + 1e-9
        assert abs(ours["daily_volume"] - daily) <= 0.5 + 0.05 + 1e-9


def test_maintenance_fluids_are_continuous_and_rise_with_weight(fn):
    for low, high in ((9.999, 10.001), (19.999, 20.001)):
        a, b = fn["maintenance_fluids"](weight=low), fn["maintenance_fluids"](weight=high)
        assert abs(a["hourly_rate"] - b["hourly_rate"]) <= 0.1 and abs(a["daily_volume"] - b["daily_volume"]) <= 1
    previous = None
    for tenth in range(10, 2501, 7):
        result = fn["maintenance_fluids"](weight=tenth / 10)
        if previous:
            assert result["hourly_rate"] >= previous["hourly_rate"] and result["daily_volume"] >= previous["daily_volume"]
        previous = result


# ------------------------------------------------------------------------------------------ MME
MME_MEDCALC = {"codeine": "Codeine", "hydrocodone": "HYDROcodone", "hydromorphone": "HYDROmorphone",
               "methadone": "Methadone", "morphine": "Morphine", "oxycodone": "OxyCODONE",
               "oxymorphone": "OxyMORphone", "tapentadol": "Tapentadol", "tramadol": "TraMADol"}
CDC_2022 = {"codeine": 0.15, "fentanyl_transdermal": 2.4, "hydrocodone": 1, "hydromorphone": 5, "methadone": 4.7,
            "morphine": 1, "oxycodone": 1.5, "oxymorphone": 3, "tapentadol": 0.4, "tramadol": 0.2}


def _mc_mme(doses):
    """medcalc takes each opioid as a dose and doses per day; pass the daily total as one dose per day."""
    params = {}
    for ours, theirs in MME_MEDCALC.items():
        if doses.get(ours):
            params[f"{theirs} Dose"] = (doses[ours], "mg")
            params[f"{theirs} Dose Per Day"] = (1, "per day")
    return _answer(mc_mme.mme_explanation, params)


@with_medcalc
def test_mme_matches_medcalc_for_the_cdc_2022_opioids(fn):
    rng = _rng("mme")
    for _ in range(N):
        doses = {name: round(rng.uniform(1, 200), 1) for name in rng.sample(sorted(MME_MEDCALC), rng.randint(1, 4))}
        ours = fn["morphine_milligram_equivalents"](**doses)["mme_per_day"]
        theirs = _mc_mme(doses)
        assert abs(ours - theirs) <= 0.05 + 0.002 + 1e-9, (doses, ours, theirs)


@with_medcalc
@pytest.mark.xfail(strict=True, reason="medcalc-bench mme.py: the table key 'FentANYL patch' does not match the "
                   "'FentaNYL patch' its code tests, so a patch dose in mcg/h is not multiplied by 2.4 as CDC 2022 "
                   "prescribes (MMWR Recomm Rep 2022;71(RR-3), MME table: fentanyl transdermal 2.4 per mcg/h)")
def test_mme_medcalc_transdermal_fentanyl(fn):
    ours = fn["morphine_milligram_equivalents"](fentanyl_transdermal=25)["mme_per_day"]
    theirs = _answer(mc_mme.mme_explanation, {"FentANYL patch Dose": (25, "µg"), "FentANYL patch Dose Per Day": (1, "per day")})
    assert theirs == pytest.approx(ours)


def test_mme_is_additive_and_uses_the_cdc_2022_factors(fn):
    mme = fn["morphine_milligram_equivalents"]
    for name, factor in CDC_2022.items():
        assert mme(**{name: 100})["mme_per_day"] == pytest.approx(100 * factor, abs=0.05), name
    rng = _rng("mme-additive")
    for _ in range(N):
        doses = {name: rng.uniform(0, 300) for name in rng.sample(sorted(CDC_2022), rng.randint(1, 5))}
        total = mme(**doses)["mme_per_day"]
        assert total == pytest.approx(sum(CDC_2022[k] * v for k, v in doses.items()), abs=0.05 + 1e-9)
        bigger = dict(doses, morphine=doses.get("morphine", 0) + 10)
        assert mme(**bigger)["mme_per_day"] >= total


# ------------------------------------------------------------------------------------------ steroids
STEROID_MEDCALC = {"betamethasone": "Betamethasone IV", "cortisone": "Cortisone PO", "dexamethasone": "Dexamethasone PO",
                   "hydrocortisone": "Hydrocortisone PO", "methylprednisolone": "MethylPrednisoLONE PO",
                   "prednisolone": "PrednisoLONE PO", "prednisone": "PredniSONE PO", "triamcinolone": "Triamcinolone IV"}
BNF = {"betamethasone": 0.75, "cortisone": 25, "deflazacort": 6, "dexamethasone": 0.75, "hydrocortisone": 20,
       "methylprednisolone": 4, "prednisolone": 5, "prednisone": 5, "triamcinolone": 4}


@with_medcalc
def test_steroid_conversion_matches_medcalc(fn):
    """medcalc's ratios to dexamethasone are rounded to two decimals and its factor to three: 0.15% + 0.005."""
    rng = _rng("steroid")
    for _ in range(N):
        source, target = rng.choice(sorted(STEROID_MEDCALC)), rng.choice(sorted(STEROID_MEDCALC))
        dose = round(rng.uniform(0.5, 500), 2)
        ours = fn["steroid_conversion"](from_steroid=source, dose=dose, to_steroid=target)["equivalent_dose"]
        theirs = _answer(mc_steroid.compute_steroid_conversion_explanation,
                         {"input steroid": [STEROID_MEDCALC[source], dose, "mg"], "target steroid": STEROID_MEDCALC[target]})
        assert abs(ours - theirs) <= 0.0015 * ours + 0.005 + 0.0005 * dose, (source, target, dose, ours, theirs)


def test_steroid_conversion_round_trips_and_is_proportional(fn):
    convert = fn["steroid_conversion"]
    rng = _rng("steroid-props")
    for _ in range(N):
        a, b = rng.choice(sorted(BNF)), rng.choice(sorted(BNF))
        dose = rng.uniform(1, 200)
        there = convert(from_steroid=a, dose=dose, to_steroid=b)
        assert there["equivalent_dose"] == pytest.approx(dose * BNF[b] / BNF[a], abs=0.005 + 1e-9)
        assert there["prednisolone_equivalent"] == pytest.approx(dose * 5 / BNF[a], abs=0.005 + 1e-9)
        back = convert(from_steroid=b, dose=min(there["equivalent_dose"], 10000), to_steroid=a)["equivalent_dose"]
        assert back == pytest.approx(dose, abs=0.01 + 0.005 * BNF[a] / BNF[b] + 1e-9)
        assert convert(from_steroid=a, dose=dose * 2, to_steroid=b)["equivalent_dose"] == pytest.approx(2 * dose * BNF[b] / BNF[a], abs=0.005 + 1e-9)


# ------------------------------------------------------------------------------------------ Framingham
# The ATP III point tables (NIH Publication 01-3305, May 2001), written out independently of the .score file.
AGE_POINTS = {"male": [(34, -9), (39, -4), (44, 0), (49, 3), (54, 6), (59, 8), (64, 10), (69, 11), (74, 12), (79, 13)],
              "female": [(34, -7), (39, -3), (44, 0), (49, 3), (54, 6), (59, 8), (64, 10), (69, 12), (74, 14), (79, 16)]}
TC_POINTS = {"male": [[0] * 5, [4, 3, 2, 1, 0], [7, 5, 3, 1, 0], [9, 6, 4, 2, 1], [11, 8, 5, 3, 1]],
             "female": [[0] * 5, [4, 3, 2, 1, 1], [8, 6, 4, 2, 1], [11, 8, 5, 3, 2], [13, 10, 7, 4, 2]]}
SMOKER_POINTS = {"male": [8, 5, 3, 1, 1], "female": [9, 7, 4, 2, 1]}
SBP_POINTS = {("male", False): [0, 0, 1, 1, 2], ("male", True): [0, 1, 2, 2, 3],
              ("female", False): [0, 1, 2, 3, 4], ("female", True): [0, 3, 4, 5, 6]}
RISK = {"male": [(-1, 0), (4, 1), (6, 2), (7, 3), (8, 4), (9, 5), (10, 6), (11, 8), (12, 10), (13, 12), (14, 16),
                 (15, 20), (16, 25), (99, 30)],
        "female": [(8, 0), (12, 1), (14, 2), (15, 3), (16, 4), (17, 5), (18, 6), (19, 8), (20, 11), (21, 14), (22, 17),
                   (23, 22), (24, 27), (99, 30)]}


def atp3_points(sex, age, tc, hdl, sbp, treated, smoker):
    decade = 0 if age <= 39 else 1 if age <= 49 else 2 if age <= 59 else 3 if age <= 69 else 4
    tc_row = 0 if tc < 160 else 1 if tc < 200 else 2 if tc < 240 else 3 if tc < 280 else 4
    sbp_col = 0 if sbp < 120 else 1 if sbp < 130 else 2 if sbp < 140 else 3 if sbp < 160 else 4
    total = (next(p for top, p in AGE_POINTS[sex] if age <= top) + TC_POINTS[sex][tc_row][decade]
             + (SMOKER_POINTS[sex][decade] if smoker else 0) + SBP_POINTS[(sex, treated)][sbp_col]
             + (-1 if hdl >= 60 else 0 if hdl >= 50 else 1 if hdl >= 40 else 2))
    return total, next(r for top, r in RISK[sex] if total <= top)


def _framingham_case(rng):
    return dict(sex=rng.choice(["female", "male"]), age=rng.randint(20, 79), total_cholesterol=rng.uniform(100, 400),
                hdl=rng.uniform(20, 100), sbp=rng.uniform(90, 220), bp_treated=rng.random() < 0.3, smoker=rng.random() < 0.3)


def test_framingham_matches_the_atp3_tables(fn):
    rng = _rng("framingham-tables")
    cases = [_framingham_case(rng) for _ in range(2 * N)]
    # every category edge, for both sexes
    for sex in ("female", "male"):
        for tc in (159.9, 160, 199.9, 200, 239.9, 240, 279.9, 280):
            for hdl in (39.9, 40, 49.9, 50, 59.9, 60):
                cases.append(dict(sex=sex, age=rng.randint(20, 79), total_cholesterol=tc, hdl=hdl, sbp=rng.choice([119.9, 120, 129.9, 130, 139.9, 140, 159.9, 160]),
                                  bp_treated=rng.random() < 0.5, smoker=rng.random() < 0.5))
        for age in (20, 34, 35, 39, 40, 44, 45, 49, 50, 54, 55, 59, 60, 64, 65, 69, 70, 74, 75, 79):
            cases.append(dict(sex=sex, age=age, total_cholesterol=250, hdl=45, sbp=135, bp_treated=False, smoker=True))
    for case in cases:
        result = fn["framingham_hard_chd"](**case)
        total, risk = atp3_points(case["sex"], case["age"], case["total_cholesterol"], case["hdl"], case["sbp"],
                                  case["bp_treated"], case["smoker"])
        assert (result["total"], result["risk_percent"]) == (total, risk), case
        assert result["band"] == ("low" if risk < 10 else "moderate" if risk <= 20 else "high")


def _medcalc_framingham(case, patched):
    unit = "mmol/L" if patched else "mg/dL"  # patched: pass mg/dL unconverted (labelled so medcalc keeps the numbers)
    params = {"sex": _mc_sex(case["sex"]), "age": (case["age"], "years"), "sys_bp": (case["sbp"], "mm Hg"),
              "smoker": case["smoker"], "bp_medicine": case["bp_treated"],
              "total_cholestrol": (case["total_cholesterol"], unit), "hdl_cholestrol": (case["hdl"], unit)}
    return _answer(mc_framingham.framingham_risk_score_explanation, params)


@with_medcalc
def test_framingham_points_agree_with_the_atp3_equation_in_category(fn, monkeypatch):
    """medcalc with its two defects removed (cholesterol left in mg/dL; round() replaced by the identity) is the
    continuous ATP III equation. The point tables approximate it: away from the 10% and 20% boundaries the ATP III
    category agrees in at least 90% of cases (96% at this seed), and the median difference is about 1 point."""
    monkeypatch.setattr(mc_framingham, "round", lambda x, n=None: x, raising=False)
    rng = _rng("framingham-medcalc")
    agree = compared = 0
    differences = []
    for _ in range(1000):
        # ages and levels typical of the Framingham cohort (30-74 years); outside them the tables' open-ended
        # top categories (TC >= 280, SBP >= 160, risk >= 30%) make the two variants diverge more
        case = dict(_framingham_case(rng), age=rng.randint(30, 74), total_cholesterol=rng.uniform(130, 320),
                    hdl=rng.uniform(25, 90), sbp=rng.uniform(95, 200))
        equation = _medcalc_framingham(case, patched=True)
        points = fn["framingham_hard_chd"](**case)
        differences.append(abs((0 if equation < 1 else min(equation, 30)) - points["risk_percent"]))
        if min(abs(equation - 10), abs(equation - 20)) > 3:
            compared += 1
            agree += points["band"] == ("low" if equation < 10 else "moderate" if equation <= 20 else "high")
    assert agree >= 0.9 * compared and compared > 500
    assert sorted(differences)[len(differences) // 2] <= 1.5


@with_medcalc
@pytest.mark.xfail(strict=True, reason="medcalc-bench framingham_risk_score.py converts cholesterol to mmol/L "
                   "before applying coefficients fitted on mg/dL and rounds the risk fraction to one decimal; the ATP III "
                   "tables (JAMA 2001;285:2486) give a man of 55 (TC 250, HDL 39, SBP 146, smoker) 18 points, >= 30%")
def test_framingham_medcalc_unmodified(fn):
    case = dict(sex="male", age=55, total_cholesterol=250, hdl=39, sbp=146, bp_treated=False, smoker=True)
    assert fn["framingham_hard_chd"](**case)["risk_percent"] == 30
    assert _medcalc_framingham(case, patched=False) >= 20


def test_framingham_risk_rises_with_each_risk_factor(fn):
    """Within one age: more cholesterol, less HDL, higher SBP or smoking never lowers the risk. Age is not
    monotone in the ATP III tables: cholesterol and smoking points fall with each age decade, so a 49-year-old
    smoker with TC >= 280 (3 + 8 + 5) outscores the same man at 50 (6 + 5 + 3)."""
    rng = _rng("framingham-monotone")
    for _ in range(N):
        case = _framingham_case(rng)
        base = fn["framingham_hard_chd"](**case)["risk_percent"]
        worse = [dict(case, total_cholesterol=case["total_cholesterol"] + 40), dict(case, hdl=case["hdl"] - 10),
                 dict(case, sbp=case["sbp"] + 20), dict(case, smoker=True)]
        for other in worse:
            assert fn["framingham_hard_chd"](**other)["risk_percent"] >= base, (case, other)


# ------------------------------------------------------------------------------------------ ranges
@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_inputs_are_refused_with_the_input_named(fn, name):
    ranges = _ranges(name)
    assert ranges, name
    valid = {}
    text = (shipped_specs() / "instruments" / f"{name}.score").read_text()
    for param, (low, high) in ranges.items():
        is_int = re.search(rf"^\s+{param}: int", text, re.M) is not None
        valid[param] = int(low) if is_int else (low + high) / 2
    for m in re.finditer(r"^\s+(\w+): (enum\(([^)]*)\)|bool)", text, re.M):
        valid.setdefault(m.group(1), m.group(3).split(",")[0].strip() if m.group(3) else False)
    if name == "adjusted_body_weight":
        valid["weight"] = 80
    fn[name](**valid)
    for param, (low, high) in ranges.items():
        for bad in (low - 1, high + 1):
            with pytest.raises(ValueError, match=param):
                fn[name](**dict(valid, **{param: bad}))


# ------------------------------------------------------------------------------------------ unit round trips
LB, KG, CM, M = u.lookup("lb"), u.lookup("kg"), u.lookup("cm"), u.lookup("m")


def _convert(value, src, dst):
    scale, shift = u.conversion(src, dst)
    return value * scale + shift


def test_kg_lb_and_cm_m_round_trip():
    rng = _rng("units")
    for _ in range(N):
        kg, cm = rng.uniform(1, 500), rng.uniform(30, 250)
        assert _convert(_convert(kg, KG, LB), LB, KG) == pytest.approx(kg, rel=1e-12)
        assert _convert(_convert(cm, CM, M), M, CM) == pytest.approx(cm, rel=1e-12)
    assert _convert(150, LB, KG) == pytest.approx(68.0388555)  # the CDC BMI example's 150 lb


def test_weights_and_heights_given_in_other_units_give_the_same_result(fn):
    """A caller holding lb and m converts with the unit table; the instruments then agree with kg/cm inputs."""
    rng = _rng("units-instruments")
    for _ in range(N):
        kg, cm = rng.uniform(20, 250), rng.uniform(120, 220)
        same_kg, same_cm = _convert(_convert(kg, KG, LB), LB, KG), _convert(_convert(cm, CM, M), M, CM)
        assert fn["bmi"](weight=same_kg, height=same_cm) == fn["bmi"](weight=kg, height=cm)
        assert fn["bsa"](weight=same_kg, height=same_cm) == fn["bsa"](weight=kg, height=cm)
        assert fn["maintenance_fluids"](weight=same_kg) == fn["maintenance_fluids"](weight=kg)


SPEC_CALLS = """instrument unit_calls "Spec-level calls with other units"
  source "test fixture: the body instruments called with lb, m and g, converted by the compiler"
  inputs
    w_lb: number lb in 1..1000
    h_m: number m in 0.5..2.5
  result bmi_value = bmi(weight = w_lb, height = h_m).bmi
  result bsa_value = bsa(weight = w_lb, height = h_m).bsa
  result ibw_value = ideal_body_weight(sex = male, height = h_m).ibw
  result fluids_value = maintenance_fluids(weight = w_lb).hourly_rate
  result steroid_value = steroid_conversion(from_steroid = prednisone, dose = 0.04 g, to_steroid = methylprednisolone).equivalent_dose
  example "Constructed: 154.32358 lb = 70 kg, 1.75 m = 175 cm (WHO BMI example: 22.86)"
    given w_lb = 154.32358, h_m = 1.75
    expect bmi_value = 22.86, bsa_value = 1.84, ibw_value = 70.5, fluids_value = 110, steroid_value = 32 within 0.006
  example "Constructed: 180 cm, 80 kg = 176.36981 lb: Mosteller 2.00"
    given w_lb = 176.36981, h_m = 1.8
    expect bsa_value = 2.00 within 0.006
  example "Constructed: 10 kg = 22.046226 lb: 40 mL/h"
    given w_lb = 22.046226, h_m = 1.2
    expect fluids_value = 40 within 0.006
end
"""


def test_spec_expressions_convert_units_before_calling_the_instruments(tmp_path):
    """Another spec calling these instruments with lb, m and g literals gets the kg/cm results (compile-time
    Convert nodes; a wrong dimension would be a compile error)."""
    specs = tmp_path / "specs"
    (specs / "instruments").mkdir(parents=True)
    (specs / "medgym.yaml").write_text((shipped_specs() / "medgym.yaml").read_text())
    for name in ("bmi", "bsa", "ideal_body_weight", "maintenance_fluids", "steroid_conversion"):
        (specs / "instruments" / f"{name}.score").write_text((shipped_specs() / "instruments" / f"{name}.score").read_text())
    (specs / "instruments" / "zz_unit_calls.score").write_text(SPEC_CALLS)
    compile_specs(specs, tmp_path / "build")  # the worked examples above are replayed at compile time
    calls = Build.open(tmp_path / "build").instruments["unit_calls"]
    assert calls(w_lb=154.32358, h_m=1.75)["bmi_value"] == pytest.approx(22.86, abs=0.005)
