"""Renal, acid-base and electrolyte instruments: cockcroft_gault, ckd_epi_2021, mdrd, corrected_calcium,
sodium_correction_hyperglycaemia, anion_gap, anion_gap_albumin_corrected, delta_gap, delta_ratio,
serum_osmolality, free_water_deficit, fena, kdigo_aki_stage.

Differential tests run the compiled instruments against two independent implementations that install
offline, on seeded random samples across each input's declared range:
- medcalc-bench 1.7.0 (Apache-2.0, import name `medcalc`): creatinine_clearance, ckd_epi_2021_creatinine,
  mdrd_gfr, calcium_correction, sch (sodium correction), anion_gap, albumin_corrected_anion, delta_gap,
  albumin_corrected_delta_gap, albumin_delta_ratio, sOsm, free_water_deficit, compute_fena;
- open-medicine 0.12 (MIT; open_medicine/mcp/calculators/): cockcroft_gault, ckd_epi, corrected_calcium,
  corrected_sodium, anion_gap (with and without albumin), serum_osmolality.
Neither has a KDIGO AKI staging calculator; kdigo_aki_stage is checked against a truth function written
here from KDIGO 2012 Table 2, independently of the .score file.
The benchmark's answers are never the reference: where an implementation and the .score file disagree, the
test below says why, citing the publication that decides:
- cockcroft_gault / medcalc: MedCalc-Bench does not use the weight it is given: it picks actual weight
  (BMI < 18.5), min(ideal, actual) (BMI 18.5-24.9) or adjusted weight (BMI >= 25). Cockcroft & Gault 1976
  used actual body weight. The comparison passes MedCalc-Bench's chosen weight to the instrument (a
  documented transformation), and a separate test shows the disagreement when actual weight is passed.
- ckd_epi_2021 / medcalc: `ckd_epi_2021()` agrees; `ckd_epi_2021_explanation()` (the function that writes
  MedCalc-Bench-style answers) uses kappa = 0.7 for men with creatinine <= 0.9 mg/dL, where Inker 2021
  gives kappa = 0.9 for men - strict xfail.
- corrected_calcium: both implementations compute Ca + 0.8 x (4 - albumin); the instrument's default
  output follows Payne 1973 as published (Ca - albumin + 4.0, slope 1.0) and reports the 0.8 form as
  `corrected_calcium_08`, which is what is compared; the difference is tested to be 0.2 x (4 - albumin).
- sodium_correction_hyperglycaemia: MedCalc-Bench applies Hillier's 2.4 (and open-medicine Katz's 1.6)
  below 100 mg/dL too, lowering the sodium; the instrument floors the glucose excess at 0 (both papers
  define a correction for hyperglycaemia, per 100 mg/dL above 100). Compared for glucose >= 100 only; the
  disagreement below 100 is tested explicitly.
- serum_osmolality: compared on the conventional formula (`calculated_osmolality_without_ethanol`); the
  Dorwart-Chalmers and ethanol outputs have no independent implementation here.
Rounding: each side rounds on its own (the instruments as the .score files say; open-medicine to 0.1;
medcalc to 0.001, and to 3 significant figures for negative numbers - its round_number), so comparisons
allow the two half-quanta.
"""
import random

import pytest

from medgym.dsl.support import read_inputs

pytest.importorskip("medcalc")
pytest.importorskip("open_medicine")

from medcalc import adjusted_body_weight as mc_abw  # noqa: E402
from medcalc import albumin_corrected_anion as mc_agc  # noqa: E402
from medcalc import albumin_corrected_delta_gap as mc_acdg  # noqa: E402
from medcalc import albumin_delta_ratio as mc_adr  # noqa: E402
from medcalc import anion_gap as mc_ag  # noqa: E402
from medcalc import bmi_calculator as mc_bmi  # noqa: E402
from medcalc import calcium_correction as mc_ca  # noqa: E402
from medcalc import ckd_epi_2021_creatinine as mc_ckd  # noqa: E402
from medcalc import compute_fena as mc_fena  # noqa: E402
from medcalc import creatinine_clearance as mc_cg  # noqa: E402
from medcalc import delta_gap as mc_dg  # noqa: E402
from medcalc import free_water_deficit as mc_fwd  # noqa: E402
from medcalc import ideal_body_weight as mc_ibw  # noqa: E402
from medcalc import mdrd_gfr as mc_mdrd  # noqa: E402
from medcalc import sch as mc_sch  # noqa: E402
from medcalc import sOsm as mc_osm  # noqa: E402
from open_medicine.mcp.calculators import anion_gap as om_ag  # noqa: E402
from open_medicine.mcp.calculators import ckd_epi as om_ckd  # noqa: E402
from open_medicine.mcp.calculators import cockcroft_gault as om_cg  # noqa: E402
from open_medicine.mcp.calculators import corrected_calcium as om_ca  # noqa: E402
from open_medicine.mcp.calculators import corrected_sodium as om_na  # noqa: E402
from open_medicine.mcp.calculators import serum_osmolality as om_osm  # noqa: E402

NAMES = ("cockcroft_gault", "ckd_epi_2021", "mdrd", "corrected_calcium", "sodium_correction_hyperglycaemia",
         "anion_gap", "anion_gap_albumin_corrected", "delta_gap", "delta_ratio", "serum_osmolality",
         "free_water_deficit", "fena", "kdigo_aki_stage")
