"""Typed expression nodes -> Python source text (the only way spec expressions ever run).

The output uses only literals, operators, local names chosen by the caller and helpers from
`medgym.dsl.support` (imported as `_rt`); spec text itself is never executed.
"""
from __future__ import annotations

from typing import Callable

from medgym.dsl import nodes as n

_BINOPS = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "**"}
# Dates are ISO text at run time; the checker rewrote their arithmetic into these operators.
_DATE_OPS = {"date+days": "_rt.date_add({}, {})", "date-days": "_rt.date_add({}, -{})", "date-date": "_rt.date_diff({}, {})"}
_MATH = {"ln": "_rt.ln", "log10": "_rt.log10", "exp": "_rt.exp", "sqrt": "_rt.sqrt", "abs": "abs",
         "min": "min", "max": "max", "round": "_rt.round_half_up", "clamp": "_rt.clamp", "count": "_rt.count",
         "len": "len", "floor": "_rt.floor", "ceil": "_rt.ceil", "last": "_rt.series_last", "min_over": "_rt.series_min",
         "max_over": "_rt.series_max", "mean_over": "_rt.series_mean", "delta": "_rt.series_delta", "trend": "_rt.series_trend",
         "count_over": "_rt.series_count"}


class PyGen:
    """Render one expression. `name` maps a root name to Python; `call` renders instrument/episode calls."""

    def __init__(self, name: Callable[[str], str], instrument_prefix: str = "_ins.", episode: str = "v",
                 lenient: bool = False):
        self.name = name
        self.instrument_prefix = instrument_prefix
        self.episode = episode
        self.lenient = lenient  # rubric predicates: a missing field reads as None instead of raising

    def __call__(self, node: n.Expr) -> str:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Num(self, node: n.Num):
        return repr(int(node.value) if node.is_int else float(node.value))

    def _Str(self, node: n.Str):
        return repr(node.value)

    def _Bool(self, node: n.Bool):
        return "True" if node.value else "False"

    def _Name(self, node: n.Name):
        return self.name(node.id)

    def _Attr(self, node: n.Attr):
        if self.lenient:
            return f"_rt.field({self(node.obj)}, {node.name!r})"
        return f"{self(node.obj)}[{node.name!r}]"

    def _ListLit(self, node: n.ListLit):
        return "(" + "".join(self(i) + ", " for i in node.items) + ")"

    def _Unary(self, node: n.Unary):
        return f"(not {self(node.operand)})" if node.op == "not" else f"(-{self(node.operand)})"

    def _BinOp(self, node: n.BinOp):
        if node.op in _DATE_OPS:
            return _DATE_OPS[node.op].format(self(node.left), f"({self(node.right)})")
        return f"({self(node.left)} {_BINOPS[node.op]} {self(node.right)})"

    def _BoolOp(self, node: n.BoolOp):
        return f"({self(node.left)} {node.op} {self(node.right)})"

    def _Compare(self, node: n.Compare):
        left, right = self(node.left), self(node.right)
        if node.op.startswith("?"):
            return f"_rt.compare({node.op[1:]!r}, {left}, {right})"
        if node.op == "in":
            return f"({left} in {right})"
        if node.op == "notin":
            return f"({left} not in {right})"
        return f"({left} {node.op} {right})"

    def _If(self, node: n.If):
        text = self(node.orelse)
        for cond, value in reversed(node.branches):
            text = f"({self(value)} if {self(cond)} else {text})"
        return text

    def _Convert(self, node: n.Convert):
        shift = f" + {node.shift!r}" if node.shift else ""
        return f"({self(node.operand)} * {node.scale!r}{shift})"

    def _Lookup(self, node: n.Lookup):
        if node.keys:
            rows = tuple((key, dict(columns)) for key, columns in node.rows)
            keys = "(" + "".join(self(k) + ", " for k in node.keys) + ")"
            unordered, classes = node.match
            return (f"_rt.table_match({node.table!r}, {rows!r}, {keys}, {unordered!r}, {dict(classes)!r}, "
                    f"{self.lenient})")
        rows = {key: dict(columns) for key, columns in node.rows}
        return f"_rt.table_row({node.table!r}, {rows!r}, {self(node.key)}, {self.lenient})"

    def _Call(self, node: n.Call):
        args = [self(a) for a in node.args]
        if node.func in ("any", "all"):
            return f"{node.func}(({''.join(a + ', ' for a in args)}))"
        if node.func == "contains":
            return f"({args[1]} in {args[0]})"
        if node.func == "value_at":  # no row yet at that hour: an error, or missing in a rubric predicate
            return f"_rt.series_at({args[0]}, {args[1]}, {self.lenient})"
        if node.func in _MATH:
            return f"{_MATH[node.func]}({', '.join(args)})"
        kwargs = ", ".join(f"{k}={self(v)}" for k, v in node.kwargs)
        if node.func in ("called", "calls", "result", "observed", "cites_passages", "cites_retrieved"):
            return f"{self.episode}.{node.func}({', '.join(args + ([kwargs] if kwargs else []))})"
        return f"{self.instrument_prefix}{node.func}({kwargs})"
