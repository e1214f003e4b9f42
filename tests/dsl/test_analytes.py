"""The analyte table and the conversions it allows: molar mass (and valence) connect mg/dL, mmol/L and mEq/L
of one analyte; different analytes and unrelated dimensions never convert."""
import pytest

from medgym.dsl import units as u
from medgym.dsl.analytes import ANALYTES, formula_mass


def convert(value, src, dst, analyte, dst_analyte=None):
    factors = u.conversion(u.lookup(src), u.lookup(dst), analyte, dst_analyte or analyte)
    assert factors is not None, u.conversion_problem(u.lookup(src), u.lookup(dst), analyte, dst_analyte or analyte)
    scale, shift = factors
    return value * scale + shift


@pytest.mark.parametrize("analyte", [a for a in ANALYTES.values() if a.published], ids=lambda a: a.name)
def test_molar_masses_reproduce_the_published_si_factor(analyte):
    """A typo in a formula would change the factor: each must match the table it cites, to its printed digits."""
    factor, conventional, si = analyte.published
    assert convert(1.0, conventional, si, analyte.name) == pytest.approx(factor, rel=0.005)
    assert analyte.source and "Young DS" in analyte.source


def test_every_row_has_a_source_and_known_units():
    for analyte in ANALYTES.values():
        assert analyte.source, analyte.name
        if analyte.published:
            assert u.lookup(analyte.published[1]) and u.lookup(analyte.published[2])
        if analyte.formula:
            assert "IUPAC" in analyte.source


def test_formula_masses():
    assert formula_mass("C4H7N3O") == pytest.approx(113.12, abs=0.01)  # creatinine
    assert formula_mass("C6H12O6") == pytest.approx(180.156, abs=0.001)  # glucose
    assert formula_mass("N2") == pytest.approx(28.014)


@pytest.mark.parametrize("value, src, dst, analyte, expected", [
    (183, "umol/L", "mg/dL", "creatinine", 2.070),      # the example
    (1.0, "mg/dL", "umol/L", "creatinine", 88.40),
    (2.5, "mmol/L", "mg/dL", "calcium", 10.02),
    (2.5, "mmol/L", "mEq/L", "calcium", 5.0),             # valence 2
    (7.0, "mmol/L", "mg/dL", "glucose", 126.1),
    (140, "mEq/L", "mmol/L", "sodium", 140),              # valence 1
    (4.1, "mmol/L", "mEq/L", "potassium", 4.1),
    (17.1, "umol/L", "mg/dL", "bilirubin", 1.0),
    (5.0, "mmol/L", "mg/dL", "cholesterol", 193.3),
    (1.7, "mmol/L", "mg/dL", "triglycerides", 150.5),
    (0.85, "mmol/L", "mg/dL", "magnesium", 2.066),
    (1.0, "mmol/L", "mg/dL", "phosphate", 3.097),
    (40, "g/L", "g/dL", "albumin", 4.0),                 # same dimension: no molar mass needed
])
def test_clinical_conversions(value, src, dst, analyte, expected):
    assert convert(value, src, dst, analyte) == pytest.approx(expected, rel=0.002)


def test_urea_and_bun_are_one_substance_on_two_mass_bases():
    assert convert(10, "mmol/L", "mg/dL", "urea", "urea_nitrogen") == pytest.approx(28.01, abs=0.01)
    assert convert(28.014, "mg/dL", "mmol/L", "urea_nitrogen", "urea") == pytest.approx(10.0)
    assert convert(60.056, "mg/dL", "mg/dL", "urea", "urea_nitrogen") == pytest.approx(28.014)  # mg/dL urea is not BUN
    assert convert(10, "mmol/L", "mmol/L", "urea", "urea_nitrogen") == pytest.approx(10)


@pytest.mark.parametrize("src, dst, src_analyte, dst_analyte, why", [
    ("mmol/L", "mg/dL", "glucose", "creatinine", "glucose is not creatinine"),
    ("mg/dL", "mg/dL", "ldl_cholesterol", "cholesterol", "LDL cholesterol is not total cholesterol"),
    ("mmol/L", "mg/dL", None, "creatinine", "depends on the analyte"),
    ("mmol/L", "mg/dL", None, None, "depends on the analyte"),
    ("mmol/L", "mmHg", "sodium", "sodium", "unrelated dimensions"),
    ("mmol/L", "mEq/L", "phosphate", "phosphate", "no fixed valence"),
    ("umol/L", "g/L", "albumin", "albumin", "no molar mass"),
])
def test_what_never_converts(src, dst, src_analyte, dst_analyte, why):
    assert u.conversion(u.lookup(src), u.lookup(dst), src_analyte, dst_analyte) is None
    assert why in u.conversion_problem(u.lookup(src), u.lookup(dst), src_analyte, dst_analyte)


def test_same_dimension_still_converts_without_an_analyte():
    assert convert(100.4, "degF", "degC", None) == pytest.approx(38.0)
    assert convert(840, "months", "years", None) == pytest.approx(70.0)


@pytest.mark.parametrize("analyte", sorted(ANALYTES))
def test_round_trips(analyte):
    row = ANALYTES[analyte]
    units = ["mmol/L", "umol/L"] + (["mg/dL", "g/L"] if row.molar_mass or analyte == "albumin" else [])
    units += ["mEq/L"] if row.valence else []
    units = [x for x in units if u.conversion(u.lookup(x), u.lookup(units[-1]), analyte, analyte)]
    for a in units:
        for b in units:
            assert convert(convert(3.7, a, b, analyte), b, a, analyte) == pytest.approx(3.7)


def test_loose_lookup_is_for_typed_values_only():
    assert u.lookup("MG/DL") is None
    assert u.lookup_loose("MG/DL").name == "mg/dL" and u.lookup_loose("µmol/L").name == "umol/L"
