"""Shared by the compiler misuse tests: a copy of a fixture spec tree with one text edited, and the line and
column where a text sits (what a located error must point at)."""
import shutil
from pathlib import Path


def edited_copy(fixture: Path, tmp_path: Path, file: str, old: str, new: str, *, once: bool = False) -> Path:
    """`fixture` copied to tmp_path/specs with the first `old` in `file` replaced by `new`; with `once`, `old`
    must occur exactly once (so the edit cannot land somewhere the test did not mean)."""
    root = tmp_path / "specs"
    shutil.copytree(fixture, root)
    path = root / file
    text = path.read_text()
    if once:
        assert text.count(old) == 1, f"fixture text not found once: {old!r}"
    else:
        assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1))
    return root


def position(path: Path, anchor: str) -> tuple[int, int]:
    """1-based line and column of the only occurrence of `anchor` in the file."""
    text = path.read_text()
    assert text.count(anchor) == 1, anchor
    before = text[: text.index(anchor)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
