"""The checklist grader of a rubric's accuracy field (`match: checklist`), checked and compiled.

The findings, their phrases and sections are checked here with located errors; each finding's `present`
(a boolean over the case) becomes generated code, `checklist__<family>(V, C, T)`, which materialize.py runs
per task to write the finding's truth into the task's rubric. The runtime grades with
medgym.runtime.checklist (which the compiler does not import: the rules are stated in both places' docs).
"""
from __future__ import annotations

import re

from medgym.compiler.generate import _value, generator_names
from medgym.compiler.pycode import PyGen
from medgym.dsl import models as m
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl.types import BOOL, AnyT, TextT

CHECKLIST_KEYS = ("sections", "items", "unsupported", "denied", "missing_section")
DEFAULT_COST = 0.25
_WORD = re.compile(r"[^\W_]+")
_VOWEL = re.compile(r"[aeiouy]")


def checklist_name(family: str) -> str:
    return f"checklist__{family}"


def plausible_phrase(label: str) -> bool:
    """Whether a finding label reads as a phrase a report would use: every word (split at `_`) alphabetic, of
    three letters or more, with a vowel. `pleural_effusion` is one; `ptx`, `c7_fracture` and `l_effusion`
    are not and need synonyms."""
    parts = label.split("_")
    return all(p.isalpha() and len(p) >= 3 and _VOWEL.search(p) for p in parts)


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.casefold()))


class Checklists:
    """The checklist fields of one family: their build rules and the generated `present` code."""

    def __init__(self, family: str):
        self.family = family
        self.present: dict[str, list[str]] = {}  # field -> one python expression per finding
        self._labels: set[str] = set()

    def rule(self, key: str, spec: m.AccuracyField, answer_type, marks, loc: tuple, scope, errors) -> dict:
        """The build form of accuracy field `key` (its `checklist` filled in for a checklist), errors appended."""
        dump = spec.model_dump(exclude=set(CHECKLIST_KEYS))
        given = [k for k in CHECKLIST_KEYS if getattr(spec, k) is not None]
        if spec.match != "checklist":
            for k in given:
                errors.append(SpecError(f"'{k}' belongs to a checklist grader; this field is `match: {spec.match}`",
                                        marks.at(loc + (k,), key=True), "write match: checklist, or leave it out"))
            return dump
        if answer_type is not None and not isinstance(answer_type, (TextT, AnyT)):
            errors.append(SpecError(f"a checklist grades free text, but '{key}' is {answer_type.describe()}",
                                    marks.at(loc + ("match",))))
        if not spec.items:
            errors.append(SpecError("a checklist needs `items:` (the findings it grades)", marks.at(loc, key=True)))
            return dump
        sections = list(spec.sections or [])
        for index, name in enumerate(sections):
            if sections.index(name) != index:
                errors.append(SpecError(f"section '{name}' is listed twice", marks.at(loc + ("sections", index))))
        gen = PyGen(generator_names)
        items, codes, owner = [], [], {}
        self._labels = set()
        for index, item in enumerate(spec.items):
            here = loc + ("items", index)
            items.append(self._item(item, sections, owner, marks, here, errors))
            code = _value(item.present, marks, here + ("present",), scope, gen, errors, BOOL,
                          f"`present` of finding '{item.finding}'")
            codes.append(code or "None")
        self.present[key] = codes
        dump["checklist"] = {
            "sections": sections, "items": items,
            **{k: (getattr(spec, k) if getattr(spec, k) is not None else DEFAULT_COST)
               for k in ("unsupported", "denied", "missing_section")}}
        return dump

    def _item(self, item: m.ChecklistItem, sections: list, owner: dict, marks, here: tuple, errors) -> dict:
        if item.finding in {finding for finding, _ in owner.values()} or item.finding in self._labels:
            errors.append(SpecError(f"finding '{item.finding}' is listed twice", marks.at(here + ("finding",))))
        self._labels.add(item.finding)
        if item.section is not None and item.section not in sections:
            hint = did_you_mean(item.section, sections) if sections else "declare the text's `sections:` first"
            errors.append(SpecError(f"unknown section '{item.section}'", marks.at(here + ("section",)), hint))
        phrases = []  # (words, where it is written)
        if plausible_phrase(item.finding):
            phrases.append((_words(item.finding.replace("_", " ")), here + ("finding",)))
        elif not item.synonyms:
            errors.append(SpecError(f"finding '{item.finding}' needs `synonyms:`: its label is not a phrase a text "
                                    f"would use", marks.at(here + ("finding",)),
                                    "list the phrases that state it, e.g. synonyms: [pneumothorax, collapsed lung]"))
        for index, synonym in enumerate(item.synonyms or []):
            if not _words(synonym):
                errors.append(SpecError(f"synonym {synonym!r} has no words", marks.at(here + ("synonyms", index))))
            else:
                phrases.append((_words(synonym), here + ("synonyms", index)))
        for phrase, where in phrases:
            claimed = owner.setdefault(phrase, (item.finding, where))
            if claimed[0] != item.finding:
                errors.append(SpecError(f"phrase '{' '.join(phrase)}' states both '{claimed[0]}' and "
                                        f"'{item.finding}'", marks.at(where), "a phrase may state one finding only"))
        return {"finding": item.finding, "phrases": list(dict.fromkeys(" ".join(p) for p, _ in phrases)),
                "section": item.section, "weight": item.weight, "if_absent": item.if_absent, "present": None}

    def code(self) -> str | None:
        """`checklist__<family>(V, C, T)` -> {field: [present, ...]}, or None without checklist fields."""
        if not self.present:
            return None
        body = ", ".join(f"{key!r}: [{', '.join(codes)}]" for key, codes in self.present.items())
        return f"def {checklist_name(self.family)}(V, C, T):\n    return {{{body}}}"


def resolve(rubric: dict, present: dict[str, list]) -> dict:
    """A task's rubric with each checklist finding's `present` set from this task's values."""
    accuracy = dict(rubric["accuracy"])
    for key, values in present.items():
        rule = dict(accuracy[key])
        checklist = dict(rule["checklist"])
        checklist["items"] = [{**item, "present": bool(value)} for item, value in zip(checklist["items"], values)]
        rule["checklist"] = checklist
        accuracy[key] = rule
    return {**rubric, "accuracy": accuracy}
