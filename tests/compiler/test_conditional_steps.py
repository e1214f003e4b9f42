"""`when:` on reference steps and process requirements: one family branches by scenario."""
import json
import shutil
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs, compile_specs
from medgym.gate import compile_gate

MINI = Path(__file__).parent / "fixtures" / "mini"
CAP = Path("domains") / "clinic" / "tasks" / "cap.yaml"
ASK = ('  - ask_patient: {patient_id: "=case.id", question: "Have you been confused?"}\n'
       "    when: scenario == 'severe'\n")


def variant(tmp_path: Path, step: str, requirement: str = "") -> Path:
    root = tmp_path / "specs"
    shutil.copytree(MINI, root)
    path = root / CAP
    text = path.read_text()
    text = text.replace("  - submit_answer: {curb65:", step + "  - submit_answer: {curb65:", 1)
    if requirement:
        text = text.replace("    require: [get_vital_signs, ", "    require: [get_vital_signs, " + requirement + ", ", 1)
    path.write_text(text)
    return root


def test_conditional_step_and_requirement_follow_the_scenario(tmp_path):
    requirement = "{tool: ask_patient, args: {topic: confusion}, when: \"scenario == 'severe'\"}"
    out = tmp_path / "build"
    compile_specs(variant(tmp_path, ASK, requirement), out, gate=compile_gate)
    tasks = [json.loads(line) for split in ("train", "val", "test")
             for line in (out / "clinic" / "tasks" / f"{split}.jsonl").read_text().splitlines()
             if json.loads(line)["family"] == "cap_disposition"]
    by_scenario = {}
    for task in tasks:
        asked = any(step["name"] == "ask_patient" for step in task["reference"])
        required = any(r["tool"] == "ask_patient" for r in task["rubric"]["process"]["require"])
        by_scenario.setdefault(task["scenario"], set()).add((asked, required))
    assert by_scenario == {"severe": {(True, True)}, "mild": {(False, False)}}


@pytest.mark.parametrize("step, expected", [
    ("  - ask_patient: {patient_id: \"=case.id\", question: \"Confused?\"}\n    when: case.age + 1\n",
     "`when:` must be true or false"),
    ("  - ask_patient: {patient_id: \"=case.id\", question: \"Confused?\"}\n    when: scenario == 'sevre'\n",
     "'sevre' is not one of enum(mild, severe) (did you mean 'severe'?)"),
    ("  - ask_patient: {patient_id: \"=case.id\", question: \"Confused?\"}\n    when: case.agee > 60\n",
     "agee"),
])
def test_bad_conditions_are_located_errors(tmp_path, step, expected):
    errors = [str(e) for e in check_specs(variant(tmp_path, step))]
    assert any(f"{CAP}:35:" in e and expected in e for e in errors), errors


def test_one_sided_reference_and_critical_limits(tmp_path):
    root = tmp_path / "specs"
    shutil.copytree(MINI, root)
    record = root / "domains" / "clinic" / "record.yaml"
    text = record.read_text()
    assert "bun: {type: number mg/dL" in text
    record.write_text(text.replace("bun: {type: number mg/dL", "bun: {type: number mg/dL, critical: [null, 100]", 1))
    out = tmp_path / "build"
    compile_specs(root, out, gate=None)
    fields = json.loads((out / "clinic" / "domain.json").read_text())["fields"]
    assert fields["labs.bun"]["critical"] == [None, 100]
    record.write_text(text.replace("bun: {type: number mg/dL", "bun: {type: number mg/dL, critical: [null, null]", 1))
    assert any("'critical' needs a number field" in str(e) for e in check_specs(root))
