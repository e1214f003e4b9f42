"""Misuse of image slots: each broken spec fails with a located `file:line:col: message`."""
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs
from medgym.dsl.models import json_schemas
from spec_edits import edited_copy, position

IMAGING = Path(__file__).parent / "fixtures" / "imaging"
FAMILY = "domains/chest_xray/tasks/report.yaml"
RECORD = "domains/chest_xray/record.yaml"
TOOLS = "domains/chest_xray/tools.yaml"

CASES = [
    # (id, file, text replaced, replacement, the text the error points at, the message)
    ("image_file_does_not_exist", FAMILY, "images/cxr_3.png", "images/cxr_9.png", "images/cxr_9.png",
     "case.xray.image names 'images/cxr_9.png', which does not exist"),
    ("image_outside_the_domain_folder", FAMILY, "images/cxr_3.png", "../../medgym.yaml", "../../medgym.yaml",
     "case.xray.image names '../../medgym.yaml', which is not a path inside the domain folder"),
    ("findings_not_in_the_record", RECORD, "findings: xray.findings,", "findings: xray.finding,",
     "xray.finding,", "findings: 'xray.finding' is not a group of the record"),
    ("image_without_findings", RECORD, "findings: xray.findings, ", "", "image, description",
     "image field 'xray.image' needs findings: the record group of its structured findings"),
    ("findings_on_a_field_that_is_no_image", RECORD, "round: 0, range: [6, 60]", "round: 0, findings: xray, range: [6, 60]",
     "findings: xray, range", "only an image field has findings:"),
    ("the_image_reveals_nothing_to_the_flow_check", FAMILY, 'location: "=case.xray.findings.location"',
     "location: \"=if case.xray.image == 'images/cxr_1.png' then 'rul' else case.xray.findings.location\"",
     'truth.location", size_cm',
     "the reference passes truth.location (computed from case.xray.image) to submit_answer as 'location', but no "
     "earlier reference step reveals case.xray.image"),
    ("lookup_reads_the_image", TOOLS, "from: xray.findings", "from: xray", "xray\n",
     "lookup 'get_xray_findings' reads the image field 'xray.image', whose file name could give the finding away"),
]


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    return edited_copy(IMAGING, tmp_path, file, old, new, once=True)


def test_the_imaging_fixture_is_valid():
    assert check_specs(IMAGING) == []


@pytest.mark.parametrize("name, file, old, new, anchor, message", CASES, ids=[c[0] for c in CASES])
def test_misuse_is_a_located_error(tmp_path, name, file, old, new, anchor, message):
    root = broken(tmp_path, file, old, new)
    errors = check_specs(root)
    found = [e for e in errors if message in e.message]
    assert found, [str(e) for e in errors]
    assert Path(found[0].pos.path) == root / file
    assert (found[0].pos.line, found[0].pos.col) == position(root / file, anchor), str(found[0])


def test_the_schema_describes_image_fields():
    record = json_schemas()["record"]["$defs"]["RecordField"]
    assert "findings" in record["properties"] and "image" in record["properties"]["type"]["description"]
