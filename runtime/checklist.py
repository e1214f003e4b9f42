"""The checklist grader for free text (radiology reports, plans): deterministic, no model judge.

A checklist names findings (each with the phrases that state it), whether the case has each one, the
sections a report must have and the section each finding belongs in. Grading a text:

1. Sections. A declared section's name (underscores read as spaces, any case) followed by `:` (or alone on
   its line), at the start of a line or of a sentence, opens that section; it runs to the next heading. Text before
   the first heading belongs to no section. Each declared section the text lacks costs `missing_section`.
2. Mentions. Within the text a finding is graded on (its section, or the whole text when it names none),
   every phrase of every finding is found as a whole-word sequence (case and punctuation ignored); where
   phrases overlap the longest wins (`pericardial effusion` is not also `effusion`).
3. Negation, NegEx-style (Chapman et al., J Biomed Inform 2001;34:301-310), reduced to a small rule set:
   a mention is negated when a pre-negation trigger (`PRE_NEGATION`) comes before it, or a post-negation
   trigger (`POST_NEGATION`) after it, in the same clause. A clause ends at a sentence boundary (`.`, `;`,
   `!`, `?`, a line break) or at a word in `CLAUSE_BREAKS` ("no effusion, but a small pneumothorax"
   negates only the effusion). A trigger inside a pseudo-negation (`PSEUDO_NEGATION`: "no change in") is
   no trigger. Known limit of the rule set: "no effusion and a pneumothorax" negates both; write two
   sentences.
4. Each finding is asserted (some mention not negated), denied (every mention negated), conflicting (both)
   or silent. A finding the case has earns its weight when asserted; denying it costs `denied`. A finding the
   case lacks earns its weight when denied, unless it is `if_absent: ignore` (then it is not counted);
   asserting it is an unsupported statement and costs `unsupported`. A conflicting finding earns nothing
   and costs nothing.

score = clamp(earned / counted weight - costs, 0, 1) (earned / counted is 1 when nothing is counted). It is
monotone: stating a finding the case has never lowers it, stating one it lacks never raises it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PRE_NEGATION = ("no evidence of", "no signs of", "no sign of", "negative for", "free of", "absence of",
                "without", "no", "not", "denies")
POST_NEGATION = ("is absent", "are absent", "absent", "was ruled out", "were ruled out", "ruled out", "is excluded",
                 "excluded", "not seen", "not identified", "not present", "not visualised", "not visualized")
PSEUDO_NEGATION = ("no change", "no interval change", "no significant change", "no increase", "not only",
                   "without change")
CLAUSE_BREAKS = ("but", "however", "although", "though", "except")

_WORD = re.compile(r"[^\W_]+")
_SENTENCE = re.compile(r"[;!?\n]|\.(?!\d)")


@dataclass(frozen=True)
class Finding:
    finding: str
    phrases: tuple[str, ...]
    present: bool
    section: str | None = None
    weight: float = 1.0
    if_absent: str = "deny"  # or "ignore": an absent finding need not be denied


@dataclass(frozen=True)
class Checklist:
    findings: tuple[Finding, ...]
    sections: tuple[str, ...] = ()
    unsupported: float = 0.25
    denied: float = 0.25
    missing_section: float = 0.25


@dataclass
class Grade:
    score: float
    status: dict[str, str]  # finding -> asserted | denied | conflicting | silent
    earned: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    missing_sections: list[str] = field(default_factory=list)


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.casefold()))


def label_phrase(label: str) -> str:
    """The phrase a snake_case finding label stands for: `pleural_effusion` is "pleural effusion"."""
    return label.replace("_", " ")


def split_sections(text: str, sections: tuple[str, ...]) -> dict[str | None, str]:
    """Section name -> its text (None: what comes before the first heading). A repeated heading adds to
    its section."""
    out: dict[str | None, str] = {None: ""}
    if not sections:
        out[None] = text
        return out
    names = {" ".join(words(label_phrase(s))): s for s in sections}
    alternatives = "|".join(r"\s+".join(map(re.escape, name.split())) for name in sorted(names, key=len, reverse=True))
    heading = re.compile(rf"(?:^|(?<=[\n.;!?]))[ \t]*[#*]*[ \t]*({alternatives})[ \t]*[#*]*[ \t]*(?::|(?=\n)|$)",
                         re.IGNORECASE)
    current, start = None, 0
    for match in heading.finditer(text):
        out[current] = out.get(current, "") + text[start:match.start()] + "\n"
        current, start = names[" ".join(words(match.group(1)))], match.end()
        out.setdefault(current, "")
    out[current] = out.get(current, "") + text[start:]
    return out


def clauses(text: str) -> list[tuple[str, ...]]:
    """The text as clauses of words: split at sentence ends, then at the clause-breaking words."""
    out = []
    for sentence in _SENTENCE.split(text):
        current: list[str] = []
        for word in words(sentence):
            if word in CLAUSE_BREAKS:
                if current:
                    out.append(tuple(current))
                current = []
            else:
                current.append(word)
        if current:
            out.append(tuple(current))
    return out


def _occurrences(clause: tuple[str, ...], phrase: tuple[str, ...]) -> list[tuple[int, int]]:
    size = len(phrase)
    return [(i, i + size) for i in range(len(clause) - size + 1) if clause[i:i + size] == phrase] if size else []


def _triggers(clause: tuple[str, ...], triggers: tuple[str, ...], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Trigger spans in the clause, outside pseudo-negations and outside the finding mentions."""
    pseudo = [span for p in PSEUDO_NEGATION for span in _occurrences(clause, words(p))]
    blocked = pseudo + taken
    return [span for t in triggers for span in _occurrences(clause, words(t))
            if not any(a < span[1] and span[0] < b for a, b in blocked)]


