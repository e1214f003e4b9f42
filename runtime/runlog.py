"""The run file: an append-only JSONL of episodes that survives being killed at any moment.

Each episode is written as one complete line and fsync'd before the next is started, so after a SIGKILL the
file holds whole lines plus at most one cut-off tail. Reading counts a line only when it parses as JSON and
carries its episode key (task id and trial); anything else (the cut-off tail) is dropped, and `open_for_append`
truncates it so the resumed run appends after the last whole line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class RunLogError(ValueError):
    """A run file that cannot be resumed (the message says why)."""


def episode_key(record: dict) -> tuple[str, int] | None:
    task, trial = record.get("task_id"), record.get("trial")
    if isinstance(task, str) and isinstance(trial, int) and not isinstance(trial, bool):
        return (task, trial)
    return None


def read_run(path: Path) -> tuple[list[dict], int]:
    """The complete episode records in `path` (the first of any duplicate key) and the byte length of the
    prefix that holds only whole lines."""
    records, seen, good = [], set(), 0
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    offset = 0
    for raw in data.splitlines(keepends=True):
        offset += len(raw)
        if not raw.endswith(b"\n"):
            break  # the tail a kill cut off
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        key = episode_key(record) if isinstance(record, dict) else None
        if key is None:
            continue
        good = offset
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records, good


def read_episodes(path: Path) -> list[dict]:
    """The complete episode records of a run file; a clear error when there is none."""
    path = Path(path)
    if not path.is_file():
        raise RunLogError(f"{path}: no such run file")
    records, _ = read_run(path)
    if not records:
        raise RunLogError(f"{path}: no complete episode line (write one with `medgym eval --out {path}`)")
    return records


class RunWriter:
    """Appends one fsync'd line per episode."""

    def __init__(self, path: Path, resume: bool):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            _, good = read_run(path)
            self.file = open(path, "r+b" if path.exists() else "wb")
            self.file.truncate(good)  # drop a cut-off tail so the next line starts on its own
            self.file.seek(good)
        else:
            self.file = open(path, "wb")

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self.file.write(line.encode("utf-8"))
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
