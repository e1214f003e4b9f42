"""A YAML loader that keeps the line and column of every node and refuses what specs must not contain.

Positions live in a side table keyed by the node's path (a tuple of keys and indexes), because pydantic
copies dicts and strings and would lose positions stored on subclasses.

The document is built straight from PyYAML's event stream (`yaml.parse`, which is not recursive) rather
than through `yaml.compose` (which recurses per nesting level and expands aliases): anchors and aliases
are refused before anything could be expanded, nesting deeper than MAX_DEPTH is refused before Python's
recursion limit could be reached, and non-finite numbers are refused where they are read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from medgym.dsl.errors import Position, SpecError, check_printable, read_spec_text, spec_lines, text_position, within

PathKey = tuple
MAX_DEPTH = 40  # real specs nest under 10 levels; the bound keeps every later (recursive) pass safe
_BREAKS = "\r\n\x85\u2028\u2029"
_DROPPED = " \t'\"" + _BREAKS  # what folding, indentation and quoting drop between the text's characters


@dataclass
class Marks:
    """Where each value of a loaded YAML document starts (and where each key starts)."""

    path: str
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

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
        """Where the text of a scalar starts (after its quote, or on the first line of a block scalar);
        offsets from it map to the file through the scalar's source (see ScalarText)."""
        return self.at(loc).offset(0)


class ScalarText:
    """A string scalar's loaded text and its span in the file, so an index into the text maps to a file
    position. The text can differ from the source (folded `>` lines joined, `|` indentation removed,
    quotes and escapes); the mapping aligns the two, and is computed only when an error needs it."""

    def __init__(self, path: str, text: str, source: str, event):
        self.path, self.text, self.source, self.style = path, text, source, event.style
        self.start = event.start_mark.index
        self.line, self.col = event.start_mark.line + 1, event.start_mark.column + 1
        self.end = event.end_mark.index

    def position(self, index: int) -> Position:
        """The file position of text character `index` (clamped into the text), never a line break."""
        if not self.text:
            return Position(self.path, self.line, self.col, self, 0)
        index = min(max(index, 0), len(self.text) - 1)
        spots = self._spots
        at = next((i for i in (*range(index, -1, -1), *range(index + 1, len(spots)))
                   if self.source[spots[i]] not in _BREAKS), index)
        line, col = self._line_col(spots[at])
        return Position(self.path, line, col, self, index)

    @cached_property
    def _spots(self) -> list[int]:
        """The source index each text character came from (greedy alignment; an escape maps to its `\\`)."""
        src, j, end = self.source, self._content_start(), self._content_end()
        out = []
        for ch in self.text:
            k, found = j, None
            while k < end:
                c = src[k]
                if self.style == '"' and c == "\\":
                    if src[k + 1:k + 2] in ("\n", "\r"):  # an escaped line break joins the lines
                        k += 2
                        continue
                    found, j = k, k + {"x": 4, "u": 6, "U": 10}.get(src[k + 1:k + 2], 2)
                    break
                if ch == c or (ch in " \n" and c in _BREAKS):
                    found, j = k, k + 1
                    break
                if c not in _DROPPED:
                    break
                k += 1
            out.append(found if found is not None else min(j, max(end - 1, self.start)))
        return out

    def _content_start(self) -> int:
        if self.style in ("|", ">"):  # past the header line (`>-`, `|2`, a comment)
            breaks = [i for i in (self.source.find(b, self.start, self.end) for b in "\r\n") if i >= 0]
            return min(breaks) + 1 if breaks else self.end
        return self.start + (1 if self.style in ("'", '"') else 0)

    def _content_end(self) -> int:
        return self.end - (1 if self.style in ("'", '"') else 0)

    def _line_col(self, target: int) -> tuple[int, int]:
        line, col, src = self.line, self.col, self.source
        for i in range(self.start, target):
            ch = src[i]
            if ch in "\n\x85\u2028\u2029" or (ch == "\r" and src[i + 1:i + 2] != "\n"):
                line, col = line + 1, 1
            else:
                col += 1
        return line, col


def load_yaml(path: Path | str, text: str | None = None) -> tuple[object, Marks]:
    path = str(path)
    if text is None:
        text = read_spec_text(path)
    else:
        check_printable(text, path)
    marks = Marks(path)
    try:
        return _Builder(path, text, marks).build(), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = within(text, Position(path, mark.line + 1, mark.column + 1)) if mark else Position(path)
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", pos) from None
    except yaml.reader.ReaderError as exc:  # check_printable runs first; this is a second line of defence
        raise SpecError(f"invalid YAML: {exc}", Position(path, *text_position(text, exc.position))) from None


_NO_KEY = object()
_LIBYAML = getattr(yaml, "__with_libyaml__", False)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_PLAIN_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str")}  # what specs hold
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass
class _Frame:
    container: dict | list
    loc: PathKey
    key: object = _NO_KEY  # in a mapping: the key whose value comes next


