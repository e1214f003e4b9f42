"""Probe agents: policies that must score low, so that a reward which rewards them is caught.

- noop: never calls a tool;
- guess: answers at once with a plausible but wrong answer (schema-valid values that differ from the truth);
- spam: calls every tool once with schema-valid arguments, then answers like guess (so the probe measures what
  calling everything earns, not whether the first allowed value happens to be right);
- garbage: malformed output (broken JSON, unknown tools, binary noise), every turn.

The adversarial probes attack the reward the ways a policy optimised against it would (`tuning.py` is what
they learn from the train split; none of them ever reads the case beyond what tools showed it):
- blind: a fixed plan of the calls most references make, then the most common train answer per field;
- lazy: two lookups, then that answer;
- shotgun: orders every test and study, asks every history topic, runs every calculator on values copied
  from its observations, echoes the outputs into the answer and fills the rest blind;
- duplicate: the reference solution with every call sent twice, the copy trivially altered;
- overorder: the reference solution with every test and study ordered as well;
- wrong_after_workup: the reference work-up, then an answer wrong in every field.

A phased task is played phase by phase: in each phase the probe does its attack with that phase's tools and
ends it with that phase's submit tool (guess and spam guess each submission; blind, lazy and shotgun submit
the phase's most common train answer), so a phased reward is attacked in every phase, not refused at the first.
"""
from __future__ import annotations

import json
import math
import random

import fastjsonschema

from medgym.runtime.agents.oracle import hermes
from medgym.runtime.agents.tuning import phase_steps, tuning
from medgym.runtime.episode import canonical


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
        tool = stage_tools(self.env.domain, self.env.episode.current_phase)[0]
        truth = self.env.episode.task.truth
        return hermes(tool.name, schema_arguments(tool, self.env.episode.case, avoid=truth))


def stage_tools(domain, phase) -> tuple:
    """The submit tool that ends a stage and the other tools it offers: a phase's (of a phased task), or with
    phase None the domain's."""
    if phase is None:
        return domain.submit_tool, [t for t in domain.tools.values() if t.name != domain.spec.submit_tool]
    return domain.tools[phase.submit], [domain.tools[n] for n in phase.tools if n != phase.submit]


class SpamAgent:
    name = "spam"

    def start(self, env, observation: str, info: dict) -> None:
        self.env, self.sent = env, None

    def act(self, observation: str, info: dict) -> str:
        submit, tools = stage_tools(self.env.domain, self.env.episode.current_phase)
        case = self.env.episode.case
        if self.sent != self.env.episode.phase:  # every tool of this phase (or of the domain) once, then submit
            self.sent = self.env.episode.phase
            return "\n".join(hermes(t.name, schema_arguments(t, case)) for t in tools)
        truth = self.env.episode.task.truth
        return hermes(submit.name, schema_arguments(submit, case, avoid=truth))


class GarbageAgent:
    name = "garbage"

    def start(self, env, observation: str, info: dict) -> None:
        self.rng = random.Random(f"garbage|{info.get('task_id')}")
        self.tools = list(env.domain.tools)

    def act(self, observation: str, info: dict) -> str:
        # Only the chosen kind is generated: making all six each turn (the noise is up to 400 random
        # characters) cost more than the episode around it.
        rng, tool = self.rng, self.rng.choice(self.tools)
        return rng.choice(_GARBAGE)(rng, tool)


_GARBAGE = (
    lambda rng, tool: '<tool_call>{"name": "' + tool + '", "arguments": {"patient_id": </tool_call>',
    lambda rng, tool: '<tool_call>{"name": "no_such_tool_' + str(rng.randrange(99)) + '", "arguments": {}}</tool_call>',
    lambda rng, tool: "<tool_call><function=" + tool + "><parameter=x>1</parameter>",
    lambda rng, tool: "".join(map(chr, rng.choices(range(0x2FFF), k=rng.randrange(10, 400)))),
    lambda rng, tool: '{"name": "' + tool + '", "arguments": [1, 2, 3]}',
    lambda rng, tool: "<tool_call>" + "[" * 5000 + "</tool_call>",
)


def schema_arguments(tool, case: dict, avoid: dict | None = None, optional: bool = False) -> dict:
    """Arguments that satisfy `tool`'s schema: the case id for id parameters, else the first allowed value
    (or, with `avoid`, the first allowed value that differs from it); optional parameters too when asked."""
    schema = tool.spec.parameters
    args = {}
    for name in (schema.get("properties", {}) if optional else schema.get("required", [])):
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


# -- adversarial probes ----------------------------------------------------------------------------------------

