"""Build load time: opening a build, loading every domain (tools, generated env module) and reading every split.

    python benchmarks/load_bench.py [--build BUILD] [--repeat 5] [--json]

Each repeat starts from a cold runtime cache (the per-path Build cache is cleared, generated modules are
re-imported), so the figure is what a fresh process pays before its first reset. Wall and CPU time are both
printed: on a shared machine wall time alone says little.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402


def load_once(build_dir: Path) -> int:
    """Open the build cold and touch everything an env needs; returns the number of tasks read."""
    from medgym.runtime import build as runtime_build

    runtime_build._open_cached.cache_clear()
    opened = runtime_build.Build.open(build_dir)
    tasks = 0
    for name in opened.domain_names:
        domain = opened.domain(name)
        tasks += sum(len(domain.tasks(split)) for split in runtime_build.SPLITS)
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=None, help="default: the shipped specs' build")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from medgym.shipped import ensure_build

    build = ensure_build(args.build)
    load_once(build)  # imports (pydantic, fastjsonschema, the runtime) outside the measurement
    walls, cpus, tasks = [], [], 0
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        tasks = load_once(build)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    figures = {"build": str(build), "tasks": tasks, "repeat": args.repeat,
               "load_wall_s_median": statistics.median(walls), "load_cpu_s_median": statistics.median(cpus),
               "context": context()}
    if not args.json:
        print(f"build {build}: {tasks} tasks; load median wall {figures['load_wall_s_median'] * 1000:.1f} ms, "
              f"cpu {figures['load_cpu_s_median'] * 1000:.1f} ms over {args.repeat} repeats")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
