"""The per-family compile cache: an unchanged family is neither recompiled nor re-gated.

A family's output (its generated code, rubric predicates, card and materialised tasks) depends on the spec
files it was built from (`CompiledFamily.sources`: its file, bases, domain defaults, the lib modules and
tables its expressions call, the macro files and partials its texts use), on the domain's core files
(domain.yaml, record.yaml, tools.yaml and the instruments and tables its tools use), on the instruments its
expressions call and on the compiler's own code. An entry stores the sha256 of every one of those files;
it is used only when each still hashes the same, so editing a lib module invalidates exactly the families
that list it. Entries are found by (spec folder, domain, family file), so an edited family overwrites its
own entry instead of piling up new ones.

Every entry file is an envelope line (cache format, code fingerprint, sha256 of the payload) and the payload;
a file that does not parse, does not match its checksum or comes from other code is ignored and rewritten.
Writes go to a temporary file renamed into place, so a reader never sees half an entry.

The gate's results (each task's reference-solution record, each probe's reward per task) are stored per
family under a content key (`GateMemo`): the same family content gates the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from medgym.dsl.build import FORMAT_VERSION

CACHE_FORMAT = 1
_HERE = Path(__file__).resolve().parent


def code_fingerprint(*folders: Path | str, extra: str = "") -> str:
    """sha256 over the source files (.py, .lark, .j2) of `folders`: a new compiler never trusts an old entry."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{FORMAT_VERSION}|{extra}".encode())
    for folder in folders:
        folder = Path(folder)
        files = [folder] if folder.is_file() else sorted(
            p for p in folder.rglob("*") if p.suffix in (".py", ".lark", ".j2") and "__pycache__" not in p.parts)
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def compiler_fingerprint() -> str:
    """The compiler's and the spec language's code (everything that turns specs into a build)."""
    return code_fingerprint(_HERE, _HERE.parent / "dsl")


