"""What spec expressions and jinja texts read: the raw material of the information-flow check (flow.py).

A read is a case leaf (`("case", "vitals.hr")`), a truth (`("truth", "esi_level")`) or a bare name
(`("name", "lifesaving")`: a let, or an enum word, which flow.py tells apart per scenario). A read inside a
comparison with a constant (`x >= 3`) also carries the threshold fact it needs or shows.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment, TemplateSyntaxError
from jinja2 import nodes as j

from medgym.dsl import nodes as n
from medgym.dsl.parser import parse_expression

Target = tuple  # ("case", path) | ("let", name) | ("truth", name) | ("name", id) | ("item", field) | ("fact", target, bound, side)
_JINJA = Environment()


@dataclass(frozen=True)
class Read:
    """One value an expression reads, and where (for the error)."""

    target: Target
    at: tuple | None  # (line, col) inside the expression text; None in templates
    fact: Target | None = None  # inside a threshold: ("fact", target, bound, side), known when shown
    window: float | None = None  # a series read by last()/min_over()/...: only its last `window` hours (0: the latest row)
    point: float | None = None  # a series read by value_at(): only its last row at or before this hour


def text_reads(text: str, fields: tuple) -> list[Read]:
    """The reads of an expression text (without its `=`)."""
    return expression_reads(_parsed(text), fields)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str):
    """Reference texts repeat ("=case.id"); node positions are relative to the text, so one parse serves all."""
    return parse_expression(text)


_ORDERING = {"<", "<=", ">", ">="}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def expression_reads(expr, fields: tuple) -> list[Read]:
    """The values an expression reads, in reading order: case leaves, truths and bare names."""
    out: list[Read] = []

    def visit(node, fact_of=None):
        chain = name_chain(node) if isinstance(node, (n.Attr, n.Name)) else None
        if chain:
            at = (max(node.line, 1), max(node.col, 1))
            out.extend(Read(t, at, fact_of(t) if fact_of else None) for t in _chain_targets(chain, fields))
            return
        window, point = series_window(node), series_point(node)
        if window is not None or point is not None:
            at = (max(node.line, 1), max(node.col, 1))
            out.extend(Read(t, at, None, window, point) for t in _chain_targets(name_chain(node.args[0]), fields))
            for extra in node.args[2:] + tuple(value for _, value in node.kwargs):  # count_over's threshold
                visit(extra)
            return
        threshold = _threshold(node)
        if threshold is not None:
            side, op, bound = threshold
            visit(side, lambda t: _fact(t, op, bound))
            return
        for child in n.children(node):
            visit(child)

    visit(expr)
    return out


def _threshold(node):
    """`x <= 8` or `8 >= x` (x a name or field, the other side a number): (x, op as `x op bound`, bound)."""
    op = node.op.lstrip("?") if isinstance(node, n.Compare) else None  # typed: "?<" when a side may be missing
    if op not in _ORDERING:
        return None
    left, right = _number(node.left), _number(node.right)
    if right is not None and name_chain(node.left):
        return node.left, op, right
    if left is not None and name_chain(node.right):
        return node.right, _MIRROR[op], left
    return None


def series_window(node) -> float | None:
    """The hours a series function reads back from a series' latest row (`min_over(case.x, 24 h)`: 24; `last`: 0);
    None when `node` is not such a call on a record field."""
    from medgym.dsl.checker import SERIES_FUNCS

    if not isinstance(node, n.Call) or node.func not in SERIES_FUNCS - {"value_at"} or not _series_arg(node):
        return None
    if node.func == "last":
        return 0.0
    return _hours(node.args[1] if len(node.args) > 1 else None)


def series_point(node) -> float | None:
    """The hour since admission `value_at(case.x, 24 h)` reads the series at (24); None for any other node."""
    if not isinstance(node, n.Call) or node.func != "value_at" or not _series_arg(node):
        return None
    return _hours(node.args[1] if len(node.args) > 1 else None)


def _series_arg(node: n.Call) -> bool:
    return bool(node.args) and bool(name_chain(node.args[0]))


def _hours(size) -> float | None:
    """A time literal in hours (None when it is not one: the checker rejects it)."""
    from medgym.dsl import units as u

    unit = u.lookup(size.unit) if isinstance(size, n.Num) and size.unit else None
    if unit is None or unit.dimension != "time":
        return None
    return unit.to_base(float(size.value)) / 3600


def _number(node):
    if isinstance(node, n.Num):
        return float(node.value)
    if isinstance(node, n.Unary) and node.op == "-" and isinstance(node.operand, n.Num):
        return -float(node.operand.value)
    return None


def _fact(target: Target, op: str, bound: float) -> Target:
    """`x <= c` and `x > c` show the same thing (which side of c x lies), as do `x < c` and `x >= c`."""
    return ("fact", target, bound, "le" if op in ("<=", ">") else "lt")


def name_chain(node) -> list[str] | None:
    parts = []
    while isinstance(node, n.Attr):
        parts.append(node.name)
        node = node.obj
    return [node.id] + parts[::-1] if isinstance(node, n.Name) else None


def _chain_targets(chain: list[str], fields: tuple) -> list[Target]:
    head = chain[0]
    if head == "case":
        return [("case", p) for p in leaves(".".join(chain[1:]), fields)]
    if head == "truth":
        return [("truth", chain[1])] if len(chain) > 1 else []
    if head == "scenario":
        return []  # the scenario is the judgement the task asks for
    if head == "item" and len(chain) > 1:
        return [("item", chain[1])]  # a dataset item's field (flow.py: a let named item reads as that let)
    return [("name", head)]


@functools.lru_cache(maxsize=4096)
def leaves(path: str, fields: tuple) -> tuple:
    """The record leaves a case path reads: itself, the leaf it goes through, or a whole group."""
    if path == "id":
        return ("id",)
    parts = path.split(".") if path else []
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in fields:
            return (head,)
    return tuple(p for p in fields if not path or p.startswith(path + "."))


@functools.lru_cache(maxsize=4096)
def template_reads(text: str, fields: tuple) -> tuple:
    """What a jinja template reads (every branch: an `{% if case.x %}` reveals case.x whichever way)."""
    try:
        tree = _JINJA.parse(text)
    except TemplateSyntaxError:
        return ()  # materialize.py reports template errors
    out: list[Read] = []

    def visit(node, fact_of=None):
        chain = _jinja_chain(node)
        if chain:
            out.extend(Read(t, None, fact_of(t) if fact_of else None) for t in _chain_targets(chain, fields))
            return
        threshold = _jinja_threshold(node)
        if threshold is not None:
            side, op, bound = threshold
            visit(side, lambda t: _fact(t, op, bound))
            return
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return tuple(out)


_JINJA_OPS = {"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">="}


def _jinja_threshold(node):
    if not isinstance(node, j.Compare) or len(node.ops) != 1 or node.ops[0].op not in _JINJA_OPS:
        return None
    op, left, right = _JINJA_OPS[node.ops[0].op], node.expr, node.ops[0].expr
    if _jinja_number(right) is not None and _jinja_chain(left):
        return left, op, _jinja_number(right)
    if _jinja_number(left) is not None and _jinja_chain(right):
        return right, _MIRROR[op], _jinja_number(left)
    return None


def _jinja_number(node):
    if isinstance(node, j.Const) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, j.Neg) and _jinja_number(node.node) is not None:
        return -_jinja_number(node.node)
    return None


def _jinja_chain(node) -> list[str] | None:
    parts = []
    while True:
        if isinstance(node, j.Getattr):
            parts.append(node.attr)
        elif isinstance(node, j.Getitem) and isinstance(node.arg, j.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        else:
            break
        node = node.node
    if isinstance(node, j.Name) and node.ctx == "load":
        return [node.name] + parts[::-1]
    return None
