"""Dataset-backed families: items from JSONL and CSV through a field mapping, the dataset's own split kept
(an evaluation item never reaches train), fingerprints, the manifest's dataset entries, located errors, and
the qa fixture graded through env.step."""
import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from medgym.compiler import materialize
from medgym.compiler.load import content_hash
from medgym.compiler.pipeline import check_specs, compile_specs
from medgym.runtime import make_env
from medgym.runtime.agents.oracle import hermes

QA = Path(__file__).parent / "fixtures" / "qa"
BANK = "domains/quiz/tasks/bank.yaml"
MMLU = "domains/quiz/tasks/mmlu_style.yaml"
JSONL = "domains/quiz/data/questions.jsonl"
CSV = "domains/quiz/data/questions.csv"


def copy(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(QA, root)
    return root


def replace(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text()
    assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1))


def errors_of(root: Path) -> list[str]:
    return [str(e).replace(str(root) + "/", "") for e in check_specs(root)]


def tasks(build: Path, split: str) -> list[dict]:
    text = (build / "quiz" / "tasks" / f"{split}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def jsonl_rows() -> list[dict]:
    return [json.loads(line) for line in (QA / JSONL).read_text().splitlines()]


def csv_rows() -> list[dict]:
    return list(csv.DictReader((QA / CSV).read_text().splitlines()))


# ---------------------------------------------------------------- splits, fingerprints, the manifest
def test_every_item_is_a_task_in_its_own_split(qa_build):
    by_split = {split: {t["vars"]["item"]["question"] for t in tasks(qa_build, split)} for split in ("train", "val", "test")}
    for row in jsonl_rows():
        want = {"dev": "train"}.get(row["meta"]["split"], row["meta"]["split"])
        assert [s for s, questions in by_split.items() if row["q"] in questions] == [want]
    for row in csv_rows():
        assert [s for s, questions in by_split.items() if row["question"] in questions] == [row["split"]]


def test_a_test_item_never_lands_in_train_even_if_the_hash_split_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(materialize, "split_of", lambda family, seed, index: "train")
    out = tmp_path / "build"
    compile_specs(QA, out)
    test_questions = {r["q"] for r in jsonl_rows() if r["meta"]["split"] == "test"}
    test_questions |= {r["question"] for r in csv_rows() if r["split"] == "test"}
    assert {t["vars"]["item"]["question"] for t in tasks(out, "test")} == test_questions
    assert not test_questions & {t["vars"]["item"]["question"] for t in tasks(out, "train")}


def test_a_question_in_train_and_test_is_refused_at_its_row(tmp_path):
    root = copy(tmp_path)
    leaked = next(r for r in jsonl_rows() if r["meta"]["split"] == "test")
    again = {**leaked, "expl": "a different explanation", "meta": {"split": "dev"}}
    with (root / JSONL).open("a") as f:
        f.write(json.dumps(again) + "\n")
    shown = errors_of(root)
    row = len(jsonl_rows()) + 1
    assert any(s.startswith(f"{JSONL}:{row}:1: row {row} (train) is the same item as row") and "a test item would be "
               "in train" in s for s in shown), shown


def test_the_same_question_in_two_families_and_two_splits_is_refused(tmp_path):
    root = copy(tmp_path)
    leaked = next(r for r in jsonl_rows() if r["meta"]["split"] == "test")
    options = list(leaked["opts"].values())
    with (root / CSV).open("a", newline="") as f:
        csv.writer(f).writerow([leaked["q"].upper(), *options, leaked["ans"], "train"])  # case does not hide it
    shown = errors_of(root)
    assert any(s.startswith(f"{CSV}:8:1: the item of quiz/mmlu_style-v1/") and "an evaluation item would be in train"
               in s for s in shown), shown


def test_task_ids_are_fingerprints_and_survive_reordering(tmp_path, qa_build):
    first = {t["task_id"]: t["fingerprint"] for split in ("train", "test") for t in tasks(qa_build, split)}
    assert all(task_id.endswith(fingerprint[:16]) for task_id, fingerprint in first.items())
    root = copy(tmp_path)
    lines = (root / JSONL).read_text().splitlines()
    (root / JSONL).write_text("\n".join(reversed(lines)) + "\n")
    out = tmp_path / "build"
    compile_specs(root, out)
    again = {t["task_id"]: t["fingerprint"] for split in ("train", "test") for t in tasks(out, split)}
    assert again == first


def test_the_manifest_lists_each_dataset(qa_build):
    manifest = json.loads((qa_build / "manifest.json").read_text())
    datasets = manifest["domains"]["quiz"]["datasets"]
    assert set(datasets) == {"data/questions.jsonl", "data/questions.csv"}
    entry = datasets["data/questions.jsonl"]
    assert entry["licence"] == "CC0-1.0" and "medgym test suite" in entry["source"]
    assert entry["sha256"] == hashlib.sha256((QA / JSONL).read_bytes()).hexdigest()
    assert entry["splits"] == {"train": 8, "val": 0, "test": 4} and entry["items"] == 12
    assert datasets["data/questions.csv"]["families"] == ["mmlu_style"] and datasets["data/questions.csv"]["format"] == "csv"


def test_the_data_files_are_part_of_the_spec_hash(tmp_path):
    root = copy(tmp_path)
    before = content_hash(root)
    replace(root, CSV, "Which organ produces bile?", "Which organ makes bile?")
    assert content_hash(root) != before


# ---------------------------------------------------------------- located misuse
MISUSE = [
    ("missing_column", BANK, "answer: ans,", "answer: answer_idx,",
     f"{BANK}:9:48: column 'answer_idx' is not in data/questions.jsonl"),
    ("missing_column_in_a_list", MMLU, "options: [A, B, C, D, E]", "options: [A, B, C, D, F]",
     f"{MMLU}:9:54: column 'F' is not in data/questions.csv"),
    ("missing_file", BANK, "file: data/questions.jsonl", "file: data/question.jsonl",
     f"{BANK}:6:9: dataset file 'data/question.jsonl' not found"),
    ("unmapped_split", BANK, "split_map: {dev: train}", "split_map: {}",
     f"{JSONL}:1:1: row 1: split 'dev' is not train, val or test (map it under split_map: (e.g. {{dev: test}}))"),
    ("count_and_dataset", BANK, "version: 1\n", "version: 1\ncount: 12\n",
     f"{BANK}:3:1: a family with a `dataset:` has one task per item: leave out `count:`"),
    ("no_split", MMLU, ", split: split}", "}", f"{MMLU}:5:1: a dataset needs its split"),
    ("unknown_item_field", BANK, "answer: \"=item.answer\"", "answer: \"=item.anwser\"",
     f"{BANK}:16:13: unknown field 'item.anwser' (did you mean 'answer'?)"),
]


@pytest.mark.parametrize("name, file, old, new, expected", MISUSE, ids=[c[0] for c in MISUSE])
def test_dataset_misuse_is_located(tmp_path, name, file, old, new, expected):
    root = copy(tmp_path)
    replace(root, file, old, new)
    shown = errors_of(root)
    assert any(s.startswith(expected) for s in shown), shown


def test_a_bad_row_is_located_in_the_data_file(tmp_path):
    root = copy(tmp_path)
    lines = (root / JSONL).read_text().splitlines()
    lines[4] = lines[4][:-1]  # drop the closing brace
    (root / JSONL).write_text("\n".join(lines) + "\n")
    assert any(s.startswith(f"{JSONL}:5:") and "row 5: not valid JSON" in s for s in errors_of(root))
    root = copy(tmp_path / "csv")
    with (root / CSV).open("a") as f:
        f.write("A question with too few cells?,only,three\n")
    assert any(s.startswith(f"{CSV}:8:1: row 8: 3 cells, but the header has 8 columns") for s in errors_of(root))


def test_a_field_of_two_types_is_located_at_its_row(tmp_path):
    root = copy(tmp_path)
    rows = jsonl_rows()
    rows[2]["ans"] = 3
    (root / JSONL).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert any(s.startswith(f"{JSONL}:3:1: row 3: 'answer' is int, but earlier rows give text")
               for s in errors_of(root))


# ---------------------------------------------------------------- through env.step
def answer(env, task_id: str, letter: str) -> tuple[float, dict]:
    env.reset(options={"task_id": task_id})
    qid = env.episode.case["id"]
    _, _, _, _, info = env.step(hermes("get_question", {"question_id": qid}))
    assert info["tool_results"][0]["ok"]
    _, reward, terminated, _, info = env.step(hermes("submit_answer", {"question_id": qid, "answer": letter}))
    assert terminated
    return reward, info


def test_the_right_option_scores_and_a_wrong_one_does_not(qa_build):
    env = make_env(qa_build, "quiz")
    for task in env.domain.tasks("test"):
        right = task.truth["answer"]
        wrong = next(x for x in "ABCDE" if x != right)
        text = task.case["question"]["options"]["ABCDE".index(right)]
        best, info = answer(env, task.task_id, right)
        assert best > 0.95 and info["reward_components"]["accuracy"] == 1.0
        assert answer(env, task.task_id, f"{right}. {text}")[0] == best  # a letter with its option text
        assert answer(env, task.task_id, wrong)[0] == 0.0 < best


def test_a_base_family_can_hold_the_mapping_and_a_family_the_file(tmp_path):
    root = copy(tmp_path)
    (root / "domains/quiz/tasks/mmlu_base.yaml").write_text(
        "family: mmlu_base\nabstract: true\ndataset:\n  licence: CC0-1.0\n  source: \"Written for the medgym test suite\"\n"
        "  fields: {question: question, options: [A, B, C, D, E], answer: answer, split: split}\n")
    path = root / MMLU
    text = path.read_text()
    start, end = text.index("dataset:\n"), text.index("case:\n")
    path.write_text(text[:start] + "extends: mmlu_base\ndataset:\n  file: data/questions.csv\n" + text[end:])
    out = tmp_path / "build"
    manifest = compile_specs(root, out).manifest
    assert manifest["domains"]["quiz"]["datasets"]["data/questions.csv"]["licence"] == "CC0-1.0"
    assert len([t for t in tasks(out, "test") if t["family"] == "mmlu_style"]) == 2
