"""Compile time of a spec tree: cold, warm, after editing one family, and `medgym validate` of that file.

    python benchmarks/compile_bench.py [SPECS] [--repeat 3] [--no-gate] [--generated TASKS] [--no-cli] [--json]

Every figure is taken on a copy of the specs in a temporary folder (the script edits that copy, never the
repo), with its own cache folder:

- cold: no cache, no previous build (`--no-cache`), the median of --repeat runs, wall and CPU;
- cold, filling the cache: the same with an empty per-family cache (what a first `medgym compile` costs);
- warm, no change: the build is up to date (the whole-tree hash matches; nothing is parsed);
- warm, forced: `--force` with the cache full: every family comes from the cache;
- edit one family: a sentence is added to one family's ticket, then compile (that family is recompiled
  and re-gated, every other one comes from the cache);
- edit one family's count: its `count:` goes up by one (new cases: when they move the most common train
  answers, the domain's probes are tuned anew and every probe episode of that domain is replayed);
- validate one file: the family is edited again and `medgym validate FILE` checks it;
- the same two through the CLI in a fresh process (`--no-cli` skips them): what a user or a pre-commit hook
  waits for, interpreter start-up and imports included.

Targets on the 2-core reference machine for the shipped specs: cold <= 5 s; edit one family <= 0.5 s;
validate one file <= 1 s. `--generated 10000` benchmarks a generated set instead: the shipped specs plus
renamed, reseeded copies of every family (scale_specs.py). Wall and CPU time (user + sys of this process;
of the child for the CLI figures) are both printed with the load average: on a shared machine wall time
alone says little.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402

from medgym.compiler.pipeline import check_specs, compile_specs  # noqa: E402

_COUNT = re.compile(r"^count:\s*(\d+)\s*$", re.M)
_TICKET = re.compile(r"^ticket:[ \t]*[>|][-+]?[ \t]*\n[ \t]+\S[^\n]*", re.M)  # up to the first text line's end


def timed(call) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of `call()`."""
    started, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - started, time.process_time() - cpu, result


