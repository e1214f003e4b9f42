"""Phased families: an episode in stages, each with its tools, its submission and its rubric.

A phased family is compiled as one family whose reference is the phases' steps in order and whose rubric
is the last phase's (so everything that checks a reference, the information-flow check included, walks
the whole episode: what an earlier phase revealed stays known). This module checks what only phases have
(which tools each offers, what each hands forward and the next receives), compiles the other phases'
rubrics beside the family's, and attaches each task's phases when it is materialised.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from medgym.compiler.context import CompiledFamily, DomainContext
from medgym.compiler.generate import process_code, process_name
from medgym.compiler.materialize import _same, jsonable
from medgym.compiler.rubric import compile_rubric
from medgym.compiler.tools import answer_type
from medgym.dsl.checker import Scope
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl.types import RecordT


@dataclass
class CompiledPhase:
    name: str
    tools: tuple[str, ...]  # what the phase offers, its submit tool last
    submit: str
    receives: tuple[str, ...]
    hand_forward: tuple[str, ...]
    weight: float
    family: str  # the generated names' stem: `<family>__<phase>`, or the family's own for the last phase
    rubric: dict | None  # None for the last phase: its rubric is the family's


class PhaseMarks:
    """A phased family's marks: the flattened reference and the family rubric point into their phases."""

    def __init__(self, marks, model):
        self._marks = marks
        self._where = [(i, j) for i, phase in enumerate(model.phases) for j in range(len(phase.reference))]
        self._last = len(model.phases) - 1

    def _map(self, loc) -> tuple:
        loc = tuple(loc)
        if loc[:1] == ("reference",):
            if len(loc) > 1 and isinstance(loc[1], int) and 0 <= loc[1] < len(self._where):
                i, j = self._where[loc[1]]
                return ("phases", i, "reference", j) + loc[2:]
            return ("phases",)
        if loc[:1] == ("rubric",):
            return ("phases", self._last) + loc
        return loc

    def at(self, loc, key: bool = False):
        return self._marks.at(self._map(loc), key)

    def expression_origin(self, loc):
        return self._marks.expression_origin(self._map(loc))

    def __getattr__(self, name):
        return getattr(self._marks, name)


class _Prefixed:
    """Marks of one phase: its rubric's locations are under `phases[i]`."""

    def __init__(self, marks, prefix: tuple):
        self._marks, self._prefix = marks, prefix

    def at(self, loc, key: bool = False):
        return self._marks.at(self._prefix + tuple(loc), key)

    def expression_origin(self, loc):
        return self._marks.expression_origin(self._prefix + tuple(loc))

    def __getattr__(self, name):
        return getattr(self._marks, name)


@dataclass(frozen=True)
class _PhaseFamily:
    """What compile_rubric and process_code read of a family, for one phase."""

    family: str
    rubric: object


def unwrap(marks):
    return marks._marks if isinstance(marks, PhaseMarks) else marks


# ---------------------------------------------------------------- checks
def check_phases(model, marks, ctx: DomainContext, errors: list[SpecError]) -> None:
    """What only phases have: their names, tools, submissions, steps, and hand-forward chain."""
    phases = model.phases
    if len(phases) < 2:
        errors.append(SpecError("a phased family needs at least two phases", marks.at(("phases",))))
    names = [p.name for p in phases]
    for i, phase in enumerate(phases):
        at = ("phases", i)
        if names.index(phase.name) != i:
            errors.append(SpecError(f"phase '{phase.name}' is declared twice", marks.at(at + ("name",))))
        _check_submit(phase, i == len(phases) - 1, marks, at, ctx, errors)
        for k, name in enumerate(phase.tools):
            tool = ctx.tools.get(name)
            if tool is None:
                errors.append(SpecError(f"unknown tool '{name}'", marks.at(at + ("tools", k)), did_you_mean(name, ctx.tools)))
            elif tool["kind"] == "submit":
                errors.append(SpecError(f"'{name}' is a submit tool: a phase names its one submission under submit:",
                                        marks.at(at + ("tools", k))))
        _check_steps(phase, marks, at, errors)
        _check_hand_forward(phases, i, marks, ctx, errors)


def _check_submit(phase, last: bool, marks, at, ctx: DomainContext, errors) -> None:
    tool = ctx.tools.get(phase.submit)
    final = ctx.submit["name"]
    if tool is None or tool["kind"] != "submit":
        submits = [n for n, t in ctx.tools.items() if t["kind"] == "submit"]
        errors.append(SpecError(f"submit: '{phase.submit}' is not a submit tool", marks.at(at + ("submit",)),
                                did_you_mean(phase.submit, submits)))
    elif last and phase.submit != final:
        errors.append(SpecError(f"the last phase ends the episode: its submit must be the domain's submit tool "
                                f"'{final}', not '{phase.submit}'", marks.at(at + ("submit",))))
    elif not last and phase.submit == final:
        errors.append(SpecError(f"'{final}' ends the episode: only the last phase may submit with it",
                                marks.at(at + ("submit",)), "declare a submit tool for this phase in tools.yaml"))


def _check_steps(phase, marks, at, errors) -> None:
    offered = set(phase.tools) | {phase.submit}
    for j, step in enumerate(phase.reference):
        name = next((k for k in step if k != "when"), None)
        if name is not None and name not in offered:
            errors.append(SpecError(f"reference step uses '{name}', which phase '{phase.name}' does not offer",
                                    marks.at(at + ("reference", j, name), key=True),
                                    f"add it to the phase's tools: ({', '.join(sorted(offered))})"))
    last = phase.reference[-1]
    if next((k for k in last if k != "when"), None) != phase.submit or "when" in last:
        errors.append(SpecError(f"phase '{phase.name}' must end its reference with an unconditional {phase.submit}",
                                marks.at(at + ("reference", len(phase.reference) - 1))))


