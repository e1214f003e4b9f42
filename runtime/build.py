"""Reading a compiled build directory: domains, tools, tasks, instruments, tables and generated predicates.

The runtime reads only the build (docs/build-format.md); it never imports the compiler. Each file is
validated once, as the build format's models (medgym.dsl.build), when it is first read; the rest of the
runtime reads their attributes.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import fastjsonschema
from pydantic import ValidationError

from medgym.dsl import build as b
from medgym.dsl.build import FORMAT_VERSION, SPLITS, Task
from medgym.dsl.support import load_sibling
from medgym.dsl.topics import TopicMatcher

_REBUILD = "recompile with `medgym compile SPECS --out {path}`"


class BuildError(Exception):
    """A build directory that is missing, stale or damaged; the message says how to rebuild it."""


@dataclass
class Tool:
    """A compiled tool (`spec`: the build format's model of its kind) plus its argument validator. The fields
    every step reads are copied out of `spec` once (plain attributes: the step loop reads them per call)."""

    spec: b.ToolBase
    name: str = field(init=False)
    kind: str = field(init=False)
    minutes: float = field(init=False)
    id_params: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        self.name, self.kind = self.spec.name, self.spec.kind
        self.minutes, self.id_params = self.spec.minutes, self.spec.id_params

    @functools.cached_property
    def validate(self):
        """The fastjsonschema validator of the arguments (raises JsonSchemaValueException), compiled on first
        use: the 48 shipped schemas take ~55 ms to compile, a third of a cold load, and most runs call a few."""
        return fastjsonschema.compile(self.spec.parameters)

    def openai(self) -> dict:
        return self.spec.openai()


@dataclass
class Domain:
    """One compiled domain: its settings (`spec`), tools, predicates and tasks (loaded per split on demand)."""

    name: str
    build: "Build"
    spec: b.Domain
    tools: dict[str, Tool]
    predicates: dict
    env_class: type | None
    _tasks: dict[str, list[Task]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.build.path / self.name

    def tasks(self, split: str) -> list[Task]:
        if split not in SPLITS:
            raise BuildError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        if split not in self._tasks:
            self._tasks[split] = _read_tasks(self.folder / "tasks" / f"{split}.jsonl", self.build.path)
        return self._tasks[split]

    def task(self, task_id: str) -> Task:
        task = self._by_id.get(task_id)
        if task is None:
            raise BuildError(f"no task {task_id!r} in domain {self.name}")
        return task

    @functools.cached_property
    def _by_id(self) -> dict[str, Task]:
        return {task.task_id: task for split in SPLITS for task in self.tasks(split)}

    @property
    def submit_tool(self) -> Tool:
        return self.tools[self.spec.submit_tool]

    def openai_tools(self) -> list[dict]:
        return [tool.openai() for tool in self.tools.values()]

    @functools.cached_property
    def revealed_by(self) -> dict[str, list[str]]:
        """Case group -> the action tools that reveal it (for 'nothing ordered yet' messages)."""
        found: dict[str, list[str]] = {}
        for tool in self.tools.values():
            if tool.kind == "action":
                for path in tool.spec.reveals or ():
                    found.setdefault(path, []).append(tool.name)
        return found

    @functools.cached_property
    def read_by(self) -> dict[str, str]:
        """Case group -> the first lookup tool that reads it (named in an order's result)."""
        found: dict[str, str] = {}
        for tool in self.tools.values():
            if tool.kind == "lookup":
                found.setdefault(".".join(tool.spec.path), tool.name)
        return found

    @functools.cached_property
    def topic_matcher(self) -> TopicMatcher:
        return TopicMatcher({name: topic.model_dump() for name, topic in self.spec.history_topics.items()})


class Build:
    """A compiled build directory. Use `Build.open(path)`: builds are cached per path and modification time.

    Every file is validated against the build format (medgym.dsl.build) once, when it is first read."""

    def __init__(self, path: Path):
        self.path = path
        raw = _read_json(path / "manifest.json", path)
        found = raw.get("format_version") if isinstance(raw, dict) else None
        if found != FORMAT_VERSION:
            raise BuildError(f"{path} has build format {found}, this medgym reads format {FORMAT_VERSION}: "
                             + _REBUILD.format(path=path))
        self.manifest: b.Manifest = _validated(b.Manifest, raw, path / "manifest.json", path)
        self._domains: dict[str, Domain] = {}

    @staticmethod
    def open(path: str | Path) -> "Build":
        path = Path(path).resolve()
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise BuildError(f"{path} is not a medgym build (no manifest.json): run `medgym compile SPECS --out {path}`")
        return _open_cached(path, manifest.stat().st_mtime_ns)

    @property
    def domain_names(self) -> list[str]:
        return sorted(self.manifest.domains)

    @functools.cached_property
    def instruments(self) -> dict:
        return load_sibling(str(self.path / "manifest.json"), "instruments.py").FUNCTIONS

    @functools.cached_property
    def instruments_meta(self) -> dict[str, b.InstrumentInfo]:
        raw = _read_json(self.path / "instruments.json", self.path)
        return {name: _validated(b.InstrumentInfo, meta, self.path / "instruments.json", self.path)
                for name, meta in raw.items()}

    @functools.cached_property
    def tables(self) -> dict[str, b.Table]:
        raw = _read_json(self.path / "tables.json", self.path)
        return {name: _validated(b.Table, table, self.path / "tables.json", self.path) for name, table in raw.items()}

    def domain(self, name: str) -> Domain:
        if name not in self._domains:
            if name not in self.manifest.domains:
                known = ", ".join(self.domain_names) or "none"
                raise BuildError(f"no domain {name!r} in {self.path} (domains: {known})")
            self._domains[name] = _load_domain(self, name)
        return self._domains[name]


@functools.lru_cache(maxsize=16)
def _open_cached(path: Path, mtime_ns: int) -> Build:
    return Build(path)


def _load_domain(build: Build, name: str) -> Domain:
    folder = build.path / name
    spec = _validated(b.Domain, _read_json(folder / "domain.json", build.path), folder / "domain.json", build.path)
    tools = {tool.name: Tool(tool) for tool in spec.tools}
    module = load_sibling(str(folder / "domain.json"), "env.py")
    env_class = getattr(module, spec.class_name, None)
    return Domain(name, build, spec, tools, getattr(module, "PREDICATES", {}), env_class)


def _validated(model, data, file: Path, build: Path):
    """`data` as the build format's `model`, or a BuildError naming the file, the first problem and the fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BuildError(f"{file} does not match build format {FORMAT_VERSION} ({_first_problem(exc)}); "
                         + _REBUILD.format(path=build)) from None


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]


def _read_json(path: Path, build: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{path} is missing: the build is incomplete; recompile with "
                         f"`medgym compile SPECS --out {build}`") from None
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path} is unreadable ({exc}); " + _REBUILD.format(path=build)) from None


def _read_tasks(path: Path, build: Path) -> list[Task]:
    """One split's tasks, each line validated as a `Task` (a missing split file is an empty split)."""
    try:
        with path.open(encoding="utf-8") as lines:
            return [Task.model_validate_json(line) for line in lines if line.strip()]
    except FileNotFoundError:
        return []
    except ValidationError as exc:
        raise BuildError(f"{path} does not match build format {FORMAT_VERSION} ({_first_problem(exc)}); "
                         + _REBUILD.format(path=build)) from None
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path} is unreadable ({exc}); " + _REBUILD.format(path=build)) from None
