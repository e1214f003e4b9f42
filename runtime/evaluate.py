"""The evaluation runner: play agents on compiled tasks, write one JSONL line per episode, summarise.

Also the compile gate's `play_reference`: every task's reference solution, played by the oracle through the
real env, must reach the task's threshold.
"""
from __future__ import annotations

import json
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Iterable

from medgym.dsl.errors import Position, SpecError
from medgym.runtime.agents import OracleAgent, make_agent
from medgym.runtime.build import SPLITS, Build
from medgym.runtime.env import MedEnv, make_env

Progress = Callable[[int, int], None]


def run_episode(env: MedEnv, agent, task_id: str, agent_name: str | None = None,
                keep_transcript: bool = True) -> dict:
    """Play one task to the end; returns the episode record written to the JSONL file."""
    observation, info = env.reset(options={"task_id": task_id})
    agent.start(env, observation, info)
    done, reward, last = False, 0.0, {}
    while not done:
        observation, reward, terminated, truncated, last = env.step(agent.act(observation, info))
        info = last
        done = terminated or truncated
    task = env.episode.task
    record = {
        "task_id": task["task_id"], "domain": env.domain.name, "family": task.get("family"),
        "split": task.get("split"), "seed": task.get("seed"), "agent": agent_name or agent.name,
        **env.summary(), "reward": reward, "components": last.get("reward_components", {}),
        "violations": [v["id"] for v in last.get("safety_violations", [])], "answer": env.episode.answer,
    }
    if last.get("reward_details"):
        record["reward_details"] = last["reward_details"]
    if keep_transcript:
        record["transcript"] = env.transcript
    return record


def select_tasks(build: Build, domains: Iterable[str] | None, split: str | None, limit: int | None) -> list[tuple[str, str]]:
    """(domain, task_id) pairs in file order; `limit` applies per domain; split None means all splits."""
    chosen = []
    for name in domains or build.domain_names:
        domain = build.domain(name)
        ids = [t["task_id"] for s in ([split] if split else SPLITS) for t in domain.tasks(s)]
        chosen += [(name, task_id) for task_id in ids[:limit]]
    return chosen


def evaluate(build_dir: Path, agent_name: str, *, domains: list[str] | None = None, split: str | None = "test",
             limit: int | None = None, out: Path | None = None, progress: Progress | None = None,
             agent_options: dict | None = None) -> dict:
    """Run `agent_name` over the selected tasks; write episodes to `out` (JSONL) and return the summary."""
    build = Build.open(build_dir)
    tasks = select_tasks(build, domains, split, limit)
    envs: dict[str, MedEnv] = {}
    records = []
    sink = open(out, "w", encoding="utf-8") if out else nullcontext()
    with sink as lines:
        for done, (domain, task_id) in enumerate(tasks, 1):
            if domain not in envs:
                envs[domain] = make_env(build_dir, domain)
            record = run_episode(envs[domain], make_agent(agent_name, **(agent_options or {})), task_id, agent_name)
            if lines is not None:
                lines.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            record.pop("transcript", None)
            records.append(record)
            if progress:
                progress(done, len(tasks))
    return summarise(records, agent_name)


def summarise(records: list[dict], agent_name: str = "") -> dict:
    by_domain = defaultdict(list)
    for record in records:
        by_domain[record["domain"]].append(record)
    summary = _means(records)
    summary["agent"] = agent_name
    summary["per_domain"] = {name: _means(group) for name, group in sorted(by_domain.items())}
    return summary


def _means(records: list[dict]) -> dict:
    n = len(records)
    names = sorted({k for r in records for k in r["components"]})
    mean = lambda values: round(sum(values) / len(values), 4) if values else 0.0  # noqa: E731
    return {
        "episodes": n,
        "mean_reward": mean([r["reward"] for r in records]),
        "min_reward": round(min((r["reward"] for r in records), default=0.0), 4),
        "components": {k: mean([r["components"][k] for r in records if k in r["components"]]) for k in names},
        "submitted": mean([float(r["submitted"]) for r in records]),
        "mean_turns": mean([r["turns"] for r in records]),
        "mean_tool_calls": mean([r["tool_calls"] for r in records]),
        "invalid_calls": sum(r["invalid_calls"] for r in records),
    }


def play_reference(build_dir: Path) -> list[SpecError]:
    """The compile gate: one located error per family whose reference solution misses its threshold."""
    build = Build.open(build_dir)
    errors = []
    for name in build.domain_names:
        domain = build.domain(name)
        env = make_env(build_dir, name)
        failures = defaultdict(list)
        for split in SPLITS:
            for task in domain.tasks(split):
                record = run_episode(env, OracleAgent(), task["task_id"], keep_transcript=False)
                if record["reward"] < task.get("threshold", 0.95):
                    failures[task["family"]].append((task, record))
        errors += [_gate_error(domain.data["families"].get(family, {}), found) for family, found in failures.items()]
    return errors


def _gate_error(family: dict, found: list) -> SpecError:
    task, record = min(found, key=lambda item: item[1]["reward"])
    low = {k: v for k, v in record["components"].items() if v < 1.0}
    why = ", ".join(f"{k} {v:.2f}" for k, v in low.items())
    if record["violations"]:
        why += f"; safety rules violated: {', '.join(record['violations'])}"
    if record.get("reward_details", {}).get("predicate_errors"):
        why += f"; predicate errors: {'; '.join(record['reward_details']['predicate_errors'][:3])}"
    message = (f"the reference solution scores {record['reward']:.3f} < {task.get('threshold', 0.95)} on "
               f"{len(found)} task(s), e.g. {task['task_id']} ({why})")
    return SpecError(message, Position(family.get("file", "<build>")),
                     "play it with `medgym run --task " + task["task_id"] + " --agent oracle`")
