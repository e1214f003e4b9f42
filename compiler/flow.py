"""Honest solvability: the reference solution may use only what an agent could have seen.

A reference solution that passes a case value straight into a tool proves nothing if no agent could have
observed that value. For every materialised task this module follows each value a reference step uses (its
arguments and its `when:`), and each argument value the rubric's process `require` names, back through the
scenario's `let` and `truth` definitions, and checks it was known when the step ran:

- shown by the ticket (what its template reads), or revealed by an earlier reference step: a lookup's
  `from` subtree (its `select`ed items; with `revealed_only`, only what an action ordered before), or what
  the answer to a question's topic reads in this scenario (nothing when the scenario has no answer);
- a declared constant: a literal argument, let or truth (a scenario's literal truth is the judgement the
  task asks for), or `scenario`;
- computed from known values (an instrument call through its inputs); with the task's values, `and`, `or`,
  `not` and `if` need only the parts that decide them, and a let or truth that comes out the same whatever
  its unknown inputs are (tried at their limits) is known.

Generated texts and categorical case fields show what they are computed from; a threshold (`x >= 3`)
shows only its side. Sampled lets are latent. The walk (what each step reveals) is computed once per
scenario and steps taken; task values are used only for the uses that fail without them. Each unknown value
is reported once per family, at its first use, with the calls that would reveal it. reads.py extracts what
expressions and templates read; docs/spec-language.md ("Honest solvability") states the rules for authors.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field

from medgym.compiler.expressions import expression_origin, is_expression
from medgym.compiler.context import CompiledFamily, DomainContext
from medgym.compiler.generate import generator_names, reference_name
from medgym.compiler.pycode import PyGen
from medgym.compiler.reads import Read, Target, expression_reads, leaves, name_chain, template_reads, text_reads
from medgym.dsl import nodes as n
from medgym.dsl.errors import SpecError
from medgym.dsl.topics import TopicMatcher
from medgym.dsl.types import BoolT, EnumT, NumT, SeriesT


@dataclass
class Use:
    """A value slot the policy fills: a reference argument, a step's `when:`, or a required argument."""

    what: str  # the error's sentence with {value} for the value, e.g. "the reference passes {value} to x as 'y'"
    reads: list[Read]
    origin: object = None  # () -> where the expression text starts (found only for an error)


@dataclass
class RefStep:
    index: int
    tool: str
    when: Use | None
    args: list[Use]


@dataclass
class Required:
    tool: str
    conditional: bool
    args: list[Use]


@dataclass
class Scenario:
    """What one scenario defines (value sources) and what its texts reveal."""

    name: str
    sources: dict  # target -> its Source in this scenario
    ticket: tuple  # the reads of the ticket template
    answers: dict  # topic -> the reads its answer reveals, whichever wording is drawn
    fields: tuple  # the record's leaf paths
    record: object  # the domain's Record (field types and limits)
    types: dict  # target -> its Type
    typed: dict  # target -> its typed expression (expression sources)
    module: object = None  # the generated module (its instrument functions), to evaluate sub-expressions
    env: dict | None = None  # the values of the task being checked, when decisions need them
    reads: dict = field(default_factory=dict)  # id(node) -> (node, what it reads), cached
    code: dict = field(default_factory=dict)  # id(node) -> (node, compiled code)
    judged: frozenset | None = None  # a dataset family: the item fields its truths read (None: no items)


@dataclass
class Walk:
    """The agent's knowledge while the reference plays: values seen, items ordered."""

    seen: set = field(default_factory=set)
    ordered: set = field(default_factory=set)


# ---------------------------------------------------------------- entry point
def check_flow(families: list[CompiledFamily], ctx: DomainContext, module, tasks: list[dict]) -> list[SpecError]:
    """Located errors for every unobservable value the families' reference solutions use."""
    errors: list[SpecError] = []
    by_family: dict[str, list[dict]] = {}
    for task in tasks:
        by_family.setdefault(task["family"], []).append(task)
    matcher = TopicMatcher(ctx.history_topics)
    for fam in families:
        if by_family.get(fam.name):
            errors.extend(_check_family(fam, ctx, module, matcher, by_family[fam.name]))
    return errors


