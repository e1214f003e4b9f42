"""Statistics over repeated trials: pass^k, pass@k, flip rate, bootstrap intervals and a paired bootstrap test.

Conventions (docs/evaluation.md states them for readers of a report):

* a trial *succeeds* when its reward reaches the success threshold;
* pass^k (tau-bench): the chance that k trials of a task, drawn without replacement from its n, all succeed,
  estimated without bias as C(c, k) / C(n, k) for c successes, then averaged over tasks;
* pass@k: the chance that at least one of k succeeds, 1 - C(n - c, k) / C(n, k), averaged over tasks;
* flip rate: the share of tasks whose trials do not all agree (some succeed, some fail);
* intervals: percentile bootstrap over tasks (each task's mean over its trials is one unit), 95%, seeded.
"""
from __future__ import annotations

import random
from collections import defaultdict
from math import comb
from typing import Iterable, Sequence

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def pass_hat_k(n: int, c: int, k: int) -> float:
    """P(k trials drawn from n, c of them successes, all succeed) = C(c, k) / C(n, k)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass^k needs 1 <= k <= n trials (k={k}, n={n})")
    return comb(c, k) / comb(n, k)


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k trials drawn from n succeeds) = 1 - C(n - c, k) / C(n, k)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n trials (k={k}, n={n})")
    return 1.0 - comb(n - c, k) / comb(n, k)


def group_by_task(records: Iterable[dict]) -> dict[str, list[dict]]:
    """Records grouped by task id, each group in trial order."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[record["task_id"]].append(record)
    return {task: sorted(group, key=lambda r: r.get("trial", 0)) for task, group in groups.items()}


def curves(groups: dict[str, list[bool]]) -> dict[str, dict[int, float]]:
    """pass^k and pass@k for k = 1 .. the fewest trials any task has: {"pass^k": {k: value}, "pass@k": ...}."""
    if not groups:
        return {"pass^k": {}, "pass@k": {}}
    most = min(len(v) for v in groups.values())
    hat, at = {}, {}
    for k in range(1, most + 1):
        hat[k] = _mean([pass_hat_k(len(v), sum(v), k) for v in groups.values()])
        at[k] = _mean([pass_at_k(len(v), sum(v), k) for v in groups.values()])
    return {"pass^k": hat, "pass@k": at}


def flip_rate(groups: dict[str, list[bool]]) -> float:
    """The share of tasks with at least two trials whose verdicts disagree."""
    repeated = [v for v in groups.values() if len(v) >= 2]
    return _mean([float(0 < sum(v) < len(v)) for v in repeated])


def bootstrap_interval(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per task)."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    low = means[int((1 - level) / 2 * samples)]
    high = means[min(samples - 1, int((1 + level) / 2 * samples))]
    return (low, high)


def paired_bootstrap(a: dict[str, float], b: dict[str, float], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> dict:
    """B - A on the tasks both ran (per-task means), its 95% interval and a two-sided bootstrap p-value.

    The p-value is twice the smaller share of resampled mean differences on either side of zero: the
    chance, under resampling of tasks, of a difference of the other sign.
    """
    shared = sorted(set(a) & set(b))
    diffs = [b[t] - a[t] for t in shared]
    if not diffs:
        return {"tasks": 0, "mean_a": 0.0, "mean_b": 0.0, "difference": 0.0, "interval": [0.0, 0.0],
                "p_value": 1.0}
    rng = random.Random(seed)
    n = len(diffs)
    means = [sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples)]
    below = sum(m <= 0 for m in means) / samples
    above = sum(m >= 0 for m in means) / samples
    low, high = bootstrap_interval(diffs, samples, seed)
    return {"tasks": n, "mean_a": _mean([a[t] for t in shared]), "mean_b": _mean([b[t] for t in shared]),
            "difference": _mean(diffs), "interval": [low, high], "p_value": min(1.0, 2 * min(below, above))}


def reliability(records: list[dict], threshold: float) -> dict:
    """Everything a summary reports about one group of episodes (a domain, or all of them)."""
    groups = group_by_task(records)
    success = {task: [r["reward"] >= threshold for r in group] for task, group in groups.items()}
    task_means = [_mean([r["reward"] for r in group]) for group in groups.values()]
    low, high = bootstrap_interval(task_means)
    trials = sorted({len(g) for g in groups.values()})
    return {
        "tasks": len(groups),
        "trials": trials[0] if len(trials) == 1 else trials,
        "mean_reward": _mean([r["reward"] for r in records]),
        "mean_reward_ci95": [low, high],
        "success_rate": _mean([float(s) for v in success.values() for s in v]),
        "flip_rate": flip_rate(success),
        **curves(success),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
