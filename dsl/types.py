"""Types of the expression language. Units (and the analyte a number measures) are part of number types."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from medgym.dsl import nodes as n
from medgym.dsl import units as u
from medgym.dsl.errors import Position, SpecError


@dataclass(frozen=True)
class Type:
    def describe(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True)
class BoolT(Type):
    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class TextT(Type):
    def describe(self) -> str:
        return "text"


@dataclass(frozen=True)
class NumT(Type):
    unit: str | None = None
    is_int: bool = False
    analyte: str | None = None  # what it measures (`number mg/dL of creatinine`), for molar conversions

    def describe(self) -> str:
        base = "int" if self.is_int else "number"
        text = f"{base} {self.unit}" if self.unit else base
        return f"{text} of {self.analyte}" if self.analyte else text


@dataclass(frozen=True)
class DateT(Type):
    """A calendar date; its values are ISO 8601 text (`2024-03-15`) wherever they appear."""

    def describe(self) -> str:
        return "date"


@dataclass(frozen=True)
class EnumT(Type):
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"enum({', '.join(self.values)})"


@dataclass(frozen=True)
class ListT(Type):
    item: Type = TextT()

    def describe(self) -> str:
        return f"list[{self.item.describe()}]"


@dataclass(frozen=True)
class SeriesT(Type):
    """Timestamped numbers (a creatinine over an admission): rows {"time": hours since admission, "value": v},
    in time order; `item` is the number type of the values (its unit, its analyte)."""

    item: NumT = NumT()

    def describe(self) -> str:
        return f"series({self.item.describe()})"


SERIES_TIME_UNIT = "h"  # row times are hours since admission, whatever unit a spec writes a window in


@dataclass(frozen=True)
class RecordT(Type):
    name: str = "record"
    fields: tuple[tuple[str, Type], ...] = ()

    def field(self, key: str) -> Type | None:
        return dict(self.fields).get(key)

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class AnyT(Type):
    """Known only at run time (e.g. the result of a non-instrument tool)."""

    def describe(self) -> str:
        return "any"


BOOL, TEXT, NUMBER, INT, ANY, DATE = BoolT(), TextT(), NumT(), NumT(is_int=True), AnyT(), DateT()
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_iso_date(value) -> datetime.date | None:
    """The date an ISO `YYYY-MM-DD` text names, else None (other layouts are refused: 03/04/2024 is ambiguous)."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def from_ref(ref: n.TypeRef, pos: Position) -> Type:
    """The type a spec wrote (`number mg/dL`, `enum(a, b)`, ...), checking its unit exists."""
    if ref.kind == "bool":
        return BOOL
    if ref.kind == "text":
        return TEXT
    if ref.kind == "date":
        return DATE
    if ref.kind in ("int", "number"):
        if ref.unit is not None and u.lookup(ref.unit) is None:
            raise SpecError(f"unknown unit '{ref.unit}'", pos, _unit_hint(ref.unit))
        unit = u.lookup(ref.unit).name if ref.unit else None
        return NumT(unit, ref.kind == "int", _analyte(ref, unit, pos))
    if ref.kind == "enum":
        if len(set(ref.values)) != len(ref.values):
            raise SpecError("enum has a repeated value", pos)
        return EnumT(ref.values)
    if ref.kind == "list":
        return ListT(from_ref(ref.item, pos))
    if ref.kind == "series":
        item = from_ref(ref.item, pos)
        if not isinstance(item, NumT):
            raise SpecError(f"a series holds numbers, not {item.describe()} (e.g. `series(number mg/dL)`)", pos)
        return SeriesT(item)
    raise SpecError(f"unknown type '{ref.kind}'", pos)


def _analyte(ref: n.TypeRef, unit: str | None, pos: Position) -> str | None:
    from medgym.dsl.analytes import ANALYTES
    from medgym.dsl.errors import did_you_mean

    if ref.analyte is None:
        return None
    if ref.analyte not in ANALYTES:
        raise SpecError(f"unknown analyte '{ref.analyte}'", pos,
                        did_you_mean(ref.analyte, ANALYTES) or f"known analytes: {', '.join(ANALYTES)}")
    if unit is None:
        raise SpecError(f"a number of {ref.analyte} needs a unit (e.g. `number mg/dL of {ref.analyte}`)", pos)
    return ref.analyte


def _unit_hint(name: str) -> str:
    from medgym.dsl.errors import did_you_mean

    return did_you_mean(name, u.UNITS) or "see docs/spec-language.md for the known units"


def json_schema(t: Type) -> dict:
    """The JSON Schema of values of type `t` (for OpenAI tool parameters)."""
    if isinstance(t, BoolT):
        return {"type": "boolean"}
    if isinstance(t, NumT):
        return {"type": "integer" if t.is_int else "number"}
    if isinstance(t, EnumT):
        return {"type": "string", "enum": list(t.values)}
    if isinstance(t, ListT):
        return {"type": "array", "items": json_schema(t.item)}
    if isinstance(t, RecordT):
        return {"type": "object", "properties": {k: json_schema(v) for k, v in t.fields}}
    if isinstance(t, SeriesT):
        return {"type": "array", "items": {"type": "object", "properties": {"time": {"type": "number"},
                                                                        "value": json_schema(t.item)}}}
    if isinstance(t, DateT):
        return {"type": "string", "format": "date"}
    return {"type": "string"}


def value_matches(t: Type, value) -> bool:
    """Whether a Python value (from YAML or an evaluation) is of type `t`."""
    if isinstance(t, BoolT):
        return isinstance(value, bool)
    if isinstance(t, NumT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return not t.is_int or float(value).is_integer()
    if isinstance(t, EnumT):
        return isinstance(value, str) and value in t.values
    if isinstance(t, TextT):
        return isinstance(value, str)
    if isinstance(t, DateT):
        return parse_iso_date(value) is not None
    if isinstance(t, ListT):
        return isinstance(value, (list, tuple)) and all(value_matches(t.item, v) for v in value)
    if isinstance(t, RecordT):
        return isinstance(value, dict) and all(k in value and value_matches(ft, value[k]) for k, ft in t.fields)
    if isinstance(t, SeriesT):
        return isinstance(value, (list, tuple)) and all(_series_row(t, row) for row in value) and \
            [row["time"] for row in value] == sorted(row["time"] for row in value)
    return True


@dataclass(frozen=True)
class ImageT(TextT):
    """An image slot: a case value naming an image file (relative to the domain folder); its structured
    findings live in the record group the field's `findings:` names. Expressions see the file name as text."""

    def describe(self) -> str:
        return "image"


IMAGE = ImageT()


def series_problem(t: SeriesT, rows) -> str | None:
    """Why `rows` is not a value of series type `t` (None when it is), naming the first bad row."""
    if not isinstance(rows, (list, tuple)):
        return f"a series is a list of {{time, value}} rows, not {type(rows).__name__}"
    for index, row in enumerate(rows, 1):
        if not _series_row(t, row):
            return f"row {index} must be {{time: hours since admission, value: {t.item.describe()}}}, not {row!r}"[:200]
        if index > 1 and row["time"] < rows[index - 2]["time"]:
            return f"row {index} (time {row['time']:g}) comes before row {index - 1} (time {rows[index - 2]['time']:g}): " \
                   f"rows are in time order"
    return None


def _series_row(t: SeriesT, row) -> bool:
    return isinstance(row, dict) and set(row) == {"time", "value"} and value_matches(NumT(), row["time"]) \
        and value_matches(t.item, row["value"])
