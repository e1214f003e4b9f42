"""Streaming readers for corpus files; each yields `Passage`s one at a time and never holds a whole corpus.

Formats:
- JSONL, one object per line: `{id, title, text}`, the MedRAG corpus format `{id, title, content, contents}`
  and the BEIR format `{_id, title, text}`; optional `source`, `license`, `url`, `keywords`; `.jsonl.gz` too.
- PubMed baseline XML (`*.xml.gz` or `*.xml`): PMID, title, abstract (labelled sections kept), MeSH
  headings and author keywords, year and journal.
- Markdown or plain-text files: split into passages by heading, then by length with overlap.
- OBO ontologies (`*.obo`, e.g. the Human Phenotype Ontology): one passage per live term.

`source_from_path` picks the reader from the file names; a folder may mix formats.
"""
from __future__ import annotations

import bisect
import gzip
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Iterable, Iterator

from medgym.runtime.kb.errors import CorpusError
from medgym.runtime.kb.passages import SOURCE_NAME, Passage, Source, check_source_name

PUBMED_LICENSE = "NLM PubMed terms: https://www.nlm.nih.gov/databases/download/terms_and_conditions.html"
MAX_WORDS = 200
OVERLAP_WORDS = 40
MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt")
KNOWN_JSON_KEYS = {"id", "_id", "title", "text", "content", "contents", "source", "license", "url", "keywords"}


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig: files saved by Windows editors start with a byte-order mark that json.loads rejects
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


# ---------------------------------------------------------------- JSONL (plain, MedRAG, BEIR)

def read_jsonl(path: Path | str, source: str, license: str = "") -> Iterator[Passage]:
    """Passages from a JSONL file; ids become `source:id` unless a line names its own `source`."""
    path = Path(path)
    with _open_text(path) as fh:
        try:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    passage = _jsonl_passage(line, source, license, path, number)
                    if passage is not None:
                        yield passage
        except (UnicodeDecodeError, EOFError, OSError) as exc:
            raise CorpusError(f"cannot read the file ({exc})", path) from exc


def _jsonl_passage(line: str, source: str, license: str, path: Path, number: int) -> Passage | None:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"not JSON ({exc.msg} at column {exc.colno})", path, number) from None
    if not isinstance(obj, dict):
        raise CorpusError(f"expected a JSON object, got {type(obj).__name__}", path, number)
    original = obj.get("id", obj.get("_id"))
    if original is None or str(original).strip() == "":
        raise CorpusError("the passage has no 'id'", path, number)
    title = _string(obj.get("title"))
    # MedRAG keeps the body in "content" and "title. content" in "contents": prefer the body alone.
    text = _string(obj.get("text") or obj.get("content") or obj.get("contents"))
    if not title.strip() and not text.strip():
        return None
    own_source = obj.get("source")
    if own_source is not None and not (isinstance(own_source, str) and SOURCE_NAME.match(own_source)):
        raise CorpusError(f"'source' {own_source!r} must be lower-case letters, digits, '_', '.' or '-'",
                          path, number)
    name = own_source or source
    keywords = obj.get("keywords") or ()
    if isinstance(keywords, str):
        keywords = (keywords,)
    meta = {k: v for k, v in obj.items() if k not in KNOWN_JSON_KEYS and isinstance(v, (str, int, float))
            and not isinstance(v, bool) and len(str(v)) <= 200}
    return Passage(id=f"{name}:{original}", title=title, text=text, source=name,
                   license=_string(obj.get("license")) or license, url=_string(obj.get("url")),
                   original_id=str(original), keywords=tuple(_string(k) for k in keywords if k),
                   meta=dict(list(meta.items())[:8]))


