"""The compile gate: every task's reference solution, played through the runtime, must reach its threshold.

This ties the compiler's output to the runtime (which the compiler itself never imports).
"""
from __future__ import annotations

from pathlib import Path

from medgym.dsl.errors import Position, SpecError


def reference_gate(build: Path) -> list[SpecError]:
    """One error per family whose reference solution scores below its threshold on some task."""
    try:
        from medgym.runtime.evaluate import play_reference
    except ImportError:  # the runtime is not built yet: nothing to gate with
        return []
    return play_reference(build)
