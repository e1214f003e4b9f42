"""The information-flow check: a reference solution may use only what an honest agent could have observed.

Each case edits a copy of the mini fixture (whose cap_disposition family passes case.confused to CURB-65) and
checks the exact located error, or that the edit that makes the value observable compiles.
"""
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import check_specs
from medgym.compiler.reads import Read, template_reads, text_reads
from shipped_domains import SHIPPED_DOMAINS

MINI = Path(__file__).parent / "fixtures" / "mini"
SPECS = Path(__file__).resolve().parents[2] / "specs"
CAP = "domains/clinic/tasks/cap.yaml"

# The ticket tells the agent about confusion; without this the value is hidden.
TICKET_SAYS_CONFUSED = "{{ ', and new confusion' if case.confused else '' }}"
MUDDLED = '      confusion: "My daughter says I have been muddled."\n'
MUDDLED_IF_CONFUSED = '      confusion: "{% if case.confused %}My daughter says I have been muddled.{% else %}No, my head is clear.{% endif %}"\n'
ASK_FIRST = ('  - calculate_curb65:',
             '  - ask_patient: {patient_id: "=case.id", question: "Have you been confused?"}\n  - calculate_curb65:')
FAMILY_ANSWER = ("ticket: |", 'history:\n  confusion: "{% if case.confused %}I have been muddled.{% else %}No, my head is clear.{% endif %}"\n'
                 "ticket: |")
NO_CONFUSION_HINT = "no tool and no history answer in scenario '{}' shows it: make a lookup return it, or write a history answer whose template reads it"


def edited(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(MINI, root)
    path = root / CAP
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"fixture text not found once: {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return root


def errors_of(root: Path) -> list[str]:
    return [str(e).replace(str(root) + "/", "") for e in check_specs(root)]


def line_of(root: Path, text: str) -> int:
    return next(i for i, line in enumerate((root / CAP).read_text().splitlines(), 1) if text in line)


def at(root: Path, line_text: str, value: str) -> str:
    """`path:line:col` of `value` on the line holding `line_text` (where an error should point)."""
    number = line_of(root, line_text)
    line = (root / CAP).read_text().splitlines()[number - 1]
    return f"{CAP}:{number}:{line.index(value) + 1}"


def test_the_fixture_passes():
    assert check_specs(MINI) == []


def test_an_unobservable_value_is_a_located_error(tmp_path):
    # The case: confusion decides CURB-65, but neither the ticket nor any step shows it.
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""))
    assert errors_of(root) == [
        f"{at(root, '- calculate_curb65:', 'case.confused')}: the reference passes case.confused to calculate_curb65 as "
        "'confusion', but no earlier reference "
        f"step reveals case.confused in scenario 'mild' (task 0) ({NO_CONFUSION_HINT.format('mild')})"]


def test_validate_prints_it_without_a_traceback(tmp_path):
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""))
    result = CliRunner().invoke(app, ["validate", str(root), "--no-gate"])
    assert result.exit_code == 1
    assert f"{CAP}:33:37: the reference passes case.confused to calculate_curb65" in result.output.replace(str(root) + "/", "")
    assert "Traceback" not in result.output


def test_asking_the_patient_first_makes_it_observable(tmp_path):
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""), (MUDDLED, ""), FAMILY_ANSWER, ASK_FIRST)
    assert errors_of(root) == []


def test_asking_after_the_calculator_is_too_late(tmp_path):
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""), (MUDDLED, ""), FAMILY_ANSWER,
                  ("  - submit_answer:", '  - ask_patient: {patient_id: "=case.id", question: "Have you been confused?"}\n'
                                         "  - submit_answer:"))
    (error,) = errors_of(root)
    assert error.startswith(f"{at(root, '- calculate_curb65:', 'case.confused')}: the reference passes case.confused to "
                            "calculate_curb65 as 'confusion', "
                            "but no earlier reference step reveals case.confused")
    assert error.endswith("(reveal it first: ask_patient about 'confusion')")


def test_a_scenario_without_an_answer_reveals_nothing(tmp_path):
    # Only the severe scenario answers about confusion: a mild patient says "Nothing I've noticed."
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""), (MUDDLED, MUDDLED_IF_CONFUSED), ASK_FIRST)
    (error,) = errors_of(root)
    assert "no earlier reference step reveals case.confused in scenario 'mild'" in error
    assert error.endswith(f"({NO_CONFUSION_HINT.format('mild')})")


def test_a_fixed_answer_reveals_nothing(tmp_path):
    # The severe answer is the same sentence whether or not the sampled patient is confused.
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""), FAMILY_ANSWER, ASK_FIRST)
    (error,) = errors_of(root)
    assert "no earlier reference step reveals case.confused in scenario 'severe'" in error
    assert error.endswith(f"({NO_CONFUSION_HINT.format('severe')})")


