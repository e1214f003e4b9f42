"""The compile gate: every task's reference solution, played through the runtime, must reach its threshold,
and every adversarial probe must stay under its domain's ceiling.

This ties the compiler's output to the runtime (which the compiler itself never imports). Domains are gated
independently, so with more than one domain and more than one core they run in parallel processes
(`MEDGYM_GATE_WORKERS` caps the number; 1 gates in this process).
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
    """`MEDGYM_GATE_WORKERS`, else the cores this process may use."""
    declared = os.environ.get("MEDGYM_GATE_WORKERS", "").strip()
    if declared.isdigit() and int(declared) >= 1:
        return int(declared)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _gate_one(build: Path, name: str) -> list[SpecError]:
    from medgym.runtime.evaluate import gate_build

    return gate_build(build, [name])
