"""Knowledge-base benchmark: build time, peak memory, index size and query latency per engine.

    python benchmarks/kb_bench.py [--passages 828000] [--engines tantivy,fts5,whoosh] [--whoosh-passages N]
                                  [--queries 300] [--seed 42] [--data DIR] [--json]

The corpus and queries come from `kb_corpus.py` (generated on first use, then reused). Each engine runs in a
fresh child process, so its peak RSS is its own: the build streams the JSONL through medgym's loader (build
time includes reading and parsing it), then the index is reopened and every query is timed alone with
`perf_counter` after 10 warm-up queries. tantivy and whoosh are timed through `KnowledgeBase.search(q, k=10)`,
which is what the agent's tool runs (hits, stored fields and snippets); SQLite FTS5 (the engine the paper's
code used) is the reference, with the same fields, weights, query words and snippets.

Targets for tantivy at 828K passages on the 2-core reference machine: build <= 180 s, peak memory <= 4 GB,
query p95 <= 10 ms.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402

WARMUP = 10
TOP_K = 10
TARGETS = {"build_s": 180, "peak_rss_mb": 4096, "p95_ms": 10}


# ---------------------------------------------------------------- what one child process measures

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def passages(corpus: Path, limit: int | None):
    from medgym.runtime.kb.loaders import read_jsonl

    stream = read_jsonl(corpus, "bench")
    return itertools.islice(stream, limit) if limit else stream


def run_medgym(engine: str, corpus: Path, queries: list[str], work: Path, limit: int | None) -> dict:
    from medgym.runtime.kb import KnowledgeBase

    started = time.perf_counter()
    KnowledgeBase.build(passages(corpus, limit), work, engine=engine, threads=2).close()
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    kb = KnowledgeBase.open(work)
    kb.search(queries[0], k=TOP_K)
    open_s = time.perf_counter() - started
    stats = kb.stats()
    return {"build_s": build_s, "open_first_query_s": open_s, "index_bytes": stats["index_bytes"],
            "indexed": stats["passages"], **time_queries(lambda q: [h.id for h in kb.search(q, k=TOP_K)], queries)}


def run_fts5(corpus: Path, queries: list[str], work: Path, limit: int | None) -> dict:
    from medgym.runtime.kb.query import STOP_WORDS, make_snippet, query_terms

    work.mkdir(parents=True, exist_ok=True)
    path = work / "fts5.db"
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE VIRTUAL TABLE passages USING fts5(id UNINDEXED, source UNINDEXED, title, keywords, text, "
                "tokenize='porter unicode61')")
    rows = ((p.id, p.source, p.title, " ".join(p.keywords), p.text) for p in passages(corpus, limit))
    with con:
        con.executemany("INSERT INTO passages VALUES (?, ?, ?, ?, ?)", rows)
    con.execute("INSERT INTO passages(passages) VALUES('optimize')")
    con.commit()
    con.close()
    build_s = time.perf_counter() - started
    # Column weights match the other engines (title 2, keywords 1.5, text 1); FTS5 has no stop-word list, so
    # the query drops them as the other engines' analyzers do.
    sql = ("SELECT id, title, text, source, bm25(passages, 0, 0, 2.0, 1.5, 1.0) AS score FROM passages "
           "WHERE passages MATCH ? ORDER BY score LIMIT ?")

    def search(query: str) -> list[str]:
        terms = [t for t in query_terms(query).terms if t not in STOP_WORDS]
        match = " OR ".join(f'"{t}"' for t in terms)
        hits = con.execute(sql, (match, TOP_K)).fetchall()
        for _, _, text, _, _ in hits:  # the tool returns snippets, so the reference pays for them too
            make_snippet(text, tuple(terms))
        return [row[0] for row in hits]

    started = time.perf_counter()
    con = sqlite3.connect(path, check_same_thread=False)
    search(queries[0])
    open_s = time.perf_counter() - started
    indexed = con.execute("SELECT count(*) FROM passages").fetchone()[0]
    return {"build_s": build_s, "open_first_query_s": open_s, "index_bytes": path.stat().st_size,
            "indexed": indexed, **time_queries(search, queries)}


def time_queries(search, queries: list[str]) -> dict:
    for query in queries[:WARMUP]:
        search(query)
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        ids = search(query)
        times.append((time.perf_counter() - started) * 1000)
        results.append(ids)
    return {"queries": len(queries), "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
            "p99_ms": percentile(times, 99), "mean_ms": statistics.fmean(times), "max_ms": max(times),
            "results": results}


def child(engine: str, corpus: Path, queries_path: Path, limit: int | None) -> None:
    queries = json.loads(queries_path.read_text())
    with tempfile.TemporaryDirectory(prefix=f"kb-bench-{engine}-") as tmp:
        work = Path(tmp) / "kb"
        figures = run_fts5(corpus, queries, work, limit) if engine == "fts5" else \
            run_medgym(engine, corpus, queries, work, limit)
    # ru_maxrss is in KiB on Linux: the whole process's peak, corpus streaming and writer buffers included.
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


# ---------------------------------------------------------------- the run

def engine_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"sqlite": sqlite3.sqlite_version}
    for dist in ("tantivy", "whoosh-reloaded"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return versions


def corpus_facts(path: Path) -> dict:
    digest, words, count = hashlib.sha256(), 0, 0
    with open(path, "rb") as fh:
        for line in fh:
            digest.update(line)
            words += len(json.loads(line)["text"].split())
            count += 1
    return {"path": str(path), "passages": count, "mean_words": round(words / max(count, 1), 1),
            "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def measure(engine: str, corpus: Path, queries: Path, limit: int | None) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--corpus", str(corpus), "--query-file", str(queries)]
    if limit:
        command += ["--limit", str(limit)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["engine"], figures["wall_s"] = engine, time.perf_counter() - started
    return figures


def overlap(results: list[list[str]], reference: list[list[str]]) -> tuple[float, float]:
    """Mean top-k overlap and same-top-1 rate against a reference engine's results."""
    pairs = list(zip(results, reference))
    shared = statistics.fmean(len(set(a) & set(b)) / max(len(b), 1) for a, b in pairs)
    top1 = statistics.fmean(bool(a and b and a[0] == b[0]) for a, b in pairs)
    return round(shared, 3), round(top1, 3)


