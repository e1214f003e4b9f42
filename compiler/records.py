"""Record schemas: the typed shape of a domain's case record, and an index of its fields by path."""
from __future__ import annotations

from dataclasses import dataclass

from medgym.dsl import models as m
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.parser import parse_type
from medgym.dsl.types import IMAGE, TEXT, ImageT, NumT, RecordT, SeriesT, Type, from_ref
from medgym.dsl.yamlpos import Marks


@dataclass(frozen=True)
class FieldInfo:
    path: str  # dotted, e.g. "vitals.hr"
    type: Type
    spec: m.RecordField
    pos: Position
    normal_pos: Position | None = None  # where the field's `normal` value is written
    marks: Marks | None = None  # record.yaml's positions, and the field's place in it: errors inside its
    loc: tuple = ()  # `normal` (a series generator's keys) point at the key at fault


@dataclass
class Record:
    entity: str
    id_prefix: str
    type: RecordT
    fields: dict[str, FieldInfo]  # leaf fields by dotted path
    groups: dict[str, list[str]]  # group path ("" = root) -> child names


def parse_field_type(text: str, pos: Position) -> Type:
    return from_ref(parse_type(text, pos), pos)


def build_record(loaded, errors: list[SpecError]) -> Record | None:
    schema: m.RecordSchema = loaded.model
    marks: Marks = loaded.marks
    fields: dict[str, FieldInfo] = {}
    groups: dict[str, list[str]] = {}
    if "id" in schema.fields:
        errors.append(SpecError("'id' is generated for every case; do not declare it", marks.at(("fields", "id"), key=True)))
    record_t = _group_type("case", schema.fields, ("fields",), "", marks, fields, groups, errors)
    record_t = RecordT("case", (("id", TEXT),) + record_t.fields)
    record = Record(schema.entity, schema.id_prefix, record_t, fields, groups)
    _check_findings(record, marks, errors)
    return record


def _check_findings(record: Record, marks: Marks, errors: list[SpecError]) -> None:
    """An image field names the record group of its findings; only image fields have findings."""
    for path, info in record.fields.items():
        loc = ("fields",) + tuple(p for part in path.split(".") for p in (part, "fields"))[:-1]
        where = info.spec.findings
        if not isinstance(info.type, ImageT):
            if where is not None:
                errors.append(SpecError("only an image field has findings:", marks.at(loc + ("findings",), key=True)))
            continue
        if where is None:
            errors.append(SpecError(f"image field '{path}' needs findings: the record group of its structured findings "
                                    f"(what text-only agents are shown)", marks.at(loc + ("type",))))
        elif where not in record.groups or not where:
            groups = [g for g in record.groups if g]
            errors.append(SpecError(f"findings: '{where}' is not a group of the record", marks.at(loc + ("findings",)),
                                    did_you_mean(where, groups) or "declare the findings as a group of fields"))
        elif path.startswith(where + "."):
            errors.append(SpecError(f"findings: '{where}' holds the image itself; name the group of its findings",
                                    marks.at(loc + ("findings",))))


def _group_type(name, children: dict, loc: tuple, prefix: str, marks: Marks, fields, groups, errors) -> RecordT:
    members = []
    groups[prefix] = list(children)
    for key, node in children.items():
        path = f"{prefix}.{key}" if prefix else key
        here = loc + (key,)
        if isinstance(node, m.RecordGroup):
            members.append((key, _group_type(path, node.fields, here + ("fields",), path, marks, fields, groups, errors)))
            continue
        pos = marks.at(here + ("type",))
        try:
            t = IMAGE if node.type.strip() == "image" else parse_field_type(node.type, pos)
        except SpecError as exc:
            errors.append(exc)
            continue
        for bound in ("range", "reference", "critical"):
            span = getattr(node, bound)
            if span is not None and not _valid_span(span, t, one_sided=bound != "range"):
                errors.append(SpecError(f"'{bound}' needs a number field and low <= high"
                                        + (" (null for an open side)" if bound != "range" else ""),
                                        marks.at(here + (bound,))))
        fields[path] = FieldInfo(path, t, node, marks.at(here), marks.at(here + ("normal",)), marks, here)
        members.append((key, t))
    return RecordT(name, tuple(members))


def _valid_span(span, t, one_sided: bool) -> bool:
    low, high = span
    t = t.item if isinstance(t, SeriesT) else t  # a series' limits apply to each value
    if not isinstance(t, NumT) or (low is None and high is None):
        return False
    if None in (low, high):
        return one_sided
    return low <= high


def field_summary(record: Record) -> dict:
    """What the runtime needs for flags: unit, reference and critical ranges by dotted path."""
    out = {}
    for path, info in record.fields.items():
        entry = {"type": info.type.describe()}
        number = info.type.item if isinstance(info.type, SeriesT) else info.type
        if isinstance(number, NumT) and number.unit:
            entry["unit"] = number.unit
        for bound in ("reference", "critical"):
            if getattr(info.spec, bound) is not None:
                entry[bound] = list(getattr(info.spec, bound))
        if info.spec.findings is not None:
            entry["findings"] = info.spec.findings
        out[path] = entry
    return out
