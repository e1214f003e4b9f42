"""Agents that play a MedEnv: the oracle (the task's reference solution) and the probes that must score low.

An agent has `start(env, observation, info)` and `act(observation, info) -> action`; `make_agent(name)` builds one
by name. Model-backed agents (a local transformers model, an OpenAI-compatible endpoint) live in medgym.rl.agents,
which registers them here when imported (`register_agent`); the runtime never imports rl. `medgym.agents.make_agent`
(the CLI's) imports it on first use of `hf:` or `openai:`.
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


MODEL_AGENTS = ("hf", "openai")  # registered by medgym.rl.agents when it is imported (it needs torch)


def register_agent(kind: str, factory: Callable[..., Agent]) -> None:
    """Make `kind` (or `kind:TARGET`) buildable by `make_agent`; model-backed agents register this way."""
    AGENTS[kind] = factory


def make_agent(name: str, **options) -> Agent:
    """An agent by name; `hf:PATH` and `openai:URL` name model-backed agents once medgym.rl.agents is imported."""
    kind = name.split(":", 1)[0]
    if kind in MODEL_AGENTS and kind not in AGENTS:
        raise UnknownAgent(f"agent {name!r} is model-backed: import medgym.rl.agents first to register it (the "
                           f"medgym CLI and medgym.agents.make_agent do; it needs the rl extra: "
                           f"pip install 'medgym[rl]')")
    factory = AGENTS.get(kind)
    if factory is None:
        known = ", ".join([*AGENTS, *(f"{k}:..." for k in MODEL_AGENTS if k not in AGENTS)])
        raise UnknownAgent(f"unknown agent {name!r}: choose one of {known}")
    if kind in MODEL_AGENTS and ":" not in name:
        raise UnknownAgent(f"agent {name!r} needs a target: {kind}:{'PATH' if kind == 'hf' else 'URL'}")
    return factory(name, **options) if ":" in name else factory(**options)


__all__ = ["AGENTS", "MODEL_AGENTS", "PROBES", "PROBE_AGENTS", "Agent", "BlindAgent", "DuplicateAgent", "GarbageAgent",
           "GuessAgent", "LazyAgent", "NoopAgent", "OracleAgent", "OverorderAgent", "ShotgunAgent", "SpamAgent",
           "UnknownAgent", "WrongAfterWorkupAgent", "make_agent", "register_agent"]