def _check_family(fam: CompiledFamily, ctx: DomainContext, module, matcher, tasks) -> list[SpecError]:
    steps = [_ref_step(fam, ctx, i, step) for i, step in enumerate(fam.model.reference)]
    required = [_required(fam, ctx, i, item) for i, item in enumerate(fam.model.rubric.process.require)]
    scenarios = {plan.name: _scenario(fam, ctx, plan, module) for plan in fam.plans}
    reference = getattr(module, reference_name(fam.name))
    reported: dict = {}  # the blocking value -> its first error
    failing: dict = {}  # (scenario, steps taken) -> the uses unknown without task values, and what was seen
    for task in tasks:
        taken = {i: (name, args) for i, name, args in reference(task["vars"], task["case"], task["truth"])}
        key = (task["scenario"], json.dumps({i: [name, _reveal_key(ctx.tools[name], args)] for i, (name, args) in taken.items()},
                                            sort_keys=True, default=str))
        scen = scenarios[task["scenario"]]
        if key not in failing:
            failing[key] = _play(steps, required, taken, scen, ctx, matcher)
        if not failing[key]:
            continue
        # Again with this task's values: `a and b` is known when a is known and false, whatever b is.
        scen.env = {"C": task["case"], "T": task["truth"], "V": task["vars"]}
        walks: dict = {}
        for use, seen in failing[key]:
            walk, memo = walks.setdefault(id(seen), (Walk(set(seen)), {}))
            for found, chain in _unknown([use], walk, scen, memo):
                if chain[-1] not in reported:
                    reported[chain[-1]] = _error(found, chain, scen, task, len(scenarios) > 1, ctx, walk)
        scen.env = None
    return list(reported.values())


def _reveal_key(tool: dict, args: dict):
    """The arguments that decide what a call reveals (cache key)."""
    param = tool.get("select") or tool.get("question_param")
    chosen = args.get(param) if param else None
    window = _window_args(tool, args)
    return chosen if window is None else [chosen, window]


def _window_args(tool: dict, args: dict) -> tuple | None:
    """A windowed series lookup's (since, until) in hours and last_n (mirrors runtime/executor.py `_windowed`);
    None when the call shows whole series."""
    scale = tool.get("window") or {}
    values = {k: args.get(k) for k in scale}
    if all(v is None for v in values.values()):
        return None
    hours = tuple(None if values.get(k) is None else float(values[k]) * scale[k] for k in ("since", "until"))
    return hours + (values.get("last_n"),)


# ---------------------------------------------------------------- playing the reference
def _play(steps, required, taken, scen: Scenario, ctx: DomainContext, matcher) -> list[tuple[Use, frozenset]]:
    """The uses whose value is unknown when they are needed (judged without task values), each with what
    had been seen by then."""
    walk = Walk()
    _reveal_reads(scen.ticket, walk, scen)
    found: list = []

    def check(uses):
        memo: dict = {}
        bad = [use for use in uses if _unknown([use], walk, scen, memo)]
        if bad:
            seen = frozenset(walk.seen)
            found.extend((use, seen) for use in bad)

    pending = list(required)
    for step in steps:
        if step.when is not None:
            check([step.when])
        if step.index not in taken:
            continue
        name, args = taken[step.index]
        check(step.args)
        # A required call's arguments must be known when the reference makes that call.
        check([u for r in pending if r.tool == name for u in r.args])
        pending = [r for r in pending if r.tool != name]
        _reveal(ctx.tools[name], args, walk, scen, ctx, matcher)
    # A required call the reference never makes (in this task) is checked against all it saw, unless
    # its `when:` may have excluded it here.
    check([u for r in pending if not r.conditional for u in r.args])
    return found


def _unknown(uses: list[Use], walk: Walk, scen: Scenario, memo: dict | None = None) -> list[tuple[Use, tuple]]:
    out = []
    memo = {} if memo is None else memo  # valid while `walk` does not change
    for use in uses:
        for read in use.reads:
            chain = _blocked_read(read, walk, scen, memo)
            if chain:
                out.append((Use(use.what, [read], use.origin), chain))
                break
    return out


