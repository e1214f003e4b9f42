"""Honest solvability of dataset items: the item fields `truth:` reads are the judgement the task asks for;
any other item field a reference uses must be shown by the ticket or revealed by a tool first."""
import shutil
from pathlib import Path

from medgym.compiler.pipeline import check_specs

QA = Path(__file__).parent / "fixtures" / "qa"
BANK = "domains/quiz/tasks/bank.yaml"
TOOLS = "domains/quiz/tools.yaml"
RECORD = "domains/quiz/record.yaml"
SUBMIT = '''    answer: {type: text, max_length: 200, description: "the option's letter, e.g. C"}
'''
REASONING = SUBMIT + '''    reasoning: {type: text, max_length: 400, default: "", description: why that option}
'''
PASSES = '''  - submit_answer: {question_id: "=case.id", answer: "=truth.answer"}
'''
PASSES_EXPLANATION = '''  - submit_answer: {question_id: "=case.id", answer: "=truth.answer", reasoning: "=item.explanation"}
'''


def specs(tmp_path: Path, edits: list[tuple[str, str, str]]) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(QA, root)
    for file, old, new in edits:
        path = root / file
        text = path.read_text()
        assert old in text, f"fixture text not found: {old!r}"
        path.write_text(text.replace(old, new, 1))
    return root


def errors_of(root: Path) -> list[str]:
    return [str(e).replace(str(root) + "/", "") for e in check_specs(root)]


def test_the_qa_fixture_shows_or_judges_every_item_field_it_uses():
    """item.question and item.options reach the agent through get_question (and the ticket); item.answer is
    what truth reads: the fixture passes the strict check as it is."""
    assert check_specs(QA) == []


def test_an_item_field_no_step_shows_is_a_located_flow_error(tmp_path):
    root = specs(tmp_path, [(TOOLS, SUBMIT, REASONING), (BANK, PASSES, PASSES_EXPLANATION)])
    errors = errors_of(root)
    assert len(errors) == 1, errors
    line = next(i for i, text in enumerate((root / BANK).read_text().splitlines(), 1) if "item.explanation" in text)
    column = (root / BANK).read_text().splitlines()[line - 1].index("item.explanation") + 1
    assert errors[0].startswith(f"{BANK}:{line}:{column}: the reference passes item.explanation to submit_answer as "
                                f"'reasoning', but no earlier reference step reveals item.explanation")
    assert "read it in `truth:` if it is the judgement" in errors[0]


def test_a_tool_that_shows_the_item_field_makes_it_known(tmp_path):
    shown = [(TOOLS, SUBMIT, REASONING), (BANK, PASSES, PASSES_EXPLANATION),
             (RECORD, "      options: {type: \"list[text]\"}\n",
              "      options: {type: \"list[text]\"}\n      explanation: {type: text, normal: \"No explanation.\"}\n"),
             (BANK, '  question.options: "=item.options"\n',
              '  question.options: "=item.options"\n  question.explanation: "=item.explanation"\n')]
    assert errors_of(specs(tmp_path, shown)) == []


def test_the_ticket_shows_an_item_field(tmp_path):
    ticket = [(TOOLS, SUBMIT, REASONING), (BANK, PASSES, PASSES_EXPLANATION),
              (BANK, "Read it, then submit", "Hint: {{ item.explanation }} Read it, then submit")]
    assert errors_of(specs(tmp_path, ticket)) == []


def test_an_item_field_truth_reads_is_the_judgement(tmp_path):
    """Read by truth (here through a let), the explanation is declared like the answer."""
    judged = [(TOOLS, SUBMIT, REASONING), (BANK, PASSES, PASSES_EXPLANATION.replace("item.explanation", "truth.why")),
              (BANK, '  answer: "=item.answer"\n', '  answer: "=item.answer"\n  why: "=because"\n'),
              (BANK, "truth:\n", "let:\n  because: \"=item.explanation\"\ntruth:\n")]
    assert errors_of(specs(tmp_path, judged)) == []


def test_an_item_field_copied_into_an_unshown_case_field_is_not_known(tmp_path):
    """Copied into a case field no tool returns, the field stays unseen: the reference cannot pass it on."""
    hidden = [(TOOLS, SUBMIT, REASONING), (BANK, PASSES, PASSES_EXPLANATION.replace("item.explanation", "case.notes")),
              (RECORD, "fields:\n  question:\n", "fields:\n  notes: {type: text, normal: \"No notes.\"}\n  question:\n"),
              (BANK, '  question.options: "=item.options"\n', '  question.options: "=item.options"\n  notes: "=item.explanation"\n')]
    errors = errors_of(specs(tmp_path, hidden))
    assert errors and "the reference passes case.notes (computed from item.explanation)" in errors[0], errors


def test_an_item_field_truth_reads_through_a_copying_case_field_is_the_judgement(tmp_path):
    """truth.answer = case.key, a copy of item.answer no tool shows: still the judgement the task asks for."""
    copied = [(RECORD, "fields:\n  question:\n", "fields:\n  key: {type: text, normal: \"A\"}\n  question:\n"),
              (BANK, '  question.options: "=item.options"\n', '  question.options: "=item.options"\n  key: "=item.answer"\n'),
              (BANK, '  answer: "=item.answer"\n', '  answer: "=case.key"\n')]
    assert errors_of(specs(tmp_path, copied)) == []
