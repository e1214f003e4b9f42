"""Agents that play a MedEnv: the oracle (the task's reference solution) and the probes that must score low.

An agent has `start(env, observation, info)` and `act(observation, info) -> action`; `make_agent(name)` builds one
by name. Model-backed agents (a local transformers model, an OpenAI-compatible endpoint) register here too.
"""
from __future__ import annotations

from typing import Callable, Protocol

from medgym.runtime.agents.oracle import OracleAgent
from medgym.runtime.agents.probes import (BlindAgent, DuplicateAgent, GarbageAgent, GuessAgent, LazyAgent, NoopAgent,
                                          OverorderAgent, ShotgunAgent, SpamAgent, WrongAfterWorkupAgent)


class Agent(Protocol):
    name: str

    def start(self, env, observation: str, info: dict) -> None: ...

    def act(self, observation: str, info: dict): ...


PROBE_AGENTS: dict[str, Callable[..., Agent]] = {
    "noop": NoopAgent, "guess": GuessAgent, "spam": SpamAgent, "garbage": GarbageAgent, "blind": BlindAgent,
    "lazy": LazyAgent, "shotgun": ShotgunAgent, "duplicate": DuplicateAgent, "overorder": OverorderAgent,
    "wrong_after_workup": WrongAfterWorkupAgent,
}
AGENTS: dict[str, Callable[..., Agent]] = {"oracle": OracleAgent, **PROBE_AGENTS}
PROBES = tuple(PROBE_AGENTS)


class UnknownAgent(ValueError):
    pass


MODEL_AGENTS = ("hf", "openai")  # registered by medgym.rl.agents, imported on first use (it needs torch)


def make_agent(name: str, **options) -> Agent:
    """An agent by name; `hf:PATH` and `openai:URL` name model-backed agents when those are installed."""
    kind = name.split(":", 1)[0]
    if kind in MODEL_AGENTS and kind not in AGENTS:
        try:
            import medgym.rl.agents  # noqa: F401  (registers hf and openai in AGENTS)
        except ImportError as exc:
            raise UnknownAgent(f"agent {name!r} needs the rl extra (pip install 'medgym[rl]'): {exc}") from None
    factory = AGENTS.get(kind)
    if factory is None:
        known = ", ".join([*AGENTS, *(f"{k}:..." for k in MODEL_AGENTS if k not in AGENTS)])
        raise UnknownAgent(f"unknown agent {name!r}: choose one of {known}")
    if kind in MODEL_AGENTS and ":" not in name:
        raise UnknownAgent(f"agent {name!r} needs a target: {kind}:{'PATH' if kind == 'hf' else 'URL'}")
    return factory(name, **options) if ":" in name else factory(**options)


__all__ = ["AGENTS", "MODEL_AGENTS", "PROBES", "PROBE_AGENTS", "Agent", "BlindAgent", "DuplicateAgent", "GarbageAgent",
           "GuessAgent", "LazyAgent", "NoopAgent", "OracleAgent", "OverorderAgent", "ShotgunAgent", "SpamAgent",
           "UnknownAgent", "WrongAfterWorkupAgent", "make_agent"]