def _blocked_read(read: Read, walk: Walk, scen: Scenario, memo: dict) -> tuple | None:
    """A read inside a threshold (`x >= 3`) is known when that comparison was shown, or when x is."""
    if read.fact is not None and _resolve(read.fact, scen) in walk.seen:
        return None
    if (read.window is not None or read.point is not None) and scen.env is not None and _rows_shown(read, walk, scen):
        return None
    return _blocker(read.target, walk, scen, memo)


def _rows_shown(read: Read, walk: Walk, scen: Scenario) -> bool:
    """Whether windowed lookups showed every row a series function reads (judged on the task's own rows)."""
    from medgym.dsl.support import row_at, rows_between, window_rows

    target = _resolve(read.target, scen)
    windows = [fact[2] for fact in walk.seen if fact[0] == "rows" and fact[1] == target]
    if not windows:
        return False
    rows = _get(target, scen.env)
    shown = {r["time"] for w in windows for r in rows_between(rows, *w)}
    read_rows = window_rows(rows, read.window) if read.point is None else [r for r in [row_at(rows, read.point)] if r]
    return all(r["time"] in shown for r in read_rows)


def _blocker(target: Target, walk: Walk, scen: Scenario, memo: dict) -> tuple | None:
    """None when `target` is known; else the chain of values from it down to the first unknown one."""
    target = _resolve(target, scen)
    if target is None or target in walk.seen:
        return None
    if target[0] == "item" and target[1] in scen.judged:
        return None  # what the truth reads of an item is the judgement the task asks for
    if target in memo:
        return memo[target]
    memo[target] = None  # the plan has no cycles; this only guards the recursion
    source = scen.sources.get(target)
    if source is None or source.kind == "dist":
        chain = (target,)  # case.id (only the ticket shows it), or a sampled value
    elif target[0] == "case":
        restated = _restated(source)
        inner = _blocker(restated, walk, scen, memo) if restated else ()
        chain = None if inner is None else (target,) + inner
    elif source.kind == "literal":
        chain = None  # a declared constant of the policy (or the scenario's judgement)
    else:
        inner, _ = _determined(scen.typed.get(target) or source.expr, walk, scen, memo)
        if inner is not None and scen.env is not None and target in scen.typed and _invariant(target, walk, scen, memo):
            inner = None
        chain = None if inner is None else (target,) + inner
    memo[target] = chain
    return chain


_UNKNOWN = object()


def _determined(node, walk: Walk, scen: Scenario, memo: dict) -> tuple:
    """(None, value) when the expression's value is known, else (blocking chain, _UNKNOWN)."""
    if scen.env is not None:
        decided = _decide(node, walk, scen, memo)
        if decided is not None:
            return decided
    for read in _node_reads(node, scen):
        chain = _blocked_read(read, walk, scen, memo)
        if chain:
            return chain, _UNKNOWN
    return None, _evaluate(node, scen)


def _decide(node, walk: Walk, scen: Scenario, memo: dict) -> tuple | None:
    """With a task's values: `a and b` is known when a is known and false, whatever b is; likewise `or`,
    `not` and the branch an `if` takes. None when the node is not one of these (or cannot be decided so)."""
    if isinstance(node, n.BoolOp):
        stops = (lambda v: v is False) if node.op == "and" else (lambda v: v is True)
        left = _determined(node.left, walk, scen, memo)
        if left[0] is None and stops(left[1]):
            return left
        right = _determined(node.right, walk, scen, memo)
        if right[0] is None and stops(right[1]):
            return right
        return (None, right[1]) if left[0] is None and right[0] is None else (left[0] or right[0], _UNKNOWN)
    if isinstance(node, n.If):
        for cond, value in node.branches:
            chain, taken = _determined(cond, walk, scen, memo)
            if chain is not None:
                return chain, _UNKNOWN
            if taken not in (True, False):
                return None  # not decidable here: every branch must be known
            if taken:
                return _determined(value, walk, scen, memo)
        return _determined(node.orelse, walk, scen, memo)
    if isinstance(node, n.Unary) and node.op == "not":
        chain, value = _determined(node.operand, walk, scen, memo)
        return chain, (not value if value in (True, False) else _UNKNOWN)
    return None


