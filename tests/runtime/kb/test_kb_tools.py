"""The agent-facing tools: hostile model-written arguments give results or a clear message, never an exception."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medgym.runtime.kb import read_passage, search_knowledge
from medgym.runtime.kb.tools import MAX_K, MAX_PASSAGE_CHARS

W = "drugs:warfarin"
HOSTILE = {  # name: (query, a passage it must still find)
    "unbalanced quote": ('"septic shock lactate', "guide:sepsis-lactate"),
    "quote inside word": ('warf"arin sep"sis lactate', "guide:sepsis-lactate"),
    "stray operators": ("AND OR NOT warfarin - + || && !", W),
    "leading minus and plus": ("-warfarin +amiodarone", W),
    "field syntax": ("title:warfarin text:(amiodarone", W),
    "unknown field": ("nosuchfield:warfarin", W),
    "range syntax": ("[a TO z] {1 TO 5} warfarin", W),
    "wildcards and fuzzy": ("warf* ?arfarin warfarin~2 lactate^10", W),
    "regex": ("/war.*/ warfarin", W),
    "backslashes": ("\\ warfarin \\\\ \\:", W),
    "brackets": ("(((( warfarin ]]]", W),
    "sql": ("warfarin'; DROP TABLE passages; --", W),
    "html": ("<script>alert(1)</script> warfarin", W),
    "control characters": ("warfarin\x00\x07\x1b[31m", W),
    "unicode": ("ワルファリン warfarin naïve café ß", W),
    "emoji": ("💊 warfarin 🩸", W),
    "newlines and tabs": ("warfarin\n\n\tamiodarone\r\n", W),
    "json": ('{"query": "warfarin", "k": 5}', W),
    "hundred kilobytes of words": (" ".join(["warfarin amiodarone sepsis"] + [f"w{i}" for i in range(20_000)]), W),
    "hundred kilobytes of one word": ("warfarin " * 12_000, W),
}

REJECTED = {
    "empty": ("", "the query is empty"),
    "whitespace": (" \n\t ", "the query is empty"),
    "punctuation only": ("!!! ??? ... :: \"\" ''", "no searchable words"),
    "stop words only": ("the and of with", "no searchable words"),
    "hundred kilobytes of symbols": ("#" * 100_000, "no searchable words"),
    "not a string": (["warfarin"], "query must be text"),
    "none": (None, "query must be text"),
}


def is_json_ready(result: dict) -> bool:
    return json.loads(json.dumps(result)) == result


@pytest.mark.parametrize("query, expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_queries_return_results(small_kb, query, expected):
    result = search_knowledge(small_kb, query)
    assert "error" not in result and is_json_ready(result)
    assert expected in [r["id"] for r in result["results"]]


@pytest.mark.parametrize("query, message", REJECTED.values(), ids=REJECTED.keys())
def test_unsearchable_queries_return_a_message(small_kb, query, message):
    result = search_knowledge(small_kb, query)
    assert set(result) == {"error"} and message in result["error"] and is_json_ready(result)


def test_long_query_is_cut_with_a_note(small_kb):
    result = search_knowledge(small_kb, HOSTILE["hundred kilobytes of words"][0])
    assert len(result["query"].split()) == 32
    assert "only the first 32 distinct words were used; 19971 more were ignored" in result["note"]


def test_field_syntax_is_not_interpreted(small_kb):
    # "title:" must not restrict the search to titles: a body-only word still matches.
    result = search_knowledge(small_kb, "title:amiodarone")
    assert result["results"][0]["id"] == "drugs:warfarin"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=300))
def test_any_text_is_answered(small_kb, query):
    result = search_knowledge(small_kb, query)
    assert ("results" in result) != ("error" in result) and is_json_ready(result)


@pytest.mark.parametrize("k, expected", [(3, 3), ("3", 3), (3.0, 3), (1, 1)])
def test_k_accepts_whole_numbers(small_kb, k, expected):
    result = search_knowledge(small_kb, "renal dose monitoring", k=k)
    assert result["k"] == expected and len(result["results"]) == expected and "note" not in result


@pytest.mark.parametrize("k", [1000, pytest.param(10**5000, id="huge-int"), 1e300])
def test_k_above_the_maximum_is_lowered_with_a_note(small_kb, k):
    result = search_knowledge(small_kb, "renal dose monitoring", k=k)
    assert result["k"] == MAX_K and len(result["results"]) == MAX_K
    assert result["note"] == f"k was lowered to the maximum, {MAX_K}"


@pytest.mark.parametrize("k", [0, -1, 2.5, "abc", True, None, float("nan"), [5], float("inf"), "1e400", -float("inf"),
                               pytest.param(-(10**5000), id="huge-negative-int"), "9" * 5000])
def test_bad_k_returns_a_message(small_kb, k):
    result = search_knowledge(small_kb, "warfarin", k=k)
    assert set(result) == {"error"} and result["error"].startswith(f"k must be a whole number from 1 to {MAX_K}")


def test_source_filter_and_bad_sources(small_kb):
    only = search_knowledge(small_kb, "atrial fibrillation warfarin", source="drugs")
    assert {r["source"] for r in only["results"]} == {"drugs"} and only["source"] == "drugs"
    assert search_knowledge(small_kb, "warfarin", source="")["source"] is None
    unknown = search_knowledge(small_kb, "warfarin", source="pubmed")
    assert unknown == {"error": "unknown source 'pubmed'; choose one of: drugs, filler, guide, hpo (or leave it out)"}
    assert "source must be one of" in search_knowledge(small_kb, "warfarin", source=5)["error"]
    assert "unknown source '\\ud800'" in search_knowledge(small_kb, "warfarin", source="\ud800")["error"]


def test_no_match_says_what_to_try(small_kb):
    result = search_knowledge(small_kb, "zzyzx quokka")
    assert result["results"] == [] and "no passage matched" in result["note"]
    filtered = search_knowledge(small_kb, "metformin", source="hpo")
    assert filtered["results"] == [] and "or search all sources" in filtered["note"]


def test_every_search_result_can_be_read(small_kb):
    result = search_knowledge(small_kb, "sepsis lactate antibiotics warfarin", k=10)
    for hit in result["results"]:
        passage = read_passage(small_kb, hit["id"])
        assert passage["id"] == hit["id"] and passage["title"] == hit["title"] and is_json_ready(passage)


def test_read_passage_returns_text_and_provenance(small_kb):
    passage = read_passage(small_kb, "  drugs:warfarin ")
    assert passage["text"] == "Warfarin is a vitamin K antagonist; amiodarone raises the INR."
    assert (passage["source"], passage["license"], passage["url"]) == ("drugs", "CC0-1.0", "https://example.org/warfarin")


@pytest.mark.parametrize("passage_id, message", [
    ("drugs:nope", "no passage with id 'drugs:nope'; use an id exactly as search_knowledge returned it"),
    ("", "passage_id must be the id of a search result"),
    (None, "passage_id must be the id of a search result"),
    (42, "passage_id must be the id of a search result"),
    ("x" * 100_000, "passage_id is 100000 characters long"),
    ('drugs:warfarin" OR "1"="1', "no passage with id"),
    ("\ud800", "no passage with id '\\ud800'"),  # a lone surrogate is a bad id, not a damaged index
    ("drugs:warfarin\udfff", "no passage with id 'drugs:warfarin\\udfff'"),
])
def test_read_passage_bad_ids(small_kb, passage_id, message):
    result = read_passage(small_kb, passage_id)
    assert set(result) == {"error"} and message in result["error"]


# Any character at all, lone surrogates included (text decoded from JSON "\\ud800" escapes holds them).
ANY_TEXT = st.text(st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Co", "L", "M", "N", "P", "S", "Z"]),
                   max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANY_TEXT)
def test_any_text_with_surrogates_is_answered(small_kb, text):
    for result in (search_knowledge(small_kb, text), search_knowledge(small_kb, "warfarin", source=text),
                   read_passage(small_kb, text)):
        assert ("error" in result) != ("results" in result or "text" in result)
        json.dumps(result, ensure_ascii=False).encode("utf-8")  # nothing the model sees is invalid text


def test_long_passages_are_cut_with_a_note(tmp_path, engine):
    from medgym.runtime.kb import KnowledgeBase, Passage

    long_text = "chapter " * 5000
    with KnowledgeBase.build([Passage("book:1", "Book", long_text, "book")], tmp_path, engine=engine, threads=1) as kb:
        result = read_passage(kb, "book:1")
    assert len(result["text"]) == MAX_PASSAGE_CHARS
    assert result["note"] == f"the text was cut to its first {MAX_PASSAGE_CHARS} characters of {len(long_text)}"
