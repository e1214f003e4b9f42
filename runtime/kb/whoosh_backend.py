"""The whoosh backend (`whoosh-reloaded`): pure Python, for installs that want no compiled dependency.

A whoosh searcher holds open files and per-query state, so it must not be shared between threads: each
thread gets its own, created on first use and closed with the reader.
"""
from __future__ import annotations

import threading
from pathlib import Path

from medgym.runtime.kb.errors import EngineMissing
from medgym.runtime.kb.passages import Passage
from medgym.runtime.kb.query import FIELD_BOOSTS

NAME = "whoosh"
WRITER_MB = 256  # per process; whoosh flushes to disk beyond it


def _whoosh():
    try:
        import whoosh.analysis
        import whoosh.fields
        import whoosh.index
        import whoosh.query
    except ImportError as exc:
        raise EngineMissing("the whoosh engine is not installed: pip install 'medgym[kb]' (or pip install "
                            "whoosh-reloaded), or build with --engine tantivy") from exc
    return whoosh


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    whoosh = _whoosh()
    try:
        return "whoosh-reloaded " + dist_version("whoosh-reloaded")
    except PackageNotFoundError:  # the original 2016 package has the same import name
        return "whoosh " + whoosh.versionstring()


def _analyzer(whoosh):
    # Same steps as the tantivy analyzer: lower-case, English stop words, Porter stemming; minsize=1 keeps
    # the single digits of codes such as "A41.9", which tantivy keeps too.
    return whoosh.analysis.StemmingAnalyzer(minsize=1, maxsize=40)


def _schema(whoosh):
    fields = whoosh.fields
    analyzer = _analyzer(whoosh)
    text = {name: fields.TEXT(stored=True, analyzer=analyzer, phrase=False) for name in FIELD_BOOSTS}
    return fields.Schema(id=fields.ID(stored=True, unique=True), source=fields.ID(stored=True),
                         provenance=fields.STORED(), **text)


class WhooshWriter:
    def __init__(self, path: Path, threads: int = 1):
        whoosh = _whoosh()
        path.mkdir(parents=True, exist_ok=True)
        index = whoosh.index.create_in(str(path), _schema(whoosh))
        # procs > 1 forks whoosh's own worker processes; it merges their segments into one at commit.
        self._writer = index.writer(limitmb=WRITER_MB, procs=max(1, threads))

    def add(self, p: Passage) -> None:
        self._writer.add_document(id=p.id, source=p.source, title=p.title, keywords="\n".join(p.keywords),
                                  text=p.text, provenance=p.provenance_json())

    def commit(self) -> None:
        self._writer.commit()

    def abort(self) -> None:
        try:
            self._writer.cancel()
        except Exception:  # the writer may already be unusable; the caller deletes the folder anyway
            pass


class WhooshReader:
    def __init__(self, path: Path):
        whoosh = _whoosh()
        self._query = whoosh.query
        self._index = whoosh.index.open_dir(str(path))
        self._analyzer = _analyzer(whoosh)
        self._local = threading.local()
        self._searchers: list = []
        self._lock = threading.Lock()
        self._count = self._searcher().doc_count()

    def _searcher(self):
        searcher = getattr(self._local, "searcher", None)
        if searcher is None:
            searcher = self._index.searcher()
            self._local.searcher = searcher
            with self._lock:
                self._searchers.append(searcher)
        return searcher

    def count(self) -> int:
        return self._count

    def search(self, terms: tuple[str, ...], k: int, source: str | None) -> list[tuple[float, int]]:
        """The `k` best (score, document number) pairs; `load(docnum)` reads a passage. Tied scores come in
        document order, which a multi-process build does not fix: the engine orders them."""
        Term, Or = self._query.Term, self._query.Or
        tokens = dict.fromkeys(token.text for term in terms for token in self._analyzer(term))
        clauses = [Term(field, token, boost=boost) for token in tokens for field, boost in FIELD_BOOSTS.items()]
        if not clauses:
            return []
        only = Term("source", source) if source is not None else None
        results = self._searcher().search(Or(clauses), limit=k, filter=only)
        return [(score, docnum) for docnum, score in results.items()]

    def load(self, docnum: int) -> Passage:
        return self._passage(self._searcher().stored_fields(docnum))

    def get(self, passage_id: str) -> Passage | None:
        fields = self._searcher().document(id=passage_id)
        return self._passage(fields) if fields else None

    def close(self) -> None:
        with self._lock:
            for searcher in self._searchers:
                searcher.close()
            self._searchers.clear()
        self._local = threading.local()

    @staticmethod
    def _passage(fields: dict) -> Passage:
        return Passage.from_stored(fields["id"], fields.get("title", ""), fields.get("text", ""),
                                   fields.get("source", ""), fields.get("keywords", "").split("\n"),
                                   fields.get("provenance", ""))


create_writer = WhooshWriter
open_reader = WhooshReader
