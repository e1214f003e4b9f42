"""The checker's analyte-aware conversions, dates, `/` of one dimension, floor/ceil, and the new syntax."""
import pytest

from medgym.compiler.pycode import PyGen
from medgym.dsl import nodes as n
from medgym.dsl import support as _rt
from medgym.dsl.checker import Scope, Signature, check
from medgym.dsl.errors import Position, SpecError
from medgym.dsl.parser import parse_expression, parse_score_file, parse_type
from medgym.dsl.types import BOOL, DATE, INT, DateT, NumT, RecordT, from_ref, json_schema, value_matches

LABS = RecordT("labs", (("creat_si", NumT("umol/L", analyte="creatinine")), ("creat", NumT("mg/dL")),
                        ("glucose_si", NumT("mmol/L", analyte="glucose")), ("urea", NumT("mmol/L", analyte="urea"))))
CASE = RecordT("case", (("labs", LABS), ("lmp", DATE), ("visit", DATE), ("cycle", NumT("days", True)),
                        ("age", NumT("years", True))))
CG = Signature("cg", (("creatinine", NumT("mg/dL", analyte="creatinine"), True),),
               RecordT("cg", (("crcl", NumT("mL/min")),)))
BUN = Signature("bunny", (("bun", NumT("mg/dL", analyte="urea_nitrogen"), True),), RecordT("bunny", (("total", INT),)))
SCOPE = Scope({"case": CASE}, {"cg": CG, "bunny": BUN})
ORIGIN = Position("spec.yaml", 3, 5)


def typed(text):
    return check(parse_expression(text, ORIGIN), SCOPE, ORIGIN)


def error(text) -> str:
    with pytest.raises(SpecError) as info:
        typed(text)
    return str(info.value)


def run(text, **names):
    """Evaluate a checked expression the way generated code does."""
    expr, _ = typed(text)
    code = PyGen(lambda name: f"names[{name!r}]")(expr)
    return eval(code, {"_rt": _rt, "names": {"case": names}})  # noqa: S307 - generated from our own nodes


# ---------------------------------------------------------------- analytes
def test_type_syntax_names_the_analyte():
    ref = parse_type("number mg/dL of creatinine")
    assert ref.unit == "mg/dL" and ref.analyte == "creatinine"
    t = from_ref(ref, ORIGIN)
    assert t == NumT("mg/dL", False, "creatinine") and t.describe() == "number mg/dL of creatinine"
    assert from_ref(parse_type("int mmol/L of sodium"), ORIGIN).is_int


def test_record_fields_take_the_same_types():
    from medgym.compiler.records import parse_field_type

    assert parse_field_type("number mmol/L of urea", ORIGIN) == NumT("mmol/L", False, "urea")
    assert parse_field_type("date", ORIGIN) == DATE


@pytest.mark.parametrize("text, message", [
    ("number mg/dL of creatinin", "unknown analyte 'creatinin' (did you mean 'creatinine'?)"),
    ("number of creatinine", "a number of creatinine needs a unit (e.g. `number mg/dL of creatinine`)"),
])
def test_bad_analyte_types(text, message):
    with pytest.raises(SpecError) as info:
        from_ref(parse_type(text, ORIGIN), ORIGIN)
    assert message in str(info.value)


def test_an_analyte_converts_across_dimensions_into_an_input():
    expr, _ = typed("cg(creatinine = case.labs.creat_si).crcl")
    convert = dict(expr.obj.kwargs)["creatinine"]
    assert isinstance(convert, n.Convert) and 183 * convert.scale == pytest.approx(2.070, rel=1e-3)


def test_urea_mmol_converts_into_bun_mg():
    expr, _ = typed("bunny(bun = case.labs.urea).total")
    assert 10 * dict(expr.obj.kwargs)["bun"].scale == pytest.approx(28.01, abs=0.01)


def test_different_analytes_never_convert():
    message = error("cg(creatinine = case.labs.glucose_si).crcl")
    assert message == ("spec.yaml:3:21: unit mismatch: 'case.labs.glucose_si' is mmol/L (substance concentration) of "
                       "glucose but input 'creatinine' of cg expects mg/dL (mass concentration) of creatinine (glucose "
                       "is not creatinine) (different analytes never convert)")


def test_a_value_without_an_analyte_does_not_cross_dimensions():
    message = error("cg(creatinine = 183 umol/L).crcl")
    assert "the conversion depends on the analyte" in message
    assert "declare what '183 umol/L' measures: `number umol/L of creatinine`" in message


def test_same_unit_without_analyte_passes_unchanged():
    expr, _ = typed("cg(creatinine = case.labs.creat).crcl")
    assert isinstance(dict(expr.obj.kwargs)["creatinine"], n.Attr)  # no Convert: same unit, no analyte to contradict


