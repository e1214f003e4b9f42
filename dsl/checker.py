"""The type checker: names, fields, types and units of an expression, before anything runs.

`check(expr, scope, origin)` returns the expression rewritten with explicit unit conversions
(`Convert` nodes) and its type, or raises a located `SpecError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from medgym.dsl import nodes as n
from medgym.dsl import units as u
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.types import (ANY, BOOL, DATE, INT, SERIES_TIME_UNIT, TEXT, AnyT, BoolT, DateT, EnumT, ListT, NumT,
                              RecordT, SeriesT, TextT, Type, parse_iso_date)


@dataclass(frozen=True)
class Signature:
    """A callable instrument: its inputs (type, required) and its output record."""

    name: str
    inputs: tuple[tuple[str, Type, bool], ...]
    output: RecordT


@dataclass(frozen=True)
class Function:
    """A named function of a shared module (`specs/lib/*.yaml`): typed parameters, a checked body.

    A call is checked argument by argument against the parameters, then replaced by the body with the
    arguments in place of the parameters, so the code generated for it is the expression written out."""

    name: str
    params: tuple[tuple[str, Type], ...]
    output: Type
    body: n.Expr  # parsed, untyped: it is checked again with the arguments in place
    pos: Position  # where it is defined (for errors and the list of files a family depends on)


@dataclass(frozen=True)
class TableFunction:
    """A reference table called as a function of its key: `ed_protocols("stemi").time_target`."""

    name: str
    key: Type
    row: RecordT
    rows: tuple  # n.Lookup.rows
    pos: Position
    keys: tuple[tuple[str, Type], ...] = ()  # a multi-key table: its key columns, called with one argument each
    match: tuple = (False, ())  # n.Lookup.match: (unordered, classes)


@dataclass
class Scope:
    names: dict[str, Type] = field(default_factory=dict)
    instruments: dict[str, Signature] = field(default_factory=dict)
    episode: bool = False  # rubric expressions may use called(), result(), observed(), clock
    tool_outputs: dict[str, Type] = field(default_factory=dict)  # result("tool") types, for rubrics
    tool_names: frozenset[str] = frozenset()
    functions: dict[str, Function] = field(default_factory=dict)
    tables: dict[str, TableFunction] = field(default_factory=dict)
    used: set[str] | None = None  # collects the functions and tables called (shared by child scopes)

    def child(self, **names: Type) -> "Scope":
        return replace(self, names={**self.names, **names})


_NUMERIC_1 = {"abs", "ln", "log10", "exp", "sqrt", "floor", "ceil"}
_KEEP_UNIT = {"abs", "floor", "ceil"}  # the result is in the argument's unit
_EPISODE_FUNCS = {"called", "calls", "result", "observed", "cites_passages", "cites_retrieved"}
# Over a series: its latest value, and the least, greatest, mean, change and slope inside a window before it;
# its value at an hour since admission; and how many rows of a window lie beyond a threshold.
SERIES_FUNCS = {"last", "min_over", "max_over", "mean_over", "delta", "trend", "value_at", "count_over"}
COUNT_BOUNDS = {"below": "<", "above": ">", "at_most": "<=", "at_least": ">="}  # count_over(s, 24 h, below=...)
BUILTINS = sorted({"min", "max", "round", "clamp", "count", "any", "all", "len", "contains"} | _NUMERIC_1 | SERIES_FUNCS)
# Date arithmetic: a date plus or minus whole days (a duration in days or weeks), or one date minus another.
DAY_UNITS = {"days", "weeks"}


class Checker:
    def __init__(self, scope: Scope, origin: Position):
        self.scope = scope
        self.origin = origin

    def fail(self, node: n.Node, message: str, hint: str = "") -> SpecError:
        return SpecError(message, self.origin.shifted(max(node.line, 1), max(node.col, 1)), hint)

    def check(self, node: n.Expr) -> tuple[n.Expr, Type]:
        method: Callable = getattr(self, "_" + type(node).__name__)
        return method(node)

    # ---------------------------------------------------------------- leaves
    def _Num(self, node: n.Num):
        if node.unit is None:
            return node, NumT(None, node.is_int)
        unit = u.lookup(node.unit)
        if unit is None:
            raise self.fail(node, f"unknown unit '{node.unit}'", did_you_mean(node.unit, u.UNITS))
        return replace(node, unit=unit.name), NumT(unit.name, node.is_int)

    def _Str(self, node):
        return node, TEXT

    def _Bool(self, node):
        return node, BOOL

    def _Name(self, node: n.Name):
        if node.id in self.scope.names:
            return node, self.scope.names[node.id]
        if self.scope.episode and node.id == "clock":
            return node, NumT("min", True)
        known = list(self.scope.names) + (["clock"] if self.scope.episode else [])
        raise self.fail(node, f"unknown name '{node.id}'", did_you_mean(node.id, known))

    def _Attr(self, node: n.Attr):
        obj, t = self.check(node.obj)
        if isinstance(t, AnyT):
            return replace(node, obj=obj), ANY
        if not isinstance(t, RecordT):
            raise self.fail(node, f"'{_show(node.obj)}' is {t.describe()}, which has no field '{node.name}'")
        ft = t.field(node.name)
        if ft is not None and t.name.startswith("result:"):
            ft = ANY  # a tool result: the field name is checked, the value may be missing at run time
        if ft is None:
            where = _show(node.obj)
            raise self.fail(node, f"unknown field '{where}.{node.name}'",
                            did_you_mean(node.name, [k for k, _ in t.fields]) or f"fields of {where}: {', '.join(k for k, _ in t.fields)}")
        return replace(node, obj=obj), ft

    def _ListLit(self, node: n.ListLit):
        if not node.items:
            return node, ListT(ANY)
        checked = [self.check(i) for i in node.items]
        item_t = checked[0][1]
        items = [checked[0][0]]
        for (expr, t), raw in zip(checked[1:], node.items[1:]):
            if isinstance(item_t, EnumT) and isinstance(t, EnumT):  # [drug_a, drug_b]: words of either enum
                item_t = self.join(item_t, t, raw)
                items.append(expr)
                continue
            items.append(self.coerce(expr, t, item_t, raw, "list item"))
        return replace(node, items=tuple(items)), ListT(item_t)

    # ---------------------------------------------------------------- operators
    def _Unary(self, node: n.Unary):
        operand, t = self.check(node.operand)
        if node.op == "not":
            self.expect(node.operand, t, BOOL, "operand of 'not'")
            return replace(node, operand=operand), BOOL
        if not isinstance(t, (NumT, AnyT)):
            raise self.fail(node, f"cannot negate {t.describe()}")
        return replace(node, operand=operand), t

    def _BoolOp(self, node: n.BoolOp):
        left, lt = self.check(node.left)
        right, rt = self.check(node.right)
        self.expect(node.left, lt, BOOL, f"left side of '{node.op}'")
        self.expect(node.right, rt, BOOL, f"right side of '{node.op}'")
        return replace(node, left=left, right=right), BOOL

    def _BinOp(self, node: n.BinOp):
        left, lt = self.check(node.left)
        right, rt = self.check(node.right)
        if node.op == "+" and self.joins(lt, rt):
            return replace(node, left=left, right=right), lt if not isinstance(lt, AnyT) else rt
        if isinstance(lt, DateT) or isinstance(rt, DateT):
            return self.date_arithmetic(node, left, lt, right, rt)
        for side, t in ((node.left, lt), (node.right, rt)):
            if not isinstance(t, (NumT, AnyT)):
                raise self.fail(side, f"'{node.op}' needs numbers, but '{_show(side)}' is {t.describe()}")
        if isinstance(lt, AnyT) or isinstance(rt, AnyT):
            return replace(node, left=left, right=right), NumT()
        is_int = lt.is_int and rt.is_int and node.op in "+-*"
        if node.op in "+-":
            right = self.convert(right, rt, lt, node.right, f"'{node.op}'")
            return replace(node, left=left, right=right), NumT(lt.unit or rt.unit, is_int)
        if node.op == "*":
            unit = lt.unit if rt.unit is None else (rt.unit if lt.unit is None else None)
            return replace(node, left=left, right=right), NumT(unit, is_int)
        if node.op == "/":
            if lt.unit and rt.unit and u.conversion(u.lookup(rt.unit), u.lookup(lt.unit)) is not None:
                # a ratio of one dimension has no unit, once both sides are in one unit: 14 days / 1 weeks = 2
                right = self.convert(right, NumT(rt.unit), NumT(lt.unit), node.right, "'/'")
            return replace(node, left=left, right=right), NumT(lt.unit if rt.unit is None else None)
        return replace(node, left=left, right=right), NumT()

    def date_arithmetic(self, node: n.BinOp, left, lt: Type, right, rt: Type):
        """date + days, days + date, date - days (a date); date - date (whole days, an int in days)."""
        if isinstance(lt, DateT) and isinstance(rt, DateT):
            if node.op != "-":
                raise self.fail(node, f"dates cannot be combined with '{node.op}'; date - date gives the days between them")
            return n.BinOp("date-date", left, right, line=node.line, col=node.col), NumT("days", True)
        if node.op not in ("+", "-"):
            raise self.fail(node, f"dates cannot be combined with '{node.op}'; use date + days, date - days or date - date")
        if isinstance(lt, DateT):
            date, days, days_node, days_t = left, right, node.right, rt
        elif node.op == "+":
            date, days, days_node, days_t = right, left, node.left, lt
        else:
            raise self.fail(node, "a date can be subtracted from a date, not from a number")
        if not isinstance(days_t, (NumT, AnyT)):
            raise self.fail(days_node, f"a date plus or minus {days_t.describe()}: add a number of days or weeks")
        if isinstance(days_t, NumT):
            if days_t.unit not in DAY_UNITS:
                written = f"'{_show(days_node)}' has no unit" if days_t.unit is None else f"'{_show(days_node)}' is in {days_t.unit}"
                raise self.fail(days_node, f"{written}: a date moves by days or weeks (write `14 days` or `2 weeks`)",
                                "months and years have no fixed number of days; hours are finer than a date")
            days = self.convert(days, days_t, NumT("days"), days_node, "date arithmetic")
        op = "date+days" if node.op == "+" else "date-days"
        return n.BinOp(op, date, days, line=node.line, col=node.col), DATE

    @staticmethod
    def joins(lt: Type, rt: Type) -> bool:
        """`+` of two texts (concatenation) or two lists of the same item type (one list after the other)."""
        texts = (TextT, EnumT)
        if isinstance(lt, TextT) and isinstance(rt, texts) or isinstance(rt, TextT) and isinstance(lt, texts):
            return True
        return isinstance(lt, ListT) and isinstance(rt, ListT) and lt.item == rt.item

    def _Compare(self, node: n.Compare):
        if node.op in ("in", "notin"):
            return self._membership(node)
        left, lt = self.check_enum_side(node.left, node.right)
        right, rt = self.check_enum_side(node.right, node.left)
        if isinstance(lt, DateT) or isinstance(rt, DateT):
            return self.date_compare(node, left, lt, right, rt)
        if node.op in ("<", "<=", ">", ">="):
            for side, t in ((node.left, lt), (node.right, rt)):
                if not isinstance(t, (NumT, AnyT)):
                    raise self.fail(side, f"'{node.op}' compares numbers, but '{_show(side)}' is {t.describe()}")
        if isinstance(lt, AnyT) or isinstance(rt, AnyT):
            # known only at run time (a tool result): the generated code compares without raising on None
            return replace(node, op="?" + node.op, left=left, right=right), BOOL
        right = self.coerce(right, rt, lt, node.right, f"'{node.op}'")
        return replace(node, left=left, right=right), BOOL

    def date_compare(self, node: n.Compare, left, lt: Type, right, rt: Type):
        """Dates compare with dates (or an ISO date literal): ISO text orders as the calendar does."""
        left = self.coerce(left, lt, DATE, node.left, f"'{node.op}'")
        right = self.coerce(right, rt, DATE, node.right, f"'{node.op}'")
        if isinstance(lt, AnyT) or isinstance(rt, AnyT):
            return replace(node, op="?" + node.op, left=left, right=right), BOOL
        return replace(node, left=left, right=right), BOOL

    def _membership(self, node: n.Compare):
        left_t = self.peek(node.left)
        if isinstance(left_t, EnumT) and isinstance(node.right, n.ListLit):
            left, _ = self.check(node.left)
            items = tuple(self.enum_item(i, left_t) for i in node.right.items)
            return replace(node, left=left, right=replace(node.right, items=items)), BOOL
        right, rt = self.check(node.right)
        if isinstance(rt, AnyT):
            return replace(node, left=self.check(node.left)[0], right=right), BOOL
        if not isinstance(rt, ListT):
            raise self.fail(node.right, f"'in' needs a list on the right, but '{_show(node.right)}' is {rt.describe()}")
        if isinstance(rt.item, EnumT) and isinstance(node.left, (n.Name, n.Str)):
            left, lt = self.check_enum_arg(node.left, rt.item)
        else:
            left, lt = self.check(node.left)
        self.coerce(left, lt, rt.item, node.left, "'in'")
        return replace(node, left=left, right=right), BOOL

    def _If(self, node: n.If):
        checked = []
        for cond, value in node.branches:
            c, ct = self.check(cond)
            self.expect(cond, ct, BOOL, "condition of 'if'")
            checked.append((c, *self.check(value), value))
        orelse, ot = self.check(node.orelse)
        result_t = ot
        for _, _, vt, raw in checked:
            result_t = self.join(result_t, vt, raw)
        branches = tuple((c, self.coerce(v, vt, result_t, raw, "branch of 'if'")) for c, v, vt, raw in checked)
        orelse = self.coerce(orelse, ot, result_t, node.orelse, "'else' branch")
        return replace(node, branches=branches, orelse=orelse), result_t

    # ---------------------------------------------------------------- calls
    def _Call(self, node: n.Call):
        if node.func in self.scope.functions:
            return self.function_call(node, self.scope.functions[node.func])
        if node.func in self.scope.tables:
            return self.table_call(node, self.scope.tables[node.func])
        if node.func in self.scope.instruments:
            return self.instrument_call(node, self.scope.instruments[node.func])
        if node.func in _EPISODE_FUNCS:
            return self.episode_call(node)
        if node.func not in BUILTINS:
            known = BUILTINS + list(self.scope.instruments) + list(self.scope.functions) + list(self.scope.tables) + (
                sorted(_EPISODE_FUNCS) if self.scope.episode else [])
            raise self.fail(node, f"unknown function or instrument '{node.func}'", did_you_mean(node.func, known))
        if node.kwargs and node.func != "count_over":
            raise self.fail(node, f"'{node.func}' takes no keyword arguments")
        checked = [self.check(a) for a in node.args]
        args = tuple(e for e, _ in checked)
        types = [t for _, t in checked]
        f = node.func
        if f in ("count", "any", "all"):
            for a, t in zip(node.args, types):
                self.expect(a, t, BOOL, f"argument of {f}()")
            return replace(node, args=args), (INT if f == "count" else BOOL)
        if f == "len":
            self.arity(node, 1)
            if not isinstance(types[0], (ListT, AnyT, TextT, SeriesT)):
                raise self.fail(node.args[0], f"len() needs a list, not {types[0].describe()}")
            return replace(node, args=args), INT
        if f == "contains":
            self.arity(node, 2)
            return replace(node, args=args), BOOL
        if f in SERIES_FUNCS:
            return self.series_call(node, args, types)
        for a, t in zip(node.args, types):
            if not isinstance(t, (NumT, AnyT)):
                raise self.fail(a, f"{f}() needs numbers, but '{_show(a)}' is {t.describe()}")
        if f in _NUMERIC_1:
            self.arity(node, 1)
            if f in _KEEP_UNIT and isinstance(types[0], NumT):
                return replace(node, args=args), NumT(types[0].unit, f != "abs")  # floor and ceil give whole numbers
            return replace(node, args=args), NumT(None, f in ("floor", "ceil"))
        if f == "round":
            if len(args) not in (1, 2):
                raise self.fail(node, "round() takes a value and an optional number of decimals")
            digits = node.args[1].value if len(args) == 2 and isinstance(node.args[1], n.Num) else 0
            t0 = types[0] if isinstance(types[0], NumT) else NumT()
            return replace(node, args=args), NumT(t0.unit, digits == 0)
        if f == "clamp":
            self.arity(node, 3)
        elif len(args) < 2:
            raise self.fail(node, f"{f}() needs at least two values")
        first = types[0] if isinstance(types[0], NumT) else NumT()
        args = (args[0],) + tuple(self.convert(e, t, first, a, f"{f}()") if isinstance(t, NumT) else e
                                  for e, t, a in zip(args[1:], types[1:], node.args[1:]))
        return replace(node, args=args), NumT(first.unit, all(isinstance(t, NumT) and t.is_int for t in types))

    def series_call(self, node: n.Call, args: tuple, types: list):
        """last(s); min_over/max_over/mean_over/delta/trend/count_over(s, window): the window a fixed time,
        rewritten into hours; value_at(s, t): t a fixed time since admission, in hours. The result is in the
        series' unit; a trend is that unit per hour; count_over counts rows."""
        self.arity(node, 1 if node.func == "last" else 2)
        series = types[0]
        if not isinstance(series, (SeriesT, AnyT)):
            raise self.fail(node.args[0], f"{node.func}() needs a series (a record field of type series(...)), "
                                          f"but '{_show(node.args[0])}' is {series.describe()}")
        item = series.item if isinstance(series, SeriesT) else NumT()
        if node.func == "value_at":
            at = self.window(node.args[1], args[1], "the time point of value_at()")
            return replace(node, args=(args[0], at)), NumT(item.unit, item.is_int, item.analyte)
        if node.func != "last":
            args = (args[0], self.window(node.args[1], args[1], f"the window of {node.func}()"))
        if node.func == "count_over":
            return self.count_call(node, args, item)
        if node.func == "trend":
            return replace(node, args=args), NumT(None)
        if node.func == "mean_over":
            return replace(node, args=args), NumT(item.unit, False, item.analyte)
        return replace(node, args=args), NumT(item.unit, item.is_int, item.analyte)

    def count_call(self, node: n.Call, args: tuple, item: NumT):
        """count_over(s, window, below=x) (or above, at_most, at_least): the rows of the window beyond x,
        x in the series' unit; rewritten as (s, hours, operator, x)."""
        usage = "e.g. `count_over(s, 24 h, below=0.5 mL/kg/h)`"
        for key, value in node.kwargs:
            if key not in COUNT_BOUNDS:
                raise self.fail(value, f"count_over() has no parameter '{key}': give one threshold, below=, above=, "
                                       f"at_most= or at_least=", did_you_mean(key, list(COUNT_BOUNDS)))
        if len(node.kwargs) != 1:
            raise self.fail(node, f"count_over() takes one threshold (below=, above=, at_most= or at_least=), "
                                  f"{usage}")
        key, raw = node.kwargs[0]
        expr, got = self.check(raw)
        if not isinstance(got, (NumT, AnyT)):
            raise self.fail(raw, f"the threshold of count_over() must be a number in the series' unit, but "
                                 f"'{_show(raw)}' is {got.describe()}")
        threshold = self.coerce(expr, got, item, raw, "the threshold of count_over()")
        bound = n.Str(COUNT_BOUNDS[key], line=raw.line, col=raw.col)
        return replace(node, args=args + (bound, threshold), kwargs=()), INT

    def window(self, raw, typed, what: str) -> n.Num:
        """A series window (or value_at's time, `what` naming which): a time literal (`24 h`, `2 days`), as a
        number of hours."""
        if not isinstance(typed, n.Num):
            raise self.fail(raw, f"{what} is a fixed time written out, e.g. `24 h`")
        unit = u.lookup(typed.unit) if typed.unit else None
        if unit is None:
            raise self.fail(raw, f"{what} needs a time unit: write `{typed.value:g} h`")
        if unit.dimension != "time":
            raise self.fail(raw, f"{what} must be a time, but '{_show(typed)}' is {u.describe(unit)}",
                            "write it in h, min or days, e.g. `24 h`")
        hours = unit.to_base(typed.value) / u.lookup(SERIES_TIME_UNIT).factor
        if hours < 0:
            raise self.fail(raw, f"{what} cannot be negative")
        return n.Num(hours, SERIES_TIME_UNIT, line=typed.line, col=typed.col)

    def function_call(self, node: n.Call, fn: Function):
        """Check the arguments against the parameters, then the body with the arguments in place."""
        bound = self.bind(node, fn.name, [p for p, _ in fn.params])
        for name, want in fn.params:
            expr, got = self.check_enum_arg(bound[name], want)
            self.coerce(expr, got, want, bound[name], f"argument '{name}' of {fn.name}()")
        if self.scope.used is not None:
            self.scope.used.add(fn.name)
        try:
            typed, t = self.check(substitute(fn.body, bound))
        except SpecError as exc:  # the body checked alone: only these arguments' types can break it
            raise self.fail(node, f"{fn.name}() defined at {fn.pos} does not accept these arguments: {exc.message}") from None
        return typed, t

    def table_call(self, node: n.Call, table: TableFunction):
        if table.keys:
            return self.multi_key_call(node, table)
        bound = self.bind(node, table.name, ["key"])
        expr, got = self.check_enum_arg(bound["key"], table.key)
        expr = self.coerce(expr, got, table.key, bound["key"], f"the key of table {table.name}")
        if self.scope.used is not None:
            self.scope.used.add(table.name)
        return n.Lookup(table.name, expr, table.rows, line=node.line, col=node.col), table.row

    def multi_key_call(self, node: n.Call, table: TableFunction):
        """`interactions("warfarin", "ibuprofen")` or by key name (`interactions(drug_a=..., drug_b=...)`)."""
        bound = self.bind(node, table.name, [k for k, _ in table.keys])
        keys = []
        for name, want in table.keys:
            expr, got = self.check_enum_arg(bound[name], want)
            # a key may name a class member the table never lists itself: any text fits a text key
            keys.append(self.coerce(expr, got, want if not isinstance(want, EnumT) else TEXT, bound[name],
                                    f"key '{name}' of table {table.name}"))
        if self.scope.used is not None:
            self.scope.used.add(table.name)
        return n.Lookup(table.name, keys[0], table.rows, tuple(keys), table.match, line=node.line, col=node.col), table.row

    def bind(self, node: n.Call, name: str, params: list[str]) -> dict[str, n.Expr]:
        """Positional and keyword arguments of a call, by parameter name; every parameter given once."""
        if len(node.args) > len(params):
            raise self.fail(node, f"{name}() takes {len(params)} argument{'s' if len(params) != 1 else ''} "
                                  f"({', '.join(params)}), not {len(node.args) + len(node.kwargs)}")
        bound = dict(zip(params, node.args))
        for key, value in node.kwargs:
            if key not in params:
                raise self.fail(value, f"{name}() has no parameter '{key}'", did_you_mean(key, params))
            if key in bound:
                raise self.fail(value, f"{name}() got '{key}' twice")
            bound[key] = value
        missing = [p for p in params if p not in bound]
        if missing:
            raise self.fail(node, f"{name}() needs {', '.join(repr(p) for p in missing)}")
        return bound

    def instrument_call(self, node: n.Call, sig: Signature):
        if node.args:
            raise self.fail(node, f"call {sig.name}() with keyword arguments (input = value)")
        given = dict(node.kwargs)
        inputs = {name: (t, required) for name, t, required in sig.inputs}
        for name in given:
            if name not in inputs:
                raise self.fail(given[name], f"'{sig.name}' has no input '{name}'", did_you_mean(name, inputs))
        kwargs = []
        for name, (t, required) in inputs.items():
            if name not in given:
                if required:
                    raise self.fail(node, f"'{sig.name}' needs input '{name}' ({t.describe()})")
                continue
            expr, et = self.check_enum_arg(given[name], t)
            kwargs.append((name, self.coerce(expr, et, t, given[name], f"input '{name}' of {sig.name}")))
        return replace(node, kwargs=tuple(kwargs)), sig.output

    def episode_call(self, node: n.Call):
        if not self.scope.episode:
            raise self.fail(node, f"{node.func}() is only available in rubric expressions")
        if node.func in ("cites_passages", "cites_retrieved"):
            return self.citation_call(node)
        if len(node.args) != 1 or not isinstance(node.args[0], n.Str):
            raise self.fail(node, f"{node.func}() takes one quoted name, e.g. {node.func}(\"get_vital_signs\")")
        target = node.args[0].value
        if node.func != "observed" and self.scope.tool_names and target not in self.scope.tool_names:
            raise self.fail(node.args[0], f"unknown tool '{target}'", did_you_mean(target, self.scope.tool_names))
        kwargs = tuple((k, self.check(v)[0]) for k, v in node.kwargs)
        if node.kwargs and node.func != "called":
            raise self.fail(node, f"{node.func}() takes no keyword arguments")
        result = {"called": BOOL, "calls": INT, "observed": BOOL}.get(node.func)
        if result is None:
            output = self.scope.tool_outputs.get(target)
            result = RecordT(f"result:{target}", output.fields) if output is not None else ANY
        return replace(node, kwargs=kwargs), result

    def citation_call(self, node: n.Call):
        """cites_passages(text): the text cites a knowledge-base passage id; cites_retrieved(text): every id
        it cites was returned by a search in this episode."""
        if len(node.args) != 1 or node.kwargs:
            raise self.fail(node, f"{node.func}() takes one text, e.g. {node.func}(answer.reasoning)")
        arg, t = self.check(node.args[0])
        self.expect(node.args[0], t, TEXT, f"the argument of {node.func}()")
        return replace(node, args=(arg,)), BOOL

    # ---------------------------------------------------------------- helpers
    def arity(self, node: n.Call, count: int):
        if len(node.args) != count:
            raise self.fail(node, f"{node.func}() takes {count} argument{'s' if count > 1 else ''}")

    def expect(self, node, got: Type, want: Type, what: str):
        if isinstance(got, AnyT) or type(got) is type(want):
            return
        raise self.fail(node, f"{what} must be {want.describe()}, but '{_show(node)}' is {got.describe()}")

    def check_enum_side(self, node, other):
        """Check one side of ==/!=; a bare unknown name beside an enum is that enum's value."""
        if isinstance(node, n.Name) and node.id not in self.scope.names and not (self.scope.episode and node.id == "clock"):
            other_t = self.peek(other)
            if isinstance(other_t, EnumT):
                return self.enum_literal(node, other_t)
        if isinstance(node, n.Str):
            other_t = self.peek(other)
            if isinstance(other_t, EnumT):
                return self.enum_item(node, other_t), other_t
        return self.check(node)

    def check_enum_arg(self, node, want: Type):
        if isinstance(want, EnumT) and isinstance(node, (n.Name, n.Str)) and getattr(node, "id", None) not in self.scope.names:
            return self.enum_literal(node, want) if isinstance(node, n.Name) else (self.enum_item(node, want), want)
        return self.check(node)

    def peek(self, node) -> Type | None:
        try:
            return self.check(node)[1]
        except SpecError:
            return None

    def enum_literal(self, node: n.Name, t: EnumT):
        if node.id not in t.values:
            raise self.fail(node, f"'{node.id}' is not one of {t.describe()}", did_you_mean(node.id, t.values))
        return n.Str(node.id, line=node.line, col=node.col), t

    def enum_item(self, node, t: EnumT):
        if isinstance(node, n.Name) and node.id not in self.scope.names:
            return self.enum_literal(node, t)[0]
        if isinstance(node, n.Str) and node.value not in t.values:
            raise self.fail(node, f"'{node.value}' is not one of {t.describe()}", did_you_mean(node.value, t.values))
        return self.check(node)[0]

    def join(self, a: Type, b: Type, node) -> Type:
        if isinstance(a, AnyT):
            return b
        if isinstance(b, AnyT) or a == b:
            return a
        if isinstance(a, NumT) and isinstance(b, NumT):
            return NumT(a.unit or b.unit, a.is_int and b.is_int)
        if isinstance(a, EnumT) and isinstance(b, EnumT):
            return EnumT(tuple(dict.fromkeys(a.values + b.values)))
        if {type(a), type(b)} <= {EnumT, TextT}:
            return TEXT
        if isinstance(a, ListT) and isinstance(b, ListT):
            return ListT(self.join(a.item, b.item, node))
        raise self.fail(node, f"branches disagree: {a.describe()} and {b.describe()}")

    def coerce(self, expr, got: Type, want: Type, node, what: str):
        """`expr` (of type `got`) used where `want` is expected: convert units or fail."""
        if isinstance(got, AnyT) or isinstance(want, AnyT):
            return expr
        if isinstance(want, NumT) and isinstance(got, NumT):
            return self.convert(expr, got, want, node, what)
        if isinstance(want, DateT) and isinstance(expr, n.Str):
            if parse_iso_date(expr.value) is None:
                raise self.fail(node, f"{what}: {expr.value!r} is not a date; write it as YYYY-MM-DD (e.g. \"2024-03-15\")")
            return expr
        if isinstance(want, TextT) and isinstance(got, DateT):
            return expr  # a date is ISO text wherever a text is wanted
        if isinstance(want, (EnumT, TextT)) and isinstance(got, (EnumT, TextT)):
            if isinstance(want, EnumT) and isinstance(got, EnumT) and not set(got.values) <= set(want.values):
                extra = sorted(set(got.values) - set(want.values))
                raise self.fail(node, f"{what}: {', '.join(extra)} not in {want.describe()}")
            return expr
        if isinstance(want, ListT) and isinstance(got, ListT):
            if isinstance(got.item, AnyT):
                return expr
            self.coerce(expr, got.item, want.item, node, what)
            return expr
        if type(got) is type(want):
            return expr
        raise self.fail(node, f"{what} expects {want.describe()}, but '{_show(node)}' is {got.describe()}")

    def convert(self, expr, got: NumT, want: NumT, node, what: str):
        """`expr` in `got`'s unit, rewritten into `want`'s: by dimension, or through the analyte both name."""
        different = got.analyte and want.analyte and got.analyte != want.analyte
        if got.unit is None or want.unit is None or (got.unit == want.unit and not different):
            return expr
        src, dst = u.lookup(got.unit), u.lookup(want.unit)
        factors = u.conversion(src, dst, got.analyte, want.analyte)
        if factors is None:
            why = f" ({u.conversion_problem(src, dst, got.analyte, want.analyte)})" if got.analyte or want.analyte else ""
            raise self.fail(node, f"unit mismatch: '{_show(node)}' is {_measure(got, src)} but {what} expects "
                                  f"{_measure(want, dst)}{why}", _analyte_hint(got, want, src, dst, node, what))
        scale, shift = factors
        return n.Convert(expr, scale, shift, line=getattr(node, "line", 0), col=getattr(node, "col", 0))


