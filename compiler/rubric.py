"""The rubric of a family (and the domain-wide safety rules): accuracy fields, process rules and each
safety, coherence and assertion rule checked into a generated predicate.
"""
from __future__ import annotations

from dataclasses import dataclass

from medgym.compiler.checklist import Checklists
from medgym.compiler.context import CompiledFamily, DomainContext
from medgym.compiler.generate import condition
from medgym.compiler.pycode import PyGen
from medgym.dsl import models as m
from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl.types import RecordT

def predicate_names(name: str) -> str:
    return {"answer": "v.answer", "truth": "v.truth", "case": "v.case", "clock": "v.clock",
            "scenario": "v.vars['scenario']",
            "phase": "v.phase"}.get(name, f"v.vars[{name!r}]")


def episode_scope(ctx: DomainContext, base: Scope) -> Scope:
    return ctx.scope({**base.names, "answer": ctx.answer}, episode=True, tool_outputs=ctx.tool_outputs(),
                     tool_names=frozenset(ctx.tools), used=base.used)


@dataclass
class Predicate:
    """A checked rubric expression as generated code, with what the reward engine needs to know about it."""

    name: str
    code: str
    needs_answer: bool  # judged only when there is an answer (it reads one, or it judges no action)
    answer_fields: list[str]  # the answer fields it reads (coherence counts only as far as they are right)


_ACTION_FUNCS = {"called", "calls", "result"}


def predicate(name: str, text: str, marks, loc, scope: Scope, errors) -> Predicate | None:
    """Check one rubric expression (a bool) and generate its def.

    A rule that reads the answer, or that judges no action at all (`not observed("vitals.hr")` judges the
    basis of a decision), is about the decision and only applies once one was submitted."""
    checked = condition(text, marks, loc, scope, errors, "this rule")
    if checked is None:
        return None
    expr, typed = checked
    nodes = list(n.walk(expr))
    fields = sorted({node.name for node in nodes
                     if isinstance(node, n.Attr) and isinstance(node.obj, n.Name) and node.obj.id == "answer"})
    reads_answer = any(isinstance(node, n.Name) and node.id == "answer" for node in nodes)
    judges_actions = any(isinstance(node, n.Call) and node.func in _ACTION_FUNCS for node in nodes)
    body = PyGen(predicate_names, lenient=True)(typed)
    return Predicate(name, f"def {name}(v):\n    return bool({body})", reads_answer or not judges_actions, fields)


def safety_rule(rule, made: Predicate) -> dict:
    needs_answer = made.needs_answer if rule.needs_answer is None else rule.needs_answer
    return {"id": rule.id, "severity": rule.severity.value, "category": rule.category, "message": rule.message,
            "predicate": made.name, "needs_answer": needs_answer}


def compile_rubric(fam, marks, scope: Scope, ctx: DomainContext, out: CompiledFamily, lets, errors):
    rubric = fam.rubric
    escope = episode_scope(ctx, scope)
    truth_t: RecordT = scope.names["truth"]
    accuracy = {}
    checklists = Checklists(fam.family)
    for key, spec in rubric.accuracy.items():
        spec = m.AccuracyField(match=spec) if isinstance(spec, str) else spec
        loc = ("rubric", "accuracy", key)
        if ctx.answer.field(key) is None:
            errors.append(SpecError(f"'{key}' is not a field of {ctx.submit['name']}", marks.at(loc, key=True),
                                    did_you_mean(key, [k for k, _ in ctx.answer.fields])))
        if truth_t.field(key) is None:
            errors.append(SpecError(f"'{key}' has no truth value", marks.at(loc, key=True),
                                    did_you_mean(key, [k for k, _ in truth_t.fields]) or "add it under truth:"))
        accuracy[key] = checklists.rule(key, spec, ctx.answer.field(key), marks, loc, scope, errors)
    if not accuracy:
        errors.append(SpecError("rubric.accuracy needs at least one answer field", marks.at(("rubric", "accuracy"))))
    if checklists.code():
        out.code.append(checklists.code())
    for index, name in enumerate(rubric.process.before_answer):
        if name not in ctx.tools:
            errors.append(SpecError(f"unknown tool '{name}'", marks.at(("rubric", "process", "before_answer", index)),
                                    did_you_mean(name, ctx.tools)))
    for index, pair in enumerate(rubric.process.order):
        for name in pair:
            if name not in ctx.tools:
                errors.append(SpecError(f"unknown tool '{name}'", marks.at(("rubric", "process", "order", index)),
                                        did_you_mean(name, ctx.tools)))
    data = {"accuracy": accuracy,
            "process": {"before_answer": list(rubric.process.before_answer), "order": [list(p) for p in rubric.process.order],
                        "max_calls": rubric.process.max_calls},
            "safety": [], "coherence": [], "assertions": []}
    for index, rule in enumerate(rubric.safety):
        made = predicate(f"{fam.family}__{rule.id}", rule.when, marks, ("rubric", "safety", index, "when"), escope, errors)
        if made:
            out.predicates[made.name] = made.code
            data["safety"].append(safety_rule(rule, made))
    for index, item in enumerate(rubric.coherence):
        loc = ("rubric", "coherence", index)
        made = predicate(f"{fam.family}__{item.id}", item.check, marks, loc + ("check",), escope, errors)
        when = predicate(f"{fam.family}__{item.id}__when", item.when, marks, loc + ("when",), escope, errors) if item.when else None
        if made:
            out.predicates[made.name] = made.code
            if when:
                out.predicates[when.name] = when.code
            data["coherence"].append({"id": item.id, "predicate": made.name, "when": when.name if when else None,
                                      "needs_answer": made.needs_answer or bool(when and when.needs_answer),
                                      "answer_fields": made.answer_fields})
    for index, item in enumerate(rubric.assertions):
        made = predicate(f"{fam.family}__{item.id}", item.check, marks, ("rubric", "assertions", index, "check"), escope, errors)
        if made:
            out.predicates[made.name] = made.code
            data["assertions"].append({"id": item.id, "predicate": made.name, "needs_answer": made.needs_answer})
    ids = [r["id"] for r in data["safety"] + data["coherence"] + data["assertions"]]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        errors.append(SpecError(f"rubric rule ids must be unique: {', '.join(sorted(duplicates))}", marks.at(("rubric",))))
    out.rubric = data