class _Scripted:
    """Plays a list of turns; each turn is a list of calls, or a function of the episode returning one (for
    calls that depend on what was observed, such as copied calculator inputs and echoed outputs).

    A probe writes `work(phase)` (its steps in one stage: a phase of a phased task, or the whole task with
    phase None) and `finish(phase)` (the stage's submission); the script is each stage's work then its
    submission, packed to the turn limit."""

    name = "scripted"

    def start(self, env, observation: str, info: dict) -> None:
        self.env = env
        self.case_id = env.episode.case.get("id", "unknown")
        self.turns = self.script()

    def script(self) -> list:
        stages = self.env.episode.task.phases or (None,)
        works = [[step for step in self.work(phase) if step] for phase in stages]
        per_turn = _per_turn(works, room=max(1, self.env.max_turns - len(stages)))
        turns = []
        for phase, work in zip(stages, works):
            turns += [_merge(work[i:i + per_turn]) for i in range(0, len(work), per_turn)]
            turns.append(self.finish(phase))
        return turns

    def work(self, phase) -> list:
        raise NotImplementedError

    def finish(self, phase) -> list:
        return [self.blind_answer(phase)]

    def act(self, observation: str, info: dict) -> str:
        if not self.turns:
            return "I have nothing more to do."
        turn = self.turns.pop(0)
        calls = turn() if callable(turn) else turn
        return "\n".join(hermes(name, arguments) for name, arguments in calls) or "Nothing to add."

    # helpers shared by the probes
    @property
    def domain(self):
        return self.env.domain

    @property
    def submit(self):
        return self.domain.submit_tool

    def with_ids(self, tool, arguments: dict) -> dict:
        return {**{p: self.case_id for p in tool.id_params}, **arguments}

    def blind_answer(self, phase=None, echoed: dict | None = None) -> tuple[str, dict]:
        """The stage's most common train submission (fields that echo a calculator given what it echoed)."""
        tuned = tuning(self.domain).stage(phase)
        submit = stage_tools(self.domain, phase)[0]
        answer = dict(tuned.answer)
        if echoed:
            key = json.dumps([canonical(echoed[k]) for k in sorted(tuned.echoes) if k in echoed], default=str)
            for name, table in tuned.given_echo.items():
                if key in table:
                    answer[name] = table[key]
            answer.update(echoed)
        return submit.name, self.with_ids(submit, answer)

    def instrument_call(self, tool) -> tuple[str, dict]:
        """A calculator fed what the probe observed: each input copied from the case field references copy
        into it (only once that field was shown), else the most common train value, else a schema default."""
        tuned = tuning(self.domain)
        episode = self.env.episode
        defaults = schema_arguments(tool, episode.case)
        arguments = {}
        for param in tool.spec.parameters.get("properties", {}):
            path = tuned.inputs.get(tool.name, {}).get(param)
            if path is not None and _observed(episode, path):
                arguments[param] = _leaf(episode.case, path)
            elif param in tuned.constants.get(tool.name, {}):
                arguments[param] = tuned.constants[tool.name][param]
            elif param in defaults:
                arguments[param] = defaults[param]
        return tool.name, arguments

    def reference_steps(self) -> list[tuple[str, dict]]:
        return [(s.name, s.arguments) for s in self.env.episode.task.reference]

    def stage_steps(self, phase) -> list[tuple[str, dict]]:
        """The reference's steps in the stage: one phase's (its submission last), or the whole reference."""
        if phase is None:
            return self.reference_steps()
        steps = dict((p.name, s) for p, s in phase_steps(self.env.episode.task))[phase.name]
        return [(s.name, s.arguments) for s in steps]


def _per_turn(works: list[list], room: int) -> int:
    """The fewest steps per turn that fit every stage's work into `room` turns (one step per turn unless the
    turn limit demands more; each stage packs its own, since its submission must follow its work)."""
    longest = max(max(map(len, works), default=1), 1)
    return next((k for k in range(1, longest + 1) if sum(math.ceil(len(w) / k) for w in works) <= room), longest)


def _observed(episode, path: str) -> bool:
    return path in episode.observed or any(p.startswith(path + ".") for p in episode.observed)


def _leaf(case: dict, path: str):
    node = case
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class BlindAgent(_Scripted):
    name = "blind"

    def work(self, phase) -> list:
        steps = []
        for name, arguments in tuning(self.domain).stage(phase).plan:
            tool = self.domain.tools[name]
            if tool.kind == "instrument":
                steps.append(lambda tool=tool: [self.instrument_call(tool)])
            else:
                steps.append([(name, self.with_ids(tool, arguments))])
        return steps


class LazyAgent(_Scripted):
    name = "lazy"

    def work(self, phase) -> list:
        reads = [(n, a) for n, a in tuning(self.domain).stage(phase).plan
                 if self.domain.tools[n].kind == "lookup" and not self.domain.tools[n].spec.revealed_only]
        looks = 2 if phase is None else 1  # a token work-up: two lookups, or one in each phase
        return [[(n, self.with_ids(self.domain.tools[n], a))] for n, a in reads[:looks]]


