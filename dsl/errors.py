"""Located diagnostics: every error a spec author sees points at `path:line:col`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_SPEC_BYTES = 8 * 1024 * 1024  # far above any real spec; keeps a stray huge file from filling memory
# What YAML 1.1 allows in a stream (PyYAML's Reader): tab, line breaks and printable characters. Spec files
# of every kind are held to it, so a NUL or a control byte is one located error wherever it appears.
_NOT_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_BREAKS = "\n\x85\u2028\u2029"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based position in a spec file; `line == 0` means "the file as a whole".

    `scalar` (a YAML scalar's text and source, see `medgym.dsl.yamlpos.ScalarText`) lets an offset into the
    scalar's *loaded* text be mapped back to the file even when the source differs from it (folded `>`
    and literal `|` blocks, quotes, escapes); `base` is the index into that text this position stands for.
    Neither takes part in comparisons, so positions sort and compare by where they point.
    """

    path: str
    line: int = 0
    col: int = 0
    scalar: object = field(default=None, compare=False, repr=False)
    base: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"

    def plain(self) -> "Position":
        return self if self.scalar is None else Position(self.path, self.line, self.col)

    def offset(self, index: int) -> "Position":
        """The position `index` characters further into the text that starts here (0-based)."""
        if self.scalar is None:
            return Position(self.path, self.line, self.col + index)
        return self.scalar.position(self.base + index)

    def shifted(self, offset_line: int, offset_col: int) -> "Position":
        """The position `offset_*` characters into a scalar that starts here (1-based offsets)."""
        if self.scalar is not None:
            return self.offset(_index_of(self.scalar.text[self.base:], offset_line, offset_col))
        if offset_line <= 1:
            return Position(self.path, self.line, self.col + offset_col - 1)
        return Position(self.path, self.line + offset_line - 1, offset_col)


def _index_of(text: str, line: int, col: int) -> int:
    """The 0-based index of 1-based (line, col) in `text` (lines split at newlines)."""
    index = 0
    for _ in range(max(line, 1) - 1):
        found = text.find("\n", index)
        if found < 0:
            break
        index = found + 1
    return index + max(col, 1) - 1


@dataclass(frozen=True)
class SpecError(Exception):
    """One diagnostic: a message at a position, with an optional hint ("did you mean ...?")."""

    message: str
    pos: Position = field(default_factory=lambda: Position("<spec>"))
    hint: str = ""

    def __post_init__(self):
        # An error keeps only where it points, not the scalar text it was mapped through (it is pickled).
        object.__setattr__(self, "pos", self.pos.plain())

    def __str__(self) -> str:
        text = f"{self.pos}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def render(self) -> str:
        """The message, then the offending line and a caret, like a compiler."""
        text = str(self)
        line = source_line(self.pos)
        if line is not None:
            caret = " " * max(self.pos.col - 1, 0) + "^"
            text += f"\n    {line}\n    {caret}"
        return text

    def __reduce__(self):  # picklable across Ray workers and process pools
        return (SpecError, (self.message, self.pos, self.hint))


class SpecErrors(Exception):
    """Several diagnostics at once, sorted by position (the compiler reports all it finds)."""

    def __init__(self, errors: list[SpecError]):
        unique = {(e.pos, e.message): e for e in errors}  # a rule checked per scenario reports once
        self.errors = sorted(unique.values(), key=lambda e: (e.pos, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))

    def __reduce__(self):
        return (SpecErrors, (self.errors,))


def read_spec_text(path: Path | str) -> str:
    """A spec file's text, or a located SpecError: unreadable, too large, not UTF-8, or holding control bytes."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"file is larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB", Position(str(path)))
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", Position(str(path))) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = byte_position(data, exc.start)
        raise SpecError(f"invalid UTF-8 byte 0x{data[exc.start]:02x} (spec files are UTF-8 text)",
                        Position(str(path), line, col)) from None
    check_printable(text, str(path))
    return text


def byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`; the bytes before it are valid UTF-8."""
    start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[start:offset].decode("utf-8", "replace")) + 1


def check_printable(text: str, path: str) -> None:
    """Raise a located SpecError at the first character YAML does not allow in a stream (NUL, controls)."""
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line, col = text_position(text, bad.start())
        raise SpecError(f"control character U+{ord(bad.group()):04X} is not allowed in a spec file",
                        Position(path, line, col))


def text_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index`, counting line breaks as YAML and str.splitlines do."""
    line, start, i = 1, 0, 0
    while i < index:
        ch = text[i]
        if ch in _BREAKS or (ch == "\r" and text[i + 1:i + 2] != "\n"):
            line, start = line + 1, i + 1
        i += 1
    return line, index - start + 1


def within(text: str, pos: Position, lines: list[str] | None = None) -> Position:
    """`pos` moved into `text` where it points past it: past the last line (a parser's end of input) to the
    end of the last line that has text, past the end of a line (its line break) to the line's last character.
    `lines` is `spec_lines(text)` when the caller has it already."""
    if pos.line <= 0:
        return pos
    lines = spec_lines(text) if lines is None else lines
    line, col = pos.line, pos.col
    if line > len(lines):
        line = next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 1)
        col = len(lines[line - 1]) if lines else 1
    return Position(pos.path, line, max(1, min(col, len(lines[line - 1]) if lines else 1)))


def spec_lines(text: str) -> list[str]:
    """The lines of a spec file as its positions count them: split at YAML's line breaks (\n, \r\n, \r,
    NEL, LS, PS), not at the form feeds and other controls `str.splitlines` also splits at."""
    lines = _LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines  # a final line break ends the last line, as splitlines does


def source_line(pos: Position) -> str | None:
    """The text of the line `pos` points at, shown with control characters made visible; None if unknown."""
    if pos.line <= 0:
        return None
    try:
        lines = spec_lines(Path(pos.path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if pos.line > len(lines):
        return None
    return _NOT_PRINTABLE.sub("\ufffd", lines[pos.line - 1])


def did_you_mean(name: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
