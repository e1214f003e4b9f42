"""The state of one episode and the read-only view that rubric predicates see.

Everything the reward engine scores is here: the calls with their validated arguments, what was revealed and
observed, the simulated clock and the submitted answer. Nothing is read from the agent's prose.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from medgym.dsl.build import Task

# A citation is a passage id in square brackets, `[icd10cm:A41.9]` or `[drugs:magnesium lactate]`: ids may
# hold spaces, slashes and '#', so only the brackets delimit them reliably in free text.
CITATION = re.compile(r"\[\s*([a-z][a-z0-9_]*:[^\[\]\n]{1,300}?)\s*\]")


@dataclass(slots=True)
class CallRecord:
    """One tool call as executed: `ok` is False for calls that produced an error observation."""

    turn: int
    name: str
    arguments: dict
    ok: bool
    result: dict | None = None
    error: str | None = None
    topic: str | None = None  # simulator calls: the history topic the question resolved to
    clock: float = 0.0  # minutes since arrival when the call finished
    phase: int = 0  # the phase it was made in (a phased task; 0 otherwise)


@dataclass(frozen=True, slots=True)
class PhaseStart:
    """The episode's counters when a phase began: a phase is scored on what happened after them."""

    invalid_calls: int = 0
    no_call_turns: int = 0
    turns: int = 0
    clock: float = 0.0


@dataclass
class Episode:
    task: Task
    turns: int = 0
    clock: float = 0.0
    calls: list[CallRecord] = field(default_factory=list)
    invalid_calls: int = 0  # malformed, unknown or schema-invalid calls, and tool errors
    no_call_turns: int = 0  # turns that tried no call at all
    revealed: dict[str, float] = field(default_factory=dict)  # case path -> clock when its result is ready
    observed: set[str] = field(default_factory=set)  # dotted case paths the agent has been shown
    retrieved: set[str] = field(default_factory=set)  # knowledge-base passage ids returned by a search
    asked: dict[str, int] = field(default_factory=dict)  # simulator topic -> times asked
    answer: dict | None = None
    done: bool = False
    phase: int = 0  # the current phase of a phased task
    phase_answers: dict[str, dict] = field(default_factory=dict)  # phase name -> its submission
    phase_starts: list[PhaseStart] = field(default_factory=lambda: [PhaseStart()])

    @property
    def current_phase(self):
        """The build's Phase the episode is in, or None for a task without phases."""
        phases = self.task.phases
        return phases[self.phase] if phases else None

    def next_phase(self) -> None:
        self.phase += 1
        self.phase_starts.append(PhaseStart(self.invalid_calls, self.no_call_turns, self.turns, self.clock))

    def handed_forward(self) -> dict[str, dict]:
        """phase name -> the fields it handed forward, as submitted (what `phase.<name>.<field>` reads)."""
        return {p.name: {k: self.phase_answers[p.name][k] for k in p.hand_forward if k in self.phase_answers[p.name]}
                for p in self.task.phases if p.name in self.phase_answers}

    @property
    def case(self) -> dict:
        return self.task.case

    @property
    def submitted(self) -> bool:
        return self.answer is not None

    @property
    def valid_calls(self) -> int:
        return sum(1 for call in self.calls if call.ok)

    def successful(self, name: str | None = None) -> list[CallRecord]:
        return [c for c in self.calls if c.ok and (name is None or c.name == name)]

    def observe(self, prefix: str, value) -> None:
        """Mark every leaf under `prefix` in `value` (a case subtree) as observed."""
        if isinstance(value, dict) and value:
            for key, child in value.items():
                self.observe(f"{prefix}.{key}" if prefix else key, child)
        else:
            self.observed.add(prefix)


def canonical(value):
    """The form in which two argument values are the same request: text trimmed, case-folded and with its
    whitespace collapsed; numbers as floats; lists as sorted, de-duplicated tuples (the order of tests in one
    order carries no meaning); objects with sorted keys. Duplicate detection compares this form, so a call
    re-sent with the id lower-cased and a trailing space is still a repeat."""
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = {repr(c): c for c in (canonical(v) for v in value)}
        return tuple(items[k] for k in sorted(items))
    if isinstance(value, dict):
        return tuple(sorted((str(k), canonical(v)) for k, v in value.items()))
    return repr(value)


def call_matches(call: CallRecord, name: str, required: dict) -> bool:
    """The process-requirement rule: names agree and every required argument equals the call's (text compared
    case-insensitively) or is contained in it when the call's argument is a list; a simulator's topic counts."""
    if call.name != name:
        return False
    for key, want in required.items():
        have = call.topic if key == "topic" and call.topic is not None else call.arguments.get(key)
        if not _arg_equal(have, want):
            return False
    return True


def _arg_equal(have, want) -> bool:
    if isinstance(have, list) and not isinstance(want, list):
        return any(_arg_equal(item, want) for item in have)
    if isinstance(want, list):
        return isinstance(have, list) and all(any(_arg_equal(h, w) for h in have) for w in want)
    if isinstance(have, str) and isinstance(want, str):
        return have.strip().casefold() == want.strip().casefold()
    if isinstance(have, bool) or isinstance(want, bool):
        return have is want
    if isinstance(have, (int, float)) and isinstance(want, (int, float)):
        return abs(have - want) <= 1e-9 * max(1.0, abs(want))
    return have == want


class EpisodeView:
    """What generated predicates read (`v.answer`, `v.called(...)`, ...). Missing things are None or empty."""

    __slots__ = ("_episode",)

    def __init__(self, episode: Episode):
        self._episode = episode

    @property
    def answer(self) -> dict:
        return self._episode.answer or {}

    @property
    def truth(self) -> dict:
        return self._episode.task.truth

    @property
    def case(self) -> dict:
        return self._episode.case

    @property
    def vars(self) -> dict:
        return _Lenient(self._episode.task.vars)

    @property
    def clock(self) -> float:
        return self._episode.clock

    @property
    def phase(self) -> dict:
        """`phase.<name>.<field>`: what earlier phases handed forward (missing reads as None)."""
        return _Lenient(self._episode.handed_forward())

    def called(self, name: str, **arguments) -> bool:
        return any(call_matches(c, name, arguments) for c in self._episode.calls if c.ok)

    def calls(self, name: str) -> int:
        return len(self._episode.successful(name))

    def result(self, name: str) -> dict:
        found = self._episode.successful(name)
        return (found[-1].result or {}) if found else {}

    def observed(self, path: str) -> bool:
        seen = self._episode.observed
        if path in seen:
            return True
        prefix = path + "."
        return any(p.startswith(prefix) for p in seen)

    def cites_passages(self, text) -> bool:
        """`text` cites at least one knowledge-base passage id."""
        return isinstance(text, str) and CITATION.search(text) is not None

    def cites_retrieved(self, text) -> bool:
        """Every passage id cited in `text` (`[source:key]`) was returned by a search in this episode."""
        cited = set(CITATION.findall(text)) if isinstance(text, str) else set()
        return cited <= self._episode.retrieved


class _Lenient(dict):
    """`v.vars[name]`: a missing let value reads as None, like a missing record field."""

    def __missing__(self, key):
        return None