def _node_reads(node, scen: Scenario) -> list[Read]:
    if id(node) not in scen.reads:
        scen.reads[id(node)] = (node, expression_reads(node, scen.fields))  # keep node alive: ids stay unique
    return scen.reads[id(node)][1]


def _evaluate(node, scen: Scenario):
    """The true-or-false value of a typed sub-expression in the current task, or _UNKNOWN."""
    value = _run(_compiled(node, scen), scen)
    return value if isinstance(value, bool) else _UNKNOWN


def _compiled(node, scen: Scenario):
    if scen.env is None or scen.module is None:
        return None
    if id(node) not in scen.code:
        try:
            scen.code[id(node)] = (node, compile(PyGen(generator_names)(node), "<flow>", "eval"))
        except (AttributeError, KeyError, SyntaxError, TypeError):
            scen.code[id(node)] = (node, None)
    return scen.code[id(node)][1]


def _run(code, scen: Scenario):
    if code is None:
        return _UNKNOWN
    try:
        return eval(code, scen.module.__dict__, dict(scen.env))  # generated from typed nodes, like generate.py
    except (ArithmeticError, KeyError, TypeError, ValueError):
        return _UNKNOWN


# ---------------------------------------------------------------- values that do not depend on the unknown
MAX_COMBINATIONS = 256


def _invariant(target: Target, walk: Walk, scen: Scenario, memo: dict) -> bool:
    """With a task's values: whether `target` comes out the same whatever the unknown values it reads
    are (SIRS stays below 2 whatever the white cells when no vital sign is abnormal). Each unknown is tried
    at its physiological, reference and critical limits and just beyond them, its enum values, or its
    choices; only values read directly (through lets and truths, not through other case fields) vary."""
    node = _inlined(scen.typed[target], scen)
    unknown = []
    for read in _node_reads(node, scen):
        chain = _blocked_read(read, walk, scen, memo)
        if chain and (len(chain) != 1 or chain[0] not in unknown):
            if len(chain) != 1:
                return False
            unknown.append(chain[0])
    options = [_candidates(leaf, scen) for leaf in unknown]
    if not unknown or not all(options) or _product(len(o) for o in options) > MAX_COMBINATIONS:
        return False
    code = _compiled(node, scen)
    first = _run(code, scen)
    if first is _UNKNOWN:
        return False
    saved = [_get(leaf, scen.env) for leaf in unknown]
    try:
        for combo in itertools.product(*options):
            for leaf, value in zip(unknown, combo):
                _set(leaf, scen.env, value)
            if _run(code, scen) != first:
                return False
    finally:
        for leaf, value in zip(unknown, saved):
            _set(leaf, scen.env, value)
    return True


def _inlined(node, scen: Scenario):
    """The expression with every computed let and truth replaced by its definition (cached)."""
    key = ("inline", id(node))
    if key not in scen.code:
        scen.code[key] = (node, _inline(node, scen))
    return scen.code[key][1]


def _inline(node, scen: Scenario):
    target = None
    if isinstance(node, n.Name):
        target = _resolve(("name", node.id), scen)
    elif isinstance(node, n.Attr) and isinstance(node.obj, n.Name) and node.obj.id == "truth":
        target = ("truth", node.name)
    if target is not None and target in scen.typed:
        return _inline(scen.typed[target], scen)
    if isinstance(node, (n.Name, n.Attr)) and name_chain(node):
        return node
    changes = {f.name: _map(getattr(node, f.name), lambda child: _inline(child, scen))
               for f in dataclasses.fields(node) if f.name not in ("line", "col")}
    return dataclasses.replace(node, **changes)


def _map(value, function):
    if isinstance(value, n.Node):
        return function(value)
    if isinstance(value, tuple):
        return tuple(_map(v, function) for v in value)
    return value


def _candidates(leaf: Target, scen: Scenario) -> list | None:
    if leaf[0] == "let":
        source = scen.sources.get(leaf)
        if source is None or source.kind != "dist":
            return None
        if source.dist == "choice":
            return [list(v) if isinstance(v, tuple) else v for v in source.params[0]]
        return [False, True] if source.dist == "bernoulli" else None
    info = scen.record.fields.get(leaf[1]) if leaf[0] == "case" else None
    if info is None:
        return None
    if isinstance(info.type, BoolT):
        return [False, True]
    if isinstance(info.type, EnumT):
        return list(info.type.values)
    if not isinstance(info.type, NumT) or info.spec.range is None:
        return None
    return _limits(info)


