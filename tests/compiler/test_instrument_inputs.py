"""Calling a compiled instrument: inputs are checked and converted by one routine (`support.read_inputs`) for
expressions, tools and `medgym score` alike. Every problem is reported at once and names its input; numbers
may be given as text with a unit; dates are ISO text; `require` lines refuse inputs the instrument cannot use."""
import pytest

from medgym.compiler import codegen
from medgym.compiler.instruments import accepted_units, check_instrument
from medgym.compiler.pipeline import _instrument_context, run_example
from medgym.dsl.errors import SpecError
from medgym.dsl.parser import parse_score_file
from medgym.dsl.support import InstrumentInputError, check_inputs, read_inputs
from medgym.dsl.types import NumT

SPEC = '''
instrument crcl "Cockcroft-Gault creatinine clearance (test copy)"
  source "Cockcroft DW, Gault MH. Nephron 1976;16:31-41"
  inputs
    age: int years in 18..120
    weight: number kg in 20..300
    creatinine: number mg/dL of creatinine in 0.1..20   "serum creatinine"
    sex: enum(female, male)
    temperature: number degC in 30..43 default 37
    inr: number in 0.5..20 default 1
  let factor = if sex == female then 0.85 else 1
  result crcl = (140 - age) * weight / (72 * creatinine) * factor unit mL/min round 1
  example "Constructed: SI creatinine given as text"
    given age = 60, weight = 72, creatinine = "88.4 umol/L", sex = male
    expect crcl = 80.0
end

instrument pregnancy "Days pregnant (test)"
  source "ACOG CO 700"
  inputs
    lmp: date
    on: date
  require on >= lmp "'on' is before the LMP"
  require on - lmp <= 320 days "more than 320 days after the LMP"
  let days = on - lmp
  result weeks = floor(days / 7 days)
  result edd = lmp + 280 days
end
'''


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    path = folder / "test.score"
    path.write_text(SPEC)
    known, checked, errors = {}, [], []
    for decl in parse_score_file(path):
        result = check_instrument(decl, known, errors)
        assert result is not None, [str(e) for e in errors]
        known[result.name] = result.signature
        checked.append(result)
    source = codegen.render("instruments.py.j2", instruments=[_instrument_context(c) for c in checked],
                           files=["test.score"], version="test", spec_hash="0" * 64)
    module = codegen.load_module("instrument_inputs_under_test", source, str(folder / "instruments.py"))
    return {c.name: (c, getattr(module, c.name)) for c in checked}


def problems(function, **inputs) -> list[str]:
    with pytest.raises(InstrumentInputError) as info:
        function(**inputs)
    return info.value.problems


def test_text_with_a_unit_converts_through_the_analyte(compiled):
    _, crcl = compiled["crcl"]
    si = crcl(age=60, weight=72, creatinine="88.4 umol/L", sex="male")
    assert si == crcl(age=60, weight="72 kg", creatinine=1.0, sex="male") == {"crcl": 80.0}
    assert crcl(age="720 months", weight="158.73 lb", creatinine="1 MG/DL", sex="Male")["crcl"] == pytest.approx(80.0, abs=0.1)
    assert crcl(age=60, weight=72, creatinine="1.0", sex="male")["crcl"] == 80.0  # a number as text: the input's unit


def test_every_problem_at_once_each_naming_its_input(compiled):
    _, crcl = compiled["crcl"]
    with pytest.raises(InstrumentInputError) as info:
        crcl(age=17, creatinine="2300 umol/L", sex="x", temperature="101.3 mmHg", weigth=70, inr="1.2 mg/dL")
    assert info.value.problems == [
        "unknown input 'weigth' (did you mean 'weight'?)",
        "input 'age' = 17 years is outside 18..120 years",
        "missing input 'weight' (number kg in 20..300)",
        "input 'creatinine' = 2300 umol/L (26.02 mg/dL) is outside 0.1..20 mg/dL",
        "input 'sex' must be one of female, male, got 'x'",
        "input 'temperature': mmHg does not convert to degC in '101.3 mmHg'; units accepted: degC, degF",
        "input 'inr' takes a plain number without a unit, got '1.2 mg/dL'",
    ]
    assert str(info.value).startswith("crcl: 7 problems with the inputs:\n- unknown input 'weigth'")


def test_one_problem_is_one_line(compiled):
    _, crcl = compiled["crcl"]
    with pytest.raises(InstrumentInputError, match=r"^crcl: input 'age' must be a whole number of years, got "
                                                   r"30 months = 2\.5 years$"):
        crcl(age="30 months", weight=70, creatinine=1, sex="male")


def test_a_default_is_used_when_left_out_or_null(compiled):
    _, crcl = compiled["crcl"]
    assert crcl(age=60, weight=72, creatinine=1, sex="male", temperature=None) == {"crcl": 80.0}
    assert crcl(age=60, weight=72, creatinine=1, sex="male", temperature="101.3 degF") == {"crcl": 80.0}