N = 300  # samples per differential or property test
EPS = 1e-9


def _rng(name):
    return random.Random(f"renal-{name}")


def _u(rng, lo, hi, digits=1):
    return round(rng.uniform(lo, hi), digits)


def _close(ours, theirs, ours_step, theirs_step):
    """Two roundings of the same number: each is within half its step of it."""
    return abs(ours - theirs) <= (ours_step + theirs_step) / 2 + EPS


def _mc_step(value):
    """medcalc's round_number: 0.001 above 0.001, three significant figures otherwise (negatives too)."""
    if value > 0.001:
        return 0.001
    if value == 0:
        return 0
    from math import floor, log10
    return 10 ** (floor(log10(abs(value))) - 2)


def _electrolytes(rng):
    sodium = _u(rng, 120, 160)
    bicarbonate = _u(rng, 4, 23.8)
    chloride = _u(rng, 80, min(130, sodium - bicarbonate))
    return sodium, chloride, bicarbonate


# ------------------------------------------------------------------------------- Cockcroft-Gault
def _cg_sample(rng):
    return {"age": rng.randint(18, 100), "weight": _u(rng, 35, 200), "creatinine": _u(rng, 0.3, 12, 2),
            "sex": rng.choice(["female", "male"])}


def test_cockcroft_gault_matches_open_medicine(fn):
    rng = _rng("cg-om")
    for _ in range(N):
        x = _cg_sample(rng)
        om = om_cg.calculate_cockcroft_gault(om_cg.CockcroftGaultParams(
            age=x["age"], weight=x["weight"], is_female=x["sex"] == "female", serum_creatinine=x["creatinine"]))
        assert _close(fn["cockcroft_gault"](**x)["crcl"], om.value, 0.1, 0.1), x


def _medcalc_cg_weight(params):
    """The weight MedCalc-Bench's generate_cockcroft_gault_explanation puts into the equation (its own rule,
    recomputed with its own BMI, IBW and ABW functions)."""
    bmi = float(mc_bmi.bmi_calculator_explanation(params)["Answer"])
    weight = params["weight"][0]
    if bmi < 18.5:
        return weight
    if bmi <= 24.9:
        return min(mc_ibw.ibw_explanation(params)["Answer"], weight)
    return mc_abw.abw_explanation(params)["Answer"]


def test_cockcroft_gault_matches_medcalc_given_its_weight(fn):
    """Documented transformation: MedCalc-Bench chooses the weight from the BMI (see the module docstring);
    with that weight passed in, the equation agrees."""
    rng = _rng("cg-mc")
    checked = 0
    for _ in range(N):
        x = _cg_sample(rng)
        params = {"sex": x["sex"].capitalize(), "weight": (x["weight"], "kg"), "height": (_u(rng, 150, 195), "cm"),
                  "creatinine": (x["creatinine"], "mg/dL"), "age": (x["age"], "years")}
        used = _medcalc_cg_weight(params)
        if not 20 <= used <= 300:
            continue  # outside the instrument's weight range (MedCalc-Bench's IBW of a short, light patient)
        theirs = mc_cg.generate_cockcroft_gault_explanation(params)["Answer"]
        ours = fn["cockcroft_gault"](**{**x, "weight": used})["crcl"]
        assert _close(ours, theirs, 0.1, 0.001), (x, used)
        checked += 1
    assert checked > N * 0.9


def test_cockcroft_gault_disagrees_with_medcalc_when_actual_weight_is_used(fn):
    """Cockcroft & Gault 1976 used actual body weight; MedCalc-Bench substitutes adjusted body weight for an
    obese patient (BMI >= 25), so the answers differ exactly by the ratio of the two weights."""
    params = {"sex": "Male", "weight": (120.0, "kg"), "height": (175.0, "cm"), "creatinine": (1.0, "mg/dL"),
              "age": (60, "years")}
    theirs = mc_cg.generate_cockcroft_gault_explanation(params)["Answer"]
    ours = fn["cockcroft_gault"](age=60, weight=120.0, creatinine=1.0, sex="male")["crcl"]
    assert ours == pytest.approx(80 * 120 / 72, abs=0.05)  # 133.3 mL/min with actual weight
    assert theirs == pytest.approx(ours * _medcalc_cg_weight(params) / 120.0, abs=0.1)
    assert theirs < ours - 30


# ------------------------------------------------------------------------------- CKD-EPI 2021
def _ckd_sample(rng):
    return {"creatinine": _u(rng, 0.2, 15, 2), "age": rng.randint(18, 100), "sex": rng.choice(["female", "male"])}


def test_ckd_epi_2021_matches_open_medicine_and_medcalc(fn):
    rng = _rng("ckd")
    for _ in range(N):
        x = _ckd_sample(rng)
        ours = fn["ckd_epi_2021"](**x)["egfr"]
        om = om_ckd.calculate_ckd_epi(om_ckd.CKDEPIParams(age=x["age"], is_female=x["sex"] == "female",
                                                           serum_creatinine=x["creatinine"])).value
        mc = mc_ckd.ckd_epi_2021({"sex": x["sex"].capitalize(), "age": (x["age"], "years"),
                                  "creatinine": (x["creatinine"], "mg/dL")})
        assert _close(ours, om, 1, 0.1), x
        assert _close(ours, mc, 1, 0), x