def _limits(info) -> list:
    low, high = info.spec.range
    step = 1 if info.type.is_int else 10 ** -(info.spec.round if info.spec.round is not None else 2)
    points = {low, high}
    for bound in ("reference", "critical"):
        for value in getattr(info.spec, bound) or ():
            if value is not None:
                points |= {value - step, value, value + step}
    values = sorted(p for p in points if low <= p <= high)
    return [int(round(v)) for v in values] if info.type.is_int else values


def _product(sizes) -> int:
    total = 1
    for size in sizes:
        total *= size
    return total


def _get(leaf: Target, env: dict):
    if leaf[0] == "let":
        return env["V"][leaf[1]]
    node = env["C"]
    for part in leaf[1].split("."):
        node = node[part]
    return node


def _set(leaf: Target, env: dict, value) -> None:
    if leaf[0] == "let":
        env["V"][leaf[1]] = value
        return
    *groups, last = leaf[1].split(".")
    node = env["C"]
    for part in groups:
        node = node[part]
    node[last] = value


def _resolve(target: Target, scen: Scenario) -> Target | None:
    """A bare name is a let when the scenario defines one, else an enum word (a constant)."""
    if target[0] == "fact":
        inner = _resolve(target[1], scen)
        return None if inner is None else ("fact", inner) + tuple(target[2:])
    if target[0] == "item" and scen.judged is None:
        target = ("name", "item")  # no dataset here: `item` is a let's name
    if target[0] != "name":
        return target
    return ("let", target[1]) if ("let", target[1]) in scen.sources else None


def _restated(source) -> Target | None:
    """A case field defined as exactly another value (a copy or a unit conversion) is that value."""
    if source.kind != "expr":
        return None
    chain = name_chain(source.expr)
    if not chain or chain[0] == "scenario" or (chain[0] in ("case", "truth") and len(chain) == 1):
        return None
    if chain[0] == "case":
        return ("case", ".".join(chain[1:]))
    if chain[0] == "item" and len(chain) > 1:
        return ("item", chain[1])
    return ("truth", chain[1]) if chain[0] == "truth" else ("name", chain[0])


def _source_reads(target: Target, scen: Scenario) -> list[Read]:
    source = scen.sources[target]
    if source.kind != "expr":
        return []
    return _node_reads(scen.typed.get(target) or source.expr, scen)


def _reveal_reads(reads, walk: Walk, scen: Scenario) -> None:
    """Show what a text or a generated value reads: the values, or for a threshold only its side."""
    for read in reads:
        if read.fact is not None:
            fact = _resolve(read.fact, scen)
            if fact is not None:
                walk.seen.add(fact)
        else:
            _observe(read.target, walk, scen)


def _observe(target: Target, walk: Walk, scen: Scenario) -> None:
    """The agent sees `target`. A generated text, category or yes/no shows what it was generated from
    (which branch was taken names it); a generated number shows only itself, unless it restates a value."""
    target = _resolve(target, scen)
    if target is None or target in walk.seen:
        return
    walk.seen.add(target)
    source = scen.sources.get(target)
    if source is None or source.kind != "expr":
        return
    restated = _restated(source)
    if restated is not None:
        _observe(restated, walk, scen)
    elif not isinstance(scen.types.get(target), NumT):
        _reveal_reads(_source_reads(target, scen), walk, scen)


def _reveal(tool: dict, args: dict, walk: Walk, scen: Scenario, ctx: DomainContext, matcher) -> None:
    kind = tool["kind"]
    if kind == "lookup" and tool.get("path"):
        window = _window_args(tool, args)
        for target in sorted(_lookup_shows(tool, args, walk, ctx)):
            info = scen.record.fields.get(target[1])
            if window is not None and info is not None and isinstance(info.type, SeriesT):
                walk.seen.add(("rows", target, window))  # only the rows inside the window: see _rows_shown
            else:
                _observe(target, walk, scen)
    elif kind == "action" and tool.get("reveals"):
        prefix = ".".join(tool["reveals"])
        items = _items(args.get(tool["select"])) if tool.get("select") else None
        walk.ordered |= {prefix} if items is None else {f"{prefix}.{i}" for i in items}
    elif kind == "simulator":
        topic = matcher.match(str(args.get(tool.get("question_param"), "")))
        _reveal_reads(scen.answers.get(topic, ()), walk, scen)