def test_the_hint_names_the_side_to_declare():
    assert "declare what 'case.labs.creat' measures: `number mg/dL of creatinine`" in error(
        "case.labs.creat_si + case.labs.creat")
    assert "declare what the other side measures: `number mg/dL of creatinine`" in error(
        "case.labs.creat - case.labs.creat_si")


def test_unrelated_dimensions_hint():
    assert "(unrelated dimensions never convert)" in error("case.age + case.labs.creat")


# ---------------------------------------------------------------- dates
def test_date_type_and_values():
    assert from_ref(parse_type("date"), ORIGIN) == DATE and DATE.describe() == "date"
    assert value_matches(DATE, "2024-02-29") and not value_matches(DATE, "2023-02-29")
    assert not value_matches(DATE, "03/04/2024") and not value_matches(DATE, 20240304)
    assert json_schema(DATE) == {"type": "string", "format": "date"}


@pytest.mark.parametrize("text, want", [
    ("case.lmp + 280 days", "2024-10-07"),
    ("280 days + case.lmp", "2024-10-07"),
    ("case.lmp + 40 weeks", "2024-10-07"),
    ("case.lmp - 1 days", "2023-12-31"),
    ("case.lmp + (case.cycle - 28 days)", "2024-01-08"),
    ("case.visit - case.lmp", 60),
    ("case.visit > case.lmp", True),
    ("case.lmp == '2024-01-01'", True),
    ("case.visit < '2024-03-02'", True),
    ("if case.visit > case.lmp then case.visit else case.lmp", "2024-03-01"),
])
def test_date_arithmetic(text, want):
    assert run(text, lmp="2024-01-01", visit="2024-03-01", cycle=35) == want


def test_date_types():
    assert typed("case.lmp + 14 days")[1] == DATE
    assert typed("case.visit - case.lmp")[1] == NumT("days", True)
    assert typed("case.visit >= case.lmp")[1] == BOOL


@pytest.mark.parametrize("text, message", [
    ("case.lmp + 14", "'14' has no unit: a date moves by days or weeks (write `14 days` or `2 weeks`)"),
    ("case.lmp + 9 months", "'9 months' is in months: a date moves by days or weeks"),
    ("case.lmp + 3 h", "is in h"),
    ("case.lmp + case.visit", "dates cannot be combined with '+'; date - date gives the days between them"),
    ("case.lmp * 2", "dates cannot be combined with '*'"),
    ("2 * case.lmp", "dates cannot be combined with '*'"),
    ("14 days - case.lmp", "a date can be subtracted from a date, not from a number"),
    ("case.lmp + true", "a date plus or minus bool"),
    ("case.lmp < '2024-13-01'", "'2024-13-01' is not a date; write it as YYYY-MM-DD"),
    ("case.lmp < 3", "expects date"),
])
def test_date_errors(text, message):
    assert message in error(text)


def test_date_add_needs_whole_days_at_run_time():
    assert _rt.date_add("2024-01-01", 14.0) == "2024-01-15"
    with pytest.raises(ValueError, match="whole days"):
        _rt.date_add("2024-01-01", 0.5)
    assert _rt.date_diff("2024-01-01", "2024-03-01") == -60


# ---------------------------------------------------------------- ratios, floor, ceil
def test_a_ratio_of_one_dimension_converts_first():
    assert run("case.cycle / 1 weeks", cycle=14) == pytest.approx(2)
    assert typed("case.cycle / 1 weeks")[1] == NumT()
    assert run("case.cycle / 7", cycle=14) == pytest.approx(2)  # a bare number keeps the unit, as before


def test_floor_and_ceil():
    assert run("floor(case.cycle / 7 days)", cycle=20) == 2 and run("ceil(case.cycle / 7 days)", cycle=20) == 3
    assert typed("floor(case.cycle / 7)")[1] == NumT("days", True)
    assert typed("floor(case.cycle / 7 days)")[1] == NumT(None, True)


# ---------------------------------------------------------------- .score syntax
def test_score_files_parse_analytes_dates_and_requires(tmp_path):
    path = tmp_path / "x.score"
    path.write_text('instrument x "X"\n  source "s"\n  inputs\n    cr: number mg/dL of creatinine in 0.1..25\n'
                    '    lmp: date\n  require cr < 20 "creatinine must be below 20"\n  result y = cr\nend\n')
    decl, = parse_score_file(path)
    assert decl.inputs[0].type.analyte == "creatinine" and decl.inputs[0].high == 25
    assert decl.inputs[1].type.kind == "date"
    assert decl.requires[0].message == "creatinine must be below 20" and decl.requires[0].line == 6
