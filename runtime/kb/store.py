"""Where knowledge bases live on disk, and how a build replaces the previous one atomically.

Layout of a knowledge-base folder (the default is `$MEDGYM_CACHE_DIR/kb`, else `~/.cache/medgym/kb`):

    current                 the live build's name, then the command that rebuilds it (replaced with os.replace;
                            kept outside the build so a damaged build can still say how to rebuild it)
    builds/<name>/index/    the engine's files
    builds/<name>/meta.json engine, versions, corpus hashes; written last, so its presence means complete
    builds/<name>/.building the builder's pid while the build runs

A build writes a new folder beside the live one and only then rewrites `current`, so a build killed at any
point leaves the previous index usable. The folder of the build it replaced is kept (a process may still
be reading it); older ones, and unfinished ones whose builder is dead, are removed by the next build, as
are `current.tmp-<pid>-<hex>` files left by a builder killed while it replaced the pointer.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from medgym.runtime.kb.errors import BUILD_COMMAND, CorpusError, KBCorrupt, KBNotBuilt
from medgym.runtime.kb.passages import Passage, Source, check_source_name
from medgym.runtime.paths import cache_dir

FORMAT = 1
POINTER = "current"
META = "meta.json"
BUILDING = ".building"
PROGRESS_EVERY = 1000
# A pointer's temp file lives for the milliseconds of one write; an older one is debris even if its pid
# has been reused by another process since.
STALE_TEMP_SECONDS = 3600


def default_kb_dir() -> Path:
    """`$MEDGYM_CACHE_DIR/kb`, or `~/.cache/medgym/kb` when the variable is unset."""
    return cache_dir() / "kb"


def build_command(kb_dir: Path | None = None, extra: str = "") -> str:
    """The command line that (re)builds the knowledge base at `kb_dir`."""
    command = BUILD_COMMAND + (f" {extra}" if extra else "")
    if kb_dir is not None and Path(kb_dir).resolve() != default_kb_dir().resolve():
        command += f" --dir {shlex.quote(str(kb_dir))}"
    return command


def _pointer(kb_dir: Path) -> list[str]:
    try:
        return (kb_dir / POINTER).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def rebuild_command(kb_dir: Path) -> str:
    """The command that rebuilds the live build under `kb_dir`, as recorded when it was built."""
    lines = _pointer(kb_dir)
    return lines[1].strip() if len(lines) > 1 and lines[1].strip() else build_command(kb_dir)


def locate_build(path: Path) -> Path:
    """The live build folder under a knowledge-base folder (or `path` itself if it is a build folder)."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if not (path / POINTER).is_file():
        interrupted = " (an earlier build was interrupted)" if _unfinished(path) else ""
        raise KBNotBuilt(f"no knowledge base at {path}{interrupted}; build one with `{build_command(path)}`")
    lines = _pointer(path)
    name = lines[0].strip() if lines else ""
    build = path / "builds" / name
    if not name or "/" in name or not (build / META).is_file():
        raise KBCorrupt(f"the knowledge base at {path} points to a missing build {name!r}; "
                        f"rebuild with `{rebuild_command(path)}`")
    return build


