"""Rollouts: a causal LM plays compiled MedEnv episodes over several turns, n samples per task, in batches.

All live episodes of a step generate together: each round left-pads their conversations into one batch for
``model.generate``, splits the sampled ids back per episode, and feeds each turn's text to its own env, whose
parser reads the tool calls. An episode ends when the env says so (a submission, or ``max_turns``), or when its
conversation reaches the context budget; then it is scored on the episode state as it stands, and flagged
``overflow`` so the cosine reward treats it as over length.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from medgym.rl.local.chat import ChatFormat, Conversation, open_conversation
from medgym.rl.local.models import stop_token_ids
from medgym.runtime.env import MedEnv, make_env
from medgym.runtime.rewards import score_episode

__all__ = ["EnvPool", "RolloutStats", "Trajectory", "generate_turns", "play"]


@dataclass
class Trajectory:
    """One finished episode: its token sequence, assistant mask and outcome."""

    domain: str
    task_id: str
    conversation: Conversation
    reward: float = 0.0
    """The env's reward (composite or accuracy, as the env's reward mode says)."""
    components: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    """The env's episode summary: turns, tool_calls, invalid_calls, submitted, ..."""
    overflow: bool = False
    """Stopped because the conversation reached the context budget."""

    @property
    def ids(self) -> list[int]:
        return self.conversation.ids

    @property
    def assistant_mask(self) -> list[int]:
        return self.conversation.mask

    @property
    def assistant_tokens(self) -> int:
        return self.conversation.assistant_tokens


class EnvPool:
    """Env instances per domain, reused across steps (an env holds one live episode at a time)."""

    def __init__(self, build_dir, reward_mode: str, max_turns: int):
        self.build_dir, self.reward_mode, self.max_turns = build_dir, reward_mode, max_turns
        self._envs: dict[str, list[MedEnv]] = {}

    def take(self, domain: str, count: int) -> list[MedEnv]:
        envs = self._envs.setdefault(domain, [])
        while len(envs) < count:
            envs.append(make_env(self.build_dir, domain, reward_mode=self.reward_mode, max_turns=self.max_turns))
        return envs[:count]


@dataclass
class RolloutStats:
    """Where the rollout time went (for throughput figures)."""

    generate_s: float = 0.0
    env_s: float = 0.0
    render_s: float = 0.0
    generated_tokens: int = 0
    rounds: int = 0


@torch.no_grad()
def generate_turns(model, prompts: Sequence[Sequence[int]], budgets: Sequence[int], *, pad_id: int,
                   stop_ids: set[int], temperature: float, top_p: float, greedy: bool) -> list[list[int]]:
    """One assistant turn per prompt, generated as one left-padded batch.

    Each row's new ids are cut after its first stop id and at its own ``budgets`` entry (rows share one
    ``max_new_tokens``: the largest budget).
    """
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        attention[row, width - len(prompt):] = 1
    # top_k 0 switches off the generation config's default top-k cut (often 50): samples then follow the
    # temperature (and top_p) distribution whose log-probs the update computes.
    sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature, "top_p": top_p,
                                                    "top_k": 0}
    out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                         max_new_tokens=max(budgets), pad_token_id=pad_id, eos_token_id=sorted(stop_ids),
                         **sampling)
    turns = []
    for row, budget in enumerate(budgets):
        new = out[row, width:].tolist()[:budget]
        for i, token in enumerate(new):
            if token in stop_ids:
                new = new[: i + 1]
                break
        turns.append(new)
    return turns


def play(model, fmt: ChatFormat, pool: EnvPool, tasks: Sequence[tuple[str, str]], *, samples: int,
         max_new_tokens: int, context_limit: int, temperature: float = 1.0, top_p: float = 1.0,
         greedy: bool = False, stats: RolloutStats | None = None) -> list[Trajectory]:
    """Play each (domain, task_id) ``samples`` times; trajectories come back grouped: task 0's samples first.

    ``context_limit`` caps every conversation (and the model's own position limit caps it further).
    """
    stats = stats if stats is not None else RolloutStats()
    tokenizer = fmt.tokenizer
    stop_ids = stop_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids)
    limit = min(context_limit, getattr(model.config, "max_position_embeddings", None) or context_limit)
    needed: dict[str, int] = {}
    for domain, _ in tasks:
        needed[domain] = needed.get(domain, 0) + samples
    free = {domain: list(pool.take(domain, count)) for domain, count in needed.items()}

    trajectories: list[Trajectory] = []
    envs: list[MedEnv] = []
    started = time.perf_counter()
    for domain, task_id in tasks:
        for _ in range(samples):
            env = free[domain].pop(0)
            t0 = time.perf_counter()
            _, info = env.reset(options={"task_id": task_id})
            stats.env_s += time.perf_counter() - t0
            trajectories.append(Trajectory(domain, task_id, open_conversation(fmt, env, info)))
            envs.append(env)
    stats.render_s += time.perf_counter() - started

    live = list(range(len(trajectories)))
    while live:
        for i in [i for i in live if len(trajectories[i].conversation) >= limit]:
            _finish_overflow(trajectories[i], envs[i], stats)
        live = [i for i in live if not trajectories[i].overflow]
        if not live:
            break
        budgets = [min(max_new_tokens, limit - len(trajectories[i].conversation)) for i in live]
        t0 = time.perf_counter()
        turns = generate_turns(model, [trajectories[i].ids for i in live], budgets, pad_id=pad_id,
                               stop_ids=stop_ids, temperature=temperature, top_p=top_p, greedy=greedy)
        stats.generate_s += time.perf_counter() - t0
        stats.rounds += 1
        still = []
        for i, generated in zip(live, turns):
            stats.generated_tokens += len(generated)
            trajectory, env = trajectories[i], envs[i]
            t0 = time.perf_counter()
            action = trajectory.conversation.add_assistant(generated, stop_ids)
            t1 = time.perf_counter()
            observation, reward, terminated, truncated, info = env.step(action)
            t2 = time.perf_counter()
            stats.render_s += t1 - t0
            stats.env_s += t2 - t1
            if terminated or truncated:
                trajectory.reward = float(reward)
                trajectory.components = dict(info.get("reward_components", {}))
                trajectory.counts = dict(info.get("episode") or env.summary())
                continue
            trajectory.conversation.add_tool(observation)
            stats.render_s += time.perf_counter() - t2
            still.append(i)
        live = still
    return trajectories


def _finish_overflow(trajectory: Trajectory, env: MedEnv, stats: RolloutStats) -> None:
    """Score an episode cut short by the context budget, on its state as it stands (no answer yet, usually)."""
    t0 = time.perf_counter()
    result = score_episode(env.domain, env.episode)
    trajectory.reward = result.components["accuracy"] if env.reward_mode == "accuracy" else result.total
    trajectory.components = dict(result.components)
    trajectory.counts = env.summary()
    trajectory.overflow = True
    stats.env_s += time.perf_counter() - t0
