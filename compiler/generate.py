"""Code generation for a family: one generator per scenario, the reference solution and the process
requirements as Python functions (materialize.py runs them), with every argument checked against its tool.
"""
from __future__ import annotations

from medgym.compiler.context import CompiledFamily, DomainContext, Plan, Step
from medgym.compiler.expressions import literal_fits, parse_source
from medgym.compiler.pycode import PyGen
from medgym.dsl.checker import Checker, Scope, check
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl.types import AnyT, BoolT, ListT, NumT, Type

def generator_name(family: str, scenario: str) -> str:
    return f"gen__{family}__{scenario}"


def generator_names(name: str) -> str:
    """How generated task code names a root name: the case C, the truths T, everything else in V."""
    return {"case": "C", "truth": "T", "scenario": "V['scenario']"}.get(name, f"V[{name!r}]")


def _skeleton(ctx: DomainContext) -> str:
    def build(prefix):
        children = ctx.record.groups.get(prefix, [])
        parts = []
        for child in children:
            path = f"{prefix}.{child}" if prefix else child
            if path in ctx.record.groups:
                parts.append(f"{child!r}: {build(path)}")
        return "{" + ", ".join(parts) + "}"
    return build("")


def generator_code(family: str, plan: Plan, ctx: DomainContext) -> str:
    gen = PyGen(generator_names)
    lines = [f"def {generator_name(family, plan.name)}(rng, case_id, item=None):",
             f"    C = {_skeleton(ctx)}",
             "    C['id'] = case_id",
             f"    V = {{'scenario': {plan.name!r}}}",
             "    if item is not None:",  # a dataset-backed family's item: `item.question` is V['item']['question']
             "        V['item'] = item",
             "    T = {}"]
    for step in plan.steps:
        value = _value_code(step, gen, ctx)
        kind, key = step.target
        if kind == "case":
            *groups, leaf = key.split(".")
            target = "C" + "".join(f"[{g!r}]" for g in groups) + f"[{leaf!r}]"
        else:
            target = f"{'T' if kind == 'truth' else 'V'}[{key!r}]"
        lines.append(f"    {target} = {value}  # {step.source.pos}")
    lines.append("    return V, C, T")
    return "\n".join(lines)


def _value_code(step: Step, gen: PyGen, ctx: DomainContext) -> str:
    source = step.source
    info = ctx.record.fields.get(step.target[1]) if step.target[0] == "case" else None
    digits = info.spec.round if info else (source.round if source.kind == "dist" else None)
    integer = isinstance(step.type, NumT) and step.type.is_int and step.target[0] == "case"
    if source.kind == "literal":
        return repr(source.raw)
    if source.kind == "expr":
        code = gen(step.typed)
        if isinstance(step.type, NumT) and (digits is not None or integer):
            return f"_rt.finish({code}, None, {digits!r}, {integer})"
        return code
    if source.dist == "choice":
        values, weights = source.params
        return f"_rt.sample_choice(rng, {values!r}, {weights!r})"
    if source.dist == "series":
        return _series_code(step, gen, digits)
    params = ", ".join(gen(p) for p in step.typed)
    raw = f"_rt.sample_{source.dist}(rng, {params})"
    if source.dist == "bernoulli":
        return raw
    digits = source.round if source.round is not None else digits
    return f"_rt.finish({raw}, {source.clip!r}, {digits!r}, {integer or source.dist == 'int'})"


def _series_code(step: Step, gen: PyGen, digits) -> str:
    source = step.source
    params = {k: gen(e) for k, e in zip(source.keys, step.typed) if not k.startswith("events.")}
    events = [gen(e) for k, e in zip(source.keys, step.typed) if k.startswith("events.")]
    pairs = "".join(f"({events[i]}, {events[i + 1]}), " for i in range(0, len(events), 2))
    digits = source.round if source.round is not None else digits
    mapping = "{" + ", ".join(f"{k!r}: {v}" for k, v in params.items()) + "}"
    return f"_rt.sample_series(rng, {mapping}, ({pairs}), {source.clip!r}, {digits!r}, {step.type.item.is_int})"


