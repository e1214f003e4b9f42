"""Tools: check each tool spec against the record, instruments and tables; derive its OpenAI schema.

One compiled tool gives three things: the OpenAI function schema (tools.json), the runtime's view of the
tool (domain.json) and the JSON Schema that validates a model's arguments (the same object).
"""
from __future__ import annotations

from medgym.compiler.records import Record, parse_field_type
from medgym.dsl import models as m
from medgym.dsl.build import TOOL_MODELS, ToolBase, kind_table
from medgym.dsl.checker import Signature
from medgym.dsl.errors import SpecError, did_you_mean
from medgym.dsl import units as u
from medgym.dsl.types import SERIES_TIME_UNIT, EnumT, ListT, NumT, SeriesT, TextT, Type, json_schema

CASE_READING_KINDS = {"lookup", "action", "simulator"}


def compile_tool(loaded, record: Record | None, instruments: dict[str, "object"], tables: dict[str, m.Table],
                 errors: list[SpecError]) -> dict | None:
    tool: m.Tool = loaded.model
    marks = loaded.marks
    before = len(errors)
    kind = tool.kind.value
    if kind == "instrument":
        properties, required = _instrument_params(tool, instruments, marks, errors)
    else:
        properties, required = _declared_params(tool, record, marks, errors)
    out = {"name": tool.name, "kind": kind, "description": tool.description.strip(),
           "parameters": {"type": "object", "properties": properties, "required": required, "additionalProperties": False},
           "minutes": tool.minutes, "static": tool.static,
           "id_params": [k for k, p in tool.params.items() if p.ref is not None]}
    for name, param in tool.params.items():
        if param.ref is not None and record is not None and param.ref != record.entity:
            errors.append(SpecError(f"unknown entity '{param.ref}' (this domain's entity is '{record.entity}')",
                                    marks.at(("params", name, "ref"))))
    _KIND_CHECKS[kind](tool, out, record, instruments, tables, marks, errors)
    reads_case = kind in CASE_READING_KINDS
    if not properties and not reads_case and kind != "submit" and not tool.static and len(errors) == before:
        errors.append(SpecError(f"tool '{tool.name}' has no parameters and reads no case data",
                                marks.at(("name",)), "mark it `static: true` if it really is a fixed reference"))
    return out if len(errors) == before else None


def typed_tool(compiled: dict) -> ToolBase:
    """The compiled tool as the build format's model of its kind (what domain.json and tools.json hold)."""
    return TOOL_MODELS[compiled["kind"]].model_validate(compiled)


# ---------------------------------------------------------------- parameters
def _declared_params(tool: m.Tool, record: Record | None, marks, errors):
    properties, required = {}, []
    for name, param in tool.params.items():
        loc = ("params", name)
        try:
            t = parse_field_type(param.type, marks.at(loc + ("type",)))
        except SpecError as exc:
            errors.append(exc)
            continue
        if param.enum_from is not None:
            t = _enum_from(param.enum_from, t, record, marks.at(loc + ("enum_from",)), errors)
        schema = json_schema(t)
        _constraints(schema, param, t, marks.at(loc), errors)
        description = param.description.strip()
        if isinstance(t, NumT) and t.unit:
            description = f"{description} (in {t.unit})".strip()
        if description:
            schema["description"] = description
        if param.default is not None:
            schema["default"] = param.default
        else:
            required.append(name)
        properties[name] = schema
    return properties, required


def _enum_from(group: str, t: Type, record: Record | None, pos, errors) -> Type:
    if record is None:
        return t
    if group not in record.groups or group == "":
        errors.append(SpecError(f"enum_from: unknown record group '{group}'", pos,
                                did_you_mean(group, [g for g in record.groups if g])))
        return t
    values = EnumT(tuple(record.groups[group]))
    if isinstance(t, ListT):
        return ListT(values)
    if not isinstance(t, TextT):
        errors.append(SpecError("enum_from needs a text or list[text] param", pos))
    return values


