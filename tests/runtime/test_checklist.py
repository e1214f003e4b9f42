"""The checklist grader for free text: synonyms, NegEx-style negation, sections, unsupported and denied
findings, determinism, monotonicity; and the report fixture domain graded through env.step."""
import json
import random

import pytest

from medgym.runtime import make_env
from medgym.runtime.checklist import Checklist, Finding, clauses, grade, mentions, split_sections
from medgym.runtime.agents.oracle import hermes



def chest(pneumothorax=False, effusion=False, sections=("findings", "impression"), **costs) -> Checklist:
    return Checklist((
        Finding("pneumothorax", ("pneumothorax", "collapsed lung"), pneumothorax, "findings", 2.0),
        Finding("pleural_effusion", ("pleural effusion", "effusion"), effusion, "findings"),
        Finding("cardiomegaly", ("cardiomegaly",), False, None, 1.0, "ignore"),
    ), sections, **costs)


def negated(text: str, phrase: str = "pneumothorax") -> list[bool]:
    return mentions(text, {"x": (phrase,)})["x"]


@pytest.mark.parametrize("text", [
    "No pneumothorax.", "Pneumothorax is absent.", "Without evidence of pneumothorax.", "No evidence of pneumothorax.",
    "Negative for pneumothorax.", "Pneumothorax was ruled out.", "Pneumothorax is not seen.", "free of pneumothorax",
])
def test_negated_mentions(text):
    assert negated(text) == [True]


@pytest.mark.parametrize("text", [
    "Right pneumothorax.", "Large pneumothorax, no effusion.", "No effusion. Small pneumothorax.",
    "No effusion, but a small pneumothorax.", "No effusion; pneumothorax at the apex.",
    "No change in the right pneumothorax.", "Pneumothorax; effusion is absent.",
])
def test_asserted_mentions(text):
    assert negated(text) == [False]


def test_a_clause_break_ends_the_negation_scope():
    assert clauses("No effusion, but a pneumothorax. However heart normal") == [
        ("no", "effusion"), ("a", "pneumothorax"), ("heart", "normal")]


def test_synonyms_count_and_the_longest_phrase_wins():
    found = mentions("Collapsed lung on the right. Pericardial effusion.",
                     {"pneumothorax": ("pneumothorax", "collapsed lung"), "pleural": ("effusion",),
                      "pericardial": ("pericardial effusion",)})
    assert found == {"pneumothorax": [False], "pleural": [], "pericardial": [False]}


def test_sections_are_read_from_headings_on_lines_or_after_sentences():
    parts = split_sections("Clinical note.\nFINDINGS:\nNo pneumothorax. Impression: Normal film.", ("findings", "impression"))
    assert "No pneumothorax" in parts["findings"] and "Normal film" in parts["impression"]
    assert "Clinical note" in parts[None] and "Normal" not in parts["findings"]


def test_a_full_report_scores_one_and_misses_cost():
    checklist = chest(pneumothorax=True)
    full = "Findings: Right pneumothorax. No pleural effusion.\nImpression: Pneumothorax."
    assert grade(checklist, full).score == 1.0
    missed = grade(checklist, "Findings: No pleural effusion.\nImpression: Stable.")
    assert missed.score == pytest.approx(1 / 3, abs=1e-6) and missed.status["pneumothorax"] == "silent"
    denied = grade(checklist, "Findings: No pneumothorax. No pleural effusion.\nImpression: Normal.")
    assert denied.denied == ["pneumothorax"] and denied.score == pytest.approx(1 / 3 - 0.25, abs=1e-6)


def test_an_unsupported_finding_is_penalised():
    checklist = chest()
    honest = "Findings: No pneumothorax. No effusion.\nImpression: Normal."
    invented = honest + " Cardiomegaly."
    assert grade(checklist, honest).score == 1.0
    result = grade(checklist, invented)
    assert result.unsupported == ["cardiomegaly"] and result.score == 0.75


def test_a_finding_stated_in_the_wrong_section_does_not_count():
    result = grade(chest(pneumothorax=True), "Findings: No effusion.\nImpression: Right pneumothorax.")
    assert result.status["pneumothorax"] == "silent" and result.score == pytest.approx(1 / 3, abs=1e-6)


