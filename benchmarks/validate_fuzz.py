"""`medgym validate` on mutated copies of a spec tree: every result is located errors (or none), never a
traceback, and no copy takes more than twice as long as the unmodified specs.

    python benchmarks/validate_fuzz.py [SPECS] [-n 100] [--seed 0] [--gate 3] [--json]

Each mutation changes one spec file of a fresh copy (a bit flipped, a line deleted or duplicated, two
tokens swapped, a bad byte inserted, a line re-indented, a number made non-finite, a jinja tag broken, an
expression folded over lines) and runs the validate path in-process (`check_specs`, without the gate;
`--gate K` also plays the reference gate on up to K mutated copies that pass without it). Prints the
count, how many gave located errors, how many escaped as another exception (must be 0), the slowest and
median seconds against the unmodified specs (each must stay under twice), and the peak RSS.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402

from medgym.compiler.load import spec_files  # noqa: E402
from medgym.compiler.pipeline import check_specs  # noqa: E402
from medgym.dsl.errors import SpecError, spec_lines  # noqa: E402

BAD_BYTES = [b"\x80", b"\x00", b"\xff", b"\xc3", b"\x1b", b"\xed\xa0\x80", b"\t"]
BAD_NUMBERS = ["1e999", "-.inf", ".nan", "-1e999", "1e308", "0", "-1", "99999999999999999999"]
JINJA_BREAKS = [("{% else %}", "{g/dL else %}"), ("{%", "{"), ("%}", "%"), ("{{", "{"), ("}}", "}"), ("endif", "endiff")]
_TOKEN = re.compile(rb"[^\s:,\[\]{}]+")
_NUMBER = re.compile(rb"(?<![\w.])-?\d+(\.\d+)?(?![\w.])")
_QUOTED_EXPR = re.compile(rb'^(\s*)([\w.-]+): "(=[^"\n]{30,})"\s*$', re.M)


# ---------------------------------------------------------------- mutations (each: bytes, rng -> bytes)
def flip_bit(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def swap_tokens(data: bytes, rng: random.Random) -> bytes:
    tokens = list(_TOKEN.finditer(data))
    if len(tokens) < 2:
        return flip_bit(data, rng)
    a, b = sorted(rng.sample(tokens, 2), key=lambda m: m.start())
    return data[:a.start()] + b.group() + data[a.end():b.start()] + a.group() + data[b.end():]


def insert_bad_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice(BAD_BYTES) + data[i:]


def reindent(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    if lines[i].startswith(b"  ") and rng.random() < 0.5:
        lines[i] = lines[i][rng.choice((1, 2)):]
    else:
        lines[i] = b" " * rng.choice((1, 2, 4)) + lines[i]
    return b"\n".join(lines)


def bad_number(data: bytes, rng: random.Random) -> bytes:
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return insert_bad_bytes(data, rng)
    m = rng.choice(numbers)
    return data[:m.start()] + rng.choice(BAD_NUMBERS).encode() + data[m.end():]


def break_jinja(data: bytes, rng: random.Random) -> bytes:
    options = [(old.encode(), new.encode()) for old, new in JINJA_BREAKS if old.encode() in data]
    if not options:
        return swap_tokens(data, rng)
    old, new = rng.choice(options)
    spots = [m.start() for m in re.finditer(re.escape(old), data)]
    i = rng.choice(spots)
    return data[:i] + new + data[i + len(old):]


def fold_expression(data: bytes, rng: random.Random) -> bytes:
    """A quoted one-line expression rewritten as a `>-` folded or `|` literal block over several lines,
    then one of its characters flipped, so the error lands inside the block."""
    found = [m for m in _QUOTED_EXPR.finditer(data) if b"\\" not in m.group(3) and b"'" not in m.group(3)]
    if not found:
        return swap_tokens(data, rng)
    m = rng.choice(found)
    indent, key, expr = m.group(1), m.group(2), m.group(3)
    words = expr.split(b" ")
    cuts = sorted(rng.sample(range(1, len(words)), min(3, len(words) - 1))) if len(words) > 1 else []
    chunks = [b" ".join(words[a:b]) for a, b in zip([0] + cuts, cuts + [len(words)])]
    body = b"".join(indent + b"  " + chunk + b"\n" for chunk in chunks)
    if rng.random() < 0.8:
        target = rng.randrange(len(body))
        if body[target:target + 1] not in (b"\n", b" "):
            body = body[:target] + rng.choice([b"$", b"(", b"elsee", b"case.nope"]) + body[target + 1:]
    block = indent + key + (b": >-\n" if rng.random() < 0.6 else b": |\n") + body.rstrip(b"\n")
    return data[:m.start()] + block + data[m.end():]


MUTATIONS = [flip_bit, delete_line, duplicate_line, swap_tokens, insert_bad_bytes, reindent, bad_number,
             break_jinja, fold_expression]


@dataclass
class Mutation:
    index: int
    file: str  # relative to the spec root
    kind: str
    data: bytes = field(repr=False)


def mutations(specs: Path, count: int, seed: int) -> list[Mutation]:
    """`count` seeded mutations of the files under `specs` (each one file, one change)."""
    rng = random.Random(seed)
    files = [p for p in spec_files(specs) if p.stat().st_size]
    out = []
    for index in range(count):
        path = rng.choice(files)
        mutate = MUTATIONS[index % len(MUTATIONS)]
        data = path.read_bytes()
        out.append(Mutation(index, str(path.relative_to(specs)), mutate.__name__, mutate(data, rng)))
    return out


# ---------------------------------------------------------------- checking one result
def misplaced(errors: list[SpecError], root: Path) -> list[str]:
    """Errors whose position is not in their file: a line past the end, or a column past its line."""
    bad = []
    for error in errors:
        pos = error.pos
        if pos.line <= 0:
            continue  # a whole-file (or whole-folder) diagnostic
        try:
            lines = spec_lines(Path(pos.path).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            bad.append(f"{error} (no such file)")
            continue
        if pos.line > len(lines) or not 1 <= pos.col <= max(len(lines[pos.line - 1]), 1):
            bad.append(str(error).replace(str(root) + "/", ""))
    return bad


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_one(root: Path, gate, limit_s: float) -> dict:
    """check_specs on `root` with a wall-clock limit: its errors, or the exception that escaped."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    started = time.perf_counter()
    try:
        errors = check_specs(root, gate=gate)
        outcome = {"errors": errors}
    except Hang:
        outcome = {"escaped": f"no result within {limit_s:.0f} s"}
    except BaseException as exc:  # noqa: BLE001 - exactly what this benchmark looks for
        outcome = {"escaped": f"{type(exc).__name__}: {exc}"[:300], "traceback": traceback.format_exc(limit=-4)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    outcome["seconds"] = time.perf_counter() - started
    return outcome


def fuzz(specs: Path, count: int, seed: int, gate_runs: int, limit_factor: float = 10.0) -> dict:
    from medgym.gate import compile_gate

    with tempfile.TemporaryDirectory(prefix="medgym-fuzz-") as tmp:
        root = Path(tmp) / "specs"
        shutil.copytree(specs, root)
        baseline = [run_one(root, None, 600)["seconds"] for _ in range(3)]
        base_s = statistics.median(baseline)
        base_gate_s = run_one(root, compile_gate, 600)["seconds"] if gate_runs else 0.0
        base_rss = _rss_mib()
        rows, clean = [], []
        for m in mutations(root, count, seed):
            target = root / m.file
            original = target.read_bytes()
            target.write_bytes(m.data)
            try:
                result = run_one(root, None, base_s * limit_factor)
                errors = result.get("errors", [])
                row = {"index": m.index, "file": m.file, "kind": m.kind, "seconds": round(result["seconds"], 3),
                       "errors": len(errors), "escaped": result.get("escaped"), "misplaced": misplaced(errors, root),
                       "file_level": sum(1 for e in errors if e.pos.line <= 0),
                       "first": str(errors[0]).replace(str(root) + "/", "")[:200] if errors else None}
                if "traceback" in result:
                    row["traceback"] = result["traceback"]
                if not errors and not row["escaped"] and len(clean) < gate_runs:
                    gated = run_one(root, compile_gate, max(base_gate_s, base_s) * limit_factor)
                    row["gate_seconds"] = round(gated["seconds"], 3)
                    row["gate_escaped"] = gated.get("escaped")
                    row["gate_errors"] = len(gated.get("errors", []))
                    clean.append(row)
                row["peak_rss_mib"] = round(_rss_mib(), 1)  # the process's peak so far: shows which copy raised it
                rows.append(row)
            finally:
                target.write_bytes(original)
    return _summary(rows, base_s, base_gate_s, base_rss, count, seed)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_steps(rows, base_rss, step_mib: float = 20.0) -> list[str]:
    """The copies that raised the peak RSS by more than `step_mib` (a leak would show as many small steps)."""
    out, peak = [], base_rss
    for row in rows:
        if row["peak_rss_mib"] - peak > step_mib:
            out.append(f"#{row['index']} {row['kind']} {row['file']}{' (+gate)' if 'gate_seconds' in row else ''}: "
                       f"{peak:.0f} -> {row['peak_rss_mib']:.0f} MiB")
        peak = max(peak, row["peak_rss_mib"])
    return out


def _summary(rows, base_s, base_gate_s, base_rss, count, seed) -> dict:
    seconds = [r["seconds"] for r in rows]
    escaped = [r for r in rows if r["escaped"] or r.get("gate_escaped")]
    located = [r for r in rows if r["errors"] and not r["escaped"] and not r["misplaced"]]
    gated = [r for r in rows if "gate_seconds" in r]
    return {
        "mutations": count, "seed": seed,
        "located_errors": len(located),
        "no_errors": sum(1 for r in rows if not r["errors"] and not r["escaped"]),
        "escaped": len(escaped),
        "misplaced": sum(1 for r in rows if r["misplaced"]),
        "with_file_level_errors": sum(1 for r in rows if r["file_level"]),
        "baseline_s": round(base_s, 3),
        "max_s": round(max(seconds), 3) if seconds else 0.0,
        "median_s": round(statistics.median(seconds), 3) if seconds else 0.0,
        "max_ratio": round(max(seconds) / base_s, 2) if seconds else 0.0,
        "over_2x": sum(1 for s in seconds if s > 2 * base_s),
        "gate_runs": len(gated), "baseline_gate_s": round(base_gate_s, 3),
        "gate_max_s": round(max((r["gate_seconds"] for r in gated), default=0.0), 3),
        "peak_rss_mib": round(_rss_mib(), 1), "baseline_rss_mib": round(base_rss, 1),
        "rss_raised_by": _rss_steps(rows, base_rss),
        "by_kind": {k: sum(1 for r in rows if r["kind"] == k) for k in sorted({r["kind"] for r in rows})},
        "problems": [r for r in rows if r["escaped"] or r.get("gate_escaped") or r["misplaced"] or r["seconds"] > 2 * base_s],
        "context": context(),
    }


def main() -> None:
    from medgym.shipped import shipped_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="?", type=Path, default=None)
    parser.add_argument("-n", "--count", type=int, default=100, help="mutations to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate", type=int, default=3, help="also play the gate on up to this many clean copies")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    summary = fuzz(args.specs or shipped_specs(), args.count, args.seed, args.gate)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return
    s = summary
    print(f"{s['mutations']} mutations (seed {s['seed']}): {s['located_errors']} gave located errors, "
          f"{s['no_errors']} none, {s['escaped']} escaped (must be 0), {s['misplaced']} with a position outside its file")
    print(f"seconds: unmodified {s['baseline_s']}, median {s['median_s']}, max {s['max_s']} "
          f"({s['max_ratio']}x; {s['over_2x']} over 2x)")
    if s["gate_runs"]:
        print(f"with the gate: {s['gate_runs']} clean copies, max {s['gate_max_s']} s (unmodified {s['baseline_gate_s']} s)")
    print(f"peak RSS {s['peak_rss_mib']} MiB (after the unmodified runs {s['baseline_rss_mib']} MiB)")
    for step in s["rss_raised_by"]:
        print(f"  peak raised by {step}")
    for row in s["problems"]:
        print(f"  problem: #{row['index']} {row['kind']} {row['file']}: {row['escaped'] or row['misplaced'] or row['seconds']}")
        if row.get("traceback"):
            print("    " + row["traceback"].replace("\n", "\n    "))


if __name__ == "__main__":
    main()
