"""The reward engine: five components (plus an optional assertion component) from the episode's state.

Formulas (docs/rewards.md has the reasoning and the probe figures):
- accuracy: weighted mean over the rubric's answer fields of a per-field match score in [0, 1];
- process: satisfied / total over required calls, required-before-answer tools and order pairs, minus costs
  counted per item: each repeated item (same tool, same normalised arguments; each test of an order; each
  history topic), each test or study ordered that the task does not need, each history topic it does not
  need, each call to a tool it has no use for, each call beyond max_calls;
- safety: 1 - the largest penalty among violated rules (minor .25, moderate .5, major .75, critical 1);
- format: valid calls / (valid + invalid calls + turns without a call), halved without a submission;
- coherence: mean of the applicable checks; a check that reads answer fields holds only as far as those
  fields are right (0 without a submission);
- assertion: mean of the rubric's assertions, present only when the task declares some.
The composite is monotone in correctness: accuracy x (share + (1 - share) x quality), where share is
accuracy's weight and quality the weighted mean of the other components, so they refine the reward of a
right answer and never lift a wrong one; a critical violation caps it at 0.1.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from medgym.dsl.build import AccuracyRule, Process, Requirement, Rubric, SafetyRule, Task
from medgym.dsl.components import COMPONENT_NAMES, component_table
from medgym.dsl.support import comparable
from medgym.runtime import checklist
from medgym.runtime.build import Domain
from medgym.runtime.episode import CallRecord, Episode, EpisodeView, PhaseStart, call_matches, canonical

PENALTY = {"minor": 0.25, "moderate": 0.5, "major": 0.75, "critical": 1.0}
CRITICAL_CAP = 0.1
REPEAT_COST = 0.05  # each repeated item
UNNEEDED_ORDER_COST = 0.05  # each test, study or treatment ordered that the task does not need
UNNEEDED_QUESTION_COST = 0.02  # each history topic the task does not need (two minutes of a clinician's time)
IRRELEVANT_TOOL_COST = 0.05  # each call to a tool the task has no use for
OVER_LIMIT_COST = 0.1  # each call beyond max_calls
COMPONENTS = COMPONENT_NAMES  # declared in medgym.dsl.components

NO_DECISION = SafetyRule(id="no_decision", severity="major", category="no_decision", predicate="", needs_answer=False,
                         message="The episode ended without a submitted decision.")
PREMATURE_CLOSURE = SafetyRule(id="premature_closure", severity="major", category="premature_closure", predicate="",
                               needs_answer=True,
                               message="The answer was submitted before anything about the case was observed.")


@dataclass
class Reward:
    total: float
    components: dict[str, float]
    violations: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def as_info(self) -> dict:
        return {"total": self.total, **self.components}


@dataclass
class _Scoring:
    """What the component scorers share for one episode: its rubric, the violated rules, each answer field's
    match score, and the predicate errors found on the way."""

    domain: Domain
    episode: Episode
    view: EpisodeView
    rubric: Rubric
    fields: dict[str, float]
    violations: list[SafetyRule]
    errors: list[str]


def score_episode(domain: Domain, episode: Episode) -> Reward:
    if episode.task.phases:
        return _score_phases(domain, episode)
    return _score_one(domain, episode)


def _score_one(domain: Domain, episode: Episode, domain_rules: bool = True) -> Reward:
    view = EpisodeView(episode)
    rubric = episode.task.rubric
    errors: list[str] = []
    violations = _violations(domain, episode, view, rubric, errors, domain_rules)
    fields = field_scores(rubric.accuracy, episode.answer, episode.task.truth)
    scoring = _Scoring(domain, episode, view, rubric, fields, violations, errors)
    components = {}
    for name, scorer in _SCORERS.items():
        value = scorer(scoring)
        if value is not None:  # an optional component the task does not declare
            components[name] = value
    total = composite(domain.spec.reward.model_dump(), components)
    if any(v.severity == "critical" for v in violations):
        total = min(total, CRITICAL_CAP)
    components = {k: round(v, 6) for k, v in components.items()}
    details = {"predicate_errors": errors} if errors else {}
    graded = checklist_details(rubric.accuracy, episode.answer)
    if graded:
        details["checklist"] = graded
    return Reward(round(total, 6), components, [v.violation() for v in violations], details)


# -- phases -----------------------------------------------------------------------------------------------------

def _score_phases(domain: Domain, episode: Episode) -> Reward:
    """Each phase scored by its own rubric on what happened in it, combined by the phases' weights. A phase
    the episode never reached scores 0, so finishing more phases correctly never scores lower; a critical
    violation in any phase caps the whole episode. Domain-wide safety rules judge the last phase (they are
    written against the domain's submit tool)."""
    phases = episode.task.phases
    weights = [p.weight for p in phases]
    scored = [_score_one(domain, phase_episode(episode, i), domain_rules=i == len(phases) - 1)
              if i <= episode.phase else None for i in range(len(phases))]
    total = sum(w * r.total for w, r in zip(weights, scored) if r is not None) / sum(weights)
    violations = [dict(v, phase=p.name) for p, r in zip(phases, scored) if r is not None for v in r.violations]
    if any(v["severity"] == "critical" for v in violations):
        total = min(total, CRITICAL_CAP)
    names = [c for c in COMPONENTS if any(r is not None and c in r.components for r in scored)]
    components = {c: round(sum(w * r.components.get(c, 0.0) for w, r in zip(weights, scored) if r is not None)
                           / sum(weights), 6) for c in names}
    details = {"phases": {p.name: ({"reached": True, "total": r.total, **r.components} if r is not None
                                   else {"reached": False, "total": 0.0}) for p, r in zip(phases, scored)}}
    errors = [e for r in scored if r is not None for e in r.details.get("predicate_errors", [])]
    if errors:
        details["predicate_errors"] = errors
    return Reward(round(total, 6), components, violations, details)


def phase_episode(episode: Episode, index: int) -> Episode:
    """Phase `index` of a phased episode as an episode of its own: its calls, its counters, its submission,
    its rubric and its share of the reference (what process scoring measures against)."""
    task = episode.task
    phase = task.phases[index]
    start = episode.phase_starts[index]
    end = episode.phase_starts[index + 1] if index + 1 < len(episode.phase_starts) else None
    now = end or PhaseStart(episode.invalid_calls, episode.no_call_turns, episode.turns, episode.clock)
    steps = phase_steps(task)[index]
    part = task.model_copy(update={"task_id": f"{task.task_id}#{phase.name}", "rubric": phase.rubric,
                                   "reference": tuple(steps)})
    sub = Episode(part, turns=now.turns - start.turns, clock=now.clock,
                  calls=[c for c in episode.calls if c.phase == index],
                  invalid_calls=now.invalid_calls - start.invalid_calls,
                  no_call_turns=now.no_call_turns - start.no_call_turns,
                  revealed=episode.revealed, observed=episode.observed, retrieved=episode.retrieved,
                  asked=episode.asked, answer=episode.phase_answers.get(phase.name))
    sub.phase_answers = episode.phase_answers  # later phases' rubrics read what earlier ones handed forward
    sub.done = sub.answer is not None
    return sub


def phase_steps(task: Task) -> list[list]:
    """A phased task's reference cut into its phases: each phase's steps end with its submit tool."""
    out, index = [[] for _ in task.phases], 0
    for step in task.reference:
        out[min(index, len(out) - 1)].append(step)
        if index < len(out) and step.name == task.phases[index].submit:
            index += 1
    return out


def _safety(s: _Scoring) -> float:
    return 1.0 - max((PENALTY[v.severity] for v in s.violations), default=0.0)


def _assertion(s: _Scoring) -> float | None:
    return _assertions(s.domain, s.episode, s.view, s.rubric.assertions, s.errors) if s.rubric.assertions else None


def composite(weights: dict, components: dict) -> float:
    """accuracy x (share + (1 - share) x quality). `share` is accuracy's weight over the weights of the
    components present; quality is the weighted mean of the others. A wrong answer (accuracy 0) scores 0
    whatever its process, format or coherence; a right one keeps `share` of its reward for the answer alone
    and earns the rest by how it was reached."""
    used = {k: float(weights.get(k, 0.0)) for k in components}
    if sum(used.values()) <= 0:
        used = {k: 1.0 for k in components}
    share = used.get("accuracy", 0.0) / sum(used.values())
    others = {k: w for k, w in used.items() if k != "accuracy"}
    quality = sum(w * components[k] for k, w in others.items()) / sum(others.values()) if sum(others.values()) else 1.0
    return components.get("accuracy", 0.0) * (share + (1.0 - share) * quality)


# -- accuracy ---------------------------------------------------------------------------------------------------

def field_scores(fields: dict[str, AccuracyRule], answer: dict | None, truth: dict) -> dict[str, float]:
    """Each rubric answer field's match score in [0, 1] (all 0 without a submission)."""
    answer = answer or {}
    return {name: match_field(rule, answer.get(name), truth.get(name)) if answer else 0.0
            for name, rule in fields.items()}


def weighted_accuracy(fields: dict[str, AccuracyRule], scores: dict[str, float]) -> float:
    total = sum(rule.weight for rule in fields.values())
    return sum(rule.weight * scores.get(name, 0.0) for name, rule in fields.items()) / total if total else 0.0


def accuracy(fields: dict[str, AccuracyRule], answer: dict | None, truth: dict) -> float:
    if answer is None or not fields:
        return 0.0
    return weighted_accuracy(fields, field_scores(fields, answer, truth))


def match_field(rule: AccuracyRule, given, expected) -> float:
    if given is None:
        return 0.0
    kind = rule.match
    if kind == "numeric":
        return float(_numeric(given, expected, rule.tolerance, rule.rel_tolerance))
    if kind == "set_f1":
        return _f1(_as_set(given), _as_set(expected))
    if kind == "token_f1":
        return _f1(_tokens(given), _tokens(expected))
    if kind == "option":
        return float(_option(given) == _option(expected))
    if kind == "checklist":
        return checklist_grade(rule, given).score
    return float(comparable(given) == comparable(expected))


def checklist_details(fields: dict[str, AccuracyRule], answer: dict | None) -> dict:
    """Why each checklist field scored what it did (the findings earned, unsupported, denied; the missing
    sections), for the episode's info: an author tuning a checklist reads it there."""
    if not answer:
        return {}
    out = {}
    for name, rule in fields.items():
        if rule.checklist is not None and answer.get(name) is not None:
            grade = checklist_grade(rule, answer[name])
            out[name] = {"score": grade.score, "earned": grade.earned, "unsupported": grade.unsupported,
                         "denied": grade.denied, "missing_sections": grade.missing_sections}
    return out


def checklist_grade(rule: AccuracyRule, text) -> checklist.Grade:
    """A `match: checklist` field's grade (medgym.runtime.checklist), with this task's findings."""
    spec = rule.checklist
    findings = tuple(checklist.Finding(i.finding, i.phrases, bool(i.present), i.section, i.weight, i.if_absent)
                     for i in spec.items)
    return checklist.grade(checklist.Checklist(findings, spec.sections, spec.unsupported, spec.denied,
                                               spec.missing_section), text)



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
    return {str(comparable(v)).strip() for v in items if str(v).strip()}


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

def process(spec: Process, episode: Episode, domain: Domain) -> float:
    """Required items satisfied, minus costs counted per item (see the module docstring). Knowledge-base
    searches are never unneeded: looking up evidence has no clinical cost (repeating one still counts)."""
    calls = _process_calls(episode, domain)
    checks = [met for _, met in process_items(spec, episode, domain)]
    base = (sum(checks) / len(checks)) if checks else float(episode.submitted)
    limit = spec.max_calls or max(6, 2 * len(episode.task.reference))
    over = max(0, len(calls) - limit)
    return min(1.0, max(0.0, base - _item_costs(spec, episode, domain, calls) - OVER_LIMIT_COST * over))


def process_items(spec: Process, episode: Episode, domain: Domain) -> list[tuple[str, bool]]:
    """Each required process item, named for a reader, and whether the episode met it."""
    calls = _process_calls(episode, domain)
    names = [c.name for c in calls]
    items = [(_requirement_text(r), any(call_matches(c, r.tool, r.args) for c in calls)) for r in spec.require]
    items += [(f"{name} before the answer", bool(episode.submitted and name in names))
              for name in spec.before_answer]
    items += [(f"{a} before {b}", a in names and b in names and names.index(a) < names.index(b))
              for a, b in spec.order]
    return items


def _process_calls(episode: Episode, domain: Domain) -> list[CallRecord]:
    return [c for c in episode.calls if c.ok and not _is_submit(domain, c.name)]


def _is_submit(domain: Domain, name: str) -> bool:
    """A submission (a phased domain has one per phase) is the decision, not part of the process."""
    tool = domain.tools.get(name)
    return tool is not None and tool.kind == "submit"


def _requirement_text(requirement: Requirement) -> str:
    args = requirement.args
    return requirement.tool + (" " + " ".join(f"{k}={v}" for k, v in args.items()) if args else "")


def _item_costs(spec: Process, episode: Episode, domain: Domain, calls: list[CallRecord]) -> float:
    needed = _needed_items(spec, episode.task, domain)
    relevant = _relevant_tools(spec, episode.task)
    seen: set = set()
    cost = 0.0
    for call in calls:
        tool = domain.tools.get(call.name)
        if tool is None:
            continue
        for item in call_items(call, tool):
            if item in seen:
                cost += REPEAT_COST
            elif item not in needed and tool.kind != "kb_search":
                cost += _unneeded_cost(tool, relevant)
            seen.add(item)
    return cost


def _unneeded_cost(tool, relevant: set) -> float:
    if tool.kind == "action":
        return UNNEEDED_ORDER_COST
    if tool.kind == "simulator":
        return UNNEEDED_QUESTION_COST
    return 0.0 if tool.name in relevant else IRRELEVANT_TOOL_COST


def call_items(call: CallRecord, tool) -> list[tuple]:
    """What one call asks for, item by item: each test of an order with a selection, the topic of a history
    question, else the call itself; id arguments left out (there is one patient), values normalised."""
    if tool.kind == "simulator":
        return [(call.name, "topic", call.topic)]
    args = {k: v for k, v in call.arguments.items() if k not in tool.id_params}
    select = tool.spec.select if tool.kind == "action" else None
    if select and select in args:
        rest = canonical({k: v for k, v in args.items() if k != select})
        return [(call.name, rest, canonical(v)) for v in _listed(args[select])] or [(call.name, rest)]
    return [(call.name, canonical(args))]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


_NEEDED: dict[tuple, frozenset] = {}


def _needed_items(spec: Process, task: Task, domain: Domain) -> frozenset:
    """Items of the reference solution's calls and of the process requirements' named arguments (computed
    once per task: a build is read-only while episodes run)."""
    key = (str(domain.build.path), domain.build.manifest.spec_hash, domain.name, task.task_id)
    if key not in _NEEDED:
        _NEEDED[key] = frozenset(_reference_items(spec, task, domain))
    return _NEEDED[key]


def _reference_items(spec: Process, task: Task, domain: Domain) -> set:
    needed = set()
    for step in task.reference:
        tool = domain.tools.get(step.name)
        if tool is None:
            continue
        topic = domain.topic_matcher.match(str(step.arguments.get(tool.spec.question_param, ""))) \
            if tool.kind == "simulator" else None
        needed.update(call_items(CallRecord(0, step.name, step.arguments, True, topic=topic), tool))
    for requirement in spec.require:
        tool = domain.tools.get(requirement.tool)
        args = requirement.args
        if tool is None:
            continue
        if tool.kind == "simulator" and "topic" in args:
            needed.add((tool.name, "topic", args["topic"]))
        elif tool.kind == "action":  # what a requirement names is needed, item by item
            needed.update(call_items(CallRecord(0, tool.name, args, True), tool))
    return needed


def _relevant_tools(spec: Process, task: Task) -> set[str]:
    names = {step.name for step in task.reference}
    names |= {r.tool for r in spec.require} | set(spec.before_answer)
    names |= {name for pair in spec.order for name in pair}
    return names


# -- format -----------------------------------------------------------------------------------------------------

def format_score(episode: Episode) -> float:
    valid = episode.valid_calls
    attempts = valid + episode.invalid_calls + episode.no_call_turns
    if not attempts:
        return 0.0
    return valid / attempts * (1.0 if episode.submitted else 0.5)


# -- predicates: safety, coherence, assertions ------------------------------------------------------------------

def _violations(domain: Domain, episode: Episode, view: EpisodeView, rubric: Rubric, errors: list,
                domain_rules: bool = True) -> list[SafetyRule]:
    found = []
    if not episode.submitted:
        found.append(NO_DECISION)
    elif not _observed_something(domain, episode):
        found.append(PREMATURE_CLOSURE)
    for rule in (domain.spec.safety if domain_rules else ()) + rubric.safety:
        if rule.needs_answer and not episode.submitted:
            continue
        if _holds(domain, rule.predicate, view, errors):
            found.append(rule)
    return found


def _observed_something(domain: Domain, episode: Episode) -> bool:
    return any(c.ok and not _is_submit(domain, c.name) for c in episode.calls)


def _coherence(domain: Domain, episode: Episode, view: EpisodeView, checks: list, fields: dict[str, float],
               errors: list) -> float:
    """Mean of the applicable checks. A check that reads answer fields counts only as far as those fields
    are right: an answer that agrees with a calculator fed the wrong inputs is coherent and wrong, and
    coherence must never pay for a wrong answer."""
    if not episode.submitted:
        return 0.0
    applicable = [c for c in checks if c.when is None or _holds(domain, c.when, view, errors)]
    if not applicable:
        return float(_observed_something(domain, episode))
    total = 0.0
    for check in applicable:
        if _holds(domain, check.predicate, view, errors):
            total += min((fields[f] for f in check.answer_fields if f in fields), default=1.0)
    return total / len(applicable)


def _assertions(domain: Domain, episode: Episode, view: EpisodeView, checks, errors: list) -> float:
    applicable = [c for c in checks if episode.submitted or not c.needs_answer]
    if not applicable:
        return 0.0
    return sum(_holds(domain, c.predicate, view, errors) for c in applicable) / len(applicable)


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


# One scorer per declared component (medgym.dsl.components), in its order; None: absent from this episode.
_SCORERS = component_table({
    "accuracy": lambda s: weighted_accuracy(s.rubric.accuracy, s.fields),
    "process": lambda s: process(s.rubric.process, s.episode, s.domain),
    "safety": _safety,
    "format": lambda s: format_score(s.episode),
    "coherence": lambda s: _coherence(s.domain, s.episode, s.view, s.rubric.coherence, s.fields, s.errors),
    "assertion": _assertion,
}, "medgym.runtime.rewards._SCORERS")
