"""Misuse of episode phases: each broken phased spec fails with a located `file:line:col: message`."""
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs
from medgym.dsl.models import json_schemas
from spec_edits import edited_copy, position

PHASED = Path(__file__).parent / "fixtures" / "phased"
FAMILY = "domains/chest_pain/tasks/pathway.yaml"
DOMAIN = "domains/chest_pain/domain.yaml"

CASES = [
    # (id, file, text replaced, replacement, the text the error points at, the message)
    ("hands_forward_what_the_next_phase_does_not_receive", FAMILY, "    receives: [esi_level]\n", "",
     "esi_level]\n    weight: 0.3",
     "phase 'triage' hands 'esi_level' forward, but the next phase 'workup' does not declare it under receives:"),
    ("receives_what_was_not_handed_forward", FAMILY, "receives: [diagnosis]", "receives: [troponin]",
     "troponin]\n    weight: 0.3",
     "phase 'disposition' receives 'troponin', but phase 'workup' does not hand it forward"),
    ("hands_forward_a_field_its_submission_lacks", FAMILY, "hand_forward: [esi_level]", "hand_forward: [esi]",
     "esi]", "'esi' is not a field of submit_triage"),
    ("reference_uses_another_phases_tool", FAMILY, "      - get_social_history: {patient_id:",
     "      - get_ecg: {patient_id:", "get_ecg: {patient_id: \"=case.id\"}\n      - submit_answer",
     "reference step uses 'get_ecg', which phase 'disposition' does not offer"),
    ("last_phase_must_end_the_episode", FAMILY, "submit: submit_answer", "submit: submit_workup",
     "submit_workup\n    receives: [diagnosis]",
     "the last phase ends the episode: its submit must be the domain's submit tool 'submit_answer', not 'submit_workup'"),
    ("unknown_tool_in_a_phase", FAMILY, "tools: [get_social_history]", "tools: [get_social]",
     "get_social]", "unknown tool 'get_social'"),
    ("reads_a_field_no_phase_handed_forward", FAMILY, "phase.workup.diagnosis != stemi", "phase.workup.troponin > 14",
     "phase.workup.troponin > 14", "unknown field 'phase.workup.troponin'"),
    ("top_level_rubric_beside_phases", FAMILY, "phases:\n", "rubric: {accuracy: {disposition: exact}}\nphases:\n",
     "family: chest_pain_pathway", "a phased family writes its reference: and rubric: in each phase, not at the top"),
    ("several_submit_tools_and_none_named", DOMAIN, "submit: submit_answer\n", "", None,
     "a domain needs exactly one submit tool, found 3"),
]


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    return edited_copy(PHASED, tmp_path, file, old, new, once=True)


def test_the_phased_fixture_is_valid():
    assert check_specs(PHASED) == []


@pytest.mark.parametrize("name, file, old, new, anchor, message", CASES, ids=[c[0] for c in CASES])
def test_misuse_is_a_located_error(tmp_path, name, file, old, new, anchor, message):
    root = broken(tmp_path, file, old, new)
    errors = check_specs(root)
    found = [e for e in errors if message in e.message]
    assert found, [str(e) for e in errors]
    error = found[0]
    if anchor is None:
        assert error.pos.path.endswith("tools.yaml")
        return
    assert Path(error.pos.path) == root / file
    assert (error.pos.line, error.pos.col) == position(root / file, anchor), str(error)


def test_the_schema_describes_phases():
    family = json_schemas()["task_family"]
    assert "phases" in family["properties"] and "reference" not in family["required"]
    assert family["then"] == {"required": ["reference", "rubric"]}
    phase = family["$defs"]["Phase"]
    assert {"tools", "submit", "receives", "hand_forward", "weight", "reference", "rubric"} <= set(phase["properties"])
    assert "submit" in json_schemas()["domain"]["properties"]


def test_the_schema_accepts_the_phased_fixture_and_refuses_a_family_without_reference():
    import jsonschema
    import yaml

    schema = json_schemas()["task_family"]
    family = yaml.safe_load((PHASED / FAMILY).read_text())
    jsonschema.Draft202012Validator(schema).validate(family)
    unphased = {k: v for k, v in family.items() if k != "phases"}
    assert "'reference' is a required property" in [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(unphased)]
