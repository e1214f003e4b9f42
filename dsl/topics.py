"""Which history topic a free-text question is about: the patient simulator's only reading of model text.

Shared by the runtime (answering) and the compiler (checking that reference questions reach their topic).
A topic scores the question words its `ask` phrases cover (a word counts once, however many phrases match
it, so "start" and "started" do not double count), so specific multi-word phrases beat single words; ties
go to the topic declared first.
"""
from __future__ import annotations

import re


CACHE_SIZE = 4096  # reference and probe questions recur; a model's free text rarely does


class TopicMatcher:
    def __init__(self, topics: dict[str, dict]):
        self.order = list(topics)
        self.patterns = {name: [(re.compile(_phrase_pattern(p)), len(p.split())) for p in spec.get("ask") or []]
                         for name, spec in topics.items()}
        self._seen: dict[str, str | None] = {}

    def match(self, question: str) -> str | None:
        """The best topic for `question`, or None when no `ask` phrase occurs in it."""
        if question not in self._seen:
            if len(self._seen) >= CACHE_SIZE:
                self._seen.clear()
            self._seen[question] = self._match(question)
        return self._seen[question]

    def _match(self, question: str) -> str | None:
        text = question.casefold()
        best, best_score = None, 0
        for name in self.order:
            covered: dict[int, int] = {}
            for pattern, words in self.patterns[name]:
                for found in pattern.finditer(text):
                    covered[found.start()] = max(words, covered.get(found.start(), 0))
            score = sum(covered.values())
            if score > best_score:
                best, best_score = name, score
        return best


def _phrase_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in phrase.casefold().split()]
    # Plural and tense endings ("starts", "started", "radiating") still count as the phrase.
    return r"\b" + r"\W+".join(words) + r"(?:s|es|d|ed|ing)?\b"