class ShotgunAgent(_Scripted):
    name = "shotgun"

    def work(self, phase) -> list:
        tools = stage_tools(self.domain, phase)[1]
        orders = [(t.name, self.with_ids(t, everything(t))) for t in tools if t.kind == "action" and t.spec.reveals]
        reads = [(t.name, self.with_ids(t, {})) for t in tools
                 if t.kind == "lookup" and not t.spec.revealed_only and not _required_params(t)]
        results = [(t.name, self.with_ids(t, {})) for t in tools
                   if t.kind == "lookup" and t.spec.revealed_only and not _required_params(t)]
        questions = [(t.name, self.with_ids(t, {t.spec.question_param: _question(topic)}))
                     for t in tools if t.kind == "simulator"
                     for topic in self.domain.spec.history_topics.values()]
        instruments = [t for t in tools if t.kind == "instrument"]
        calculate = (lambda: [self.instrument_call(t) for t in instruments]) if instruments else []
        return [orders + reads + questions, results, calculate]

    def finish(self, phase) -> list:
        return lambda: self.echo_answer(phase)

    def echo_answer(self, phase=None) -> list:
        episode = self.env.episode
        echoed = {}
        for field_name, (tool, key) in tuning(self.domain).stage(phase).echoes.items():
            found = episode.successful(tool)
            if found and key in (found[-1].result or {}):
                echoed[field_name] = found[-1].result[key]
        return [self.blind_answer(phase, echoed)]


def _required_params(tool) -> list[str]:
    return [p for p in tool.spec.parameters.get("required", []) if p not in tool.id_params]


def _question(topic) -> str:
    words = topic.ask or ["anything else"]
    return f"Tell me about {words[0]}."


def everything(tool) -> dict:
    """An order for every item the tool offers (its selection list filled with every allowed value)."""
    select = tool.spec.select
    if not select:
        return {k: v for k, v in schema_arguments(tool, {}).items() if k not in tool.id_params}
    items = tool.spec.parameters["properties"][select].get("items", {}).get("enum", [])
    return {select: list(items)}


def _merge(chunk: list) -> object:
    """One turn from several plan steps (lists of calls, or functions returning them)."""
    if len(chunk) == 1:
        return chunk[0]
    return lambda: [call for step in chunk for call in (step() if callable(step) else step)]


class DuplicateAgent(_Scripted):
    name = "duplicate"

    def work(self, phase) -> list:
        *work, _ = self.stage_steps(phase)
        return [[(name, arguments), (name, _altered(self.domain.tools[name], arguments))] for name, arguments in work]

    def finish(self, phase) -> list:
        return [self.stage_steps(phase)[-1]]  # a submission is sent once: its copy would land in the next phase


def _altered(tool, arguments: dict) -> dict:
    """The same request, trivially re-spelled where the schema still accepts it: ids lower-cased with a
    trailing space, free text with its case changed and padded, lists reversed, whole numbers as floats."""
    out = dict(arguments)
    for key, value in arguments.items():
        if key in tool.id_params and isinstance(value, str):
            candidate = value.lower() + " "
        elif isinstance(value, str):
            candidate = f" {value.swapcase()} "
        elif isinstance(value, list):
            candidate = list(reversed(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            candidate = float(value)
        else:
            continue
        if _accepts(tool, {**out, key: candidate}):
            out[key] = candidate
    return out


def _accepts(tool, arguments: dict) -> bool:
    try:
        tool.validate(arguments)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


class OverorderAgent(_Scripted):
    name = "overorder"

    def work(self, phase) -> list:
        """The stage's reference work, then every test and study the stage offers (in a phased task, each
        order in the first phase offering it: the runtime would refuse it elsewhere)."""
        *work, _ = self.stage_steps(phase)
        orders = [(t.name, self.with_ids(t, everything(t))) for t in self.domain.tools.values()
                  if t.kind == "action" and t.spec.reveals and self.first_offered(t.name, phase)]
        return [[s] for s in work] + [[o] for o in orders]

    def finish(self, phase) -> list:
        return [self.stage_steps(phase)[-1]]

    def first_offered(self, tool: str, phase) -> bool:
        if phase is None:
            return True
        return next((p for p in self.env.episode.task.phases if tool in p.tools), None) is phase


class WrongAfterWorkupAgent(_Scripted):
    name = "wrong_after_workup"

    def work(self, phase) -> list:
        return [[s] for s in self.stage_steps(phase)[:-1]]

    def finish(self, phase) -> list:
        """The stage's submission, wrong in every field its rubric grades."""
        name, answer = self.stage_steps(phase)[-1]
        task = self.env.episode.task
        wrong = schema_arguments(self.domain.tools[name], self.env.episode.case, avoid=task.truth, optional=True)
        graded = (phase or task).rubric.accuracy
        return [(name, dict(answer, **{k: v for k, v in wrong.items() if k in graded}))]
