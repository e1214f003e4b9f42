"""The type checker: names, fields, enums and units are checked before anything runs."""
import pytest

from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope, Signature, check
from medgym.dsl.errors import Position, SpecError
from medgym.dsl.parser import parse_expression
from medgym.dsl.types import BOOL, INT, TEXT, EnumT, ListT, NumT, RecordT

VITALS = RecordT("vitals", (("hr", NumT("/min")), ("temp", NumT("degC")), ("sbp", NumT("mmHg"))))
LABS = RecordT("labs", (("urea", NumT("mmol/L")), ("bun", NumT("mg/dL")), ("hb", NumT("g/dL"))))
CASE = RecordT("case", (("vitals", VITALS), ("labs", LABS), ("sex", EnumT(("female", "male"))),
                        ("age", NumT("years", True)), ("allergies", ListT(TEXT))))
CURB = Signature("curb65", (("bun", NumT("mg/dL"), True), ("age", NumT("years", True), True), ("confusion", BOOL, False)),
                 RecordT("curb65", (("total", INT),)))
SCOPE = Scope({"case": CASE}, {"curb65": CURB})
ORIGIN = Position("spec.yaml", 7, 11)


def typed(text):
    return check(parse_expression(text, ORIGIN), SCOPE, ORIGIN)


def error(text) -> str:
    with pytest.raises(SpecError) as info:
        typed(text)
    return str(info.value)


def test_same_dimension_converts():
    expr, t = typed("case.vitals.temp > 100.4 degF")
    assert t == BOOL and isinstance(expr.right, n.Convert)
    assert expr.right.scale == pytest.approx(5 / 9) and 100.4 * expr.right.scale + expr.right.shift == pytest.approx(38.0)


def test_unit_mismatch_is_located():
    assert error("curb65(bun=case.labs.urea, age=case.age).total") == (
        "spec.yaml:7:22: unit mismatch: 'case.labs.urea' is mmol/L (substance concentration) but input 'bun' of "
        "curb65 expects mg/dL (mass concentration) (clinical conversions across dimensions depend on the analyte: "
        "declare it on both sides (`number mmol/L of urea`, `number mg/dL of urea_nitrogen`) or convert explicitly)")
    assert "unit mismatch" in error("case.vitals.hr + case.vitals.sbp")


def test_unknown_field_suggests():
    assert error("case.vitals.hrr > 100") == "spec.yaml:7:11: unknown field 'case.vitals.hrr' (did you mean 'hr'?)"


def test_enum_literals_bare_and_quoted():
    assert typed("case.sex == female")[1] == BOOL
    assert typed("case.sex in [female, male]")[1] == BOOL
    assert "'femal' is not one of enum(female, male)" in error("case.sex == 'femal'")


def test_instrument_calls_check_inputs():
    assert typed("curb65(bun=case.labs.bun, age=case.age).total >= 3")[1] == BOOL
    assert "needs input 'age'" in error("curb65(bun=case.labs.bun).total")
    assert "has no input 'bunn'" in error("curb65(bunn=1, age=2).total")
    assert "unknown function or instrument 'curb66'" in error("curb66(bun=1).total")


def test_types_of_operators():
    assert typed("max(case.vitals.hr, 3) * 2")[1] == NumT("/min")
    assert typed("if case.age > 65 then 'icu' else 'ward'")[1] == TEXT
    assert "must be bool" in error("case.age and true")
    assert "'<' compares numbers" in error("case.sex < 3")


def test_plus_joins_texts_and_lists():
    assert typed("'sex: ' + case.sex")[1] == TEXT
    assert typed("case.allergies + ['latex']")[1] == ListT(TEXT)
    assert "'+' needs numbers" in error("case.allergies + 'latex'")
    assert "'+' needs numbers" in error("case.age + 'years'")


def test_citation_functions_take_text():
    scope = Scope({"case": CASE, "answer": RecordT("answer", (("reasoning", TEXT),))}, {}, episode=True)
    assert check(parse_expression("cites_retrieved(answer.reasoning)"), scope, ORIGIN)[1] == BOOL
    with pytest.raises(SpecError, match="argument of cites_passages"):
        check(parse_expression("cites_passages(case.age)"), scope, ORIGIN)


def test_episode_functions_only_in_rubrics():
    assert "only available in rubric expressions" in error('called("x")')
    scope = Scope({"case": CASE}, {}, episode=True, tool_names=frozenset({"get_vital_signs"}))
    assert check(parse_expression('called("get_vital_signs") and clock < 30'), scope, ORIGIN)[1] == BOOL
    with pytest.raises(SpecError, match="unknown tool 'get_vitals'"):
        check(parse_expression('called("get_vitals")'), scope, ORIGIN)
