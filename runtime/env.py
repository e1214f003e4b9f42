"""MedEnv: the Gymnasium environment every compiled domain class derives from.

One step is one assistant turn: the action is the model's raw text (or an OpenAI-style assistant message),
its tool calls are parsed, validated and executed in order, and the observation is the text of their results.
The reward is 0 until the episode ends (a submission, or max_turns turns); then it is the composite and every
component is in `info["reward_components"]`.
"""
from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import gymnasium as gym

from medgym.dsl.build import Task
from medgym.dsl.errors import did_you_mean
from medgym.runtime.build import Build, BuildError, Domain
from medgym.runtime.episode import CallRecord, Episode
from medgym.runtime.executor import ToolError, execute
from medgym.runtime.images import image_parts
from medgym.runtime.prompt import tool_signatures
from medgym.runtime.rewards import score_episode
from medgym.runtime.spaces import UnicodeText
from medgym.runtime.toolcalls import MAX_ACTION_CHARS, ParsedTurn, clean_text, parse_action

MAX_OBSERVATION_CHARS = 200_000
MAX_KEPT_ACTION_CHARS = 20_000  # the transcript keeps this much of each action (memory per live episode)
REWARD_MODES = ("composite", "accuracy")
_MAX_RESULT_DEPTH = 64  # results deeper than this (only a python-kind tool could build one) are left as they are


