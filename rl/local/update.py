"""One GRPO / TT-OPD update on a batch of finished trajectories, with the math from ``medgym.rl``.

Order of a step (see ``medgym.rl``'s docstring for the layouts)::

    rewards     env reward -> correct -> cosine_length_reward(...)       (or the env reward itself)
    advantages  grpo_advantages / dr_grpo_advantages over groups of n
    hints       HintSet.choose(correct, seed) per row, rendered as a user message by the chat template
    per group of rows with one opening (a task's n samples):
        one student forward of the shared prompt (graph kept), one teacher forward of the part before the hint
        per micro-batch of the group, after that prefix:
            student hidden states (with grad) -> log-probs at the assistant tokens only (selected_logprobs)
            teacher hidden states on hint + response (no grad), realigned; its log-probs at the kept tokens
            kept = truncate_turns(assistant_mask, context_limit, max_turns, hint_lens)[:, 1:]
            loss = tt_opd_loss(...); loss.backward()   (into the prefix's keys and values too)
        backpropagate the prefix once, with the summed gradient of its keys and values
    clip the gradient norm, optimiser step; the caller advances the TeacherSchedule

Decisions worth knowing:

* One optimiser step per rollout batch (on-policy), so ``old_logprobs`` are the current log-probs detached:
  the ratio is 1 at the update and the clip never binds; it stays in the loss for multi-epoch use.
* Log-probs are taken on ``logits / temperature``, the distribution the rollouts sampled from; the teacher's
  too, so the KL compares like with like.
* Micro-batches accumulate gradients. ``tt_opd_loss`` reduces with one global denominator ``count`` (the
  policy's: assistant tokens, or sequences), while the KL's own denominator counts kept tokens (or sequences
  with a kept token). The KL per token is therefore scaled by ``count_policy / count_kl`` before the call,
  which makes the summed micro-batch losses equal the unbatched loss exactly.
* Only tokens up to each row's last assistant token are forwarded: later tokens (the final tool result)
  cannot change any assistant log-prob in a causal model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from medgym.rl import (
    CosineLengthReward,
    HintSet,
    cosine_length_reward,
    dr_grpo_advantages,
    grpo_advantages,
    kl_k1,
    kl_k3,
    selected_kl_full,
    selected_logprobs,
    truncate_turns,
    tt_opd_loss,
)
from medgym.rl.config import TrainConfig
from medgym.rl.local.chat import ChatFormat
from medgym.rl.local.rollout import Trajectory

__all__ = ["Batch", "UpdateResult", "make_batch", "shaped_rewards", "update"]

_KL_AGGREGATION = {"token_mean": "token-mean", "sequence_mean": "seq-mean"}


@dataclass
class Batch:
    """Right-padded tensors of one step's trajectories (rows grouped by task, n per group)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    assistant_mask: torch.Tensor
    hint_at: torch.Tensor
    """(B,) the prompt/response boundary of each row, where the teacher's hint goes."""
    lengths: torch.Tensor
    """(B,) real tokens per row."""
    prompt_lens: torch.Tensor
    """(B,) tokens of each row's opening (system, user, the first generation prompt)."""
    pad_id: int


@dataclass
class UpdateResult:
    metrics: dict
    kl: float | None
    """The step's KL(student || teacher) over kept assistant tokens (None for GRPO)."""


def make_batch(trajectories: list[Trajectory], pad_id: int) -> Batch:
    """Pack trajectories into right-padded tensors, each cut after its last assistant token."""
    rows = []
    for t in trajectories:
        mask = t.assistant_mask
        last = max((i for i, m in enumerate(mask) if m), default=t.conversation.prompt_len - 1)
        rows.append((t.ids[: last + 1], mask[: last + 1], t.conversation.hint_at))
    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    assistant = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (seq, mask, _) in enumerate(rows):
        ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
        assistant[row, : len(seq)] = torch.tensor(mask)
    hint_at = torch.tensor([h for _, _, h in rows], dtype=torch.long)
    prompt_lens = torch.tensor([t.conversation.prompt_len for t in trajectories], dtype=torch.long)
    return Batch(ids, attention, assistant, hint_at, attention.sum(dim=1), prompt_lens, pad_id)


