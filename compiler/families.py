"""Task families: plan how each scenario's values are computed, type-check everything, generate code.

A family becomes generated Python: one generator per scenario (sampling `let` and `case` values and
computing `truth` in dependency order), one function for the reference solution's arguments, one for the
process requirements' arguments, and one predicate per rubric rule. `materialize.py` runs them. The jobs
live in their own modules: planning.py (values in dependency order), generate.py (the code), rubric.py
(the rubric and its predicates); context.py holds the data they share.
"""
from __future__ import annotations

from pathlib import Path

from medgym.compiler.context import DEFAULT_SCENARIO, CompiledFamily, DomainContext
from medgym.compiler.datasets import load_dataset
from medgym.compiler.generate import generator_code, process_code, reference_code
from medgym.compiler.phases import PhaseMarks, check_phases, compile_phases, phase_scope
from medgym.compiler.planning import family_scope, plan_scenario
from medgym.compiler.rubric import compile_rubric
from medgym.dsl.errors import SpecError
from medgym.dsl.models import TaskFamily


def compile_family(loaded, ctx: DomainContext, errors: list[SpecError]) -> CompiledFamily | None:
    fam = loaded.model
    phased = bool(getattr(fam, "phases", None))
    marks = PhaseMarks(loaded.marks, fam) if phased else loaded.marks
    before = len(errors)
    if fam.domain != ctx.name:
        errors.append(SpecError(f"family is in domains/{ctx.name}/ but says domain '{fam.domain}'", marks.at(("domain",))))
        return None
    dataset = None
    if isinstance(fam, TaskFamily) and (fam.dataset is None) == (fam.count is None):
        errors.append(SpecError("a family with a `dataset:` has one task per item: leave out `count:`", marks.at(("count",), key=True))
                      if fam.dataset is not None else
                      SpecError("missing required field 'count' (or a `dataset:` whose items give the tasks)", marks.at(())))
        return None
    if getattr(fam, "dataset", None) is not None:  # a family file lives in <domain>/tasks/
        dataset = load_dataset(fam.dataset, fam.family, Path(marks.path).parent.parent, marks, errors)
        if dataset is None:
            return None
    ctx.item = dataset.type if dataset else None  # `item` in this family's expressions only
    try:
        return _compile(loaded, fam, marks, dataset, ctx, errors, before)
    finally:
        ctx.item = None


def _compile(loaded, fam, marks, dataset, ctx: DomainContext, errors, before: int) -> CompiledFamily | None:
    phased = bool(getattr(fam, "phases", None))
    scenarios = dict(getattr(fam, "scenarios", {}) or {}) or {DEFAULT_SCENARIO: None}
    names = tuple(scenarios)
    plans = []
    used: set[str] = set()  # the shared functions and tables its expressions call
    for name, scenario in scenarios.items():
        made = plan_scenario(fam, marks, name, scenario, names, ctx, errors, used)
        if made is not None:
            plans.append(made)
    if len(errors) > before or not plans:
        return None
    count = len(dataset.items) if dataset else getattr(fam, "count", 1)
    out = CompiledFamily(fam, marks, plans, count=count, seed=getattr(fam, "seed", 0))
    out.used = used
    out.dataset = dataset
    scope, common_lets = family_scope(out, ctx, names, errors)
    if len(errors) > before:
        return None
    for made in plans:
        out.code.append(generator_code(fam.family, made, ctx))
    out.code.append(reference_code(fam, marks, scope, ctx, out, errors))
    out.code.append(process_code(fam, marks, scope, ctx, errors))
    if phased:
        check_phases(fam, marks, ctx, errors)
        if len(errors) > before:
            return None
        compile_phases(fam, marks, scope, ctx, out, common_lets, errors)
    last = phase_scope(fam, ctx, scope, len(fam.phases) - 1) if phased else scope
    compile_rubric(fam, marks, last, ctx, out, common_lets, errors)
    out.sources = family_sources(loaded, out, ctx)
    return out if len(errors) == before else None


def family_sources(loaded, out: CompiledFamily, ctx: DomainContext) -> list[str]:
    """Every spec file the compiled family depends on: its own file, its bases, the domain defaults, the
    shared modules and tables its expressions call and the macro files and partials its texts use. With
    the domain context (record, tools, instruments), this is what a per-family cache has to key on."""
    files = list(loaded.sources)
    for name in sorted(out.used):
        known = ctx.functions.get(name) or ctx.tables.get(name)
        if known is not None:
            files.append(known.pos.path)
    if ctx.texts is not None:
        texts = [loaded.model.ticket] + [t for plan in out.plans for answers in plan.history.values() for t, _ in answers]
        for name in sorted({n for text in texts for n in ctx.texts.referenced(text)}):
            files.append(ctx.texts.where[name].path)
    if out.dataset is not None:
        files.append(str(out.dataset.path))
    return list(dict.fromkeys(files))

