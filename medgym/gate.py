"""The compile gate: every task's reference solution, played through the runtime, must reach its threshold,
and every adversarial probe must stay under its domain's ceiling.

This ties the compiler's output to the runtime (which the compiler itself never imports).
"""
from __future__ import annotations

from pathlib import Path

from medgym.dsl.errors import SpecError


def compile_gate(build: Path) -> list[SpecError]:
    """One error per family whose reference solution scores below its threshold on some task, and one per
    probe that scores above its ceiling."""
    try:
        from medgym.runtime.evaluate import gate_build
    except ImportError:  # the runtime is not built yet: nothing to gate with
        return []
    return gate_build(build)