def check(expr: n.Expr, scope: Scope, origin: Position) -> tuple[n.Expr, Type]:
    return Checker(scope, origin).check(expr)


def substitute(node, values: dict[str, n.Expr]):
    """`node` with every name in `values` replaced by its expression (a function body with its arguments)."""
    if isinstance(node, n.Name):
        return values.get(node.id, node)
    if isinstance(node, tuple):
        return tuple(substitute(item, values) for item in node)
    if not isinstance(node, n.Node):
        return node
    changes = {f: substitute(getattr(node, f), values) for f in node.__dataclass_fields__ if f not in ("line", "col")}
    return replace(node, **changes)


def _measure(t: NumT, unit) -> str:
    return u.describe(unit) + (f" of {t.analyte}" if t.analyte else "")


def _analyte_hint(got: NumT, want: NumT, src, dst, node, what: str) -> str:
    if got.analyte and want.analyte:
        return "different analytes never convert" if got.analyte != want.analyte else ""
    if want.analyte:
        return f"declare what '{_show(node)}' measures: `number {got.unit} of {want.analyte}`"
    if got.analyte:
        target = what if what.startswith(("input", "result")) else "the other side"
        return f"declare what {target} measures: `number {want.unit} of {got.analyte}`"
    if {src.dimension, dst.dimension} <= u.MOLAR_DIMENSIONS:
        return ("clinical conversions across dimensions depend on the analyte: declare it on both sides "
                "(`number mmol/L of urea`, `number mg/dL of urea_nitrogen`) or convert explicitly")
    return "unrelated dimensions never convert"


def _show(node) -> str:
    """A short rendering of an expression for messages."""
    if isinstance(node, n.Name):
        return node.id
    if isinstance(node, n.Attr):
        return f"{_show(node.obj)}.{node.name}"
    if isinstance(node, n.Num):
        return f"{node.value:g}" + (f" {node.unit}" if node.unit else "")
    if isinstance(node, n.Str):
        return repr(node.value)
    if isinstance(node, n.Call):
        return f"{node.func}(...)"
    if isinstance(node, n.Convert):
        return _show(node.operand)
    return type(node).__name__.lower()
