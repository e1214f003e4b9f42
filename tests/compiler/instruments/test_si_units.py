"""SI units for every instrument input that names its analyte (`creatinine: number mg/dL of creatinine`).

Every shipped instrument input whose type names an analyte of dsl/analytes.py is checked, on a seeded sample
of valid inputs (each input's range limits included):
- round trip: the value converted into each other clinical unit of its analyte (creatinine umol/L and mmol/L,
  calcium mmol/L and mEq/L, glucose and cholesterol mmol/L, BUN as urea mmol/L, electrolytes mEq/L, albumin
  g/L, ...) and given as text ("176.8 umol/L") is read back as the same number in the declared unit, and the
  instrument gives the same result - one input at a time, and every analyte input in SI at once;
- refusal: a unit its analyte's molar mass and valence do not reach (creatinine or glucose in mEq/L,
  albumin in mmol/L, anything in U/L or mmHg) is refused with a message naming the input and listing the
  units it accepts.
And at the spec level: a case value of the same analyte in another unit (urea mmol/L passed to curb65's BUN,
BUN passed to glasgow_blatchford's urea, creatinine umol/L, calcium and glucose mmol/L) is converted by the
checker, while a value of another analyte, or one that names no analyte, across dimensions is a compile error.
"""
import random
import re

import pytest

from medgym.compiler.pipeline import check_specs, compile_specs
from medgym.dsl import units as u
from medgym.dsl.analytes import ANALYTES
from medgym.dsl.support import InstrumentInputError, read_inputs
from medgym.runtime.build import Build
from medgym.shipped import shipped_specs

# The units clinicians report each analyte in (SI first, then the conventional one); every one that is not
# the input's declared unit is tried. An analyte used by an instrument but missing here fails the test.
CLINICAL_UNITS = {
    "creatinine": ("umol/L", "mmol/L", "mg/dL"),
    "urea": ("mmol/L", "mg/dL"),  # mg/dL of urea itself (60.06 g/mol), not BUN
    "urea_nitrogen": ("mmol/L", "mg/dL"),  # mmol/L of urea: BUN mg/dL = urea mmol/L x 2.801
    "glucose": ("mmol/L", "mg/dL"),
    "calcium": ("mmol/L", "mEq/L", "mg/dL"),
    "magnesium": ("mmol/L", "mEq/L", "mg/dL"),
    "phosphate": ("mmol/L", "mg/dL"),
    "bilirubin": ("umol/L", "mg/dL"),
    "cholesterol": ("mmol/L", "mg/dL"),
    "ldl_cholesterol": ("mmol/L", "mg/dL"),
    "hdl_cholesterol": ("mmol/L", "mg/dL"),
    "triglycerides": ("mmol/L", "mg/dL"),
    "uric_acid": ("umol/L", "mg/dL"),
    "lactate": ("mmol/L", "mg/dL"),
    "sodium": ("mEq/L", "mmol/L"),
    "potassium": ("mEq/L", "mmol/L"),
    "chloride": ("mEq/L", "mmol/L"),
    "bicarbonate": ("mEq/L", "mmol/L"),
    "albumin": ("g/L", "g/dL"),
}
# Units tried for the refusal, each where the input does not accept it (U/L and mmHg never do).
FOREIGN_UNITS = ("mEq/L", "mmol/L", "umol/L", "mg/dL", "g/L", "mIU/L", "U/L", "mmHg")
SAMPLES = 40  # seeded valid input sets per instrument


def _analyte_inputs_in_the_specs() -> list[tuple[str, str, str, str]]:
    """(instrument, input, declared unit, analyte) for every `NAME: number UNIT of ANALYTE` input line."""
    found = []
    for path in sorted((shipped_specs() / "instruments").glob("*.score")):
        for m in re.finditer(r"^\s+(\w+): (?:number|int) (\S+) of (\w+)\b", path.read_text(), re.M):
            found.append((path.stem, m.group(1), m.group(2), m.group(3)))
    return found


