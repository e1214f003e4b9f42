"""Write a large spec set for compile benchmarks: the shipped specs plus N renamed, reseeded copies of every
task family, so the set holds at least TASKS tasks.

    python benchmarks/scale_specs.py OUT [--tasks 10000]

Each copy of `tasks/<family>.yaml` is `tasks/<family>_x<i>.yaml` with `family: <family>_x<i>` and its seed
moved by a prime step, so its cases differ; everything else (domain, tools, instruments, tables, static cases)
is the shipped file. The copies compile exactly as their originals do.
"""
from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
from pathlib import Path

_FAMILY = re.compile(r"^family:\s*(\S+)\s*$", re.M)
_SEED = re.compile(r"^seed:\s*(\d+)\s*$", re.M)
_COUNT = re.compile(r"^count:\s*(\d+)\s*$", re.M)
SEED_STEP = 7919


def family_files(specs: Path) -> list[Path]:
    return sorted(p for p in specs.glob("domains/*/tasks/*.yaml") if _FAMILY.search(p.read_text(encoding="utf-8")))


def tasks_per_copy(files: list[Path]) -> int:
    return sum(int(m.group(1)) for p in files for m in [_COUNT.search(p.read_text(encoding="utf-8"))] if m)


def write_copy(path: Path, index: int) -> Path:
    text = path.read_text(encoding="utf-8")
    name = _FAMILY.search(text).group(1)
    text = _FAMILY.sub(f"family: {name}_x{index}", text, count=1)
    text = _SEED.sub(lambda m: f"seed: {int(m.group(1)) + SEED_STEP * index}", text, count=1)
    out = path.with_name(f"{path.stem}_x{index}.yaml")
    out.write_text(text, encoding="utf-8")
    return out


def scaled_specs(specs: Path, out: Path, tasks: int) -> dict:
    """Copy `specs` to `out` and add family copies until the families hold >= `tasks` tasks."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(specs, out, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    files = family_files(out)
    per_copy = tasks_per_copy(files)
    copies = max(0, math.ceil(tasks / per_copy) - 1) if per_copy else 0
    for index in range(1, copies + 1):
        for path in files:
            write_copy(path, index)
    return {"families": len(files) * (copies + 1), "family_tasks": per_copy * (copies + 1), "copies": copies}


def main() -> None:
    from medgym.runtime.paths import shipped_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--specs", type=Path, default=None, help="default: the shipped specs")
    args = parser.parse_args()
    made = scaled_specs(args.specs or shipped_specs(), args.out, args.tasks)
    print(f"{args.out}: {made['families']} families, {made['family_tasks']} family tasks", file=sys.stderr)


if __name__ == "__main__":
    main()