def read_meta(build: Path, kb_dir: Path) -> dict:
    try:
        meta = json.loads((build / META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"unknown metadata format {meta.get('format') if isinstance(meta, dict) else meta!r}")
        for key in ("engine", "passages", "probe_id"):
            if key not in meta:
                raise ValueError(f"'{key}' is missing")
    except (OSError, ValueError) as exc:
        raise KBCorrupt(f"the knowledge base at {kb_dir} has unreadable metadata ({exc}); "
                        f"rebuild with `{rebuild_command(kb_dir)}`") from exc
    return meta


def _unfinished(kb_dir: Path) -> list[Path]:
    builds = kb_dir / "builds"
    return [b for b in builds.iterdir() if not (b / META).is_file()] if builds.is_dir() else []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _builder_alive(build: Path) -> bool:
    try:
        pid = int((build / BUILDING).read_text().strip())
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and _pid_alive(pid)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def prune(kb_dir: Path, keep: Iterable[str]) -> list[str]:
    """Delete build folders not named in `keep`, except unfinished ones whose builder still runs."""
    keep = set(keep)
    removed = []
    builds = kb_dir / "builds"
    for build in sorted(builds.iterdir()) if builds.is_dir() else []:
        if build.name in keep or (not (build / META).is_file() and _builder_alive(build)):
            continue
        _remove(build)
        removed.append(build.name)
    return removed


def remove_stale_temps(kb_dir: Path, name: str = POINTER) -> list[str]:
    """Delete `name`.tmp-* files whose writer is dead or that are older than STALE_TEMP_SECONDS."""
    removed = []
    for tmp in sorted(Path(kb_dir).glob(f"{name}.tmp-*")):
        if _temp_in_use(tmp, name):
            continue
        try:
            tmp.unlink()
        except OSError:  # another build removed it first, or it is not ours to remove
            continue
        removed.append(tmp.name)
    return removed


def _temp_in_use(tmp: Path, name: str) -> bool:
    try:
        age = time.time() - tmp.stat().st_mtime
    except OSError:
        return True  # gone already: nothing to do
    if age >= STALE_TEMP_SECONDS:
        return False
    pid = _writer_pid(tmp.name[len(name) + len(".tmp-"):])
    return pid is not None and (pid == os.getpid() or _pid_alive(pid))


def _writer_pid(suffix: str) -> int | None:
    """The pid in a temp file's `<pid>-<hex>` suffix, or None when it holds none (no writer to wait for)."""
    pid = suffix.split("-", 1)[0]
    if not (pid.isascii() and pid.isdigit()) or not 0 < int(pid) < 2**31:  # os.kill(0, ...) means our own group
        return None
    return int(pid)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _current_name(kb_dir: Path) -> str | None:
    lines = _pointer(kb_dir)
    return (lines[0].strip() or None) if lines else None


class _Digest:
    """Passage counts and SHA-256 per source and overall, in stream order: the corpus's fingerprint."""

    def __init__(self):
        self.total = hashlib.sha256()
        self.per_source: dict[str, list] = {}

    def add(self, p: Passage) -> None:
        record = "\x1f".join((p.id, p.title, p.text, p.source, "\x1e".join(p.keywords), p.provenance_json()))
        try:
            data = record.encode("utf-8") + b"\n"
        except UnicodeEncodeError:  # tantivy would refuse it with a bare ValueError, whoosh serve it to models
            raise CorpusError(f"passage {p.id!r} is not valid Unicode text (it holds a lone surrogate, as a "
                              f"\\ud800 escape in JSON gives); fix the corpus") from None
        self.total.update(data)
        entry = self.per_source.get(p.source)
        if entry is None:
            entry = self.per_source[p.source] = [0, hashlib.sha256()]
        entry[0] += 1
        entry[1].update(data)


def _sources_meta(digest: _Digest, sources: dict[str, dict]) -> dict:
    return {name: {"passages": count, "sha256": h.hexdigest(), **sources.get(name, {})}
            for name, (count, h) in sorted(digest.per_source.items())}


def _check(p: Passage, seen: set[str]) -> None:
    if not isinstance(p, Passage):
        raise CorpusError(f"expected a Passage, got {type(p).__name__}")
    if not p.id or not isinstance(p.id, str):
        raise CorpusError(f"a passage from source {p.source!r} has no id")
    if p.id in seen:
        raise CorpusError(f"duplicate passage id {p.id!r}: ids must be unique in a knowledge base")
    try:
        check_source_name(p.source)
    except ValueError as exc:
        raise CorpusError(f"passage {p.id!r}: {exc}") from None
    seen.add(p.id)


def _versions(engine_module) -> dict:
    try:
        from importlib.metadata import version

        medgym = version("medgym")
    except Exception:
        medgym = "source"
    return {"engine_version": engine_module.version(), "medgym_version": medgym,
            "python": sys.version.split()[0]}


def build_index(passages: Iterable[Passage], kb_dir: Path, *, engine: str = "tantivy",
                sources: Iterable[Source] = (), command: str | None = None, threads: int = 2,
                on_progress: Callable[[int], None] | None = None) -> Path:
    """Index `passages` into a new build under `kb_dir` and make it the live one; returns its folder.

    `sources` supply licence/attribution for the metadata; passages are counted and hashed by their own
    `source`. `command` is the command line that rebuilds this corpus, quoted in error messages. Any
    exception (including KeyboardInterrupt) removes the unfinished build and re-raises.
    """
    from medgym.runtime.kb.engine import backend_module

    module = backend_module(engine)
    kb_dir = Path(kb_dir)
    (kb_dir / "builds").mkdir(parents=True, exist_ok=True)
    previous = _current_name(kb_dir)
    prune(kb_dir, keep=[previous] if previous else [])
    remove_stale_temps(kb_dir)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    build = kb_dir / "builds" / name
    build.mkdir()
    (build / BUILDING).write_text(str(os.getpid()))
    started = time.perf_counter()
    try:
        meta = _write_index(module, passages, build, threads, on_progress)
    except BaseException:
        _remove(build)
        raise
    meta.update({"format": FORMAT, "engine": module.NAME, **_versions(module),
                 "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "build_seconds": round(time.perf_counter() - started, 3)})
    meta["sources"] = _sources_meta(meta.pop("_digest"), {s.name: s.info() for s in sources})
    _write_atomic(build / META, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    (build / BUILDING).unlink()
    command = " ".join((command or build_command(kb_dir)).split())  # one line, whatever the paths hold
    _write_atomic(kb_dir / POINTER, f"{name}\n{command}\n")
    prune(kb_dir, keep=[name] + ([previous] if previous else []))
    return build


def _write_index(module, passages, build: Path, threads: int, on_progress) -> dict:
    writer = module.create_writer(build / "index", threads)
    digest, seen, count, first = _Digest(), set(), 0, None
    try:
        for passage in passages:
            _check(passage, seen)
            first = first or passage.id
            digest.add(passage)  # first: it refuses text no engine should index
            writer.add(passage)
            count += 1
            if on_progress is not None and count % PROGRESS_EVERY == 0:
                on_progress(count)
        if count == 0:
            raise CorpusError("the corpus has no passages; nothing to index")
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    if on_progress is not None:
        on_progress(count)
    return {"passages": count, "corpus_sha256": digest.total.hexdigest(), "probe_id": first,
            "_digest": digest}
