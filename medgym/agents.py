"""`make_agent` for callers above the runtime (the CLI, scripts): the runtime's agents plus the model-backed
ones (`hf:PATH`, `openai:URL`) from medgym.rl.agents, imported on first use because they need torch.

The runtime cannot import rl (dependencies flow dsl <- runtime <- rl); this thin top-level layer can.
"""
from __future__ import annotations

from medgym.runtime.agents import AGENTS, MODEL_AGENTS, Agent, UnknownAgent
from medgym.runtime.agents import make_agent as _runtime_make_agent


def load_agent_kind(name: str) -> None:
    """Register the model-backed kind `name` names (`hf:...`, `openai:...`) if it is one and is not yet."""
    kind = name.split(":", 1)[0]
    if kind in MODEL_AGENTS and kind not in AGENTS:
        try:
            import medgym.rl.agents  # noqa: F401  (registers hf and openai with the runtime)
        except ImportError as exc:
            raise UnknownAgent(f"agent {name!r} needs the rl extra (pip install 'medgym[rl]'): {exc}") from None


def make_agent(name: str, **options) -> Agent:
    """An agent by name: oracle, a probe, `hf:PATH` or `openai:URL`."""
    load_agent_kind(name)
    return _runtime_make_agent(name, **options)


__all__ = ["Agent", "UnknownAgent", "load_agent_kind", "make_agent"]
