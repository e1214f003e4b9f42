"""Reading a compiled build directory: domains, tools, tasks, instruments, tables and generated predicates.

The runtime reads only the build (docs/build-format.md); it never imports the compiler.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import fastjsonschema

from medgym.dsl.support import load_sibling
from medgym.dsl.topics import TopicMatcher

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


class BuildError(Exception):
    """A build directory that is missing, stale or damaged; the message says how to rebuild it."""


@dataclass
class Tool:
    """A compiled tool plus its argument validator."""

    name: str
    kind: str
    spec: dict
    validate: object  # fastjsonschema validator: raises JsonSchemaValueException

    @property
    def minutes(self) -> float:
        return float(self.spec.get("minutes") or 0)

    @property
    def id_params(self) -> list[str]:
        return self.spec.get("id_params") or []

    def openai(self) -> dict:
        return {"type": "function", "function": {"name": self.name, "description": self.spec["description"],
                                                 "parameters": self.spec["parameters"]}}


@dataclass
class Domain:
    """One compiled domain: its settings, tools, predicates and tasks (loaded per split on demand)."""

    name: str
    build: "Build"
    data: dict
    tools: dict[str, Tool]
    predicates: dict
    env_class: type | None
    _tasks: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.build.path / self.name

    def tasks(self, split: str) -> list[dict]:
        if split not in SPLITS:
            raise BuildError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        if split not in self._tasks:
            self._tasks[split] = _read_jsonl(self.folder / "tasks" / f"{split}.jsonl")
        return self._tasks[split]

    def task(self, task_id: str) -> dict:
        task = self._by_id.get(task_id)
        if task is None:
            raise BuildError(f"no task {task_id!r} in domain {self.name}")
        return task

    @functools.cached_property
    def _by_id(self) -> dict[str, dict]:
        return {task["task_id"]: task for split in SPLITS for task in self.tasks(split)}

    def openai_tools(self) -> list[dict]:
        return [tool.openai() for tool in self.tools.values()]

    @functools.cached_property
    def revealed_by(self) -> dict[str, list[str]]:
        """Case group -> the action tools that reveal it (for 'nothing ordered yet' messages)."""
        found: dict[str, list[str]] = {}
        for tool in self.tools.values():
            for path in tool.spec.get("reveals") or []:
                found.setdefault(path, []).append(tool.name)
        return found

    @functools.cached_property
    def read_by(self) -> dict[str, str]:
        """Case group -> the first lookup tool that reads it (named in an order's result)."""
        found: dict[str, str] = {}
        for tool in self.tools.values():
            if tool.kind == "lookup":
                found.setdefault(".".join(tool.spec["path"]), tool.name)
        return found

    @functools.cached_property
    def topic_matcher(self) -> TopicMatcher:
        return TopicMatcher(self.data.get("history_topics", {}))


class Build:
    """A compiled build directory. Use `Build.open(path)`: builds are cached per path and modification time."""

    def __init__(self, path: Path):
        self.path = path
        self.manifest = _read_json(path / "manifest.json", path)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise BuildError(f"{path} has build format {self.manifest.get('format_version')}, this medgym reads "
                             f"{FORMAT_VERSION}: recompile with `medgym compile SPECS --out {path}`")
        self.instruments_meta = _read_json(path / "instruments.json", path)
        self.tables = _read_json(path / "tables.json", path)
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
        return sorted(self.manifest.get("domains", {}))

    @functools.cached_property
    def instruments(self) -> dict:
        return load_sibling(str(self.path / "manifest.json"), "instruments.py").FUNCTIONS

    def domain(self, name: str) -> Domain:
        if name not in self._domains:
            if name not in self.manifest.get("domains", {}):
                known = ", ".join(self.domain_names) or "none"
                raise BuildError(f"no domain {name!r} in {self.path} (domains: {known})")
            self._domains[name] = _load_domain(self, name)
        return self._domains[name]


@functools.lru_cache(maxsize=16)
def _open_cached(path: Path, mtime_ns: int) -> Build:
    return Build(path)


def _load_domain(build: Build, name: str) -> Domain:
    folder = build.path / name
    data = _read_json(folder / "domain.json", build.path)
    tools = {spec["name"]: Tool(spec["name"], spec["kind"], spec, fastjsonschema.compile(spec["parameters"]))
             for spec in data["tools"]}
    module = load_sibling(str(folder / "domain.json"), "env.py")
    env_class = getattr(module, data.get("class_name", ""), None)
    return Domain(name, build, data, tools, getattr(module, "PREDICATES", {}), env_class)


def _read_json(path: Path, build: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{path} is missing: the build is incomplete; recompile with "
                         f"`medgym compile SPECS --out {build}`") from None
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path} is unreadable ({exc}); recompile with `medgym compile SPECS --out {build}`") from None


def _read_jsonl(path: Path) -> list[dict]:
    try:
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path} is unreadable ({exc}); recompile the build") from None
