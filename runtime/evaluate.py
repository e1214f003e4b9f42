"""The evaluation runner: play agents on compiled tasks, write one JSONL line per episode, summarise.

Also the compile gate (`gate_build`): every task's reference solution, played by the oracle through the real
env, must reach the task's threshold, and every adversarial probe must stay under the ceiling its domain
declares (probes are tuned on the train split and scored on the held-out val and test tasks).
"""
from __future__ import annotations

import json
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Iterable

from medgym.dsl.build import FamilyCard, Task
from medgym.dsl.errors import Position, SpecError
from medgym.runtime.agents import PROBES, OracleAgent, make_agent
from medgym.runtime.agents.tuning import tuning
from medgym.runtime.build import SPLITS, Build
from medgym.runtime.env import MedEnv, make_env
from medgym.runtime.rewards import accuracy

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
        "task_id": task.task_id, "domain": env.domain.name, "family": task.family,
        "split": task.split, "seed": task.seed, "agent": agent_name or agent.name,
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
        ids = [t.task_id for s in ([split] if split else SPLITS) for t in domain.tasks(s)]
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


HELD_OUT = ("val", "test")


def gate_build(build_dir: Path, domains: Iterable[str] | None = None) -> list[SpecError]:
    """The compile gate: located errors for reference solutions below their thresholds and probes above their
    ceilings (over `domains`, default all)."""
    build = Build.open(build_dir)
    errors = []
    for name in domains or build.domain_names:
        env = make_env(build_dir, name)
        oracle = {task.task_id: run_episode(env, OracleAgent(), task.task_id, keep_transcript=False)
                  for split in SPLITS for task in env.domain.tasks(split)}
        errors += _reference_errors(env.domain, oracle)
        errors += [e for e in (_probe_error(env.domain, row) for row in probe_table(env, oracle).values()) if e]
    return errors


def _reference_errors(domain, oracle: dict[str, dict]) -> list[SpecError]:
    failures = defaultdict(list)
    for task_id, record in oracle.items():
        task = domain.task(task_id)
        if record["reward"] < task.threshold:
            failures[task.family].append((task, record))
    return [_gate_error(domain.spec.families.get(family), found) for family, found in failures.items()]


def probe_table(env: MedEnv, oracle: dict[str, dict] | None = None, probes=PROBES,
                splits=HELD_OUT) -> dict[str, dict]:
    """Each probe's mean reward on the domain's held-out tasks against its ceiling: {probe: row}, each row
    with mean, ceiling (absolute), ok, the reference's mean and the families where the probe does best."""
    tasks = [task for split in splits for task in env.domain.tasks(split)]
    if oracle is None:
        oracle = {t.task_id: run_episode(env, OracleAgent(), t.task_id, keep_transcript=False) for t in tasks}
    reference = _mean([oracle[t.task_id]["reward"] for t in tasks])
    base_rate = _mean([exact_share(env.domain, t) for t in tasks])
    ceilings = env.domain.spec.probes
    table = {}
    for probe in probes:
        by_family = defaultdict(list)
        for task in tasks:
            record = run_episode(env, make_agent(probe), task.task_id, probe, keep_transcript=False)
            by_family[task.family].append(record["reward"])
        rewards = [r for values in by_family.values() for r in values]
        declared = ceilings[probe].ceiling if probe in ceilings else 0.25
        if not isinstance(declared, float):  # below_reference: relative to the reference solution's mean
            declared = declared.model_dump()
        limit = reference - declared["below_reference"] if isinstance(declared, dict) else float(declared)
        mean = _mean(rewards)
        best = sorted(((round(_mean(v), 3), f) for f, v in by_family.items()), reverse=True)[:3]
        table[probe] = {"probe": probe, "domain": env.domain.name, "episodes": len(rewards), "mean": mean,
                        "ceiling": round(limit, 4), "declared": declared, "ok": mean <= limit + 1e-9,
                        "reference": reference, "base_rate": base_rate,
                        "best_families": [{"family": f, "mean": m} for m, f in best]}
    return table


def exact_share(domain, task: Task) -> float:
    """1 when the domain's most common train answer is right in every field of this task: the share of tasks
    a constant answer gets right, the floor of what any reward monotone in correctness pays a blind policy."""
    answer = tuning(domain).answer
    fields = task.rubric.accuracy
    return float(bool(fields) and accuracy(fields, answer, task.truth) >= 1.0 - 1e-9)


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _probe_error(domain, row: dict) -> SpecError | None:
    if row["ok"]:
        return None
    meta = domain.spec.probes.get(row["probe"])
    where = Position(domain.spec.file, meta.line if meta else 0, meta.col if meta else 0)
    declared = row["declared"]
    bound = (f"{declared['below_reference']} below the reference solution's {row['reference']:.3f}"
             if isinstance(declared, dict) else f"{declared}")
    families = ", ".join(f"{b['family']} {b['mean']:.2f}" for b in row["best_families"])
    message = (f"probe '{row['probe']}' scores {row['mean']:.3f} on the {row['episodes']} held-out tasks, above its "
               f"ceiling ({bound}): a policy that never reasons about the patient earns this reward "
               f"(best families: {families})")
    return SpecError(message, where, f"see `medgym eval --agent probes --domain {domain.name}`; vary the answers "
                                     "the families ask for, tighten the rubric, or declare the ceiling under "
                                     "`probes:` with the reason a constant answer earns it")


def _gate_error(family: FamilyCard | None, found: list) -> SpecError:
    task, record = min(found, key=lambda item: item[1]["reward"])
    low = {k: v for k, v in record["components"].items() if v < 1.0}
    why = ", ".join(f"{k} {v:.2f}" for k, v in low.items())
    if record["violations"]:
        why += f"; safety rules violated: {', '.join(record['violations'])}"
    if record.get("reward_details", {}).get("predicate_errors"):
        why += f"; predicate errors: {'; '.join(record['reward_details']['predicate_errors'][:3])}"
    message = (f"the reference solution scores {record['reward']:.3f} < {task.threshold} on "
               f"{len(found)} task(s), e.g. {task.task_id} ({why})")
    return SpecError(message, Position(family.file if family else "<build>"),
                     "play it with `medgym run --task " + task.task_id + " --agent oracle`")
