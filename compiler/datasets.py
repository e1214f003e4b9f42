"""Dataset-backed families: items read from a JSONL or CSV file through a field mapping, one task per item.

Each item keeps the dataset's own split (through `split_map`), never the hash split of generated tasks, and
carries a fingerprint: the sha256 of its normalised content (the `fingerprint` fields: question and options
by default), which also names its task. The compiler refuses a build where one fingerprint is in train and
an evaluation split, or twice in the data, and the manifest records each file with its licence, source,
item counts per split and hash. Rows and values that do not fit are errors at the data file's row; a
mapping that names a column the file lacks is an error at the mapping in the family's YAML.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from medgym.compiler.expressions import literal_type
from medgym.dsl import models as m
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.support import comparable
from medgym.dsl.types import INT, NUMBER, TEXT, RecordT, Type

SPLITS = ("train", "val", "test")
EVAL_SPLITS = ("val", "test")
MAX_BYTES = 64 * 1024 * 1024


@dataclass
class Item:
    row: int  # the file's line (JSONL) or row counting the header as 1 (CSV)
    values: dict  # item field -> value (the split field left out)
    split: str
    fingerprint: str


@dataclass
class LoadedDataset:
    spec: m.Dataset
    family: str
    path: Path
    file: str  # as the family wrote it, relative to the domain folder
    format: str
    sha256: str
    items: list[Item]
    type: RecordT  # the type of `item` in expressions

    def position(self, row: int) -> Position:
        return Position(str(self.path), row, 1)


def load_dataset(spec: m.Dataset, family: str, folder: Path, marks, errors: list[SpecError]) -> LoadedDataset | None:
    """The family's items, or None after appending located errors."""
    before = len(errors)
    where = ("dataset",)
    path = _data_path(folder, spec.file, marks.at(where + ("file",)), errors)
    if path is None:
        return None
    kind = spec.format or {".jsonl": "jsonl", ".csv": "csv"}.get(path.suffix.lower())
    if kind is None:
        errors.append(SpecError(f"cannot tell the format of {spec.file}", marks.at(where + ("file",)),
                                "name it .jsonl or .csv, or say format: jsonl|csv"))
        return None
    data = path.read_bytes()
    rows = _rows(data, kind, path, errors)
    if rows is None:
        return None
    if not rows:
        errors.append(SpecError(f"{spec.file} has no items", Position(str(path), 1, 1)))
        return None
    if "split" not in spec.fields and spec.split is None:
        errors.append(SpecError("a dataset needs its split: map the split column (fields: {split: COLUMN}) or give "
                                "every item one split (split: test)", marks.at(where, key=True)))
    _check_columns(spec, rows, marks, errors)
    keys = _fingerprint_fields(spec, marks, errors)
    if len(errors) > before:
        return None
    items = []
    for row, record in rows:
        item = _item(spec, row, record, keys, path, errors)
        if item is not None:
            items.append(item)
    item_type = _item_type(spec, items, path, marks, errors)
    if len(errors) > before:
        return None
    loaded = LoadedDataset(spec, family, path, spec.file, kind, hashlib.sha256(data).hexdigest(), items, item_type)
    errors.extend(duplicates(loaded))
    return loaded if len(errors) == before else None


def _data_path(folder: Path, name: str, pos: Position, errors) -> Path | None:
    try:
        path = (folder / name).resolve()
        inside = path.is_relative_to(folder.resolve())
        exists = path.is_file()
    except (OSError, ValueError):
        inside = exists = False
    if not inside:
        errors.append(SpecError(f"dataset file {name!r} is outside the domain folder", pos))
        return None
    if not exists:
        errors.append(SpecError(f"dataset file {name!r} not found (looked in {folder})", pos))
        return None
    if path.stat().st_size > MAX_BYTES:
        errors.append(SpecError(f"dataset file {name!r} is over {MAX_BYTES // 2**20} MiB", pos))
        return None
    return path


def _rows(data: bytes, kind: str, path: Path, errors) -> list[tuple[int, dict]] | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        errors.append(SpecError(f"row {line}: not UTF-8 text", Position(str(path), line, 1)))
        return None
    return _jsonl(text, path, errors) if kind == "jsonl" else _csv(text, path, errors)


