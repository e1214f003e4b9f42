"""Domains: the record, the tools and the domain-wide rules, checked together into a DomainContext."""
from __future__ import annotations

from medgym.compiler.context import DomainContext
from medgym.compiler.rubric import episode_scope, predicate, safety_rule
from medgym.compiler.load import DomainFiles
from medgym.compiler.records import build_record, field_summary
from medgym.compiler.texts import TextEnv
from medgym.compiler.tools import answer_type, compile_tool
from medgym.dsl import build as b
from medgym.dsl.checker import Scope
from medgym.dsl.components import COMPONENTS, CORE_COMPONENTS
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.models import PROBE_CEILINGS
from medgym.dsl.types import ANY

from medgym.dsl.naming import class_stem, env_id  # noqa: F401  (re-exported for the pipeline)


def build_context(name: str, files: DomainFiles, instruments: dict, tables: dict, errors: list[SpecError],
                  shared: dict | None = None):
    """Check the domain's record and tools; None when they have errors (families are then skipped).
    `shared`: the library every domain sees (functions, tables callable as functions, macro files)."""
    before = len(errors)
    if files.domain is None or files.record is None:
        return None
    domain = files.domain.model
    if domain.name != name:
        errors.append(SpecError(f"domain.yaml says name '{domain.name}' but the folder is '{name}'", files.domain.marks.at(("name",))))
    weights = domain.reward
    total = sum(getattr(weights, name) for name in CORE_COMPONENTS)
    if abs(total - 1.0) > 1e-6:
        optional = " and ".join(c.name for c in COMPONENTS if c.optional)
        errors.append(SpecError(f"reward weights (without {optional}) must sum to 1, not {total:g}", files.domain.marks.at(("reward",))))
    record = build_record(files.record, errors)
    if record is None:
        return None
    signatures = {k: v.signature for k, v in instruments.items()}
    tools: dict[str, dict] = {}
    for loaded in files.tools:
        compiled = compile_tool(loaded, record, instruments, tables, errors)
        if compiled is None:
            continue
        if compiled["name"] in tools:
            errors.append(SpecError(f"tool '{compiled['name']}' is declared twice", loaded.marks.at(("name",))))
        tools[compiled["name"]] = compiled
    submits = _final_submit(domain, tools, files, errors) if len(errors) == before else []
    shared = shared or {}
    texts = TextEnv(shared.get("templates", {}), _partials(files), errors)
    if len(errors) > before:
        return None
    return DomainContext(name, record, tools, signatures, submits[0], answer_type(submits[0]), set(domain.history_topics),
                         {k: v.model_dump() for k, v in domain.history_topics.items()},
                         shared.get("functions", {}), shared.get("tables", {}), texts)


def _final_submit(domain, tools: dict, files: DomainFiles, errors) -> list[dict]:
    """The submit tool that ends the episode: the only one, or the one domain.yaml `submit:` names (a phased
    domain has one per phase)."""
    submits = [t for t in tools.values() if t["kind"] == "submit"]
    if domain.submit is not None:
        named = [t for t in submits if t["name"] == domain.submit]
        if not named:
            errors.append(SpecError(f"submit: '{domain.submit}' is not a submit tool of tools.yaml",
                                    files.domain.marks.at(("submit",)), did_you_mean(domain.submit, [t["name"] for t in submits])))
        return named
    if len(submits) != 1:
        hint = "with several (one per phase), name the one that ends the episode in domain.yaml `submit:`" if submits else ""
        errors.append(SpecError(f"a domain needs exactly one submit tool, found {len(submits)}",
                                Position(str(files.folder / "tools.yaml")), hint))
    return submits


def _partials(files: DomainFiles) -> dict:
    """The named partials of defaults.yaml, each with its position."""
    if files.defaults is None:
        return {}
    return {name: (text, files.defaults.marks.at(("partials", name))) for name, text in files.defaults.model.partials.items()}


def domain_rules(files: DomainFiles, ctx: DomainContext, errors: list[SpecError]) -> tuple[dict[str, str], list[dict]]:
    """Generated predicates (name -> def) and rule data for the domain-wide safety rules."""
    scope = episode_scope(ctx, ctx.scope({"case": ctx.record.type, "truth": ANY}))
    code, rules = {}, []
    for index, rule in enumerate(files.domain.model.safety):
        name = f"{ctx.name}__{rule.id}"
        made = predicate(name, rule.when, files.domain.marks, ("safety", index, "when"), scope, errors)
        if made:
            code[name] = made.code
            rules.append(safety_rule(rule, made))
    return code, rules


def family_cards(families, root) -> dict:
    """Each family's card and where it is written (the gate points its errors there)."""
    out = {}
    for fam in families:
        model = fam.model
        out[fam.name] = {"id": f"medgym/{fam.name}-v{model.version}", "title": model.title,
                         "description": model.description.strip(), "file": fam.marks.path, "count": fam.count,
                         "scenarios": [p.name for p in fam.plans], "reference_threshold": model.reference_threshold}
    return out


def domain_json(files: DomainFiles, ctx: DomainContext, rules: list[dict], families: dict) -> b.Domain:
    """The compiled domain as the build format's model (domain.json)."""
    domain = files.domain.model
    return b.Domain.model_validate({
        "name": ctx.name, "env_id": env_id(ctx.name, domain.version), "class_name": f"{class_stem(ctx.name)}Env", "version": domain.version,
        "title": domain.title, "card": domain.card.model_dump(), "policy": files.policy, "max_turns": domain.max_turns,
        "reward": domain.reward.model_dump(), "entity": ctx.record.entity,
        "history_topics": {k: v.model_dump() for k, v in domain.history_topics.items()},
        "hints": domain.hints.model_dump(), "fields": field_summary(ctx.record), "safety": rules,
        "submit_tool": ctx.submit["name"], "tools": list(ctx.tools.values()), "families": families,
        "probes": probe_ceilings(files), "file": files.domain.marks.path,
    })


def probe_ceilings(files: DomainFiles) -> dict:
    """Every probe's ceiling (declared, else the default) and the line the gate points at when it fails."""
    declared = files.domain.model.probes
    out = {}
    for name, default in PROBE_CEILINGS.items():
        ceiling = declared.get(name, default)
        ceiling = ceiling.model_dump() if hasattr(ceiling, "model_dump") else ceiling
        where = files.domain.marks.at(("probes", name)) if name in declared else files.domain.marks.at(("name",))
        out[name] = {"ceiling": ceiling, "declared": name in declared, "line": where.line, "col": where.col}
    return out
