"""The records a knowledge base holds and returns: passages, search hits and the sources they come from."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

# Source names are stored as single raw terms and typed by models as a filter, so keep them plain.
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of text with its provenance.

    `id` is unique in a knowledge base (loaders make it `source:original_id`); `keywords` are indexed with a
    boost (MeSH headings, synonyms, topics); `meta` holds small facts such as a year or a DOI.
    """

    id: str
    title: str
    text: str
    source: str
    license: str = ""
    url: str = ""
    original_id: str = ""
    keywords: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    def provenance_json(self) -> str:
        """The stored-only fields, packed into one compact JSON string."""
        extra = {"license": self.license, "url": self.url, "original_id": self.original_id, "meta": self.meta}
        return json.dumps({k: v for k, v in extra.items() if v}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_stored(cls, id: str, title: str, text: str, source: str, keywords: Iterable[str],
                    provenance: str | bytes) -> Passage:
        extra = json.loads(provenance) if provenance else {}
        return cls(id=id, title=title, text=text, source=source, keywords=tuple(k for k in keywords if k),
                   license=extra.get("license", ""), url=extra.get("url", ""),
                   original_id=extra.get("original_id", ""), meta=extra.get("meta", {}))

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "text": self.text, "source": self.source,
                "license": self.license, "url": self.url, "original_id": self.original_id,
                "keywords": list(self.keywords), "meta": dict(self.meta)}


@dataclass(frozen=True)
class Hit:
    """A ranked search result: enough to decide whether to read the whole passage."""

    id: str
    title: str
    snippet: str
    score: float
    source: str

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "snippet": self.snippet, "score": round(self.score, 4),
                "source": self.source}


@dataclass(frozen=True)
class Source:
    """A named stream of passages plus what must travel with it (licence, attribution).

    `passages` is a function so a source can be described (and skipped) without reading it; `estimate` is a
    passage count for progress bars when it is cheap to know.
    """

    name: str
    passages: Callable[[], Iterator[Passage]]
    license: str = ""
    attribution: str = ""
    url: str = ""
    description: str = ""
    estimate: int | None = None

    def __post_init__(self):
        check_source_name(self.name)

    def info(self) -> dict:
        return {"license": self.license, "attribution": self.attribution, "url": self.url,
                "description": self.description}


def is_text(value: object) -> bool:
    """True for a str that encodes to UTF-8 (no lone surrogates): the only text an index can store or match."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_source_name(name: str) -> str:
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):  # match() lets a trailing newline in
        raise ValueError(f"source name {name!r} must be lower-case letters, digits, '_', '.' or '-' "
                         "(at most 64, starting with a letter or digit)")
    return name
