"""Golden tests: each broken spec fails with its exact `file:line:col: message`, through the CLI without a traceback."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import check_specs
from spec_edits import edited_copy

MINI = Path(__file__).parent / "fixtures" / "mini"
CAP = "domains/clinic/tasks/cap.yaml"
TOOLS = "domains/clinic/tools.yaml"
RECORD = "domains/clinic/record.yaml"

CASES = [
    # (file, text replaced, replacement, expected first error relative to the spec root)
    ("typo_field", TOOLS, "  flags: true\n- name: ask_patient", "  flgs: true\n- name: ask_patient",
     f"{TOOLS}:6:3: unknown field 'flgs' (did you mean 'flags'?)"),
    ("unknown_tool_in_reference", CAP, "  - get_lab_results: {patient_id:", "  - get_lab_result: {patient_id:",
     f"{CAP}:32:5: unknown tool 'get_lab_result' in the reference solution (did you mean 'get_lab_results'?)"),
    ("unit_mismatch", RECORD, "bun: {type: number mg/dL", "bun: {type: number mmol/L",
     f"{CAP}:27:49: unit mismatch: 'case.labs.bun' is mmol/L (substance concentration) but input 'bun' of curb65 "
     "expects mg/dL (mass concentration) (clinical conversions across dimensions depend on the analyte: declare it on "
     "both sides (`number mmol/L of urea`, `number mg/dL of urea_nitrogen`) or convert explicitly)"),
    ("unknown_record_field", CAP, "vitals.rr: {normal: [31, 3]", "vitals.rrr: {normal: [31, 3]",
     f"{CAP}:16:7: unknown record field 'vitals.rrr' (did you mean 'vitals.rr'?)"),
    ("reference_args_fail_schema", CAP, "tests: [bun]}", "tests: [bun, lactate]}",
     f"{CAP}:31:5: reference step 2 (order_labs), task 0: tests.1: 'lactate' is not one of ['bun', 'crp']"),
    ("unknown_instrument", TOOLS, "instrument: curb65", "instrument: curb66",
     f"{TOOLS}:33:15: unknown instrument 'curb66' (did you mean 'curb65'?)"),
    ("no_case_input_not_static", TOOLS, "  key_param: severity\n  params: {severity: {type: \"enum(low, moderate, high)\"}}\n",
     "\n", f"{TOOLS}:34:9: tool 'lookup_antibiotics' has no parameters and reads no case data (mark it `static: true` "
     "if it really is a fixed reference)"),
    ("out_of_range_sample", CAP, "vitals.sbp: {normal: [86, 6], clip: [70, 99]}", "vitals.sbp: {normal: [40, 6], clip: [20, 99]}",
     f"{CAP}:17:28: task 8 (scenario severe): case.vitals.sbp = 38 is outside its physiological range 50..240 (clip the "
     "distribution or fix its parameters)"),
    ("bad_expression", CAP, "then 'home' elif", "then 'home' elsif",
     f"{CAP}:28:51: unexpected 'elsif'; expected"),
    ("duplicate_key", CAP, "count: 40\n", "count: 40\ncount: 41\n", f"{CAP}:6:1: duplicate key 'count' (first defined at line 5)"),
]


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    return edited_copy(MINI, tmp_path, file, old, new)


def test_the_fixture_itself_is_valid():
    assert check_specs(MINI) == []


@pytest.mark.parametrize("name, file, old, new, expected", CASES, ids=[c[0] for c in CASES])
def test_golden_error(tmp_path, name, file, old, new, expected):
    root = broken(tmp_path, file, old, new)
    errors = check_specs(root)
    assert errors, "the broken spec compiled"
    shown = [str(e).replace(str(root) + "/", "") for e in errors]
    assert any(s.startswith(expected) for s in shown), shown


@pytest.mark.parametrize("name, file, old, new, expected", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_cli_reports_without_traceback(tmp_path, name, file, old, new, expected):
    root = broken(tmp_path, file, old, new)
    result = CliRunner().invoke(app, ["validate", str(root), "--no-gate"])
    assert result.exit_code == 1
    output = result.output.replace(str(root) + "/", "")
    assert expected.split(" (")[0] in output
    assert "Traceback" not in output
