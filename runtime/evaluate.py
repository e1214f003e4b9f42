"""The evaluation runner: play agents on compiled tasks, write one JSONL line per episode, summarise.

Also the compile gate (`gate_build`): every task's reference solution, played by the oracle through the real
env, must reach the task's threshold, and every adversarial probe must stay under the ceiling its domain
declares (probes are tuned on the train split and scored on the held-out val and test tasks).
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

from medgym.dsl.build import FamilyCard, Task
from medgym.dsl.errors import Position, SpecError
from medgym.runtime.agents import MODEL_AGENTS, PROBES, OracleAgent, make_agent
from medgym.runtime.agents.tuning import tuning
from medgym.runtime.build import SPLITS, Build
from medgym.runtime.env import MedEnv, make_env
from medgym.runtime.rewards import accuracy, field_scores, process_items
from medgym.runtime.runlog import RunLogError, RunWriter, read_run
from medgym.runtime.trials import reliability

Progress = Callable[[int, int], None]


def run_episode(env: MedEnv, agent, task_id: str, agent_name: str | None = None,
                keep_transcript: bool = True) -> dict:
    """Play one task to the end; returns the episode record written to the JSONL file (with
    `keep_transcript`, also what it was shown, its calls and the explanation of its reward)."""
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
        **env.summary(), "max_turns": env.max_turns, "reward": reward, "components": last.get("reward_components", {}),
        "violations": [v["id"] for v in last.get("safety_violations", [])], "answer": env.episode.answer,
    }
    if last.get("reward_details"):
        record["reward_details"] = last["reward_details"]
    if keep_transcript:  # the full record (the gate's thousands of episodes need only the reward)
        record.update(explain(env.domain, env.episode, last.get("safety_violations", [])))
        record["calls"] = [{"turn": c.turn, "name": c.name, "arguments": c.arguments, "ok": c.ok, "error": c.error}
                           for c in env.episode.calls]
        record["input"] = model_input(agent, observation=env.transcript)
        record["transcript"] = _seen_transcript(env.transcript, getattr(agent, "input", None))
    if getattr(agent, "usage", None):
        record["usage"] = dict(agent.usage)
    return record


def explain(domain, episode, violations: list[dict]) -> dict:
    """What an auditor needs beside the reward: the truth, each answer field's score, the process items met
    and missed, and the safety rules that fired (id, severity, category, message)."""
    rubric = episode.task.rubric
    fields = field_scores(rubric.accuracy, episode.answer, episode.task.truth)
    items = process_items(rubric.process, episode, domain)
    return {"truth": {k: episode.task.truth.get(k) for k in fields}, "fields": fields,
            "process_met": [name for name, met in items if met],
            "process_missed": [name for name, met in items if not met],
            "rules_fired": [dict(v) for v in violations]}


def model_input(agent, observation: list[dict]) -> dict:
    """The exact opening the agent was given: a model agent's rendered prompt (its `input`), else the env's
    system and user messages; with its sha256 so runs can be checked to have shown the same thing."""
    given = getattr(agent, "input", None)
    if given:
        return dict(given)
    text = "\n\n".join(m["content"] for m in observation[:2])
    return {"prompt": "env", "text": text, "sha256": sha256_text(text)}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _seen_transcript(transcript: list[dict], given: dict | None) -> list[dict]:
    """The env's transcript with the opening replaced by the messages the model was actually sent."""
    if given and given.get("messages"):
        return [dict(m) for m in given["messages"]] + transcript[2:]
    return transcript


def select_tasks(build: Build, domains: Iterable[str] | None, split: str | None, limit: int | None,
                 stratified: bool = False) -> list[tuple[str, str]]:
    """(domain, task_id) pairs; `limit` applies per domain, taking tasks in file order or, `stratified`,
    one family after another in turn (5 tasks then span 5 families); split None means all splits."""
    chosen = []
    for name in domains or build.domain_names:
        domain = build.domain(name)
        tasks = [t for s in ([split] if split else SPLITS) for t in domain.tasks(s)]
        if stratified:
            tasks = _round_robin(tasks)
        chosen += [(name, t.task_id) for t in tasks[:limit]]
    return chosen