def mentions(text: str, phrases: dict[str, tuple[str, ...]]) -> dict[str, list[bool]]:
    """finding -> one entry per mention in `text`: whether that mention is negated."""
    out: dict[str, list[bool]] = {name: [] for name in phrases}
    for clause in clauses(text):
        found = sorted(((start, end, name) for name, options in phrases.items() for p in options
                        for start, end in _occurrences(clause, words(p))),
                       key=lambda m: (m[0] - m[1], m[0], m[2]))  # longest first, then leftmost
        taken: list[tuple[int, int, str]] = []
        for start, end, name in found:
            if not any(a < end and start < b for a, b, _ in taken):
                taken.append((start, end, name))
        spans = [(a, b) for a, b, _ in taken]
        post = _triggers(clause, POST_NEGATION, spans)
        pre = _triggers(clause, PRE_NEGATION, spans + post)  # the `not` of "not seen" looks back only
        for start, end, name in sorted(taken):
            negated = any(b <= start for _, b in pre) or any(a >= end for a, _ in post)
            out[name].append(negated)
    return out


def _status(negations: list[bool]) -> str:
    if not negations:
        return "silent"
    if all(negations):
        return "denied"
    return "conflicting" if any(negations) else "asserted"


def grade(checklist: Checklist, text) -> Grade:
    """Grade one free text against the checklist (see the module docstring)."""
    text = text if isinstance(text, str) else ""
    parts = split_sections(text, checklist.sections)
    whole = "\n".join(parts.values())
    status: dict[str, str] = {}
    by_text: dict[str | None, list[Finding]] = {}
    for item in checklist.findings:
        key = item.section if checklist.sections and item.section else "__whole__"
        by_text.setdefault(key, []).append(item)
    for key, items in by_text.items():
        body = whole if key == "__whole__" else parts.get(key, "")
        found = mentions(body, {item.finding: item.phrases for item in items})
        status.update({item.finding: _status(found[item.finding]) for item in items})
    result = Grade(0.0, status)
    counted = earned = 0.0
    for item in checklist.findings:
        state = status[item.finding]
        if item.present:
            counted += item.weight
            if state == "asserted":
                earned += item.weight
                result.earned.append(item.finding)
            elif state == "denied":
                result.denied.append(item.finding)
        else:
            if item.if_absent == "deny":
                counted += item.weight
                if state == "denied":
                    earned += item.weight
                    result.earned.append(item.finding)
            if state == "asserted":
                result.unsupported.append(item.finding)
    result.missing_sections = [s for s in checklist.sections if s not in parts]
    coverage = earned / counted if counted else (1.0 if text.strip() else 0.0)
    costs = (checklist.unsupported * len(result.unsupported) + checklist.denied * len(result.denied)
             + checklist.missing_section * len(result.missing_sections))
    result.score = round(min(1.0, max(0.0, coverage - costs)), 6)
    return result