class MedEnv(gym.Env):
    """A compiled medgym domain (see the generated subclass's docstring for its card)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}
    DOMAIN: str | None = None

    def __init__(self, build_dir: str | Path, domain: str | None = None, split: str = "train",
                 reward_mode: str = "composite", max_turns: int | None = None, render_mode: str | None = None,
                 multimodal: bool = False):
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {', '.join(REWARD_MODES)}, got {reward_mode!r}")
        name = domain or self.DOMAIN
        if name is None:
            raise ValueError("MedEnv needs a domain name")
        self.domain: Domain = Build.open(build_dir).domain(name)
        self.split, self.reward_mode, self.render_mode = split, reward_mode, render_mode
        self.multimodal = bool(multimodal)  # the agent sees images: the ticket carries the case's image parts
        self.max_turns = int(max_turns or self.domain.spec.max_turns)
        self.tools = self.domain.openai_tools()
        self.action_space = UnicodeText(MAX_ACTION_CHARS)
        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS)
        self.episode: Episode | None = None
        self.transcript: list[dict] = []
        self._last_observation = ""

    # -- Gymnasium API ----------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = self._choose_task(options or {})
        self.episode = Episode(task)
        policy = self.domain.spec.policy
        ticket = task.ticket + (_phase_text(self.episode, self.domain) if task.phases else "")
        images = image_parts(self.domain, task.case) if self.multimodal else []
        if images:
            ticket += f"\n\n[{len(images)} image{'s' if len(images) > 1 else ''} attached]"
        observation = clean_text(_clip(f"{policy}\n\n## Ticket\n\n{ticket}"))
        user = [{"type": "text", "text": ticket}, *images] if images else ticket
        self.transcript = [{"role": "system", "content": policy}, {"role": "user", "content": user}]
        self._last_observation = observation
        info = {"task_id": task.task_id, "domain": self.domain.name, "family": task.family,
                "split": task.split, "seed": task.seed, "system": policy, "ticket": ticket,
                "tools": self._offered(), "max_turns": self.max_turns}
        if images:
            info["images"] = images
        if task.phases:
            info["phase"] = self.episode.current_phase.name
            info["phases"] = [{"name": p.name, "tools": list(p.tools), "submit": p.submit} for p in task.phases]
        return observation, info

    def step(self, action):
        episode = self.episode
        if episode is None or episode.done or episode.turns >= self.max_turns:
            raise RuntimeError("the episode has ended: call reset() before step()")
        episode.turns += 1
        parsed = parse_action(action)  # arguments come back plain, finite and bounded, or as errors
        calls_before, phase_before = len(episode.calls), episode.phase
        results = self._run_turn(episode, parsed)
        rendered = _render(results, self.domain)
        if episode.phase != phase_before:  # a phase ended: show the next one's tools and what it receives
            rendered += _phase_text(episode, self.domain)
        observation = clean_text(rendered)
        if observation is not rendered:  # a tool's own data held a lone surrogate: clean what info and logs keep
            _clean_results(results, episode.calls[calls_before:])
        observation = _clip(observation)
        self._record(action, observation)
        terminated = episode.done
        truncated = not terminated and episode.turns >= self.max_turns
        info = {"tool_results": results, "turn": episode.turns, "clock_min": episode.clock}
        if episode.task.phases:
            info["phase"] = episode.current_phase.name
            info["tools"] = self._offered()
        reward = 0.0
        if terminated or truncated:
            reward = self._finish(info)
        self._last_observation = observation
        return observation, reward, terminated, truncated, info

    def render(self):
        if self.render_mode == "ansi":
            return self._last_observation
        return None

    # -- one turn -------------------------------------------------------------------------------------------------

    def _run_turn(self, episode: Episode, parsed: ParsedTurn) -> list[dict]:
        results = []
        for error in parsed.errors:
            episode.invalid_calls += 1
            results.append({"name": None, "call_id": None, "ok": False, "error": error.message})
        if not parsed.calls and not parsed.errors:
            episode.no_call_turns += 1
            results.append({"name": None, "call_id": None, "ok": False, "error": self._no_call_message()})
        for call in parsed.calls:
            if episode.done:
                results.append({"name": call.name, "call_id": call.call_id, "ok": False,
                                "error": "not run: the episode ended with the submission earlier in this turn"})
                continue
            results.append(self._call(episode, call.name, call.arguments, call.call_id))
        return results

    def _offered(self) -> list[dict]:
        """The tool schemas the agent is offered now: the current phase's, or all the domain's."""
        phase = self.episode.current_phase if self.episode is not None else None
        if phase is None:
            return self.tools
        return [self.domain.tools[name].openai() for name in phase.tools]

    def _call(self, episode: Episode, name: str, arguments: dict, call_id: str | None) -> dict:
        tool = self.domain.tools.get(name)
        phase = episode.phase
        try:
            if tool is None:
                hint = did_you_mean(name, self.domain.tools)
                raise ToolError(f"unknown tool {name[:80]!r}" + (f"; {hint}" if hint else "")
                                + f"; tools: {', '.join(self.domain.tools)}")
            current = episode.current_phase
            if current is not None and name not in current.tools:
                raise ToolError(f"{name} is not offered in phase '{current.name}'; its tools: {', '.join(current.tools)}")
            if tool.kind != "instrument":  # an instrument checks its own inputs: every problem at once, units in text
                _validate(tool, arguments)
            result, topic = execute(self.domain, episode, tool, arguments)
        except ToolError as exc:
            error = clean_text(str(exc))  # it may quote text a tool read, which the model will see
            episode.invalid_calls += 1
            episode.calls.append(CallRecord(episode.turns, name, arguments, False, error=error, clock=episode.clock,
                                            phase=phase))
            return {"name": name, "call_id": call_id, "ok": False, "error": error}
        episode.clock += tool.minutes
        episode.calls.append(CallRecord(episode.turns, name, arguments, True, result, topic=topic, clock=episode.clock,
                                        phase=phase))
        return {"name": name, "call_id": call_id, "ok": True, "content": result}

    def _no_call_message(self) -> str:
        submit = self.domain.spec.submit_tool
        return ('no tool call found: call a tool, e.g. <tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>, '
                f"or finish with {submit}")

    def _finish(self, info: dict) -> float:
        reward = score_episode(self.domain, self.episode)
        info["reward_components"] = reward.components
        info["reward_total"] = reward.total
        info["safety_violations"] = reward.violations
        info["answer"] = self.episode.answer
        info["episode"] = self.summary()
        if reward.details:
            info["reward_details"] = reward.details
        return reward.components["accuracy"] if self.reward_mode == "accuracy" else reward.total

    def summary(self) -> dict:
        """Counts for logs: turns, calls, invalid calls, submission."""
        ep = self.episode
        return {"turns": ep.turns, "tool_calls": ep.valid_calls + ep.invalid_calls,
                "valid_calls": ep.valid_calls, "invalid_calls": ep.invalid_calls, "no_call_turns": ep.no_call_turns,
                "submitted": ep.submitted, "clock_min": ep.clock}

    def _record(self, action, observation: str) -> None:
        self.transcript.append({"role": "assistant", "content": _action_text(action)})
        self.transcript.append({"role": "tool", "content": observation})

    def _choose_task(self, options: dict) -> Task:
        if options.get("task_id") is not None:
            return self.domain.task(str(options["task_id"]))
        tasks = self.domain.tasks(options.get("split", self.split))
        if not tasks:
            raise BuildError(f"domain {self.domain.name} has no tasks in split {options.get('split', self.split)!r}")
        return tasks[int(self.np_random.integers(len(tasks)))]


def _validate(tool, arguments: dict) -> None:
    """Check the (already plain and finite, see toolcalls) arguments against the tool's schema, in place."""
    try:
        tool.validate(arguments)
    except fastjsonschema.JsonSchemaValueException as exc:
        message = exc.message
        if message.startswith("data."):
            message = message[5:]
        elif message.startswith("data"):
            message = "arguments" + message[4:]
        raise ToolError(f"{tool.name}: invalid arguments: {message[:600]}") from None
    _whole_numbers(tool.spec.parameters, arguments)