def _jsonl(text: str, path: Path, errors) -> list[tuple[int, dict]] | None:
    rows, ok = [], True
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            errors.append(SpecError(f"row {line}: not valid JSON ({exc.msg})", Position(str(path), line, exc.colno)))
            ok = False
            continue
        if not isinstance(value, dict):
            errors.append(SpecError(f"row {line}: an item is a JSON object, not {type(value).__name__}",
                                    Position(str(path), line, 1)))
            ok = False
            continue
        rows.append((line, value))
    return rows if ok else None


def _csv(text: str, path: Path, errors) -> list[tuple[int, dict]] | None:
    reader = csv.reader(io.StringIO(text))
    try:
        table = list(reader)
    except csv.Error as exc:
        errors.append(SpecError(f"row {reader.line_num}: {exc}", Position(str(path), reader.line_num, 1)))
        return None
    if not table:
        return []
    header, rows, ok = table[0], [], True
    for index, cells in enumerate(table[1:], 2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(SpecError(f"row {index}: {len(cells)} cells, but the header has {len(header)} columns",
                                    Position(str(path), index, 1)))
            ok = False
            continue
        rows.append((index, dict(zip(header, cells))))
    return rows if ok else None


_MISSING = object()


def _get(record: dict, column: str):
    """A column, or a dotted path into nested JSON objects (`meta.split`)."""
    if column in record:
        return record[column]
    value = record
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _columns(mapping) -> list[str]:
    return [mapping] if isinstance(mapping, str) else list(mapping)


def _check_columns(spec: m.Dataset, rows: list[tuple[int, dict]], marks, errors) -> None:
    """A mapped column no row has is a mistake in the mapping: located there, with the columns the file has."""
    known = list(dict.fromkeys(k for _, record in rows for k in record))
    for name, mapping in spec.fields.items():
        for index, column in enumerate(_columns(mapping)):
            if all(_get(record, column) is _MISSING for _, record in rows):
                loc = ("dataset", "fields", name) + ((index,) if not isinstance(mapping, str) else ())
                errors.append(SpecError(f"column '{column}' is not in {spec.file}", marks.at(loc),
                                        did_you_mean(column, known) or f"its columns: {', '.join(known)}"))


def _fingerprint_fields(spec: m.Dataset, marks, errors) -> list[str]:
    if spec.fingerprint is not None:
        for index, name in enumerate(spec.fingerprint):
            if name not in spec.fields or name == "split":
                errors.append(SpecError(f"'{name}' is not an item field", marks.at(("dataset", "fingerprint", index)),
                                        did_you_mean(name, [k for k in spec.fields if k != "split"])))
        return list(spec.fingerprint)
    stem = [k for k in ("question", "options") if k in spec.fields]
    return stem if "question" in stem else [k for k in spec.fields if k != "split"]


def _item(spec: m.Dataset, row: int, record: dict, keys: list[str], path: Path, errors) -> Item | None:
    values = {}
    for name, mapping in spec.fields.items():
        if isinstance(mapping, str):
            value = _get(record, mapping)
            if isinstance(value, dict):  # lettered options, {"A": "...", "B": "..."}: their texts in order
                value = list(value.values())
        else:
            value = [_get(record, column) for column in mapping]
            value = _MISSING if any(v is _MISSING for v in value) else [str(v) for v in value]
        if value is _MISSING or value is None:
            errors.append(SpecError(f"row {row}: no value for '{name}' (column {mapping!r})", Position(str(path), row, 1)))
            return None
        values[name] = value
    split = values.pop("split", None)
    split = spec.split if split is None else spec.split_map.get(str(split), str(split))
    if split not in SPLITS:
        errors.append(SpecError(f"row {row}: split {split!r} is not train, val or test", Position(str(path), row, 1),
                                f"map it under split_map: (e.g. {{{split}: test}})"))
        return None
    content = json.dumps({k: comparable(values[k]) for k in keys}, sort_keys=True, ensure_ascii=False)
    return Item(row, values, split, hashlib.sha256(content.encode()).hexdigest())


def _value_type(value) -> Type | None:
    """A data value's type: text, int, number, bool or list[text]; None for anything else."""
    if value is None or isinstance(value, dict) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
        return None
    return literal_type(value)


def _item_type(spec: m.Dataset, items: list[Item], path: Path, marks, errors) -> RecordT:
    """Each item field's type, the same in every row: text, int, number, bool or list[text]."""
    fields = []
    for name in spec.fields:
        if name == "split":
            continue
        found: Type | None = None
        for item in items:
            t = _value_type(item.values[name])
            if t is None:
                errors.append(SpecError(f"row {item.row}: '{name}' is {type(item.values[name]).__name__}; an item field "
                                        f"is text, a number, true/false or a list of texts", Position(str(path), item.row, 1)))
                break
            if found is None or found == t:
                found = t
            elif {found, t} == {INT, NUMBER}:
                found = NUMBER
            else:
                errors.append(SpecError(f"row {item.row}: '{name}' is {t.describe()}, but earlier rows give "
                                        f"{found.describe()}", Position(str(path), item.row, 1)))
                break
        fields.append((name, found or TEXT))
    return RecordT("item", tuple(fields))


def duplicates(dataset: LoadedDataset) -> list[SpecError]:
    """One error per item whose fingerprint an earlier row of the file has: a train item repeated in an
    evaluation split leaks the answer into training, and any other repeat counts one question twice."""
    first: dict[str, Item] = {}
    errors = []
    for item in dataset.items:
        earlier = first.setdefault(item.fingerprint, item)
        if earlier is item:
            continue
        if earlier.split != item.split and "train" in (earlier.split, item.split):
            message = (f"row {item.row} ({item.split}) is the same item as row {earlier.row} ({earlier.split}): a "
                       f"{'test' if 'test' in (item.split, earlier.split) else 'val'} item would be in train")
        else:
            message = f"row {item.row} ({item.split}) repeats row {earlier.row} ({earlier.split})"
        errors.append(SpecError(message, dataset.position(item.row), "remove one of them"))
    return errors


def check_splits(families, tasks: list[dict]) -> list[SpecError]:
    """Every dataset task is in its item's split, and no fingerprint is in train and an evaluation split
    across the domain's families (one error per fingerprint, at the family that brought it in second)."""
    datasets = {fam.name: fam.dataset for fam in families if getattr(fam, "dataset", None) is not None}
    by_fingerprint = {item.fingerprint: item for d in datasets.values() for item in d.items}
    errors, seen, reported = [], {}, set()
    for task in tasks:
        fingerprint = task.get("fingerprint")
        if task["family"] not in datasets or fingerprint is None:
            continue
        dataset = datasets[task["family"]]
        item = by_fingerprint[fingerprint]
        if task["split"] != item.split:
            errors.append(SpecError(f"task {task['task_id']} is in {task['split']}, but its item (row {item.row}) is "
                                    f"{item.split}", dataset.position(item.row)))
        other = seen.setdefault(fingerprint, task)
        splits = {other["split"], task["split"]}
        if other is not task and "train" in splits and splits & set(EVAL_SPLITS) and fingerprint not in reported:
            reported.add(fingerprint)
            errors.append(SpecError(f"the item of {task['task_id']} ({task['split']}) is also {other['task_id']} "
                                    f"({other['split']}) of family {other['family']}: an evaluation item would be "
                                    f"in train", dataset.position(item.row)))
    return errors


def summaries(families) -> dict[str, dict]:
    """The manifest's `datasets`: file -> format, licence, source, sha256, the families reading it, its item
    count and items per split."""
    out: dict[str, dict] = {}
    for fam in families:
        dataset = getattr(fam, "dataset", None)
        if dataset is None:
            continue
        entry = out.setdefault(dataset.file, {
            "file": dataset.file, "format": dataset.format, "licence": dataset.spec.licence,
            "source": dataset.spec.source, "sha256": dataset.sha256, "families": [], "items": len(dataset.items),
            "splits": {s: sum(1 for i in dataset.items if i.split == s) for s in SPLITS}})
        entry["families"].append(fam.name)
    return out