ANALYTE_INPUTS = _analyte_inputs_in_the_specs()
IDS = [f"{name}.{param}" for name, param, _, _ in ANALYTE_INPUTS]
INSTRUMENTS = sorted({name for name, _, _, _ in ANALYTE_INPUTS})


def _item(f, param: str) -> dict:
    return next(item for item in f.input_spec if item["name"] == param)


def _other_units(unit: str, analyte: str) -> list[str]:
    return [other for other in CLINICAL_UNITS[analyte] if other != unit]


def _as_text(value: float, unit: str, analyte: str, target: str) -> str:
    """`value` (in `unit`) written in `target` at full precision, e.g. '176.80339462517682 umol/L'."""
    scale, shift = u.conversion(u.lookup(unit), u.lookup(target), analyte, analyte)
    return f"{value * scale + shift:.15g} {target}"


def _samples(f, name: str, n: int = SAMPLES) -> list[dict]:
    """Valid inputs: numbers across each declared range (limits included, 2 decimals), every enum value,
    both booleans, optional inputs sometimes left out. Sets a `require` refuses are skipped."""
    rng = random.Random(f"si-units-{name}")
    out = []
    for i in range(n * 3):
        given = {}
        for item in f.input_spec:
            if item["has_default"] and rng.random() < 0.3:
                continue
            kind, low, high = item["kind"], item["low"], item["high"]
            if kind == "bool":
                given[item["name"]] = rng.random() < 0.5
            elif kind == "enum":
                given[item["name"]] = rng.choice(item["values"])
            elif kind == "int":
                given[item["name"]] = rng.randint(int(low), int(high))
            elif kind == "number":
                pick = rng.random()
                value = low if pick < 0.1 else high if pick < 0.2 else rng.uniform(low, high)
                given[item["name"]] = min(max(round(value, 2), low), high)
            else:
                raise AssertionError(f"{name}: no sampler for input {item['name']} ({kind})")
        try:
            f(**given)
        except InstrumentInputError:
            continue
        out.append(given)
        if len(out) == n:
            break
    assert len(out) == n, f"{name}: only {len(out)} valid samples"
    return out


def test_the_analyte_inputs_are_those_the_build_declares(fn):
    """The spec-text scan above finds exactly the inputs whose compiled type names an analyte."""
    built = sorted((name, item["name"], item["unit"], item["type"].rsplit(" of ", 1)[1])
                   for name, f in fn.items() for item in f.input_spec if " of " in item["type"])
    assert sorted(ANALYTE_INPUTS) == built
    assert {analyte for *_, analyte in ANALYTE_INPUTS} <= set(CLINICAL_UNITS) <= set(ANALYTES)


@pytest.mark.parametrize("name, param, unit, analyte", ANALYTE_INPUTS, ids=IDS)
def test_every_clinical_unit_of_the_analyte_is_accepted(fn, name, param, unit, analyte):
    item = _item(fn[name], param)
    assert item["unit"] == unit
    others = _other_units(unit, analyte)
    assert others, f"{name}.{param}: no other unit of {analyte} to give it in"
    for other in others:
        assert other in item["accepts"], f"{name}.{param} does not accept {other}"
        scale, shift = item["accepts"][other]
        assert (scale, shift) == pytest.approx(u.conversion(u.lookup(other), u.lookup(unit), analyte, analyte))