def test_when_conditions_are_checked(tmp_path):
    root = edited(tmp_path, (TICKET_SAYS_CONFUSED, ""), (MUDDLED, ""), FAMILY_ANSWER,
                  ("  - calculate_curb65:", '  - ask_patient: {patient_id: "=case.id", question: "Have you been confused?"}\n'
                                            "    when: case.confused\n  - calculate_curb65:"))
    messages = errors_of(root)
    assert any(m.startswith(f"{at(root, 'when: case.confused', 'case.confused')}: the reference decides whether to call "
                            "ask_patient on case.confused, but no earlier reference step reveals case.confused")
               for m in messages), messages


def test_a_sampled_let_is_latent_until_a_text_prints_it(tmp_path):
    reasoning = ('"=truth.disposition"}',
                 '"=truth.disposition", reasoning: "=if onset_days > 4 then \'cough for a week\' else \'a few days\'"}')
    root = edited(tmp_path, reasoning)
    (error,) = errors_of(root)
    assert error.startswith(f"{at(root, '- submit_answer:', 'onset_days >')}: the reference passes let 'onset_days' to "
                            "submit_answer as 'reasoning', but let 'onset_days' is sampled, and no earlier reference step "
                            "reveals it in scenario 'mild' (task 0)")
    assert error.endswith("(reveal it first: ask_patient about 'onset')")
    asked = edited(tmp_path / "asked", reasoning,
                   ("  - submit_answer:", '  - ask_patient: {patient_id: "=case.id", question: "When did the cough start?"}\n'
                                          "  - submit_answer:"))
    assert errors_of(asked) == []


def test_task_values_decide_and_or(tmp_path):
    # CRP matters only when the patient is hypotensive: only the severe scenario has tasks where it is needed.
    septic = [("  onset_days: {int: [2, 7]}", "  onset_days: {int: [2, 7]}\n  septic: \"=case.vitals.sbp < 90 and case.labs.crp > 50\""),
              ('"=truth.disposition"}', '"=truth.disposition", reasoning: "=if septic then \'septic\' else \'not septic\'"}')]
    root = edited(tmp_path, *septic)
    (error,) = errors_of(root)
    assert error.startswith(f"{at(root, '- submit_answer:', 'septic then')}: the reference passes let 'septic' (computed "
                            "from case.labs.crp) to submit_answer as 'reasoning', but no earlier reference step reveals "
                            "case.labs.crp in scenario 'severe'")
    assert error.endswith("(reveal it first: order_labs then get_lab_results)")
    ordered = edited(tmp_path / "ordered", *septic, ("tests: [bun]}", "tests: [bun, crp]}"))
    assert errors_of(ordered) == []


def test_required_arguments_are_checked(tmp_path):
    root = edited(tmp_path, ("{tool: order_labs, args: {tests: bun}}",
                             "{tool: order_labs, args: {tests: \"=if case.labs.crp > 10 then 'crp' else 'bun'\"}}"))
    (error,) = errors_of(root)
    assert error.startswith(f"{at(root, 'require:', 'case.labs.crp')}: the rubric requires order_labs with 'tests' = "
                            "case.labs.crp, but no earlier reference step reveals case.labs.crp")


def test_the_ticket_must_show_the_patient_id(tmp_path):
    root = edited(tmp_path, (" Patient id {{ case.id }}.", ""))
    (error,) = errors_of(root)
    assert error == (f"{at(root, '- get_vital_signs:', 'case.id')}: the reference passes case.id to get_vital_signs as "
                     "'patient_id', but the ticket does not show the patient id in scenario 'mild' (task 0) "
                     "(print {{ case.id }} in the ticket)")


def test_reads_keep_thresholds():
    fields = ("exam.amt", "labs.bun")
    amt = Read(("case", "exam.amt"), None, ("fact", ("case", "exam.amt"), 8.0, "le"))
    assert template_reads("{% if case.exam.amt <= 8 %}Muddled.{% else %}Clear.{% endif %}", fields) == (amt,)
    assert template_reads("{{ case.exam.amt }}", fields) == (Read(("case", "exam.amt"), None),)
    # `amt > 8` splits the values where `amt <= 8` does, and `8 >= amt` is `amt <= 8`.
    assert [r.fact for r in text_reads("case.exam.amt > 8", fields)] == [amt.fact]
    assert [r.fact for r in text_reads("8 >= case.exam.amt", fields)] == [amt.fact]
    assert [r.fact for r in text_reads("case.labs.bun + 1 > 20", fields)] == [None]


@pytest.mark.parametrize("domain", SHIPPED_DOMAINS)
def test_the_shipped_specs_pass(tmp_path, domain):
    root = tmp_path / "specs"
    shutil.copytree(SPECS, root, ignore=lambda folder, names: [n for n in names if folder.endswith("domains") and n != domain])
    assert check_specs(root) == []
