"""Compare the materialised tasks of two builds, task by task, and list every difference.

    python benchmarks/task_diff.py BUILD_A BUILD_B [--json]

Not a speed benchmark: the proof that a spec rewrite changed no task. Each task (matched by task id) is
compared field by field: ticket, history, case, truth, vars, reference, rubric (accuracy, process, each
safety/coherence/assertion rule keyed by id, with the generated code of its predicate), split and threshold.
Order inside a rubric rule list or a process list (require, before_answer, order) is reported separately
("order only"): the reward engine scores each rule and each process item on its own (coherence is a mean,
process a count of satisfied items), so a reordering changes no score; it is listed so that a reader can
check that claim.
Exit status 0 when the builds hold the same tasks, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

RULE_LISTS = ("safety", "coherence", "assertions")
PROCESS_LISTS = ("require", "before_answer", "order")  # scored item by item: their order changes no score
_DEF = re.compile(r"^def (\w+)\(v\):\n((?:    .*\n?)+)", re.M)


def load_tasks(build: Path) -> dict[str, dict]:
    tasks = {}
    for path in sorted(build.glob("*/tasks/*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                task = json.loads(line)
                tasks[task["task_id"]] = task
    return tasks


def load_predicates(build: Path) -> dict[str, str]:
    """Predicate name -> its generated body, from every domain's env.py (rubric rules point at these)."""
    out = {}
    for path in sorted(build.glob("*/env.py")):
        for name, body in _DEF.findall(path.read_text()):
            out[name] = body.strip()
    return out


def _rule_view(rule: dict, predicates: dict[str, str]) -> dict:
    """A rule with the code of its predicates instead of only their names."""
    view = dict(rule)
    for key in ("predicate", "when"):
        if view.get(key):
            view[key + "_code"] = predicates.get(view[key], "<missing>")
    return view


def task_view(task: dict, predicates: dict[str, str]) -> dict:
    """What the comparison looks at: the task with each rubric rule list turned into {id: rule}."""
    view = {k: v for k, v in task.items() if k != "rubric"}
    rubric = dict(task.get("rubric", {}))
    for key in RULE_LISTS:
        rubric[key] = {r["id"]: _rule_view(r, predicates) for r in rubric.get(key, [])}
    process = dict(rubric.get("process", {}))
    for key in PROCESS_LISTS:
        process[key] = sorted(process.get(key) or [], key=lambda item: json.dumps(item, sort_keys=True))
    rubric["process"] = process
    view["rubric"] = rubric
    return view


def differences(a, b, path: str = "") -> list[str]:
    """Every place where two JSON values differ, as 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            here = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{here}: only in the second build")
            elif key not in b:
                out.append(f"{here}: only in the first build")
            else:
                out.extend(differences(a[key], b[key], here))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {_short(a)} != {_short(b)}"]


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def order_changes(a: dict, b: dict) -> list[str]:
    out = []
    for key in RULE_LISTS:
        ids_a = [r["id"] for r in a.get("rubric", {}).get(key, [])]
        ids_b = [r["id"] for r in b.get("rubric", {}).get(key, [])]
        if ids_a != ids_b and sorted(ids_a) == sorted(ids_b):
            out.append(f"rubric.{key}: order {ids_a} -> {ids_b}")
    for key in PROCESS_LISTS:
        items_a = a.get("rubric", {}).get("process", {}).get(key) or []
        items_b = b.get("rubric", {}).get("process", {}).get(key) or []
        if items_a != items_b:
            out.append(f"rubric.process.{key}: order {items_a} -> {items_b}")
    return out


def compare(first: Path, second: Path) -> dict:
    tasks_a, tasks_b = load_tasks(first), load_tasks(second)
    pred_a, pred_b = load_predicates(first), load_predicates(second)
    report = {"tasks_first": len(tasks_a), "tasks_second": len(tasks_b),
              "only_first": sorted(set(tasks_a) - set(tasks_b)), "only_second": sorted(set(tasks_b) - set(tasks_a)),
              "different": {}, "order_only": {}}
    for task_id in sorted(set(tasks_a) & set(tasks_b)):
        a, b = tasks_a[task_id], tasks_b[task_id]
        found = differences(task_view(a, pred_a), task_view(b, pred_b))
        if found:
            report["different"][task_id] = found
        moved = order_changes(a, b)
        if moved:
            report["order_only"][task_id] = moved
    report["identical"] = not (report["only_first"] or report["only_second"] or report["different"])
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--limit", type=int, default=20, help="differences shown per task")
    args = parser.parse_args(argv)
    report = compare(args.first, args.second)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0 if report["identical"] else 1
    print(f"tasks: {report['tasks_first']} in {args.first}, {report['tasks_second']} in {args.second}")
    for key, label in (("only_first", "only in the first"), ("only_second", "only in the second")):
        if report[key]:
            print(f"{len(report[key])} tasks {label}: {', '.join(report[key][:10])}")
    for task_id, found in report["different"].items():
        print(f"{task_id}: {len(found)} differences")
        for line in found[:args.limit]:
            print(f"  {line}")
    if report["order_only"]:
        families = sorted({t.rsplit('/', 1)[0] for t in report["order_only"]})
        print(f"rule order only (no score changes) in {len(report['order_only'])} tasks of {', '.join(families)}")
    print("identical" if report["identical"] else f"{len(report['different'])} tasks differ")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
