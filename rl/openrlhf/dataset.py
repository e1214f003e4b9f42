"""OpenRLHF prompt datasets from a compiled build: one JSONL row per task, read by OpenRLHF's ``PromptDataset``.

A row::

    {"input": [{"role": "system", "content": POLICY}, {"role": "user", "content": TICKET}],
     "label": "{\\"format\\": \\"medgym.openrlhf/1\\", \\"task_id\\": ..., ...}",
     "datasource": "triage"}

``input`` is the task's opening as chat messages (train with ``--data.input_key input --data.apply_chat_template``).
The agent (``medgym.rl.openrlhf.agent``) does not use OpenRLHF's rendering of it: it opens the task in a
compiled env and renders the opening itself, with the domain's tools, the way the local backend does.
``label`` is a JSON *string* (so every row has the same Arrow type whatever it holds) naming the task and
carrying what the rollout and the trainer need: build path and content hash, task id, domain, split, seed, turn
limit, reward mode, correctness threshold, cosine shaping, the domain's hints and the hint seed. OpenRLHF hands
it unchanged to the agent's ``reset`` and keeps it in ``Experience.labels`` for the trainer.
``datasource`` groups evaluation metrics per domain (``eval_<domain>_pass1``).

This module imports neither OpenRLHF nor torch.
"""
from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

LABEL_FORMAT = "medgym.openrlhf/1"

__all__ = ["LABEL_FORMAT", "LabelError", "TaskLabel", "export_prompts", "prompt_rows"]


class LabelError(ValueError):
    """A dataset label that is not a medgym OpenRLHF label (the message says what is wrong)."""


@dataclass(frozen=True)
class TaskLabel:
    """What one prompt row tells the agent and the trainer (the ``label`` column, as JSON)."""

    task_id: str
    domain: str
    split: str
    seed: str | int | None
    build: str
    """Absolute path of the compiled build; every node must see it at this path."""
    build_hash: str
    """The build's ``spec_hash``: the agent refuses a build at that path with other content."""
    max_turns: int | None
    """Assistant turns per episode (None: the domain's own limit)."""
    reward_mode: str = "composite"
    correct_threshold: float = 0.5
    cosine: dict | None = None
    """Cosine shaping: ``{"max_length", "correct": [start, end], "wrong": [start, end], "exceed"}``; None: off."""
    prompt: str = "policy"
    """How the opening is rendered: ``policy`` (policy and tool schemas) or ``card`` (see ``RolloutConfig.prompt``)."""
    hints: dict | None = None
    """The domain's ``{"reinforcing": [...], "corrective": [...]}`` (None: the default hints)."""
    hint_seed: int = 0
    format: str = LABEL_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def parse(cls, label: str | dict) -> "TaskLabel":
        """A label from the JSON string (or the dict) a dataset row carries."""
        if isinstance(label, str):
            try:
                label = json.loads(label)
            except ValueError as exc:
                raise LabelError(f"the label is not JSON ({exc}): {label[:120]!r}") from None
        if not isinstance(label, dict) or label.get("format") != LABEL_FORMAT:
            found = label.get("format") if isinstance(label, dict) else type(label).__name__
            raise LabelError(f"not a medgym OpenRLHF label (format {found!r}, expected {LABEL_FORMAT!r}): export "
                             "the dataset with `medgym export openrlhf`")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(label) - known)
        if unknown:
            raise LabelError(f"label has unknown keys {unknown}: it was written by another medgym version")
        try:
            return cls(**label)
        except TypeError as exc:
            raise LabelError(f"label is missing a key: {exc}") from None

    def hint_set(self):
        """The domain's ``HintSet`` (``medgym.rl.DEFAULT_HINTS`` when the domain declares none)."""
        from medgym.rl.hints import DEFAULT_HINTS, HintSet

        hints = self.hints or {}
        if not hints.get("reinforcing") or not hints.get("corrective"):
            return DEFAULT_HINTS
        return HintSet(tuple(hints["reinforcing"]), tuple(hints["corrective"]), domain=self.domain)


def _label_settings(config) -> dict:
    """The label fields that come from a training config (``medgym.rl.config.TrainConfig``)."""
    if config is None:
        from medgym.rl.config import TrainConfig

        config = TrainConfig()
    reward = config.reward
    cosine = None
    if reward.cosine:
        cosine = {"max_length": config.rollout.max_length, "correct": list(reward.cosine_correct),
                  "wrong": list(reward.cosine_wrong), "exceed": reward.cosine_exceed}
    return {"max_turns": config.rollout.max_turns, "reward_mode": reward.mode,
            "correct_threshold": reward.correct_threshold, "cosine": cosine,
            "prompt": getattr(config.rollout, "prompt", "policy")}


def prompt_rows(build: str | Path, *, split: str = "train", domains: Sequence[str] | None = None,
                limit: int | None = None, config=None) -> list[dict]:
    """One row per task of ``split`` (in file order; ``limit`` tasks per domain), for ``domains`` (default: all)."""
    from medgym.runtime.build import Build
    from medgym.runtime.env import make_env

    build = Path(build).resolve()
    compiled = Build.open(build)
    settings = _label_settings(config)
    rows = []
    for name in domains or compiled.domain_names:
        domain = compiled.domain(name)
        tasks = domain.tasks(split)[:limit]
        if not tasks:
            continue
        env = make_env(build, name, split=split)
        hints = domain.spec.hints.model_dump()
        for task in tasks:
            _, info = env.reset(options={"task_id": task.task_id})
            label = TaskLabel(task_id=task.task_id, domain=name, split=split, seed=task.seed,
                              build=str(build), build_hash=compiled.manifest.spec_hash,
                              hints=hints, hint_seed=zlib.crc32(task.task_id.encode()), **settings)
            rows.append({"input": [{"role": "system", "content": info["system"]},
                                   {"role": "user", "content": info["ticket"]}],
                         "label": label.to_json(), "datasource": name})
    return rows


def export_prompts(build: str | Path, out: str | Path, *, split: str = "train", domains: Sequence[str] | None = None,
                   limit: int | None = None, config=None, rows: int | None = None, seed: int = 0) -> int:
    """Write the prompt JSONL for ``split`` to ``out``; return the number of rows written.

    Each task appears once, in file order, unless ``rows`` is given: then tasks are drawn in a shuffled order
    (``seed``), reshuffled after each pass, until ``rows`` rows are written (a run of ``steps`` steps over
    ``prompts_per_step`` prompts needs exactly ``steps * prompts_per_step``). ``config`` (a ``TrainConfig``)
    sets the reward, turn and prompt fields of the labels (default: ``TrainConfig()``).
    """
    tasks = prompt_rows(build, split=split, domains=domains, limit=limit, config=config)
    if not tasks:
        raise ValueError(f"no tasks in split {split!r}" + (f" for domains {', '.join(domains)}" if domains else ""))
    if rows is not None:
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        rng, chosen = random.Random(seed), []
        while len(chosen) < rows:
            order = list(tasks)
            rng.shuffle(order)
            chosen += order[: rows - len(chosen)]
        tasks = chosen
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as lines:
        for row in tasks:
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(tasks)
