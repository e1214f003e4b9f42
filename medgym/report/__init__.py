"""Reading evaluation runs for people: the HTML report, the trajectory viewer and the paired comparison.

`medgym report`, `medgym view` and `medgym compare` call these; each page is one self-contained HTML file
(inline CSS, SVG and script, no network) rendered from jinja2 templates in `templates/`.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import jinja2

from medgym.dsl.components import COMPONENT_NAMES
from medgym.report import charts
from medgym.runtime.evaluate import summarise
from medgym.runtime.runlog import read_episodes
from medgym.runtime.trials import group_by_task, paired_bootstrap

__all__ = ["Run", "compare", "load_run", "render_report", "render_viewer"]

SEVERITIES = ("minor", "moderate", "major", "critical")
WORST = 10


class Run:
    """One run file: its episodes, its name in tables and the summary `medgym eval` printed for it."""

    def __init__(self, path: Path, records: list[dict]):
        self.path, self.records = Path(path), records
        meta = records[0].get("run") or {}
        self.meta = meta
        self.threshold = float(meta.get("success_threshold", 0.5))
        agent = str(records[0].get("agent", "?"))
        self.name = self.path.stem if agent in self.path.stem else f"{agent} ({self.path.stem})"
        self.summary = summarise(records, records[0].get("agent", ""), self.threshold, meta)

    def task_means(self, domain: str | None = None) -> dict[str, float]:
        groups = group_by_task(r for r in self.records if domain is None or r["domain"] == domain)
        return {task: sum(r["reward"] for r in group) / len(group) for task, group in groups.items()}


def load_run(path: Path) -> Run:
    return Run(path, read_episodes(path))


def compare(a: Run, b: Run) -> dict:
    """The paired bootstrap of B - A on the tasks both ran, overall and per domain, with a note when the
    runs evaluated different builds (then a shared task id may not be the same task)."""
    domains = sorted({r["domain"] for r in a.records} & {r["domain"] for r in b.records})
    rows = {"all": paired_bootstrap(a.task_means(), b.task_means())}
    rows.update({d: paired_bootstrap(a.task_means(d), b.task_means(d)) for d in domains})
    notes = []
    if a.meta.get("spec_hash") != b.meta.get("spec_hash"):
        notes.append(f"the runs evaluated different builds (spec hash {str(a.meta.get('spec_hash'))[:12]} vs "
                     f"{str(b.meta.get('spec_hash'))[:12]}): a task id shared by both may not be the same task")
    only = len(set(a.task_means()) ^ set(b.task_means()))
    if only:
        notes.append(f"{only} task(s) ran in only one of the runs and are left out")
    return {"a": a.name, "b": b.name, "rows": rows, "notes": notes}


def render_report(runs: list[Run]) -> str:
    """The report page for one or more runs."""
    sections = [_run_section(run) for run in runs]
    comparisons = [compare(runs[0], other) for other in runs[1:]]
    curve = charts.lines({run.name: [(int(k), v) for k, v in run.summary["pass^k"].items()] for run in runs},
                         y_label="pass^k", title="pass^k over k")
    curve_at = charts.lines({run.name: [(int(k), v) for k, v in run.summary["pass@k"].items()] for run in runs},
                            y_label="pass@k", title="pass@k over k")
    return _template("report.html.j2").render(runs=runs, sections=sections, comparisons=comparisons,
                                              pass_hat_chart=curve, pass_at_chart=curve_at, severities=SEVERITIES)


def _run_section(run: Run) -> dict:
    records = run.records
    summary = run.summary
    present = {k for r in records for k in r["components"]}
    components = [name for name in COMPONENT_NAMES if name in present] + sorted(present - set(COMPONENT_NAMES))
    return {
        "summary": summary, "components": components,
        "component_chart": charts.bars(components, [summary["components"].get(k, 0.0) for k in components],
                                       top=1.0, title=f"component means, {run.name}"),
        "domain_chart": charts.bars(list(summary["per_domain"]),
                                    [d["mean_reward"] for d in summary["per_domain"].values()], top=1.0,
                                    title=f"mean reward per domain, {run.name}"),
        "safety": _safety(records), "tools": _tools(run), "worst": _worst(run),
    }


def _safety(records: list[dict]) -> dict:
    """Violations counted by category and severity, with the share of episodes that had each category."""
    table: dict[str, Counter] = defaultdict(Counter)
    episodes: Counter = Counter()
    for record in records:
        seen = set()
        for rule in record.get("rules_fired") or []:
            category = rule.get("category") or rule.get("id")
            table[category][rule.get("severity", "?")] += 1
            seen.add(category)
        episodes.update(seen)
    rows = [{"category": c, **{s: table[c][s] for s in SEVERITIES}, "total": sum(table[c].values()),
             "share": episodes[c] / len(records)} for c in sorted(table, key=lambda c: -sum(table[c].values()))]
    chart = charts.bars([r["category"] for r in rows], [r["share"] for r in rows], top=1.0, fmt="{:.0%}",
                        title="share of episodes with each violation category") if rows else ""
    return {"rows": rows, "chart": chart}


def _tools(run: Run) -> dict:
    used: Counter = Counter()
    invalid: Counter = Counter()
    per_episode = []
    for record in run.records:
        calls = record.get("calls") or []
        per_episode.append(record.get("tool_calls", len(calls)))
        for call in calls:
            used[call["name"]] += 1
            if not call.get("ok"):
                invalid[call["name"]] += 1
    known = sorted({t for tools in (run.meta.get("domain_tools") or {}).values() for t in tools})
    histogram = Counter(per_episode)
    top = used.most_common(12)
    return {
        "mean_calls": sum(per_episode) / len(per_episode) if per_episode else 0.0,
        "max_calls": max(per_episode, default=0),
        "invalid": sum(r.get("invalid_calls", 0) for r in run.records),
        "invalid_by_tool": invalid.most_common(8),
        "never_used": [t for t in known if t not in used],
        "chart": charts.bars([name for name, _ in top], [float(n) for _, n in top], fmt="{:.0f}",
                             title="most used tools (calls)") if top else "",
        "histogram": charts.bars([f"{n} calls" for n in sorted(histogram)],
                                 [float(histogram[n]) for n in sorted(histogram)], fmt="{:.0f}",
                                 title="episodes by number of tool calls") if histogram else "",
    }


def _worst(run: Run) -> list[dict]:
    groups = group_by_task(run.records)
    rows = []
    for task, group in groups.items():
        rewards = [r["reward"] for r in group]
        last = min(group, key=lambda r: r["reward"])
        rows.append({"task_id": task, "domain": last["domain"], "family": last.get("family"),
                     "mean": sum(rewards) / len(rewards), "trials": len(group),
                     "missed": last.get("process_missed") or [],
                     "fields": {k: v for k, v in (last.get("fields") or {}).items() if v < 1.0},
                     "violations": [v.get("id") for v in last.get("rules_fired") or []]})
    return sorted(rows, key=lambda r: (r["mean"], r["task_id"]))[:WORST]


def render_viewer(records: list[dict], source: str) -> str:
    """The trajectory viewer: every episode of a run, filterable, one at a time turn by turn."""
    episodes = [_viewer_episode(r) for r in records]
    data = json.dumps(episodes, ensure_ascii=False, default=str).replace("</", "<\\/")
    families = sorted({e["family"] or "" for e in episodes})
    domains = sorted({e["domain"] for e in episodes})
    return _template("viewer.html.j2").render(data=data, source=source, families=families, domains=domains,
                                              count=len(episodes))


def _viewer_episode(record: dict) -> dict:
    keep = ("task_id", "trial", "domain", "family", "split", "agent", "model", "reward", "components", "answer",
            "truth", "fields", "process_met", "process_missed", "rules_fired", "turns", "max_turns", "calls",
            "transcript", "sampling_seed", "submitted", "invalid_calls", "usage")
    episode = {k: record.get(k) for k in keep}
    given = record.get("input") or {}
    episode["input"] = {"prompt": given.get("prompt"), "sha256": given.get("sha256"), "tokens": given.get("tokens")}
    return episode


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("medgym.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _template(name: str) -> jinja2.Template:
    return _ENV.get_template(name)
