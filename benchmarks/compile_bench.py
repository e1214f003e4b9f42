"""Compile time of a spec tree: cold (no previous build) and cached (unchanged specs), plus validate.

    python benchmarks/compile_bench.py [SPECS] [--repeat 5] [--no-gate] [--generated TASKS] [--json]

Targets on the 2-core reference machine for the shipped specs: cold <= 12 s with the gate (every reference
solution and ten probes), <= 5 s without (--no-gate); cached <= 0.5 s. `--generated 10000` benchmarks a
generated set instead: the shipped specs plus renamed, reseeded copies of every family (scale_specs.py).
Wall and CPU time (user + sys of this process) are both printed; on a shared machine wall time alone says
little.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402

from medgym.compiler.pipeline import check_specs, compile_specs  # noqa: E402


def time_cold(specs: Path, gate) -> tuple[float, dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        result = compile_specs(specs, Path(tmp) / "build", force=True, gate=gate)
        return time.perf_counter() - started, result.manifest["counts"], time.process_time() - cpu


def time_cached(specs: Path, out: Path) -> float:
    started = time.perf_counter()
    result = compile_specs(specs, out)
    elapsed = time.perf_counter() - started
    assert result.cached, "the second compile should reuse the build"
    return elapsed


def main() -> None:
    from medgym.shipped import shipped_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="?", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-gate", action="store_true", help="skip playing the reference solutions")
    parser.add_argument("--generated", type=int, metavar="TASKS", default=None,
                        help="benchmark a generated set of at least TASKS tasks (copies of the shipped families)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    specs = args.specs or shipped_specs()
    if args.generated:
        from scale_specs import scaled_specs

        scratch = tempfile.TemporaryDirectory(prefix="medgym-scaled-")
        specs = Path(scratch.name) / "specs"
        scaled_specs(args.specs or shipped_specs(), specs, args.generated)
    from medgym.gate import compile_gate

    gate = None if args.no_gate else compile_gate
    cold = [time_cold(specs, gate) for _ in range(args.repeat)]
    counts = cold[0][1]
    cpu = statistics.median(c for _, _, c in cold)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build"
        compile_specs(specs, out, gate=gate)
        cached = [time_cached(specs, out) for _ in range(args.repeat)]
    started = time.perf_counter()
    check_specs(specs, gate=gate)
    validate = time.perf_counter() - started
    figures = {"specs": str(specs), "counts": counts, "gate": gate is not None,
               "cold_s_median": statistics.median(t for t, _, _ in cold), "cold_s_min": min(t for t, _, _ in cold),
               "cold_cpu_s_median": cpu,
               "cached_s_median": statistics.median(cached), "validate_s": validate, "context": context()}
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"specs: {specs}  ({counts})")
    target = 12 if figures["gate"] else 5
    print(f"cold compile   median {figures['cold_s_median']:.3f} s   min {figures['cold_s_min']:.3f} s   "
          f"cpu {cpu:.3f} s   (target <= {target} s)")
    print(f"cached compile median {figures['cached_s_median'] * 1000:.1f} ms                (target <= 500 ms)")
    print(f"validate       {validate:.3f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