def _constraints(schema: dict, param: m.ToolParam, t: Type, pos, errors):
    if param.min is not None or param.max is not None:
        if not isinstance(t, NumT):
            errors.append(SpecError("min/max apply to numbers; use min_items/max_items for lists", pos))
        if param.min is not None:
            schema["minimum"] = param.min
        if param.max is not None:
            schema["maximum"] = param.max
    for key in ("min_items", "max_items"):
        if getattr(param, key) is not None:
            if not isinstance(t, ListT):
                errors.append(SpecError(f"{key} applies to lists", pos))
            schema[key.replace("_items", "Items")] = getattr(param, key)
    if param.max_length is not None:
        schema["maxLength"] = param.max_length


def _instrument_params(tool: m.Tool, instruments: dict, marks, errors):
    if tool.params:
        errors.append(SpecError("an instrument tool takes its parameters from the instrument; remove `params`",
                                marks.at(("params",), key=True)))
    checked = instruments.get(tool.instrument or "")
    if checked is None:
        return {}, []
    properties, required = {}, []
    for decl in checked.decl.inputs:
        t = checked.input_types[decl.name]
        schema = json_schema(t)
        text = decl.description or decl.name.replace("_", " ")
        if isinstance(t, NumT) and t.unit:
            text += f" (in {t.unit})"
        schema["description"] = text
        if decl.low is not None:
            schema["minimum"] = decl.low
        if decl.high is not None:
            schema["maximum"] = decl.high
        if decl.has_default:
            schema["default"] = decl.default
        else:
            required.append(decl.name)
        properties[decl.name] = schema
    return properties, required


# ---------------------------------------------------------------- kinds
def _path_ok(path: str | None, record: Record | None) -> bool:
    return record is None or path in record.groups or path in record.fields


def _check_path(tool, key, record, marks, errors, must_be_group=False):
    path = getattr(tool, key.rstrip("_"), None) if key != "from" else tool.from_
    if not path:
        errors.append(SpecError(f"a {tool.kind.value} tool needs `{key}:`", marks.at(("kind",))))
        return None
    ok = _path_ok(path, record) and (not must_be_group or record is None or path in record.groups)
    if not ok:
        known = list(record.groups) + list(record.fields) if record else []
        errors.append(SpecError(f"unknown record {'group' if must_be_group else 'path'} '{path}'", marks.at((key,)),
                                did_you_mean(path, known)))
        return None
    return path.split(".")


def _check_select(tool, out, marks, errors):
    out["select"] = tool.select
    if tool.select is not None and tool.select not in tool.params:
        errors.append(SpecError(f"select: '{tool.select}' is not a parameter of {tool.name}", marks.at(("select",)),
                                did_you_mean(tool.select, tool.params)))


def _lookup(tool, out, record, instruments, tables, marks, errors):
    out["path"] = _check_path(tool, "from", record, marks, errors)
    out["revealed_only"] = tool.revealed_only
    out["flags"] = tool.flags
    _check_select(tool, out, marks, errors)
    if out["path"] is not None and record is not None:
        out["window"] = _window(tool, ".".join(out["path"]), record, marks, errors)


WINDOW_PARAMS = ("since", "until", "last_n")


def _window(tool, path: str, record: Record, marks, errors) -> dict[str, float]:
    """A lookup over series fields takes `since`/`until` (times since admission) and `last_n` (rows) params:
    param -> hours per unit of its value (1 for last_n). Elsewhere those names are ordinary params."""
    under = [info for p, info in record.fields.items() if p == path or p.startswith(path + ".")]
    if not any(isinstance(info.type, SeriesT) for info in under):
        return {}
    out = {}
    for name in WINDOW_PARAMS:
        if name not in tool.params:
            continue
        pos = marks.at(("params", name, "type"))
        try:
            t = parse_field_type(tool.params[name].type, pos)
        except SpecError:
            continue  # reported with the params
        if name == "last_n":
            if not (isinstance(t, NumT) and t.is_int and t.unit is None):
                errors.append(SpecError(f"last_n counts rows: its type is int, not {t.describe()}", pos))
            out[name] = 1.0
            continue
        unit = u.lookup(t.unit) if isinstance(t, NumT) and t.unit else None
        if unit is None or unit.dimension != "time":
            errors.append(SpecError(f"{name} bounds the rows of a series by time: its type is a time "
                                    f"(e.g. `number h`, hours since admission), not {t.describe()}", pos))
            continue
        out[name] = unit.factor / u.lookup(SERIES_TIME_UNIT).factor
    return out


