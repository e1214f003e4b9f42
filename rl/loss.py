"""The GRPO clipped policy loss, and TT-OPD's combined loss ``L_GRPO + lambda * KL(student || teacher)``.

All per-token tensors share the next-token layout (B, L) with their mask (see ``medgym.rl``). Advantages are
one scalar per trajectory (``medgym.rl.advantages``), broadcast over that trajectory's tokens.

The clipped surrogate is PPO's (Schulman et al. 2017), as GRPO uses it (Shao et al. 2024):

    ratio = exp(log pi(x) - log pi_old(x))
    loss  = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)

reduced over the masked tokens by the chosen aggregation (``medgym.rl.masked``): ``token-mean``,
``seq-mean``, or ``dr-grpo`` (Liu et al. 2025's constant normaliser, used with ``dr_grpo_advantages``).
Plain GRPO is ``tt_opd_loss`` with ``kl_coef=0``.
"""

from __future__ import annotations

import torch

from .masked import Aggregation, aggregate, masked_mean

__all__ = ["grpo_policy_loss", "tt_opd_loss"]

_LOG_RATIO_CLAMP = 20.0  # exp(20) ~ 5e8: keeps the ratio finite after a large policy change


def _broadcast_advantages(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if advantages.shape == like.shape:
        return advantages.float()
    if advantages.shape == like.shape[:1]:
        return advantages.float().unsqueeze(-1).expand_as(like)
    raise ValueError(f"advantages {tuple(advantages.shape)} must be (batch,) or {tuple(like.shape)}")


def grpo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    aggregation: Aggregation = "token-mean",
    max_tokens: int | None = None,
    count: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped policy-gradient loss and its metrics.

    ``logprobs`` (B, L) are the current policy's log-probs of the sampled tokens (with gradients),
    ``old_logprobs`` those at sampling time (detached here), ``advantages`` (B,) or (B, L), ``mask`` (B, L)
    the tokens that count (assistant tokens). ``clip_eps_high`` defaults to ``clip_eps`` (set it higher for
    DAPO's clip-higher). ``max_tokens`` is needed by the ``dr-grpo`` aggregation; ``count`` is the global
    denominator count for micro-batching.

    Metrics (detached 0-dim tensors): ``policy_loss``; ``clip_frac``, the share of masked tokens where the
    clipped term was the one taken; ``ppo_kl``, the token mean of ``log pi_old - log pi`` (how far the
    policy moved since sampling); ``ratio_max``; ``tokens``, the number of masked-in tokens.
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != mask.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and mask "
            f"{tuple(mask.shape)} must have one shape"
        )
    if not clip_eps >= 0.0 or (clip_eps_high is not None and not clip_eps_high >= 0.0):
        raise ValueError("clip_eps and clip_eps_high must be >= 0")
    high = clip_eps if clip_eps_high is None else clip_eps_high
    adv = _broadcast_advantages(advantages, logprobs).detach()
    log_ratio = logprobs.float() - old_logprobs.detach().float()
    ratio = log_ratio.clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP).exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    loss = aggregate(per_token, mask, aggregation, max_tokens=max_tokens, count=count)
    with torch.no_grad():
        keep = mask != 0
        metrics = {
            "policy_loss": loss.detach(),
            "clip_frac": masked_mean((clipped < unclipped).float(), mask),
            "ppo_kl": masked_mean(-log_ratio.detach(), mask),
            "ratio_max": torch.where(keep, ratio.detach(), torch.zeros_like(ratio)).amax()
            if ratio.numel()
            else torch.zeros(()),
            "tokens": keep.sum().float(),
        }
    return loss, metrics


def tt_opd_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    kl_per_token: torch.Tensor | None = None,
    kl_mask: torch.Tensor | None = None,
    *,
    kl_coef: float = 4.0,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    aggregation: Aggregation = "token-mean",
    kl_aggregation: Aggregation | None = None,
    max_tokens: int | None = None,
    count: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TT-OPD's loss ``L_GRPO + kl_coef * KL`` and its metrics; ``kl_coef=0`` is plain GRPO.

    ``kl_per_token`` (B, L) is a per-token KL(student || teacher) from ``medgym.rl.kl`` (``kl_k1``,
    ``kl_k3`` or ``kl_full``), with gradients through the student only; ``kl_mask`` (B, L) keeps the
    assistant tokens of the kept turns (``truncate_turns(...)[:, 1:]``; defaults to ``mask``).
    ``kl_aggregation`` defaults to ``aggregation``. With ``kl_coef`` 0 the KL may be omitted; when given it
    is still reported but adds nothing to the loss or its gradient.

    Metrics (detached 0-dim tensors): those of ``grpo_policy_loss`` plus ``loss``, ``kl``, ``kl_coef`` and
    ``kl_tokens`` (the number of tokens in the KL).
    """
    if not kl_coef >= 0.0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    policy, metrics = grpo_policy_loss(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        clip_eps=clip_eps,
        clip_eps_high=clip_eps_high,
        aggregation=aggregation,
        max_tokens=max_tokens,
        count=count,
    )
    loss = policy
    kl_value = torch.zeros((), device=policy.device)
    kl_tokens = torch.zeros((), device=policy.device)
    if kl_per_token is None:
        if kl_coef > 0.0:
            raise ValueError("kl_coef > 0 needs kl_per_token (use kl_coef=0 for plain GRPO)")
    else:
        kept = mask if kl_mask is None else kl_mask
        if kl_per_token.shape != kept.shape:
            raise ValueError(
                f"kl_per_token {tuple(kl_per_token.shape)} and its mask {tuple(kept.shape)} differ in shape"
            )
        kl = aggregate(kl_per_token, kept, kl_aggregation or aggregation, max_tokens=max_tokens, count=count)
        if kl_coef > 0.0:
            loss = policy + kl_coef * kl
        kl_value = kl.detach()
        kl_tokens = (kept != 0).sum().float()
    metrics.update(
        loss=loss.detach(),
        kl=kl_value,
        kl_coef=torch.tensor(float(kl_coef), device=policy.device),
        kl_tokens=kl_tokens,
    )
    return loss, metrics
