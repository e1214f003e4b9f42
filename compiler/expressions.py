"""Spec values: literals, `=expressions` and distributions, parsed and typed at their YAML positions."""
from __future__ import annotations

from dataclasses import dataclass

from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope, check
from medgym.dsl.errors import Position, SpecError
from medgym.dsl.parser import parse_expression
from medgym.dsl.types import BOOL, INT, NUMBER, TEXT, AnyT, EnumT, ListT, NumT, SeriesT, Type, value_matches

DISTRIBUTIONS = {"normal": 2, "lognormal": 2, "uniform": 2, "int": 2, "choice": None, "bernoulli": 1, "series": None}
MODIFIERS = {"clip", "round"}
# A sampled series: times (start, every, over, an event's `at`) are times; baseline, noise and an event's
# `shift` are in the series' unit; trend is the series' unit per hour. Only every, over and baseline are required.
SERIES_TIMES = ("start", "every", "over")
SERIES_VALUES = ("baseline", "trend", "noise")
SERIES_DEFAULTS = {"start": 0, "trend": 0, "noise": 0}
SERIES_KEYS = SERIES_TIMES + SERIES_VALUES + ("events", "clip", "round")


@dataclass
class Source:
    """Where one value comes from: a literal, an expression or a distribution, with its position."""

    kind: str  # literal | expr | dist
    raw: object
    pos: Position
    expr: n.Expr | None = None  # parsed (untyped) expression for kind == expr
    origin: Position | None = None  # where the expression text starts (after the `=`)
    dist: str | None = None
    params: tuple = ()  # distribution parameters: (node, origin) pairs; choice: (values, weights)
    clip: tuple | None = None
    round: int | None = None
    keys: tuple = ()  # a series: the name of each parameter in `params` (start, ..., events.0.at, events.0.shift)


def is_expression(value) -> bool:
    return isinstance(value, str) and value.startswith("=")


def is_distribution(value) -> bool:
    return isinstance(value, dict) and len(set(value) & set(DISTRIBUTIONS)) == 1 and set(value) <= set(DISTRIBUTIONS) | MODIFIERS


def parse_source(value, marks, loc: tuple) -> Source:
    pos = marks.at(loc)
    if is_expression(value):
        origin = expression_origin(marks, loc)
        return Source("expr", value, pos, expr=parse_expression(value[1:], origin), origin=origin)
    if is_distribution(value):
        return _distribution(value, marks, loc)
    if isinstance(value, dict):
        raise SpecError("a mapping here must be a distribution: one of " + ", ".join(DISTRIBUTIONS)
                        + " (with optional clip/round)", pos)
    return Source("literal", value, pos)


def _distribution(value: dict, marks, loc) -> Source:
    kind = next(k for k in value if k in DISTRIBUTIONS)
    raw = value[kind]
    pos = marks.at(loc + (kind,))
    if kind == "series":
        if set(value) != {"series"}:
            raise SpecError("a series keeps clip and round inside it: {series: {..., clip: [low, high]}}", pos)
        return _series(raw, marks, loc + ("series",))
    if kind == "choice":
        if isinstance(raw, dict):
            params = (tuple(raw), tuple(raw.values()))
            if not all(isinstance(w, (int, float)) and w >= 0 for w in params[1]) or not any(params[1]):
                raise SpecError("choice weights must be non-negative numbers, not all zero", pos)
        elif isinstance(raw, list) and raw:
            params = (tuple(_freeze(v) for v in raw), None)
        else:
            raise SpecError("choice needs a non-empty list of values or a mapping value -> weight", pos)
    else:
        arity = DISTRIBUTIONS[kind]
        items = raw if isinstance(raw, list) else [raw]
        if len(items) != arity:
            raise SpecError(f"{kind} takes {arity} parameter{'s' if arity > 1 else ''}", pos)
        params = tuple(_param(v, marks, loc + (kind, i) if isinstance(raw, list) else loc + (kind,))
                       for i, v in enumerate(items))
    clip, digits = value.get("clip"), value.get("round")
    if clip is not None and not (isinstance(clip, list) and len(clip) == 2 and all(map(_is_number, clip))
                                 and clip[0] <= clip[1]):
        raise SpecError("clip is [low, high], two numbers", marks.at(loc + ("clip",)))
    if digits is not None and not (isinstance(digits, int) and not isinstance(digits, bool) and 0 <= digits <= 6):
        raise SpecError("round is a number of decimals, 0 to 6", marks.at(loc + ("round",)))
    return Source("dist", value, pos, dist=kind, params=params, clip=tuple(clip) if clip else None, round=digits)


