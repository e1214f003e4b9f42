"""The build format: pydantic models of every compiled artifact, shared by the compiler (which writes
through them) and the runtime (which validates a build once, when it loads it, and then reads attributes).

docs/build-format.md describes the files; this module is their one definition. Case records, truths, `let`
values and tool arguments stay plain JSON (`dict`): their shape is each domain's own, declared in its
record.yaml and checked by the compiler, and generated predicates read them leniently.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from medgym.dsl.models import Card, Hints, RewardWeights, Table, ToolKind, Topic  # noqa: F401  (Table: tables.json)

FORMAT_VERSION = 3  # 2: the typed build (every artifact validated by these models); 3: phases, images, series,
# multi-key tables, checklists and dataset items
SPLITS = ("train", "val", "test")
SeverityName = Literal["minor", "moderate", "major", "critical"]
MatchKind = Literal["exact", "numeric", "set_f1", "token_f1", "option", "checklist"]


class BuildModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def kind_table(table: dict[str, Any], what: str) -> dict[str, Any]:
    """`table` (tool kind -> anything), checked to cover exactly the kinds of `ToolKind`.

    The compiler's checks and the runtime's handlers each build their table with this at import, so a kind
    added to the language without its check or its handler fails at once, naming what is missing."""
    kinds = [k.value for k in ToolKind]
    missing = [k for k in kinds if k not in table]
    extra = [k for k in table if k not in kinds]
    if missing or extra:
        raise RuntimeError(f"{what} is out of step with ToolKind: missing {missing or 'none'}, "
                           f"unknown {extra or 'none'}")
    return dict(table)


# ---------------------------------------------------------------- tools (domain.json "tools", one model per kind)
class ToolBase(BuildModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments, as in tools.json")
    minutes: float = 0.0
    static: bool = False
    id_params: tuple[str, ...] = ()

    def openai(self) -> dict:
        """The OpenAI function-calling entry (tools.json)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


class LookupTool(ToolBase):
    kind: Literal["lookup"] = "lookup"
    path: tuple[str, ...]
    select: str | None = None
    revealed_only: bool = False
    flags: bool = False
    window: dict[str, float] = Field(default_factory=dict, description="over series: the since/until/last_n params "
                                     "-> hours per unit of the value (1 for last_n)")


class ActionTool(ToolBase):
    kind: Literal["action"] = "action"
    reveals: tuple[str, ...] | None = None
    select: str | None = None


class InstrumentTool(ToolBase):
    kind: Literal["instrument"] = "instrument"
    instrument: str


class TableTool(ToolBase):
    kind: Literal["table"] = "table"
    table: str
    key_param: str | tuple[str, ...] | None = None


class SimulatorTool(ToolBase):
    kind: Literal["simulator"] = "simulator"
    question_param: str


class KbSearchTool(ToolBase):
    kind: Literal["kb_search"] = "kb_search"
    op: Literal["search", "read"]


class SubmitTool(ToolBase):
    kind: Literal["submit"] = "submit"


class PythonTool(ToolBase):
    kind: Literal["python"] = "python"
    function: str = Field(description="package.module:function, called as function(case=..., state=..., **arguments)")


TOOL_MODELS: dict[str, type[ToolBase]] = kind_table(
    {"lookup": LookupTool, "action": ActionTool, "instrument": InstrumentTool, "table": TableTool,
     "simulator": SimulatorTool, "kb_search": KbSearchTool, "submit": SubmitTool, "python": PythonTool},
    "medgym.dsl.build.TOOL_MODELS")
Tool = Annotated[Union[tuple(TOOL_MODELS.values())], Field(discriminator="kind")]


# ---------------------------------------------------------------- rubrics (a task's "rubric", domain safety rules)
class ChecklistFinding(BuildModel):
    finding: str
    phrases: tuple[str, ...] = Field(description="the label's phrase (when it is one) and the synonyms")
    section: str | None = None
    weight: float = 1.0
    if_absent: Literal["deny", "ignore"] = "deny"
    present: bool | None = Field(None, description="whether this task's case has the finding (set per task)")


class Checklist(BuildModel):
    """A `match: checklist` field's grader (medgym.runtime.checklist), its findings resolved for the task."""

    sections: tuple[str, ...] = ()
    items: tuple[ChecklistFinding, ...]
    unsupported: float = 0.25
    denied: float = 0.25
    missing_section: float = 0.25


class AccuracyRule(BuildModel):
    match: MatchKind = "exact"
    tolerance: float = 0.0
    rel_tolerance: float = 0.0
    weight: float = 1.0
    checklist: Checklist | None = None


class Requirement(BuildModel):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Process(BuildModel):
    require: tuple[Requirement, ...] = ()
    before_answer: tuple[str, ...] = ()
    order: tuple[tuple[str, str], ...] = ()
    max_calls: int | None = None


class SafetyRule(BuildModel):
    id: str
    severity: SeverityName
    category: str
    message: str = ""
    predicate: str
    needs_answer: bool

    def violation(self) -> dict:
        """What an episode's info reports for this rule when it is violated."""
        return {"id": self.id, "severity": self.severity, "category": self.category, "message": self.message}


class CoherenceCheck(BuildModel):
    id: str
    predicate: str
    when: str | None = None
    needs_answer: bool
    answer_fields: tuple[str, ...] = ()