@pytest.mark.xfail(strict=True, reason="medcalc-bench 1.7.0 ckd_epi_2021_explanation uses kappa 0.7 for men with "
                   "creatinine <= 0.9 mg/dL; Inker LA et al., N Engl J Med 2021;385:1737-1749 gives kappa 0.9 for men "
                   "(its ckd_epi_2021() function has it right)")
def test_ckd_epi_2021_matches_medcalc_explanation_for_men_below_kappa(fn):
    ours = fn["ckd_epi_2021"](creatinine=0.8, age=40, sex="male")["egfr"]
    theirs = mc_ckd.ckd_epi_2021_explanation({"sex": "Male", "age": (40, "years"),
                                              "creatinine": (0.8, "mg/dL")})["Answer"]
    assert _close(ours, theirs, 1, 0.001)


# ------------------------------------------------------------------------------- MDRD
def test_mdrd_matches_medcalc(fn):
    rng = _rng("mdrd")
    for _ in range(N):
        x = {"creatinine": _u(rng, 0.3, 15, 2), "age": rng.randint(18, 100), "sex": rng.choice(["female", "male"]),
             "black": rng.random() < 0.3}
        params = {"sex": x["sex"].capitalize(), "age": (x["age"], "years"), "creatinine": (x["creatinine"], "mg/dL")}
        if x["black"]:
            params["race"] = "Black"
        assert _close(fn["mdrd"](**x)["egfr"], mc_mdrd.mrdr_gfr_explanation(params)["Answer"], 1, 0.001), x


# ------------------------------------------------------------------------------- corrected calcium
def test_corrected_calcium_08_matches_medcalc_and_open_medicine(fn):
    rng = _rng("ca")
    for _ in range(N):
        calcium, albumin = _u(rng, 4, 16), _u(rng, 0.8, 6)
        out = fn["corrected_calcium"](calcium=calcium, albumin=albumin)
        mc = mc_ca.calculate_corrected_calcium_explanation({"albumin": (albumin, "g/dL"),
                                                             "calcium": (calcium, "mg/dL")})["Answer"]
        om = om_ca.calculate_corrected_calcium(om_ca.CorrectedCalciumParams(calcium=calcium, albumin=albumin)).value
        assert _close(out["corrected_calcium_08"], mc, 0.1, 0.001), (calcium, albumin)
        assert _close(out["corrected_calcium_08"], om, 0.1, 0.1), (calcium, albumin)


def test_corrected_calcium_payne_1973_differs_by_a_fifth_of_the_albumin_deficit(fn):
    """Payne RB et al., Br Med J 1973;4:643-646: adjusted calcium = calcium - albumin + 4.0 (slope 1.0),
    not the slope 0.8 both implementations use - documented in corrected_calcium.score."""
    rng = _rng("ca-payne")
    for _ in range(N):
        calcium, albumin = _u(rng, 4, 16), _u(rng, 0.8, 6)
        out = fn["corrected_calcium"](calcium=calcium, albumin=albumin)
        mc = mc_ca.calculate_corrected_calcium_explanation({"albumin": (albumin, "g/dL"),
                                                             "calcium": (calcium, "mg/dL")})["Answer"]
        assert _close(out["corrected_calcium"], calcium - albumin + 4.0, 0.1, 0)
        assert abs(out["corrected_calcium"] - mc - 0.2 * (4.0 - albumin)) <= 0.05 + 0.0005 + EPS


# ------------------------------------------------------------------------------- sodium correction
def test_sodium_correction_matches_medcalc_hillier_and_open_medicine_katz(fn):
    rng = _rng("na")
    for _ in range(N):
        sodium, glucose = _u(rng, 110, 160), _u(rng, 100, 2000, 0)
        out = fn["sodium_correction_hyperglycaemia"](sodium=sodium, glucose=glucose)
        mc = mc_sch.compute_sodium_correction_hyperglycemia_explanation(
            {"sodium": (sodium, "mEq/L"), "glucose": (glucose, "mg/dL")})["Answer"]
        om = om_na.calculate_corrected_sodium(om_na.CorrectedSodiumParams(sodium=sodium, glucose=glucose)).value
        assert _close(out["corrected_sodium"], mc, 0.1, 0.001), (sodium, glucose)
        assert _close(out["corrected_sodium_katz"], om, 0.1, 0.1), (sodium, glucose)


def test_sodium_correction_below_100_mg_dl_is_floored_where_medcalc_is_not(fn):
    """Katz 1973 and Hillier 1999 correct per 100 mg/dL of glucose ABOVE 100; MedCalc-Bench extrapolates
    below (its own docstring: sodium 134, glucose 90 -> 133.76). Documented disagreement."""
    out = fn["sodium_correction_hyperglycaemia"](sodium=134, glucose=90)
    theirs = mc_sch.compute_sodium_correction_hyperglycemia_explanation(
        {"sodium": (134.0, "mEq/L"), "glucose": (90.0, "mg/dL")})["Answer"]
    assert out["corrected_sodium"] == 134.0 and out["corrected_sodium_katz"] == 134.0
    assert theirs == pytest.approx(133.76)


