"""Turning a model-written query into plain terms, and cutting a snippet around the terms it matched.

Queries never reach an engine's query parser: quotes, operators (`AND`, `-x`, `+y`), field syntax
(`title:x`), wildcards and regexes are all dropped here, so hostile text cannot raise a parse error or
trigger an expensive query. What remains is a bag of words ranked with BM25 (OR semantics); every backend
sees the same words, so their results stay comparable.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

MAX_TERMS = 32  # enough for a long clinical question; bounds query cost for 100 KB inputs
MAX_TERM_CHARS = 40  # longer "words" are hashes, base64 or pasted garbage, never medical terms
WORD = re.compile(r"[^\W_]+")

# Words that carry no retrieval signal; the engines drop their own stop words, this list only keeps them
# out of snippet matching and out of the "no searchable words" decision.
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have had he her his if in into is it its no nor not of on or "
    "our she so such than that the their them then there these they this those to was we were what when "
    "where which while who whom why will with would you your".split())


@dataclass(frozen=True)
class QueryTerms:
    terms: tuple[str, ...]
    dropped: int  # distinct words beyond MAX_TERMS that were ignored

    @property
    def content_terms(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if t not in STOP_WORDS)

    def text(self) -> str:
        return " ".join(self.terms)


def query_terms(query: str) -> QueryTerms:
    """The distinct lower-case words of `query`, in order, at most MAX_TERMS of them."""
    terms: dict[str, None] = {}
    dropped: set[str] = set()
    for match in WORD.finditer(query):
        word = match.group().lower()
        if len(word) > MAX_TERM_CHARS or word in terms:
            continue
        if len(terms) < MAX_TERMS:
            terms[word] = None
        else:
            dropped.add(word)
    return QueryTerms(tuple(terms), len(dropped))


def _stem_prefix(term: str) -> str:
    # A cheap stand-in for the engines' stemmers: "fevers" and "fever" share "feve".
    return term if len(term) <= 4 else term[: max(4, len(term) - 2)]


def make_snippet(text: str, terms: tuple[str, ...], width: int = 40) -> str:
    """About `width` words of `text` around the densest cluster of query terms, with ellipses where cut."""
    words = text.split()
    if len(words) <= width:
        return " ".join(words)
    prefixes = tuple({_stem_prefix(t) for t in terms if t not in STOP_WORDS})
    lowered = [w.lower().strip("()[]{}.,;:!?\"'*") for w in words]
    matches = [i for i, w in enumerate(lowered) if prefixes and w.startswith(prefixes)]
    start = _best_window(matches, lowered, prefixes, width)
    start = max(0, min(start, len(words) - width))
    piece = " ".join(words[start:start + width])
    return ("… " if start > 0 else "") + piece + (" …" if start + width < len(words) else "")


def _best_window(matches: list[int], lowered: list[str], prefixes: tuple[str, ...], width: int) -> int:
    best_start, best_score = 0, (0, 0)
    for n, first in enumerate(matches[:200]):  # bounded work on a very long passage
        start = max(0, first - 3)  # a little context before the first match
        inside = matches[n:bisect.bisect_left(matches, start + width)]
        distinct = {next(p for p in prefixes if lowered[i].startswith(p)) for i in inside}
        score = (len(distinct), len(inside))
        if score > best_score:
            best_start, best_score = start, score
    return best_start

# Per-field weights, shared by every backend: a term in a title says more than the same term in a body.
FIELD_BOOSTS = {"title": 2.0, "keywords": 1.5, "text": 1.0}