def _whole_numbers(schema: dict, arguments: dict) -> None:
    # JSON Schema counts 3.0 as an integer; handlers and answers should see the 3 the schema promises.
    for name, prop in schema.get("properties", {}).items():
        value = arguments.get(name)
        if prop.get("type") == "integer" and type(value) is float:
            arguments[name] = int(value)


def _clean_results(results: list[dict], calls: list[CallRecord]) -> None:
    """Replace lone surrogates in this turn's results and call records (rare: arguments are clean, spec data
    and corpora are checked UTF-8 when built, so only a python-kind tool or a patched handler can hold one)."""
    for result in results:
        if "content" in result:
            result["content"] = _valid_text(result["content"])
    for call in calls:
        if call.result is not None:
            call.result = _valid_text(call.result)


def _valid_text(value, depth: int = 0):
    """`value` with every lone surrogate in its text replaced: a result is shown to the model and logged as UTF-8.

    Arguments are clean (toolcalls), so only a tool's own data could hold one, e.g. a python-kind tool's."""
    if isinstance(value, str):
        return clean_text(value)
    if depth > _MAX_RESULT_DEPTH:
        return value
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: _valid_text(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_text(item, depth + 1) for item in value]
    return value


def _phase_text(episode: Episode, domain: Domain) -> str:
    """The note that opens a phase: its name, what earlier phases handed forward and its tools' signatures."""
    phase, phases = episode.current_phase, episode.task.phases
    lines = [f"\n\n## Phase {episode.phase + 1} of {len(phases)}: {phase.name}"]
    handed = {f"{name}.{k}": v for name, fields in episode.handed_forward().items() for k, v in fields.items()
              if k in phase.receives}
    if handed:
        lines.append("Handed forward: " + ", ".join(f"{k} = {_json_text(v)}" for k, v in handed.items()))
    lines.append(f"Tools of this phase (finish it with {phase.submit}):")
    lines.append(tool_signatures([domain.tools[name].openai() for name in phase.tools]))
    return "\n".join(lines)


def _render(results: list[dict], domain: Domain) -> str:
    lines = []
    for result in results:
        if result["ok"]:
            lines.append(f"{result['name']}: {_json_text(result['content'])}")
        else:
            where = f" ({result['name'][:80]})" if result.get("name") else ""
            lines.append(f"error{where}: {result['error']}")
    return "\n".join(lines)


def _clip(text: str) -> str:
    if len(text) <= MAX_OBSERVATION_CHARS:
        return text
    note = "\n[cut: the observation was too long]"
    return text[: MAX_OBSERVATION_CHARS - len(note)] + note


def _json_text(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except Exception:  # a python-kind tool's odd result is shown, not raised
        return _safe_repr(value)


def _action_text(action) -> str:
    """The action as transcript text: valid Unicode (transcripts are written as JSON lines), capped."""
    if isinstance(action, str):
        text = str.__str__(action)[:MAX_KEPT_ACTION_CHARS]
    else:
        try:
            text = json.dumps(action, ensure_ascii=False, default=str)
        except Exception:  # a caller's object may fail in any method (huge ints, cycles, a raising __str__)
            text = _safe_repr(action)
    return clean_text(text[:MAX_KEPT_ACTION_CHARS])


def _safe_repr(value) -> str:
    try:
        return repr(value)[:MAX_KEPT_ACTION_CHARS]
    except Exception:
        return f"<{type(value).__name__}>"


def make_env(build_dir: str | Path, domain: str, **kwargs) -> MedEnv:
    """The domain's generated env class (its docstring is the domain card), or MedEnv if it has none."""
    cls = Build.open(build_dir).domain(domain).env_class or MedEnv
    return cls(build_dir, domain, **kwargs)
