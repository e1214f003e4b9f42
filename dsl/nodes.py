"""The typed AST of the expression language and of `.score` instruments (frozen dataclasses).

The checker and the code generator see only these nodes, never lark trees or strings. `line`/`col` are
1-based positions inside the parsed text; callers shift them into the spec file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Node:
    line: int = field(default=0, kw_only=True, compare=False)
    col: int = field(default=0, kw_only=True, compare=False)


@dataclass(frozen=True)
class Num(Node):
    value: float
    unit: str | None = None
    is_int: bool = False


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Attr(Node):
    obj: "Expr"
    name: str


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple["Expr", ...] = ()
    kwargs: tuple[tuple[str, "Expr"], ...] = ()


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: "Expr"


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # + - * / ^
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >= in notin
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and, or
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class If(Node):
    branches: tuple[tuple["Expr", "Expr"], ...]
    orelse: "Expr"


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Convert(Node):
    """Inserted by the checker: value * scale + shift (a unit conversion)."""

    operand: "Expr"
    scale: float
    shift: float = 0.0


@dataclass(frozen=True)
class Lookup(Node):
    """Inserted by the checker for a table called as a function, `ed_protocols("stemi")`: the row whose key is
    `key` (the rows are carried along, so generated code needs no table at run time)."""

    table: str
    key: "Expr"
    rows: tuple[tuple[object, tuple[tuple[str, object], ...]], ...]  # (key value, ((column, value), ...)), hashable
    # A multi-key table (`interactions("warfarin", "ibuprofen")`): the keys (then `key` is the first), each row's
    # key value a tuple of cells, and how rows match: (unordered, ((class, (member, ...)), ...)).
    keys: tuple["Expr", ...] = ()
    match: tuple = (False, ())


Expr = Union[Num, Str, Bool, Name, Attr, Call, Unary, BinOp, Compare, BoolOp, If, ListLit, Convert, Lookup]


# ---------------------------------------------------------------- types (as written in specs)
@dataclass(frozen=True)
class TypeRef(Node):
    kind: str  # bool, text, date, int, number, enum, list, series
    unit: str | None = None
    values: tuple[str, ...] = ()
    item: "TypeRef | None" = None
    analyte: str | None = None  # `number mg/dL of creatinine`


# ---------------------------------------------------------------- instruments
@dataclass(frozen=True)
class InputDecl(Node):
    name: str
    type: TypeRef
    low: float | None = None
    high: float | None = None
    default: object = None
    has_default: bool = False
    description: str = ""


@dataclass(frozen=True)
class PointLine(Node):
    condition: Expr
    points: Expr
    text: str = ""


@dataclass(frozen=True)
class LetLine(Node):
    name: str
    value: Expr


@dataclass(frozen=True)
class RequireLine(Node):
    """`require CONDITION "message"`: a call whose inputs break the condition is refused with the message."""

    condition: Expr
    message: str


@dataclass(frozen=True)
class ResultLine(Node):
    name: str
    value: Expr
    unit: str | None = None
    round: int | None = None


@dataclass(frozen=True)
class Band(Node):
    low: float | None
    high: float | None
    label: str
    interpretation: str


@dataclass(frozen=True)
class Example(Node):
    citation: str
    given: tuple[tuple[str, object], ...]
    expect: tuple[tuple[str, object], ...]
    within: float = 0.05


@dataclass(frozen=True)
class Instrument(Node):
    name: str
    title: str
    path: str
    sources: tuple[str, ...]
    inputs: tuple[InputDecl, ...]
    lets: tuple[LetLine, ...]
    points: tuple[PointLine, ...]
    results: tuple[ResultLine, ...]
    bands: tuple[Band, ...]
    band_on: str | None
    examples: tuple[Example, ...]
    requires: tuple[RequireLine, ...] = ()


def walk(node):
    """Every node below `node` (itself included), depth first."""
    yield node
    for value in node.__dict__.values():
        for child in _children(value):
            yield from walk(child)


def children(node):
    """The direct child nodes of `node`."""
    for value in node.__dict__.values():
        yield from _children(value)


def _children(value):
    if isinstance(value, Node):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _children(item)
