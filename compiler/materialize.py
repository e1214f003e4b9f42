"""Materialise tasks: run a family's generated code for each index, render texts, validate the result.

Everything is seeded by (family, seed, index), so task i needs no task before it, and the split of a task
is a stable hash of (family, seed, index): adding tasks never moves old ones between splits.
"""
from __future__ import annotations

import hashlib
import json
import random

import jsonschema
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from medgym.compiler.families import CompiledFamily, DomainContext, generator_name, process_name, reference_name
from medgym.dsl.errors import Position, SpecError

SPLITS = (("train", 0.7), ("val", 0.8), ("test", 1.0))
_JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def split_of(family: str, seed: int, index: int) -> str:
    digest = hashlib.sha256(f"{family}|{seed}|{index}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return next(name for name, upper in SPLITS if fraction < upper)


def case_id(prefix: str, task_id: str) -> str:
    return f"{prefix}-{hashlib.sha256(task_id.encode()).hexdigest()[:6].upper()}"


def _template(text: str, pos: Position, errors):
    try:
        return _JINJA.from_string(text)
    except TemplateError as exc:
        line = getattr(exc, "lineno", 1) or 1
        errors.append(SpecError(f"template error: {exc.message if hasattr(exc, 'message') else exc}",
                                Position(pos.path, pos.line + line - 1 if line > 1 else pos.line, pos.col)))
        return None


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return value
    return value


def materialize(fam: CompiledFamily, ctx: DomainContext, module, errors: list[SpecError]) -> list[dict]:
    model, marks = fam.model, fam.marks
    before = len(errors)
    ticket = _template(model.ticket, marks.at(("ticket",)), errors)
    histories = {plan.name: {topic: [(_template(t, pos, errors), pos) for t, pos in answers]
                             for topic, answers in plan.history.items()} for plan in fam.plans}
    if len(errors) > before:
        return []
    generators = {plan.name: getattr(module, generator_name(model.family, plan.name)) for plan in fam.plans}
    names, weights = [p.name for p in fam.plans], [p.weight for p in fam.plans]
    reference = getattr(module, reference_name(model.family))
    process = getattr(module, process_name(model.family))
    validators = {name: jsonschema.Draft202012Validator(tool["parameters"]) for name, tool in ctx.tools.items()}
    tasks, reported = [], set()
    for index in range(fam.count):
        task_id = f"{ctx.name}/{model.family}-v{model.version}/{index:04d}"
        rng = random.Random(f"{model.family}|{fam.seed}|{index}")
        scenario = rng.choices(names, weights)[0] if len(names) > 1 else names[0]
        try:
            V, C, T = generators[scenario](rng, case_id(ctx.record.id_prefix, task_id))
        except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
            errors.append(SpecError(f"task {index} (scenario {scenario}): cannot compute the case ({exc})", marks.at(())))
            break
        if not _in_range(C, ctx, fam, scenario, index, errors, reported):
            continue
        context = {"case": C, "truth": T, "scenario": scenario, **{k: v for k, v in V.items() if k != "scenario"}}
        task = {"task_id": task_id, "domain": ctx.name, "family": model.family, "version": model.version,
                "index": index, "seed": fam.seed, "split": split_of(model.family, fam.seed, index), "scenario": scenario}
        try:
            task["ticket"] = ticket.render(context).strip()
            task["history"] = {topic: [tpl.render(context).strip() for tpl, _ in answers]
                               for topic, answers in histories[scenario].items()}
        except TemplateError as exc:
            errors.append(SpecError(f"template error in task {index}: {exc}", marks.at(("ticket",))))
            break
        task["case"], task["truth"], task["vars"] = jsonable(C), jsonable(T), jsonable(V)
        steps = reference(V, C, T)
        task["reference"] = [{"name": name, "arguments": jsonable(args)} for _, name, args in steps]
        if not _valid_reference(task, [i for i, _, _ in steps], fam, validators, errors, reported):
            continue
        if not _reaches_truth(task, fam, ctx, errors, reported):
            continue
        rubric = dict(fam.rubric)
        rubric["process"] = {**fam.rubric["process"], "require": jsonable(process(V, C, T))}
        task["rubric"] = rubric
        task["threshold"] = model.reference_threshold
        tasks.append(task)
    return tasks


def _in_range(case: dict, ctx: DomainContext, fam, scenario, index, errors, reported) -> bool:
    ok = True
    for path, info in ctx.record.fields.items():
        limits = info.spec.range
        if limits is None:
            continue
        value = case
        for part in path.split("."):
            value = value[part]
        if isinstance(value, (int, float)) and not (limits[0] <= value <= limits[1]):
            ok = False
            key = (path, scenario)
            if key not in reported:
                reported.add(key)
                errors.append(SpecError(
                    f"task {index} (scenario {scenario}): case.{path} = {value} is outside its physiological range "
                    f"{limits[0]:g}..{limits[1]:g}", _source_pos(fam, scenario, path) or info.pos,
                    "clip the distribution or fix its parameters"))
    return ok


def _source_pos(fam, scenario, path):
    for plan in fam.plans:
        if plan.name == scenario:
            for step in plan.steps:
                if step.target == ("case", path):
                    return step.source.pos
    return None


def _valid_reference(task, spec_steps: list[int], fam, validators, errors, reported) -> bool:
    for step, step_index in zip(task["reference"], spec_steps):
        validator = validators[step["name"]]
        problem = next(iter(validator.iter_errors(step["arguments"])), None)
        if problem is not None:
            key = ("reference", step_index)
            if key not in reported:
                reported.add(key)
                where = ".".join(str(p) for p in problem.absolute_path) or "arguments"
                errors.append(SpecError(f"reference step {step_index + 1} ({step['name']}), task {task['index']}: "
                                        f"{where}: {problem.message}", fam.reference_positions[step_index]))
            return False
    return True


def _reaches_truth(task, fam, ctx: DomainContext, errors, reported) -> bool:
    """The reference solution's submission must equal the truth on every graded field."""
    submitted = task["reference"][-1]["arguments"]
    for key in fam.rubric["accuracy"]:
        want, got = task["truth"].get(key), submitted.get(key)
        if _same(want, got):
            continue
        if ("truth", key) not in reported:
            reported.add(("truth", key))
            errors.append(SpecError(f"the reference solution does not reach the ground truth: task {task['index']} "
                                    f"submits {key} = {got!r} but the truth is {want!r}", fam.reference_positions[-1]))
        return False
    return True


def _same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return sorted(map(str, a)) == sorted(map(str, b))
    return a == b


def dumps(task: dict) -> str:
    return json.dumps(task, ensure_ascii=False, sort_keys=False, separators=(",", ":"))