# ------------------------------------------------------------------------------- anion gap family
def test_anion_gap_matches_medcalc_and_open_medicine(fn):
    rng = _rng("ag")
    for _ in range(N):
        sodium, chloride, bicarbonate = _electrolytes(rng)
        ours = fn["anion_gap"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate)["anion_gap"]
        mc = mc_ag.compute_anion_gap_explanation({"sodium": (sodium, "mEq/L"), "chloride": (chloride, "mEq/L"),
                                                  "bicarbonate": (bicarbonate, "mEq/L")})["Answer"]
        om = om_ag.calculate_anion_gap(om_ag.AnionGapParams(sodium=sodium, chloride=chloride,
                                                            bicarbonate=bicarbonate)).value
        assert _close(ours, mc, 0.1, _mc_step(mc)), (sodium, chloride, bicarbonate)
        assert _close(ours, om, 0.1, 0.1), (sodium, chloride, bicarbonate)


def test_albumin_corrected_anion_gap_matches_medcalc_and_open_medicine(fn):
    rng = _rng("agc")
    for _ in range(N):
        sodium, chloride, bicarbonate = _electrolytes(rng)
        albumin = _u(rng, 0.8, 6)
        ours = fn["anion_gap_albumin_corrected"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate,
                                                 albumin=albumin)["albumin_corrected_anion_gap"]
        mc = mc_agc.compute_albumin_corrected_anion_explanation(
            {"sodium": (sodium, "mEq/L"), "chloride": (chloride, "mEq/L"), "bicarbonate": (bicarbonate, "mEq/L"),
             "albumin": (albumin, "g/dL")})["Answer"]
        om = om_ag.calculate_anion_gap(om_ag.AnionGapParams(sodium=sodium, chloride=chloride,
                                                            bicarbonate=bicarbonate, albumin=albumin)).value
        assert _close(ours, mc, 0.1, _mc_step(mc) + 0.001), (sodium, chloride, bicarbonate, albumin)
        assert _close(ours, om, 0.1, 0.1), (sodium, chloride, bicarbonate, albumin)


def test_delta_gap_matches_medcalc(fn):
    rng = _rng("dg")
    for _ in range(N):
        sodium, chloride, bicarbonate = _electrolytes(rng)
        albumin = _u(rng, 0.8, 6)
        out = fn["delta_gap"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate, albumin=albumin)
        common = {"sodium": (sodium, "mEq/L"), "chloride": (chloride, "mEq/L"), "bicarbonate": (bicarbonate, "mEq/L")}
        mc = mc_dg.compute_delta_gap_explanation(common)["Answer"]
        mc_c = mc_acdg.compute_albumin_corrected_delta_gap_explanation({**common, "albumin": (albumin, "g/dL")})["Answer"]
        assert _close(out["delta_gap"], mc, 0.1, _mc_step(mc) + 0.001), (sodium, chloride, bicarbonate)
        assert _close(out["albumin_corrected_delta_gap"], mc_c, 0.1, _mc_step(mc_c) + 0.002), (sodium, chloride,
                                                                                              bicarbonate, albumin)


def test_albumin_corrected_delta_ratio_matches_medcalc(fn):
    rng = _rng("dr")
    for _ in range(N):
        sodium, chloride, bicarbonate = _electrolytes(rng)
        albumin = _u(rng, 0.8, 6)
        ours = fn["delta_ratio"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate,
                                 albumin=albumin)["albumin_corrected_delta_ratio"]
        mc = mc_adr.compute_albumin_delta_ratio_explanation(
            {"sodium": (sodium, "mEq/L"), "chloride": (chloride, "mEq/L"), "bicarbonate": (bicarbonate, "mEq/L"),
             "albumin": (albumin, "g/dL")})["Answer"]
        # medcalc rounds the corrected delta gap (to 0.001, or 3 significant figures when negative) before
        # dividing by (24 - HCO3), which is at least 0.2 here
        slack = (_mc_step(-abs(mc * (24 - bicarbonate))) + 0.003) / (24 - bicarbonate)
        assert abs(ours - mc) <= 0.005 + _mc_step(mc) / 2 + slack + EPS, (sodium, chloride, bicarbonate, albumin)


def test_delta_ratio_plain_is_delta_gap_over_bicarbonate_fall(fn):
    """No independent plain (uncorrected) delta ratio is installed: check it against delta_gap's output."""
    rng = _rng("dr-plain")
    for _ in range(N):
        sodium, chloride, bicarbonate = _electrolytes(rng)
        dg = fn["delta_gap"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate)["delta_gap"]
        dr = fn["delta_ratio"](sodium=sodium, chloride=chloride, bicarbonate=bicarbonate)["delta_ratio"]
        assert abs(dr - dg / (24 - bicarbonate)) <= 0.005 + 0.05 / (24 - bicarbonate) + EPS


