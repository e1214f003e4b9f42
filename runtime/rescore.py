"""Rescoring: replay each stored episode's actions through the current build and recompute its reward.

The env is deterministic given the task and the actions, so replaying the assistant turns of a stored
transcript rebuilds the episode exactly; scoring it with the current rubric shows what a rubric fix changes,
and on an unchanged build reproduces every stored reward (a check that the file was not edited).
"""
from __future__ import annotations

import json
from pathlib import Path

from medgym.runtime.build import Build, BuildError
from medgym.runtime.env import MAX_KEPT_ACTION_CHARS, MedEnv, make_env

TOLERANCE = 1e-9


def replay(env: MedEnv, task_id: str, actions: list) -> tuple[float, dict]:
    """Play `actions` on `task_id`; the final reward and info (turns past the end are ignored)."""
    env.reset(options={"task_id": task_id})
    reward, info = 0.0, {}
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return reward, info


def stored_actions(record: dict) -> list:
    """The assistant turns of a record's transcript, as the env received them (an endpoint's message dicts
    were stored as JSON text)."""
    actions = []
    for message in record.get("transcript") or []:
        if message.get("role") != "assistant":
            continue
        content = message.get("content") or ""
        actions.append(_message(content) or content)
    return actions


def _message(text: str) -> dict | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("role") == "assistant" else None


def rescore(records: list[dict], build_dir: Path) -> dict:
    """Each record's stored reward against the current build's: a report of what changed."""
    build = Build.open(build_dir)
    envs: dict[tuple, MedEnv] = {}
    rows, problems = [], []
    for record in records:
        key = f"{record.get('task_id')}#{record.get('trial', 0)}"
        if not record.get("transcript"):
            problems.append(f"{key}: no transcript stored (written without one)")
            continue
        domain = record["domain"]
        turns = record.get("max_turns")
        env_key = (domain, turns)
        try:
            if env_key not in envs:
                envs[env_key] = make_env(build.path, domain, max_turns=turns)
            reward, info = replay(envs[env_key], record["task_id"], stored_actions(record))
        except BuildError as exc:
            problems.append(f"{key}: {exc}")
            continue
        rows.append(_row(key, record, reward, info))
    changed = [r for r in rows if r["changed"]]
    old = [r["stored"] for r in rows]
    new = [r["reward"] for r in rows]
    return {"episodes": len(rows), "changed": len(changed), "unchanged": len(rows) - len(changed),
            "mean_stored": _mean(old), "mean_rescored": _mean(new), "spec_hash": build.manifest.spec_hash,
            "problems": problems, "changes": changed, "rows": rows}


def _row(key: str, record: dict, reward: float, info: dict) -> dict:
    components = info.get("reward_components", {})
    before = record.get("components") or {}
    deltas = {k: round(components.get(k, 0.0) - before.get(k, 0.0), 6)
              for k in sorted(set(components) | set(before))
              if abs(components.get(k, 0.0) - before.get(k, 0.0)) > TOLERANCE}
    violations = [v["id"] for v in info.get("safety_violations", [])]
    cut = any(len(m.get("content") or "") >= MAX_KEPT_ACTION_CHARS for m in record.get("transcript") or []
              if m.get("role") == "assistant")
    return {"episode": key, "task_id": record["task_id"], "domain": record["domain"],
            "stored": record.get("reward", 0.0), "reward": reward,
            "changed": abs(reward - record.get("reward", 0.0)) > TOLERANCE or bool(deltas),
            "components": deltas, "violations_added": sorted(set(violations) - set(record.get("violations", []))),
            "violations_removed": sorted(set(record.get("violations", [])) - set(violations)),
            "action_cut": cut}


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else 0.0
