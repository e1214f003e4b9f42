"""`medgym score`, `medgym describe` and `medgym list instruments` on a build."""
import json

from typer.testing import CliRunner

from medgym.cli import app

CURB = {"confusion": True, "bun": 22, "respiratory_rate": 32, "sbp": 85, "dbp": 50, "age": 70}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_score_converts_text_with_a_unit_and_says_so(mini_build):
    result = invoke("score", "curb65", "--build", mini_build, "--inputs",
                    json.dumps({**CURB, "age": "840 months", "sbp": "11.33 kPa"}))
    assert result.exit_code == 0, result.output
    assert "age: 840 months = 70 years" in result.stderr
    assert json.loads(result.stdout)["total"] == 5


def test_score_reports_every_input_problem_at_once(mini_build):
    bad = {**CURB, "age": 130, "bun": "8 mmol/L", "confusion": "yes", "sbpp": 85}
    del bad["sbp"]
    result = invoke("score", "curb65", "--build", mini_build, "--inputs", json.dumps(bad))
    assert result.exit_code == 2
    assert "curb65: 5 problems with the inputs:" in result.output
    for line in ["- unknown input 'sbpp' (did you mean 'sbp'?)",
                 "- input 'confusion' must be true or false, got 'yes'",
                 "- input 'bun': mmol/L does not convert to mg/dL in '8 mmol/L'; units accepted: mg/dL, ",
                 "- missing input 'sbp' (number mmHg in 20..300)",
                 "- input 'age' = 130 years is outside 0..120 years",
                 "`medgym score curb65 --describe` lists the inputs"]:
        assert line in result.output


def test_describe_lists_inputs_units_ranges_defaults_and_outputs(mini_build):
    result = invoke("describe", "curb65", "--build", mini_build)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "curb65: CURB-65 severity score for community-acquired pneumonia"
    assert "  bun: number mg/dL in 1..300 mg/dL - blood urea nitrogen" in lines
    assert "  age: int years in 0..120 years" in lines
    assert any(line.startswith("      also accepts: ") and "kPa" in line for line in lines)  # after sbp
    assert "  total: int points" in lines and "  band: enum(low, moderate, high)" in lines
    again = invoke("score", "curb65", "--describe", "--build", mini_build)
    assert again.exit_code == 0 and again.stdout == result.stdout
    as_json = json.loads(invoke("describe", "curb65", "--json", "--build", mini_build).stdout)
    assert as_json["inputs"]["sbp"]["also_accepts"] == ["kPa", "cmH2O"] and as_json["inputs"]["sbp"]["min"] == 20


def test_describe_shows_analytes_dates_and_defaults(shipped_build):
    result = invoke("describe", "estimated_due_date", "--build", shipped_build)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  from_date: date - first day of the last menstrual period" in out
    assert "      written YYYY-MM-DD, e.g. 2024-03-15" in out
    assert "  cycle_length: int days in 20..45 days, optional (default 28)" in out
    assert "  method: enum(lmp, ultrasound, conception, embryo_transfer), optional (default \"lmp\")" in out
    assert "  edd: date" in out


def test_score_a_date_instrument(shipped_build):
    result = invoke("score", "gestational_age", "--build", shipped_build, "--inputs",
                    '{"from_date": "2022-01-06", "on": "2022-04-29"}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["weeks"] == 16 and json.loads(result.stdout)["days"] == 1


def test_list_instruments(mini_build):
    result = invoke("list", "instruments", "--build", mini_build)
    assert result.exit_code == 0, result.output
    assert "curb65" in result.stderr and "CURB-65 severity score" in result.stderr and "Lim WS" in result.stderr
    assert "domain" not in result.stderr.split("instruments")[0]  # the domain table is left out
    listing = json.loads(invoke("list", "instruments", "--json", "--build", mini_build).stdout)
    assert listing["curb65"]["title"].startswith("CURB-65") and listing["curb65"]["sources"][0].startswith("Lim WS")
    assert invoke("list", "tools", "--build", mini_build).exit_code == 2


def test_unknown_instrument_and_missing_inputs(mini_build):
    result = invoke("score", "curb66", "--build", mini_build, "--inputs", "{}")
    assert result.exit_code == 2 and "unknown instrument 'curb66' (did you mean 'curb65'?)" in result.output
    result = invoke("score", "curb65", "--build", mini_build)
    assert result.exit_code == 2 and "give the inputs with --inputs JSON" in result.output
