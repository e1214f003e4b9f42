"""The compile gate: every task's reference solution, played through the runtime, must reach its threshold,
and every adversarial probe must stay under its domain's ceiling.

This ties the compiler's output to the runtime (which the compiler itself never imports). Domains are gated
independently, so `MEDGYM_GATE_WORKERS=N` gates up to N domains at once in spawned processes. The default is
one process: on the shared 2-core reference machine the two shipped domains gated in 2 processes took 10.0 s
wall (6.7 s CPU) against 7.0 s wall (4.9 s CPU) in one, because no core was idle and each worker pays its
imports and its own probe tuning. Turn it on where cores are idle and domains many; a script that compiles
with the gate in parallel needs the usual `if __name__ == "__main__":` guard (spawn re-imports it).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from medgym.dsl.errors import SpecError


def compile_gate(build: Path) -> list[SpecError]:
    """One error per family whose reference solution scores below its threshold on some task, and one per
    probe that scores above its ceiling."""
    try:
        from medgym.runtime.build import Build
        from medgym.runtime.evaluate import gate_build
    except ImportError:  # the runtime is not built yet: nothing to gate with
        return []
    names = Build.open(build).domain_names
    workers = min(len(names), gate_workers())
    if workers <= 1:
        return gate_build(build)
    # spawn, not fork: the CLI may hold a spinner thread while it compiles, and a forked lock can deadlock.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # errors come back in domain order, as a serial gate gives them
        return [error for found in pool.map(_gate_one, [build] * len(names), names) for error in found]


def gate_workers() -> int:
    """`MEDGYM_GATE_WORKERS` (a whole number >= 1), else 1."""
    declared = os.environ.get("MEDGYM_GATE_WORKERS", "").strip()
    return int(declared) if declared.isdigit() and int(declared) >= 1 else 1


def _gate_one(build: Path, name: str) -> list[SpecError]:
    from medgym.runtime.evaluate import gate_build

    return gate_build(build, [name])
