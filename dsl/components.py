"""The reward components, declared once: every consumer (the domain spec's weights, the compiler's checks,
the reward engine, the CLI's columns, the generated env card) reads this tuple.

Adding a component means adding it here; `kind_table`-style guards in the reward engine then fail at import
until it has a scorer, so no list can fall out of step silently.
"""
from __future__ import annotations

from typing import NamedTuple


class Component(NamedTuple):
    name: str
    weight: float  # default weight in a domain's `reward:`
    short: str  # column header in `medgym eval` tables
    description: str
    rubric: str | None  # the rubric section that declares what it checks (format needs none)
    optional: bool = False  # present only in episodes whose rubric declares it (it has no default share)


COMPONENTS: tuple[Component, ...] = (
    Component("accuracy", 0.30, "acc", "the submitted answer, field by field, against the truth", "accuracy"),
    Component("process", 0.20, "proc", "required actions, order constraints and per-item costs", "process"),
    Component("safety", 0.25, "safe", "1 - the largest penalty among violated safety rules", "safety"),
    Component("format", 0.10, "fmt", "well-formed, schema-valid tool calls and a submission", None),
    Component("coherence", 0.15, "coh", "the answer agrees with what the agent observed", "coherence"),
    Component("assertion", 0.15, "assert", "the rubric's assertions; used only by tasks that declare some",
              "assertions", optional=True),
)
RUBRIC_SECTIONS: tuple[str, ...] = tuple(c.rubric for c in COMPONENTS if c.rubric)  # a rubric's sections, in order
COMPONENT_NAMES: tuple[str, ...] = tuple(c.name for c in COMPONENTS)
CORE_COMPONENTS: tuple[str, ...] = tuple(c.name for c in COMPONENTS if not c.optional)  # their weights sum to 1


def component_table(table: dict, what: str) -> dict:
    """`table` (component name -> anything), checked to cover exactly the declared components, in their order."""
    missing = [name for name in COMPONENT_NAMES if name not in table]
    extra = [name for name in table if name not in COMPONENT_NAMES]
    if missing or extra:
        raise RuntimeError(f"{what} is out of step with medgym.dsl.components: "
                           f"missing {missing or 'none'}, unknown {extra or 'none'}")
    return {name: table[name] for name in COMPONENT_NAMES}
