"""Pydantic models of every YAML spec kind. Their JSON Schemas (`medgym schema`) serve editors and pre-commit.

Values that may be expressions are plain strings here (an `=` prefix marks an expression); the checker
parses and types them later, with positions from the YAML side table.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, field_validator, model_validator

from medgym.dsl.components import COMPONENTS

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="snake_case identifier")]
Value = Any  # a literal, a `=expression` string, or a distribution mapping


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)  # no inf/nan in specs


class Severity(str, Enum):
    """How bad a safety violation is: minor 0.25, moderate 0.5, major 0.75, critical 1.0 (and caps the composite at 0.1)."""

    minor = "minor"
    moderate = "moderate"
    major = "major"
    critical = "critical"


class ToolKind(str, Enum):
    """Where a tool's answer comes from.

    lookup: the case record; action: changes state (orders, activations) on a simulated clock; instrument: a
    scoring instrument over the arguments; table: a reference table row; simulator: the patient, from the
    case's disclosure rules; kb_search: the knowledge base; submit: ends the episode with the answer;
    python: an escape hatch calling `module:function` (at most 10% of shipped tools).
    """

    lookup = "lookup"
    action = "action"
    instrument = "instrument"
    table = "table"
    simulator = "simulator"
    kb_search = "kb_search"
    submit = "submit"
    python = "python"


class ProjectManifest(Spec):
    """`specs/medgym.yaml`: the project manifest."""

    name: str = Field(description="project name")
    format_version: Literal[1] = Field(1, description="spec format version this project is written in")
    description: str = ""


# ---------------------------------------------------------------- record schema
class RecordField(Spec):
    type: str = Field(description="a type: bool, int [unit] [of analyte], number [unit] [of analyte], text, date, "
                                  "enum(a, b), list[T], image (a file relative to the domain "
                                  "folder, with findings:), series(number unit) (timestamped rows, sampled by "
                                  "`normal: {series: {every: 4 h, over: 72 h, baseline: ..., trend: ..., noise: ..., "
                                  "events: [{at: ..., shift: ...}], clip: [low, high]}}`)")
    description: str = ""
    normal: Value | None = Field(None, description="healthy default: a distribution, a literal or an =expression")
    round: int | None = Field(None, ge=0, le=6, description="decimals kept when sampling")
    range: tuple[float, float] | None = Field(None, description="physiological limits; a generated value outside is an error")
    reference: tuple[float | None, float | None] | None = Field(
        None, description="reference interval used for high/low flags; null for a one-sided limit, e.g. [null, 0.04]")
    critical: tuple[float | None, float | None] | None = Field(
        None, description="critical limits used for critical flags; null for a one-sided limit, e.g. [2.5, null]")
    source: str = Field("", description="provenance of the reference interval")
    findings: str | None = Field(None, description="image fields: the record group (dotted path) holding the "
                                                   "image's structured findings, which text-only agents read "
                                                   "through a lookup tool")


class RecordGroup(Spec):
    description: str = ""
    fields: dict[str, "RecordNode"]


def _node_kind(value: Any) -> str:
    return "group" if isinstance(value, dict) and "fields" in value else "field"


RecordNode = Annotated[Union[Annotated[RecordField, Tag("field")], Annotated[RecordGroup, Tag("group")]],
                       Discriminator(_node_kind)]
RecordGroup.model_rebuild()


class RecordSchema(Spec):
    """`domains/<d>/record.yaml`: the shape of a case record."""

    entity: Name = Field(description="what a case is about, e.g. patient")
    id_prefix: str = Field("ID", pattern=r"^[A-Z]{1,6}$", description="prefix of generated case ids")
    description: str = ""
    fields: dict[str, RecordNode]


# ---------------------------------------------------------------- rubric
class SafetyRule(Spec):
    id: Name
    when: str = Field(description="expression over the episode; true means the rule is violated")
    severity: Severity
    category: Name
    message: str = ""
    needs_answer: bool | None = Field(
        None, description="true: the rule judges the submitted decision and is checked only when there is one; "
                          "default: true when it reads `answer` or judges no action (no called/calls/result)")


class Requirement(Spec):
    tool: Name
    args: dict[str, Value] = Field(default_factory=dict)
    when: str | None = Field(None, description="required only when this expression holds for the task")


class Process(Spec):
    require: list[Union[Name, Requirement]] = Field(default_factory=list)
    before_answer: list[Name] = Field(default_factory=list)
    order: list[tuple[Name, Name]] = Field(default_factory=list)
    max_calls: int | None = Field(None, ge=1)


class ChecklistItem(Spec):
    """One finding of a checklist grader (`match: checklist`): how a text states it, and whether the case has it."""

    finding: Name = Field(description="the finding's label; read as a phrase (underscores as spaces) when it is one")
    synonyms: list[str] | None = Field(None, description="other phrases that state the finding; required when the "
                                                        "label is not itself a plausible phrase (an abbreviation, "
                                                        "a digit, a word without a vowel or under 3 letters)")
    present: Union[bool, str] = Field(description="whether the case has the finding: true, false or a boolean "
                                                 "=expression over the case, e.g. =case.findings.pneumothorax")
    section: Name | None = Field(None, description="the section it must be stated in (one of `sections`); "
                                                  "default: anywhere in the text")
    weight: float = Field(1.0, gt=0)
    if_absent: Literal["deny", "ignore"] = Field(
        "deny", description="deny: when the case lacks it the text must deny it (a pertinent negative); ignore: "
                            "it need not be mentioned (asserting it is still unsupported)")


class AccuracyField(Spec):
    match: Literal["exact", "numeric", "set_f1", "token_f1", "option", "checklist"] = "exact"
    tolerance: float = Field(0.0, ge=0)
    rel_tolerance: float = Field(0.0, ge=0)
    weight: float = Field(1.0, gt=0)
    sections: list[Name] | None = Field(None, description="checklist: the sections the text must have, as headings "
                                                         "('Findings:'), each missing one costing missing_section")
    items: list[ChecklistItem] | None = Field(None, description="checklist: the findings graded")
    unsupported: float | None = Field(None, ge=0, le=1, description="checklist: the cost of each finding asserted "
                                                                   "that the case lacks (default 0.25)")
    denied: float | None = Field(None, ge=0, le=1, description="checklist: the cost of each finding denied that "
                                                              "the case has (default 0.25)")
    missing_section: float | None = Field(None, ge=0, le=1, description="checklist: the cost of each missing "
                                                                       "section (default 0.25)")


class CoherenceCheck(Spec):
    id: Name
    when: str | None = None
    check: str


class Assertion(Spec):
    id: Name
    check: str


class Rubric(Spec):
    accuracy: dict[str, Union[Literal["exact", "numeric", "set_f1", "token_f1", "option"], AccuracyField]]
    process: Process = Field(default_factory=Process)
    safety: list[SafetyRule] = Field(default_factory=list)
    coherence: list[CoherenceCheck] = Field(default_factory=list)
    assertions: list[Assertion] = Field(default_factory=list)


# ---------------------------------------------------------------- domain and tools
class Card(Spec):
    description: str
    task: str = ""
    episode_end: str = ""
    notes: str = ""


class Topic(Spec):
    ask: list[str] = Field(min_length=1, description="words in a question that select this topic")
    description: str = ""


class Hints(Spec):
    reinforcing: list[str] = Field(default_factory=list)
    corrective: list[str] = Field(default_factory=list)


RewardWeights = create_model(  # one field per reward component, declared in medgym.dsl.components
    "RewardWeights", __base__=Spec, __doc__="Per-domain weights of the reward components.",
    **{c.name: (float, Field(c.weight, ge=0, description=c.description)) for c in COMPONENTS})


class Probe(str, Enum):
    """The adversarial probes the compile gate plays on every task: policies that never reason about the
    patient, each an attack on the reward. Tuned probes learn from the train split.

    noop: never calls a tool; guess: answers at once, plausibly wrong; spam: every tool once, then a wrong
    answer; garbage: malformed output every turn; blind: a fixed plan of the calls most references make, then
    the most common train answer per field; lazy: two lookups, then that answer; shotgun: orders every test
    and study, asks every history topic, runs every calculator on values copied from what it observed,
    echoes their outputs into the answer and fills the rest blind; duplicate: the reference solution with
    every call sent twice, the copy trivially altered (id lower-cased with a trailing space, lists reordered);
    overorder: the reference solution plus every test and study ordered; wrong_after_workup: the reference
    work-up, then an answer wrong in every field.
    """

    noop = "noop"
    guess = "guess"
    spam = "spam"
    garbage = "garbage"
    blind = "blind"
    lazy = "lazy"
    shotgun = "shotgun"
    duplicate = "duplicate"
    overorder = "overorder"
    wrong_after_workup = "wrong_after_workup"


class BelowReference(Spec):
    below_reference: float = Field(ge=0, le=1, description="the probe's mean reward must stay this far below the "
                                                           "reference solution's")


ProbeCeiling = Union[Annotated[float, Field(ge=0, le=1)], BelowReference]
PROBE_CEILINGS: dict[str, float | dict] = {
    **{p.value: 0.25 for p in Probe}, "wrong_after_workup": 0.30,
    "duplicate": {"below_reference": 0.02}, "overorder": {"below_reference": 0.02},
}


class Domain(Spec):
    """`domains/<d>/domain.yaml`: the domain card and its settings."""

    name: Name
    version: int = Field(0, ge=0)
    title: str
    card: Card
    policy: str = Field("policy.md", description="the policy file, relative to the domain folder")
    max_turns: int = Field(12, ge=1, le=100)
    reward: RewardWeights = Field(default_factory=RewardWeights)
    history_topics: dict[Name, Topic] = Field(default_factory=dict)
    hints: Hints = Field(default_factory=Hints)
    safety: list[SafetyRule] = Field(default_factory=list)
    submit: Name | None = Field(None, description="the submit tool that ends the episode, when tools.yaml declares "
                                                  "several (a phased domain: each phase has its own submission)")
    probes: dict[Probe, ProbeCeiling] = Field(
        default_factory=dict, description="the mean reward each adversarial probe must stay under (a number), or "
                                          "{below_reference: margin}; the compile gate checks every probe, with "
                                          "defaults: 0.25, wrong_after_workup 0.30, duplicate and overorder 0.02 "
                                          "below the reference")


class ToolParam(Spec):
    type: str
    description: str = ""
    ref: Name | None = Field(None, description="the param is the id of this entity")
    enum_from: str | None = Field(None, description="a record group whose field names are the allowed values")
    min: float | None = None
    max: float | None = None
    min_items: int | None = Field(None, ge=0)
    max_items: int | None = Field(None, ge=1)
    max_length: int | None = Field(None, ge=1)
    default: Any = None


class Tool(Spec):
    """One tool of a domain (an item of `tools.yaml`)."""

    name: Name
    description: str = Field(min_length=1)
    kind: ToolKind
    params: dict[Name, ToolParam] = Field(default_factory=dict)
    minutes: float = Field(0, ge=0, description="simulated minutes the call takes")
    static: bool = Field(False, description="the tool reads no case data (a protocol text, a catalogue)")
    from_: str | None = Field(None, alias="from", description="lookup: the record path it reads")
    select: Name | None = Field(None, description="lookup/action: the param naming sub-fields")
    revealed_only: bool = False
    flags: bool = False
    reveals: str | None = None
    instrument: Name | None = None
    table: Name | None = None
    key_param: Name | list[Name] | None = Field(None, description="table: the param holding the key, or one param "
                                                                "per key of a multi-key table, in its key order")
    question_param: Name | None = None
    op: Literal["search", "read"] | None = None
    function: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


# ---------------------------------------------------------------- tasks
class Scenario(Spec):
    weight: float = Field(1.0, gt=0)
    description: str = ""
    let: dict[Name, Value] = Field(default_factory=dict)
    case: dict[str, Value] = Field(default_factory=dict)
    history: dict[Name, Union[str, list[str]]] = Field(default_factory=dict)
    truth: dict[Name, Value] = Field(default_factory=dict)


class Dataset(Spec):
    """A family's items read from a JSONL or CSV file: each item becomes one task, in the dataset's own split."""

    file: str = Field(description="the data file, relative to the domain folder, e.g. data/questions.jsonl")
    format: Literal["jsonl", "csv"] | None = Field(None, description="default: from the file's suffix")
    licence: str = Field(min_length=2, description="the data's licence, e.g. CC-BY-4.0 (recorded in the manifest)")
    source: str = Field(min_length=3, description="where the data comes from (recorded in the manifest)")
    fields: dict[Name, Union[str, list[str]]] = Field(
        min_length=1, description="item field -> the column (a dotted path into a JSON object) or a list of columns "
                                  "(their values as one list, e.g. options: [A, B, C, D]); `split` names the split "
                                  "column; the item fields are item.<name> in expressions and texts")
    split: Literal["train", "val", "test"] | None = Field(
        None, description="the split of every item when the file has no split column")
    split_map: dict[str, Literal["train", "val", "test"]] = Field(
        default_factory=dict, description="the dataset's split names -> ours, e.g. {dev: train}; train, val and test "
                                          "map to themselves")
    fingerprint: list[Name] | None = Field(
        None, description="the item fields whose normalised content identifies an item (default: question and "
                          "options when mapped, else every field but split)")


class _TaskSpec(Spec):
    """What task families and static cases share."""

    family: Name
    extends: Name | list[Name] | None = Field(None, description="a family of the same domain (usually `abstract: "
                                                   "true`), or a list of them applied in order, whose values this "
                                                   "one inherits and overrides")
    version: int = Field(1, ge=1)
    domain: Name = Field(description="the domain folder it lives in (filled in from the folder when left out)")
    title: str
    description: str = ""
    reference_threshold: float = Field(0.95, ge=0, le=1, description="the least score the reference solution must reach")
    let: dict[Name, Value] = Field(default_factory=dict)
    history: dict[Name, Union[str, list[str]]] = Field(default_factory=dict)
    ticket: str = Field(description="jinja2 text shown to the agent at reset")
    truth: dict[Name, Value]
    reference: list[dict[Name, Union[dict[str, Value], str]]] = Field(
        min_length=1, description="the reference solution's tool calls, {tool_name: {arg: value}}, each with an "
                                  "optional `when: expression` so that one family can branch by scenario")
    rubric: Rubric

    @field_validator("reference")
    @classmethod
    def _one_call_per_item(cls, value):
        for item in value:
            tools = [k for k in item if k != "when"]
            if len(tools) != 1 or not isinstance(item[tools[0]], dict):
                raise ValueError("each reference step is one tool: {tool_name: {arg: value}} (plus an optional when:)")
            if "when" in item and not isinstance(item["when"], str):
                raise ValueError("`when:` of a reference step is an expression, e.g. when: scenario == 'stemi'")
        return value


ReferenceSteps = list[dict[Name, Union[dict[str, Value], str]]]


class Phase(Spec):
    """One stage of a phased episode (an item of a family's `phases:`): the tools it offers, the submit tool
    whose call ends it, what it hands to the next phase, its reference steps, its rubric and its weight."""

    name: Name
    description: str = ""
    tools: list[Name] = Field(default_factory=list, description="the tools offered in this phase, besides its submit tool")
    submit: Name = Field(description="the submit tool (kind: submit) whose call ends this phase; the last phase's is "
                                     "the domain's submit tool")
    receives: list[Name] = Field(default_factory=list, description="the fields the phase before hands to this one")
    hand_forward: list[Name] = Field(
        default_factory=list, description="fields of this phase's submission passed on to the next phase (which "
                                          "must list them under receives:); later rubrics read them as "
                                          "phase.<name>.<field>")
    weight: float = Field(1.0, gt=0, description="this phase's share of the episode's reward (weights are normalised)")
    reference: ReferenceSteps = Field(min_length=1, description="the reference steps of this phase, ending with its submit tool")
    rubric: Rubric


class TaskFamily(_TaskSpec):
    """`domains/<d>/tasks/*.yaml`: a procedural family of tasks."""

    count: int | None = Field(None, ge=1, le=100_000, description="how many tasks (required without a dataset)")
    seed: int = 0
    scenarios: dict[Name, Scenario] = Field(default_factory=dict)
    case: dict[str, Value] = Field(default_factory=dict)
    dataset: Dataset | None = Field(None, description="the items the tasks are drawn from (one task per item; "
                                                     "then no `count:`)")
    phases: list[Phase] = Field(
        default_factory=list, description="an episode in stages, each with its tools, submission and rubric; a "
                                          "phased family writes no top-level reference: or rubric:")

    @model_validator(mode="before")
    @classmethod
    def _phase_parts(cls, data):
        # The compiler reads a phased family as one reference (the phases' steps in order) whose rubric is the
        # last phase's; the other phases' rubrics are compiled beside it (compiler/phases.py).
        if not isinstance(data, dict) or not data.get("phases"):
            return data
        if "reference" in data or "rubric" in data:
            raise ValueError("a phased family writes its reference: and rubric: in each phase, not at the top")
        phases = data["phases"]
        if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
            return data  # the field's own validation reports the shape
        steps = [s for p in phases for s in (p.get("reference") or [])]
        return {**data, "reference": steps, "rubric": phases[-1].get("rubric")}


class StaticCase(_TaskSpec):
    """`domains/<d>/cases/*.yaml`: one hand-written case (no sampling)."""

    case: dict[str, Value]


class DropRule(Spec):
    drop: Name = Field(description="the id of an inherited rule this family does without")


class PartialRubric(Spec):
    """A rubric as a base or the domain defaults write it: every part optional, merged into each family's."""

    accuracy: dict[str, Union[Literal["exact", "numeric", "set_f1", "token_f1", "option"], AccuracyField, None]] = \
        Field(default_factory=dict)
    process: dict[str, Any] = Field(default_factory=dict, description="keys of a rubric's process, each replaced whole")
    safety: list[Union[SafetyRule, DropRule]] = Field(default_factory=list)
    coherence: list[Union[CoherenceCheck, DropRule]] = Field(default_factory=list)
    assertions: list[Union[Assertion, DropRule]] = Field(default_factory=list)


class _Layer(Spec):
    """What a base family or a domain's defaults may set: any key of a family, all optional. Mappings (let,
    case, history, truth, scenarios, rubric.accuracy) merge key by key; rule lists merge by id; anything
    else is replaced whole by the family that inherits it."""

    title: str | None = None
    description: str | None = None
    version: int | None = Field(None, ge=1)
    reference_threshold: float | None = Field(None, ge=0, le=1)
    count: int | None = Field(None, ge=1, le=100_000)
    seed: int | None = None
    let: dict[Name, Value] = Field(default_factory=dict)
    case: dict[str, Value] = Field(default_factory=dict)
    history: dict[Name, Union[str, list[str], None]] = Field(default_factory=dict)
    truth: dict[Name, Value] = Field(default_factory=dict)
    scenarios: dict[Name, Any] = Field(default_factory=dict)
    ticket: str | None = None
    reference: list[Union[Name, dict[Name, Union[dict[str, Value], str]]]] | None = None
    steps: dict[Name, Union[dict[Name, Union[dict[str, Value], str]], list[Union[Name, dict[Name, Union[dict[str, Value], str]]]]]] = Field(
        default_factory=dict, description="named reference steps: a reference item that is a step's name stands for it "
                                          "(a list: a sequence of steps, each a step's name or a call)")
    rubric: PartialRubric | None = None
    dataset: dict[str, Any] | None = Field(None, description="keys of a family's `dataset:` (merged key by key), "
                                                             "e.g. the licence, source and field mapping of an importer")


class AbstractFamily(_Layer):
    """`tasks/*.yaml` with `abstract: true`: a base that other families extend; it materialises no tasks."""

    family: Name
    abstract: Literal[True]
    extends: Name | list[Name] | None = None
    domain: Name


class DomainDefaults(_Layer):
    """`domains/<d>/defaults.yaml`: what every family and static case of the domain inherits first, and the
    named text partials its templates include (`{% include "arrival" %}`)."""

    partials: dict[Name, str] = Field(default_factory=dict, description="named jinja texts for {% include %}")


class LibFunction(Spec):
    description: str = ""
    params: dict[Name, str] = Field(description="parameter name -> type (as in record.yaml)")
    returns: str | None = Field(None, description="the result type; checked against the body when given")
    body: str = Field(description="the expression (with or without a leading `=`) over the parameters")


class Module(Spec):
    """`lib/*.yaml`: named, typed functions usable in any expression of any domain."""

    module: Name
    description: str = ""
    functions: dict[Name, LibFunction] = Field(min_length=1)


class Table(Spec):
    """`tables/*.yaml`: a reference table with provenance."""

    name: Name
    description: str = ""
    source: str = Field(min_length=3, description="where the numbers come from")
    key: Name | list[Name] = Field(description="the key column, or several (a row is found by all of them)")
    unordered: bool = Field(False, description="two keys that form a pair: a lookup finds the row in either order "
                                               "(drug A + drug B)")
    classes: dict[Name, list[str]] = Field(default_factory=dict, description="class -> its members: a key cell "
                                           "naming a class matches every member (any NSAID + any anticoagulant); "
                                           "a row naming the values themselves wins over a class row")
    columns: dict[Name, str]
    rows: list[dict[str, Any]] = Field(min_length=1, description="one mapping per row: every column, and "
                                       "optionally `source:`, that row's own provenance")

    @property
    def keys(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


SPEC_KINDS: dict[str, type[Spec]] = {
    "project": ProjectManifest, "record": RecordSchema, "domain": Domain, "tool": Tool,
    "task_family": TaskFamily, "static_case": StaticCase, "rubric": Rubric, "table": Table,
    "abstract_family": AbstractFamily, "domain_defaults": DomainDefaults, "module": Module,
}


def json_schemas() -> dict[str, dict]:
    """The JSON Schema (draft 2020-12) of every spec kind, for editors and pre-commit."""
    out = {}
    for kind, model in SPEC_KINDS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://medgym.dev/schema/v1/{kind}.json"
        out[kind] = schema
    # The array's item is the tool schema without its own $id and $defs (they would move its `#/$defs/...` refs
    # away from the array's $defs), and the `tool` schema keeps its own.
    tool = {k: v for k, v in out["tool"].items() if k not in ("$defs", "$id", "$schema")}
    tools = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://medgym.dev/schema/v1/tools.json",
             "type": "array", "items": {"$ref": "#/$defs/Tool"}, "$defs": {**out["tool"].get("$defs", {}), "Tool": tool}}
    out["tools"] = tools
    family = out["task_family"]  # a phased family writes its reference and rubric per phase
    family["required"] = [k for k in family["required"] if k not in ("reference", "rubric")]
    family["if"] = {"not": {"required": ["phases"]}}
    family["then"] = {"required": ["reference", "rubric"]}
    out["family"] = _either("family", out["task_family"], out["abstract_family"])
    return out


def _either(kind: str, *schemas: dict) -> dict:
    """One schema for files a path cannot tell apart (`tasks/*.yaml`: a family or an abstract base), so that
    editors can associate schemas by path pattern alone (.vscode/settings.json)."""
    defs = {name: d for s in schemas for name, d in s.get("$defs", {}).items()}
    branches = [{k: v for k, v in s.items() if k not in ("$defs", "$schema", "$id")} for s in schemas]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"https://medgym.dev/schema/v1/{kind}.json",
            "oneOf": branches, "$defs": defs}
