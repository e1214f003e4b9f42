"""Record series: the type, the sampled trajectories, the series functions and their windows, windowed
lookups, and the misuses the compiler rejects at their line and column."""
import random
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs
from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope, check
from medgym.dsl.errors import Position, SpecError
from medgym.dsl.models import json_schemas
from medgym.dsl.parser import parse_expression, parse_type
from medgym.dsl.support import (rows_between, sample_series, series_delta, series_last, series_max, series_mean,
                                series_min, series_trend, window_rows)
from medgym.dsl.types import NumT, RecordT, SeriesT, from_ref, value_matches
from spec_edits import edited_copy

SERIES = Path(__file__).parent / "fixtures" / "series"
RECORD = "domains/ward/record.yaml"
TOOLS = "domains/ward/tools.yaml"
AKI = "domains/ward/tasks/aki.yaml"
RESP = "domains/ward/tasks/resp.yaml"
HERE = Position("<test>", 1, 1)
CR = SeriesT(NumT("mg/dL", analyte="creatinine"))
ROWS = [{"time": t, "value": v} for t, v in ((0, 1.0), (12, 1.1), (24, 1.0), (36, 1.4), (48, 1.9), (60, 2.2))]


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    return edited_copy(SERIES, tmp_path, file, old, new)


def typed(text: str):
    scope = Scope({"case": RecordT("case", (("cr", CR), ("age", NumT("years", True))))})
    return check(parse_expression(text), scope, HERE)


def test_the_fixture_is_valid():
    assert check_specs(SERIES) == []


def test_the_fixture_passes_the_gate(series_build):
    assert (series_build / "ward" / "domain.json").exists()


def test_series_type_parses_with_unit_and_analyte():
    t = from_ref(parse_type("series(number mg/dL of creatinine)"), HERE)
    assert t == CR and t.describe() == "series(number mg/dL of creatinine)"
    with pytest.raises(SpecError, match="a series holds numbers"):
        from_ref(parse_type("series(text)"), HERE)
    assert value_matches(CR, ROWS) and not value_matches(CR, list(reversed(ROWS)))
    assert not value_matches(CR, [{"time": 0, "value": "high"}])


def test_series_functions_keep_the_series_unit():
    assert typed("last(case.cr)")[1] == NumT("mg/dL", analyte="creatinine")
    assert typed("delta(case.cr, 48 h)")[1] == NumT("mg/dL", analyte="creatinine")
    assert typed("min_over(case.cr, 2 days)")[1].unit == "mg/dL"
    assert typed("trend(case.cr, 24 h)")[1] == NumT(None)  # the series' unit per hour
    assert typed("mean_over(case.cr, 24 h)")[1] == NumT("mg/dL", analyte="creatinine")
    assert typed("last(case.cr) >= 4 mg/dL")[1].describe() == "bool"


def test_a_window_is_rewritten_in_hours():
    expr, _ = typed("max_over(case.cr, 2 days)")
    assert expr.args[1] == n.Num(48.0, "h")
    expr, _ = typed("min_over(case.cr, 90 min)")
    assert expr.args[1].value == pytest.approx(1.5)


@pytest.mark.parametrize("text, message", [
    ("min_over(case.cr, 6 kg)", "the window of min_over() must be a time, but '6 kg' is kg (mass)"),
    ("delta(case.cr, 48)", "the window of delta() needs a time unit: write `48 h`"),
    ("trend(case.cr, case.age)", "the window of trend() is a fixed time written out"),
    ("last(case.age)", "last() needs a series"),
    ("max_over(case.cr)", "max_over() takes 2 arguments"),
])
def test_series_misuse_is_rejected_at_its_column(text, message):
    with pytest.raises(SpecError) as info:
        typed(text)
    assert message in info.value.message
    assert info.value.pos.col >= 1


def test_series_functions_read_the_window_before_the_latest_row():
    assert series_last(ROWS) == 2.2
    assert window_rows(ROWS, 24) == ROWS[-3:] and window_rows(ROWS, 0) == ROWS[-1:]
    assert series_mean(ROWS, 24) == pytest.approx((1.4 + 1.9 + 2.2) / 3)
    assert series_min(ROWS, 24) == 1.4 and series_max(ROWS, 72) == 2.2 and series_min(ROWS, 72) == 1.0
    assert series_delta(ROWS, 48) == pytest.approx(2.2 - 1.1) and series_delta(ROWS, 60) == pytest.approx(1.2)
    assert series_trend(ROWS, 24) == pytest.approx(0.8 / 24)
    assert series_trend(ROWS[:1], 24) == 0.0 and series_last([]) is None
    assert rows_between(ROWS, since=24, until=48) == ROWS[2:5] and rows_between(ROWS, last_n=2) == ROWS[-2:]


