"""Where medgym keeps its files: the cache folder (compiled builds, the knowledge base, converted models) and
the shipped specs (the `medgym.specs` data package). One place knows `MEDGYM_CACHE_DIR`."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def cache_dir() -> Path:
    """`$MEDGYM_CACHE_DIR`, or `~/.cache/medgym` when the variable is unset."""
    return Path(os.environ.get("MEDGYM_CACHE_DIR") or Path.home() / ".cache" / "medgym")


def shipped_specs() -> Path:
    """The folder of the shipped specs (inside the installed package, or the source tree)."""
    return Path(str(resources.files("medgym.specs")))