def report(runs: list[dict], facts: dict) -> None:
    header = f"{'engine':<8} {'passages':>9} {'build s':>8} {'index MB':>9} {'peak MB':>8} {'open ms':>8} " \
             f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'top10 vs tantivy':>17}"
    print(f"corpus: {facts['passages']:,} passages, mean {facts['mean_words']} words, "
          f"{facts['bytes'] / 1e6:.0f} MB JSONL; {runs[0]['queries']} queries, top-{TOP_K}")
    print(header)
    for run in runs:
        agree = f"{run['overlap_vs_tantivy'][0]:.2f} / {run['overlap_vs_tantivy'][1]:.2f}" \
            if run.get("overlap_vs_tantivy") else "-"
        print(f"{run['engine']:<8} {run['indexed']:>9,} {run['build_s']:>8.1f} {run['index_bytes'] / 1e6:>9.1f} "
              f"{run['peak_rss_mb']:>8.0f} {run['open_first_query_s'] * 1000:>8.1f} {run['p50_ms']:>7.2f} "
              f"{run['p95_ms']:>7.2f} {run['p99_ms']:>7.2f} {agree:>17}")
    base = next((r for r in runs if r["engine"] == "tantivy"), None)
    if base:
        for run in runs:
            if run is not base:
                print(f"{run['engine']} / tantivy: build x{run['build_s'] / base['build_s']:.1f}, p50 "
                      f"x{run['p50_ms'] / base['p50_ms']:.0f}, p95 x{run['p95_ms'] / base['p95_ms']:.0f} "
                      f"(at {run['indexed']:,} vs {base['indexed']:,} passages)")
        met = {"build_s": base["build_s"] <= TARGETS["build_s"], "peak_rss_mb": base["peak_rss_mb"] <= TARGETS["peak_rss_mb"],
               "p95_ms": base["p95_ms"] <= TARGETS["p95_ms"]}
        print("tantivy targets: " + ", ".join(f"{k} <= {TARGETS[k]}: {'met' if ok else 'MISSED'}" for k, ok in met.items()))


def ready(corpus: Path, queries: Path, count: int) -> bool:
    return corpus.is_file() and queries.is_file() and len(json.loads(queries.read_text())) == count


def main() -> None:
    from kb_corpus import PAPER_PASSAGES, generate, paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=PAPER_PASSAGES)
    parser.add_argument("--engines", default="tantivy,fts5,whoosh")
    parser.add_argument("--whoosh-passages", type=int, default=None,
                        help="index only the first N passages with whoosh (it is slow at full size)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=None, help="corpus folder (default: $MEDGYM_CACHE_DIR/bench/kb)")
    parser.add_argument("--json", action="store_true", help="print only the JSON record")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--query-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args.query_file, args.limit)
        return
    from medgym.runtime.kb.store import default_kb_dir

    data = args.data or default_kb_dir().parent / "bench" / "kb"
    corpus, queries = paths(data, args.passages, args.seed)
    if not ready(corpus, queries, args.queries):
        print(f"generating {args.passages:,} passages into {data} ...", file=sys.stderr)
        corpus, queries = generate(args.passages, args.seed, data, args.queries)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    runs = []
    for engine in engines:
        limit = args.whoosh_passages if engine == "whoosh" else None
        print(f"running {engine}{f' on the first {limit:,} passages' if limit else ''} ...", file=sys.stderr)
        runs.append(measure(engine, corpus, queries, limit))
    reference = next((r for r in runs if r["engine"] == "tantivy"), None)
    for run in runs:
        if reference and run is not reference and run["indexed"] == reference["indexed"]:
            run["overlap_vs_tantivy"] = overlap(run["results"], reference["results"])
    facts = corpus_facts(corpus)
    record = {"corpus": facts, "engines": [{k: v for k, v in r.items() if k != "results"} for r in runs],
              "targets_tantivy": TARGETS, "versions": engine_versions(), "context": context()}
    if not args.json:
        report(runs, facts)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