def shaped_rewards(trajectories: list[Trajectory], config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(env rewards, correct flags, the rewards the advantages use: cosine-shaped or the env's)."""
    env = torch.tensor([t.reward for t in trajectories], dtype=torch.float32)
    correct = env >= config.reward.correct_threshold
    if not config.reward.cosine:
        return env, correct, env
    r = config.reward
    constants = CosineLengthReward(correct_start=r.cosine_correct[0], correct_end=r.cosine_correct[1],
                                   wrong_start=r.cosine_wrong[0], wrong_end=r.cosine_wrong[1], exceed=r.cosine_exceed)
    lengths = torch.tensor([t.assistant_tokens for t in trajectories], dtype=torch.long)
    overflow = torch.tensor([t.overflow for t in trajectories], dtype=torch.bool)
    shaped = cosine_length_reward(correct, config.rollout.max_length, lengths=lengths, truncated=overflow,
                                  constants=constants)
    return env, correct, shaped


def _advantages(rewards: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if config.algorithm.advantage == "dr_grpo":
        return dr_grpo_advantages(rewards, config.rollout.group_size)
    return grpo_advantages(rewards, config.rollout.group_size)


def _count(mask: torch.Tensor, aggregation: str) -> float:
    """The global denominator count of an aggregation over a next-token-layout mask (at least 1)."""
    if aggregation == "token-mean":
        return max(float((mask != 0).sum()), 1.0)
    if aggregation == "seq-mean":
        return max(float((mask != 0).any(dim=1).sum()), 1.0)
    return float(mask.shape[0])  # dr-grpo: the number of sequences


def _hint_ids(trajectories: list[Trajectory], fmt: ChatFormat, hints: dict[str, HintSet] | None,
              correct: torch.Tensor, seed: int) -> list[list[int]]:
    """Each row's hint message as token ids (none at all when ``hints`` is None: the no-hint ablation)."""
    if hints is None:
        return [[] for _ in trajectories]
    out = []
    for row, (t, good) in enumerate(zip(trajectories, correct.tolist())):
        text = hints[t.domain].choose(bool(good), seed + row)
        out.append(fmt.hint_ids(t.conversation.opening_messages(), t.conversation.tools, text))
    return out


def _head(model):
    """The output projection (hidden -> logits); refused for models that transform logits after it."""
    for name in ("final_logit_softcapping", "logit_scale"):
        if getattr(model.config, name, None) not in (None, 1.0):
            raise ValueError(f"the local trainer computes logits as the output embedding of the hidden states; "
                             f"this model's config sets {name}, which it does not apply")
    return model.get_output_embeddings()


def _hidden(model, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """The last hidden states (B, T, H): the model's body without its output head."""
    return model.base_model(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state


def _prefix_groups(trajectories: list[Trajectory]) -> list[slice]:
    """Runs of consecutive rows with the same opening (a task's n samples): they share one prompt forward."""
    groups, start = [], 0
    for row in range(1, len(trajectories) + 1):
        if row == len(trajectories) or _opening(trajectories[row]) != _opening(trajectories[start]):
            groups.append(slice(start, row))
            start = row
    return groups


def _opening(t: Trajectory) -> list[int]:
    return t.ids[: t.conversation.prompt_len]


class _SharedPrefix:
    """One forward of a group's common prompt, whose KV cache every row of the group then extends.

    The student's prompt forward keeps its graph; each micro-batch attaches to detached copies of its
    keys and values (``leaves``) and backpropagates into them, and ``backward()`` then sends the summed
    gradient through the prompt once. The gradient is the one a forward of every whole row would give, with
    the prompt computed once instead of n times. The student's prefix stops one token before the response
    (``length = prompt_len - 1``) so the position predicting the first response token lies in each row's own
    forward; the teacher's is the part before its hint (``hint_at``), without autograd.
    """

    def __init__(self, model, teacher, batch: Batch, group: slice, device):
        first = group.start
        self.length = int(batch.prompt_lens[first]) - 1
        self.hint_at = int(batch.hint_at[first])
        ids = batch.input_ids[first: first + 1].to(device)
        self.kv, self.leaves = _prefix_cache(model, ids[:, : self.length], grad=True)
        self.teacher_kv = _prefix_cache(teacher, ids[:, : self.hint_at], grad=False)[0] if teacher is not None \
            else None

    def cache(self, rows: int, teacher: bool = False):
        kv = self.teacher_kv if teacher else self.leaves
        if not kv:
            return None
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer, (keys, values) in enumerate(kv):
            cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), layer)
        return cache

    def backward(self) -> None:
        pairs = [(t, leaf.grad) for (kv, leaves) in zip(self.kv, self.leaves) for t, leaf in zip(kv, leaves)
                 if leaf.grad is not None]
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        self.kv = self.leaves = self.teacher_kv = None


def _prefix_cache(model, ids: torch.Tensor, *, grad: bool):
    """(per-layer (keys, values) of ``ids`` (1, L), detached requires-grad copies of them); ([], []) if L = 0."""
    if ids.shape[1] == 0:
        return [], []
    with torch.set_grad_enabled(grad):
        out = model.base_model(input_ids=ids, use_cache=True, **{_cache_arg(model): None})
    cache = getattr(out, _cache_arg(model))
    kv = [(layer.keys, layer.values) for layer in cache.layers]
    if not grad:
        return kv, []
    return kv, [(k.detach().requires_grad_(), v.detach().requires_grad_()) for k, v in kv]


def _cache_arg(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` (the old name is deprecated from 5.2x)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.base_model.forward).parameters else "past_key_values"


def _suffix_hidden(model, ids: torch.Tensor, attention: torch.Tensor, start: int, cache) -> torch.Tensor:
    """Hidden states of ``ids`` (B, S) placed after a cached prefix of ``start`` tokens (None: no prefix)."""
    rows, width = ids.shape
    full = torch.cat([torch.ones(rows, start, dtype=attention.dtype, device=ids.device), attention], dim=1)
    positions = torch.arange(start, start + width, device=ids.device).expand(rows, -1)
    out = model.base_model(input_ids=ids, attention_mask=full, position_ids=positions, use_cache=cache is not None,
                           **{_cache_arg(model): cache})
    return out.last_hidden_state


def _teacher_input(batch: Batch, rows: slice, hint_ids: list[list[int]], width: int, pad_id: int):
    """Each row's teacher input after its prefix: hint, then the student's tokens from ``hint_at`` (right-padded)."""
    seqs = []
    for row in range(rows.start, rows.stop):
        at, length = int(batch.hint_at[row]), int(batch.lengths[row])
        seqs.append(list(hint_ids[row]) + batch.input_ids[row, at:min(length, width)].tolist())
    # every row as wide as the widest (longest hint + the longest row): the realigning gather stays in bounds
    longest = max(len(h) for h in hint_ids[rows]) + width - int(batch.hint_at[rows.start])
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), longest), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[row, : len(seq)] = 1
    return ids, attention


def _micro_batch(model, teacher, batch: Batch, rows: slice, shared: _SharedPrefix, hint_ids, advantages,
                 config: TrainConfig, kl_coef: float, kl_scale: float, count: float, policy_agg: str, kl_agg: str,
                 head, teacher_head, device) -> dict:
    """Forward and backward of ``rows`` after their shared prefix; the loss metrics.

    Everything is in the columns after the prefix: next-token column ``j`` of the whole row is column
    ``j - L`` here. The columns cut off hold no assistant token, so every aggregate (with the global
    ``count``) equals the whole-row one.
    """
    algorithm, temperature, chunk = config.algorithm, config.rollout.temperature, config.optim.logits_chunk
    start = shared.length
    width = int(batch.lengths[rows].max())
    ids = batch.input_ids[rows, :width].to(device)
    attention = batch.attention_mask[rows, :width].to(device)
    assistant = batch.assistant_mask[rows, :width].to(device)
    mask = assistant[:, 1:][:, start:]
    targets = ids[:, 1:][:, start:]
    hidden = _suffix_hidden(model, ids[:, start:], attention[:, start:], start,
                            shared.cache(ids.shape[0]))[:, :-1]
    logprobs = selected_logprobs(hidden, head, targets, mask, temperature=temperature, chunk_size=chunk)
    kl_tokens, kept = None, None
    if teacher is not None:
        hint_lens = torch.tensor([len(hint_ids[r]) for r in range(rows.start, rows.stop)], dtype=torch.long,
                                 device=device)
        kept = truncate_turns(assistant, context_limit=config.rollout.context_limit,
                              max_turns=algorithm.max_turn_index, hint_lens=hint_lens)[:, 1:][:, start:] \
            if algorithm.truncate_turns else mask  # the ablation: KL on every assistant token
        with torch.no_grad():  # the teacher: no autograd graph, only its kept positions through the head
            teacher_ids, teacher_attention = _teacher_input(batch, rows, hint_ids, width, batch.pad_id)
            teacher_hidden = _suffix_hidden(teacher, teacher_ids.to(device), teacher_attention.to(device),
                                            shared.hint_at, shared.cache(ids.shape[0], teacher=True))
            # student column j (>= L) is the teacher's prediction from position j + h: here j + h - hint_at
            columns = torch.arange(start, width - 1, device=device).expand(ids.shape[0], -1) \
                + hint_lens.unsqueeze(1) - shared.hint_at
            teacher_hidden = teacher_hidden.gather(1, columns.unsqueeze(-1).expand(-1, -1, teacher_hidden.shape[-1]))
            if algorithm.kl_estimator != "full":
                teacher_lp = selected_logprobs(teacher_hidden, teacher_head, targets, kept, temperature=temperature,
                                               chunk_size=chunk)
        if algorithm.kl_estimator == "full":
            kl_tokens = selected_kl_full(hidden, teacher_hidden, head, teacher_head, kept, temperature=temperature,
                                         chunk_size=chunk)
        else:
            kl_tokens = (kl_k1 if algorithm.kl_estimator == "k1" else kl_k3)(logprobs, teacher_lp)
        kl_tokens = kl_tokens * kl_scale
    loss, metrics = tt_opd_loss(
        logprobs, logprobs.detach(), advantages[rows].to(device), mask, kl_tokens, kept,
        kl_coef=kl_coef if teacher is not None else 0.0, clip_eps=algorithm.clip_eps, aggregation=policy_agg,
        kl_aggregation=kl_agg, max_tokens=config.rollout.max_length, count=count,
    )
    if loss.requires_grad:  # rows without an assistant token (cut at the context limit) carry no gradient
        loss.backward()
    return metrics


def update(model, teacher, optimizer, trajectories: list[Trajectory], config: TrainConfig, fmt: ChatFormat, *,
           hints: dict[str, HintSet], kl_coef: float, hint_seed: int) -> UpdateResult:
    """Compute the loss over ``trajectories`` in micro-batches, step ``optimizer``; return the metrics.

    ``teacher`` is None for plain GRPO (no KL is computed at all). ``kl_coef`` is lambda for this step.
    """
    algorithm, temperature = config.algorithm, config.rollout.temperature
    pad_id = fmt.tokenizer.pad_token_id
    device = next(model.parameters()).device
    env_rewards, correct, rewards = shaped_rewards(trajectories, config)
    advantages = _advantages(rewards, config)
    batch = make_batch(trajectories, pad_id)
    policy_mask = batch.assistant_mask[:, 1:]
    policy_agg = "dr-grpo" if algorithm.advantage == "dr_grpo" else "token-mean"
    kl_agg = _KL_AGGREGATION[algorithm.kl_aggregation]
    count = _count(policy_mask, policy_agg)
    distil = teacher is not None

    hint_lens = torch.zeros(len(trajectories), dtype=torch.long)
    hint_ids: list[list[int]] = [[] for _ in trajectories]
    kept_all = policy_mask
    if distil:
        hint_ids = _hint_ids(trajectories, fmt, hints if algorithm.hints else None, correct, hint_seed)
        hint_lens = torch.tensor([len(h) for h in hint_ids], dtype=torch.long)
        kept_all = truncate_turns(batch.assistant_mask, context_limit=config.rollout.context_limit,
                                  max_turns=algorithm.max_turn_index, hint_lens=hint_lens)[:, 1:] \
            if algorithm.truncate_turns else policy_mask
    kl_scale = count / _count(kept_all, kl_agg) if bool((kept_all != 0).any()) else 0.0

    model.train()
    head = _head(model)
    teacher_head = _head(teacher) if distil else None
    chunk = config.optim.logits_chunk
    totals = {"policy_loss": 0.0, "loss": 0.0, "kl": 0.0}
    weighted = {"clip_frac": 0.0, "ppo_kl": 0.0}
    ratio_max = 0.0
    size = config.optim.micro_batch_size
    for group in _prefix_groups(trajectories):
        shared = _SharedPrefix(model, teacher, batch, group, device)
        for start in range(group.start, group.stop, size):
            rows = slice(start, min(start + size, group.stop))
            metrics = _micro_batch(model, teacher, batch, rows, shared, hint_ids, advantages, config, kl_coef,
                                   kl_scale, count, policy_agg, kl_agg, head, teacher_head, device)
            for key in totals:
                totals[key] += float(metrics[key])
            share = float(metrics["tokens"]) / max(float((policy_mask != 0).sum()), 1.0)
            for key in weighted:
                weighted[key] += float(metrics[key]) * share
            ratio_max = max(ratio_max, float(metrics["ratio_max"]))
        shared.backward()  # the prompt's share of the gradient, once for the whole group
        del shared

    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    result = {
        **totals, **weighted, "ratio_max": ratio_max, "grad_norm": float(grad_norm),
        "kl_coef": kl_coef if distil else 0.0,
        "reward_shaped": float(rewards.mean()), "advantage_abs": float(advantages.abs().mean()),
        "correct_rate": float(correct.float().mean()), "hint_tokens": float(hint_lens.float().mean()),
        "kl_kept_tokens": float((kept_all != 0).sum()) if distil else 0.0,
        "train_tokens": float(batch.lengths.sum()),
    }
    if not distil:
        result["kl"] = None
    return UpdateResult(result, totals["kl"] if distil else None)