def file_hashes(paths) -> dict[str, str]:
    out = {}
    for path in paths:
        try:
            out[str(path)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            out[str(path)] = "unreadable"
    return out


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# Task fields that no gate episode reads: the ticket is only the prompt's wording (the oracle plays the
# reference, the probes act on what tools showed, the reward never reads it). tests/test_gate.py checks
# that every gate agent scores the same with every ticket rewritten.
UNPLAYED_TASK_FIELDS = ("ticket",)


@dataclass
class CachedFamily:
    """A family as the cache holds it: everything the domain's build needs from it, nothing to recompute."""

    name: str
    code: list[str]
    predicates: dict[str, str]
    card: dict
    instruments: list[str]  # the instruments its expressions call (the catalogue's "where used")
    tasks: list[list[str]]  # [split, task JSON as written to tasks/<split>.jsonl], in index order
    sources: dict[str, str] = field(default_factory=dict)  # every file it depends on -> sha256
    played: str = ""  # played_digest(): computed once, when the family is compiled
    content_key: str = ""
    family_file: str = ""  # the family's own spec file (set on lookup and store, not stored)

    def payload(self) -> dict:
        return {"name": self.name, "code": self.code, "predicates": self.predicates, "card": self.card,
                "instruments": self.instruments, "tasks": self.tasks, "sources": self.sources,
                "played": self.played}


def played_digest(entry: CachedFamily) -> str:
    """A hash of what compiling a family made that a gate episode can read: its predicates, card and tasks,
    each task without the fields no gate episode reads."""
    tasks = [split + json.dumps({k: v for k, v in json.loads(line).items() if k not in UNPLAYED_TASK_FIELDS},
                                sort_keys=True) for split, line in entry.tasks]
    return _key(json.dumps(entry.predicates, sort_keys=True), json.dumps(entry.card, sort_keys=True, default=str), *tasks)


@dataclass
class Stats:
    compiled: int = 0
    cached: int = 0
    skipped: int = 0  # not compiled because `validate FILE...` did not touch them


class FamilyCache:
    """The entries of one compile: `hashes` are the spec files' current sha256 (path -> hash)."""

    def __init__(self, folder: Path | str, hashes: dict[str, str], fingerprint: str | None = None):
        self.folder = Path(folder)
        self.hashes = hashes
        self.fingerprint = fingerprint or compiler_fingerprint()
        self.stats = Stats()

    # ----------------------------------------------------------- keys
    def domain_key(self, files: list[str]) -> str:
        """What every family of a domain depends on, as one hash over those files' contents."""
        return _key(*(f"{p}={self.hashes.get(p) or _hash_now(p)}" for p in sorted(set(files))))

    def _slot(self, domain: str, family_file: str) -> Path:
        name = _key(self.fingerprint, domain, family_file)
        return self.folder / "families" / name[:2] / f"{name}.json"

    # ----------------------------------------------------------- entries
    def previous(self, domain: str, family_file: str) -> CachedFamily | None:
        """The stored entry of a family file, fresh or stale (for the files it depended on)."""
        payload = read_entry(self._slot(domain, family_file), self.fingerprint)
        try:
            return CachedFamily(**payload) if payload is not None else None
        except TypeError:
            return None

    def lookup(self, domain: str, domain_key: str, family_file: str) -> CachedFamily | None:
        """The family's entry when none of the files it depends on changed."""
        entry = self.previous(domain, family_file)
        if entry is None or entry.sources.get("<domain>") != domain_key:
            return None
        if any(self.hashes.get(path) != digest for path, digest in entry.sources.items() if path != "<domain>"):
            return None
        entry.content_key = _key(self.fingerprint, domain, *sorted(f"{k}={v}" for k, v in entry.sources.items()))
        entry.family_file = family_file
        return entry

    def store(self, domain: str, domain_key: str, family_file: str, entry: CachedFamily, depends: list[str]) -> CachedFamily:
        entry.sources = {"<domain>": domain_key, **{p: self.hashes.get(p) or _hash_now(p) for p in depends}}
        entry.content_key = _key(self.fingerprint, domain, *sorted(f"{k}={v}" for k, v in entry.sources.items()))
        entry.family_file = family_file
        entry.played = played_digest(entry)
        write_entry(self._slot(domain, family_file), self.fingerprint, entry.payload())
        return entry

    # ----------------------------------------------------------- instruments.py
    def _instruments_slot(self, score_files: list[str], kind: str) -> Path:
        name = _key(self.fingerprint, kind, *(f"{p}={self.hashes.get(p) or _hash_now(p)}" for p in score_files))
        return self.folder / "instruments" / name[:2] / f"{name}.json"

    def instruments_text(self, score_files: list[str], kind: str = "instruments") -> str | None:
        """The rendered `instruments.py` (kind "instruments") or `instruments.json` ("catalogue") of these
        `.score` files (their paths and contents), if stored."""
        found = read_entry(self._instruments_slot(score_files, kind), self.fingerprint)
        return found if isinstance(found, str) else None

    def store_instruments_text(self, score_files: list[str], text: str, kind: str = "instruments") -> None:
        write_entry(self._instruments_slot(score_files, kind), self.fingerprint, text)

    # ----------------------------------------------------------- compiled generated code
    def _code_slot(self, text: str) -> Path:
        name = _key(self.fingerprint, "code", hashlib.sha256(text.encode()).hexdigest())
        return self.folder / "code" / name[:2] / f"{name}.marshal"

    def code_object(self, text: str, filename: str):
        """The stored code object of generated source `text`, its file name set to `filename` (where the
        module is imported from this time: tracebacks name the file that is there)."""
        import marshal

        found = read_blob(self._code_slot(text), self.fingerprint)
        try:
            return _refile(marshal.loads(found), filename) if isinstance(found, bytes) else None
        except (ValueError, EOFError, TypeError):
            return None

    def store_code_object(self, text: str, code) -> None:
        import marshal

        write_blob(self._code_slot(text), self.fingerprint, marshal.dumps(code))

    def gate_memo(self, families: dict[tuple[str, str], str], partial: set[str] = frozenset(),
                  entries: dict[tuple[str, str], CachedFamily] | None = None) -> "GateMemo":
        """`entries`: the build's families, for their play keys."""
        plays = {slot: self.play_key(slot[0], entry) for slot, entry in (entries or {}).items() if entry.family_file}
        return GateMemo(self.folder, families, set(partial), plays)

    def play_key(self, domain: str, entry: CachedFamily) -> str:
        """What a family's gate episodes depend on: its content key with the family file's own hash replaced
        by the played digest of what compiling it made. So an edit of a ticket's wording, which only changes
        the prompt, replays no episode; any other change to the file changes tasks, predicates or card."""
        if not entry.played:
            entry.played = played_digest(entry)
        sources = sorted(f"{k}={v}" for k, v in entry.sources.items() if k != entry.family_file)
        return _key(self.fingerprint, domain, "play", *sources, entry.played)


@dataclass
class GateMemo:
    """The gate's results per family, keyed on (family content key, what is played, runtime fingerprint).

    `families`: (domain, family) -> content key of the family in this build; `partial`: domains built from
    a subset of their families (validate FILE...), where domain-wide probe means would mislead."""

    folder: Path | None
    families: dict[tuple[str, str], str]
    partial: set[str] = field(default_factory=set)
    plays: dict[tuple[str, str], str] = field(default_factory=dict)  # FamilyCache.play_key, for episodes

    def _slot(self, content: str | None, kind: str, fingerprint: str) -> Path | None:
        if not content or self.folder is None:  # no folder: nothing is stored, only `partial` is told
            return None
        name = _key(content, kind, fingerprint)
        return self.folder / "gate" / name[:2] / f"{name}.json"

    def _played(self, domain: str, family: str) -> str | None:
        return self.plays.get((domain, family)) or self.families.get((domain, family))

    def get(self, domain: str, family: str, kind: str, fingerprint: str):
        """A family's stored episode results (oracle records, probe rewards), by its play key."""
        slot = self._slot(self._played(domain, family), kind, fingerprint)
        return None if slot is None else read_entry(slot, fingerprint)

    def put(self, domain: str, family: str, kind: str, fingerprint: str, value) -> None:
        slot = self._slot(self._played(domain, family), kind, fingerprint)
        if slot is not None:
            write_entry(slot, fingerprint, value)

    def domain_key(self, domain: str, played: bool = False) -> str | None:
        """One key over all the domain's families, when the build holds every one of them: the same
        families gate the same way, probes included. `played`: over their play keys (the same episodes)."""
        keys = sorted(f"{family}={self._played(d, family) if played else key}"
                      for (d, family), key in self.families.items() if d == domain)
        if domain in self.partial or not keys or any(k.endswith("=") for k in keys):
            return None
        return _key(domain, *keys) if not played else _key(domain, "play", *keys)

    def get_domain(self, domain: str, kind: str, fingerprint: str, played: bool = False):
        slot = self._slot(self.domain_key(domain, played), kind, fingerprint)
        return None if slot is None else read_entry(slot, fingerprint)

    def put_domain(self, domain: str, kind: str, fingerprint: str, value, played: bool = False) -> None:
        slot = self._slot(self.domain_key(domain, played), kind, fingerprint)
        if slot is not None:
            write_entry(slot, fingerprint, value)


def _refile(code, filename: str):
    """`code` and every function compiled inside it, as if compiled from `filename`."""
    consts = tuple(_refile(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _hash_now(path: str) -> str:
    return file_hashes([path])[path]


# ---------------------------------------------------------------- entry files
def write_entry(path: Path, fingerprint: str, payload) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    head = json.dumps({"cache_format": CACHE_FORMAT, "fingerprint": fingerprint,
                       "sha256": hashlib.sha256(body.encode()).hexdigest()})
    write_blob(path, fingerprint, None, (head + "\n" + body).encode())


def read_entry(path: Path, fingerprint: str):
    """The payload, or None for a missing, corrupt or foreign entry (never trusted, rebuilt by the caller)."""
    try:
        head, _, body = path.read_text(encoding="utf-8").partition("\n")
        meta = json.loads(head)
        if (not isinstance(meta, dict) or meta.get("cache_format") != CACHE_FORMAT
                or meta.get("fingerprint") != fingerprint
                or meta.get("sha256") != hashlib.sha256(body.encode()).hexdigest()):
            return None
        return json.loads(body)
    except (OSError, ValueError, UnicodeError):
        return None


# ---------------------------------------------------------------- parsed files
class LoadMemo:
    """Parsed spec files by (path, content hash): the YAML values with their marks, a `.score` file's
    instruments. Parsing is most of loading; an unchanged file is read back instead (pickled, behind the
    same checksummed envelope as every entry; a file that fails to parse is never stored)."""

    def __init__(self, folder: Path | str, hashes: dict[str, str], fingerprint: str | None = None):
        self.folder = Path(folder) / "parsed"
        self.hashes = hashes
        self.fingerprint = fingerprint or compiler_fingerprint()

    def get(self, path, parse):
        digest = self.hashes.get(str(path))
        if digest is None:
            return parse()
        slot = self.folder / digest[:2] / f"{_key(self.fingerprint, str(path), digest)}.pickle"
        found = read_blob(slot, self.fingerprint)
        if found is not None:
            return found
        value = parse()
        write_blob(slot, self.fingerprint, value)
        return value


def write_blob(path: Path, fingerprint: str, value, data: bytes | None = None) -> None:
    """Write `value` pickled (or `data` as given) atomically: a temporary file in the same folder, renamed
    over the entry, so a reader sees the old entry or the new one, never half of one."""
    import pickle

    if data is None:
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        head = json.dumps({"cache_format": CACHE_FORMAT, "fingerprint": fingerprint,
                           "sha256": hashlib.sha256(body).hexdigest()}).encode()
        data = head + b"\n" + body
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache folder costs speed, never the build
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def read_blob(path: Path, fingerprint: str):
    import pickle

    try:
        head, _, body = path.read_bytes().partition(b"\n")
        meta = json.loads(head)
        if (not isinstance(meta, dict) or meta.get("cache_format") != CACHE_FORMAT
                or meta.get("fingerprint") != fingerprint or meta.get("sha256") != hashlib.sha256(body).hexdigest()):
            return None
        return pickle.loads(body)
    except Exception:  # noqa: BLE001 - an unreadable entry is only a miss
        return None


class ParseMemo:
    """The expression and type texts parsed by earlier compiles (dsl.parser keeps them per process): a fresh
    process starts with them instead of parsing the same few hundred texts again."""

    def __init__(self, folder: Path | str, fingerprint: str | None = None):
        from medgym.dsl import parser

        self.parser = parser
        self.fingerprint = fingerprint or compiler_fingerprint()
        self.path = Path(folder) / "parsed" / f"expressions-{self.fingerprint[:16]}.pickle"
        known = read_blob(self.path, self.fingerprint)
        if isinstance(known, dict):
            parser.remember_parsed(known)
        self.count = len(parser.parsed_texts())

    def save(self) -> None:
        parsed = self.parser.parsed_texts()
        if len(parsed) > self.count:
            write_blob(self.path, self.fingerprint, parsed)
