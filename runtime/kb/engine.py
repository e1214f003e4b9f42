"""`KnowledgeBase`: build, open, search and read a BM25 index of passages, whatever the backend.

A `KnowledgeBase` is read-only once open and safe to search from many threads at once.
"""
from __future__ import annotations

import importlib
import pickle
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterable

from medgym.runtime.kb import store
from medgym.runtime.kb.errors import KBCorrupt, KBError, PassageNotFound
from medgym.runtime.kb.passages import SOURCE_NAME, Hit, Passage, Source, is_text
from medgym.runtime.kb.query import make_snippet, query_terms

ENGINES = {"tantivy": "medgym.runtime.kb.tantivy_backend", "whoosh": "medgym.runtime.kb.whoosh_backend"}
DEFAULT_ENGINE = "tantivy"
MAX_HITS = 1000  # engines allocate a top-k heap of size k; a runaway k must not exhaust memory
# Passages tied with the k-th score are all read to order them by id; past this many hits, a tie this wide
# (a word in every passage of equal length) keeps the engine's order, so a query's cost stays bounded.
MAX_TIE_HITS = 4096

# What a damaged index file makes the engines raise while reading (tantivy raises ValueError for every
# failure; whoosh can surface low-level errors). Anything else is a bug and propagates unchanged.
READ_ERRORS = (OSError, ValueError, EOFError, struct.error, zlib.error, pickle.UnpicklingError)


def backend_module(engine: str):
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[engine])