@pytest.mark.parametrize("name, param, unit, analyte", ANALYTE_INPUTS, ids=IDS)
def test_values_given_in_si_units_round_trip_to_the_same_result(fn, name, param, unit, analyte):
    f = fn[name]
    tried = 0
    for given in _samples(f, name):
        if param not in given:
            continue
        expected = f(**given)
        for other in _other_units(unit, analyte):
            text = _as_text(given[param], unit, analyte, other)
            changed = dict(given, **{param: text})
            assert read_inputs(name, f.input_spec, changed)[param] == given[param], (text, given[param])
            assert f(**changed) == expected, (name, param, text, given)
            tried += 1
    assert tried >= 10, f"{name}.{param}: the sample gave it only {tried} times"


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_every_analyte_input_in_si_at_once(fn, name):
    """A clinician with an SI laboratory report gives all of them in SI units: the same result."""
    f = fn[name]
    declared = {param: (unit, analyte) for n, param, unit, analyte in ANALYTE_INPUTS if n == name}
    for given in _samples(f, name):
        si = {param: _as_text(value, declared[param][0], declared[param][1], _other_units(*declared[param])[0])
              for param, value in given.items() if param in declared}
        assert f(**dict(given, **si)) == f(**given), (given, si)


@pytest.mark.parametrize("name, param, unit, analyte", ANALYTE_INPUTS, ids=IDS)
def test_units_the_analyte_does_not_reach_are_refused_naming_the_input_and_the_units_accepted(
        fn, name, param, unit, analyte):
    f = fn[name]
    item = _item(f, param)
    valid = _samples(f, name, 1)[0]
    foreign = [other for other in FOREIGN_UNITS if other not in item["accepts"]]
    assert "U/L" in foreign and "mmHg" in foreign
    for other in foreign:
        with pytest.raises(InstrumentInputError) as info:
            f(**dict(valid, **{param: f"5 {other}"}))
        assert info.value.problems == [
            f"input '{param}': {other} does not convert to {unit} in '5 {other}'; "
            f"units accepted: {', '.join(item['accepts'])}"], (name, param, other)
        for accepted in _other_units(unit, analyte):
            assert accepted in info.value.problems[0]


def test_units_without_a_molar_mass_or_valence_are_refused_not_mixed(fn):
    """What the analyte table cannot reach stays refused: creatinine and glucose have no valence (no mEq/L),
    albumin has no molar mass (no mmol/L), and insulin names no analyte (pmol/L would need one)."""
    cases = [("ckd_epi_2021", {"creatinine": "1.2 mEq/L", "age": 60, "sex": "male"}, "creatinine"),
             ("sodium_correction_hyperglycaemia", {"sodium": 130, "glucose": "30 mEq/L"}, "glucose"),
             ("corrected_calcium", {"calcium": 9.0, "albumin": "0.6 mmol/L"}, "albumin"),
             ("homa_ir", {"insulin": "60 pmol/L", "glucose": 5.0}, "insulin")]  # insulin names no analyte
    for name, given, param in cases:
        with pytest.raises(InstrumentInputError) as info:
            fn[name](**given)
        assert len(info.value.problems) == 1 and info.value.problems[0].startswith(f"input '{param}': ")
        assert "units accepted: " in info.value.problems[0]