@pytest.mark.parametrize("value, message", [
    ({"value": 1}, "must be a number (in mg/dL), got {'value': 1}"),
    ([1, 2], "must be a number (in mg/dL), got [1, 2]"),
    (True, "must be a number (in mg/dL), got True"),
    (float("nan"), "must be a number (in mg/dL), got nan"),
    ("x" * 5000, "must be a number (in mg/dL) or text with its unit such as \"2 mg/dL\", got 'xxxxx"),
    ("1.2 furlongs", "unknown unit 'furlongs' in '1.2 furlongs'; units accepted: mg/dL, ng/L"),
    ("1.2 mmHg", "mmHg does not convert to mg/dL in '1.2 mmHg'"),
])
def test_anything_a_model_sends_becomes_a_message(compiled, value, message):
    _, crcl = compiled["crcl"]
    found, = problems(crcl, age=60, weight=72, creatinine=value, sex="male")
    assert found.startswith("input 'creatinine'") and message in found and len(found) < 400


def test_a_flood_of_unknown_inputs_keeps_the_message_short(compiled):
    _, crcl = compiled["crcl"]
    with pytest.raises(InstrumentInputError) as info:
        crcl(age=60, weight=72, creatinine=1, sex="male", **{f"x{i}": i for i in range(100)})
    assert len(info.value.problems) == 100 and str(info.value).endswith("\n- and 80 more")


def test_accepted_units_declared_first_then_its_dimension_then_the_analyte():
    accepts = accepted_units(NumT("mg/dL", analyte="creatinine"))
    names = list(accepts)
    assert names[0] == "mg/dL" and names.index("g/L") < names.index("umol/L")
    assert accepts["umol/L"][0] == pytest.approx(1 / 88.4, rel=1e-3)
    assert "mEq/L" not in accepts  # creatinine has no valence
    assert list(accepted_units(NumT("degC"))) == ["degC", "degF"]
    assert accepted_units(NumT(None)) == {}


def test_dates_are_iso_text_in_and_out(compiled):
    _, pregnancy = compiled["pregnancy"]
    assert pregnancy(lmp=" 2024-01-01 ", on="2024-03-01") == {"weeks": 8, "edd": "2024-10-07"}
    found = problems(pregnancy, lmp="01/02/2024", on="2024-02-30")
    assert found == ["input 'lmp' must be a date written YYYY-MM-DD (e.g. 2024-03-15), got '01/02/2024'",
                     "input 'on' = '2024-02-30' is not a day of the calendar"]


def test_requires_are_reported_together_before_later_lets_run(compiled):
    _, pregnancy = compiled["pregnancy"]
    assert problems(pregnancy, lmp="2024-01-01", on="2023-12-01") == ["'on' is before the LMP"]
    assert problems(pregnancy, lmp="2020-01-01", on="2024-12-01") == ["more than 320 days after the LMP"]


def test_examples_may_give_numbers_as_text_with_a_unit(compiled):
    checked, crcl = compiled["crcl"]
    assert run_example(crcl, checked.decl.examples[0]) == []


def test_read_inputs_returns_the_values_used(compiled):
    _, crcl = compiled["crcl"]
    values = read_inputs("crcl", crcl.input_spec, {"age": 60.0, "weight": 72, "creatinine": "176.8 umol/L", "sex": "MALE"})
    assert values == {"age": 60, "weight": 72, "creatinine": pytest.approx(2.0, rel=1e-3), "sex": "male",
                      "temperature": 37, "inr": 1}
    assert type(values["age"]) is int


def test_builds_from_an_older_medgym_still_check(compiled):
    old = (("age", "int", 18, 120, (), False, None), ("sex", "enum", None, None, ("female", "male"), True, "female"))
    assert check_inputs("old", old, {"age": 40.0}) == (40, "female")
    with pytest.raises(InstrumentInputError, match="input 'age' = 12 is outside 18..120"):
        check_inputs("old", old, {"age": 12})


def test_a_require_must_be_true_or_false(tmp_path):
    path = tmp_path / "bad.score"
    path.write_text('instrument bad "B"\n  source "s"\n  inputs\n    x: number in 0..1\n  require x + 1 "oops"\n'
                    '  result y = x\nend\n')
    errors = []
    assert check_instrument(parse_score_file(path)[0], {}, errors) is None
    assert [str(e) for e in errors] == [f"{path}:5:3: a require condition must be true/false, not number"]


def test_a_type_error_in_a_date_expression_is_located(tmp_path):
    path = tmp_path / "bad.score"
    path.write_text('instrument bad "B"\n  source "s"\n  inputs\n    lmp: date\n  result edd = lmp + 9 months\n'
                    '  result ok = lmp + 280 days\nend\n')
    errors = []
    assert check_instrument(parse_score_file(path)[0], {}, errors) is None
    assert len(errors) == 1 and isinstance(errors[0], SpecError)
    assert str(errors[0]).startswith(f"{path}:5:22: '9 months' is in months: a date moves by days or weeks")