PARAMS = {"start": 0.0, "every": 4.0, "over": 72.0, "baseline": 16.0, "trend": 0.1, "noise": 1.5}


def test_sampled_series_are_deterministic():
    first = sample_series(random.Random(42), PARAMS, ((24.0, 5.0),), (8, 40), 0)
    assert sample_series(random.Random(42), PARAMS, ((24.0, 5.0),), (8, 40), 0) == first
    assert sample_series(random.Random(43), PARAMS, ((24.0, 5.0),), (8, 40), 0) != first
    assert [r["time"] for r in first] == [4.0 * i for i in range(19)]


def test_sampled_series_are_plausible():
    noisy = sample_series(random.Random(1), {**PARAMS, "noise": 20.0}, (), (8, 40), 0)
    assert all(8 <= r["value"] <= 40 for r in noisy) and {8, 40} & {r["value"] for r in noisy}  # clip is reached
    quiet = sample_series(random.Random(1), {**PARAMS, "noise": 0.0}, ((36.0, 4.0),), None, 2)
    values = [r["value"] for r in quiet]
    assert values == sorted(values) and values[0] == 16.0  # a rising trend without noise never falls
    assert values[9] - values[8] == pytest.approx(0.4 + 4.0)  # the event's shift lands at its time


def test_the_build_samples_the_same_rows_twice(tmp_path):
    from medgym.compiler.pipeline import compile_specs

    rows = []
    for name in ("a", "b"):
        compile_specs(SERIES, tmp_path / name)
        rows.append((tmp_path / name / "ward" / "tasks" / "train.jsonl").read_text())
    assert rows[0] == rows[1] and '"creatinine":[{"time":0.0,' in rows[0]


def test_json_schema_documents_series():
    field = json_schemas()["record"]["$defs"]["RecordField"]["properties"]["type"]
    assert "series(number unit)" in field["description"]


MISUSES = [
    ("window_in_kg", RESP, "max_over(case.vitals.rr, 24 h)", "max_over(case.vitals.rr, 6 kg)",
     f"{RESP}:25:42: the window of max_over() must be a time, but '6 kg' is kg (mass)"),
    ("generator_every_in_kg", RECORD, "every: 4 h, over: 72 h, baseline: 16", "every: 4 kg, over: 72 h, baseline: 16",
     f"{RECORD}:19:34: series every must be a time (e.g. `4 h`), but it is kg (mass)"),
    ("since_not_a_time", TOOLS, "since: {type: number h, default: 0, min: 0, description",
     "since: {type: number kg, default: 0, min: 0, description",
     f"{TOOLS}:8:19: since bounds the rows of a series by time: its type is a time (e.g. `number h`, hours since "
     "admission), not number kg"),
    ("unknown_series_key", RECORD, "normal: {series: {every: 12 h,", "normal: {series: {evry: 12 h,",
     f"{RECORD}:10:27: a series has no 'evry'"),
    ("series_in_a_let", AKI, "  base: {uniform: [0.7, 1.1], round: 2}", "  base: {series: {every: 4 h, over: 8 h, baseline: 1}}",
     f"{AKI}:15:18: a series generator fills a record field of type series(...), not let 'base'"),
    ("rows_out_of_order", "domains/ward/cases/written_rows.yaml", "- {time: 12, value: 0.85}", "- {time: 30, value: 0.85}",
     "domains/ward/cases/written_rows.yaml:9:7: record field 'labs.creatinine': row 3 (time 24) comes before row 2 "
     "(time 30): rows are in time order"),
    ("row_value_not_a_number", "domains/ward/cases/written_rows.yaml", "- {time: 12, value: 0.85}", "- {time: 12, value: high}",
     "domains/ward/cases/written_rows.yaml:9:7: record field 'labs.creatinine': row 2 must be {time: hours since "
     "admission, value: number mg/dL of creatinine}"),
]


@pytest.mark.parametrize("name, file, old, new, expected", MISUSES, ids=[m[0] for m in MISUSES])
def test_series_misuse_in_specs_is_located(tmp_path, name, file, old, new, expected):
    errors = check_specs(broken(tmp_path, file, old, new))
    assert errors, "the broken spec compiled"
    assert str(errors[0]).replace(str(tmp_path / "specs") + "/", "").startswith(expected)


def test_a_number_cannot_fill_a_series(tmp_path):
    root = broken(tmp_path, AKI, 'labs.creatinine: {series: {every: 12 h, over: 72 h, baseline: "=base", noise: 0.03,\n'
                                 '                                 events: [{at: "=onset_h * 1 h", shift: "=rise"}], clip: [0.3, 12], round: 2}}',
                  "labs.creatinine: {normal: [1, 0.1]}")
    errors = check_specs(root)
    assert any("a normal distribution cannot fill record field 'labs.creatinine'" in str(e) or
               "fill it with {series:" in str(e) for e in errors), errors
    assert str(errors[0]).split(":")[0].endswith(AKI)