# ------------------------------------------------------------------------------- osmolality, water, FENa
def test_serum_osmolality_matches_medcalc_and_open_medicine(fn):
    rng = _rng("osm")
    for _ in range(N):
        sodium, glucose, bun = _u(rng, 110, 170), _u(rng, 40, 1500, 0), _u(rng, 2, 150)
        ours = fn["serum_osmolality"](sodium=sodium, glucose=glucose, bun=bun)
        mc = mc_osm.compute_serum_osmolality_explanation({"sodium": (sodium, "mmol/L"), "glucose": (glucose, "mg/dL"),
                                                          "bun": (bun, "mg/dL")})["Answer"]
        om = om_osm.calculate_serum_osmolality(om_osm.SerumOsmolalityParams(sodium=sodium, glucose=glucose,
                                                                            bun=bun)).value
        assert _close(ours["calculated_osmolality_without_ethanol"], mc, 1, 0.001), (sodium, glucose, bun)
        assert _close(ours["calculated_osmolality_without_ethanol"], om, 1, 0.1), (sodium, glucose, bun)
        assert ours["calculated_osmolality"] == ours["calculated_osmolality_without_ethanol"]  # no ethanol given


def test_free_water_deficit_matches_medcalc(fn):
    rng = _rng("fwd")
    for _ in range(N):
        x = {"sodium": _u(rng, 130, 185), "weight": _u(rng, 3, 150), "age": rng.randint(0, 100),
             "sex": rng.choice(["female", "male"])}
        mc = mc_fwd.free_water_deficit_explanation({"sex": x["sex"].capitalize(), "age": (x["age"], "years"),
                                                    "weight": (x["weight"], "kg"),
                                                    "sodium": (x["sodium"], "mmol/L")})["Answer"]
        ours = fn["free_water_deficit"](**x)["free_water_deficit"]
        assert _close(ours, mc, 0.1, _mc_step(mc)), x


def test_fena_matches_medcalc(fn):
    rng = _rng("fena")
    for _ in range(N):
        x = {"serum_sodium": _u(rng, 115, 160), "urine_sodium": _u(rng, 1, 200),
             "serum_creatinine": _u(rng, 0.3, 12, 2), "urine_creatinine": _u(rng, 5, 400)}
        mc = mc_fena.compute_fena_explanation({"sodium": (x["serum_sodium"], "mEq/L"),
                                               "creatinine": (x["serum_creatinine"], "mg/dL"),
                                               "urine_sodium": (x["urine_sodium"], "mEq/L"),
                                               "urine_creatinine": (x["urine_creatinine"], "mg/dL")})["Answer"]
        assert _close(fn["fena"](**x)["fena"], mc, 0.01, _mc_step(mc)), x


# ------------------------------------------------------------------------------- KDIGO AKI stage
def _kdigo_truth(baseline, creatinine, rise_48h=0.0, rrt=False, paediatric_egfr=False, h_05=0.0, h_03=0.0,
                 h_anuria=0.0):
    """KDIGO 2012 Table 2, written out criterion by criterion (stage 3 by creatinine >= 4.0 mg/dL only for a
    patient who meets the AKI definition by creatinine, KDIGO chapter 2.1)."""
    ratio = creatinine / baseline
    by_rise = ratio >= 1.5 - EPS or rise_48h >= 0.3
    by_creatinine = {1: by_rise, 2: ratio >= 2 - EPS,
                     3: rrt or ratio >= 3 - EPS or (creatinine >= 4.0 and by_rise) or paediatric_egfr}
    oliguric = max(h_05, h_03, h_anuria)
    by_urine = {1: oliguric >= 6, 2: oliguric >= 12, 3: h_03 >= 24 or h_anuria >= 12}
    return max([0] + [s for s in (1, 2, 3) if by_creatinine[s] or by_urine[s]])


def test_kdigo_aki_stage_matches_table_2(fn):
    rng = _rng("kdigo")
    for _ in range(N * 3):
        baseline = _u(rng, 0.3, 6, 2)
        creatinine = min(25, round(baseline * rng.choice([1, 1.2, 1.5, 1.9, 2, 2.5, 3, 4]) + rng.choice([0, 0.01, -0.01]), 2))
        creatinine = max(0.1, creatinine)
        x = {"baseline_creatinine": baseline, "creatinine": creatinine,
             "creatinine_rise_48h": rng.choice([0, 0, 0.2, 0.29, 0.3, 0.5]),
             "rrt_started": rng.random() < 0.05, "paediatric_egfr_below_35": rng.random() < 0.05,
             "hours_below_0_5": rng.choice([0, 0, 5.9, 6, 11.9, 12, 30]), "hours_below_0_3": rng.choice([0, 0, 23.9, 24]),
             "hours_anuric": rng.choice([0, 0, 0, 11.9, 12])}
        want = _kdigo_truth(baseline, creatinine, x["creatinine_rise_48h"], x["rrt_started"],
                            x["paediatric_egfr_below_35"], x["hours_below_0_5"], x["hours_below_0_3"], x["hours_anuric"])
        out = fn["kdigo_aki_stage"](**x)
        assert out["stage"] == want, x
        assert out["band"] == ("no_aki", "stage_1", "stage_2", "stage_3")[want]


