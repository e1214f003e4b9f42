"""Planning a family: every value source of each scenario, in dependency order, type-checked.

A plan lists the steps that compute one scenario's `let`, `case` and `truth` values (schema defaults, then
the family, then the scenario); `generate.py` turns it into code.
"""
from __future__ import annotations

from medgym.compiler.context import DEFAULT_SCENARIO, CompiledFamily, DomainContext, Plan, Step  # noqa: F401
from medgym.compiler.expressions import Source, literal_fits, parse_source, source_type
from medgym.compiler.records import Record
from medgym.dsl import nodes as n
from medgym.dsl.checker import Checker, Scope
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl import units as u
from medgym.dsl.types import (ANY, SERIES_TIME_UNIT, TEXT, AnyT, BoolT, EnumT, ListT, NumT, RecordT, SeriesT, TextT, Type,
                              series_problem)

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
        if self.info.marks is not None and len(loc) > 1:  # inside the value: the key at fault
            return self.info.marks.at(self.info.loc + tuple(loc), key=key)
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


def plan_scenario(fam, marks, name, scenario, names, ctx, errors, used: set | None = None) -> Plan | None:
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
        scope = ctx.scope({"case": ctx.record.type, "scenario": EnumT(names),
                           "truth": RecordT("truth", tuple(plan.truth_types.items())), **plan.let_types}, used=used)
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
    if len(errors) == before:
        final = ctx.scope({"case": ctx.record.type, "scenario": EnumT(names),
                           "truth": RecordT("truth", tuple(plan.truth_types.items())), **plan.let_types})
        _check_overrides(fam, marks, name, names, final, errors)
    return plan if len(errors) == before else None


def _check_overrides(fam, marks, name: str, names: tuple, scope: Scope, errors) -> None:
    """A let or truth that overrides an inherited one (from a base or the domain defaults) keeps its type."""
    for loc, replaced in getattr(marks, "overridden", {}).items():
        if loc[0] == "scenarios" and loc[1] != name or loc[0] != "scenarios" and name != names[0]:
            continue  # a scenario's own values in its plan; the family's once
        value = _value_at(fam, loc)
        try:
            mine = source_type(parse_source(value, marks, loc), scope)[0]
        except SpecError:
            continue  # reported where the value is planned
        for old_value, old_marks, old_loc in replaced:
            try:
                theirs = source_type(parse_source(old_value, old_marks, old_loc), scope)[0]
            except SpecError:
                continue  # the inherited value does not fit this family at all: nothing to keep
            if not _same_kind(mine, theirs):
                what = f"{loc[-2]} '{loc[-1]}'"
                errors.append(SpecError(f"{what} is {mine.describe()}, but it overrides {theirs.describe()} "
                                        f"inherited from {old_marks.at(old_loc)}", marks.at(loc),
                                        "an override keeps the type it replaces; give the new value another name"))


def _value_at(fam, loc: tuple):
    if loc[0] == "scenarios":
        return getattr(fam.scenarios[loc[1]], loc[2])[loc[3]]
    return getattr(fam, loc[0])[loc[1]]


def _same_kind(a: Type, b: Type) -> bool:
    """Two types an override may swap: equal, or numbers of one unit (an int where a number was)."""
    if isinstance(a, AnyT) or isinstance(b, AnyT):
        return True
    if isinstance(a, NumT) and isinstance(b, NumT):
        return a.unit == b.unit
    if isinstance(a, (EnumT, TextT)) and isinstance(b, (EnumT, TextT)):
        return True  # a literal word and a computed text are both text
    return a.describe() == b.describe()


def _fit(target, source: Source, t: Type, typed, ctx: DomainContext, scope: Scope):
    """Check a value against the record field it fills (converting units); lets and truths keep their type."""
    if target[0] != "case":
        if source.kind == "dist" and source.dist == "series":
            raise SpecError(f"a series generator fills a record field of type series(...), not {target[0]} "
                            f"'{target[1]}'", source.pos, "declare the field in record.yaml and set it under case:")
        return t, typed
    info = ctx.record.fields[target[1]]
    want = info.type
    where = f"record field '{target[1]}'"
    if source.kind == "literal" and isinstance(want, SeriesT):
        problem = series_problem(want, source.raw)
        if problem:
            raise SpecError(f"{where}: {problem}", source.pos)
        return want, None
    if source.kind == "literal":
        if not literal_fits(want, source.raw):
            raise SpecError(f"{source.raw!r} is not a valid {want.describe()} for {where}", source.pos)
        return want, None
    if source.kind == "expr":
        checker = Checker(scope, source.origin)
        return want, checker.coerce(typed, t, want, source.expr, where)
    if source.dist == "series" or isinstance(want, SeriesT):
        return want, _fit_series(source, typed, want, where, scope)
    if source.dist == "choice":
        values = source.params[0]
        bad = [v for v in values if not literal_fits(want, list(v) if isinstance(v, tuple) else v)]
        if bad:
            raise SpecError(f"choice value {bad[0]!r} is not a valid {want.describe()} for {where}", source.pos)
        return want, typed
    if isinstance(want, BoolT) != (source.dist == "bernoulli") or isinstance(want, (TextT, EnumT, ListT)):
        raise SpecError(f"a {source.dist} distribution cannot fill {where} ({want.describe()})", source.pos)
    return want, typed


def _fit_series(source: Source, typed, want, where: str, scope: Scope) -> tuple:
    """A series generator's parameters in the field's units: times in hours, values in the field's unit."""
    from medgym.compiler.expressions import SERIES_TIMES

    if not isinstance(want, SeriesT):
        raise SpecError(f"a series cannot fill {where} ({want.describe()})", source.pos)
    if source.dist != "series":
        raise SpecError(f"{where} is {want.describe()}: fill it with {{series: {{every: ..., over: ..., "
                        f"baseline: ...}}}} or a list of {{time, value}} rows", source.pos)
    out = []
    for key, (expr, t), (node, origin) in zip(source.keys, typed, source.params):
        checker = Checker(scope, origin)
        if isinstance(t, AnyT):  # a value whose own error is reported where it is defined
            out.append(expr)
        elif key in SERIES_TIMES or key.endswith(".at"):
            if t.unit is None or u.lookup(t.unit).dimension != "time":
                shown = "a number without a unit" if t.unit is None else u.describe(u.lookup(t.unit))
                raise SpecError(f"series {key} must be a time (e.g. `4 h`), but it is {shown}", origin)
            out.append(checker.convert(expr, t, NumT(SERIES_TIME_UNIT), node, f"series {key}"))
        else:
            out.append(checker.convert(expr, t, NumT(want.item.unit, analyte=want.item.analyte), node,
                                       f"series {key} of {where}"))
    return tuple(out)


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
def family_scope(out: CompiledFamily, ctx: DomainContext, names, errors) -> tuple[Scope, dict]:
    """Lets and truths available to the reference and the rubric: those every scenario defines."""
    lets = _common([p.let_types for p in out.plans])
    truths = _common([p.truth_types for p in out.plans])
    scope = ctx.scope({"case": ctx.record.type, "scenario": EnumT(names), "truth": RecordT("truth", tuple(truths.items())),
                       **lets}, used=out.used)
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

