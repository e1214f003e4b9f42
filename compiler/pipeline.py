"""The compiler's phases, end to end: load -> check -> generate -> materialise -> (gate) -> write.

`compile_specs` writes a complete build directory atomically (a staging directory swapped in at the end)
and reuses the previous build when the specs' content hash is unchanged.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from medgym.compiler import codegen
from medgym.compiler.domain import build_context, domain_json, domain_rules, env_id, family_cards
from medgym.compiler import datasets, library
from medgym.compiler.cache import CachedFamily, FamilyCache, GateMemo, LoadMemo, ParseMemo, file_hashes
from medgym.compiler.context import CompiledFamily
from medgym.compiler.families import compile_family
from medgym.compiler.flow import check_flow
from medgym.compiler.instruments import bands_tuple, check_instrument, function_body, input_spec
from medgym.compiler.load import SpecTree, content_hash, load_tree, spec_files
from medgym.compiler.materialize import materialize
from medgym.compiler.images import check_image_lookups, image_fields, image_tasks, write_images
from medgym.compiler.phases import phase_tasks
from medgym.compiler.records import parse_field_type
from medgym.compiler.tools import typed_tool
from medgym.dsl import build as b
from medgym.dsl import support
from medgym.dsl.build import FORMAT_VERSION
from medgym.dsl.components import COMPONENT_NAMES
from medgym.dsl.errors import Position, SpecError, SpecErrors, did_you_mean
from medgym.dsl.types import value_matches

MAX_PYTHON_TOOL_SHARE = 0.10
# Called as gate(build) or, with the family cache on, gate(build, memo) (a cache.GateMemo).
Gate = Callable[..., list[SpecError]]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("medgym")
    except Exception:  # running from a source tree without metadata
        return "0+unknown"


@dataclass
class BuildResult:
    out: Path
    manifest: dict
    cached: bool = False
    seconds: float = 0.0
    stages: dict = field(default_factory=dict)


def compile_specs(specs: Path | str, out: Path | str, *, force: bool = False, gate: Gate | None = None,
                  cache: Path | str | None = None, only: list[Path] | None = None) -> BuildResult:
    """Compile `specs` into `out`; raise SpecErrors listing every problem found.

    `cache`: a folder for the per-family cache (cache.py), None for none. `only`: spec files; compile just
    the families they touch (and those the cache already holds), as `medgym validate FILE...` does."""
    with _collector_paused():
        return _compile_specs(Path(specs), Path(out), force, gate, cache, only)


@contextmanager
def _collector_paused():
    """Python's cycle collector off for one compile. A compile builds large, long-lived object graphs
    (parsed files read back, validated models, tasks), and each full collection traverses all of them:
    with the cache on that was about a third of an edit's recompile. What a compile leaves as cyclic
    garbage is collected once the collector is back on, as usual."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _compile_specs(specs: Path, out: Path, force: bool, gate, cache, only) -> BuildResult:
    started = time.perf_counter()
    files_hash = content_hash(specs) if specs.is_dir() else ""
    if not force and files_hash and only is None:
        # A build is only ever written from specs that compiled cleanly, so equal hashes need no parsing.
        cached = _cached_manifest(out, files_hash)
        if cached is not None:
            return BuildResult(out, cached, True, time.perf_counter() - started)
    hashes = file_hashes(spec_files(specs)) if cache is not None and specs.is_dir() else {}
    parsed = ParseMemo(cache) if cache is not None else None
    tree = load_tree(specs, LoadMemo(cache, hashes) if cache is not None else None)
    spec_hash = files_hash if tree.files else ""
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        # Every stage runs on what the stages before it got right, so one run reports the errors of all.
        families = FamilyCache(cache, hashes) if cache is not None else None
        scope = _Scope(families, _touched_files(only))
        errors = [e for e in tree.errors if scope.reports(e)]
        manifest = _build(tree, spec_hash, staging, errors, scope)
        if parsed is not None:
            parsed.save()
        if errors:
            raise SpecErrors(errors)
        if gate is not None:
            if families is not None:
                problems = gate(staging, families.gate_memo(scope.keys, scope.partial, scope.entries))
            elif scope.partial:  # no cache, some families left out: the gate must know not to run the probes
                problems = gate(staging, GateMemo(None, {}, set(scope.partial)))
            else:
                problems = gate(staging)
            if problems:
                raise SpecErrors(problems)
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stats = vars(families.stats) if families else {"compiled": scope.compiled, "cached": 0, "skipped": scope.skipped}
    return BuildResult(out, manifest, False, time.perf_counter() - started, {"families": dict(stats)})