def _check_hand_forward(phases, i: int, marks, ctx: DomainContext, errors) -> None:
    phase, at = phases[i], ("phases", i)
    tool = ctx.tools.get(phase.submit)
    fields = tool["parameters"]["properties"] if tool else {}
    after = phases[i + 1] if i + 1 < len(phases) else None
    for k, name in enumerate(phase.hand_forward):
        where = marks.at(at + ("hand_forward", k))
        if tool and name not in fields:
            errors.append(SpecError(f"'{name}' is not a field of {phase.submit}", where, did_you_mean(name, fields)))
        elif after is None:
            errors.append(SpecError(f"the last phase has no next phase to hand '{name}' to", where))
        elif name not in after.receives:
            errors.append(SpecError(f"phase '{phase.name}' hands '{name}' forward, but the next phase '{after.name}' "
                                    f"does not declare it under receives:", where,
                                    f"add receives: [{name}] to phase '{after.name}'"))
    before = phases[i - 1] if i else None
    for k, name in enumerate(phase.receives):
        if before is None or name not in before.hand_forward:
            given = f"phase '{before.name}' does not hand it forward" if before else "no phase comes before it"
            errors.append(SpecError(f"phase '{phase.name}' receives '{name}', but {given}",
                                    marks.at(at + ("receives", k))))


# ---------------------------------------------------------------- rubrics and code
def phase_scope(model, ctx: DomainContext, scope: Scope, upto: int) -> Scope:
    """`scope` plus `phase.<name>.<field>`: the fields the phases before `upto` handed forward."""
    groups = []
    for phase in model.phases[:upto]:
        tool = ctx.tools.get(phase.submit)
        if tool is None or not phase.hand_forward:
            continue
        answer = answer_type(tool)
        fields = tuple((f, answer.field(f)) for f in phase.hand_forward if answer.field(f) is not None)
        groups.append((phase.name, RecordT(f"phase {phase.name}", fields)))
    return scope.child(phase=RecordT("phase", tuple(groups)))


def compile_phases(model, marks, scope: Scope, ctx: DomainContext, out: CompiledFamily, lets, errors) -> None:
    """Every phase but the last gets its rubric (answer fields: its submit tool's) and its process code; the
    last phase's rubric is the family's, compiled by the caller with `phase_scope`."""
    base = unwrap(marks)
    last = len(model.phases) - 1
    for i, phase in enumerate(model.phases):
        tools = tuple(dict.fromkeys([*phase.tools, phase.submit]))
        made = CompiledPhase(phase.name, tools, phase.submit, tuple(phase.receives), tuple(phase.hand_forward),
                             phase.weight, model.family, None)
        if i < last:
            sub = _PhaseFamily(f"{model.family}__{phase.name}", phase.rubric)
            sub_marks = _Prefixed(base, ("phases", i))
            sub_ctx = dataclasses.replace(ctx, submit=ctx.tools[phase.submit], answer=answer_type(ctx.tools[phase.submit]))
            holder = CompiledFamily(model, sub_marks, [])
            compile_rubric(sub, sub_marks, phase_scope(model, ctx, scope, i), sub_ctx, holder, lets, errors)
            out.predicates.update(holder.predicates)
            out.code.append(process_code(sub, sub_marks, scope, sub_ctx, errors))
            made.family, made.rubric = sub.family, holder.rubric
        out.phases.append(made)


# ---------------------------------------------------------------- tasks
def split_steps(steps: list, submits: list[str]) -> list[list]:
    """A phased reference cut into its phases: each phase's steps end with its submit tool."""
    out, i = [[] for _ in submits], 0
    for step in steps:
        name = step["name"] if isinstance(step, dict) else step.name
        out[min(i, len(submits) - 1)].append(step)
        if i < len(submits) and name == submits[i]:
            i += 1
    return out


def phase_tasks(fam: CompiledFamily, module, tasks: list[dict], errors: list[SpecError]) -> list[dict]:
    """`tasks` with their phases attached; a task whose phase submission misses its truth is dropped."""
    if not fam.phases:
        return tasks
    model, base = fam.model, unwrap(fam.marks)
    submits = [p.submit for p in fam.phases]
    out, reported = [], set()
    for task in tasks:
        parts = split_steps(task["reference"], submits)
        phases, ok = [], True
        for i, (phase, steps) in enumerate(zip(fam.phases, parts)):
            rubric = task["rubric"]
            if phase.rubric is not None:
                required = getattr(module, process_name(phase.family))(task["vars"], task["case"], task["truth"])
                rubric = {**phase.rubric, "process": {**phase.rubric["process"], "require": jsonable(required)}}
                ok = ok and _reaches_truth(task, phase, steps, rubric, base, model, i, errors, reported)
            phases.append({"name": phase.name, "tools": list(phase.tools), "submit": phase.submit,
                           "receives": list(phase.receives), "hand_forward": list(phase.hand_forward),
                           "weight": phase.weight, "rubric": rubric})
        if ok:
            out.append({**task, "phases": phases})
    return out


def _reaches_truth(task, phase, steps, rubric, marks, model, i, errors, reported) -> bool:
    submitted = steps[-1]["arguments"] if steps else {}
    for key in rubric["accuracy"]:
        want, got = task["truth"].get(key), submitted.get(key)
        if _same(want, got):
            continue
        if (phase.name, key) not in reported:
            reported.add((phase.name, key))
            where = marks.at(("phases", i, "reference", len(model.phases[i].reference) - 1))
            errors.append(SpecError(f"phase '{phase.name}' of the reference does not reach the ground truth: task "
                                    f"{task['index']} submits {key} = {got!r} but the truth is {want!r}", where))
        return False
    return True
