"""Materialise tasks: run a family's generated code for each index, render texts, validate the result.

Everything is seeded by (family, seed, index), so task i needs no task before it, and the split of a task
is a stable hash of (family, seed, index): adding tasks never moves old ones between splits. A dataset item
(compiler/datasets.py) is seeded and named by its fingerprint instead, and keeps the dataset's own split.
"""
from __future__ import annotations

import hashlib
import json
import math
import random

import jsonschema
from medgym.compiler.checklist import checklist_name, resolve
from medgym.compiler.context import CompiledFamily, DomainContext
from medgym.compiler.generate import generator_name, process_name, reference_name
from medgym.compiler.texts import compile_text, render_text
from medgym.dsl.errors import SpecError

SPLITS = (("train", 0.7), ("val", 0.8), ("test", 1.0))


def split_of(family: str, seed: int, index: int) -> str:
    digest = hashlib.sha256(f"{family}|{seed}|{index}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return next(name for name, upper in SPLITS if fraction < upper)


def case_id(prefix: str, task_id: str) -> str:
    return f"{prefix}-{hashlib.sha256(task_id.encode()).hexdigest()[:6].upper()}"


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
    ticket = compile_text(model.ticket, marks.at(("ticket",)), "the ticket", errors, ctx.texts)
    histories = {plan.name: {topic: [compile_text(t, pos, f"history answer '{topic}'", errors, ctx.texts) for t, pos in answers]
                             for topic, answers in plan.history.items()} for plan in fam.plans}
    if len(errors) > before:
        return []
    generators = {plan.name: getattr(module, generator_name(model.family, plan.name)) for plan in fam.plans}
    names, weights = [p.name for p in fam.plans], [p.weight for p in fam.plans]
    reference = getattr(module, reference_name(model.family))
    process = getattr(module, process_name(model.family))
    checklists = getattr(module, checklist_name(model.family), None)
    validators = {name: jsonschema.Draft202012Validator(tool["parameters"]) for name, tool in ctx.tools.items()}
    tasks, reported = [], set()
    items = fam.dataset.items if fam.dataset is not None else None
    for index in range(fam.count):
        item = items[index] if items is not None else None
        # A dataset item is named and seeded by its content, so reordering the file moves no task.
        key = item.fingerprint[:16] if item else f"{index:04d}"
        task_id = f"{ctx.name}/{model.family}-v{model.version}/{key}"
        rng = random.Random(f"{model.family}|{fam.seed}|{item.fingerprint if item else index}")
        scenario = rng.choices(names, weights)[0] if len(names) > 1 else names[0]
        where = f"task {index} (scenario {scenario})" + (f", {fam.dataset.file} row {item.row}" if item else "")
        try:
            V, C, T = generators[scenario](rng, case_id(ctx.record.id_prefix, task_id),
                                           *([dict(item.values)] if item else []))
            steps = reference(V, C, T)
            required = process(V, C, T)
            present = checklists(V, C, T) if checklists else {}
        except Exception as exc:  # noqa: BLE001 - generated from the spec's values: any failure is the spec's
            errors.append(SpecError(f"{where}: cannot compute the case ({type(exc).__name__}: {exc})", marks.at(())))
            break
        if not _in_range(C, ctx, fam, scenario, index, errors, reported) or not _finite(V, C, T, fam, where, errors):
            continue
        context = {"case": C, "truth": T, "scenario": scenario, **{k: v for k, v in V.items() if k != "scenario"}}
        task = {"task_id": task_id, "domain": ctx.name, "family": model.family, "version": model.version,
                "index": index, "seed": fam.seed, "scenario": scenario,
                # a dataset item keeps the dataset's own split: never the hash split of generated tasks
                "split": item.split if item else split_of(model.family, fam.seed, index)}
        if item:
            task["fingerprint"] = item.fingerprint
        texts = _render(ticket, histories[scenario], context, where, errors)
        if texts is None:
            break
        task["ticket"], task["history"] = texts
        task["case"], task["truth"], task["vars"] = jsonable(C), jsonable(T), jsonable(V)
        task["reference"] = [{"name": name, "arguments": jsonable(args)} for _, name, args in steps]
        if not _valid_reference(task, [i for i, _, _ in steps], fam, validators, errors, reported):
            continue
        if not _reaches_truth(task, fam, ctx, errors, reported):
            continue
        rubric = dict(fam.rubric)
        rubric["process"] = {**fam.rubric["process"], "require": jsonable(required)}
        task["rubric"] = resolve(rubric, present) if present else rubric
        task["threshold"] = model.reference_threshold
        tasks.append(task)
    return tasks


def _render(ticket, histories: dict, context: dict, where: str, errors) -> tuple[str, dict] | None:
    """The task's ticket and history answers, or None after recording the first text that fails."""
    try:
        return render_text(ticket, context, where), {
            topic: [render_text(answer, context, where) for answer in answers] for topic, answers in histories.items()}
    except SpecError as exc:
        errors.append(exc)
        return None


def _finite(V: dict, C: dict, T: dict, fam, where: str, errors) -> bool:
    """Computed values must be finite numbers too (`=1e300 * 1e300` is inf, and JSON has no inf)."""
    stack = [(f"case.{k}" if root == "case" else (f"truth.{k}" if root == "truth" else k), v)
             for root, values in (("let", V), ("case", C), ("truth", T)) for k, v in values.items()]
    while stack:
        name, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(SpecError(f"{where}: {name} computes to {value}, not a finite number", fam.marks.at(())))
            return False
        if isinstance(value, dict):
            stack.extend((f"{name}.{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
    return True


def _in_range(case: dict, ctx: DomainContext, fam, scenario, index, errors, reported) -> bool:
    ok = True
    for path, info in ctx.record.fields.items():
        limits = info.spec.range
        if limits is None:
            continue
        value = case
        for part in path.split("."):
            value = value[part]
        if isinstance(value, list):  # a series: every value inside the limits
            value = next((r["value"] for r in value if not limits[0] <= r["value"] <= limits[1]), limits[0])
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
