"""What a family compiles against and what it compiles into: the domain context, plans and the compiled family.

Data only; planning.py fills the plans, generate.py writes the code, rubric.py the rubric, families.py runs them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medgym.compiler.expressions import Source
from medgym.compiler.records import Record
from medgym.dsl import nodes as n
from medgym.dsl.checker import Function, Scope, Signature, TableFunction
from medgym.dsl.errors import Position
from medgym.dsl.types import RecordT, Type

DEFAULT_SCENARIO = "default"


@dataclass
class DomainContext:
    name: str
    record: Record
    tools: dict[str, dict]
    instruments: dict[str, Signature]
    submit: dict
    answer: RecordT
    topics: set[str]
    history_topics: dict = field(default_factory=dict)  # topic -> {ask, description}, for matching questions
    functions: dict[str, Function] = field(default_factory=dict)  # lib/*.yaml
    tables: dict[str, TableFunction] = field(default_factory=dict)  # reference tables called as functions
    texts: object = None  # texts.TextEnv: the jinja sandbox with the shared macros and the domain's partials
    item: Type | None = None  # while a dataset-backed family compiles: the type of its `item`

    def scope(self, names: dict[str, Type], **options) -> Scope:
        """A checking scope over `names` with the instruments, functions and tables of this domain (and the
        dataset item of the family being compiled, when it has one)."""
        names = {**names, "item": self.item} if self.item is not None and "item" not in names else names
        return Scope(names, dict(self.instruments), functions=self.functions, tables=self.tables, **options)

    def tool_outputs(self) -> dict[str, Type]:
        return {name: self.instruments[t["instrument"]].output for name, t in self.tools.items()
                if t["kind"] == "instrument" and t.get("instrument") in self.instruments}


@dataclass
class Step:
    target: tuple  # ("let", name) | ("case", "a.b") | ("truth", name)
    source: Source
    typed: object  # typed expression, typed distribution params, or None for literals
    type: Type


@dataclass
class Plan:
    name: str
    weight: float
    steps: list[Step]
    history: dict[str, list[tuple[str, Position]]]
    let_types: dict[str, Type]
    truth_types: dict[str, Type]


@dataclass
class CompiledFamily:
    model: object
    marks: object
    plans: list[Plan]
    code: list[str] = field(default_factory=list)  # generated task-generation functions (generate.py)
    predicates: dict[str, str] = field(default_factory=dict)  # rubric predicate name -> its def (env.py)
    rubric: dict = field(default_factory=dict)  # rubric data with predicate names, per task
    reference_positions: list[Position] = field(default_factory=list)
    count: int = 1
    seed: int = 0
    sources: list[str] = field(default_factory=list)  # every spec file it depends on (families.family_sources)
    used: set[str] = field(default_factory=set)  # the shared functions and tables it calls
    dataset: object = None  # datasets.LoadedDataset: the items of a dataset-backed family
    phases: list = field(default_factory=list)  # phases.CompiledPhase per stage of a phased family

    @property
    def name(self) -> str:
        return self.model.family

    def instruments_used(self, known) -> set[str]:
        """The instruments its case, lets and truths call (for the instrument catalogue's "where used")."""
        found = set()
        for plan in self.plans:
            for step in plan.steps:
                typed = step.typed if isinstance(step.typed, (list, tuple)) else [step.typed]
                for expr in typed:
                    if isinstance(expr, n.Node):
                        found |= {node.func for node in n.walk(expr) if isinstance(node, n.Call) and node.func in known}
        return found

