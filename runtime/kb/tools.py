"""The two knowledge-base tools an agent calls: `search_knowledge` and `read_passage`.

Both return JSON-ready dicts. Arguments come from a model, so any bad value (wrong type, empty or enormous
query, operators, unknown source or id) becomes `{"error": "..."}` with a message saying what to send
instead, never an exception. A broken index is not the model's fault: `KBError`s propagate to the caller.
"""
from __future__ import annotations

import math

from medgym.runtime.kb.engine import KnowledgeBase
from medgym.runtime.kb.errors import PassageNotFound
from medgym.runtime.kb.query import MAX_TERMS, query_terms

MAX_K = 20
MAX_PASSAGE_CHARS = 8000  # a passage longer than this (a whole chapter in a user corpus) is cut
MAX_ID_CHARS = 300
EXAMPLE = 'e.g. "sepsis lactate"'


def _error(message: str) -> dict:
    return {"error": message}


def _check_k(k) -> tuple[int | None, str]:
    """(k, note) or (None, error message)."""
    if isinstance(k, bool) or not isinstance(k, (int, float, str)):
        return None, f"k must be a whole number from 1 to {MAX_K}, got {type(k).__name__}"
    if isinstance(k, int) and k > MAX_K:  # before float(): 10**400 would overflow it
        return MAX_K, f"k was lowered to the maximum, {MAX_K}"
    try:
        number = float(k)
    except (ValueError, OverflowError):
        return None, f"k must be a whole number from 1 to {MAX_K}, got {_shown(k)}"
    if not math.isfinite(number) or number != int(number) or number < 1:  # NaN, inf, fractions, zero, negatives
        return None, f"k must be a whole number from 1 to {MAX_K}, got {_shown(k)}"
    if number > MAX_K:
        return MAX_K, f"k was lowered to the maximum, {MAX_K}"
    return int(number), ""


def _shown(k: int | float | str) -> str:
    # str() of an int past 4300 digits raises; nobody needs more than its first digits in a message anyway.
    if isinstance(k, str):
        return repr(k[:40])
    if isinstance(k, int) and k.bit_length() > 128:
        return "a number with more than 38 digits"
    return str(k)[:40]


def _check_source(kb: KnowledgeBase, source) -> tuple[str | None, str]:
    if source is None or source == "":
        return None, ""
    if not isinstance(source, str):
        return None, f"source must be one of the source names ({', '.join(kb.sources)}), got {type(source).__name__}"
    if source not in kb.sources:
        return None, f"unknown source {source[:60]!r}; choose one of: {', '.join(kb.sources)} (or leave it out)"
    return source, ""


def search_knowledge(kb: KnowledgeBase, query, k=5, source=None) -> dict:
    """Rank passages for the keywords in `query` (BM25; quotes and operators are ignored).

    Returns `{"query", "k", "source", "results": [{id, title, snippet, score, source}], "note"?}` or
    `{"error": message}`.
    """
    if not isinstance(query, str):
        return _error(f"query must be text (a few keywords, {EXAMPLE}), got {type(query).__name__}")
    if not query.strip():
        return _error(f"the query is empty: give a few keywords, {EXAMPLE}")
    k, k_note = _check_k(k)
    if k is None:
        return _error(k_note)
    source, problem = _check_source(kb, source)
    if problem:
        return _error(problem)
    terms = query_terms(query)
    if not terms.content_terms:
        return _error(f"the query has no searchable words (only punctuation, symbols or very common words): "
                      f"give a few keywords, {EXAMPLE}")
    hits = kb.search(terms.text(), k=k, source=source)
    notes = [k_note] if k_note else []
    if terms.dropped:
        notes.append(f"only the first {MAX_TERMS} distinct words were used; {terms.dropped} more were ignored")
    if not hits:
        notes.append("no passage matched; try other or fewer, more specific keywords"
                     + (", or search all sources" if source else ""))
    result = {"query": terms.text(), "k": k, "source": source, "results": [h.to_dict() for h in hits]}
    if notes:
        result["note"] = "; ".join(notes)
    return result


def read_passage(kb: KnowledgeBase, passage_id) -> dict:
    """The full text and provenance of one passage, by an id from `search_knowledge` results.

    Returns `{"id", "title", "text", "source", "license", "url", "original_id", ...}` or `{"error": message}`.
    """
    if not isinstance(passage_id, str) or not passage_id.strip():
        return _error("passage_id must be the id of a search result (a string such as 'icd10cm:A41.9')")
    passage_id = passage_id.strip()
    if len(passage_id) > MAX_ID_CHARS:
        return _error(f"passage_id is {len(passage_id)} characters long; ids come from search_knowledge results")
    try:
        passage = kb.get(passage_id)
    except PassageNotFound:
        return _error(f"no passage with id {passage_id[:80]!r}; use an id exactly as search_knowledge returned it")
    result = passage.to_dict()
    if len(passage.text) > MAX_PASSAGE_CHARS:
        result["text"] = passage.text[:MAX_PASSAGE_CHARS]
        result["note"] = f"the text was cut to its first {MAX_PASSAGE_CHARS} characters of {len(passage.text)}"
    return result
