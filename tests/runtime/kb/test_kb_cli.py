"""`medgym kb build | search | stats` through typer's CliRunner: results on stdout, one-line errors, exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.runtime.kb.store import locate_build

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def kb(*args: str):
    return runner.invoke(app, ["kb", *args])


def assert_one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert message.startswith("error: ") and text in message, message


@pytest.fixture
def user_kb(tmp_path) -> Path:
    kb_dir = tmp_path / "kb"
    result = kb("build", str(DATA / "medrag_textbooks.jsonl"), f"mine={DATA / 'passages.jsonl'}",
                "--dir", str(kb_dir), "--json")
    assert result.exit_code == 0, result.output
    return kb_dir


def test_build_user_corpora_prints_stats_json(user_kb):
    stats = json.loads(kb("stats", "--dir", str(user_kb), "--json").stdout)
    assert {n: s["passages"] for n, s in stats["sources"].items()} == {"medrag_textbooks": 3, "mine": 3, "nursing": 1}
    assert stats["rebuild_command"] == (f"medgym kb build {DATA / 'medrag_textbooks.jsonl'} "
                                        f"mine={DATA / 'passages.jsonl'} --dir {user_kb}")


def test_search_json_and_table(user_kb):
    result = kb("search", "warfarin amiodarone INR sepsis", "-k", "2", "--dir", str(user_kb), "--json")
    assert result.exit_code == 0
    found = json.loads(result.stdout)
    assert found["results"][0]["id"] == "medrag_textbooks:InternalMed_Harrison_1" and len(found["results"]) == 2
    human = kb("search", "warfarin amiodarone INR", "--dir", str(user_kb))
    assert human.exit_code == 0 and human.stdout == "" and "InternalMed_Harrison_1" in human.stderr


def test_search_filters_by_source(user_kb):
    result = kb("search", "patients", "--source", "nursing", "--dir", str(user_kb), "--json")
    assert [r["id"] for r in json.loads(result.stdout)["results"]] == ["nursing:p4"]


def test_stats_table(user_kb):
    result = kb("stats", "--dir", str(user_kb))
    assert result.exit_code == 0 and "7 passages" in result.stderr and "medrag_textbooks" in result.stderr


@pytest.mark.parametrize("args, text", [
    (["search", ""], "the query is empty"),
    (["search", "!!!"], "no searchable words"),
    (["search", "warfarin", "-k", "0"], "k must be a whole number from 1 to 20"),
    (["search", "warfarin", "--source", "pubmed"], "unknown source 'pubmed'; choose one of: medrag_textbooks, mine, nursing"),
])
def test_search_input_errors(user_kb, args, text):
    assert_one_line_error(kb(*args, "--dir", str(user_kb)), 2, text)


def test_missing_and_corrupt_knowledge_base(tmp_path, user_kb):
    assert_one_line_error(kb("stats", "--dir", str(tmp_path / "none")), 2,
                          f"no knowledge base at {tmp_path / 'none'}; build one with `medgym kb build --dir")
    (locate_build(user_kb) / "meta.json").write_text("{")
    assert_one_line_error(kb("search", "warfarin", "--dir", str(user_kb)), 2,
                          f"rebuild with `medgym kb build {DATA / 'medrag_textbooks.jsonl'}")


@pytest.mark.parametrize("args, text", [
    (["build", "/no/such/corpus.jsonl"], "/no/such/corpus.jsonl: no such file or folder"),
    (["build", "--engine", "lucene"], "unknown engine 'lucene'; choose one of: tantivy, whoosh"),
    (["build", str(DATA / "passages.jsonl"), "--only", "hpo"], "--only picks starter sources"),
    (["build", "--only", "nope"], "unknown starter source(s) nope"),
    (["build", f"a={DATA / 'passages.jsonl'}", f"a={DATA / 'medrag_textbooks.jsonl'}"], "label them with NAME=PATH"),
    (["build", f"Bad={DATA / 'passages.jsonl'}"], "source name 'Bad' must be lower-case"),
])
def test_build_input_errors(tmp_path, args, text):
    assert_one_line_error(kb(*args, "--dir", str(tmp_path / "kb")), 2, text)
    assert not (tmp_path / "kb" / "current").exists()


def test_corpus_error_during_build_keeps_the_previous_index(tmp_path, user_kb):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "ok"}\n{oops\n')
    assert_one_line_error(kb("build", str(bad), "--dir", str(user_kb)), 2, f"{bad}:2: not JSON")
    assert json.loads(kb("stats", "--dir", str(user_kb), "--json").stdout)["passages"] == 7


def test_whoosh_engine_from_the_cli(tmp_path):
    kb_dir = tmp_path / "kb"
    result = kb("build", str(DATA / "guide"), "--engine", "whoosh", "--dir", str(kb_dir), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["engine"] == "whoosh"
    found = json.loads(kb("search", "lactate", "--dir", str(kb_dir), "--json").stdout)
    assert found["results"][0]["id"] == "guide:sepsis.md#2"


def test_fresh_install_builds_the_starter_corpus_and_finds_sepsis_lactate():
    # The acceptance check: `medgym kb build` then `medgym kb search "sepsis lactate"`, default folder.
    pytest.importorskip("simple_icd_10_cm")
    built = kb("build")
    assert built.exit_code == 0, built.output
    found = json.loads(kb("search", "sepsis lactate", "--json").stdout)
    assert any("lactate" in r["snippet"].lower() and "sepsis" in r["snippet"].lower() for r in found["results"])
    stats = json.loads(kb("stats", "--json").stdout)
    assert stats["passages"] > 1000 and stats["rebuild_command"] == "medgym kb build"