def _value(value, marks, loc, scope: Scope, gen: PyGen, errors, want: Type | None = None, what: str = "") -> str | None:
    """A literal or =expression argument, checked (against `want` when given) and rendered as Python."""
    try:
        source = parse_source(value, marks, loc)
        if source.kind == "dist":
            raise SpecError("a distribution is not allowed here", source.pos)
        if source.kind == "literal":
            if want is not None and not isinstance(want, AnyT) and not literal_fits(want, value):
                raise SpecError(f"{what}: {value!r} is not {want.describe()}", source.pos)
            return repr(value)
        typed, t = check(source.expr, scope, source.origin)
        if want is not None:
            typed = Checker(scope, source.origin).coerce(typed, t, want, source.expr, what)
        return gen(typed)
    except SpecError as exc:
        errors.append(exc)
        return None


def reference_name(family: str) -> str:
    return f"reference__{family}"


def process_name(family: str) -> str:
    return f"process__{family}"


def reference_code(fam, marks, scope, ctx: DomainContext, out: CompiledFamily, errors) -> str:
    """`reference__<family>(V, C, T)` -> [(spec step index, tool, arguments)], conditional steps included
    only when their `when:` holds (the index maps a materialised step back to its line for errors)."""
    gen = PyGen(generator_names)
    lines = [f"def {reference_name(fam.family)}(V, C, T):", "    return ["]
    for index, step in enumerate(fam.reference):
        tool_name = next(k for k in step if k != "when")
        loc = ("reference", index)
        out.reference_positions.append(marks.at(loc))
        tool = ctx.tools.get(tool_name)
        if tool is None:
            errors.append(SpecError(f"unknown tool '{tool_name}' in the reference solution", marks.at(loc + (tool_name,), key=True),
                                    did_you_mean(tool_name, ctx.tools)))
            continue
        rendered = _arguments(tool, step[tool_name] or {}, marks, loc + (tool_name,), scope, gen, errors)
        item = f"({index}, {tool_name!r}, {{{rendered}}})"
        lines.append(_conditional(item, step.get("when"), marks, loc + ("when",), scope, gen, errors))
    last = fam.reference[-1]
    if next(k for k in last if k != "when") != ctx.submit["name"] or "when" in last:
        errors.append(SpecError(f"the reference solution must end with an unconditional {ctx.submit['name']}",
                                marks.at(("reference", len(fam.reference) - 1))))
    lines.append("    ]")
    return "\n".join(lines)


def _conditional(item: str, when: str | None, marks, loc, scope, gen, errors) -> str:
    """One list entry of generated code: `item,` or, with a condition, `*([item] if cond else []),`."""
    if when is None:
        return f"        {item},"
    checked = condition(when, marks, loc, scope, errors, "`when:`")
    if checked is None:
        return f"        {item},"
    return f"        *([{item}] if {gen(checked[1])} else []),"


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


def _arguments(tool: dict, args: dict, marks, loc, scope, gen, errors, extra: dict | None = None) -> str:
    from medgym.compiler.tools import _schema_type

    properties = {**tool["parameters"]["properties"], **(extra or {})}
    parts = []
    for key, value in args.items():
        if key not in properties:
            errors.append(SpecError(f"'{tool['name']}' has no parameter '{key}'", marks.at(loc + (key,), key=True),
                                    did_you_mean(key, properties)))
            continue
        want = _schema_type(properties[key])
        code = _value(value, marks, loc + (key,), scope, gen, errors, want if not isinstance(want, ListT) else None,
                      f"argument '{key}' of {tool['name']}")
        if code is not None:
            parts.append(f"{key!r}: {code}")
    return ", ".join(parts)


def process_code(fam, marks, scope, ctx, errors) -> str:
    gen = PyGen(generator_names)
    lines = [f"def {process_name(fam.family)}(V, C, T):", "    return ["]
    for index, item in enumerate(fam.rubric.process.require):
        loc = ("rubric", "process", "require", index)
        name, args = (item, {}) if isinstance(item, str) else (item.tool, item.args)
        tool = ctx.tools.get(name)
        if tool is None:
            errors.append(SpecError(f"unknown tool '{name}'", marks.at(loc), did_you_mean(name, ctx.tools)))
            continue
        extra = {"topic": {"type": "string", "enum": sorted(ctx.topics)}} if tool["kind"] == "simulator" else None
        rendered = _arguments(tool, args, marks, loc + ("args",), scope, gen, errors, extra)
        when = None if isinstance(item, str) else item.when
        lines.append(_conditional(f"{{'tool': {name!r}, 'args': {{{rendered}}}}}", when, marks, loc + ("when",),
                                  scope, gen, errors))
    lines.append("    ]")
    return "\n".join(lines)

