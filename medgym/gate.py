"""The compile gate: every task's reference solution, played through the runtime, must reach its threshold,
and every adversarial probe must stay under its domain's ceiling.

This ties the compiler's output to the runtime (which the compiler itself never imports). Domains are gated
independently, so `MEDGYM_GATE_WORKERS=N` gates up to N domains at once in spawned processes. The default is
one process: on the shared 2-core reference machine the two shipped domains gated in 2 processes took 10.0 s
wall (6.7 s CPU) against 7.0 s wall (4.9 s CPU) in one, because no core was idle and each worker pays its
imports and its own probe tuning. Turn it on where cores are idle and domains many; a script that compiles
with the gate in parallel needs the usual `if __name__ == "__main__":` guard (spawn re-imports it).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from medgym.dsl.errors import Position, SpecError


def compile_gate(build: Path, memo=None) -> list[SpecError]:
    """One error per family whose reference solution scores below its threshold on some task, and one per
    probe that scores above its ceiling. `memo` (a compiler.cache.GateMemo): replay only the families whose
    content the cache has not gated before."""
    try:
        from medgym.runtime.build import Build
    except ImportError:  # the runtime is not built yet: nothing to gate with
        return []
    names = Build.open(build).domain_names
    workers = min(len(names), gate_workers())
    if workers <= 1:
        # runtime.evaluate (gymnasium, numpy) is imported only when some domain has episodes to play
        return [e for name in names for e in _gate_one(build, name, memo)] if memo is not None else _gate_all(build)
    # spawn, not fork: the CLI may hold a spinner thread while it compiles, and a forked lock can deadlock.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # errors come back in domain order, as a serial gate gives them
        return [error for found in pool.map(_gate_one, [build] * len(names), names, [memo] * len(names))
                for error in found]


def _gate_all(build: Path) -> list[SpecError]:
    from medgym.runtime.evaluate import gate_build

    return gate_build(build)


def gate_workers() -> int:
    """`MEDGYM_GATE_WORKERS` (a whole number >= 1), else 1."""
    declared = os.environ.get("MEDGYM_GATE_WORKERS", "").strip()
    return int(declared) if declared.isdigit() and int(declared) >= 1 else 1


def _gate_one(build: Path, name: str, memo=None) -> list[SpecError]:
    if memo is not None:
        return _gate_cached(build, name, memo)
    from medgym.runtime.evaluate import gate_build

    return gate_build(build, [name])


def runtime_fingerprint() -> str:
    """The code that plays and scores episodes: a gate result is reused only under the same code."""
    from medgym.compiler.cache import code_fingerprint, compiler_fingerprint
    from medgym import runtime

    return code_fingerprint(Path(runtime.__file__).parent, Path(__file__), extra=compiler_fingerprint())


def _gate_cached(build: Path, name: str, memo) -> list[SpecError]:
    """gate_build for one domain, with each family's reference records and probe rewards taken from
    `memo` when its content was gated before (probes also need the same tuning: they learn from the
    whole domain's train split)."""
    fingerprint = runtime_fingerprint()
    whole = memo.get_domain(name, "errors", fingerprint)
    if isinstance(whole, list):  # every family gated before, together: the same errors, no episode played
        return [SpecError(m, Position(path, line, col), hint) for m, path, line, col, hint in whole]
    # The same episodes passed before (a ticket's wording changed, say): it passes; errors are recomputed,
    # since their messages point at lines of the files.
    if memo.get_domain(name, "passed", fingerprint, played=True) is True:
        return []
    errors = _gate_families(build, name, memo, fingerprint)
    memo.put_domain(name, "errors", fingerprint, [[e.message, e.pos.path, e.pos.line, e.pos.col, e.hint] for e in errors])
    if not errors:
        memo.put_domain(name, "passed", fingerprint, True, played=True)
    return errors


def _gate_families(build: Path, name: str, memo, fingerprint: str) -> list[SpecError]:
    import json
    from dataclasses import asdict

    from medgym.runtime.agents import OracleAgent, make_agent
    from medgym.runtime.agents.tuning import tuning
    from medgym.runtime.build import SPLITS
    from medgym.runtime.env import make_env
    from medgym.runtime.evaluate import _probe_error, _reference_errors, probe_table, run_episode

    env = make_env(build, name)
    tasks = [task for split in SPLITS for task in env.domain.tasks(split)]
    by_family: dict[str, list] = {}
    for task in tasks:
        by_family.setdefault(task.family, []).append(task)

    def oracle_records(family: str, family_tasks: list) -> dict:
        known = memo.get(name, family, "oracle", fingerprint)
        if not isinstance(known, dict) or set(known) != {t.task_id for t in family_tasks}:
            known = {t.task_id: _slim(run_episode(env, OracleAgent(), t.task_id, keep_transcript=False))
                     for t in family_tasks}
            memo.put(name, family, "oracle", fingerprint, known)
        return known

    records = {}
    for family, family_tasks in by_family.items():
        records.update(oracle_records(family, family_tasks))
    oracle = {t.task_id: records[t.task_id] for t in tasks}  # in the serial gate's order
    errors = _reference_errors(env.domain, oracle)
    if name in memo.partial:  # built from some of its families: domain-wide probe means would mislead
        return errors
    tuned = json.dumps(asdict(tuning(env.domain)), sort_keys=True, default=str)
    probed = _ProbeMemo(memo, name, fingerprint + tuned,
                        lambda probe, task: run_episode(env, make_agent(probe), task.task_id, probe,
                                                        keep_transcript=False)["reward"])
    table = probe_table(env, oracle, play=probed.play)
    probed.save()
    return errors + [e for e in (_probe_error(env.domain, row) for row in table.values()) if e]


def _slim(record: dict) -> dict:
    """What the gate's messages read of a reference episode."""
    keep = {k: record[k] for k in ("reward", "components", "violations") if k in record}
    details = record.get("reward_details") or {}
    if details.get("predicate_errors"):
        keep["reward_details"] = {"predicate_errors": details["predicate_errors"]}
    return keep


class _ProbeMemo:
    """Probe rewards per (family, probe) from the memo, playing and recording the ones it lacks."""

    def __init__(self, memo, domain: str, fingerprint: str, play_now):
        self.memo, self.domain, self.fingerprint, self.play_now = memo, domain, fingerprint, play_now
        self.loaded: dict[tuple[str, str], dict] = {}
        self.changed: set[tuple[str, str]] = set()

    def play(self, probe: str, task) -> float:
        slot = (task.family, probe)
        if slot not in self.loaded:
            known = self.memo.get(self.domain, task.family, f"probe:{probe}", self.fingerprint)
            self.loaded[slot] = known if isinstance(known, dict) else {}
        rewards = self.loaded[slot]
        if task.task_id not in rewards:
            rewards[task.task_id] = self.play_now(probe, task)
            self.changed.add(slot)
        return rewards[task.task_id]

    def save(self) -> None:
        for family, probe in sorted(self.changed):
            self.memo.put(self.domain, family, f"probe:{probe}", self.fingerprint, self.loaded[(family, probe)])
