"""Located diagnostics: every error a spec author sees points at `path:line:col`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based position in a spec file; `line == 0` means "the file as a whole"."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"

    def shifted(self, offset_line: int, offset_col: int) -> "Position":
        """The position `offset_*` characters into a scalar that starts here (1-based offsets)."""
        if offset_line <= 1:
            return Position(self.path, self.line, self.col + offset_col - 1)
        return Position(self.path, self.line + offset_line - 1, offset_col)


@dataclass(frozen=True)
class SpecError(Exception):
    """One diagnostic: a message at a position, with an optional hint ("did you mean ...?")."""

    message: str
    pos: Position = field(default_factory=lambda: Position("<spec>"))
    hint: str = ""

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
        self.errors = sorted(unique.values(), key=lambda e: e.pos)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __reduce__(self):
        return (SpecErrors, (self.errors,))


def source_line(pos: Position) -> str | None:
    if pos.line <= 0:
        return None
    try:
        lines = Path(pos.path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return lines[pos.line - 1] if pos.line <= len(lines) else None


def did_you_mean(name: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