def check_specs(specs: Path | str, gate: Gate | None = None, cache: Path | str | None = None,
                only: list[Path] | None = None) -> list[SpecError]:
    """Everything `compile` checks, writing nothing that survives but cache entries (for `medgym validate`
    and pre-commit); with `only`, just what those files touch."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medgym-validate-") as tmp:
        try:
            compile_specs(specs, Path(tmp) / "build", force=True, gate=gate, cache=cache, only=only)
        except SpecErrors as exc:
            return exc.errors
    return []


def _touched_files(only) -> set[str] | None:
    return None if only is None else {str(Path(p).resolve()) for p in only}


@dataclass
class _Scope:
    """What this compile builds: the cache (or None), the files `validate FILE...` was given (None: all),
    and what it found: each family's content key for the gate, the domains built from a subset."""

    cache: FamilyCache | None
    touched: set[str] | None
    keys: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)  # (domain, family) -> its CachedFamily, for the gate's play keys
    partial: set = field(default_factory=set)
    compiled: int = 0
    skipped: int = 0

    def wants(self, depends: list[str]) -> bool:
        return self.touched is None or any(str(Path(p).resolve()) in self.touched for p in depends)

    def reports(self, error: SpecError) -> bool:
        """Whether a loading error is this check's business: with files given, one in a family or case
        file that was not given is not (its domain is then checked without that family)."""
        path = Path(error.pos.path)
        if self.touched is None or path.parent.name not in ("tasks", "cases") or str(path.resolve()) in self.touched:
            return True
        self.partial.add(path.parent.parent.name)
        return False

    def shared_touched(self) -> bool:
        """Whether a given file can be called by families it does not name (a lib module, table, macro
        file, instrument), rather than being a family's own file."""
        return any(Path(p).parent.name not in ("tasks", "cases") for p in self.touched or ())

    def count(self, kind: str):
        if self.cache is not None:
            setattr(self.cache.stats, kind, getattr(self.cache.stats, kind) + 1)
        elif kind in ("compiled", "skipped"):
            setattr(self, kind, getattr(self, kind) + 1)



def _cached_manifest(out: Path, spec_hash: str) -> dict | None:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    same = manifest.get("spec_hash") == spec_hash and manifest.get("format_version") == FORMAT_VERSION \
        and manifest.get("medgym_version") == _version()
    return manifest if same else None