# ------------------------------------------------------------------------------------------ published SI values
@pytest.mark.parametrize("name, si, conventional", [
    # KDIGO 2012 / Inker 2021: creatinine 1 mg/dL = 88.4 umol/L
    ("ckd_epi_2021", {"creatinine": "106 umol/L", "age": 60, "sex": "male"}, {"creatinine": 106 / 88.4}),
    # Payne 1973 in SI: calcium 2.10 mmol/L = 8.42 mg/dL (x 4.008); albumin 30 g/L = 3.0 g/dL
    ("corrected_calcium", {"calcium": "2.1 mmol/L", "albumin": "30 g/L"}, {"calcium": 2.1 * 4.008, "albumin": 3.0}),
    # glucose 30 mmol/L = 540.5 mg/dL (x 18.016)
    ("sodium_correction_hyperglycaemia", {"sodium": "130 mEq/L", "glucose": "30 mmol/L"}, {"sodium": 130, "glucose": 30 * 18.016}),
    # Lim 2003: urea 7 mmol/L = BUN 19.6 mg/dL (x 2.801)
    ("curb65", {"confusion": False, "bun": "7 mmol/L", "respiratory_rate": 20, "sbp": 120, "dbp": 80, "age": 50},
     {"bun": 7 * 2.801}),
    # Fine 1997: BUN 30 mg/dL, glucose 250 mg/dL
    ("psi_port", {"age": 60, "sex": "male", "respiratory_rate": 20, "sbp": 120, "temperature": 37, "heart_rate": 80,
                  "bun": "10.8 mmol/L", "glucose": "14 mmol/L", "sodium": "128 mEq/L"},
     {"bun": 10.8 * 2.801, "glucose": 14 * 18.016, "sodium": 128}),
    # Friedewald in SI: TC 5.2, HDL 1.3, TG 1.7 mmol/L (cholesterol x 38.67, triglycerides x 88.57)
    ("ldl_friedewald", {"total_cholesterol": "5.2 mmol/L", "hdl": "1.3 mmol/L", "triglycerides": "1.7 mmol/L"},
     {"total_cholesterol": 5.2 * 38.67, "hdl": 1.3 * 38.67, "triglycerides": 1.7 * 88.57}),
    # Vincent 1996 prints both units: bilirubin 1 mg/dL = 17.1 umol/L, creatinine 1 mg/dL = 88.4 umol/L
    ("sofa", {"pao2": 90, "fio2": 21, "platelets": 200, "bilirubin": "120 umol/L", "map": 80, "gcs": 15,
              "creatinine": "300 umol/L"}, {"bilirubin": 120 / 17.1, "creatinine": 300 / 88.4}),
    # Matthews 1985: glucose 5.0 mmol/L = 90.1 mg/dL; insulin 10 microU/mL
    ("homa_ir", {"insulin": "10 uIU/mL", "glucose": "90.08 mg/dL"}, {"insulin": 10, "glucose": 90.08 / 18.016}),
], ids=lambda v: v if isinstance(v, str) else None)
def test_si_values_read_as_the_published_factors_say(fn, name, si, conventional):
    """SI values convert with the molar mass (dsl/analytes.py), within 0.3% of the factors papers print."""
    f = fn[name]
    read = read_inputs(name, f.input_spec, si)
    for param, value in conventional.items():
        assert read[param] == pytest.approx(value, rel=3e-3), param
    assert f(**si) == f(**{**si, **{param: read[param] for param in conventional}})


# ------------------------------------------------------------------------------------------ spec level
SI_CALLS = """instrument si_calls "Spec-level calls with case values of the same analyte in other units"
  source "test fixture: the checker converts values through the analyte both sides name"
  inputs
    urea: number mmol/L of urea in 1..50
    bun: number mg/dL of urea_nitrogen in 1..150
    creatinine: number umol/L of creatinine in 10..2000
    calcium: number mmol/L of calcium in 0.5..5
    glucose: number mmol/L of glucose in 1..60
  result curb65_total = curb65(confusion = false, bun = urea, respiratory_rate = 20, sbp = 120, dbp = 80, age = 50).total
  result blatchford = glasgow_blatchford(urea = bun, hemoglobin = 14, sex = male, sbp = 120, heart_rate = 80, melena = false, syncope = false, hepatic_disease = false, cardiac_failure = false).total
  result egfr = ckd_epi_2021(creatinine = creatinine, age = 60, sex = male).egfr
  result calcium_mg = corrected_calcium(calcium = calcium, albumin = 4.0).corrected_calcium
  result sodium_corrected = sodium_correction_hyperglycaemia(sodium = 130, glucose = glucose).corrected_sodium
  example "Constructed: urea 7.0 mmol/L is BUN 19.6 mg/dL (> 19 scores 1); BUN 30 mg/dL is urea 10.7 mmol/L (4 points); creatinine 88.4 umol/L is 1.0 mg/dL (eGFR 86); calcium 2.5 mmol/L is 10.0 mg/dL; glucose 33.3 mmol/L is 600 mg/dL (+12.0)"
    given urea = 7.0, bun = 30, creatinine = 88.4, calcium = 2.5, glucose = 33.3
    expect curb65_total = 1, blatchford = 4, egfr = 86, calcium_mg = 10.0, sodium_corrected = 142.0
  example "Constructed: urea 6.7 mmol/L is BUN 18.8 mg/dL (no point); BUN 28 mg/dL is urea 9.995 mmol/L (3 points, below 10); creatinine 176.8 umol/L is 2.0 mg/dL (eGFR 38)"
    given urea = 6.7, bun = 28, creatinine = 176.8, calcium = 2.0, glucose = 5.0
    expect curb65_total = 0, blatchford = 3, egfr = 38, calcium_mg = 8.0, sodium_corrected = 130.0
  example "Constructed: creatinine 442 umol/L is 5.0 mg/dL (eGFR 12); BUN 70 mg/dL is urea 24.99 mmol/L (4 points, below 25)"
    given urea = 20, bun = 70, creatinine = 442, calcium = 2.5, glucose = 5.0
    expect curb65_total = 1, blatchford = 4, egfr = 12
end
"""
USED = ("curb65", "glasgow_blatchford", "ckd_epi_2021", "corrected_calcium", "sodium_correction_hyperglycaemia")


