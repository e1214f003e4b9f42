"""The cosine length reward of Yeo et al. 2025, measured in the assistant's own tokens.

Yeo, Tong, Niu, Neubig, Yue, "Demystifying Long Chain-of-Thought Reasoning in LLMs" (2025) shape the outcome
reward with a cosine of the length t against a budget L_max:

    CosFn(t, L_max, r_0, r_L) = r_L + (r_0 - r_L) * (1 + cos(pi * t / L_max)) / 2

which is r_0 at t = 0 and falls smoothly to r_L at t = L_max. A correct trajectory gets r_0 = 1.1 down to
r_L = 0.7 (shorter correct answers earn more); a wrong one gets 0.0 down to -0.3 (TT-OPD's constants, from
the Healthcare AI GYM runs; Yeo et al.'s own wrong-answer curve rises with length instead). A trajectory
longer than L_max, or one flagged as truncated, gets the exceed penalty -0.5 whatever its outcome.

Length counts only tokens the assistant generated: tool results, environment observations and the prompt
are excluded (the anchor measured the whole transcript, so long tool outputs were punished as if the model
had rambled). Pass either per-trajectory counts or the assistant mask (1 on assistant-generated tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["CosineLengthReward", "cosine_length_reward"]


@dataclass(frozen=True)
class CosineLengthReward:
    """The constants of the cosine length reward (defaults: TT-OPD's)."""

    correct_start: float = 1.1
    """Reward of a correct trajectory of length 0."""
    correct_end: float = 0.7
    """Reward of a correct trajectory of length exactly ``max_length``."""
    wrong_start: float = 0.0
    """Reward of a wrong trajectory of length 0."""
    wrong_end: float = -0.3
    """Reward of a wrong trajectory of length exactly ``max_length``."""
    exceed: float = -0.5
    """Reward of any trajectory longer than ``max_length`` or flagged as truncated."""


def cosine_length_reward(
    correct: torch.Tensor,
    max_length: int,
    *,
    lengths: torch.Tensor | None = None,
    assistant_mask: torch.Tensor | None = None,
    truncated: torch.Tensor | None = None,
    constants: CosineLengthReward = CosineLengthReward(),
) -> torch.Tensor:
    """Per-trajectory cosine length reward, shape (B,), float32.

    ``correct`` is a (B,) bool (or 0/1) tensor of outcomes. Give exactly one of ``lengths`` (B,) assistant
    token counts, or ``assistant_mask`` (B, T) from which they are counted. A length ``t`` with
    ``0 <= t <= max_length`` follows the cosine from the start value to the end value; ``t > max_length``
    (strictly past the budget) or ``truncated[b]`` set gives ``constants.exceed``.
    """
    if (lengths is None) == (assistant_mask is None):
        raise ValueError("give exactly one of lengths (assistant token counts) or assistant_mask")
    if not max_length > 0:
        raise ValueError(f"max_length must be > 0, got {max_length}")
    if assistant_mask is not None:
        if assistant_mask.dim() != 2:
            raise ValueError(f"assistant_mask must be (batch, tokens), got shape {tuple(assistant_mask.shape)}")
        lengths = (assistant_mask != 0).sum(dim=-1)
    assert lengths is not None  # for the type checker; one of the two was given
    if lengths.dim() != 1 or correct.shape != lengths.shape:
        raise ValueError(
            f"correct {tuple(correct.shape)} and lengths {tuple(lengths.shape)} must both be (batch,)"
        )
    if bool((lengths < 0).any()):
        raise ValueError("lengths must be >= 0")
    t = lengths.to(torch.float32)
    good = correct.to(torch.bool)
    start = torch.where(good, constants.correct_start, constants.wrong_start)
    end = torch.where(good, constants.correct_end, constants.wrong_end)
    progress = t.clamp(max=float(max_length)) / float(max_length)
    reward = end + (start - end) * 0.5 * (1.0 + torch.cos(math.pi * progress))
    over = t > max_length
    if truncated is not None:
        if truncated.shape != lengths.shape:
            raise ValueError(f"truncated {tuple(truncated.shape)} must be (batch,) like lengths")
        over = over | truncated.to(torch.bool)
    return torch.where(over, torch.full_like(reward, constants.exceed), reward)