class KnowledgeBase:
    """A built knowledge base: `search`, `get`, `stats`. Use `KnowledgeBase.open` or `KnowledgeBase.build`."""

    def __init__(self, reader, meta: dict, build_dir: Path, kb_dir: Path):
        self._reader, self.meta, self.build_dir, self.kb_dir = reader, meta, build_dir, kb_dir

    @classmethod
    def open(cls, path: Path | str | None = None) -> KnowledgeBase:
        """Open the live build under `path` (default: `default_kb_dir()`), checking it is readable."""
        kb_dir = Path(path) if path is not None else store.default_kb_dir()
        build = store.locate_build(kb_dir)
        if build == kb_dir and build.parent.name == "builds":  # opened by its build folder
            kb_dir = build.parent.parent
        meta = store.read_meta(build, kb_dir)
        rebuild = store.rebuild_command(kb_dir)
        try:
            module = backend_module(meta["engine"])
        except ValueError as exc:
            raise KBCorrupt(f"the knowledge base at {kb_dir}: {exc}; rebuild with `{rebuild}`") from None
        try:
            reader = module.open_reader(build / "index")
        except KBError:
            raise
        except Exception as exc:  # engines report damage with many exception types; all mean "rebuild"
            raise KBCorrupt(f"the {meta['engine']} index at {build} cannot be opened ({_brief(exc)}); "
                            f"rebuild with `{rebuild}`") from exc
        kb = cls(reader, meta, build, kb_dir)
        try:
            kb._verify()
        except KBError:
            kb.close()
            raise
        return kb

    @classmethod
    def build(cls, passages: Iterable[Passage], path: Path | str | None = None, *, engine: str = DEFAULT_ENGINE,
              sources: Iterable[Source] = (), rebuild_command: str | None = None, threads: int = 2,
              on_progress: Callable[[int], None] | None = None) -> KnowledgeBase:
        """Index `passages` atomically under `path` (default: `default_kb_dir()`) and open the result."""
        kb_dir = Path(path) if path is not None else store.default_kb_dir()
        store.build_index(passages, kb_dir, engine=engine, sources=sources, command=rebuild_command,
                          threads=threads, on_progress=on_progress)
        return cls.open(kb_dir)

    def _verify(self) -> None:
        # Engines open lazily; reading the count and one stored passage touches the postings, the term
        # dictionary and the document store, so damage shows up here rather than in an agent's episode.
        try:
            count = self._reader.count()
            probe = self._reader.get(self.meta["probe_id"])
        except READ_ERRORS as exc:
            raise self._corrupt(exc) from exc
        if count != self.meta["passages"] or probe is None:
            raise KBCorrupt(f"the index at {self.build_dir} holds {count} passages, its metadata says "
                            f"{self.meta['passages']}; rebuild with `{self.rebuild_command}`")

    @property
    def rebuild_command(self) -> str:
        return store.rebuild_command(self.kb_dir)

    @property
    def sources(self) -> list[str]:
        return sorted(self.meta.get("sources", {}))

    def _corrupt(self, exc: BaseException) -> KBCorrupt:
        return KBCorrupt(f"the {self.meta['engine']} index at {self.build_dir} is damaged ({_brief(exc)}); "
                         f"rebuild with `{self.rebuild_command}`")

    def search(self, query: str, k: int = 5, source: str | None = None) -> list[Hit]:
        """The `k` best passages for the words of `query` (BM25, any word may match), optionally from one source.

        Operators, quotes and field syntax in `query` are ignored, never parsed; a query without words, or a
        source name no source can have, returns no hits. `k` is capped at MAX_HITS. Equal scores are ordered
        by passage id, so the same corpus gives the same hits however it was indexed.
        """
        terms = query_terms(query).terms
        if not terms or k < 1 or not _may_be_source(source):
            return []
        try:
            ranked = self._ranked(terms, min(k, MAX_HITS), source)
        except READ_ERRORS as exc:
            raise self._corrupt(exc) from exc
        return [Hit(p.id, p.title, make_snippet(p.text, terms), float(score), p.source) for score, p in ranked]

    def _ranked(self, terms: tuple[str, ...], k: int, source: str | None) -> list[tuple[float, Passage]]:
        """The top `k` (score, passage) pairs, equal scores ordered by passage id.

        Engines order ties by internal document number, which differs between two builds of the same corpus
        (indexing threads split it differently), so every hit tied with the k-th score is fetched and the
        tie broken by id: the same corpus then always gives the same top k.
        """
        n = k
        while True:
            ranked = self._reader.search(terms, n + 1, source)
            if len(ranked) <= n or ranked[n][0] != ranked[k - 1][0] or n >= MAX_TIE_HITS:
                break
            n = min(n * 4, MAX_TIE_HITS)
        if not ranked:
            return []
        cut = ranked[min(k, len(ranked)) - 1][0]
        kept = [(score, self._reader.load(key)) for score, key in ranked if score >= cut]
        kept.sort(key=lambda hit: (-hit[0], hit[1].id))
        return kept[:k]

    def get(self, passage_id: str) -> Passage:
        """The passage with this id; raises PassageNotFound if there is none."""
        if not is_text(passage_id):  # builds refuse such ids, and engines would fail on them as on damage
            raise PassageNotFound(f"no passage with id {passage_id!r}")
        try:
            passage = self._reader.get(passage_id)
        except READ_ERRORS as exc:
            raise self._corrupt(exc) from exc
        if passage is None:
            raise PassageNotFound(f"no passage with id {passage_id!r}")
        return passage

    def stats(self) -> dict:
        """The build's metadata plus where it lives and its size on disk."""
        size = sum(f.stat().st_size for f in (self.build_dir / "index").rglob("*") if f.is_file())
        return {"path": str(self.kb_dir), "build": self.build_dir.name, "index_bytes": size,
                "rebuild_command": self.rebuild_command, **{k: v for k, v in self.meta.items() if k != "format"}}

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _may_be_source(source: object) -> bool:
    # A name no source can have matches nothing; passed on, it could make an engine fail as if damaged.
    return source is None or (isinstance(source, str) and SOURCE_NAME.fullmatch(source) is not None)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def open_default_kb() -> KnowledgeBase:
    """The knowledge base in `default_kb_dir()`; KBNotBuilt names `medgym kb build` when there is none."""
    return KnowledgeBase.open(store.default_kb_dir())


def build_kb(sources: Iterable[Source], path: Path | str | None = None, *, engine: str = DEFAULT_ENGINE,
             rebuild_command: str | None = None, threads: int = 2,
             on_progress: Callable[[str, int, int | None], None] | None = None) -> KnowledgeBase:
    """Build one knowledge base from several sources, atomically, and open it.

    `on_progress(source_name, passages_done_in_source, estimate)` is called every thousand passages and when
    each source ends, so a caller can draw one bar per source.
    """
    sources = list(sources)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must be distinct, got {names}")

    def stream():
        for source in sources:
            done = 0
            for passage in source.passages():
                yield passage
                done += 1
                if on_progress is not None and done % store.PROGRESS_EVERY == 0:
                    on_progress(source.name, done, source.estimate)
            if on_progress is not None:
                on_progress(source.name, done, source.estimate)

    return KnowledgeBase.build(stream(), path, engine=engine, sources=sources, rebuild_command=rebuild_command,
                               threads=threads)
