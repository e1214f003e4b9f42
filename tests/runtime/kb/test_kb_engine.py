"""KnowledgeBase on both engines: ranking, filters, boosts, snippets, get, stats and concurrent searching."""
from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from medgym.runtime.kb import CorpusError, KnowledgeBase, Passage, PassageNotFound
from medgym.runtime.kb.query import make_snippet, query_terms


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_bm25_ranks_the_passage_about_the_query_first(small_kb):
    assert ids(small_kb.search("serum lactate sepsis"))[0] == "guide:sepsis-lactate"
    assert ids(small_kb.search("factor Xa inhibitor"))[0] == "drugs:apixaban"


def test_english_analysis_stems_and_lowercases(small_kb):
    # "Anticoagulants" and "FIBRILLATIONS" only match "anticoagulation"/"fibrillation" after stemming.
    assert "guide:af-anticoag" in ids(small_kb.search("FIBRILLATIONS anticoagulated", k=3))


def test_any_word_may_match(small_kb):
    hits = ids(small_kb.search("metformin pyrexia", k=5))
    assert {"drugs:metformin", "hpo:fever"} <= set(hits)


def test_source_filter_keeps_order_within_source(small_kb):
    everything = [h for h in small_kb.search("atrial fibrillation warfarin apixaban", k=10)]
    drugs_only = small_kb.search("atrial fibrillation warfarin apixaban", k=10, source="drugs")
    assert {h.source for h in drugs_only} == {"drugs"}
    assert ids(drugs_only) == [h.id for h in everything if h.source == "drugs"]
    assert small_kb.search("warfarin", source="no-such-source") == []


def test_title_matches_outrank_body_matches(tmp_path, engine):
    passages = [Passage("t:title", "Hyponatraemia", "Low sodium in plasma.", "t"),
                Passage("t:body", "Electrolytes", "Hyponatraemia means low sodium in plasma.", "t")]
    passages += [Passage(f"t:{i}", f"Other {i}", "unrelated text about renal dosing", "t") for i in range(10)]
    with KnowledgeBase.build(passages, tmp_path, engine=engine, threads=1) as kb:
        assert ids(kb.search("hyponatraemia"))[:2] == ["t:title", "t:body"]


def test_hits_carry_id_title_snippet_score_source(small_kb):
    hit = small_kb.search("peaked T waves", k=1)[0]
    assert hit.id == "hpo:hyperkalemia" and hit.title == "Hyperkalemia" and hit.source == "hpo"
    assert "Peaked T waves" in hit.snippet and hit.score > 0
    assert hit.to_dict() == {"id": hit.id, "title": hit.title, "snippet": hit.snippet,
                             "score": round(hit.score, 4), "source": "hpo"}


def test_scores_decrease_and_k_is_respected(small_kb):
    hits = small_kb.search("renal hepatic dose monitoring", k=7)
    assert len(hits) == 7
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert small_kb.search("renal", k=0) == []


def test_get_returns_the_whole_passage_with_provenance(small_kb):
    passage = small_kb.get("drugs:warfarin")
    assert passage.text == "Warfarin is a vitamin K antagonist; amiodarone raises the INR."
    assert (passage.source, passage.license, passage.url, passage.original_id) == (
        "drugs", "CC0-1.0", "https://example.org/warfarin", "warfarin")
    with pytest.raises(PassageNotFound, match="no passage with id 'drugs:nope'"):
        small_kb.get("drugs:nope")
    with pytest.raises(KeyError):  # PassageNotFound is a KeyError too
        small_kb.get("")


def test_stats_report_counts_hashes_engine_and_sources(small_kb, engine):
    stats = small_kb.stats()
    assert stats["passages"] == 48 and stats["engine"] == engine and stats["engine_version"]
    assert {name: s["passages"] for name, s in stats["sources"].items()} == {
        "drugs": 3, "filler": 40, "guide": 3, "hpo": 2}
    assert len(stats["corpus_sha256"]) == 64 and all(len(s["sha256"]) == 64 for s in stats["sources"].values())
    assert stats["index_bytes"] > 0 and stats["rebuild_command"].startswith("medgym kb build")


def test_same_corpus_gives_same_hashes(tmp_path, corpus):
    a = KnowledgeBase.build(corpus, tmp_path / "a", threads=1).stats()
    b = KnowledgeBase.build(corpus, tmp_path / "b", threads=1).stats()
    changed = corpus[:-1] + [Passage("filler:39", "Filler 39", "changed", "filler")]
    c = KnowledgeBase.build(changed, tmp_path / "c", threads=1).stats()
    assert a["corpus_sha256"] == b["corpus_sha256"] != c["corpus_sha256"]
    assert a["sources"]["drugs"]["sha256"] == c["sources"]["drugs"]["sha256"]
    assert a["sources"]["filler"]["sha256"] != c["sources"]["filler"]["sha256"]


def test_engines_agree_on_the_top_hit(tmp_path, corpus):
    kbs = [KnowledgeBase.build(corpus, tmp_path / e, engine=e, threads=1) for e in ("tantivy", "whoosh")]
    for query in ("serum lactate sepsis", "vitamin K antagonist", "type 2 diabetes", "peaked T waves ECG"):
        tops = [ids(kb.search(query, k=1)) for kb in kbs]
        assert tops[0] == tops[1], query


def test_text_no_index_can_hold_is_not_found_never_corrupt(small_kb):
    for bad in ("\ud800", "drugs:warfarin\udfff", "\udc80\ud800"):
        with pytest.raises(PassageNotFound):
            small_kb.get(bad)
        assert small_kb.search("warfarin", source=bad) == []
        assert small_kb.search(f"warfarin {bad}")[0].id == "drugs:warfarin"
    assert small_kb.search("warfarin", source="drugs\n") == []  # not a source name, so no source's hits


