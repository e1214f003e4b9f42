"""The local-trainer tests use the shared fixtures of tests/rl/conftest.py (mini build, tiny models)."""
from __future__ import annotations

import importlib.util

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    collect_ignore_glob = ["test_*.py"]  # pip install 'medgym[rl]' to run them