def timed_cli(args: list[str], cache: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, exit status) of `medgym ARGS` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from medgym.cli import main; main()", *args],
                          env={**os.environ, "MEDGYM_CACHE_DIR": str(cache)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.returncode


def edited_family(specs: Path) -> Path:
    """The family file the benchmark edits: the first one with a `count:` and a block-scalar ticket."""
    return next(p for p in sorted(specs.glob("domains/*/tasks/*.yaml"))
                if _COUNT.search(p.read_text(encoding="utf-8")) and _TICKET.search(p.read_text(encoding="utf-8")))


def bump_count(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(_COUNT.sub(lambda m: f"count: {int(m.group(1)) + 1}", text, count=1), encoding="utf-8")


_EDITS = [0]


def edit_ticket(path: Path) -> None:
    """Add a sentence to the ticket's first line: new task texts, the same cases and truths."""
    _EDITS[0] += 1
    text = path.read_text(encoding="utf-8")
    path.write_text(_TICKET.sub(lambda m: f"{m.group(0)} Seen on visit {_EDITS[0]}.", text, count=1), encoding="utf-8")


def measure(specs: Path, work: Path, gate, repeat: int, cli: bool) -> dict:
    cache = work / "cache" / "compile"
    out = work / "build"
    figures: dict = {}
    cold = [timed(lambda: compile_specs(specs, work / "cold", force=True, gate=gate)) for _ in range(repeat)]
    figures["counts"] = cold[0][2].manifest["counts"]
    figures["cold_s_median"] = statistics.median(w for w, _, _ in cold)
    figures["cold_s_min"] = min(w for w, _, _ in cold)
    figures["cold_cpu_s_median"] = statistics.median(c for _, c, _ in cold)
    wall, cpu, _ = timed(lambda: compile_specs(specs, out, gate=gate, cache=cache))
    figures["cold_filling_cache_s"], figures["cold_filling_cache_cpu_s"] = wall, cpu
    wall, cpu, result = timed(lambda: compile_specs(specs, out, gate=gate, cache=cache))
    assert result.cached, "an unchanged tree should reuse the build"
    figures["warm_unchanged_s"] = wall
    wall, cpu, result = timed(lambda: compile_specs(specs, out, gate=gate, cache=cache, force=True))
    figures["warm_forced_s"], figures["warm_forced_cpu_s"] = wall, cpu
    family = edited_family(specs)
    figures["edited_family"] = str(family.relative_to(specs))
    edit_ticket(family)
    wall, cpu, result = timed(lambda: compile_specs(specs, out, gate=gate, cache=cache))
    figures["edit_one_family_s"], figures["edit_one_family_cpu_s"] = wall, cpu
    figures["edit_one_family_stages"] = result.stages.get("families", {})
    bump_count(family)  # new cases: the domain's probes may tune differently, and then all replay
    wall, cpu, result = timed(lambda: compile_specs(specs, out, gate=gate, cache=cache))
    figures["edit_count_s"], figures["edit_count_cpu_s"] = wall, cpu
    edit_ticket(family)
    wall, cpu, errors = timed(lambda: check_specs(specs, gate=gate, cache=cache, only=[family]))
    assert errors == [], errors[:3]
    figures["validate_one_file_s"], figures["validate_one_file_cpu_s"] = wall, cpu
    if cli:
        gate_flag = [] if gate else ["--no-gate"]
        edit_ticket(family)
        wall, cpu, code = timed_cli(["compile", str(specs), "--out", str(out), *gate_flag], work / "cache")
        figures["cli_edit_one_family_s"], figures["cli_edit_one_family_cpu_s"] = wall, cpu
        edit_ticket(family)
        wall, cpu, code2 = timed_cli(["validate", str(family), *gate_flag], work / "cache")
        figures["cli_validate_one_file_s"], figures["cli_validate_one_file_cpu_s"] = wall, cpu
        assert code == code2 == 0, (code, code2)
        wall, cpu, _ = timed_cli(["--help"], work / "cache")
        figures["cli_start_s"], figures["cli_start_cpu_s"] = wall, cpu
    return figures


def main() -> None:
    from medgym.shipped import shipped_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="?", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="cold compiles to take the median of")
    parser.add_argument("--no-gate", action="store_true", help="skip playing the reference solutions")
    parser.add_argument("--generated", type=int, metavar="TASKS", default=None,
                        help="benchmark a generated set of at least TASKS tasks (copies of the shipped families)")
    parser.add_argument("--no-cli", action="store_true", help="skip the figures taken through the CLI")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from medgym.gate import compile_gate

    gate = None if args.no_gate else compile_gate
    with tempfile.TemporaryDirectory(prefix="medgym-compile-bench-") as tmp:
        work = Path(tmp)
        specs = work / "specs"
        if args.generated:
            from scale_specs import scaled_specs

            scaled_specs(args.specs or shipped_specs(), specs, args.generated)
        else:
            shutil.copytree(args.specs or shipped_specs(), specs, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        load_before = os.getloadavg()
        figures = measure(specs, work, gate, args.repeat, not args.no_cli)
    figures = {"specs": str(args.specs or shipped_specs()), "generated": args.generated, "gate": gate is not None,
               **figures, "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "context": context()}
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"specs: {figures['specs']}{' + generated copies' if args.generated else ''}  ({figures['counts']})"
          f"  gate: {'on' if figures['gate'] else 'off'}  load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    rows = [("cold (no cache)", "cold_s_median", "cold_cpu_s_median", "<= 5 s"),
            ("cold, filling the cache", "cold_filling_cache_s", "cold_filling_cache_cpu_s", ""),
            ("warm, no change", "warm_unchanged_s", None, ""),
            ("warm, forced (all cached)", "warm_forced_s", "warm_forced_cpu_s", ""),
            ("edit one family's ticket", "edit_one_family_s", "edit_one_family_cpu_s", "<= 0.5 s"),
            ("edit one family's count", "edit_count_s", "edit_count_cpu_s", ""),
            ("validate one file", "validate_one_file_s", "validate_one_file_cpu_s", "<= 1 s"),
            ("CLI: edit one family", "cli_edit_one_family_s", "cli_edit_one_family_cpu_s", "<= 0.5 s"),
            ("CLI: validate one file", "cli_validate_one_file_s", "cli_validate_one_file_cpu_s", "<= 1 s"),
            ("CLI: start (--help)", "cli_start_s", "cli_start_cpu_s", "")]
    for label, wall, cpu, target in rows:
        if wall in figures:
            cpu_text = f"cpu {figures[cpu]:7.3f} s" if cpu else " " * 15
            print(f"{label:28s} {figures[wall]:8.3f} s   {cpu_text}   {target}")
    print(f"edited: {figures['edited_family']} -> {figures['edit_one_family_stages']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
