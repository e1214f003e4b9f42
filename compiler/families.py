"""Task families: plan how each scenario's values are computed, type-check everything, generate code.

A family becomes generated Python: one generator per scenario (sampling `let` and `case` values and
computing `truth` in dependency order), one function for the reference solution's arguments, one for the
process requirements' arguments, and one predicate per rubric rule. `materialize.py` runs them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medgym.compiler.expressions import Source, literal_fits, parse_source, source_type
from medgym.compiler.pycode import PyGen
from medgym.compiler.records import Record
from medgym.compiler.rules import DomainContext, episode_scope, predicate, safety_rule  # noqa: F401  (DomainContext: re-exported)
from medgym.compiler.rules import condition as _condition
from medgym.dsl import models as m
from medgym.dsl import nodes as n
from medgym.dsl.checker import Checker, Scope, check
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.types import ANY, BOOL, TEXT, AnyT, BoolT, EnumT, ListT, NumT, RecordT, TextT, Type

DEFAULT_SCENARIO = "default"


@dataclass
class Step:
    target: tuple  # ("let", name) | ("case", "a.b") | ("truth", name)
    source: Source
    typed: object  # typed expression, typed distribution params, or None for literals
    type: Type


@dataclass
class Plan:
    name: str
    weight: float
    steps: list[Step]
    history: dict[str, list[tuple[str, Position]]]
    let_types: dict[str, Type]
    truth_types: dict[str, Type]


@dataclass
class CompiledFamily:
    model: object
    marks: object
    plans: list[Plan]
    code: list[str] = field(default_factory=list)  # generated task-generation functions (generate.py)
    predicates: dict[str, str] = field(default_factory=dict)  # rubric predicate name -> its def (env.py)
    rubric: dict = field(default_factory=dict)  # rubric data with predicate names, per task
    reference_positions: list[Position] = field(default_factory=list)
    count: int = 1
    seed: int = 0

    @property
    def name(self) -> str:
        return self.model.family

    def instruments_used(self, known) -> set[str]:
        """The instruments its case, lets and truths call (for the instrument catalogue's "where used")."""
        found = set()
        for plan in self.plans:
            for step in plan.steps:
                typed = step.typed if isinstance(step.typed, (list, tuple)) else [step.typed]
                for expr in typed:
                    if isinstance(expr, n.Node):
                        found |= {node.func for node in n.walk(expr) if isinstance(node, n.Call) and node.func in known}
        return found


# ---------------------------------------------------------------- entry point
def compile_family(loaded, ctx: DomainContext, errors: list[SpecError]) -> CompiledFamily | None:
    fam = loaded.model
    marks = loaded.marks
    before = len(errors)
    if fam.domain != ctx.name:
        errors.append(SpecError(f"family is in domains/{ctx.name}/ but says domain '{fam.domain}'", marks.at(("domain",))))
        return None
    scenarios = dict(getattr(fam, "scenarios", {}) or {}) or {DEFAULT_SCENARIO: None}
    names = tuple(scenarios)
    plans = []
    for name, scenario in scenarios.items():
        plan = _plan(fam, marks, name, scenario, names, ctx, errors)
        if plan is not None:
            plans.append(plan)
    if len(errors) > before or not plans:
        return None
    out = CompiledFamily(fam, marks, plans, count=getattr(fam, "count", 1), seed=getattr(fam, "seed", 0))
    scope, common_lets = _family_scope(out, ctx, names, errors)
    if len(errors) > before:
        return None
    for plan in plans:
        out.code.append(_generator_code(fam.family, plan, ctx))
    out.code.append(_reference_code(fam, marks, scope, ctx, out, errors))
    out.code.append(_process_code(fam, marks, scope, ctx, errors))
    _rubric(fam, marks, scope, ctx, out, common_lets, errors)
    return out if len(errors) == before else None


# ---------------------------------------------------------------- planning
def _sources(fam, marks, scenario_name, scenario, ctx, errors) -> dict[tuple, Source]:
    """Every value source of one scenario, later layers overriding earlier ones."""
    out: dict[tuple, Source] = {}
    for path, info in ctx.record.fields.items():
        if info.spec.normal is not None:
            _add(out, ("case", path), info.spec.normal, info_marks(ctx, path), ("normal",), errors)
    layers = [((), fam)] + ([(("scenarios", scenario_name), scenario)] if scenario is not None else [])
    for prefix, layer in layers:
        for name, value in layer.let.items():
            _add(out, ("let", name), value, marks, prefix + ("let", name), errors)
        for key, value in _flatten_case(layer.case, ctx.record, marks, prefix + ("case",), errors):
            _add(out, ("case", key[0]), value, marks, key[1], errors)
        for name, value in layer.truth.items():
            _add(out, ("truth", name), value, marks, prefix + ("truth", name), errors)
    return out


class _FieldMarks:
    """Marks for a record field's `normal`, which lives in record.yaml."""

    def __init__(self, info):
        self.info = info

    def at(self, loc, key=False):
        return self.info.pos

    def expression_origin(self, loc):
        return (self.info.normal_pos or self.info.pos).offset(0)


def info_marks(ctx, path):
    return _FieldMarks(ctx.record.fields[path])


def _add(out, target, value, marks, loc, errors):
    try:
        out[target] = parse_source(value, marks, loc)
    except SpecError as exc:
        errors.append(exc)


def _flatten_case(case: dict, record: Record, marks, loc: tuple, errors, prefix: str = ""):
    """Dotted or nested `case:` keys -> (field path, yaml loc) pairs."""
    from medgym.compiler.expressions import is_distribution

    for key, value in case.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        here = loc + (key,)
        if path in record.groups and isinstance(value, dict) and not is_distribution(value):
            yield from _flatten_case(value, record, marks, here, errors, path)
        elif path in record.fields:
            yield (path, here), value
        else:
            known = list(record.fields) + [g for g in record.groups if g]
            errors.append(SpecError(f"unknown record field '{path}'", marks.at(here, key=True), did_you_mean(path, known)))


def _plan(fam, marks, name, scenario, names, ctx, errors) -> Plan | None:
    before = len(errors)
    sources = _sources(fam, marks, name, scenario, ctx, errors)
    for path in ctx.record.fields:
        if ("case", path) not in sources:
            errors.append(SpecError(f"record field '{path}' has no value in scenario '{name}'", marks.at(("case",)),
                                    f"set it in the family's case: or give it a `normal:` in record.yaml"))
    if len(errors) > before:
        return None
    order = _topological(sources, ctx, errors)
    if order is None:
        return None
    plan = Plan(name, scenario.weight if scenario is not None else 1.0, [], {}, {}, {})
    for target in order:
        source = sources[target]
        scope = Scope({"case": ctx.record.type, "scenario": EnumT(names),
                       "truth": RecordT("truth", tuple(plan.truth_types.items())), **plan.let_types},
                      dict(ctx.instruments))
        try:
            t, typed = source_type(source, scope)
            t, typed = _fit(target, source, t, typed, ctx, scope)
        except SpecError as exc:
            errors.append(exc)
            t, typed = ANY, None  # later values that use this one are checked without cascading errors
        plan.steps.append(Step(target, source, typed, t))
        if target[0] == "let":
            plan.let_types[target[1]] = t
        elif target[0] == "truth":
            plan.truth_types[target[1]] = t
    plan.history = _history(fam, marks, name, scenario, ctx, errors)
    return plan if len(errors) == before else None


def _fit(target, source: Source, t: Type, typed, ctx: DomainContext, scope: Scope):
    """Check a value against the record field it fills (converting units); lets and truths keep their type."""
    if target[0] != "case":
        return t, typed
    info = ctx.record.fields[target[1]]
    want = info.type
    where = f"record field '{target[1]}'"
    if source.kind == "literal":
        if not literal_fits(want, source.raw):
            raise SpecError(f"{source.raw!r} is not a valid {want.describe()} for {where}", source.pos)
        return want, None
    if source.kind == "expr":
        checker = Checker(scope, source.origin)
        return want, checker.coerce(typed, t, want, source.expr, where)
    if source.dist == "choice":
        values = source.params[0]
        bad = [v for v in values if not literal_fits(want, list(v) if isinstance(v, tuple) else v)]
        if bad:
            raise SpecError(f"choice value {bad[0]!r} is not a valid {want.describe()} for {where}", source.pos)
        return want, typed
    if isinstance(want, BoolT) != (source.dist == "bernoulli") or isinstance(want, (TextT, EnumT, ListT)):
        raise SpecError(f"a {source.dist} distribution cannot fill {where} ({want.describe()})", source.pos)
    return want, typed


def _dependencies(source: Source, ctx: DomainContext) -> set[tuple]:
    exprs = [source.expr] if source.kind == "expr" else [p[0] for p in source.params] if source.kind == "dist" and source.dist != "choice" else []
    deps: set[tuple] = set()
    for expr in exprs:
        _collect(expr, ctx, deps)
    return deps


def _collect(node, ctx: DomainContext, deps: set[tuple]) -> None:
    # An attribute chain rooted at a name (`case.vitals.hr`) depends on that path only: walking into it
    # would see the bare `case` and make every case field a dependency, which reports false cycles.
    chain = _chain(node) if isinstance(node, n.Attr) else None
    if chain and chain[0] == "case":
        deps |= _case_paths(".".join(chain[1:]), ctx)
        return
    if chain and chain[0] == "truth":
        deps.add(("truth", chain[1]))
        return
    if chain:
        deps.add(("let", chain[0]))
        return
    if isinstance(node, n.Name):
        deps.add(("let", node.id))
        if node.id == "case":
            deps |= _case_paths("", ctx)
        return
    for child in n.children(node):
        _collect(child, ctx, deps)


def _chain(node) -> list[str] | None:
    parts = []
    while isinstance(node, n.Attr):
        parts.append(node.name)
        node = node.obj
    if not isinstance(node, n.Name):
        return None
    return [node.id] + parts[::-1]


def _case_paths(prefix: str, ctx: DomainContext) -> set[tuple]:
    if not prefix:
        return {("case", p) for p in ctx.record.fields}
    for cut in range(prefix.count(".") + 1, 0, -1):
        head = ".".join(prefix.split(".")[:cut])
        if head in ctx.record.fields:
            return {("case", head)}
        if head in ctx.record.groups:
            return {("case", p) for p in ctx.record.fields if p.startswith(head + ".")}
    return set()


def _topological(sources: dict[tuple, Source], ctx, errors) -> list[tuple] | None:
    deps = {t: {d for d in _dependencies(s, ctx) if d in sources and d != t} for t, s in sources.items()}
    order, done, visiting = [], set(), []

    def visit(target) -> bool:
        if target in done:
            return True
        if target in visiting:
            cycle = visiting[visiting.index(target):] + [target]
            shown = " -> ".join(_show_target(c) for c in cycle)
            errors.append(SpecError(f"values depend on each other in a cycle: {shown}", sources[target].pos))
            return False
        visiting.append(target)
        ok = all(visit(d) for d in sorted(deps[target]))
        visiting.pop()
        done.add(target)
        order.append(target)
        return ok

    for target in sorted(sources, key=lambda t: (t[0] != "case", t)):
        if not visit(target):
            return None
    return order


def _show_target(target) -> str:
    return f"case.{target[1]}" if target[0] == "case" else (f"truth.{target[1]}" if target[0] == "truth" else target[1])


def _history(fam, marks, name, scenario, ctx, errors) -> dict:
    out = {}
    layers = [((), fam)] + ([(("scenarios", name), scenario)] if scenario is not None else [])
    for prefix, layer in layers:
        for topic, answers in layer.history.items():
            loc = prefix + ("history", topic)
            if topic not in ctx.topics:
                errors.append(SpecError(f"unknown history topic '{topic}'", marks.at(loc, key=True),
                                        did_you_mean(topic, ctx.topics) or "declare it in domain.yaml history_topics"))
                continue
            items = answers if isinstance(answers, list) else [answers]
            out[topic] = [(text, marks.at(loc + ((i,) if isinstance(answers, list) else ()))) for i, text in enumerate(items)]
    return out


# ---------------------------------------------------------------- family-level scope
def _family_scope(out: CompiledFamily, ctx: DomainContext, names, errors) -> tuple[Scope, dict]:
    """Lets and truths available to the reference and the rubric: those every scenario defines."""
    lets = _common([p.let_types for p in out.plans])
    truths = _common([p.truth_types for p in out.plans])
    scope = Scope({"case": ctx.record.type, "scenario": EnumT(names), "truth": RecordT("truth", tuple(truths.items())), **lets},
                  dict(ctx.instruments))
    return scope, lets


def _common(maps: list[dict[str, Type]]) -> dict[str, Type]:
    keys = set(maps[0]).intersection(*maps[1:]) if maps else set()
    out = {}
    for key in sorted(keys):
        types = [mp[key] for mp in maps]
        first = types[0]
        if all(t == first for t in types):
            out[key] = first
        elif all(isinstance(t, NumT) for t in types):
            out[key] = NumT(first.unit, all(t.is_int for t in types))
        elif all(isinstance(t, (EnumT, TextT)) for t in types):
            out[key] = EnumT(tuple(dict.fromkeys(v for t in types for v in getattr(t, "values", ())))) \
                if all(isinstance(t, EnumT) for t in types) else TEXT
        else:
            out[key] = ANY
    return out


# ---------------------------------------------------------------- code generation
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


def _generator_code(family: str, plan: Plan, ctx: DomainContext) -> str:
    gen = PyGen(generator_names)
    lines = [f"def {generator_name(family, plan.name)}(rng, case_id):",
             f"    C = {_skeleton(ctx)}",
             "    C['id'] = case_id",
             f"    V = {{'scenario': {plan.name!r}}}",
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
    params = ", ".join(gen(p) for p in step.typed)
    raw = f"_rt.sample_{source.dist}(rng, {params})"
    if source.dist == "bernoulli":
        return raw
    digits = source.round if source.round is not None else digits
    return f"_rt.finish({raw}, {source.clip!r}, {digits!r}, {integer or source.dist == 'int'})"


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


def _reference_code(fam, marks, scope, ctx: DomainContext, out: CompiledFamily, errors) -> str:
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
    checked = _condition(when, marks, loc, scope, errors, "`when:`")
    if checked is None:
        return f"        {item},"
    return f"        *([{item}] if {gen(checked[1])} else []),"


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


def _process_code(fam, marks, scope, ctx, errors) -> str:
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


# ---------------------------------------------------------------- rubric
def _rubric(fam, marks, scope: Scope, ctx: DomainContext, out: CompiledFamily, lets, errors):
    rubric = fam.rubric
    escope = episode_scope(ctx, scope)
    truth_t: RecordT = scope.names["truth"]
    accuracy = {}
    for key, spec in rubric.accuracy.items():
        spec = m.AccuracyField(match=spec) if isinstance(spec, str) else spec
        loc = ("rubric", "accuracy", key)
        if ctx.answer.field(key) is None:
            errors.append(SpecError(f"'{key}' is not a field of {ctx.submit['name']}", marks.at(loc, key=True),
                                    did_you_mean(key, [k for k, _ in ctx.answer.fields])))
        if truth_t.field(key) is None:
            errors.append(SpecError(f"'{key}' has no truth value", marks.at(loc, key=True),
                                    did_you_mean(key, [k for k, _ in truth_t.fields]) or "add it under truth:"))
        accuracy[key] = spec.model_dump()
    if not accuracy:
        errors.append(SpecError("rubric.accuracy needs at least one answer field", marks.at(("rubric", "accuracy"))))
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