def test_the_flow_check_knows_a_window_shows_only_its_rows(tmp_path):
    """hours 60-72 hold four rows of the last day's seven: the reference cannot know the day's maximum."""
    errors = check_specs(broken(tmp_path, RESP, "signs: [rr], since: 48}", "signs: [rr], since: 60}"))
    assert errors and f"{RESP}:" in str(errors[0])
    assert "the windowed lookups before it show only some rows of case.vitals.rr" in str(errors[0])
    assert check_specs(broken(tmp_path / "wide", RESP, "signs: [rr], since: 48}", "signs: [rr], since: 40}")) == []


def test_a_window_param_in_days_is_read_in_hours(tmp_path):
    import json

    from medgym.compiler.pipeline import compile_specs

    root = broken(tmp_path, TOOLS, "since: {type: number h, default: 0, min: 0, description",
                  "since: {type: number days, default: 0, min: 0, description")
    compile_specs(root, tmp_path / "build")
    tools = {t["name"]: t for t in json.loads((tmp_path / "build" / "ward" / "domain.json").read_text())["tools"]}
    assert tools["get_creatinine"]["window"] == {"since": 24.0, "until": 1.0, "last_n": 1.0}
    assert tools["get_vitals"]["window"] == {"since": 1.0, "until": 1.0}


# ---------------------------------------------------------------- value_at and count_over
def test_value_at_is_the_last_row_at_or_before_the_hour():
    from medgym.dsl.support import series_at

    assert series_at(ROWS, 24) == 1.0 and series_at(ROWS, 30) == 1.0  # the value charted at 24 h holds until 36 h
    assert series_at(ROWS, 0) == 1.0 and series_at(ROWS, 500) == 2.2
    late = ROWS[2:]  # the first row at hour 24
    with pytest.raises(ValueError, match="no row at or before hour 12 \\(the series starts at hour 24\\)"):
        series_at(late, 12)
    assert series_at(late, 12, lenient=True) is None and series_at([], 12) is None


def test_count_over_counts_the_windows_rows_beyond_the_threshold():
    from medgym.dsl.support import series_count

    assert series_count(ROWS, 72, ">", 1.0) == 4 and series_count(ROWS, 72, ">=", 1.0) == 6
    assert series_count(ROWS, 24, "<", 2.0) == 2 and series_count(ROWS, 24, "<=", 1.4) == 1
    assert series_count(ROWS, 0, ">", 2.0) == 1 and series_count([], 24, ">", 1.0) == 0


def test_value_at_and_count_over_are_typed():
    expr, t = typed("value_at(case.cr, 1 days)")
    assert t == NumT("mg/dL", analyte="creatinine") and expr.args[1] == n.Num(24.0, "h")
    expr, t = typed("count_over(case.cr, 2 days, above=1.2 mg/dL)")
    assert t == NumT(None, True) and not expr.kwargs  # a row count; the threshold becomes (operator, value)
    assert expr.args[1] == n.Num(48.0, "h") and expr.args[2].value == ">" and expr.args[3].value == 1.2
    expr, _ = typed("count_over(case.cr, 24 h, below=0.012 g/L)")
    assert isinstance(expr.args[3], n.Convert) and expr.args[3].scale == pytest.approx(100)  # into the series' mg/dL
    assert typed("count_over(case.cr, 24 h, at_most=1.2)")[0].args[2].value == "<="  # a bare number is in mg/dL
    assert typed("value_at(case.cr, 24 h) >= 2 mg/dL")[1].describe() == "bool"


def test_value_at_and_count_over_run_in_generated_code():
    from medgym.compiler.pycode import PyGen
    from medgym.dsl import support as _rt

    def run(text, lenient=False):
        return eval(PyGen(lambda name: name, lenient=lenient)(typed(text)[0]), {"_rt": _rt, "case": {"cr": ROWS}})

    assert run("value_at(case.cr, 40 h)") == 1.4
    assert run("count_over(case.cr, 24 h, above=1.5)") == 2
    assert run("count_over(case.cr, 72 h, below=1.05 mg/dL)") == 2


