"""Checkpoints of a local run: everything a resumed run needs to continue as if it had never stopped.

Layout, under RUN_DIR/checkpoints/::

    step-000004/model/      the student (save_pretrained + tokenizer): loadable by `medgym eval --agent hf:...`
    step-000004/teacher/    the EMA teacher (TT-OPD only)
    step-000004/state.pt    optimiser, lr schedule, TeacherSchedule counters, RNG states, step, data cursor
    latest                  the name of the newest complete checkpoint

A checkpoint is written into a staging folder and renamed into place before ``latest`` is replaced, so a run
killed while saving resumes from the previous complete one.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

__all__ = ["latest_checkpoint", "load_state", "restore_rng", "rng_state", "save_checkpoint"]


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    return folder if (folder / "state.pt").is_file() else None


def save_checkpoint(run_dir: Path, step: int, *, model, tokenizer, teacher, state: dict, keep: int) -> Path:
    """Write checkpoint ``step`` and point ``latest`` at it; keep the newest ``keep`` (0: all)."""
    root = Path(run_dir) / "checkpoints"
    name = f"step-{step:06d}"
    staging = root / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    if teacher is not None:
        teacher.save_pretrained(staging / "teacher")
    torch.save(state, staging / "state.pt")
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    pointer = root / ".latest.partial"
    pointer.write_text(name, encoding="utf-8")
    os.replace(pointer, root / "latest")
    if keep:
        for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(folder: Path) -> dict:
    # weights_only=False: the state holds Python RNG tuples and numpy arrays; it is our own file.
    return torch.load(Path(folder) / "state.pt", map_location="cpu", weights_only=False)
