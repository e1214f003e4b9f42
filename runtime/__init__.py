"""medgym.runtime: Gymnasium environments over a compiled build, the tool executor, patient simulator,
reward engine, agents and the evaluation runner. It reads build directories and never imports the compiler."""
from __future__ import annotations

import importlib

__all__ = ["Build", "BuildError", "MedEnv", "make_env"]

# Loaded on first use, so importing a light submodule (runtime.paths) does not import gymnasium and numpy.
_LAZY = {"Build": "medgym.runtime.build", "BuildError": "medgym.runtime.build",
         "MedEnv": "medgym.runtime.env", "make_env": "medgym.runtime.env"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'medgym.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