class AssertionCheck(BuildModel):
    id: str
    predicate: str
    needs_answer: bool


class Rubric(BuildModel):
    accuracy: dict[str, AccuracyRule]
    process: Process = Field(default_factory=Process)
    safety: tuple[SafetyRule, ...] = ()
    coherence: tuple[CoherenceCheck, ...] = ()
    assertions: tuple[AssertionCheck, ...] = ()


# ---------------------------------------------------------------- tasks (tasks/<split>.jsonl, one per line)
class Step(BuildModel):
    name: str
    arguments: dict[str, Any]


class Phase(BuildModel):
    """One stage of a phased task: its tools (the submit tool included), what it hands on, its rubric."""

    name: str
    tools: tuple[str, ...]
    submit: str
    receives: tuple[str, ...] = ()
    hand_forward: tuple[str, ...] = ()
    weight: float = 1.0
    rubric: Rubric


class Task(BuildModel):
    task_id: str
    domain: str
    family: str
    version: int
    index: int
    seed: int
    split: Literal["train", "val", "test"]
    scenario: str
    ticket: str
    case: dict[str, Any]
    history: dict[str, list[str]] = Field(default_factory=dict)
    truth: dict[str, Any]
    vars: dict[str, Any] = Field(default_factory=dict)
    reference: tuple[Step, ...]
    rubric: Rubric
    threshold: float = 0.95
    fingerprint: str | None = Field(None, description="a dataset item's content hash (dataset-backed families)")
    phases: tuple[Phase, ...] = Field(default=(), description="a phased task's stages in order; the last one's rubric "
                                                              "is `rubric`, its reference steps end `reference`")


# ---------------------------------------------------------------- domains (<domain>/domain.json)
class FieldInfo(BuildModel):
    type: str
    unit: str | None = None
    reference: tuple[float | None, float | None] | None = None
    critical: tuple[float | None, float | None] | None = None
    findings: str | None = None  # image fields: the record group of the image's structured findings


class ImageFile(BuildModel):
    """An image a case names, copied into the build (`file`, relative to the domain folder of the build)."""

    file: str
    sha256: str
    media_type: str
    bytes: int


class FamilyCard(BuildModel):
    id: str
    title: str
    description: str
    file: str
    count: int
    scenarios: tuple[str, ...]
    reference_threshold: float


class BelowReference(BuildModel):
    below_reference: float


class ProbeCeiling(BuildModel):
    ceiling: float | BelowReference
    declared: bool
    line: int
    col: int


class Domain(BuildModel):
    name: str
    env_id: str
    class_name: str
    version: int
    title: str
    card: Card
    policy: str
    max_turns: int
    reward: RewardWeights
    entity: str
    history_topics: dict[str, Topic] = Field(default_factory=dict)
    hints: Hints = Field(default_factory=Hints)
    fields: dict[str, FieldInfo] = Field(default_factory=dict)
    safety: tuple[SafetyRule, ...] = ()
    submit_tool: str
    tools: tuple[Tool, ...]
    families: dict[str, FamilyCard] = Field(default_factory=dict)
    probes: dict[str, ProbeCeiling] = Field(default_factory=dict)
    file: str
    images: dict[str, ImageFile] = Field(default_factory=dict, description="case image name -> its copy in the build")


# ---------------------------------------------------------------- the manifest, instruments, tables
class InstrumentUse(BuildModel):
    tools: tuple[str, ...] = ()
    families: tuple[str, ...] = ()


class DatasetInfo(BuildModel):
    """A data file some family draws its items from, as the manifest records it."""

    file: str = Field(description="relative to the domain folder")
    format: Literal["jsonl", "csv"]
    licence: str
    source: str
    sha256: str = Field(description="of the file's bytes")
    families: tuple[str, ...]
    items: int
    splits: dict[str, int]


class DomainSummary(BuildModel):
    env_id: str
    tools: int
    instruments: int
    tasks: int
    families: int
    splits: dict[str, int]
    instrument_use: dict[str, InstrumentUse] = Field(default_factory=dict)
    datasets: dict[str, DatasetInfo] = Field(default_factory=dict, description="file -> what the manifest records")


class Counts(BuildModel):
    domains: int = 0
    tools: int = 0
    instruments: int = 0
    tasks: int = 0


class Manifest(BuildModel):
    format_version: Literal[3] = FORMAT_VERSION
    medgym_version: str
    spec_hash: str
    counts: Counts = Field(default_factory=Counts)
    domains: dict[str, DomainSummary] = Field(default_factory=dict)


class InstrumentInput(BuildModel):
    type: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    default: Any = None
    required: bool
    description: str = ""


class InstrumentOutput(BuildModel):
    type: str
    unit: str | None = None


class WorkedExample(BuildModel):
    citation: str
    given: dict[str, Any]
    expect: dict[str, Any]
    within: float


class InstrumentInfo(BuildModel):
    """An instrument's instruments.json entry (its function is in instruments.py)."""

    title: str
    source: str
    sources: tuple[str, ...]
    file: str
    variant: str = ""
    inputs: dict[str, InstrumentInput]
    outputs: dict[str, InstrumentOutput]
    examples: tuple[WorkedExample, ...] = ()


# tables.json holds the spec model `Table` (name, description, source, key, columns, rows) by name.
