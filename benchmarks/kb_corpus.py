"""A deterministic synthetic medical corpus at the paper's scale, plus benchmark queries.

    python benchmarks/kb_corpus.py [--passages 828000] [--seed 42] [--out DIR]

Writes `corpus-<N>-s<seed>.jsonl` ({id, title, text, source}, 60-200 words per passage) and
`queries-<N>-s<seed>.json` (3-8 term queries). The words come from the real vocabularies the starter corpus
reads (ICD-10-CM, HPO, drug names, guideline prose), drawn with a Zipf-like skew so that, as in PubMed, a few
conditions and drugs are common and most are rare. The same arguments and installed packages give the same
bytes: every choice comes from one seeded `random.Random`, and the vocabularies are sorted before use.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PAPER_PASSAGES = 828_000
MIN_WORDS, MAX_WORDS = 60, 200
GENRES = (("pubmed", 0.70), ("textbooks", 0.20), ("guidelines", 0.10))  # the paper's KB mixes these three
QUERY_STOP = set("a an and or of the with without in on to for by at from as is are be other unspecified specified "
                 "not elsewhere classified nos due type part site its into than more".split())


@dataclass
class Vocabulary:
    diseases: list[str]
    notes: list[str]
    phenotypes: list[str]
    definitions: list[str]
    drugs: list[str]
    sentences: list[str]


def _sentences(text: str) -> list[str]:
    # Prose sentences only: list bullets lose their markers, table rows and flow-chart arrows are dropped.
    parts = (re.sub(r"^[-*>\s]+", "", p) for p in re.split(r"(?<=[.!?])\s+|\n+", text))
    return [p for p in parts if 6 <= len(p.split()) <= 40 and "|" not in p and "->" not in p]


def load_vocabulary() -> Vocabulary:
    """Term pools from the installed starter packages (via the starter corpus readers)."""
    from medgym.runtime.kb.starter import starter_sources

    sources, notes = starter_sources(only=["icd10cm", "guidelines", "differentials", "drugs", "hpo"])
    if {s.name for s in sources} < {"icd10cm", "guidelines", "drugs", "hpo"}:
        raise SystemExit("the benchmark corpus needs the starter packages: " + "; ".join(notes))
    pools = {k: set() for k in Vocabulary.__dataclass_fields__}
    for source in sources:
        for p in source.passages():
            if source.name == "icd10cm" and "." in p.original_id:  # codes, not chapters/blocks/categories
                pools["diseases"].add(p.title.split(" ", 1)[1])
                pools["notes"].update(k for k in p.keywords if len(k.split()) >= 2)
            elif source.name == "hpo":
                pools["phenotypes"].add(p.title)
                first = p.text.split("\n", 1)[0]
                if len(first.split()) >= 6:
                    pools["definitions"].add(first)
            elif source.name == "drugs" and len(p.title) <= 30:
                pools["drugs"].add(p.title)
            elif source.name in ("guidelines", "differentials"):
                pools["sentences"].update(_sentences(p.text))
    return Vocabulary(**{k: sorted(v) for k, v in pools.items()})


class Skewed:
    """Draws from a list with Zipf-like weights (1/rank) over a seeded shuffle: a few items are frequent."""

    def __init__(self, items: list[str], rng: random.Random, exponent: float = 1.0):
        self.items = list(items)
        rng.shuffle(self.items)
        self.cumulative = list(itertools.accumulate(1.0 / (rank ** exponent) for rank in range(1, len(items) + 1)))
        self.rng = rng

    def __call__(self) -> str:
        return self.items[bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])]


class Writer:
    """Sentence and title templates for the three genres, over skewed vocabularies."""

    def __init__(self, vocab: Vocabulary, rng: random.Random):
        self.rng = rng
        self.disease, self.note = Skewed(vocab.diseases, rng), Skewed(vocab.notes, rng)
        self.phenotype, self.definition = Skewed(vocab.phenotypes, rng), Skewed(vocab.definitions, rng)
        self.drug, self.sentence = Skewed(vocab.drugs, rng), Skewed(vocab.sentences, rng, exponent=0.6)

    def title(self, genre: str) -> str:
        d, p, g = self.disease(), self.phenotype().lower(), self.drug()
        return self.rng.choice({
            "pubmed": [f"{d}: {p} in patients treated with {g}", f"{p.capitalize()} as a predictor of outcome in {d.lower()}",
                       f"{g} versus placebo for {d.lower()}: a randomised trial"],
            "textbooks": [f"{d}", f"{p.capitalize()}: clinical features", f"Pharmacology of {g}"],
            "guidelines": [f"Management of {d.lower()}", f"Recommendations on {g} in {d.lower()}"],
        }[genre])

    def sentences(self, genre: str):
        r = self.rng
        makers = [
            lambda: f"{self.disease()} was diagnosed in {r.randint(3, 900)} of {r.randint(900, 5000)} patients "
                    f"presenting with {self.phenotype().lower()}.",
            lambda: f"Treatment with {self.drug()} reduced {self.phenotype().lower()} compared with {self.drug()} "
                    f"(hazard ratio 0.{r.randint(40, 95)}).",
            lambda: self.definition(),
            lambda: f"Patients with {self.note().lower()} were excluded.",
            lambda: f"History of {self.disease().lower()}; current medications: {self.drug()}, {self.drug()}.",
            lambda: self.sentence(),
        ]
        weights = {"pubmed": [3, 3, 1, 2, 1, 1], "textbooks": [1, 1, 4, 2, 1, 2], "guidelines": [1, 2, 1, 1, 1, 5]}[genre]
        while True:
            yield r.choices(makers, weights)[0]()

    def passage(self, genre: str) -> tuple[str, str]:
        target = self.rng.randint(MIN_WORDS, MAX_WORDS)
        words: list[str] = []
        for sentence in self.sentences(genre):
            words += sentence.split()
            if len(words) >= target:
                break
        return self.title(genre), " ".join(words[:target])


def make_queries(vocab: Vocabulary, rng: random.Random, count: int) -> list[str]:
    """`count` queries of 3-8 content words from disease, phenotype and drug names, as an agent might type."""
    queries = []
    while len(queries) < count:
        text = " ".join([rng.choice(vocab.diseases), rng.choice(vocab.phenotypes)]
                        + ([rng.choice(vocab.drugs)] if rng.random() < 0.4 else []))
        words = list(dict.fromkeys(w for w in re.findall(r"[a-z][a-z0-9-]+", text.lower()) if w not in QUERY_STOP))
        size = rng.randint(3, 8)
        if len(words) >= size:
            queries.append(" ".join(words[:size]))
    return queries


def paths(out: Path, passages: int, seed: int) -> tuple[Path, Path]:
    return out / f"corpus-{passages}-s{seed}.jsonl", out / f"queries-{passages}-s{seed}.json"


def generate(passages: int, seed: int, out: Path, queries: int = 300, progress: bool = True) -> tuple[Path, Path]:
    """Write the corpus and queries (atomically: a temp file renamed when complete); returns their paths."""
    corpus_path, queries_path = paths(out, passages, seed)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    vocab = load_vocabulary()
    writer = Writer(vocab, rng)
    genres, weights = zip(*GENRES)
    tmp = corpus_path.with_suffix(".tmp")
    started = time.perf_counter()
    with open(tmp, "w", encoding="utf-8") as fh:
        for i in range(passages):
            genre = rng.choices(genres, weights)[0]
            title, text = writer.passage(genre)
            fh.write(json.dumps({"id": str(i), "title": title, "text": text, "source": genre}, ensure_ascii=False) + "\n")
            if progress and (i + 1) % 100_000 == 0:
                print(f"  {i + 1:,} passages, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    tmp.replace(corpus_path)
    queries_path.write_text(json.dumps(make_queries(vocab, random.Random(seed + 1), queries), indent=0))
    return corpus_path, queries_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=PAPER_PASSAGES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="default: $MEDGYM_CACHE_DIR/bench/kb")
    args = parser.parse_args()
    from medgym.runtime.kb.store import default_kb_dir

    out = args.out or default_kb_dir().parent / "bench" / "kb"
    started = time.perf_counter()
    corpus, queries = generate(args.passages, args.seed, out, args.queries)
    size = corpus.stat().st_size
    print(f"{corpus} ({size / 1e6:.0f} MB) and {queries} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
