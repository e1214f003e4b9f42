"""The shared library: functions of `lib/*.yaml` modules and reference tables, callable in any expression.

Each function is type-checked once, here, against its declared parameter types (and its declared result
type); a call is then checked against the parameters and written out in place (dsl/checker.py). A
function may call instruments, tables and the functions defined before it (earlier in its file, or in a
file before it), so no function can call itself. A body that judges the episode (`called`, `observed`, ...)
makes a function for rubric rules only.
"""
from __future__ import annotations

from medgym.compiler.records import parse_field_type
from medgym.dsl import models as m
from medgym.dsl.checker import BUILTINS, Function, Scope, TableFunction, check
from medgym.dsl.errors import SpecError
from medgym.dsl.parser import parse_expression
from medgym.dsl.types import AnyT, NumT, RecordT, Type


def table_functions(loaded_tables: list) -> dict[str, TableFunction]:
    """Every table whose columns are well typed, callable by its name with a key (a table's own errors
    are reported where tables are checked)."""
    out = {}
    for loaded in loaded_tables:
        table = loaded.model
        try:
            columns = {c: parse_field_type(text, loaded.marks.at(("columns", c))) for c, text in table.columns.items()}
        except SpecError:
            continue
        if any(k not in columns for k in table.keys) or table.name in out:
            continue
        row_t = RecordT(f"row of {table.name}", tuple(columns.items()))
        if isinstance(table.key, str):
            rows = tuple((row.get(table.key), tuple((c, row.get(c)) for c in table.columns)) for row in table.rows)
            out[table.name] = TableFunction(table.name, columns[table.key], row_t, rows, loaded.marks.at(("name",)))
            continue
        rows = tuple((tuple(row.get(k) for k in table.keys), tuple((c, row.get(c)) for c in table.columns))
                     for row in table.rows)
        classes = tuple((c, tuple(vs)) for c, vs in table.classes.items())
        out[table.name] = TableFunction(table.name, columns[table.keys[0]], row_t, rows, loaded.marks.at(("name",)),
                                        tuple((k, columns[k]) for k in table.keys), (table.unordered, classes))
    return out


def check_functions(modules: list, instruments: dict, tables: dict[str, TableFunction],
                    errors: list[SpecError]) -> dict[str, Function]:
    """The functions of every module, checked in file order."""
    functions: dict[str, Function] = {}
    taken = set(BUILTINS) | set(instruments) | set(tables)
    for loaded in modules:
        for name, spec in loaded.model.functions.items():
            loc = ("functions", name)
            if name in taken or name in functions:
                what = "a function" if name in functions else "a built-in, an instrument or a table"
                errors.append(SpecError(f"function '{name}' has the name of {what}", loaded.marks.at(loc, key=True)))
                continue
            made = _function(name, spec, loaded.marks, loc, instruments, tables, functions, errors)
            if made is not None:
                functions[name] = made
    return functions


def _function(name, spec: m.LibFunction, marks, loc, instruments, tables, functions, errors) -> Function | None:
    before = len(errors)
    params = []
    for param, text in spec.params.items():
        try:
            params.append((param, parse_field_type(text, marks.at(loc + ("params", param)))))
        except SpecError as exc:
            errors.append(exc)
    returns = None
    if spec.returns is not None:
        try:
            returns = parse_field_type(spec.returns, marks.at(loc + ("returns",)))
        except SpecError as exc:
            errors.append(exc)
    if len(errors) > before:
        return None
    text = spec.body[1:] if spec.body.startswith("=") else spec.body
    origin = marks.expression_origin(loc + ("body",))
    if spec.body.startswith("="):
        origin = origin.offset(1)
    try:
        body = parse_expression(text, origin)
        # episode=True: a body may judge the episode (called(), observed()); such a function is then usable
        # only where those are (rubric rules), which the check at each call enforces.
        scope = Scope(dict(params), dict(instruments), episode=True, functions=dict(functions), tables=dict(tables))
        _, t = check(body, scope, origin)
    except SpecError as exc:
        errors.append(exc)
        return None
    if returns is not None and not _same_type(t, returns):
        errors.append(SpecError(f"function '{name}' returns {t.describe()}, but it declares {returns.describe()}",
                                marks.at(loc + ("returns",))))
        return None
    return Function(name, tuple(params), returns or t, body, marks.at(loc, key=True))


def _same_type(got: Type, want: Type) -> bool:
    """Whether a value of type `got` may stand where `want` is declared (an int is a number)."""
    if isinstance(got, AnyT) or isinstance(want, AnyT):
        return True
    if isinstance(got, NumT) and isinstance(want, NumT):
        return got.unit == want.unit and (got.is_int or not want.is_int)
    return got.describe() == want.describe()