def _swap(staging: Path, out: Path):
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- the build
def _build(tree: SpecTree, spec_hash: str, out: Path, errors: list[SpecError], scope: "_Scope | None" = None) -> dict:
    """Check and generate into `out`, appending to `errors`. A part is checked only when everything it
    depends on loaded cleanly, so no error is only the echo of an earlier one (an "unknown tool" because
    tools.yaml did not load); the parts that did load are all checked."""
    failed = tree.failed
    files = [str(p.relative_to(tree.root)) for p in tree.files]
    header = {"version": _version(), "spec_hash": spec_hash}
    shared = [p for p in tree.files if not p.is_relative_to(tree.root / "domains")]
    before = len(errors)
    instruments = _instruments(tree, errors)
    tables = _tables(tree, errors)
    table_fns = library.table_functions(list(tree.tables) + [t for d in tree.domains.values() for t in d.tables])
    shared_lib = {"functions": library.check_functions(tree.modules, {k: v.signature for k, v in instruments.items()},
                                                       table_fns, errors),
                  "tables": table_fns, "templates": tree.templates}
    if any(str(p) in failed for p in shared) or any(e.pos.path.endswith(".score") for e in errors[before:]):
        return {}  # instruments or shared tables are missing: every domain check would report their absence
    _write(out / "instruments.py", _instruments_source(instruments, [str(p) for p in tree.files if p.suffix == ".score"],
                                                       [f for f in files if f.endswith(".score")], header, scope))
    # imported the way generate.py imports it, so materialising reuses this module instead of compiling it again
    ins_module = _import_instruments(out / "instruments.py", scope)
    _check_examples(instruments, ins_module, errors)
    _write(out / "instruments.json", _instruments_catalogue(instruments, [str(p) for p in tree.files if p.suffix == ".score"], scope))
    _write(out / "tables.json", _json({n: t.model_dump(mode="json") for n, t in tables.items()}))
    manifest = {"format_version": FORMAT_VERSION, "medgym_version": header["version"], "spec_hash": spec_hash,
                "counts": {"domains": 0, "tools": 0, "instruments": len(instruments), "tasks": 0}, "domains": {}}
    total_tools = python_tools = 0
    skipped = [name for name, d in tree.domains.items() if _core_failed(d, failed)]
    for name, domain_files in tree.domains.items():
        if name in skipped:
            continue
        summary = _domain(name, domain_files, instruments, tables, shared_lib, files, header, out, errors,
                          scope or _Scope(None, None))
        if summary is None:
            continue
        manifest["domains"][name] = summary
        manifest["counts"]["domains"] += 1
        manifest["counts"]["tools"] += summary["tools"]
        manifest["counts"]["tasks"] += summary["tasks"]
        total_tools += summary["tools"]
        python_tools += summary.pop("python_tools")
    if not skipped and total_tools and python_tools / total_tools > MAX_PYTHON_TOOL_SHARE:
        errors.append(SpecError(f"{python_tools} of {total_tools} tools use the python escape hatch; at most "
                                f"{MAX_PYTHON_TOOL_SHARE:.0%} may", Position(str(tree.root / "domains"))))
    manifest = b.Manifest.model_validate(manifest).model_dump(mode="json")
    _write(out / "manifest.json", _json(manifest))
    return manifest


def _core_failed(files, failed: set[str]) -> bool:
    """Whether a file every family of the domain depends on (domain, record, tools, tables) failed to load;
    a family file that failed only takes itself out."""
    core = [files.folder / "domain.yaml", files.folder / "record.yaml", files.folder / "tools.yaml",
            files.folder / "defaults.yaml"]
    return any(str(p) in failed for p in core) or any(p.startswith(str(files.folder / "tables") + os.sep) for p in failed)


def _json(value) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


def _write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def _instruments(tree: SpecTree, errors) -> dict:
    checked: dict = {}
    for decl in tree.instruments:
        if decl.name in checked:
            errors.append(SpecError(f"instrument '{decl.name}' is defined twice", Position(decl.path, decl.line, decl.col)))
            continue
        result = check_instrument(decl, {k: v.signature for k, v in checked.items()}, errors)
        if result is not None:
            checked[decl.name] = result
    return checked


def _instruments_source(instruments: dict, score_files: list[str], names: list[str], header: dict, scope) -> str:
    """instruments.py. Rendering it (pprint of every input spec) is most of an edit's instrument cost and
    depends only on the `.score` files, so with the cache on, the part after the module docstring (which
    names this build's version and spec hash) is stored by those files' paths and contents."""
    def render(checked) -> str:
        return codegen.render("instruments.py.j2", instruments=[_instrument_context(c) for c in checked],
                              files=names, **header)

    cache = scope.cache if scope is not None else None
    if cache is None:
        return render(instruments.values())
    head = _docstring_part(render([]))
    stored = cache.instruments_text(score_files)
    if stored is None:
        text = render(instruments.values())
        cache.store_instruments_text(score_files, text[len(_docstring_part(text)):])
        return text
    return head + stored