def _string(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------- PubMed baseline XML

def read_pubmed_xml(path: Path | str, source: str = "pubmed", license: str = PUBMED_LICENSE) -> Iterator[Passage]:
    """Passages (title + abstract) from a PubMed baseline or update file, streamed article by article.

    Records without title and abstract, book records and `<DeleteCitation>` lists are skipped.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        events = ET.iterparse(fh, events=("start", "end"))
        root = None
        try:
            for event, elem in events:
                if root is None:
                    root = elem
                    if elem.tag != "PubmedArticleSet":
                        raise CorpusError(f"not a PubMed XML file (root element <{elem.tag}>)", path)
                    continue
                if event == "end" and elem.tag in ("PubmedArticle", "PubmedBookArticle", "DeleteCitation"):
                    passage = _pubmed_passage(elem, source, license) if elem.tag == "PubmedArticle" else None
                    root.clear()  # drop the finished record so memory stays flat
                    if passage is not None:
                        yield passage
        except ET.ParseError as exc:
            line = exc.position[0] if getattr(exc, "position", None) else None
            raise CorpusError(f"malformed XML ({exc})", path, line) from None
        except (EOFError, OSError) as exc:
            raise CorpusError(f"cannot read the file ({exc})", path) from exc


def _text(elem) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def _pubmed_passage(article, source: str, license: str) -> Passage | None:
    citation = article.find("MedlineCitation")
    if citation is None:
        return None
    pmid = _text(citation.find("PMID"))
    body = citation.find("Article")
    if not pmid or body is None:
        return None
    title = _text(body.find("ArticleTitle")) or _text(body.find("VernacularTitle"))
    sections = []
    for part in body.findall("Abstract/AbstractText"):
        text = _text(part)
        label = part.get("Label")
        if text:
            sections.append(f"{label}: {text}" if label else text)
    if not title and not sections:
        return None
    keywords = [_text(d) for d in citation.findall("MeshHeadingList/MeshHeading/DescriptorName")]
    keywords += [_text(k) for k in citation.findall("KeywordList/Keyword")]
    meta = {"journal": _text(body.find("Journal/Title"))}
    year = _pubmed_year(body)
    if year:
        meta["year"] = year
    return Passage(id=f"{source}:{pmid}", title=title, text="\n".join(sections), source=source,
                   license=license, url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/", original_id=pmid,
                   keywords=tuple(dict.fromkeys(k for k in keywords if k)), meta={k: v for k, v in meta.items() if v})


def _pubmed_year(body) -> int | None:
    for path in ("Journal/JournalIssue/PubDate/Year", "ArticleDate/Year", "Journal/JournalIssue/PubDate/MedlineDate"):
        found = re.search(r"\b(1[89]\d\d|20\d\d)\b", _text(body.find(path)))
        if found:
            return int(found.group(1))
    return None


# ---------------------------------------------------------------- Markdown and text

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
EMPHASIS = re.compile(r"(\*\*|__|`)")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def split_markdown(text: str, max_words: int = MAX_WORDS, overlap: int = OVERLAP_WORDS) -> list[tuple[list[str], str]]:
    """(heading path, passage text) pairs: one or more per section, none longer than `max_words` words.

    A section longer than `max_words` is cut between paragraphs where it can be, inside a paragraph where
    it must; each cut repeats the previous `overlap` words so a sentence spanning it stays findable.
    """
    out = []
    for headings, lines in _sections(text):
        paragraphs = _paragraphs(lines)
        for chunk in pack_paragraphs(paragraphs, max_words, overlap):
            out.append((headings, chunk))
    return out


def _sections(text: str) -> Iterator[tuple[list[str], list[str]]]:
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            if any(l.strip() for l in lines):
                yield [h for _, h in stack], lines
            level = len(match.group(1))
            stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, _clean_inline(match.group(2)))]
            lines = []
        else:
            lines.append(line)
    if any(l.strip() for l in lines):
        yield [h for _, h in stack], lines


def _clean_inline(line: str) -> str:
    return EMPHASIS.sub("", LINK.sub(r"\1", line)).rstrip()


def _paragraphs(lines: list[str]) -> list[str]:
    paragraphs, current = [], []
    for line in lines:
        if not line.strip():
            if current:
                paragraphs.append("\n".join(current))
            current = []
        elif not TABLE_RULE.match(line) and line.strip() != "---":
            current.append(_clean_inline(line))
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def pack_paragraphs(paragraphs: Iterable[str], max_words: int, overlap: int) -> list[str]:
    """Cut paragraphs into chunks of at most `max_words` words, each starting with the last `overlap` words of
    the chunk before it. Cuts fall between paragraphs where one is in reach, inside a paragraph otherwise;
    line breaks inside a paragraph (lists, tables) are kept."""
    if max_words < 1 or not 0 <= overlap < max_words:
        raise ValueError(f"need max_words >= 1 and 0 <= overlap < max_words (got {max_words}, {overlap})")
    words: list[str] = []
    gaps: list[str] = []  # the whitespace that follows each word
    boundaries: list[int] = []  # word indexes where a paragraph starts
    for paragraph in paragraphs:
        tokens = re.findall(r"(\S+)(\s*)", paragraph)
        if not tokens:
            continue
        if words:
            gaps[-1] = "\n\n"
            boundaries.append(len(words))
        for word, gap in tokens:
            words.append(word)
            gaps.append("\n" if "\n" in gap else " ")
    chunks, start = [], 0
    while start < len(words):
        end = min(start + max_words, len(words))
        if end < len(words):
            # the last paragraph start in reach; past start + overlap, so every chunk adds new words
            reachable = [b for b in boundaries[bisect.bisect_right(boundaries, start + overlap):] if b <= end]
            end = reachable[-1] if reachable else end
        chunks.append("".join(w + g for w, g in zip(words[start:end], gaps[start:end])).rstrip())
        if end == len(words):
            break
        start = end - overlap
    return chunks


def read_markdown(path: Path | str, source: str, root: Path | str | None = None, license: str = "",
                  url: str = "", title: str = "", max_words: int = MAX_WORDS,
                  overlap: int = OVERLAP_WORDS) -> Iterator[Passage]:
    """Passages from one Markdown or text file; ids are `source:relative/path#n` (relative to `root`)."""
    path = Path(path)
    relative = path.relative_to(root).as_posix() if root is not None else path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the file ({exc})", path) from exc
    chunks = split_markdown(text, max_words, overlap)
    doc_title = title or _document_title(chunks, path)
    for number, (headings, chunk) in enumerate(chunks, 1):
        inner = [h for h in headings if h != doc_title]
        yield Passage(id=f"{source}:{relative}#{number}", title=" › ".join([doc_title] + inner), text=chunk,
                      source=source, license=license, url=url or relative, original_id=f"{relative}#{number}")


def _document_title(chunks: list[tuple[list[str], str]], path: Path) -> str:
    for headings, _ in chunks:
        if headings:
            return headings[0]
    return path.name.split(".")[0].replace("_", " ").replace("-", " ").strip()


# ---------------------------------------------------------------- OBO ontologies

def read_obo(path: Path | str, source: str, license: str = "", url_prefix: str = "") -> Iterator[Passage]:
    """One passage per non-obsolete `[Term]`: name, definition, comment, synonyms and parent names.

    Reads the file twice (names first, so each term can name its parents) and keeps only the names.
    """
    path = Path(path)
    names = {stanza["id"][0]: stanza["name"][0] for stanza in _obo_terms(path) if "name" in stanza}
    for stanza in _obo_terms(path):
        if stanza.get("is_obsolete") == ["true"] or "name" not in stanza:
            continue
        term_id, name = stanza["id"][0], stanza["name"][0]
        synonyms = [_obo_quoted(s) for s in stanza.get("synonym", [])]
        synonyms = list(dict.fromkeys(s for s in synonyms if s and s != name))
        parents = [names.get(p.split("!")[0].strip(), "") for p in stanza.get("is_a", [])]
        lines = [_obo_quoted(d) for d in stanza.get("def", [])]
        lines += [_obo_unescape(c) for c in stanza.get("comment", [])]
        if synonyms:
            lines.append("Synonyms: " + "; ".join(synonyms) + ".")
        if any(parents):
            lines.append("A kind of: " + "; ".join(p for p in parents if p) + ".")
        yield Passage(id=f"{source}:{term_id}", title=name, text="\n".join(l for l in lines if l), source=source,
                      license=license, url=f"{url_prefix}{term_id}" if url_prefix else "", original_id=term_id,
                      keywords=tuple(synonyms))


def _obo_terms(path: Path) -> Iterator[dict[str, list[str]]]:
    stanza: dict[str, list[str]] | None = None
    try:
        with _open_text(path) as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.startswith("["):
                    if stanza and "id" in stanza:
                        yield stanza
                    stanza = {} if line.strip() == "[Term]" else None
                elif stanza is not None and ": " in line:
                    key, value = line.split(": ", 1)
                    stanza.setdefault(key, []).append(value)
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the file ({exc})", path) from exc
    if stanza and "id" in stanza:
        yield stanza


def _obo_quoted(value: str) -> str:
    match = re.match(r'^"((?:[^"\\]|\\.)*)"', value)
    return _obo_unescape(match.group(1)) if match else ""


def _obo_unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


# ---------------------------------------------------------------- choosing a reader

def corpus_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith((".xml", ".xml.gz")):
        return "pubmed"
    if name.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    if name.endswith((".obo", ".obo.gz")):
        return "obo"
    return None


def _corpus_files(path: Path) -> list[Path]:
    if path.is_file():
        if corpus_kind(path) is None:
            raise CorpusError("unknown corpus format: expected .jsonl(.gz), .xml(.gz) (PubMed), .md, .txt or .obo",
                              path)
        return [path]
    if not path.is_dir():
        raise CorpusError("no such file or folder", path)
    files = sorted(f for f in path.rglob("*") if f.is_file() and corpus_kind(f) and not f.name.startswith("."))
    if not files:
        raise CorpusError("the folder holds no corpus files (.jsonl, .xml.gz, .md, .txt, .obo)", path)
    return files


def default_source_name(path: Path) -> str:
    files = _corpus_files(path)
    if all(corpus_kind(f) == "pubmed" for f in files):
        return "pubmed"
    stem = path.name.lower().split(".")[0] if path.is_file() else path.resolve().name.lower()
    name = re.sub(r"[^a-z0-9_.-]+", "-", stem).strip("-._")[:64]
    return name or "corpus"


def read_path(path: Path, source: str, license: str = "") -> Iterator[Passage]:
    """Every passage under `path` (a file or a folder, walked in sorted order), each file by its kind."""
    root = path if path.is_dir() else path.parent
    for file in _corpus_files(path):
        kind = corpus_kind(file)
        if kind == "jsonl":
            yield from read_jsonl(file, source, license)
        elif kind == "pubmed":
            yield from read_pubmed_xml(file, source, license or PUBMED_LICENSE)
        elif kind == "markdown":
            yield from read_markdown(file, source, root=root, license=license)
        else:
            yield from read_obo(file, source, license)


def source_from_path(path: Path | str, name: str | None = None, license: str = "") -> Source:
    """A `Source` for a user corpus file or folder; checks the path now, reads it only when built."""
    path = Path(path)
    _corpus_files(path)
    name = check_source_name(name) if name else default_source_name(path)
    return Source(name=name, passages=lambda: read_path(path, name, license), license=license,
                  url=str(path.resolve()), description=f"user corpus {path}")
