"""Phase 1, load: find the spec files, parse YAML and `.score` files, validate each against its model.

Every problem becomes a located `SpecError`; loading goes on after an error so one run reports them all.
"""
from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from medgym.compiler import inherit
from medgym.dsl import models as m
from medgym.dsl import nodes
from medgym.dsl.errors import Position, SpecError, read_spec_text
from medgym.dsl.parser import parse_score_file
from medgym.dsl.yamlpos import Marks, load_yaml


@dataclass
class Loaded:
    """A validated spec model with the positions of its YAML nodes."""

    model: object
    marks: Marks

    @property
    def sources(self) -> list[str]:
        """The spec files this model was merged from (a family: its file, its bases, the domain defaults)."""
        return list(getattr(self.marks, "sources", None) or [self.marks.path])


@dataclass
class DomainFiles:
    folder: Path
    domain: Loaded | None = None
    record: Loaded | None = None
    tools: list[Loaded] = field(default_factory=list)  # one Loaded per tool, marks rooted at the list item
    tables: list[Loaded] = field(default_factory=list)
    families: list[Loaded] = field(default_factory=list)  # merged with their bases and the defaults
    defaults: Loaded | None = None  # defaults.yaml
    policy: str = ""


@dataclass
class SpecTree:
    root: Path
    project: Loaded | None = None
    instruments: list[nodes.Instrument] = field(default_factory=list)
    tables: list[Loaded] = field(default_factory=list)
    modules: list[Loaded] = field(default_factory=list)  # lib/*.yaml: shared functions
    templates: dict[str, tuple[str, Position]] = field(default_factory=dict)  # lib/*.j2: name -> (text, where)
    domains: dict[str, DomainFiles] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # files that did not load (later checks skip what needs them)