def _instruments_catalogue(instruments: dict, score_files: list[str], scope) -> str:
    """instruments.json. Its text depends only on the `.score` files (each instrument's declaration and the
    comment above it), and encoding it indented is pure-Python json: with the cache on it is stored by them."""
    def render() -> str:
        return _json({n: b.InstrumentInfo.model_validate(_instrument_meta(c)).model_dump(mode="json")
                      for n, c in instruments.items()})

    cache = scope.cache if scope is not None else None
    if cache is None:
        return render()
    text = cache.instruments_text(score_files, "catalogue")
    if text is None:
        text = render()
        cache.store_instruments_text(score_files, text, "catalogue")
    return text


def _import_instruments(path: Path, scope):
    """Import instruments.py as generate.py will. Compiling its source is most of running it and depends
    only on the part after the docstring, so with the cache on that part's code object is stored by its
    text (line numbers kept: the docstring's lines are blank in what is compiled)."""
    cache = scope.cache if scope is not None else None
    if cache is None:
        return support.load_sibling(str(path), path.name)
    text = path.read_text(encoding="utf-8")
    head = _docstring_part(text)
    body = text[len(head):]
    code = cache.code_object(body, str(path))
    if code is None:
        code = compile("\n" * head.count("\n") + body, str(path), "exec")
        cache.store_code_object(body, code)
    doc = compile(head, str(path), "exec")  # the module's __doc__, as importing the file sets it
    return support.load_sibling(str(path), path.name, (doc, code))


def _docstring_part(source: str) -> str:
    """A generated module's opening docstring, through its closing quotes and newline."""
    end = source.index('\n"""\n') + len('\n"""\n')
    return source[:end]


def _instrument_context(checked) -> dict:
    return {"name": checked.name, "decl": checked.decl, "input_spec": input_spec(checked),
            "bands": bands_tuple(checked.decl), "body": function_body(checked)}


def _instrument_meta(checked) -> dict:
    decl = checked.decl
    inputs = {}
    for d in decl.inputs:
        t = checked.input_types[d.name]
        inputs[d.name] = {"type": t.describe(), "unit": getattr(t, "unit", None), "min": d.low, "max": d.high,
                          "default": d.default if d.has_default else None, "required": not d.has_default,
                          "description": d.description}
    outputs = {k: {"type": t.describe(), "unit": getattr(t, "unit", None)} for k, t in checked.signature.output.fields}
    return {"title": decl.title, "source": "; ".join(decl.sources), "sources": list(decl.sources), "file": decl.path,
            "variant": _header_comment(decl.path, decl.line), "inputs": inputs, "outputs": outputs,
            "examples": [{"citation": e.citation, "given": dict(e.given), "expect": dict(e.expect), "within": e.within}
                         for e in decl.examples]}