# ------------------------------------------------------------------------------- properties
def _samples(name, rng):
    """Random inputs across each instrument's declared ranges (the whole range, not only typical values)."""
    if name == "cockcroft_gault":
        return {"age": rng.randint(18, 120), "weight": _u(rng, 20, 300), "creatinine": _u(rng, 0.1, 25, 2),
                "sex": rng.choice(["female", "male"])}
    if name in ("ckd_epi_2021", "mdrd"):
        x = {"creatinine": _u(rng, 0.1, 25, 2), "age": rng.randint(18, 120), "sex": rng.choice(["female", "male"])}
        return {**x, "black": rng.random() < 0.5} if name == "mdrd" else x
    if name == "corrected_calcium":
        return {"calcium": _u(rng, 2, 25), "albumin": _u(rng, 0.5, 7), "normal_albumin": _u(rng, 3, 5)}
    if name == "sodium_correction_hyperglycaemia":
        return {"sodium": _u(rng, 90, 200), "glucose": _u(rng, 10, 3000, 0)}
    electrolytes = {"sodium": _u(rng, 90, 200), "chloride": _u(rng, 50, 160), "bicarbonate": _u(rng, 1, 60)}
    if name == "anion_gap":
        return {**electrolytes, "potassium": _u(rng, 0, 12)}
    if name == "anion_gap_albumin_corrected":
        return {**electrolytes, "albumin": _u(rng, 0.5, 7), "normal_albumin": _u(rng, 3, 5)}
    if name == "delta_gap":
        return {**electrolytes, "albumin": _u(rng, 0.5, 7), "normal_anion_gap": _u(rng, 3, 16),
                "normal_bicarbonate": _u(rng, 20, 30), "normal_albumin": _u(rng, 3, 5)}
    if name == "delta_ratio":
        return {**electrolytes, "bicarbonate": _u(rng, 1, 23.9), "albumin": _u(rng, 0.5, 7),
                "normal_anion_gap": _u(rng, 3, 16), "normal_albumin": _u(rng, 3, 5)}
    if name == "serum_osmolality":
        return {"sodium": _u(rng, 90, 200), "glucose": _u(rng, 10, 3000, 0), "bun": _u(rng, 1, 300),
                "ethanol": rng.choice([0, _u(rng, 0, 1500, 0)])}
    if name == "free_water_deficit":
        return {"sodium": _u(rng, 100, 200), "weight": _u(rng, 1, 300), "age": rng.randint(0, 120),
                "sex": rng.choice(["female", "male"]), "target_sodium": _u(rng, 130, 150)}
    if name == "fena":
        return {"serum_sodium": _u(rng, 90, 200), "urine_sodium": _u(rng, 1, 300),
                "serum_creatinine": _u(rng, 0.1, 25, 2), "urine_creatinine": _u(rng, 1, 1000)}
    if name == "kdigo_aki_stage":
        return {"baseline_creatinine": _u(rng, 0.1, 25, 2), "creatinine": _u(rng, 0.1, 25, 2),
                "creatinine_rise_48h": _u(rng, 0, 3, 2), "rrt_started": rng.random() < 0.1,
                "paediatric_egfr_below_35": rng.random() < 0.1, "hours_below_0_5": _u(rng, 0, 72),
                "hours_below_0_3": _u(rng, 0, 48), "hours_anuric": _u(rng, 0, 24)}
    raise AssertionError(name)


# the bounds each output has over the whole declared input range (worked out from the formulas and the input
# ranges: e.g. Cockcroft-Gault peaks at (140 - 18) x 300 / (72 x 0.1) = 5083 mL/min)
OUTPUT_RANGES = {
    "cockcroft_gault": {"crcl": (0, 5084)},
    "ckd_epi_2021": {"egfr": (0, 250)},
    "mdrd": {"egfr": (0, 1682)},
    "corrected_calcium": {"corrected_calcium": (-2, 29.5), "corrected_calcium_08": (-1.2, 28.6)},
    "sodium_correction_hyperglycaemia": {"corrected_sodium": (90, 272), "corrected_sodium_katz": (90, 248)},
    "anion_gap": {"anion_gap": (-130, 149), "anion_gap_with_potassium": (-130, 161)},
    "anion_gap_albumin_corrected": {"albumin_corrected_anion_gap": (-140, 161)},
    "delta_gap": {"delta_gap": (-146, 146), "bicarbonate_gap": (-116, 127)},
    "delta_ratio": {"delta_ratio": (-1099, 1231), "albumin_corrected_delta_ratio": (-1199, 1344)},
    "serum_osmolality": {"calculated_osmolality": (180, 1100), "effective_osmolality": (180, 570),
                         "dorwart_chalmers_osmolality": (170, 1100)},
    "free_water_deficit": {"total_body_water": (0.4, 180), "free_water_deficit": (-60, 100)},
    "fena": {"fena": (0, 10 ** 6)},
    "kdigo_aki_stage": {"stage": (0, 3), "creatinine_stage": (0, 3), "urine_output_stage": (0, 3)},
}


@pytest.mark.parametrize("name", NAMES)
def test_outputs_stay_in_range_and_always_have_a_band(name, fn):
    rng = _rng(f"range-{name}")
    meta_bands = {"cockcroft_gault": False, "free_water_deficit": False, "serum_osmolality": False}
    for _ in range(N):
        out = fn[name](**_samples(name, rng))
        for key, (lo, hi) in OUTPUT_RANGES[name].items():
            assert lo <= out[key] <= hi, (key, out)
        if meta_bands.get(name, True):
            assert out["band"] is not None and out["interpretation"], out