def _series(raw, marks, loc) -> Source:
    pos = marks.at(loc)
    if not isinstance(raw, dict):
        raise SpecError("series takes a mapping: {every: 4 h, over: 72 h, baseline: ..., trend: ..., noise: ...}", pos)
    for key in raw:
        if key not in SERIES_KEYS:
            raise SpecError(f"a series has no '{key}'", marks.at(loc + (key,), key=True),
                            f"known: {', '.join(SERIES_KEYS)}")
    missing = [k for k in ("every", "over", "baseline") if k not in raw]
    if missing:
        raise SpecError(f"a series needs {', '.join(missing)}", pos)
    keys, params = [], []
    for key in SERIES_TIMES + SERIES_VALUES:
        if key in raw:
            keys.append(key)
            params.append(_quantity(raw[key], marks, loc + (key,)))
        else:
            keys.append(key)
            params.append((n.Num(SERIES_DEFAULTS[key], "h" if key in SERIES_TIMES else None, True), pos))
    events = raw.get("events", [])
    if not isinstance(events, list):
        raise SpecError("events is a list of {at: time, shift: change}", marks.at(loc + ("events",)))
    for i, event in enumerate(events):
        here = loc + ("events", i)
        if not isinstance(event, dict) or set(event) != {"at", "shift"}:
            raise SpecError("an event is {at: time, shift: change}, e.g. {at: 24 h, shift: 1.2}", marks.at(here))
        for part in ("at", "shift"):
            keys.append(f"events.{i}.{part}")
            params.append(_quantity(event[part], marks, here + (part,)))
    clip, digits = raw.get("clip"), raw.get("round")
    if clip is not None and not (isinstance(clip, list) and len(clip) == 2 and all(map(_is_number, clip))
                                 and clip[0] <= clip[1]):
        raise SpecError("clip is [low, high], two numbers", marks.at(loc + ("clip",)))
    if digits is not None and not (isinstance(digits, int) and not isinstance(digits, bool) and 0 <= digits <= 6):
        raise SpecError("round is a number of decimals, 0 to 6", marks.at(loc + ("round",)))
    return Source("dist", {"series": raw}, pos, dist="series", params=tuple(params),
                  clip=tuple(clip) if clip else None, round=digits, keys=tuple(keys))


def _quantity(value, marks, loc):
    """A series parameter: a number, a number with its unit (`4 h`, `0.3 mg/dL`) or an =expression."""
    if isinstance(value, str) and not is_expression(value):
        origin = marks.at(loc)
        node = parse_expression(value, origin)
        if not isinstance(node, n.Num) and not (isinstance(node, n.Unary) and isinstance(node.operand, n.Num)):
            raise SpecError(f"{value!r} is not a number: write a number with its unit (e.g. `4 h`) or an =expression",
                            origin)
        return node, origin
    return _param(value, marks, loc)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _freeze(value):
    return tuple(value) if isinstance(value, list) else value


def expression_origin(marks, loc) -> Position:
    """Where the text after the `=` of an expression scalar starts."""
    return marks.expression_origin(loc).offset(1)


def _param(value, marks, loc):
    if is_expression(value):
        origin = expression_origin(marks, loc)
        return parse_expression(value[1:], origin), origin
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError("distribution parameters are numbers or =expressions", marks.at(loc))
    return n.Num(value, None, isinstance(value, int)), marks.at(loc)


def literal_type(value) -> Type:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, (list, tuple)):
        return ListT(literal_type(value[0]) if value else TEXT)
    return TEXT


def source_type(source: Source, scope: Scope) -> tuple[Type, object]:
    """The type of a value source, and its typed payload (a typed expression or typed parameters)."""
    if source.kind == "literal":
        return literal_type(source.raw), None
    if source.kind == "expr":
        typed, t = check(source.expr, scope, source.origin)
        return t, typed
    if source.dist == "choice":
        values = source.params[0]
        if all(isinstance(v, str) for v in values):
            return EnumT(tuple(dict.fromkeys(values))), None
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return (INT if all(isinstance(v, int) for v in values) else NUMBER), None
        return literal_type(values[0]), None
    typed = []
    for node, origin in source.params:
        expr, t = check(node, scope, origin)
        if not isinstance(t, NumT) and not (source.dist == "series" and isinstance(t, AnyT)):  # any: reported already
            raise SpecError(f"{source.dist} parameters must be numbers, not {t.describe()}", origin)
        typed.append((expr, t) if source.dist == "series" else expr)
    if source.dist == "series":
        return SeriesT(NUMBER), tuple(typed)  # planning.py converts the parameters into the field's units
    kind = {"int": INT, "bernoulli": BOOL}.get(source.dist, NUMBER)
    return kind, tuple(typed)


def literal_fits(t: Type, value) -> bool:
    if isinstance(t, NumT) and isinstance(value, int) and not isinstance(value, bool) and not t.is_int:
        return True
    if isinstance(t, ListT) and isinstance(value, (list, tuple)):
        return all(literal_fits(t.item, v) for v in value)
    if isinstance(t, (EnumT,)) and isinstance(value, str):
        return value in t.values
    return value_matches(t, value)
