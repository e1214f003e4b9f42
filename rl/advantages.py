"""Group-relative advantages over the n rollouts of each prompt (GRPO and Dr. GRPO).

Rewards come in one flat (B,) tensor with the rollouts of a prompt next to each other: rows
``[g * n, (g + 1) * n)`` are the n rollouts of prompt g (OpenRLHF's ``rewards.reshape(-1, n)`` layout). The
result has the same shape and one scalar per trajectory; the policy loss broadcasts it over that
trajectory's tokens.

How the per-token loss is then normalised (token mean, sequence mean, or Dr. GRPO's constant) is chosen in
the policy loss (``medgym.rl.loss``), not here.
"""

from __future__ import annotations

import torch

__all__ = ["dr_grpo_advantages", "grpo_advantages"]


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (one per trajectory), got shape {tuple(rewards.shape)}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.float().reshape(-1, group_size)


def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO advantages: ``(r - mean_group) / (std_group + eps)``.

    Shao et al. 2024 (DeepSeekMath, the GRPO paper) normalise each reward by its group's mean and standard
    deviation. The std is the unbiased (n - 1) estimate, as ``torch.std`` and OpenRLHF's ``group_norm`` use;
    a group of one has std 0 (not NaN) and so advantage 0. A group whose rewards are all equal gets 0 too:
    ``eps`` keeps the division finite.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    groups = _groups(rewards, group_size)
    centred = groups - groups.mean(dim=-1, keepdim=True)
    variance = (centred**2).sum(dim=-1, keepdim=True) / max(group_size - 1, 1)
    return (centred / (variance.sqrt() + eps)).reshape(-1)


def dr_grpo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO advantages: ``r - mean_group``, with no division by the group's std.

    Liu et al. 2025 ("Understanding R1-Zero-Like Training: A Critical Perspective") show that dividing by
    the std over-weights prompts that are nearly always solved or nearly always failed, and that the
    per-sequence length normalisation biases towards long wrong answers. Drop both: centre only here, and
    aggregate the loss with the ``dr-grpo`` constant normaliser (``medgym.rl.masked.dr_grpo_mean``).
    """
    groups = _groups(rewards, group_size)
    return (groups - groups.mean(dim=-1, keepdim=True)).reshape(-1)
