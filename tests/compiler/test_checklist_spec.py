"""The checklist grader in a spec: each misuse fails with a located `file:line:col: message`."""
from pathlib import Path

import pytest

from medgym.compiler.checklist import plausible_phrase
from medgym.compiler.pipeline import check_specs
from spec_edits import edited_copy

REPORT = Path(__file__).parent / "fixtures" / "report"
FILM = "domains/cxr/tasks/chest_film.yaml"

CASES = [
    ("synonyms_required", "{finding: rib_fx, synonyms: [rib fracture, fracture of the right seventh rib, fractured rib],",
     "{finding: rib_fx,", f"{FILM}:41:21: finding 'rib_fx' needs `synonyms:`: its label is not a phrase a text would use"),
    ("unknown_section", "present: \"=acute\", section: impression}", "present: \"=acute\", section: impresion}",
     f"{FILM}:42:68: unknown section 'impresion' (did you mean 'impression'?)"),
    ("unknown_case_field", "present: \"=case.findings.pneumothorax\"", "present: \"=case.findings.pnuemothorax\"",
     f"{FILM}:37:74: unknown field 'case.findings.pnuemothorax' (did you mean 'pneumothorax'?)"),
    ("present_not_bool", "present: \"=acute\"", "present: \"=case.age\"",
     f"{FILM}:42:51: `present` of finding 'acute_abnormality' expects bool, but 'case.age' is int years"),
    ("phrase_for_two_findings", "synonyms: [effusion]", "synonyms: [effusion, collapsed lung]",
     f"{FILM}:38:60: phrase 'collapsed lung' states both 'pneumothorax' and 'pleural_effusion'"),
    ("section_undeclared", "      sections: [findings, impression]\n", "",
     f"{FILM}:36:112: unknown section 'findings' (declare the text's `sections:` first)"),
    ("checklist_keys_elsewhere", "      match: checklist\n", "      match: token_f1\n",
     f"{FILM}:32:7: 'sections' belongs to a checklist grader; this field is `match: token_f1`"),
]


def broken(tmp_path: Path, old: str, new: str) -> Path:
    return edited_copy(REPORT, tmp_path, FILM, old, new)


def test_the_report_fixture_is_valid():
    assert check_specs(REPORT) == []


@pytest.mark.parametrize("name, old, new, expected", CASES, ids=[c[0] for c in CASES])
def test_checklist_misuse_is_located(tmp_path, name, old, new, expected):
    root = broken(tmp_path, old, new)
    shown = [str(e).replace(str(root) + "/", "") for e in check_specs(root)]
    assert any(s.startswith(expected) for s in shown), shown


@pytest.mark.parametrize("label, plausible", [("pneumothorax", True), ("pleural_effusion", True), ("ptx", False),
                                              ("c7_fracture", False), ("l_effusion", False), ("rib_fx", False)])
def test_which_labels_need_synonyms(label, plausible):
    assert plausible_phrase(label) is plausible