# ---------------------------------------------------------------- ties

def twins(n: int, tag: str = "tie") -> list[Passage]:
    """`n` passages identical but for their ids, so every query scores them exactly alike."""
    return [Passage(f"{tag}:{i:03d}", "Hyponatraemia", "low sodium in plasma", "t") for i in range(n)]


def tied_corpus(n_ties: int) -> list[Passage]:
    better = [Passage("top:1", "Hyponatraemia hyponatraemia", "hyponatraemia low sodium", "t")]
    filler = [Passage(f"f:{i}", f"Other {i}", "unrelated text about renal dosing", "t") for i in range(20)]
    return better + twins(n_ties) + filler


@pytest.mark.parametrize("n_ties, k", [(6, 3), (50, 3), (12, 12), (5, 20)])
def test_tied_scores_are_ordered_by_id_whatever_the_build_order(tmp_path, engine, n_ties, k):
    corpus = tied_corpus(n_ties)
    forward = KnowledgeBase.build(corpus, tmp_path / "a", engine=engine, threads=1)
    backward = KnowledgeBase.build(corpus[::-1], tmp_path / "b", engine=engine, threads=1)
    with forward, backward:
        first, second = forward.search("hyponatraemia", k=k), backward.search("hyponatraemia", k=k)
        tied = [h for h in first if h.id.startswith("tie:")]
        assert len({h.score for h in tied}) == 1  # the corpus really ties them
    assert ids(first) == ids(second)
    expected = ["top:1"] + [p.id for p in twins(n_ties)]
    assert ids(first) == expected[:k]


def test_a_tie_wider_than_the_fetch_cap_still_returns_k_hits(tmp_path, monkeypatch):
    from medgym.runtime.kb import engine as kb_engine

    monkeypatch.setattr(kb_engine, "MAX_TIE_HITS", 8)
    with KnowledgeBase.build(twins(30), tmp_path, threads=1) as kb:
        hits = kb.search("hyponatraemia", k=5)
    assert len(hits) == 5 and len({h.score for h in hits}) == 1
    assert ids(hits) == sorted(ids(hits))


def test_concurrent_searches_match_serial_results(small_kb):
    queries = ["sepsis lactate", "warfarin amiodarone", "atrial fibrillation", "metformin", "renal dose",
               "hyperkalemia ECG", "fever pyrexia", "antibiotics shock"] * 25
    serial = [ids(small_kb.search(q, k=5)) for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: ids(small_kb.search(q, k=5)), queries))
        fetched = list(pool.map(lambda i: small_kb.get(i).id, [h for hits in serial for h in hits]))
    assert parallel == serial
    assert fetched == [h for hits in serial for h in hits]


@pytest.mark.parametrize("bad, message", [
    ([Passage("x:1", "a", "b", "x"), Passage("x:1", "c", "d", "x")], "duplicate passage id 'x:1'"),
    ([], "the corpus has no passages"),
    ([Passage("x:1", "a", "b", "Bad Source")], "passage 'x:1': source name 'Bad Source'"),
    ([Passage("", "a", "b", "x")], "has no id"),
    ([Passage("x:1", "a", "lone \ud800 surrogate", "x")], "passage 'x:1' is not valid Unicode text"),
    ([Passage("x:\udfff", "a", "b", "x")], "passage 'x:\\\\udfff' is not valid Unicode text"),
    ([Passage("x:1", "a", "b", "x", meta={"doi": "\ud800"})], "passage 'x:1' is not valid Unicode text"),
])
def test_bad_corpora_fail_and_leave_nothing_behind(tmp_path, bad, message):
    with pytest.raises(CorpusError, match=message):
        KnowledgeBase.build(bad, tmp_path / "kb", threads=1)
    assert list((tmp_path / "kb" / "builds").iterdir()) == []
    assert not (tmp_path / "kb" / "current").exists()


def test_unknown_engine_is_a_value_error(tmp_path, corpus):
    with pytest.raises(ValueError, match="unknown engine 'lucene'"):
        KnowledgeBase.build(corpus, tmp_path, engine="lucene")


def test_errors_pickle():
    error = CorpusError("not JSON", "/data/x.jsonl", 7)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == "/data/x.jsonl:7: not JSON" and again.line == 7
    missing = pickle.loads(pickle.dumps(PassageNotFound("no passage with id 'a'")))
    assert str(missing) == "no passage with id 'a'"


# ---------------------------------------------------------------- query words and snippets

def test_query_terms_drop_syntax_and_cap_length():
    assert query_terms('title:"septic shock" AND -lactate +(x OR y)* ~2 ^3').terms == (
        "title", "septic", "shock", "and", "lactate", "x", "or", "y", "2", "3")
    many = query_terms(" ".join(f"word{i}" for i in range(100)))
    assert len(many.terms) == 32 and many.dropped == 68
    assert query_terms("a" * 41 + " fever").terms == ("fever",)
    assert query_terms("").terms == ()


def test_snippet_centres_on_the_densest_match():
    text = " ".join(["filler"] * 100 + ["serum", "lactate", "in", "sepsis"] + ["filler"] * 100)
    snippet = make_snippet(text, ("lactate", "sepsis"), width=20)
    assert "serum lactate in sepsis" in snippet and snippet.startswith("… ") and snippet.endswith(" …")
    assert len(snippet.split()) == 22  # 20 words and two ellipses
    assert make_snippet("short text", ("x",)) == "short text"