def _lookup_shows(tool: dict, args: dict, walk: Walk, ctx: DomainContext) -> set:
    """The case fields a lookup call shows (mirrors runtime/executor.py `_lookup`)."""
    prefix = ".".join(tool["path"])
    shown = leaves(prefix, tuple(ctx.record.fields))
    if shown == (prefix,):
        return {("case", prefix)}
    if tool.get("select") and args.get(tool["select"]) is not None:
        wanted = set(_items(args[tool["select"]]))
        shown = [p for p in shown if p[len(prefix) + 1:].split(".")[0] in wanted]
    if tool.get("revealed_only"):
        shown = [p for p in shown if any(p == o or p.startswith(o + ".") for o in walk.ordered)]
    return {("case", p) for p in shown}


def _items(value) -> list:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


# ---------------------------------------------------------------- reading the spec
def _ref_step(fam: CompiledFamily, ctx: DomainContext, index: int, step: dict) -> RefStep:
    tool = next(k for k in step if k != "when")
    loc = ("reference", index)
    when = None
    if step.get("when"):
        when = Use(f"the reference decides whether to call {tool} on {{value}}", text_reads(step["when"], tuple(ctx.record.fields)),
                   lambda marks=fam.marks, at=loc + ("when",): marks.expression_origin(at))
    args = [_value_use(f"the reference passes {{value}} to {tool} as '{key}'", value, fam.marks, loc + (tool, key), ctx)
            for key, value in (step[tool] or {}).items()]
    return RefStep(index, tool, when, args)


def _required(fam: CompiledFamily, ctx: DomainContext, index: int, item) -> Required:
    if isinstance(item, str):
        return Required(item, False, [])
    loc = ("rubric", "process", "require", index, "args")
    args = [_value_use(f"the rubric requires {item.tool} with '{key}' = {{value}}", value, fam.marks, loc + (key,), ctx)
            for key, value in item.args.items()]
    return Required(item.tool, item.when is not None, args)


def _value_use(what: str, value, marks, loc, ctx: DomainContext) -> Use:
    if not is_expression(value):
        return Use(what, [], None)  # a literal argument is a declared constant of the policy
    return Use(what, text_reads(value[1:], tuple(ctx.record.fields)), lambda: expression_origin(marks, loc))


def _scenario(fam: CompiledFamily, ctx: DomainContext, plan, module) -> Scenario:
    fields = tuple(ctx.record.fields)
    answers = {}
    for topic, texts in plan.history.items():
        reads = [template_reads(_analysed(ctx, text), fields) for text, _ in texts]
        # The patient words the answer one way or another: only what every wording reads is revealed.
        answers[topic] = tuple(r for r in reads[0] if all(r in other for other in reads[1:])) if reads else ()
    scen = Scenario(plan.name, {s.target: s.source for s in plan.steps}, template_reads(_analysed(ctx, fam.model.ticket), fields),
                    answers, fields, ctx.record, {s.target: s.type for s in plan.steps},
                    {s.target: s.typed for s in plan.steps if s.source.kind == "expr" and s.typed is not None}, module)
    if fam.dataset is not None:
        scen.judged = _judged(scen)
    return scen


def _judged(scen: Scenario) -> frozenset:
    """The item fields the scenario's truths read: directly, through lets and other truths, or through a case
    field that copies one (any other case field is data the agent observes, and passes no judgement on)."""
    judged, todo, done = set(), [t for t in scen.sources if t[0] == "truth"], set()
    while todo:
        target = todo.pop()
        if target in done or target not in scen.sources:
            continue
        done.add(target)
        if target[0] == "case":
            restated = _restated(scen.sources[target])
            reads = [restated] if restated else []
        else:
            reads = [read.target for read in _source_reads(target, scen)]
        for inner in reads:
            if inner[0] == "item":
                judged.add(inner[1])
            elif inner[0] in ("truth", "case"):
                todo.append(inner)
            elif inner[0] == "name":
                todo.append(("let", inner[1]))
    return frozenset(judged)


