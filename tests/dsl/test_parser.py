"""The grammar: expressions, types and .score files parse into the expected nodes; bad text fails located."""
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgym.dsl import nodes as n
from medgym.dsl.errors import Position, SpecError
from medgym.dsl.parser import parse_expression, parse_score_file, parse_type


def test_precedence_and_units():
    expr = parse_expression("a + 2 * b > 38.5 degC and not c")
    assert isinstance(expr, n.BoolOp) and expr.op == "and"
    compare = expr.left
    assert compare.op == ">" and compare.right == n.Num(38.5, "degC", False)
    assert compare.left.op == "+" and compare.left.right.op == "*"
    assert expr.right == n.Unary("not", n.Name("c"))


def test_if_elif_else_and_calls():
    expr = parse_expression("if x <= 1 then 'home' elif x == 2 then 'ward' else round(y, 1)")
    assert isinstance(expr, n.If) and len(expr.branches) == 2
    assert expr.orelse == n.Call("round", (n.Name("y"), n.Num(1, None, True)))


def test_keyword_arguments_attributes_and_membership():
    expr = parse_expression("curb65(bun=case.labs.bun, age=70).total >= 3 and sex not in [female]")
    call = expr.left.left.obj
    assert call.func == "curb65" and [k for k, _ in call.kwargs] == ["bun", "age"]
    assert expr.right.op == "notin"


def test_slash_units_do_not_swallow_division():
    assert parse_expression("30 /min") == n.Num(30, "/min", True)
    assert parse_expression("x / 2").op == "/"
    assert parse_expression("5 x10^9/L").unit == "x10^9/L"


def test_types():
    assert parse_type("number mg/dL") == n.TypeRef("number", "mg/dL")
    assert parse_type("list[enum(a, b)]").item.values == ("a", "b")
    assert parse_type("int years").unit == "years"


@pytest.mark.parametrize("text, message", [
    ("a >", "1:4: unexpected end of input; expected"),
    ("a b", "1:3: unexpected 'b'"),
    ("a $ b", "1:3: unexpected character '$'"),
    ("if a then b", "unexpected end of input; expected 'elif', 'else'"),
])
def test_syntax_errors_are_located(text, message):
    with pytest.raises(SpecError) as info:
        parse_expression(text, Position("f.yaml", 1, 1))
    assert message in str(info.value) and str(info.value).startswith("f.yaml:1:")


def test_error_position_is_shifted_into_the_file():
    with pytest.raises(SpecError) as info:
        parse_expression("a > > b", Position("specs/x.yaml", 12, 10))
    assert str(info.value).startswith("specs/x.yaml:12:14:")


SCORE = '''instrument demo "Demo score"
  source "A. Author, Journal 2020"
  inputs
    hr: number /min in 0..300 "heart rate"
    mode: enum(air, oxygen) default air
  # a comment line
  let fast = hr > 100
  points
    fast => 1
    mode == oxygen => 2
  result doubled = total * 2
  bands
    0 low "low"
    1..3 high "high"
  example "constructed"
    given hr = 120, mode = oxygen
    expect total = 3, band = high within 0.1
end
'''


def test_score_file_sections():
    (ins,) = parse_score_file("demo.score", SCORE)
    assert ins.name == "demo" and ins.sources == ("A. Author, Journal 2020",)
    assert [i.name for i in ins.inputs] == ["hr", "mode"] and ins.inputs[0].high == 300
    assert ins.inputs[1].has_default and ins.inputs[1].default == "air"
    assert [p.text for p in ins.points] == ["fast", "mode == oxygen"]
    assert [(b.low, b.high, b.label) for b in ins.bands] == [(0, 0, "low"), (1, 3, "high")]
    assert ins.examples[0].given == (("hr", 120), ("mode", "oxygen")) and ins.examples[0].within == 0.1


def test_score_file_missing_arrow_points_at_the_line():
    with pytest.raises(SpecError) as info:
        parse_score_file("demo.score", SCORE.replace("fast => 1", "fast 1"))
    assert str(info.value).startswith("demo.score:9:")


_pieces = st.sampled_from(["a", "b.c", "1", "2.5 mg/dL", "(", ")", "[", "]", ",", "and", "or", "not", "if", "then",
                           "else", "elif", "==", "<", "+", "-", "*", "/", "^", "in", "'s'", "f(", "x=", ".", "=>", "\n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_pieces, max_size=40).map(" ".join)))
def test_random_text_never_escapes_as_another_exception(text):
    started = time.perf_counter()
    try:
        parse_expression(text)
    except SpecError:
        pass
    assert time.perf_counter() - started < 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=50, max_value=3000))
def test_deep_nesting_is_an_error_not_a_crash(depth):
    started = time.perf_counter()
    try:
        parse_expression("(" * depth + "1" + ")" * depth)
    except SpecError:
        pass
    assert time.perf_counter() - started < 1.0