def _header_comment(path: str, line: int) -> str:
    """The comment block right above an `instrument` line: where a `.score` file states its exact variant."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()[: max(line - 1, 0)]
    except (OSError, UnicodeError):
        return ""
    block = []
    for text in reversed(lines):
        if not text.lstrip().startswith("#"):
            break
        block.append(text.lstrip()[1:].removeprefix(" ").rstrip())
    return "\n".join(reversed(block)).strip()


def run_example(function, example) -> list[str]:
    """The mismatches between an instrument's output and a worked example's expectation."""
    try:
        result = function(**dict(example.given))
    except Exception as exc:  # noqa: BLE001 - the example's values are spec input; any failure is reported
        return [f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)]
    problems = []
    for key, want in example.expect:
        got = result.get(key)
        if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
            if abs(got - want) > example.within:
                problems.append(f"{key} = {got}, expected {want}")
        elif got != want:
            problems.append(f"{key} = {got!r}, expected {want!r}")
    return problems


def _check_examples(instruments: dict, module, errors):
    for name, checked in instruments.items():
        for example in checked.decl.examples:
            problems = run_example(getattr(module, name), example)
            if problems:
                errors.append(SpecError(f"worked example does not reproduce: {'; '.join(problems)}",
                                        Position(checked.decl.path, example.line, example.col), example.citation))


def _tables(tree: SpecTree, errors) -> dict:
    out = {}
    loaded = list(tree.tables) + [t for d in tree.domains.values() for t in d.tables]
    for item in loaded:
        table, marks = item.model, item.marks
        if table.name in out:
            errors.append(SpecError(f"table '{table.name}' is defined twice", marks.at(("name",))))
            continue
        types = {}
        for column, text in table.columns.items():
            try:
                types[column] = parse_field_type(text, marks.at(("columns", column)))
            except SpecError as exc:
                errors.append(exc)
        _check_table_keys(table, marks, errors)
        keys = set()
        for index, row in enumerate(table.rows):
            for column, value in row.items():
                if column == "source" and column not in types:
                    if not isinstance(value, str) or len(value.strip()) < 3:
                        errors.append(SpecError("a row's source is its provenance, a text", marks.at(("rows", index, column))))
                elif column not in types:
                    errors.append(SpecError(f"unknown column '{column}'", marks.at(("rows", index, column), key=True),
                                            did_you_mean(column, types)))
                elif not value_matches(types[column], value) and not (isinstance(value, int) and types[column].describe().startswith("number")):
                    errors.append(SpecError(f"{column} = {value!r} is not {types[column].describe()}", marks.at(("rows", index, column))))
            missing = [c for c in types if c not in row]
            if missing:
                errors.append(SpecError(f"row is missing {', '.join(missing)}", marks.at(("rows", index))))
            key = tuple(str(row.get(k, "")).lower() for k in table.keys)
            key = tuple(sorted(key)) if table.unordered else key
            if key in keys:
                shown = " + ".join(str(row.get(k)) for k in table.keys)
                errors.append(SpecError(f"duplicate key '{shown}'", marks.at(("rows", index, table.keys[0]))))
            keys.add(key)
        out[table.name] = table
    return out


def _check_table_keys(table, marks, errors) -> None:
    """Every key is a column, once; `unordered` pairs two keys; a class's members are texts."""
    many = not isinstance(table.key, str)
    for index, key in enumerate(table.keys):
        if key not in table.columns:
            errors.append(SpecError(f"key '{key}' is not a column", marks.at(("key", index) if many else ("key",)),
                                    did_you_mean(key, table.columns)))
    if len(set(table.keys)) != len(table.keys):
        errors.append(SpecError("a key column is named twice", marks.at(("key",))))
    if table.unordered and len(table.keys) != 2:
        errors.append(SpecError("unordered needs exactly two key columns (a pair)", marks.at(("unordered",))))
    if table.classes and not many:
        errors.append(SpecError("classes match the key cells of a multi-key table (`key: [a, b]`); a one-key table "
                                "lists a row per member", marks.at(("classes",), key=True)))
    for name, members in table.classes.items():
        if not members or not all(isinstance(v, str) for v in members):
            errors.append(SpecError(f"class '{name}' needs a list of its members' names", marks.at(("classes", name))))


def _instrument_use(ctx, families) -> dict[str, dict]:
    """instrument -> the tools that expose it and the families whose truths call it."""
    use: dict[str, dict] = {}
    for tool in ctx.tools.values():
        if tool["kind"] == "instrument":
            use.setdefault(tool["instrument"], {"tools": [], "families": []})["tools"].append(tool["name"])
    for fam in families:
        for name in fam.instruments:
            use.setdefault(name, {"tools": [], "families": []})["families"].append(fam.name)
    return dict(sorted(use.items()))