def content_hash(root: Path) -> str:
    """sha256 over the spec files' names and bytes: computed before any parsing, so an unchanged tree is
    recognised without loading it."""
    digest = hashlib.sha256()
    for path in spec_files(root):
        digest.update(str(path.relative_to(root)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:  # loading reports the file, located; the hash only has to differ
            digest.update(b"\0unreadable")
    for path in image_files(root):  # images that cases name: a changed image is a new build
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def image_files(root: Path) -> list[Path]:
    """The image files under a spec tree (compiler/images.py: what image slots name)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def spec_files(root: Path) -> list[Path]:
    """Every file that belongs to the specs (what the content hash covers)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".score", ".md", ".j2", ".jsonl", ".csv")
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


# a cache.LoadMemo while load_tree(root, memo) runs: parsed files are read back instead of parsed again
_MEMO: ContextVar = ContextVar("medgym_load_memo", default=None)


def load_tree(root: Path | str, memo=None) -> SpecTree:
    token = _MEMO.set(memo)
    try:
        return _load_tree(root)
    finally:
        _MEMO.reset(token)


def _parsed(path: Path, parse):
    memo = _MEMO.get()
    return parse() if memo is None else memo.get(path, parse)


def _load_tree(root: Path | str) -> SpecTree:
    root = Path(root)
    tree = SpecTree(root)
    if not root.is_dir():
        tree.errors.append(SpecError("no such spec directory", Position(str(root))))
        return tree
    tree.files = spec_files(root)
    manifest = root / "medgym.yaml"
    if manifest.exists():
        tree.project = _load_model(manifest, m.ProjectManifest, tree.errors)
    else:
        tree.errors.append(SpecError("missing project manifest medgym.yaml", Position(str(manifest))))
    for path in sorted((root / "instruments").glob("*.score")):
        try:
            tree.instruments.extend(_parsed(path, lambda: parse_score_file(path)))
        except SpecError as exc:
            tree.errors.append(exc)
    tree.tables = [t for t in (_load_model(p, m.Table, tree.errors) for p in _yamls(root / "tables")) if t]
    tree.modules = [x for x in (_load_model(p, m.Module, tree.errors) for p in _yamls(root / "lib")) if x]
    tree.templates = _load_templates(root / "lib", tree.errors)
    for folder in sorted(p for p in (root / "domains").glob("*") if p.is_dir()):
        tree.domains[folder.name] = _load_domain(folder, tree.errors)
    tree.failed = {e.pos.path for e in tree.errors}
    for files in tree.domains.values():
        _load_policy(files, tree.errors)  # after `failed`: a missing policy text takes no other check out
    return tree


def _yamls(folder: Path) -> list[Path]:
    return sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml"))) if folder.is_dir() else []


def _load_domain(folder: Path, errors: list[SpecError]) -> DomainFiles:
    files = DomainFiles(folder)
    files.domain = _require(folder / "domain.yaml", m.Domain, errors)
    files.record = _require(folder / "record.yaml", m.RecordSchema, errors)
    files.tools = _load_tools(folder / "tools.yaml", errors)
    files.tables = [t for t in (_load_model(p, m.Table, errors) for p in _yamls(folder / "tables")) if t]
    defaults = None
    if inherit.defaults_path(folder).exists():
        files.defaults = _load_model(inherit.defaults_path(folder), m.DomainDefaults, errors)
        if files.defaults is None:
            return files  # every family inherits from it: checking them now would only echo its errors
        data, marks = _load_data(inherit.defaults_path(folder), errors)
        defaults = inherit.Layer({k: v for k, v in data.items() if k != "partials"}, marks, "defaults")
    raw = [(p, m.TaskFamily) for p in _yamls(folder / "tasks")] + [(p, m.StaticCase) for p in _yamls(folder / "cases")]
    layers, kinds = [], {}
    for path, model in raw:
        data, marks = _load_data(path, errors)
        if data is None:
            if not errors or errors[-1].pos.path != str(path):
                errors.append(SpecError("empty spec file", Position(str(path), 1, 1)))
            continue
        if not isinstance(data, dict):
            errors.append(SpecError("a task family is a mapping of keys (family:, domain:, ...)", marks.at(())))
            continue
        data.setdefault("domain", folder.name)  # a family's domain is its folder unless it says so
        layers.append(inherit.Layer(data, marks, str(data.get("family"))))
        kinds[id(data)] = model
    models = {id(layer.data): kinds[id(layer.data)] for layer in layers}
    for layer, resolved in zip(layers, inherit.resolve(defaults, layers, errors, keep_order=True)):
        if resolved is None:
            continue
        if resolved.abstract:  # checked for typos, never materialised
            _validate(m.AbstractFamily, layer.data, layer.marks, errors)
            continue
        spec = _validate(models[id(layer.data)], resolved.data, resolved.marks, errors)
        if spec is not None:
            files.families.append(Loaded(spec, resolved.marks))
    return files


def _load_templates(folder: Path, errors: list[SpecError]) -> dict[str, tuple[str, Position]]:
    """The shared jinja macro files, by file name (`{% import "triage.j2" as t %}`)."""
    out = {}
    for path in sorted(folder.glob("*.j2")) if folder.is_dir() else []:
        try:
            out[path.name] = (read_spec_text(path), Position(str(path), 1, 1))
        except SpecError as exc:
            errors.append(exc)
    return out


def _load_policy(files: DomainFiles, errors: list[SpecError]):
    if files.domain:
        try:
            files.policy = _policy_text(files.folder, files.domain.model.policy, files.domain.marks.at(("policy",)))
        except SpecError as exc:
            errors.append(exc)


def _policy_text(folder: Path, name: str, pos: Position) -> str:
    """The domain's policy text; the file must be a plain file inside the domain folder."""
    try:
        path = (folder / name).resolve()
        inside = path.is_relative_to(folder.resolve()) and path.is_file()
    except (OSError, ValueError):  # a NUL or an over-long name
        inside = False
    if not inside:
        raise SpecError(f"policy file {name!r} not found in the domain folder", pos)
    return read_spec_text(folder / name).strip()


def _require(path: Path, model, errors) -> Loaded | None:
    if not path.exists():
        errors.append(SpecError(f"missing {path.name}", Position(str(path))))
        return None
    return _load_model(path, model, errors)


def _load_tools(path: Path, errors: list[SpecError]) -> list[Loaded]:
    if not path.exists():
        errors.append(SpecError("missing tools.yaml", Position(str(path))))
        return []
    data, marks = _load_data(path, errors)
    if data is None:
        return []
    if not isinstance(data, list):
        errors.append(SpecError("tools.yaml must be a list of tools", marks.at(())))
        return []
    out = []
    for index, item in enumerate(data):
        tool = _validate(m.Tool, item, _Rooted(marks, (index,)), errors)
        if tool is not None:
            out.append(Loaded(tool, _Rooted(marks, (index,))))
    return out


class _Rooted(Marks):
    """Marks of one item inside a larger document (a tool inside tools.yaml)."""

    def __init__(self, marks: Marks, prefix: tuple):
        super().__init__(marks.path, marks.values, marks.keys)
        self.prefix = prefix

    def at(self, loc, key: bool = False) -> Position:
        return super().at(self.prefix + tuple(loc), key)

    def expression_origin(self, loc) -> Position:
        return super().expression_origin(self.prefix + tuple(loc))


def _load_data(path: Path, errors: list[SpecError]):
    try:
        return _parsed(path, lambda: load_yaml(path))
    except SpecError as exc:
        errors.append(exc)
        return None, Marks(str(path))


def _load_model(path: Path, model, errors: list[SpecError]) -> Loaded | None:
    data, marks = _load_data(path, errors)
    if data is None:
        if not errors or errors[-1].pos.path != str(path):
            errors.append(SpecError("empty spec file", Position(str(path), 1, 1)))
        return None
    spec = _validate(model, data, marks, errors)
    return Loaded(spec, marks) if spec is not None else None


def _validate(model, data, marks: Marks, errors: list[SpecError]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        seen = set()
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x in ("field", "group", "str", "list[str]")
                                                       or _is_union_tag(x)))
            message = _message(err, loc)
            key = (loc, message)
            if key in seen:
                continue
            seen.add(key)
            is_extra = err["type"] == "extra_forbidden"
            errors.append(SpecError(message, marks.at(loc, key=is_extra), _hint(err, loc, model)))
        return None


def _is_union_tag(x) -> bool:
    return isinstance(x, str) and ("[" in x or x in ("Requirement", "AccuracyField", "literal['exact','numeric','set_f1','token_f1','option']",
                                                     "literal['exact','numeric','set_f1','token_f1','option','checklist']"))


def _message(err: dict, loc: tuple) -> str:
    where = ".".join(str(x) for x in loc) or "document"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{loc[-1]}'"
    if err["type"] == "missing":
        return f"missing required field '{loc[-1]}'"
    return f"{where}: {err['msg']}"


def _hint(err: dict, loc: tuple, model) -> str:
    if err["type"] != "extra_forbidden" or not loc:
        return ""
    from medgym.dsl.errors import did_you_mean

    allowed = _allowed_fields(model, loc[:-1])
    return did_you_mean(str(loc[-1]), allowed) if allowed else ""


def _allowed_fields(model, loc: tuple) -> list[str]:
    """Field names (with aliases) of the model reached by following `loc` through nested models."""
    import typing

    current = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if info is not None:  # otherwise `part` is a key of a dict-valued field: stay on the item model
            current = _model_in(info.annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _model_in(annotation):
    import typing

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