def _monotone(f, base, key, values, output, direction):
    results = [f(**{**base, key: v})[output] for v in values]
    pairs = list(zip(results, results[1:]))
    assert all((b >= a) if direction > 0 else (b <= a) for a, b in pairs), (key, values, results)


def test_monotonicity(fn):
    """Directions the equations imply and the sources describe (clearance falls as creatinine and age rise, ...)."""
    creatinines = [0.3, 0.5, 0.7, 0.9, 1.0, 1.4, 2, 4, 8, 16]
    ages = [18, 25, 40, 60, 80, 100, 120]
    for sex in ("female", "male"):
        cg = {"age": 60, "weight": 70, "creatinine": 1.0, "sex": sex}
        _monotone(fn["cockcroft_gault"], cg, "creatinine", creatinines, "crcl", -1)
        _monotone(fn["cockcroft_gault"], cg, "age", ages, "crcl", -1)
        _monotone(fn["cockcroft_gault"], cg, "weight", [20, 50, 70, 100, 200, 300], "crcl", +1)
        for name in ("ckd_epi_2021", "mdrd"):
            _monotone(fn[name], {"creatinine": 1.0, "age": 60, "sex": sex}, "creatinine", creatinines, "egfr", -1)
            _monotone(fn[name], {"creatinine": 1.0, "age": 60, "sex": sex}, "age", ages, "egfr", -1)
    for creatinine in creatinines:
        assert (fn["cockcroft_gault"](age=50, weight=70, creatinine=creatinine, sex="female")["crcl"]
                < fn["cockcroft_gault"](age=50, weight=70, creatinine=creatinine, sex="male")["crcl"])
    albumins = [0.5, 1, 2, 3, 4, 5, 7]
    for out in ("corrected_calcium", "corrected_calcium_08"):
        _monotone(fn["corrected_calcium"], {"calcium": 8.5, "albumin": 3.0}, "albumin", albumins, out, -1)
        _monotone(fn["corrected_calcium"], {"calcium": 8.5, "albumin": 3.0}, "calcium", [2, 6, 8.5, 12, 25], out, +1)
    glucoses = [10, 100, 200, 400, 800, 3000]
    for out in ("corrected_sodium", "corrected_sodium_katz"):
        _monotone(fn["sodium_correction_hyperglycaemia"], {"sodium": 130, "glucose": 100}, "glucose", glucoses, out, +1)
    for glucose in glucoses:
        out = fn["sodium_correction_hyperglycaemia"](sodium=130, glucose=glucose)
        assert out["corrected_sodium"] >= out["corrected_sodium_katz"]  # Hillier's 2.4 corrects more than 1.6
    ag = {"sodium": 140, "chloride": 104, "bicarbonate": 20}
    _monotone(fn["anion_gap"], ag, "sodium", [90, 120, 140, 200], "anion_gap", +1)
    _monotone(fn["anion_gap"], ag, "chloride", [50, 90, 104, 160], "anion_gap", -1)
    _monotone(fn["anion_gap"], ag, "bicarbonate", [1, 10, 20, 60], "anion_gap", -1)
    _monotone(fn["anion_gap_albumin_corrected"], {**ag, "albumin": 3}, "albumin", albumins,
              "albumin_corrected_anion_gap", -1)
    _monotone(fn["delta_ratio"], {**ag, "bicarbonate": 12}, "chloride", [80, 95, 104, 110], "delta_ratio", -1)
    osm = {"sodium": 140, "glucose": 100, "bun": 14, "ethanol": 0}
    for key, values in (("sodium", [90, 140, 200]), ("glucose", [10, 100, 3000]), ("bun", [1, 14, 300]),
                        ("ethanol", [0, 100, 1500])):
        for out in ("calculated_osmolality", "dorwart_chalmers_osmolality"):
            _monotone(fn["serum_osmolality"], osm, key, values, out, +1)
    fwd = {"sodium": 155, "weight": 70, "age": 40, "sex": "male"}
    _monotone(fn["free_water_deficit"], fwd, "sodium", [100, 140, 155, 200], "free_water_deficit", +1)
    _monotone(fn["free_water_deficit"], fwd, "weight", [1, 40, 70, 300], "free_water_deficit", +1)
    _monotone(fn["free_water_deficit"], fwd, "age", [10, 17, 18, 64, 65, 100], "total_body_water", -1)
    fena = {"serum_sodium": 140, "urine_sodium": 20, "serum_creatinine": 2.0, "urine_creatinine": 60}
    _monotone(fn["fena"], fena, "urine_sodium", [1, 20, 300], "fena", +1)
    _monotone(fn["fena"], fena, "serum_creatinine", [0.1, 2, 25], "fena", +1)
    _monotone(fn["fena"], fena, "urine_creatinine", [1, 60, 1000], "fena", -1)
    _monotone(fn["fena"], fena, "serum_sodium", [90, 140, 200], "fena", -1)
    aki = {"baseline_creatinine": 1.0, "creatinine": 1.0}
    _monotone(fn["kdigo_aki_stage"], aki, "creatinine", [0.5, 1.0, 1.3, 1.5, 2.0, 2.9, 3.0, 4.5, 25], "stage", +1)
    _monotone(fn["kdigo_aki_stage"], aki, "hours_below_0_5", [0, 5.9, 6, 12, 100], "stage", +1)
    _monotone(fn["kdigo_aki_stage"], aki, "hours_anuric", [0, 6, 12, 100], "stage", +1)