def _domain(name, files, instruments, tables, shared_lib, spec_files, header, out: Path, errors, scope: _Scope) -> dict | None:
    before = len(errors)
    ctx = build_context(name, files, instruments, tables, errors, shared_lib)
    if ctx is None:
        return None
    rule_code, rules = domain_rules(files, ctx, errors)
    check_image_lookups(ctx, {t.model.name: t.marks for t in files.tools}, errors)
    core = _core_files(files, ctx, instruments, tables)
    domain_key = scope.cache.domain_key(core) if scope.cache else ""
    parts: list = []  # per family file: a CachedFamily (from the cache) or a CompiledFamily (compiled now)
    for loaded in files.families:
        part = _cached_or_compiled(name, loaded, ctx, domain_key, core, scope, errors)
        if part is not None:
            parts.append(part)
    seen = set()
    for fam in parts:
        if fam.name in seen:
            errors.append(SpecError(f"family '{fam.name}' is defined twice", _family_pos(fam, files)))
        seen.add(fam.name)
    if len(errors) > before:
        return None
    folder = out / name
    generation = [block for fam in parts for block in fam.code]
    predicates = dict(rule_code)
    for fam in parts:
        predicates.update(fam.predicates)
    generate_py = codegen.render("generate.py.j2", domain=name, code=generation, **header)
    _write(folder / "generate.py", generate_py)
    fresh = [fam for fam in parts if isinstance(fam, CompiledFamily)]
    # Only families compiled now are materialised, so only their code is loaded (generate.py holds every
    # family's; with none compiled now, nothing is). Without the cache this is the file's text itself.
    source = generate_py if len(fresh) == len(parts) else codegen.render(
        "generate.py.j2", domain=name, code=[block for fam in fresh for block in fam.code], **header)
    module = codegen.load_module(f"medgym_build_{name}_generate", source, str(folder / "generate.py")) if fresh else None
    made, failed, images = {}, set(), {}
    for fam in fresh:
        count = len(errors)
        tasks = phase_tasks(fam, module, materialize(fam, ctx, module, errors), errors)
        made[fam.name] = image_tasks(fam, ctx, files.folder, tasks, images, errors)
        if len(errors) > count:
            failed.add(fam.name)
    for fam in fresh:  # every reference value must be observable
        found = check_flow([fam], ctx, module, made[fam.name])
        errors.extend(found)
        if found:
            failed.add(fam.name)
    # no evaluation item in train (dataset families are never cached, so all of them are here)
    errors.extend(datasets.check_splits(fresh, [t for fam in fresh for t in made[fam.name]]))
    summaries = [fam if isinstance(fam, CachedFamily) else _summary(fam, ctx, made[fam.name], name, domain_key, scope, instruments)
                 for fam in parts if fam.name not in failed]
    for fam in summaries:
        scope.keys[(name, fam.name)] = fam.content_key
        scope.entries[(name, fam.name)] = fam
    if len(errors) > before:
        return None
    cards = {}
    for fam in summaries:
        cards.update(fam.card)
    compiled = domain_json(files, ctx, rules, cards)
    if images:
        compiled = compiled.model_copy(update={"images": b.Domain.model_validate(
            {**compiled.model_dump(mode="json"), "images": write_images(images, folder)}).images})
    mine = [f for f in spec_files if f.startswith(f"domains/{name}/")]
    _write(folder / "env.py", codegen.render("env.py.j2", domain=compiled, families=[f.name for f in parts],
                                             components=COMPONENT_NAMES, code=list(predicates.values()),
                                             predicates=list(predicates), files=mine, **header))
    _write(folder / "domain.json", _json(compiled.model_dump(mode="json")))
    _write(folder / "tools.json", _json([typed_tool(t).openai() for t in ctx.tools.values()]))
    splits = {split: [] for split in b.SPLITS}
    for fam in summaries:
        for split, line in fam.tasks:
            splits[split].append(line)
    for split, items in splits.items():
        _write(folder / "tasks" / f"{split}.jsonl", "\n".join(items))
    used = {t["instrument"] for t in ctx.tools.values() if t["kind"] == "instrument"}
    return {"env_id": compiled.env_id, "tools": len(ctx.tools), "instruments": len(used),
            "tasks": sum(len(fam.tasks) for fam in summaries), "instrument_use": _instrument_use(ctx, summaries),
            "datasets": datasets.summaries(fresh),
            "families": len(parts), "splits": {k: len(v) for k, v in splits.items()},
            "python_tools": sum(1 for t in ctx.tools.values() if t["kind"] == "python")}


