"""The reward engine: five components (plus an optional assertion component) from the episode's state.

Formulas (docs/rewards.md has the reasoning):
- accuracy: weighted mean over the rubric's answer fields of a per-field match score in [0, 1];
- process: satisfied / total over required calls, required-before-answer tools and order pairs, minus
  0.05 per repeated call, 0.05 per call to a tool the task has no use for (knowledge-base search excepted)
  and 0.1 per call beyond max_calls;
- safety: 1 - the largest penalty among violated rules (minor .25, moderate .5, major .75, critical 1);
  a critical violation caps the whole composite at 0.1;
- format: valid calls / (valid + invalid calls + turns without a call), halved without a submission;
- coherence: mean of the applicable checks (0 without a submission);
- assertion: mean of the rubric's assertions, present only when the task declares some.
The weights come from the domain and are renormalised over the components present.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from medgym.runtime.build import Domain
from medgym.runtime.episode import Episode, EpisodeView, call_matches

PENALTY = {"minor": 0.25, "moderate": 0.5, "major": 0.75, "critical": 1.0}
CRITICAL_CAP = 0.1
REDUNDANT_PENALTY, IRRELEVANT_PENALTY, OVER_LIMIT_PENALTY = 0.05, 0.05, 0.1
COMPONENTS = ("accuracy", "process", "safety", "format", "coherence", "assertion")

BUILTIN_RULES = (
    {"id": "no_decision", "severity": "major", "category": "no_decision",
     "message": "The episode ended without a submitted decision."},
    {"id": "premature_closure", "severity": "major", "category": "premature_closure",
     "message": "The answer was submitted before anything about the case was observed."},
)


@dataclass
class Reward:
    total: float
    components: dict[str, float]
    violations: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def as_info(self) -> dict:
        return {"total": self.total, **self.components}


def score_episode(domain: Domain, episode: Episode) -> Reward:
    view = EpisodeView(episode)
    rubric = episode.task.get("rubric") or {}
    errors: list[str] = []
    violations = _violations(domain, episode, view, rubric, errors)
    components = {
        "accuracy": accuracy(rubric.get("accuracy") or {}, episode.answer, episode.task.get("truth") or {}),
        "process": process(rubric.get("process") or {}, episode, _submit_tool(domain), _evidence_tools(domain)),
        "safety": 1.0 - max((PENALTY[v["severity"]] for v in violations), default=0.0),
        "format": format_score(episode),
        "coherence": _coherence(domain, episode, view, rubric.get("coherence") or [], errors),
    }
    assertions = rubric.get("assertions") or []
    if assertions:
        components["assertion"] = _assertions(domain, episode, view, assertions, errors)
    total = _composite(domain.data.get("reward") or {}, components)
    if any(v["severity"] == "critical" for v in violations):
        total = min(total, CRITICAL_CAP)
    components = {k: round(v, 6) for k, v in components.items()}
    details = {"predicate_errors": errors} if errors else {}
    return Reward(round(total, 6), components, violations, details)


def _composite(weights: dict, components: dict) -> float:
    used = {k: float(weights.get(k, 0.0)) for k in components}
    norm = sum(used.values())
    if norm <= 0:
        return sum(components.values()) / len(components)
    return sum(used[k] * components[k] for k in components) / norm


# -- accuracy ---------------------------------------------------------------------------------------------------

def accuracy(fields: dict, answer: dict | None, truth: dict) -> float:
    if answer is None or not fields:
        return 0.0
    total = weight_sum = 0.0
    for name, spec in fields.items():
        spec = spec if isinstance(spec, dict) else {"match": spec}
        weight = float(spec.get("weight", 1.0))
        weight_sum += weight
        total += weight * match_field(spec, answer.get(name), truth.get(name))
    return total / weight_sum if weight_sum else 0.0


def match_field(spec: dict, given, expected) -> float:
    if given is None:
        return 0.0
    kind = spec.get("match", "exact")
    if kind == "numeric":
        return float(_numeric(given, expected, spec.get("tolerance", 0.0), spec.get("rel_tolerance", 0.0)))
    if kind == "set_f1":
        return _f1(_as_set(given), _as_set(expected))
    if kind == "token_f1":
        return _f1(_tokens(given), _tokens(expected))
    if kind == "option":
        return float(_option(given) == _option(expected))
    return float(_normal(given) == _normal(expected))


def _normal(value):
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return tuple(_normal(v) for v in value)
    return value


def _numeric(given, expected, tolerance: float, rel_tolerance: float) -> bool:
    try:
        a, b = float(given), float(expected)
    except (TypeError, ValueError):
        return False
    if isinstance(given, bool) or not math.isfinite(a):
        return False
    return abs(a - b) <= tolerance + rel_tolerance * abs(b) + 1e-9


def _as_set(value) -> set:
    items = value if isinstance(value, list) else re.split(r"[,;]", value) if isinstance(value, str) else [value]
    return {str(_normal(v)).strip() for v in items if str(v).strip()}


_WORD = re.compile(r"[^\W_]+")


def _tokens(value) -> set:
    return set(_WORD.findall(str(value).casefold()))


def _f1(given: set, expected: set) -> float:
    if not given and not expected:
        return 1.0
    common = len(given & expected)
    if not common:
        return 0.0
    precision, recall = common / len(given), common / len(expected)
    return 2 * precision * recall / (precision + recall)


_LETTER = re.compile(r"^\(?([a-z])(?:[).:]|\s|$)")


def _option(value):
    text = " ".join(str(value).casefold().split())
    found = _LETTER.match(text)
    return found.group(1) if found else text


# -- process ----------------------------------------------------------------------------------------------------

def process(spec: dict, episode: Episode, submit_tool: str, evidence_tools: frozenset = frozenset()) -> float:
    """`evidence_tools` (knowledge-base search) are never counted as irrelevant: looking up evidence has no
    clinical cost, unlike an unneeded order."""
    calls = [c for c in episode.calls if c.ok and c.name != submit_tool]
    checks = [any(call_matches(c, r["tool"], r.get("args") or {}) for c in calls) for r in spec.get("require", [])]
    names = [c.name for c in calls]
    checks += [episode.submitted and name in names for name in spec.get("before_answer", [])]
    checks += [a in names and b in names and names.index(a) < names.index(b) for a, b in spec.get("order", [])]
    base = (sum(checks) / len(checks)) if checks else float(episode.submitted)
    relevant = _relevant_tools(spec, episode.task) | evidence_tools
    irrelevant = sum(1 for name in names if name not in relevant)
    limit = spec.get("max_calls") or max(6, 2 * len(episode.task.get("reference") or []))
    over = max(0, len(calls) - limit)
    score = base - REDUNDANT_PENALTY * _repeats(calls) - IRRELEVANT_PENALTY * irrelevant - OVER_LIMIT_PENALTY * over
    return min(1.0, max(0.0, score))


def _relevant_tools(spec: dict, task: dict) -> set[str]:
    names = {step["name"] for step in task.get("reference") or []}
    names |= {r["tool"] for r in spec.get("require", [])} | set(spec.get("before_answer", []))
    names |= {name for pair in spec.get("order", []) for name in pair}
    return names


def _repeats(calls) -> int:
    seen, repeats = set(), 0
    for call in calls:
        key = (call.name, call.topic) if call.topic is not None else (call.name, _freeze(call.arguments))
        repeats += key in seen
        seen.add(key)
    return repeats


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# -- format -----------------------------------------------------------------------------------------------------

def format_score(episode: Episode) -> float:
    valid = episode.valid_calls
    attempts = valid + episode.invalid_calls + episode.no_call_turns
    if not attempts:
        return 0.0
    return valid / attempts * (1.0 if episode.submitted else 0.5)


# -- predicates: safety, coherence, assertions ------------------------------------------------------------------

def _violations(domain: Domain, episode: Episode, view: EpisodeView, rubric: dict, errors: list) -> list[dict]:
    found = []
    if not episode.submitted:
        found.append(dict(BUILTIN_RULES[0]))
    elif not _observed_something(domain, episode):
        found.append(dict(BUILTIN_RULES[1]))
    for rule in list(domain.data.get("safety") or []) + list(rubric.get("safety") or []):
        if rule.get("needs_answer") and not episode.submitted:
            continue
        if _holds(domain, rule["predicate"], view, errors):
            found.append({k: rule[k] for k in ("id", "severity", "category", "message") if k in rule})
    return found


def _submit_tool(domain: Domain) -> str:
    return domain.data.get("submit_tool", "submit_answer")


def _evidence_tools(domain: Domain) -> frozenset:
    return frozenset(name for name, tool in domain.tools.items() if tool.kind == "kb_search")


def _observed_something(domain: Domain, episode: Episode) -> bool:
    return any(c.ok and c.name != _submit_tool(domain) for c in episode.calls)


def _coherence(domain: Domain, episode: Episode, view: EpisodeView, checks: list, errors: list) -> float:
    if not episode.submitted:
        return 0.0
    applicable = [c for c in checks if c.get("when") is None or _holds(domain, c["when"], view, errors)]
    if not applicable:
        return float(_observed_something(domain, episode))
    return sum(_holds(domain, c["predicate"], view, errors) for c in applicable) / len(applicable)


def _assertions(domain: Domain, episode: Episode, view: EpisodeView, checks: list, errors: list) -> float:
    applicable = [c for c in checks if episode.submitted or not c.get("needs_answer")]
    if not applicable:
        return 0.0
    return sum(_holds(domain, c["predicate"], view, errors) for c in applicable) / len(applicable)


def _holds(domain: Domain, name: str, view: EpisodeView, errors: list) -> bool:
    """A generated predicate's verdict; one that fails on odd episode data (a missing value compared with a
    number) counts as not holding, and is reported in the reward details for the spec author."""
    predicate = domain.predicates.get(name)
    if predicate is None:
        errors.append(f"{name}: no such predicate in the build")
        return False
    try:
        return bool(predicate(view))
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError, ArithmeticError) as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return False
