"""One GRPO / TT-OPD update on a batch of finished trajectories, with the math from ``medgym.rl``.

Order of a step (see ``medgym.rl``'s docstring for the layouts)::

    rewards     env reward -> correct -> cosine_length_reward(...)       (or the env reward itself)
    advantages  grpo_advantages / dr_grpo_advantages over groups of n
    hints       HintSet.choose(correct, seed) per row, rendered as a user message by the chat template
    per micro-batch:
        student log-probs (with grad); teacher log-probs on the hinted input (no grad), realigned
        kept = truncate_turns(assistant_mask, context_limit, max_turns, hint_lens)[:, 1:]
        loss = tt_opd_loss(...); loss.backward()
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
    insert_hint,
    hint_position_map,
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
    return Batch(ids, attention, assistant, hint_at, attention.sum(dim=1))


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
    for start in range(0, len(trajectories), size):
        rows = slice(start, start + size)
        width = int(batch.lengths[rows].max())
        ids = batch.input_ids[rows, :width].to(device)
        attention = batch.attention_mask[rows, :width].to(device)
        assistant = batch.assistant_mask[rows, :width].to(device)
        mask = assistant[:, 1:]
        hidden = _hidden(model, ids, attention)[:, :-1]
        logprobs = selected_logprobs(hidden, head, ids[:, 1:], mask, temperature=temperature, chunk_size=chunk)
        kl_tokens, kept = None, None
        if distil:
            hinted = insert_hint(ids, batch.hint_at[rows].to(device), hint_ids[rows], attention_mask=attention,
                                 pad_id=pad_id)
            kept = truncate_turns(assistant, context_limit=config.rollout.context_limit,
                                  max_turns=algorithm.max_turn_index, hint_lens=hinted.hint_lens)[:, 1:] \
                if algorithm.truncate_turns else mask  # the ablation: KL on every assistant token
            with torch.no_grad():  # the teacher: no autograd graph, only its kept positions through the head
                teacher_hidden = _hidden(teacher, hinted.input_ids, hinted.attention_mask)
                columns = hint_position_map(batch.hint_at[rows].to(device) - 1, hinted.hint_lens, width - 1)
                teacher_hidden = teacher_hidden.gather(1, columns.unsqueeze(-1).expand(-1, -1,
                                                                                       teacher_hidden.shape[-1]))
                if algorithm.kl_estimator != "full":
                    teacher_lp = selected_logprobs(teacher_hidden, teacher_head, ids[:, 1:], kept,
                                                   temperature=temperature, chunk_size=chunk)
            if algorithm.kl_estimator == "full":
                kl_tokens = selected_kl_full(hidden, teacher_hidden, head, teacher_head, kept,
                                             temperature=temperature, chunk_size=chunk)
            else:
                kl_tokens = (kl_k1 if algorithm.kl_estimator == "k1" else kl_k3)(logprobs, teacher_lp)
                del teacher_lp
            del teacher_hidden, hinted
            kl_tokens = kl_tokens * kl_scale
        loss, metrics = tt_opd_loss(
            logprobs, logprobs.detach(), advantages[rows].to(device), mask, kl_tokens, kept,
            kl_coef=kl_coef if distil else 0.0, clip_eps=algorithm.clip_eps, aggregation=policy_agg,
            kl_aggregation=kl_agg, max_tokens=config.rollout.max_length, count=count,
        )
        loss.backward()
        del hidden, logprobs, kl_tokens, loss  # free this micro-batch's graph before the next one is built
        for key in totals:
            totals[key] += float(metrics[key])
        share = float(metrics["tokens"]) / max(float((policy_mask != 0).sum()), 1.0)
        for key in weighted:
            weighted[key] += float(metrics[key]) * share
        ratio_max = max(ratio_max, float(metrics["ratio_max"]))

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