# ---------------------------------------------------------------- the error
def _analysed(ctx: DomainContext, text: str) -> str:
    """A text with the shared macros and partials it uses: all of it is what the text can show."""
    return ctx.texts.analysis_text(text) if ctx.texts is not None else text


def _error(use: Use, chain: tuple, scen: Scenario, task: dict, many: bool, ctx: DomainContext,
           walk: Walk | None = None) -> SpecError:
    first, leaf = chain[0], chain[-1]
    if walk is not None and any(f[0] == "rows" and f[1] == leaf for f in walk.seen):
        shown = _show(first) + (f" (computed from {_show(leaf)})" if len(chain) > 1 else "")
        message = f"{use.what.format(value=shown)}, but the windowed lookups before it show only some rows of {_show(leaf)}"
        return SpecError(message, use.origin().shifted(*use.reads[0].at),
                         "widen since/until/last_n to cover every row the expression's window reads, or look the whole "
                         "series up")
    shown = _show(first) + (f" (computed from {_show(leaf)})" if len(chain) > 1 else "")
    where = f" in scenario '{scen.name}' (task {task['index']})" if many else ""
    if leaf[0] == "let":
        why = f"{_show(leaf)} is sampled, and no earlier reference step reveals it"
    elif leaf == ("case", "id"):
        why = "the ticket does not show the patient id"
    else:
        why = f"no earlier reference step reveals {_show(leaf)}"
    message = f"{use.what.format(value=shown)}, but {why}{where}"
    return SpecError(message, use.origin().shifted(*use.reads[0].at), _hint(leaf, scen, ctx, many))


def _show(target: Target) -> str:
    kind, name = target[0], target[1]
    return f"{kind}.{name}" if kind in ("case", "truth", "item") else f"let '{name}'"


def _hint(leaf: Target, scen: Scenario, ctx: DomainContext, many: bool) -> str:
    if leaf == ("case", "id"):
        return "print {{ case.id }} in the ticket"
    ways = _ways_to_see(leaf, scen, ctx)
    if ways:
        return "reveal it first: " + "; or ".join(ways)
    if leaf[0] == "item":
        return (f"show it: a case field a lookup returns (`{leaf[1]}: \"=item.{leaf[1]}\"` under the record group it "
                f"shows) or the ticket ({{{{ item.{leaf[1]} }}}}); or read it in `truth:` if it is the judgement the "
                f"task asks for")
    where = f" in scenario '{scen.name}'" if many else ""
    return (f"no tool and no history answer{where} shows it: make a lookup return it, or write a history "
            f"answer whose template reads it")


def _ways_to_see(leaf: Target, scen: Scenario, ctx: DomainContext) -> list[str]:
    """The calls that would reveal `leaf` in this scenario (each tried alone, everything ordered)."""
    ways = []
    for tool in ctx.tools.values():
        if tool["kind"] != "lookup" or not tool.get("path"):
            continue
        prefix = ".".join(tool["path"])
        walk = Walk(ordered={prefix})
        for target in sorted(_lookup_shows(tool, {}, walk, ctx)):
            _observe(target, walk, scen)
        if leaf not in walk.seen:
            continue
        if tool.get("revealed_only"):
            orderers = [t["name"] for t in ctx.tools.values() if t["kind"] == "action" and t.get("reveals")
                        and _overlaps(".".join(t["reveals"]), prefix)]
            ways.append(f"{' or '.join(orderers) or 'an order'} then {tool['name']}")
        else:
            ways.append(tool["name"])
    simulator = next((t["name"] for t in ctx.tools.values() if t["kind"] == "simulator"), None)
    for topic, reads in sorted(scen.answers.items()):
        walk = Walk()
        _reveal_reads(reads, walk, scen)
        if simulator and leaf in walk.seen:
            ways.append(f"{simulator} about '{topic}'")
    return ways


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