def _specs(tmp_path, extra: str):
    specs = tmp_path / "specs"
    (specs / "instruments").mkdir(parents=True)
    (specs / "medgym.yaml").write_text((shipped_specs() / "medgym.yaml").read_text())
    for name in USED:
        (specs / "instruments" / f"{name}.score").write_text((shipped_specs() / "instruments" / f"{name}.score").read_text())
    (specs / "instruments" / "zz_si_calls.score").write_text(extra)
    return specs


def test_spec_expressions_convert_values_of_the_same_analyte(tmp_path):
    """The worked examples above are replayed at compile time; the compiled calls agree with text inputs."""
    compile_specs(_specs(tmp_path, SI_CALLS), tmp_path / "build")
    instruments = Build.open(tmp_path / "build").instruments
    calls = instruments["si_calls"](urea=7.0, bun=30, creatinine=88.4, calcium=2.5, glucose=33.3)
    curb = dict(confusion=False, respiratory_rate=20, sbp=120, dbp=80, age=50)
    assert calls["curb65_total"] == instruments["curb65"](**curb, bun="7.0 mmol/L")["total"] == 1
    assert calls["egfr"] == instruments["ckd_epi_2021"](creatinine="88.4 umol/L", age=60, sex="male")["egfr"]


@pytest.mark.parametrize("declared, message, hint", [
    ("number mmol/L of glucose", "unit mismatch: 'creatinine' is mmol/L (substance concentration) of glucose but input "
     "'creatinine' of ckd_epi_2021 expects mg/dL (mass concentration) of creatinine (glucose is not creatinine)",
     "different analytes never convert"),
    ("number mg/dL of glucose", "unit mismatch: 'creatinine' is mg/dL (mass concentration) of glucose but input "
     "'creatinine' of ckd_epi_2021 expects mg/dL (mass concentration) of creatinine (glucose is not creatinine)",
     "different analytes never convert"),
    ("number umol/L", "unit mismatch: 'creatinine' is umol/L (substance concentration) but input 'creatinine' of "
     "ckd_epi_2021 expects mg/dL (mass concentration) of creatinine (the conversion depends on the analyte, and "
     "only one side (or neither) names it)", "declare what 'creatinine' measures: `number umol/L of creatinine`"),
])
def test_values_of_another_analyte_or_of_none_are_a_compile_error(tmp_path, declared, message, hint):
    spec = f"""instrument zz_wrong_analyte "A creatinine input fed another analyte"
  source "test fixture: the checker refuses to convert across analytes"
  inputs
    creatinine: {declared} in 0.1..2000
  result egfr = ckd_epi_2021(creatinine = creatinine, age = 60, sex = male).egfr
end
"""
    errors = [str(e) for e in check_specs(_specs(tmp_path, spec))]
    assert any(message in e and hint in e for e in errors), errors
