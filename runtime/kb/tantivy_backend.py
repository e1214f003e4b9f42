"""The tantivy backend (the default): a Rust BM25 index, fast to build, sub-millisecond to query.

tantivy's searcher is immutable and shareable across threads, so one is opened and reused.
"""
from __future__ import annotations

from pathlib import Path

from medgym.runtime.kb.errors import EngineMissing
from medgym.runtime.kb.passages import Passage
from medgym.runtime.kb.query import FIELD_BOOSTS

NAME = "tantivy"
ANALYZER = "medgym_en"  # tokenizers are not saved in the index, so every open registers it again
HEAP_BYTES = 512_000_000  # the writer's whole budget, split across threads; fewer flushes, fewer merges


def _tantivy():
    try:
        import tantivy
    except ImportError as exc:
        raise EngineMissing("the tantivy engine is not installed: pip install 'medgym[kb]' (or pip install "
                            "tantivy), or build with --engine whoosh") from exc
    return tantivy


def version() -> str:
    from importlib.metadata import version as dist_version

    _tantivy()
    return dist_version("tantivy")


def _analyzer(tantivy):
    # Lower-case, drop English stop words, Porter-stem: the "English analysis" both backends share.
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword("english"))
            .filter(tantivy.Filter.stemmer("english"))
            .build())


def _schema(tantivy):
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("source", stored=True, tokenizer_name="raw", index_option="basic")
    # BM25 needs term frequencies, not positions; leaving positions out makes the index smaller and faster.
    for name in FIELD_BOOSTS:
        sb.add_text_field(name, stored=True, tokenizer_name=ANALYZER, index_option="freq")
    sb.add_bytes_field("provenance", stored=True, indexed=False)
    return sb.build()


class TantivyWriter:
    def __init__(self, path: Path, threads: int = 2):
        tantivy = _tantivy()
        self._tantivy = tantivy
        path.mkdir(parents=True, exist_ok=True)
        self._index = tantivy.Index(_schema(tantivy), path=str(path), reuse=False)
        self._index.register_tokenizer(ANALYZER, _analyzer(tantivy))
        threads = max(1, threads)
        self._writer = self._index.writer(heap_size=max(HEAP_BYTES, 15_000_000 * threads), num_threads=threads)

    def add(self, p: Passage) -> None:
        self._writer.add_document(self._tantivy.Document(
            id=p.id, source=p.source, title=p.title, keywords=list(p.keywords), text=p.text,
            provenance=p.provenance_json().encode()))

    def commit(self) -> None:
        self._writer.commit()
        self._writer.wait_merging_threads()

    def abort(self) -> None:
        try:
            self._writer.rollback()
        except Exception:  # the writer may already be unusable; the caller deletes the folder anyway
            pass


class TantivyReader:
    def __init__(self, path: Path):
        tantivy = _tantivy()
        self._tantivy = tantivy
        self._index = tantivy.Index.open(str(path))
        self._index.register_tokenizer(ANALYZER, _analyzer(tantivy))
        self._analyzer = _analyzer(tantivy)
        self._schema = self._index.schema
        self._searcher = self._index.searcher()

    def count(self) -> int:
        return self._searcher.num_docs

    def search(self, terms: tuple[str, ...], k: int, source: str | None) -> list[tuple[float, object]]:
        """The `k` best (score, document key) pairs; `load(key)` reads a passage. Tied scores come in no
        fixed order (it depends on how indexing threads split the corpus): the engine orders them."""
        Query, Occur = self._tantivy.Query, self._tantivy.Occur
        tokens = [token for term in terms for token in self._analyzer.analyze(term)]
        clauses = [(Occur.Should, self._term(field, token, boost))
                   for token in dict.fromkeys(tokens) for field, boost in FIELD_BOOSTS.items()]
        if not clauses:
            return []
        query = Query.boolean_query(clauses)
        if source is not None:
            # A zero-score filter: restricts the hits without changing their BM25 order.
            only = Query.const_score_query(Query.term_query(self._schema, "source", source), 0.0)
            query = Query.boolean_query([(Occur.Must, query), (Occur.Must, only)])
        return self._searcher.search(query, k, count=False).hits

    def load(self, address) -> Passage:
        return self._passage(self._searcher.doc(address))

    def _term(self, field: str, token: str, boost: float):
        query = self._tantivy.Query.term_query(self._schema, field, token)
        # A boost wrapper costs time (about 1.6x on a frequent term at 828K passages): skip it at 1.0.
        return query if boost == 1.0 else self._tantivy.Query.boost_query(query, boost)

    def get(self, passage_id: str) -> Passage | None:
        query = self._tantivy.Query.term_query(self._schema, "id", passage_id)
        hits = self._searcher.search(query, 1, count=False).hits
        return self._passage(self._searcher.doc(hits[0][1])) if hits else None

    def close(self) -> None:
        self._searcher = None

    @staticmethod
    def _passage(doc) -> Passage:
        fields = doc.to_dict()

        def first(name: str):
            values = fields.get(name) or [""]
            return values[0]

        return Passage.from_stored(first("id"), first("title"), first("text"), first("source"),
                                   fields.get("keywords", []), first("provenance"))


create_writer = TantivyWriter
open_reader = TantivyReader