class _Builder:
    """Python values and their marks from YAML events, one document, with a stack instead of recursion."""

    def __init__(self, path: str, text: str, marks: Marks):
        self.path, self.text, self.marks = path, text, marks
        self.loader = yaml.SafeLoader("")  # resolves and constructs single scalars; never sees a document

    def build(self):
        # libyaml reads ~10x faster and yields the same events (tests/dsl/test_yamlpos_fast.py); its marks
        # count characters only for ASCII text, so other text, and every YAML error (for the pure-Python
        # parser's wording), goes through the pure-Python parser.
        if _LIBYAML and self.text.isascii():
            try:
                return self._build(yaml.CSafeLoader)
            except yaml.YAMLError:
                self.marks.values.clear()
                self.marks.keys.clear()
        return self._build(yaml.SafeLoader)

    def _build(self, loader):
        stack: list[_Frame] = []
        root, documents = None, 0
        for event in yaml.parse(self.text, Loader=loader):
            if isinstance(event, yaml.ScalarEvent) and event.style == "":
                event.style = None  # libyaml's plain style; the pure-Python parser's is None
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise SpecError("a spec file holds one YAML document; remove the second '---'", self._pos(event))
            elif isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise SpecError("YAML anchors and aliases (&name, *name) are not supported; write the value out",
                                self._pos(event))
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise SpecError(f"nested more than {MAX_DEPTH} levels deep", self._pos(event))
                if event.tag not in _PLAIN_TAGS:
                    raise SpecError(f"YAML tag '{event.tag}' is not supported here", self._pos(event))
                container = {} if isinstance(event, yaml.MappingStartEvent) else []
                stack.append(_Frame(container, self._place(stack, container, event)))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                root = frame.container if not stack else root
            elif isinstance(event, yaml.ScalarEvent):
                if stack and isinstance(stack[-1].container, dict) and stack[-1].key is _NO_KEY:
                    self._key(stack[-1], event)
                    continue
                value = self._scalar(event)
                loc = self._place(stack, value, event)
                if isinstance(value, str):  # text can hold expressions and templates: keep its source span
                    pos = self.marks.values[loc]
                    self.marks.values[loc] = Position(pos.path, pos.line, pos.col, ScalarText(self.path, value, self.text, event))
                root = value if not stack else root
        return root

    def _pos(self, event) -> Position:
        pos = Position(self.path, event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, yaml.ScalarEvent) and not event.value and event.style is None:
            return within(self.text, pos, self._lines)  # an empty value (`key:`) starts after its line's end
        return pos

    @cached_property
    def _lines(self) -> list[str]:
        return spec_lines(self.text)

    def _place(self, stack: list[_Frame], value, event) -> PathKey:
        """Put `value` into the innermost container and record where it starts; its path."""
        if not stack:
            loc = ()
        else:
            frame = stack[-1]
            if isinstance(frame.container, dict):
                if frame.key is _NO_KEY:
                    raise SpecError("mapping keys must be plain scalars", self._pos(event))
                loc = frame.loc + (frame.key,)
                frame.container[frame.key] = value
                frame.key = _NO_KEY
            else:
                loc = frame.loc + (len(frame.container),)
                frame.container.append(value)
        self.marks.values[loc] = self._pos(event)
        return loc

    def _key(self, frame: _Frame, event):
        pos = self._pos(event)
        key = self._scalar(event)
        if self._tag(event) == "tag:yaml.org,2002:merge":
            raise SpecError("YAML merge keys (<<) are not supported; write the keys out", pos)
        if not isinstance(key, (str, int, float, bool)):
            raise SpecError("mapping keys must be plain scalars", pos)
        if key in frame.container:
            first = self.marks.keys[frame.loc + (key,)]
            raise SpecError(f"duplicate key '{key}' (first defined at line {first.line})", pos)
        self.marks.keys[frame.loc + (key,)] = pos
        frame.key = key

    def _tag(self, event) -> str:
        if event.tag is None or event.tag == "!":
            return self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        return event.tag

    def _scalar(self, event):
        tag = self._tag(event)
        if tag == "tag:yaml.org,2002:merge":
            return "<<"
        if tag == _TIMESTAMP and event.implicit[0]:
            return event.value  # a plain 2024-01-01 is text to a spec, not a datetime no later stage expects
        if tag not in _SCALAR_TAGS:
            raise SpecError(f"YAML tag '{event.tag or tag}' is not supported here", self._pos(event))
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        try:
            value = self.loader.construct_object(node)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. a 5,000-digit integer, a 13th month
            raise SpecError(f"cannot read {_short(event.value)}: {exc}", self._pos(event)) from None
        finally:
            self.loader.constructed_objects.clear()
        if _non_finite(value, event):
            raise SpecError(f"{_short(event.value)} is not a finite number; spec numbers must be finite", self._pos(event))
        return value


def _non_finite(value, event) -> bool:
    """A float that is inf or nan, or plain text such as `1e999` that YAML 1.1 leaves a string but a number
    field would read as infinity."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and event.style is None and _NUMBER.fullmatch(value):
        return not math.isfinite(float(value))
    return False


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