def test_missing_sections_cost():
    result = grade(chest(missing_section=0.1), "No pneumothorax. No effusion.")
    assert result.missing_sections == ["findings", "impression"] and result.score == 0.0  # nothing in its section
    result = grade(chest(sections=(), missing_section=0.1), "No pneumothorax. No effusion.")
    assert result.score == 1.0


def test_grading_is_deterministic():
    text = "Findings: No pneumothorax but effusion. Impression: abnormal."
    grades = {json.dumps(vars(grade(chest(effusion=True), text)), sort_keys=True) for _ in range(5)}
    assert len(grades) == 1


SENTENCES = {
    ("pneumothorax", True): ["Right pneumothorax.", "Small collapsed lung at the apex."],
    ("pneumothorax", False): ["No pneumothorax.", "Pneumothorax is absent.", "Without evidence of pneumothorax."],
    ("pleural_effusion", True): ["Small pleural effusion.", "Effusion at the left base."],
    ("pleural_effusion", False): ["No effusion.", "Pleural effusion is not seen."],
    ("cardiomegaly", True): ["Cardiomegaly."],
    ("cardiomegaly", False): ["No cardiomegaly."],
}


def random_report(rng: random.Random) -> dict[str, list[str]]:
    report: dict[str, list[str]] = {"findings": [], "impression": []}
    for (name, stated), options in SENTENCES.items():
        if rng.random() < 0.4:
            report[rng.choice(["findings", "impression"])].append(rng.choice(options))
    return report


def render(report: dict[str, list[str]]) -> str:
    return "\n".join(f"{name.title()}: {' '.join(lines)}" for name, lines in report.items())


def test_stating_a_true_finding_never_lowers_and_an_unsupported_one_never_raises():
    rng = random.Random(7)
    for _ in range(300):
        truth = {"pneumothorax": rng.random() < 0.5, "pleural_effusion": rng.random() < 0.5, "cardiomegaly": False}
        checklist = chest(pneumothorax=truth["pneumothorax"], effusion=truth["pleural_effusion"])
        report = random_report(rng)
        before = grade(checklist, render(report)).score
        name = rng.choice(list(truth))
        section = "findings"
        right = {**report, section: report[section] + [rng.choice(SENTENCES[(name, truth[name])])]}
        wrong = {**report, section: report[section] + [rng.choice(SENTENCES[(name, not truth[name])])]}
        assert grade(checklist, render(right)).score >= before, render(right)
        assert grade(checklist, render(wrong)).score <= before, render(wrong)


# ---------------------------------------------------------------- the report fixture through env.step
@pytest.fixture(scope="module")
def cxr(report_build):
    return make_env(report_build, "cxr")


def episode(env, task, report: str):
    env.reset(options={"task_id": task.task_id})
    patient = env.episode.case["id"]
    env.step(hermes("view_radiograph", {"patient_id": patient}))
    _, reward, terminated, _, info = env.step(hermes("submit_report", {"patient_id": patient, "report": report}))
    assert terminated
    return reward, info


def test_the_reference_report_scores_full_marks_through_env_step(cxr):
    for task in cxr.domain.tasks("test")[:4]:
        reward, info = episode(cxr, task, task.truth["report"])
        assert info["reward_components"]["accuracy"] == 1.0 and reward > 0.95


def test_each_task_carries_its_findings_truth(cxr):
    for task in cxr.domain.tasks("train")[:10]:
        items = {i.finding: i.present for i in task.rubric.accuracy["report"].checklist.items}
        assert items["pneumothorax"] == task.case["findings"]["pneumothorax"]
        assert items["rib_fx"] == task.case["findings"]["rib_fracture"]


def test_a_wrong_report_scores_lower_through_env_step(cxr):
    task = next(t for t in cxr.domain.tasks("train") if not t.case["findings"]["pneumothorax"])
    right, _ = episode(cxr, task, task.truth["report"])
    text = task.truth["report"].replace("No pneumothorax.", "Large tension pneumothorax.")
    wrong, info = episode(cxr, task, text)
    assert wrong < right and info["reward_components"]["accuracy"] < 1.0
    assert info["reward_details"]["checklist"]["report"]["unsupported"] == ["pneumothorax"]
    negated = task.truth["report"].replace("No pneumothorax.", "Pneumothorax is absent.")
    assert episode(cxr, task, negated)[0] == right  # the same negation, worded differently
