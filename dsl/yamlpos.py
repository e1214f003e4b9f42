"""A YAML loader that keeps the line and column of every node and rejects duplicate keys.

Positions live in a side table keyed by the node's path (a tuple of keys and indexes), because pydantic
copies dicts and strings and would lose positions stored on subclasses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medgym.dsl.errors import Position, SpecError

PathKey = tuple


@dataclass
class Marks:
    """Where each value of a loaded YAML document starts (and where each key starts)."""

    path: str
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)
    quoted: set[PathKey] = field(default_factory=set)

    def at(self, loc: PathKey, key: bool = False) -> Position:
        """The position of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        table = self.keys if key else self.values
        while loc:
            if loc in table:
                return table[loc]
            if loc in self.values:
                return self.values[loc]
            loc = loc[:-1]
        return self.values.get((), Position(self.path, 1, 1))

    def expression_origin(self, loc: PathKey) -> Position:
        """Where the text of a `=expression` scalar starts (after its quote and the `=`)."""
        pos = self.at(loc)
        return Position(pos.path, pos.line, pos.col + (1 if tuple(loc) in self.quoted else 0))


def load_yaml(path: Path | str, text: str | None = None) -> tuple[object, Marks]:
    path = str(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    marks = Marks(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(path, mark.line + 1, mark.column + 1) if mark else Position(path)
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", pos) from None
    if root is None:
        return None, marks
    constructor = yaml.SafeLoader("")
    return _build(root, (), marks, constructor), marks


def _pos(marks: Marks, node) -> Position:
    return Position(marks.path, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node, loc: PathKey, marks: Marks, constructor):
    marks.values[loc] = _pos(marks, node)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported; write the keys out", _pos(marks, key_node))
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise SpecError("mapping keys must be plain scalars", _pos(marks, key_node))
            if key in out:
                first = marks.keys[loc + (key,)]
                raise SpecError(f"duplicate key '{key}' (first defined at line {first.line})", _pos(marks, key_node))
            marks.keys[loc + (key,)] = _pos(marks, key_node)
            out[key] = _build(value_node, loc + (key,), marks, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loc + (i,), marks, constructor) for i, item in enumerate(node.value)]
    if node.style in ("'", '"'):
        marks.quoted.add(loc)
    return constructor.construct_object(node, deep=True)
