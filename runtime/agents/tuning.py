"""What the adversarial probes learn from a domain's train split.

A probe is a policy that never reasons about the patient. Tuned on the train split it becomes the strongest
such policy: the most common answer per field, a fixed plan of the calls most references make, which
observed case field feeds which calculator input, and which answer field echoes which calculator output.
A phased domain is tuned phase by phase as well: each phase's common submission, plan and echoes are learned
from that phase's share of the train references. A ceiling these probes stay under is a ceiling that means
something.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import median

from medgym.dsl.build import Phase, Step, Task
from medgym.runtime.episode import canonical

PLAN_SHARE = 0.4  # a tool joins the fixed plan when at least this share of train references call it
COPY_AGREEMENT = 0.9  # a calculator input is copied from a case field that equals it this often
ECHO_AGREEMENT = 0.8  # an answer field echoes a calculator output that equals it this often


@dataclass
class Tuning:
    answer: dict  # submit parameter -> the most common train value
    plan: list[tuple[str, dict]]  # the fixed plan: (tool, arguments without id parameters)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # instrument tool -> param -> case path
    constants: dict[str, dict] = field(default_factory=dict)  # instrument tool -> param -> most common value
    echoes: dict[str, tuple[str, str]] = field(default_factory=dict)  # answer field -> (instrument tool, output)
    given_echo: dict[str, dict] = field(default_factory=dict)  # field -> {echoed values (json): most common value}
    phases: dict[str, "Tuning"] = field(default_factory=dict)  # phase name -> what was learned from its steps

    def stage(self, phase: Phase | None) -> "Tuning":
        """What to play in `phase` (a phased task's current phase), or the whole-task tuning (None)."""
        return self.phases.get(phase.name, self) if phase is not None else self


_CACHE: dict[tuple, Tuning] = {}


def tuning(domain) -> Tuning:
    """The domain's tuning, computed once per build and domain."""
    key = (str(domain.build.path), domain.build.manifest.spec_hash, domain.name)
    if key not in _CACHE:
        _CACHE[key] = _tune(domain)
    return _CACHE[key]


def _tune(domain) -> Tuning:
    tasks = domain.tasks("train") or [t for s in ("val", "test") for t in domain.tasks(s)]
    instruments = [t for t in domain.tools.values() if t.kind == "instrument"]
    inputs, constants = {}, {}
    for tool in instruments:
        inputs[tool.name], constants[tool.name] = _input_sources(tool, tasks)
    plain = [t for t in tasks if not t.phases] or tasks  # the whole-task stage plays the unphased families
    out = _stage(domain, [(t, t.reference) for t in plain], domain.submit_tool, instruments)
    out.inputs, out.constants = inputs, constants
    for name, phase in _phases(tasks).items():
        segments = [(t, steps) for t in tasks for p, steps in phase_steps(t) if p.name == name]
        out.phases[name] = _stage(domain, segments, domain.tools[phase.submit], instruments)
        out.phases[name].inputs, out.phases[name].constants = inputs, constants
    return out


def _stage(domain, segments: list[tuple[Task, tuple[Step, ...]]], submit, instruments) -> Tuning:
    """The answer, plan and echoes learned from `segments`: each task with the reference steps of one stage
    (the whole reference, or one phase's steps) ending with a call of `submit`."""
    out = Tuning(answer=_answer_modes(segments, submit), plan=_fixed_plan(domain, segments))
    out.echoes = _echoes(domain, segments, submit, instruments)
    out.given_echo = _conditional_modes([t for t, _ in segments], submit, out.echoes)
    return out


def _phases(tasks: list[Task]) -> dict[str, Phase]:
    """Every phase name the train tasks use, with one of its definitions (its submit tool)."""
    return {p.name: p for t in tasks for p in t.phases}


def phase_steps(task: Task) -> list[tuple[Phase, tuple[Step, ...]]]:
    """A phased task's reference cut into its phases: each phase's steps end with its submit call."""
    out, start = [], 0
    steps = task.reference
    for phase in task.phases:
        end = next((i for i in range(start, len(steps)) if steps[i].name == phase.submit), len(steps) - 1)
        out.append((phase, steps[start:end + 1]))
        start = end + 1
    return out


def _mode(values: list):
    counts = Counter(json.dumps(v, sort_keys=True, default=str) for v in values)
    return json.loads(counts.most_common(1)[0][0]) if counts else None


def _answer_modes(segments: list[tuple[Task, tuple[Step, ...]]], submit) -> dict:
    modes = {}
    for name in submit.spec.parameters["properties"]:
        if name in submit.id_params:
            continue
        values = [t.truth[name] for t, _ in segments if name in t.truth]
        if not values:  # free text such as reasoning: the reference's most common wording
            values = [s.arguments[name] for _, steps in segments for s in steps
                      if s.name == submit.name and name in s.arguments]
        if values:
            modes[name] = _mode(values)
    return modes


def _fixed_plan(domain, segments: list[tuple[Task, tuple[Step, ...]]]) -> list[tuple[str, dict]]:
    """The tools most references call, in their usual order, each with its most common arguments (submissions
    left out: the probe makes its own)."""
    calls_by_tool: dict[str, list[list[dict]]] = defaultdict(list)
    positions: dict[str, list[float]] = defaultdict(list)
    for _, reference in segments:
        steps = [s for s in reference if not _submission(domain, s.name)]
        mine: dict[str, list[dict]] = defaultdict(list)
        for index, step in enumerate(steps):
            mine[step.name].append(step.arguments)
            positions[step.name].append(index / max(1, len(steps)))
        for name, arguments in mine.items():
            calls_by_tool[name].append(arguments)
    plan = []
    for name, per_task in calls_by_tool.items():
        if len(per_task) < PLAN_SHARE * len(segments) or name not in domain.tools:
            continue
        tool = domain.tools[name]
        times = int(median(len(c) for c in per_task))
        for ordinal in range(times):
            seen = [c[ordinal] for c in per_task if len(c) > ordinal]
            plan.append((sum(positions[name]) / len(positions[name]) + ordinal * 1e-3, name, _typical(tool, seen)))
    return [(name, args) for _, name, args in sorted(plan, key=lambda item: item[0])]


def _submission(domain, name: str) -> bool:
    tool = domain.tools.get(name)
    return name == domain.spec.submit_tool or (tool is not None and tool.kind == "submit")


def _typical(tool, calls: list[dict]) -> dict:
    args = {}
    for param in {k for c in calls for k in c}:
        if param in tool.id_params:
            continue
        values = [c[param] for c in calls if param in c]
        if values and all(isinstance(v, list) for v in values):  # orders: the items at least half of them hold
            items = Counter(json.dumps(i, default=str) for v in values for i in v)
            common = [json.loads(i) for i, n in items.most_common() if n >= len(values) / 2]
            args[param] = common or _mode(values)
        else:
            args[param] = _mode(values)
    return args


def _leaves(node, prefix: str = ""):
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _leaves(child, f"{prefix}.{key}" if prefix else key)
    elif prefix:
        yield prefix, node


def _input_sources(tool, tasks: list[Task]) -> tuple[dict, dict]:
    """param -> the case field a reference copies into it (when one agrees almost always); and the most
    common value of every param, for inputs that are judgements rather than copied observations."""
    samples: dict[str, list[tuple[object, dict]]] = defaultdict(list)  # param -> (value, {path: leaf}), normalised
    raw: dict[str, list] = defaultdict(list)
    for task in tasks:
        leaves = None
        for step in task.reference:
            if step.name != tool.name:
                continue
            leaves = leaves or {path: canonical(leaf) for path, leaf in _leaves(task.case)}
            for param, value in step.arguments.items():
                samples[param].append((canonical(value), leaves))
                raw[param].append(value)
    sources, constants = {}, {}
    for param, pairs in samples.items():
        constants[param] = _mode(raw[param])
        if len({repr(v) for v, _ in pairs}) < 2:
            continue  # the same in every reference: a constant, not a copied value
        # Agreement must hold on the uncommon values too, or a mostly-false flag would "copy" any other one.
        common = canonical(constants[param])
        rare = [(v, leaves) for v, leaves in pairs if v != common]
        candidates = Counter(path for value, leaves in pairs[:50] for path, leaf in leaves.items() if leaf == value)
        for path, _ in candidates.most_common(3):
            if _agreement(pairs, path) >= COPY_AGREEMENT and _agreement(rare, path) >= COPY_AGREEMENT:
                sources[param] = path
                break
    return sources, constants


def _agreement(pairs: list[tuple[object, dict]], path: str) -> float:
    if not pairs:
        return 1.0
    return sum(leaves.get(path) == value for value, leaves in pairs) / len(pairs)


def _echoes(domain, segments, submit, instruments) -> dict[str, tuple[str, str]]:
    """answer field -> (instrument tool, output) that equals the truth in most train tasks."""
    results: list[tuple[dict, dict]] = []  # (truth, {tool: result})
    for task, steps in segments:
        found = {}
        for step in steps:
            tool = domain.tools.get(step.name)
            if tool is not None and tool.kind == "instrument" and tool.name not in found:
                try:
                    found[tool.name] = domain.build.instruments[tool.spec.instrument](**step.arguments)
                except (ValueError, TypeError):
                    continue
        results.append((task.truth, found))
    echoes = {}
    for name in submit.spec.parameters["properties"]:
        best, best_rate = None, 0.0
        for tool in instruments:
            outputs = {k for _, found in results if tool.name in found for k in found[tool.name]}
            for key in outputs:
                pairs = [(truth[name], found[tool.name][key]) for truth, found in results
                         if name in truth and tool.name in found and key in found[tool.name]]
                if len(pairs) < PLAN_SHARE * len(segments):
                    continue
                rate = sum(canonical(a) == canonical(b) for a, b in pairs) / len(pairs)
                if rate > best_rate:
                    best, best_rate = (tool.name, key), rate
        if best is not None and best_rate >= ECHO_AGREEMENT:
            echoes[name] = best
    return echoes


def _conditional_modes(tasks, submit, echoes) -> dict[str, dict]:
    """For fields that echo nothing: their most common train value given the echoed fields' values (the
    disposition that usually goes with an ESI level), so the probe answers as consistently as it can."""
    if not echoes:
        return {}
    keys = sorted(echoes)
    out: dict[str, dict] = {}
    for name in submit.spec.parameters["properties"]:
        if name in echoes or name in submit.id_params:
            continue
        groups: dict[str, list] = defaultdict(list)
        for task in tasks:
            truth = task.truth
            if name in truth and all(k in truth for k in keys):
                groups[json.dumps([canonical(truth[k]) for k in keys], default=str)].append(truth[name])
        if groups:
            out[name] = {given: _mode(values) for given, values in groups.items()}
    return out
