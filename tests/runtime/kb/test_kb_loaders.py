"""Each corpus reader on small files in the official formats: fields, provenance, streaming, and errors."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from medgym.runtime.kb import CorpusError, read_jsonl, read_markdown, read_obo, read_pubmed_xml, source_from_path
from medgym.runtime.kb.loaders import PUBMED_LICENSE, pack_paragraphs, split_markdown

DATA = Path(__file__).parent / "data"


# ---------------------------------------------------------------- JSONL, MedRAG and BEIR

def test_medrag_format_uses_content_not_contents():
    passages = list(read_jsonl(DATA / "medrag_textbooks.jsonl", "textbooks"))
    assert [p.id for p in passages] == ["textbooks:InternalMed_Harrison_0", "textbooks:InternalMed_Harrison_1",
                                        "textbooks:Pharmacology_Katzung_7"]
    first = passages[0]
    assert first.title == "InternalMed_Harrison"
    assert first.text.startswith("Sepsis is life-threatening")  # "contents" repeats the title; not used
    assert first.original_id == "InternalMed_Harrison_0" and first.source == "textbooks"


def test_plain_jsonl_keeps_provenance_and_skips_empty_lines():
    passages = {p.id: p for p in read_jsonl(DATA / "passages.jsonl", "mine", license="MIT")}
    assert set(passages) == {"mine:p1", "mine:p2", "mine:beir-9", "nursing:p4"}  # p3 is empty, blank line skipped
    p1 = passages["mine:p1"]
    assert (p1.license, p1.url, p1.keywords, p1.meta) == ("CC-BY-4.0", "https://example.org/af",
                                                          ("stroke prevention", "DOAC"), {"year": 2023})
    assert passages["mine:p2"].license == "MIT"  # the source's licence when the line has none
    assert passages["nursing:p4"].source == "nursing"  # a line may name its own source


def test_jsonl_gz_reads_like_jsonl(tmp_path):
    packed = tmp_path / "textbooks.jsonl.gz"
    with open(DATA / "medrag_textbooks.jsonl", "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert list(read_jsonl(packed, "textbooks")) == list(read_jsonl(DATA / "medrag_textbooks.jsonl", "textbooks"))


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "text": "x"', "2: not JSON"),
    ('["a list"]', "2: expected a JSON object, got list"),
    ('{"title": "no id", "text": "x"}', "2: the passage has no 'id'"),
    ('{"id": "a", "text": "x", "source": "Bad Name"}', "2: 'source' 'Bad Name' must be lower-case"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(CorpusError) as info:
        list(read_jsonl(path, "bad"))
    assert str(info.value).startswith(f"{path}:") and message in str(info.value)


def test_jsonl_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "title": "T", "text": "body"}\n')
    assert [p.id for p in read_jsonl(path, "bom")] == ["bom:1"]


def test_jsonl_is_streamed(tmp_path):
    # The reader must hand over the first passage before it reaches a broken line further down.
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": "1", "text": "first"}\n' + "{broken\n")
    stream = read_jsonl(path, "big")
    assert next(stream).id == "big:1"
    with pytest.raises(CorpusError):
        next(stream)


# ---------------------------------------------------------------- PubMed baseline XML

@pytest.fixture
def pubmed_gz(tmp_path):
    path = tmp_path / "pubmed25n0001.xml.gz"
    with open(DATA / "pubmed_sample.xml", "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def test_pubmed_fields(pubmed_gz):
    passages = {p.original_id: p for p in read_pubmed_xml(pubmed_gz)}
    # 30000004 has neither title nor abstract; the book article and the delete list are not articles.
    assert sorted(passages) == ["30000001", "30000002", "30000003"]
    first = passages["30000001"]
    assert first.id == "pubmed:30000001" and first.source == "pubmed"
    assert first.title == "Serum lactate as a predictor of mortality in septic shock."  # inline <i> kept as text
    assert first.text.splitlines() == [
        "BACKGROUND: Hyperlactatemia is common in sepsis.",
        "METHODS: We measured serum lactate at admission in 412 adults with septic shock.",
        "RESULTS: A lactate above 4 mmol/L predicted 28-day mortality (OR 2.1, 95% CI 1.4-3.2)."]
    assert first.keywords == ("Humans", "Lactic Acid", "Shock, Septic", "hyperlactatemia")
    assert first.meta == {"journal": "Critical care medicine", "year": 2018}
    assert first.url == "https://pubmed.ncbi.nlm.nih.gov/30000001/" and first.license == PUBMED_LICENSE


def test_pubmed_medline_date_and_title_only(pubmed_gz):
    passages = {p.original_id: p for p in read_pubmed_xml(pubmed_gz)}
    assert passages["30000002"].meta["year"] == 1998  # from <MedlineDate>1998 Dec-1999 Jan</MedlineDate>
    assert passages["30000003"].text == "" and passages["30000003"].title.startswith("Warfarin and amiodarone")


def test_pubmed_plain_xml_matches_gz(pubmed_gz):
    assert list(read_pubmed_xml(DATA / "pubmed_sample.xml")) == list(read_pubmed_xml(pubmed_gz))


def test_pubmed_rejects_other_xml_and_truncation(tmp_path):
    other = tmp_path / "other.xml"
    other.write_text("<?xml version='1.0'?><html><body/></html>")
    with pytest.raises(CorpusError, match="not a PubMed XML file"):
        list(read_pubmed_xml(other))
    cut = tmp_path / "cut.xml"
    cut.write_text((DATA / "pubmed_sample.xml").read_text()[:3000])
    with pytest.raises(CorpusError, match="malformed XML"):
        list(read_pubmed_xml(cut))


# ---------------------------------------------------------------- Markdown and text

def test_markdown_sections_titles_and_cleaning():
    passages = list(read_markdown(DATA / "guide" / "sepsis.md", "guide", root=DATA / "guide", license="CC0"))
    assert [p.title for p in passages] == ["Sepsis bundle", "Sepsis bundle › Lactate", "Sepsis bundle › Antibiotics"]
    lactate = passages[1].text
    assert "**" not in lactate and "](" not in lactate and "the guideline" in lactate  # emphasis and link cleaned
    assert "|------|" not in lactate and "| Lactate | arrival |" in lactate  # table kept, rule dropped
    assert "# not a heading" in passages[2].text  # code fences are not headings
    assert [p.id for p in passages] == ["guide:sepsis.md#1", "guide:sepsis.md#2", "guide:sepsis.md#3"]
    assert {p.license for p in passages} == {"CC0"} and passages[0].url == "sepsis.md"


def test_long_sections_split_with_overlap():
    words = [f"w{i}" for i in range(500)]
    text = "# Long\n\n" + " ".join(words[:150]) + "\n\n" + " ".join(words[150:])
    chunks = [c for _, c in split_markdown(text, max_words=200, overlap=40)]
    sizes = [len(c.split()) for c in chunks]
    assert max(sizes) <= 200
    joined = [c.split() for c in chunks]
    assert all(a[-40:] == b[:40] for a, b in zip(joined, joined[1:]))  # each chunk repeats the last 40 words
    seen = [w for chunk in joined for w in chunk]
    assert set(seen) == set(words)  # nothing lost


def test_pack_paragraphs_keeps_small_paragraphs_whole():
    chunks = pack_paragraphs(["one two", "three four", "five six"], max_words=4, overlap=1)
    assert chunks == ["one two\n\nthree four", "four\n\nfive six"]
    with pytest.raises(ValueError, match="overlap < max_words"):
        pack_paragraphs(["x"], max_words=5, overlap=5)


def test_folder_source_reads_md_and_txt():
    source = source_from_path(DATA / "guide")
    passages = list(source.passages())
    assert source.name == "guide"
    assert {p.original_id.split("#")[0] for p in passages} == {"sepsis.md", "sub/notes.txt"}
    notes = [p for p in passages if p.original_id.startswith("sub/")]
    assert notes[0].title == "notes" and "Wash hands" in notes[0].text


# ---------------------------------------------------------------- OBO

def test_obo_terms_with_definitions_synonyms_and_parents():
    passages = {p.original_id: p for p in read_obo(DATA / "mini.obo", "hpo", "HPO licence", "https://hpo.jax.org/browse/term/")}
    assert "HP:0000999" not in passages  # obsolete
    fever = passages["HP:0001945"]
    assert fever.id == "hpo:HP:0001945" and fever.title == "Fever"
    assert fever.text.splitlines() == [
        "Body temperature elevated above the normal range.",
        'Fever is distinguished from "hyperthermia" by cytokine involvement.',
        'Synonyms: Pyrexia; High "temperature".',
        "A kind of: Abnormality of temperature regulation."]
    assert fever.keywords == ("Pyrexia", 'High "temperature"')
    assert fever.url == "https://hpo.jax.org/browse/term/HP:0001945" and fever.license == "HPO licence"


# ---------------------------------------------------------------- choosing a reader

def test_source_from_path_names_and_errors(tmp_path, pubmed_gz):
    assert source_from_path(pubmed_gz).name == "pubmed"
    assert source_from_path(DATA / "medrag_textbooks.jsonl").name == "medrag_textbooks"
    assert source_from_path(DATA / "passages.jsonl", name="mine").name == "mine"
    with pytest.raises(ValueError, match="lower-case"):
        source_from_path(DATA / "passages.jsonl", name="Not Valid")
    with pytest.raises(CorpusError, match="no such file or folder"):
        source_from_path(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.docx").write_text("x")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        source_from_path(empty / "notes.docx")
    with pytest.raises(CorpusError, match="holds no corpus files"):
        source_from_path(empty)
