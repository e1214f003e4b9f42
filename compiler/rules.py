"""What a domain and its families share when rubric expressions are compiled: the domain context (record,
tools, instruments, answer type), the episode scope, and one generated predicate per rule.

Both `domain.py` (domain-wide safety rules) and `families.py` (each family's rubric) use these, so neither
imports the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medgym.compiler.pycode import PyGen
from medgym.compiler.records import Record
from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope, Signature, check
from medgym.dsl.errors import SpecError
from medgym.dsl.types import AnyT, BoolT, RecordT, Type


@dataclass
class DomainContext:
    name: str
    record: Record
    tools: dict[str, dict]
    instruments: dict[str, Signature]
    submit: dict
    answer: RecordT
    topics: set[str]
    history_topics: dict = field(default_factory=dict)  # topic -> {ask, description}, for matching questions

    def tool_outputs(self) -> dict[str, Type]:
        return {name: self.instruments[t["instrument"]].output for name, t in self.tools.items()
                if t["kind"] == "instrument" and t.get("instrument") in self.instruments}


def condition(text: str, marks, loc, scope: Scope, errors, what: str):
    """Parse and type-check a true-or-false expression: (expression, typed expression), or None after
    recording the error."""
    from medgym.dsl.parser import parse_expression

    origin = marks.expression_origin(loc)
    try:
        expr = parse_expression(text, origin)
        typed, t = check(expr, scope, origin)
    except SpecError as exc:
        errors.append(exc)
        return None
    if not isinstance(t, (BoolT, AnyT)):
        errors.append(SpecError(f"{what} must be true or false, but it is {t.describe()}", origin))
        return None
    return expr, typed


def predicate_names(name: str) -> str:
    return {"answer": "v.answer", "truth": "v.truth", "case": "v.case", "clock": "v.clock",
            "scenario": "v.vars['scenario']"}.get(name, f"v.vars[{name!r}]")


def episode_scope(ctx: DomainContext, base: Scope) -> Scope:
    return Scope({**base.names, "answer": ctx.answer}, dict(ctx.instruments), episode=True,
                 tool_outputs=ctx.tool_outputs(), tool_names=frozenset(ctx.tools))


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