@pytest.mark.parametrize("text, message, at", [
    ("value_at(case.cr, 3 kg)", "the time point of value_at() must be a time, but '3 kg' is kg (mass)", "3 kg"),
    ("value_at(case.cr, 24)", "the time point of value_at() needs a time unit: write `24 h`", "24"),
    ("value_at(case.cr, case.age)", "the time point of value_at() is a fixed time written out", "case.age"),
    ("value_at(case.age, 24 h)", "value_at() needs a series", "case.age"),
    ("count_over(case.cr, 24 h, below=3 kg)", "unit mismatch: '3 kg' is kg (mass) but the threshold of count_over() "
                                            "expects mg/dL (mass concentration) of creatinine", "3 kg"),
    ("count_over(case.cr, 24 h, below=100 umol/L)", "the threshold of count_over() expects mg/dL", "100"),
    ("count_over(case.cr, 24 kg, below=1)", "the window of count_over() must be a time", "24 kg"),
    ("count_over(case.cr, 24 h, beneath=1)", "count_over() has no parameter 'beneath'", "1)"),
    ("count_over(case.cr, 24 h)", "count_over() takes one threshold (below=, above=, at_most= or at_least=)", "count"),
    ("count_over(case.cr, 24 h, below=1, above=2)", "count_over() takes one threshold", "count"),
    ("count_over(case.cr, 24 h, below='high')", "the threshold of count_over() must be a number", "'high'"),
    ("last(case.cr, below=1)", "'last' takes no keyword arguments", "last"),
])
def test_value_at_and_count_over_misuse_is_located(text, message, at):
    with pytest.raises(SpecError) as info:
        typed(text)
    assert message in info.value.message
    assert info.value.pos.col == text.index(at) + 1


def test_the_flow_check_knows_the_row_value_at_reads(tmp_path):
    """value_at(rr, 52 h) reads the row charted at 52 h: since 48 shows it, since 56 does not."""
    use = ('"=max_over(case.vitals.rr, 24 h)"', '"=value_at(case.vitals.rr, 52 h)"')
    assert check_specs(broken_all(tmp_path / "ok", RESP, [use])) == []
    errors = check_specs(broken_all(tmp_path / "late", RESP, [use, ("signs: [rr], since: 48}", "signs: [rr], since: 56}")]))
    assert errors and str(errors[0]).replace(str(tmp_path / "late" / "specs") + "/", "").startswith(f"{RESP}:30:")
    assert "the windowed lookups before it show only some rows of case.vitals.rr" in str(errors[0])


def test_the_flow_check_knows_the_rows_count_over_reads(tmp_path):
    use = ('"=max_over(case.vitals.rr, 24 h)"', '"=count_over(case.vitals.rr, 24 h, above=20 /min)"')
    assert check_specs(broken_all(tmp_path / "ok", RESP, [use])) == []
    errors = check_specs(broken_all(tmp_path / "late", RESP, [use, ("signs: [rr], since: 48}", "signs: [rr], since: 60}")]))
    assert errors and "show only some rows of case.vitals.rr" in str(errors[0])


def test_the_flow_check_follows_count_overs_threshold(tmp_path):
    """A threshold read from a sampled let the agent never sees makes the count unknown."""
    use = ('"=max_over(case.vitals.rr, 24 h)"', '"=count_over(case.vitals.rr, 24 h, above=jump)"')
    errors = check_specs(broken_all(tmp_path, RESP, [use]))
    assert errors and "let 'jump' is sampled, and no earlier reference step reveals it" in str(errors[0])


def test_a_threshold_in_another_unit_is_located_in_the_family(tmp_path):
    use = ('"=max_over(case.vitals.rr, 24 h)"', '"=count_over(case.vitals.rr, 24 h, above=20 mmHg)"')
    errors = check_specs(broken_all(tmp_path, RESP, [use]))
    assert str(errors[0]).replace(str(tmp_path / "specs") + "/", "").startswith(
        f"{RESP}:25:56: unit mismatch: '20 mmHg' is mmHg (pressure) but the threshold of count_over() expects /min")


def broken_all(tmp_path: Path, file: str, pairs: list[tuple[str, str]]) -> Path:
    root = broken(tmp_path, file, *pairs[0])
    path = root / file
    text = path.read_text()
    for old, new in pairs[1:]:
        assert old in text, f"fixture text not found: {old!r}"
        text = text.replace(old, new, 1)
    path.write_text(text)
    return root


def test_value_at_before_the_first_row_fails_the_task_at_its_family(tmp_path):
    steady = 'vitals.rr: {series: {every: 4 h, over: 72 h, baseline: "=start_rr", noise: 0, clip: [8, 40]}}'
    late = 'vitals.rr: {series: {start: 8 h, every: 4 h, over: 64 h, baseline: "=start_rr", noise: 0, clip: [8, 40]}}'
    root = broken_all(tmp_path, RESP, [(steady, late), ('"=max_over(case.vitals.rr, 24 h)"', '"=value_at(case.vitals.rr, 4 h)"')])
    errors = [str(e).replace(str(root) + "/", "") for e in check_specs(root)]
    assert errors and errors[0].startswith(f"{RESP}:")
    assert "value_at(): no row at or before hour 4 (the series starts at hour 8)" in errors[0]
