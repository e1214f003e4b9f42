"""medgym: a gymnasium for medical AI agents, compiled from declarative specs.

Importing the package registers one Gymnasium env per shipped domain (`medgym/Triage-v1`, ...). The
registration is lazy: it happens once gymnasium is imported (importing medgym does not import it), and the
shipped specs are compiled (once, into a cache) only when an env is made.
"""
from __future__ import annotations

from medgym._registration import register_shipped, register_with_gymnasium

__all__ = ["register_shipped"]

register_with_gymnasium()