def _core_files(files, ctx, instruments: dict, tables: dict) -> list[str]:
    """The files every family of the domain depends on: its domain, record and tools and the instruments
    and tables its tools use (a family's own file, bases, defaults and what it calls are its `sources`)."""
    core = [str(files.folder / name) for name in ("domain.yaml", "record.yaml", "tools.yaml")]
    if files.domain is not None:
        core.append(str(files.folder / files.domain.model.policy))
    for tool in ctx.tools.values():
        if tool.get("instrument") in instruments:
            core.append(instruments[tool["instrument"]].decl.path)
        table = tables.get(tool.get("table") or "")
        if table is not None:
            core.extend(_table_files(table, files))
    return core


def _table_files(table, files) -> list[str]:
    folders = [files.folder / "tables", files.folder.parent.parent / "tables"]
    return [str(p) for folder in folders for p in sorted(folder.glob("*.y*ml")) if _names_table(p, table.name)]


def _names_table(path: Path, name: str) -> bool:
    try:
        return f"name: {name}" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return True


def _family_pos(fam, files) -> Position:
    if isinstance(fam, CompiledFamily):
        return fam.marks.at(("family",))
    return Position(fam.card.get(fam.name, {}).get("file", str(files.folder)))


def _cached_or_compiled(domain, loaded, ctx, domain_key, core, scope: _Scope, errors):
    """The family from the cache when nothing it depends on changed; else compiled now (or, when
    `validate FILE...` touched none of its files, None: not checked this time)."""
    family_file = loaded.marks.path
    # A dataset family's split check and manifest entry need its items, and an image's copy into the build
    # needs the tasks' files: those families are compiled every time.
    cacheable = getattr(loaded.model, "dataset", None) is None and not image_fields(ctx)
    if scope.cache is not None and cacheable:
        hit = scope.cache.lookup(domain, domain_key, family_file)
        if hit is not None:
            scope.count("cached")
            return hit
    if scope.touched is not None:
        # What it depended on last time it compiled; never compiled: its own files, and whatever shared
        # file was given (which of them its expressions call is known only once it compiles).
        known = scope.cache.previous(domain, family_file) if scope.cache else None
        depends = core + (list(known.sources) if known else loaded.sources)
        if not scope.wants(depends) and (known is not None or not scope.shared_touched()):
            scope.count("skipped")
            scope.partial.add(domain)
            return None
    scope.count("compiled")
    return compile_family(loaded, ctx, errors)


def _summary(fam: CompiledFamily, ctx, tasks: list[dict], domain, domain_key, scope: _Scope, instruments) -> CachedFamily:
    """What the build keeps of a family compiled now; stored in the cache (it compiled cleanly)."""
    # written through the build format's model: a task the runtime would refuse fails here
    lines = [[task["split"], b.Task.model_validate(task).model_dump_json()] for task in tasks]
    calls = sorted(fam.instruments_used(ctx.instruments))
    summary = CachedFamily(fam.name, list(fam.code), dict(fam.predicates), family_cards([fam], None), calls, lines)
    if scope.cache is None:
        return summary
    depends = fam.sources + [instruments[c].decl.path for c in calls if c in instruments]
    return scope.cache.store(domain, domain_key, fam.marks.path, summary, list(dict.fromkeys(depends)))