ROUND_TRIPS = [  # (instrument, inputs in the declared units, the same inputs as text in another unit)
    ("cockcroft_gault", {"age": 70, "weight": 68.0388555, "creatinine": 1.1, "sex": "female"},
     {"age": "840 months", "weight": "150 lb", "creatinine": "11 mg/L"}),
    ("ckd_epi_2021", {"creatinine": 1.3, "age": 66, "sex": "male"}, {"creatinine": "13 mg/L"}),
    ("mdrd", {"creatinine": 2.0, "age": 55, "sex": "female"}, {"creatinine": "0.02 g/L"}),
    ("corrected_calcium", {"calcium": 8.0, "albumin": 2.5}, {"calcium": "80 mg/L", "albumin": "25 g/L"}),
    ("sodium_correction_hyperglycaemia", {"sodium": 128, "glucose": 700}, {"sodium": "0.128 mol/L", "glucose": "7 g/L"}),
    ("anion_gap_albumin_corrected", {"sodium": 138, "chloride": 104, "bicarbonate": 16, "albumin": 2.2},
     {"albumin": "22 g/L"}),
    ("delta_ratio", {"sodium": 138, "chloride": 104, "bicarbonate": 16, "albumin": 2.2}, {"albumin": "22 g/L"}),
    ("serum_osmolality", {"sodium": 140, "glucose": 360, "bun": 28, "ethanol": 92},
     {"glucose": "3.6 g/L", "bun": "280 mg/L", "ethanol": "0.92 g/L"}),
    ("free_water_deficit", {"sodium": 158, "weight": 80.0, "age": 70, "sex": "male"},
     {"weight": "80000 g", "age": "840 months"}),
    ("fena", {"serum_sodium": 136, "urine_sodium": 30, "serum_creatinine": 2.4, "urine_creatinine": 80},
     {"serum_creatinine": "24 mg/L", "urine_creatinine": "0.8 g/L"}),
    ("kdigo_aki_stage", {"baseline_creatinine": 0.9, "creatinine": 1.9, "hours_below_0_5": 12.0},
     {"hours_below_0_5": "720 min", "baseline_creatinine": "9 mg/L"}),
]


@pytest.mark.parametrize("name, native, text", ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_unit_conversions_round_trip(name, native, text, fn):
    """The same quantity given in another unit of the same dimension converts to the same result."""
    f = fn[name]
    converted = read_inputs(name, f.input_spec, {**native, **text})
    for key, value in native.items():
        assert converted[key] == (value if isinstance(value, (str, bool)) else pytest.approx(value, rel=1e-9)), key
    assert f(**converted) == f(**native)


@pytest.mark.parametrize("name, given, expected", [
    ("ckd_epi_2021", {"creatinine": "106 umol/L", "age": 60, "sex": "male"}, {"creatinine": 106 / 88.4}),
    ("corrected_calcium", {"calcium": "2.1 mmol/L", "albumin": 3.0}, {"calcium": 2.1 * 4.008}),
    ("sodium_correction_hyperglycaemia", {"sodium": 130, "glucose": "30 mmol/L"}, {"glucose": 30 * 18.016}),
    ("fena", {"serum_sodium": "136 mEq/L", "urine_sodium": 30, "serum_creatinine": "212 umol/L",
              "urine_creatinine": "7.07 mmol/L"}, {"serum_sodium": 136, "serum_creatinine": 212 / 88.4,
                                                   "urine_creatinine": 7.07 * 11.312}),
    ("serum_osmolality", {"sodium": 140, "glucose": "20 mmol/L", "bun": "10 mmol/L"},
     {"glucose": 20 * 18.016, "bun": 10 * 2.801}),
    ("kdigo_aki_stage", {"baseline_creatinine": "80 umol/L", "creatinine": "250 umol/L"},
     {"baseline_creatinine": 80 / 88.4, "creatinine": 250 / 88.4}),
])
def test_si_units_that_need_a_molar_mass_convert_through_the_analyte(name, given, expected, fn):
    """umol/L creatinine, mmol/L calcium, glucose and urea, mEq/L sodium cross dimensions (mass, substance
    and charge concentration): the inputs name their analytes, so they convert with its molar mass (and
    valence) - to within 0.3% of the printed factors - and give the result of the converted mg/dL values.
    The other tests of these units: tests/compiler/instruments/test_si_units.py."""
    f = fn[name]
    converted = read_inputs(name, f.input_spec, given)
    for key, value in expected.items():
        assert converted[key] == pytest.approx(value, rel=3e-3), key
    assert f(**given) == f(**{**given, **{key: converted[key] for key in expected}})


def test_units_the_analyte_does_not_reach_are_refused_not_mixed(fn):
    """Creatinine has no valence, so mEq/L is refused, naming the input and the units it accepts."""
    from medgym.dsl.support import InstrumentInputError

    with pytest.raises(InstrumentInputError) as error:
        fn["ckd_epi_2021"](creatinine="1.2 mEq/L", age=60, sex="male")
    assert "input 'creatinine': mEq/L does not convert to mg/dL" in str(error.value)
    assert "umol/L" in str(error.value)
