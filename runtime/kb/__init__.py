"""The knowledge base: BM25 passage retrieval behind the kb_search tool kind.

    kb = KnowledgeBase.build(passages, path)          # or build_kb(sources, path), or open_default_kb()
    kb.search("sepsis lactate", k=5, source=None)      # -> [Hit(id, title, snippet, score, source)]
    kb.get("icd10cm:A41.9")                            # -> Passage
    search_knowledge(kb, query, k, source)             # the agent-facing tools: JSON-ready dicts,
    read_passage(kb, passage_id)                       # bad input becomes {"error": ...}

Backends: tantivy (default) and whoosh, imported only when used, so this package imports without them.
"""
from medgym.runtime.kb.engine import DEFAULT_ENGINE, ENGINES, KnowledgeBase, build_kb, open_default_kb
from medgym.runtime.kb.errors import CorpusError, EngineMissing, KBCorrupt, KBError, KBNotBuilt, PassageNotFound
from medgym.runtime.kb.loaders import read_jsonl, read_markdown, read_obo, read_pubmed_xml, source_from_path
from medgym.runtime.kb.passages import Hit, Passage, Source
from medgym.runtime.kb.starter import sources_for, starter_sources
from medgym.runtime.kb.store import default_kb_dir
from medgym.runtime.kb.tools import read_passage, search_knowledge

__all__ = [
    "KnowledgeBase", "Passage", "Hit", "Source", "build_kb", "open_default_kb", "default_kb_dir",
    "search_knowledge", "read_passage", "starter_sources", "sources_for", "source_from_path",
    "read_jsonl", "read_pubmed_xml", "read_markdown", "read_obo",
    "KBError", "KBNotBuilt", "KBCorrupt", "CorpusError", "EngineMissing", "PassageNotFound",
    "DEFAULT_ENGINE", "ENGINES",
]