def _round_robin(tasks: list[Task]) -> list[Task]:
    by_family: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_family[task.family].append(task)
    queues = list(by_family.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


@dataclass(frozen=True)
class RunSettings:
    """What makes two runs comparable: recorded on every result line and in the summary."""

    agent: str
    trials: int = 1
    seed: int = 0
    max_turns: int | None = None
    threshold: float = 0.5
    agent_options: dict = field(default_factory=dict)

    def meta(self, build: Build, tasks: list[tuple[str, str]]) -> dict:
        options = {k: v for k, v in self.agent_options.items() if k not in SECRET_OPTIONS}
        return {"spec_hash": build.manifest.spec_hash, "medgym_version": build.manifest.medgym_version,
                "runner_version": _version(), "agent": self.agent, "model": _model_id(self.agent, options),
                "sampling": {**options, "max_turns": self.max_turns}, "seed": self.seed, "trials": self.trials,
                "success_threshold": self.threshold, "tasks": len(tasks),
                "domain_tools": {name: sorted(build.domain(name).tools) for name in sorted({d for d, _ in tasks})},
                "tasks_sha256": sha256_text("\n".join(f"{d}/{t}" for d, t in tasks))}


SECRET_OPTIONS = ("api_key",)
COMPARED = ("spec_hash", "agent", "model", "sampling", "seed", "success_threshold")
"""Run fields a resumed run must share with the lines already written."""


def trial_seed(base: int, task_id: str, trial: int) -> int:
    """The agent's sampling seed for one trial: different for every task and trial, fixed by the base seed."""
    return int.from_bytes(hashlib.sha256(f"{base}|{task_id}|{trial}".encode()).digest()[:4], "big")


def evaluate(build_dir: Path, agent_name: str, *, domains: list[str] | None = None, split: str | None = "test",
             limit: int | None = None, out: Path | None = None, progress: Progress | None = None,
             agent_options: dict | None = None, trials: int = 1, concurrency: int = 1, seed: int = 0,
             max_turns: int | None = None, threshold: float = 0.5, resume: bool = False) -> dict:
    """Run `agent_name` `trials` times over the selected tasks, `concurrency` episodes at a time; append each
    episode to `out` (JSONL, resumable with `resume`) and return the summary."""
    build = Build.open(build_dir)
    tasks = select_tasks(build, domains, split, limit, stratified=True)
    settings = RunSettings(agent_name, trials, seed, max_turns, threshold, dict(agent_options or {}))
    meta = settings.meta(build, tasks)
    wanted = [(domain, task_id, trial) for trial in range(trials) for domain, task_id in tasks]
    kept = _resumable(out, meta, {(t, k) for _, t, k in wanted}) if resume and out else []
    done = {(r["task_id"], r["trial"]) for r in kept}
    todo = [item for item in wanted if (item[1], item[2]) not in done]
    records = [_light(r) for r in kept]
    writer = RunWriter(out, resume) if out else None
    try:
        counter = {"done": len(kept)}

        def finished(record: dict) -> None:
            if writer is not None:
                writer.write(record)
            records.append(_light(record))
            counter["done"] += 1
            if progress:
                progress(counter["done"], len(wanted))

        asyncio.run(_run_all(build_dir, settings, meta, todo, max(1, concurrency), finished))
    finally:
        if writer is not None:
            writer.close()
    return summarise(records, agent_name, threshold, meta)


def _resumable(out: Path, meta: dict, wanted: set) -> list[dict]:
    """The finished episodes of `out` this run would produce; an error if they came from a different run."""
    records, _ = read_run(out)
    for record in records:
        before = record.get("run") or {}
        differ = [k for k in COMPARED if before.get(k) != meta.get(k)]
        if differ:
            raise RunLogError(f"{out}: cannot resume: its episodes were run with a different "
                              f"{', '.join(differ)} ({'; '.join(f'{k}: {before.get(k)!r}' for k in differ)}); "
                              "write to a new --out file")
    return [r for r in records if (r["task_id"], r["trial"]) in wanted]


async def _run_all(build_dir: Path, settings: RunSettings, meta: dict, todo: list, concurrency: int,
                   finished: Callable[[dict], None]) -> None:
    """`concurrency` workers play episodes in threads (a model agent waits on its endpoint there); each result
    is written from the event loop, so lines never interleave. The first failure stops new episodes; those in
    flight finish and are kept, then it is raised (a resumed run continues from there)."""
    queue = list(reversed(todo))
    pool: dict[str, list[MedEnv]] = defaultdict(list)
    failures: list[BaseException] = []

    def play(domain: str, task_id: str, trial: int) -> dict:
        env = pool[domain].pop() if pool[domain] else make_env(build_dir, domain, max_turns=settings.max_turns)
        try:
            return play_trial(env, settings, meta, task_id, trial)
        finally:
            pool[domain].append(env)

    async def worker() -> None:
        while queue and not failures:
            domain, task_id, trial = queue.pop()
            try:
                record = await asyncio.to_thread(play, domain, task_id, trial)
            except Exception as exc:  # noqa: BLE001  (re-raised below, once the other workers stop)
                failures.append(exc)
                return
            finished(record)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise failures[0]


def play_trial(env: MedEnv, settings: RunSettings, meta: dict, task_id: str, trial: int) -> dict:
    """One trial of one task: the agent is built fresh with this trial's sampling seed."""
    sampling_seed = trial_seed(settings.seed, task_id, trial)
    options = dict(settings.agent_options)
    if settings.agent.split(":", 1)[0] in MODEL_AGENTS:
        options["seed"] = sampling_seed
    agent = make_agent(settings.agent, **options)
    record = run_episode(env, agent, task_id, settings.agent)
    record.update(trial=trial, sampling_seed=sampling_seed, run=meta)
    if getattr(agent, "model_id", None):
        record["model"] = agent.model_id
    return record


def _light(record: dict) -> dict:
    """What the summary needs of an episode (the transcript and input stay in the file)."""
    return {k: v for k, v in record.items() if k not in ("transcript", "input", "calls")}


def summarise(records: list[dict], agent_name: str = "", threshold: float = 0.5, meta: dict | None = None) -> dict:
    by_domain = defaultdict(list)
    for record in records:
        by_domain[record["domain"]].append(record)
    summary = _means(records, threshold)
    summary["agent"] = agent_name
    summary["success_threshold"] = threshold
    if meta is not None:
        summary["run"] = meta
    summary["per_domain"] = {name: _means(group, threshold) for name, group in sorted(by_domain.items())}
    return summary


def _means(records: list[dict], threshold: float = 0.5) -> dict:
    n = len(records)
    names = sorted({k for r in records for k in r["components"]})
    mean = lambda values: round(sum(values) / len(values), 4) if values else 0.0  # noqa: E731
    stats = reliability(records, threshold)
    return {
        "episodes": n,
        "mean_reward": mean([r["reward"] for r in records]),
        "mean_reward_ci95": [round(v, 4) for v in stats["mean_reward_ci95"]],
        "min_reward": round(min((r["reward"] for r in records), default=0.0), 4),
        "tasks": stats["tasks"], "trials": stats["trials"],
        "success_rate": round(stats["success_rate"], 4),
        "pass^k": {k: round(v, 4) for k, v in stats["pass^k"].items()},
        "pass@k": {k: round(v, 4) for k, v in stats["pass@k"].items()},
        "flip_rate": round(stats["flip_rate"], 4),
        "components": {k: mean([r["components"][k] for r in records if k in r["components"]]) for k in names},
        "submitted": mean([float(r["submitted"]) for r in records]),
        "mean_turns": mean([r["turns"] for r in records]),
        "mean_tool_calls": mean([r["tool_calls"] for r in records]),
        "invalid_calls": sum(r["invalid_calls"] for r in records),
        "tokens": _tokens(records),
    }


def _tokens(records: list[dict]) -> dict:
    usage = [r["usage"] for r in records if r.get("usage")]
    return {k: sum(u.get(k, 0) for u in usage) for k in ("prompt_tokens", "completion_tokens", "requests")} \
        if usage else {}


def _version() -> str:
    try:
        return metadata.version("medgym")
    except metadata.PackageNotFoundError:
        return "unknown"


def _model_id(agent: str, options: dict) -> str | None:
    kind, _, target = agent.partition(":")
    if kind == "openai":
        return options.get("model")
    return target or None


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
                splits=HELD_OUT, play: Callable[[str, Task], float] | None = None) -> dict[str, dict]:
    """Each probe's mean reward on the domain's held-out tasks against its ceiling: {probe: row}, each row
    with mean, ceiling (absolute), ok, the reference's mean and the families where the probe does best.
    `play(probe, task)`: the probe's reward on a task (default: play the episode; the gate's cache
    answers from its store)."""
    play = play or (lambda probe, task: run_episode(env, make_agent(probe), task.task_id, probe, keep_transcript=False)["reward"])
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
            by_family[task.family].append(play(probe, task))
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
