"""Probe agents: policies that must score low, so that a reward which rewards them is caught.

- noop: never calls a tool;
- guess: answers at once with a plausible but wrong answer (schema-valid values that differ from the truth);
- spam: calls every tool once with schema-valid arguments, then answers like guess (so the probe measures what
  calling everything earns, not whether the first allowed value happens to be right);
- garbage: malformed output (broken JSON, unknown tools, binary noise), every turn.
"""
from __future__ import annotations

import json
import random

from medgym.runtime.agents.oracle import hermes


class NoopAgent:
    name = "noop"

    def start(self, env, observation: str, info: dict) -> None:
        pass

    def act(self, observation: str, info: dict) -> str:
        return "I would need to think about this patient further before deciding."


class GuessAgent:
    name = "guess"

    def start(self, env, observation: str, info: dict) -> None:
        self.env = env

    def act(self, observation: str, info: dict) -> str:
        tool = self.env.domain.tools[self.env.domain.data["submit_tool"]]
        truth = self.env.episode.task.get("truth") or {}
        return hermes(tool.name, schema_arguments(tool, self.env.episode.case, avoid=truth))


class SpamAgent:
    name = "spam"

    def start(self, env, observation: str, info: dict) -> None:
        self.env, self.sent = env, False

    def act(self, observation: str, info: dict) -> str:
        domain = self.env.domain
        submit = domain.data["submit_tool"]
        case = self.env.episode.case
        if not self.sent:
            self.sent = True
            return "\n".join(hermes(t.name, schema_arguments(t, case)) for t in domain.tools.values() if t.name != submit)
        truth = self.env.episode.task.get("truth") or {}
        return hermes(submit, schema_arguments(domain.tools[submit], case, avoid=truth))


class GarbageAgent:
    name = "garbage"

    def start(self, env, observation: str, info: dict) -> None:
        self.rng = random.Random(f"garbage|{info.get('task_id')}")
        self.tools = list(env.domain.tools)

    def act(self, observation: str, info: dict) -> str:
        rng, tool = self.rng, self.rng.choice(self.tools)
        choices = [
            '<tool_call>{"name": "' + tool + '", "arguments": {"patient_id": </tool_call>',
            '<tool_call>{"name": "no_such_tool_' + str(rng.randrange(99)) + '", "arguments": {}}</tool_call>',
            "<tool_call><function=" + tool + "><parameter=x>1</parameter>",
            "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(rng.randrange(10, 400))),
            '{"name": "' + tool + '", "arguments": [1, 2, 3]}',
            "<tool_call>" + "[" * 5000 + "</tool_call>",
        ]
        return rng.choice(choices)


def schema_arguments(tool, case: dict, avoid: dict | None = None) -> dict:
    """Arguments that satisfy `tool`'s schema: the case id for id parameters, else the first allowed value
    (or, with `avoid`, the first allowed value that differs from it)."""
    schema = tool.spec["parameters"]
    args = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if name in tool.id_params:
            args[name] = case.get("id", "unknown")
        else:
            args[name] = _value(prop, (avoid or {}).get(name), avoid is not None)
    return args


def _value(prop: dict, avoid, avoiding: bool):
    kind = prop.get("type")
    if "enum" in prop:
        options = [v for v in prop["enum"] if not (avoiding and v == avoid)] or prop["enum"]
        return options[0]
    if kind == "array":
        item = _value(prop.get("items", {}), avoid[0] if isinstance(avoid, list) and avoid else None, avoiding)
        return [item] * max(1, prop.get("minItems", 1))
    if kind == "boolean":
        return not avoid if avoiding and isinstance(avoid, bool) else False
    if kind in ("integer", "number"):
        low, high = prop.get("minimum", 0), prop.get("maximum", max(prop.get("minimum", 0), 1) + 10)
        value = low if not (avoiding and avoid == low) else min(high, low + 1)
        return int(value) if kind == "integer" else float(value)
    if kind == "object":
        return {}
    return "not sure" if avoiding else "Tell me more about the problem."
