"""Rollouts: a causal LM plays compiled MedEnv episodes over several turns, n samples per task, in batches.

All live episodes of a step generate together in one ``DecodeSession``: each conversation keeps its KV cache
across turns, so a round encodes only the tokens added since the last one (the tool results and the next
generation prompt), then samples one token per episode per step. The sampled ids go back per episode, and each
turn's text goes to its own env, whose parser reads the tool calls. An episode ends when the env says so (a submission, or ``max_turns``), or when its
conversation reaches the context budget; then it is scored on the episode state as it stands, and flagged
``overflow`` so the cosine reward treats it as over length.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from medgym.rl.local.chat import ChatFormat, Conversation, open_conversation
from medgym.rl.local.models import stop_token_ids
from medgym.runtime.env import MedEnv, make_env
from medgym.runtime.rewards import score_episode

__all__ = ["DecodeSession", "EnvPool", "RolloutStats", "Trajectory", "generate_turns", "play"]


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


class DecodeSession:
    """Batched sampling of assistant turns for several conversations, with a KV cache kept across turns.

    Each conversation's next prompt extends its previous one (the sampled turn, the template's closing, the
    tool results, the next generation prompt), so only the tokens the cache has not seen are encoded: a
    round prefills each row's new tokens as one left-padded block, then decodes one token per row per step.
    Rows are aligned by cache column, not by position: padding inside the cache (a short row's block padding,
    a finished row's idle steps) is masked out of attention, and each row's position ids count only its own
    tokens, so every row sees exactly its conversation. A row whose conversation ends is dropped from the
    cache.

    ``cache=False`` is the specification: every step forwards each row's whole sequence afresh. Both modes
    draw the same random numbers in the same order (one exponential per vocabulary entry and row, each
    step: ``argmax(p / q)`` with ``q ~ Exp(1)`` samples from ``p``), so with a fixed seed they sample the
    same tokens; the tests hold the cached mode to that.
    """

    def __init__(self, model, *, pad_id: int, stop_ids: set[int], temperature: float = 1.0, top_p: float = 1.0,
                 greedy: bool = False, cache: bool = True):
        self.model, self.pad_id, self.stop_ids = model, pad_id, set(stop_ids)
        self.temperature, self.top_p, self.greedy, self.use_cache = temperature, top_p, greedy, cache
        self.device = next(model.parameters()).device
        # transformers renamed `past_key_values` to `cache` (the old name is deprecated from 5.2x)
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.keys: list = []
        """The conversation key of each cache row, in row order."""
        self.fed: list[list[int]] = []
        """The real tokens each row has in the cache, in order (checked against the next prompt)."""
        self.cache = None
        self.attention: torch.Tensor | None = None
        """(rows, cache columns): 1 where a column holds one of the row's real tokens."""
        self.logprobs: list[list[float]] = []
        """Per row, the sampling log-probs (at the sampling temperature) of the last round's tokens."""

    # -- the cache ---------------------------------------------------------------------------------------------

    def _select(self, keys: list) -> None:
        """Keep only the rows of ``keys`` (a subset of the cached ones), in that order."""
        if self.cache is None or not self.keys:
            self.keys, self.fed = list(keys), [[] for _ in keys]
            self.cache, self.attention = None, None
            return
        where = {key: row for row, key in enumerate(self.keys)}
        missing = [key for key in keys if key not in where]
        if missing:
            raise ValueError(f"conversations {missing} joined a running decode session; start a new one")
        rows = [where[key] for key in keys]
        if rows != list(range(len(self.keys))):
            self.cache.batch_select_indices(torch.tensor(rows, device=self.device))
            self.attention = self.attention[rows]
        self.keys, self.fed = list(keys), [self.fed[row] for row in rows]

    def _forward(self, ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed a (rows, n) block into the cache; the next-token logits after it: (rows, vocab) float32."""
        if self.cache is None:
            from transformers import DynamicCache

            self.cache = DynamicCache()
        full = attention if self.attention is None else torch.cat([self.attention, attention], dim=1)
        out = self.model(input_ids=ids, attention_mask=full, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: self.cache})
        self.cache, self.attention = getattr(out, self._cache_arg), full
        return out.logits[:, -1].float()

    def _prefill(self, prompts: list[list[int]]) -> torch.Tensor:
        blocks = []
        for row, prompt in enumerate(prompts):
            seen = self.fed[row]
            if list(prompt[: len(seen)]) != seen:
                raise ValueError("a conversation's prompt does not extend what it already fed the cache")
            blocks.append(list(prompt[len(seen):]))
        width = max(len(b) for b in blocks)
        ids = torch.full((len(blocks), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(blocks), width), dtype=torch.long)
        positions = torch.zeros((len(blocks), width), dtype=torch.long)
        for row, block in enumerate(blocks):
            start = width - len(block)
            if block:
                ids[row, start:] = torch.tensor(block, dtype=torch.long)
                attention[row, start:] = 1
                positions[row, start:] = torch.arange(len(self.fed[row]), len(self.fed[row]) + len(block))
            self.fed[row] = self.fed[row] + block
        if width == 0:
            raise ValueError("every conversation's prompt is already in the cache: nothing to condition on")
        return self._forward(ids.to(self.device), attention.to(self.device), positions.to(self.device))

    def _step(self, tokens: list[int], live: list[bool]) -> torch.Tensor:
        ids = torch.tensor([[t if on else self.pad_id] for t, on in zip(tokens, live)], dtype=torch.long)
        attention = torch.tensor([[int(on)] for on in live], dtype=torch.long)
        positions = torch.tensor([[len(fed)] for fed in self.fed], dtype=torch.long)
        for row, on in enumerate(live):
            if on:
                self.fed[row].append(tokens[row])
        return self._forward(ids.to(self.device), attention.to(self.device), positions.to(self.device))

    def _uncached(self, sequences: list[list[int]]) -> torch.Tensor:
        """The specification: each row's whole sequence forwarded afresh (left-padded), last logits only."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            attention[row, width - len(seq):] = 1
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        out = self.model(input_ids=ids.to(self.device), attention_mask=attention.to(self.device),
                         position_ids=positions.to(self.device), use_cache=False, logits_to_keep=1)
        return out.logits[:, -1].float()

    # -- sampling ----------------------------------------------------------------------------------------------

    def _sample(self, logits: torch.Tensor) -> tuple[list[int], list[float]]:
        """One token per row, and its log-prob under the distribution it was drawn from."""
        if self.greedy:
            tokens = logits.argmax(dim=-1)
            return tokens.tolist(), [0.0] * len(tokens)
        logprobs = torch.log_softmax(logits / self.temperature, dim=-1)
        probs = logprobs.exp()
        if self.top_p < 1.0:
            probs = _top_p(probs, self.top_p)
        noise = torch.empty_like(probs).exponential_()
        tokens = (probs / noise).argmax(dim=-1)
        return tokens.tolist(), logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1).tolist()

    @torch.no_grad()
    def generate(self, keys: list, prompts: Sequence[Sequence[int]], budgets: Sequence[int]) -> list[list[int]]:
        """One assistant turn for each conversation ``keys[i]``, whose token ids so far are ``prompts[i]``.

        A row's turn ends after its first stop id or at its ``budgets`` entry. ``keys`` must be the
        session's first conversations or a subset of the previous call's (finished ones are dropped).
        """
        prompts = [list(p) for p in prompts]
        if not prompts:
            return []
        self._select(list(keys))
        turns: list[list[int]] = [[] for _ in prompts]
        self.logprobs = [[] for _ in prompts]
        live = [budget > 0 for budget in budgets]
        logits = self._prefill(prompts) if self.use_cache else self._uncached(prompts)
        while True:
            tokens, logprobs = self._sample(logits)
            for row, token in enumerate(tokens):
                if live[row]:
                    turns[row].append(token)
                    self.logprobs[row].append(logprobs[row])
            fed = list(live)
            live = [on and tok not in self.stop_ids and len(turn) < budget
                    for on, tok, turn, budget in zip(live, tokens, turns, budgets)]
            if not any(live):
                break
            if self.use_cache:
                logits = self._step(tokens, fed)
            else:
                logits = self._uncached([p + t for p, t in zip(prompts, turns)])
        return turns


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens whose mass reaches ``top_p`` (at least one), renormalised."""
    ordered, order = probs.sort(dim=-1, descending=True)
    before = ordered.cumsum(dim=-1) - ordered  # mass of the more likely tokens
    ordered = torch.where(before < top_p, ordered, torch.zeros_like(ordered))
    kept = torch.zeros_like(probs).scatter(-1, order, ordered)
    return kept / kept.sum(dim=-1, keepdim=True)


def generate_turns(model, prompts: Sequence[Sequence[int]], budgets: Sequence[int], *, pad_id: int,
                   stop_ids: set[int], temperature: float, top_p: float, greedy: bool) -> list[list[int]]:
    """One assistant turn per prompt, generated as one batch (a ``DecodeSession`` used once).

    Each row's new ids are cut after its first stop id and at its own ``budgets`` entry.
    """
    session = DecodeSession(model, pad_id=pad_id, stop_ids=stop_ids, temperature=temperature, top_p=top_p,
                            greedy=greedy)
    return session.generate(list(range(len(prompts))), prompts, budgets)


def play(model, fmt: ChatFormat, pool: EnvPool, tasks: Sequence[tuple[str, str]], *, samples: int,
         max_new_tokens: int, context_limit: int, temperature: float = 1.0, top_p: float = 1.0,
         greedy: bool = False, stats: RolloutStats | None = None, kv_cache: bool = True,
         progress: Callable[[dict], None] | None = None) -> list[Trajectory]:
    """Play each (domain, task_id) ``samples`` times; trajectories come back grouped: task 0's samples first.

    ``context_limit`` caps every conversation (and the model's own position limit caps it further).
    ``kv_cache`` keeps each conversation's KV cache across its turns (False re-encodes every step: the slow
    reference). ``progress`` is called after each generation round with what has been done so far.
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

    session = DecodeSession(model, pad_id=pad_id, stop_ids=stop_ids, temperature=temperature, top_p=top_p,
                            greedy=greedy, cache=kv_cache)
    live = list(range(len(trajectories)))
    while live:
        for i in [i for i in live if len(trajectories[i].conversation) >= limit]:
            _finish_overflow(trajectories[i], envs[i], stats)
        live = [i for i in live if not trajectories[i].overflow]
        if not live:
            break
        budgets = [min(max_new_tokens, limit - len(trajectories[i].conversation)) for i in live]
        t0 = time.perf_counter()
        turns = session.generate(live, [trajectories[i].ids for i in live], budgets)
        stats.generate_s += time.perf_counter() - t0
        stats.rounds += 1
        if progress is not None:
            progress({"round": stats.rounds, "live": len(live), "episodes": len(trajectories),
                      "generated_tokens": stats.generated_tokens + sum(map(len, turns))})
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
    del session  # the KV cache: free it before the update needs the memory
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
