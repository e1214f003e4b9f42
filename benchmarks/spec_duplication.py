"""How much the spec files repeat themselves: family YAML lines and duplicated lines, per domain.

    python benchmarks/spec_duplication.py [SPECS] [--json]

Figures (per domain and over all domains):
- family lines: lines of `tasks/*.yaml` (abstract bases included) and of `cases/*.yaml`;
- duplication: of the lines longer than 25 characters (stripped) in the domain's spec files (tasks, cases,
  domain.yaml, defaults and the shared `lib/` files the specs use), the share whose text appears in three or
  more spec files. A line repeated within one file counts once per file; the shared library counts like any
  file, so moving a block into it is not free. `duplication_without_comments` leaves out YAML comment lines
  (such as the `# yaml-language-server: $schema=...` lines families carried before .vscode/settings.json). A line that names
  shared structure (`extends: cap_curb65`) counts like any other once three files hold it.
- layout-free size: lines depend on layout (a mapping written in flow style `{a: 1, b: 2}` is one line), so
  the family files are also measured as non-whitespace characters and as YAML nodes (mapping keys plus
  scalars), which only writing less changes.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import yaml

MIN_CHARS = 25
MIN_FILES = 3
SPEC_SUFFIXES = (".yaml", ".yml", ".j2")


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def family_files(domain: Path) -> list[Path]:
    return sorted(p for folder in ("tasks", "cases") for p in (domain / folder).glob("*.y*ml"))


def authored_files(root: Path, domain: Path) -> list[Path]:
    """The files an author of this domain's families writes or reads: families, domain card, shared library."""
    files = family_files(domain) + [p for p in (domain / "domain.yaml", domain / "defaults.yaml") if p.exists()]
    lib = root / "lib"
    if lib.is_dir():
        files += sorted(p for p in lib.rglob("*") if p.suffix in SPEC_SUFFIXES)
    return files


def duplication(files: list[Path], comments: bool = True) -> dict:
    where = defaultdict(set)
    for path in files:
        for line in _lines(path):
            if len(line) > MIN_CHARS and (comments or not line.startswith("#")):
                where[line].add(path)
    total = sum(len(paths) for paths in where.values())  # each distinct line counted once per file holding it
    repeated = sum(len(paths) for paths in where.values() if len(paths) >= MIN_FILES)
    return {"long_lines": total, "in_3_or_more_files": repeated,
            "percent": round(100 * repeated / total, 1) if total else 0.0}


def _nodes(value) -> int:
    if isinstance(value, dict):
        return sum(1 + _nodes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_nodes(v) for v in value)
    return 1


def layout_free(files: list[Path]) -> dict:
    texts = [p.read_text(encoding="utf-8") for p in files]
    return {"nonspace_chars": sum(len(re.sub(r"\s+", "", t)) for t in texts),
            "yaml_nodes": sum(_nodes(yaml.safe_load(t)) for t in texts)}


def measure(root: Path) -> dict:
    out = {"domains": {}}
    every = []
    for domain in sorted(p for p in (root / "domains").glob("*") if p.is_dir()):
        fams = family_files(domain)
        files = authored_files(root, domain)
        every += [f for f in files if f not in every]
        out["domains"][domain.name] = {
            "family_files": len(fams), "family_lines": sum(len(_lines(p)) for p in fams),
            "task_lines": sum(len(_lines(p)) for p in fams if p.parent.name == "tasks"), **layout_free(fams),
            "duplication": duplication(files), "duplication_without_comments": duplication(files, comments=False)}
    for key in ("family_lines", "nonspace_chars", "yaml_nodes"):
        out[key] = sum(d[key] for d in out["domains"].values())
    out["duplication"] = duplication(every)
    out["duplication_without_comments"] = duplication(every, comments=False)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="?", type=Path, default=Path("specs"))
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args(argv)
    figures = measure(args.specs)
    if not args.json:
        for name, d in figures["domains"].items():
            dup = d["duplication"]
            print(f"{name}: {d['family_lines']} family lines in {d['family_files']} files ({d['task_lines']} in tasks/); "
                  f"{dup['percent']}% of {dup['long_lines']} lines over {MIN_CHARS} characters appear in "
                  f"{MIN_FILES}+ spec files ({d['duplication_without_comments']['percent']}% without comment lines); "
                  f"{d['nonspace_chars']} non-whitespace characters, {d['yaml_nodes']} YAML nodes")
        dup = figures["duplication"]
        print(f"all: {figures['family_lines']} family lines, {figures['nonspace_chars']} non-whitespace characters, "
              f"{figures['yaml_nodes']} YAML nodes; {dup['percent']}% duplicated "
              f"({dup['in_3_or_more_files']} of {dup['long_lines']}; "
              f"{figures['duplication_without_comments']['percent']}% without comment lines)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