def _action(tool, out, record, instruments, tables, marks, errors):
    out["reveals"] = _check_path(tool, "reveals", record, marks, errors) if tool.reveals else None
    _check_select(tool, out, marks, errors)


def _instrument(tool, out, record, instruments, tables, marks, errors):
    if tool.instrument is None or tool.instrument not in instruments:
        errors.append(SpecError(f"unknown instrument '{tool.instrument}'", marks.at(("instrument",)),
                                did_you_mean(str(tool.instrument), instruments)))
    out["instrument"] = tool.instrument


def _table(tool, out, record, instruments, tables, marks, errors):
    if tool.table not in tables:
        errors.append(SpecError(f"unknown table '{tool.table}'", marks.at(("table",)), did_you_mean(str(tool.table), tables)))
    params = [tool.key_param] if isinstance(tool.key_param, str) else tool.key_param or []
    for index, param in enumerate(params):
        if param not in tool.params:
            where = ("key_param",) if isinstance(tool.key_param, str) else ("key_param", index)
            errors.append(SpecError(f"key_param '{param}' is not a parameter", marks.at(where),
                                    did_you_mean(param, tool.params)))
    table = tables.get(tool.table)
    if table is not None and tool.key_param is not None and len(params) != len(table.keys):
        errors.append(SpecError(f"table {table.name} has {len(table.keys)} key column{'s' if len(table.keys) > 1 else ''} "
                                f"({', '.join(table.keys)}): give key_param one param for each", marks.at(("key_param",))))
    out["table"], out["key_param"] = tool.table, tool.key_param


def _simulator(tool, out, record, instruments, tables, marks, errors):
    if tool.question_param not in tool.params:
        errors.append(SpecError("a simulator tool needs `question_param:` naming one of its params", marks.at(("kind",))))
    out["question_param"] = tool.question_param


def _kb_search(tool, out, record, instruments, tables, marks, errors):
    if tool.op is None:
        errors.append(SpecError("a kb_search tool needs `op: search` or `op: read`", marks.at(("kind",))))
    out["op"] = tool.op


def _submit(tool, out, record, instruments, tables, marks, errors):
    if not tool.params:
        errors.append(SpecError("a submit tool needs at least one answer parameter", marks.at(("kind",))))


def _python(tool, out, record, instruments, tables, marks, errors):
    if not tool.function:
        errors.append(SpecError("a python tool needs `function: package.module:function`", marks.at(("kind",))))
    out["function"] = tool.function


_KIND_CHECKS = kind_table({"lookup": _lookup, "action": _action, "instrument": _instrument, "table": _table,
                           "simulator": _simulator, "kb_search": _kb_search, "submit": _submit, "python": _python},
                          "medgym.compiler.tools._KIND_CHECKS")


def answer_type(submit: dict) -> "object":
    """The record type of a submitted answer, from the submit tool's parameter schema."""
    from medgym.dsl.types import BOOL, INT, NUMBER, TEXT, RecordT

    fields = []
    for name, schema in submit["parameters"]["properties"].items():
        fields.append((name, _schema_type(schema)))
    return RecordT("answer", tuple(fields))


def _schema_type(schema: dict):
    from medgym.dsl.types import BOOL, INT, NUMBER, TEXT, EnumT, ListT

    if "enum" in schema:
        return EnumT(tuple(schema["enum"]))
    kind = schema.get("type")
    if kind == "array":
        return ListT(_schema_type(schema.get("items", {})))
    return {"boolean": BOOL, "integer": INT, "number": NUMBER}.get(kind, TEXT)
