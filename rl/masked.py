"""Masked reductions with guarded denominators, and the three ways a per-token loss becomes a scalar.

Every function here is pure: it reads its arguments and returns new tensors, never writing into a caller's
tensor. Masks may be bool, integer or float; they are cast to the values' dtype. Denominators are clamped, so
a fully masked row (a trajectory whose every turn was truncated, say) contributes 0, never NaN.

Aggregations (compare OpenRLHF's ``aggregate_loss`` in ``openrlhf/models/loss.py`` and Dr. GRPO, Liu et al.
2025, "Understanding R1-Zero-Like Training: A Critical Perspective"):

``token-mean``  sum of masked values / number of unmasked tokens in the batch. Long sequences weigh more.
``seq-mean``    mean over sequences of each sequence's token mean; fully masked sequences are left out of the
                count (OpenRLHF does the same).
``dr-grpo``     sum of masked values / (number of sequences * ``max_tokens``): a constant normaliser, so a
                token's weight does not depend on its sequence's length (Dr. GRPO's fix for the length bias
                of per-sequence normalisation).

``count`` overrides the denominator's count (tokens for ``token-mean``, sequences for the others) with a
global one when a batch is split into micro-batches: summing the micro-batch results then gives the
full-batch value.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["AGGREGATIONS", "Aggregation", "aggregate", "dr_grpo_mean", "masked_mean", "sequence_mean", "token_mean"]

Aggregation = Literal["token-mean", "seq-mean", "dr-grpo"]
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean", "dr-grpo")


def _masked(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values with masked-out entries set to 0, the mask as 0/1 in the values' dtype).

    ``torch.where`` rather than a product, so a NaN or inf at a masked-out position (padding, a dropped
    turn) cannot leak into the sum.
    """
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match values shape {tuple(values.shape)}")
    keep = mask != 0
    return torch.where(keep, values, torch.zeros_like(values)), keep.to(dtype=values.dtype)


def _check_count(count: float | None) -> None:
    if count is not None and not count > 0:
        raise ValueError(f"count must be > 0, got {count}")


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is set, over ``dim`` (all dims when None).

    The denominator is clamped to at least 1, so where the mask is all zero the result is 0, not NaN (the
    numerator is 0 there too). OpenRLHF's ``masked_mean`` divides by the raw mask sum and returns NaN.
    """
    kept, m = _masked(values, mask)
    total = kept.sum() if dim is None else kept.sum(dim=dim)
    count = m.sum() if dim is None else m.sum(dim=dim)
    return total / count.clamp(min=1.0)


def token_mean(values: torch.Tensor, mask: torch.Tensor, count: float | None = None) -> torch.Tensor:
    """Sum of masked values over the whole batch divided by the number of masked-in tokens (or ``count``)."""
    _check_count(count)
    kept, m = _masked(values, mask)
    denominator = m.sum().clamp(min=1.0) if count is None else count
    return kept.sum() / denominator


def sequence_mean(values: torch.Tensor, mask: torch.Tensor, count: float | None = None) -> torch.Tensor:
    """Mean over sequences (rows, dim 0) of each row's token mean (over dim -1).

    Rows with no masked-in token are excluded from the count of sequences; ``count`` replaces that count.
    """
    _check_count(count)
    kept, m = _masked(values, mask)
    tokens = m.sum(dim=-1)
    row_means = kept.sum(dim=-1) / tokens.clamp(min=1.0)
    present = (tokens > 0).to(values.dtype)
    denominator = present.sum().clamp(min=1.0) if count is None else count
    return (row_means * present).sum() / denominator


def dr_grpo_mean(values: torch.Tensor, mask: torch.Tensor, max_tokens: int, count: float | None = None) -> torch.Tensor:
    """Dr. GRPO's constant normaliser: sum of masked values / (number of rows, or ``count``, * ``max_tokens``).

    ``max_tokens`` is a fixed budget (the generation limit), the same for every batch, so no token's weight
    depends on the length of the sequence it belongs to (Liu et al. 2025, Dr. GRPO).
    """
    _check_count(count)
    if not max_tokens > 0:
        raise ValueError(f"max_tokens must be > 0 for dr-grpo aggregation, got {max_tokens}")
    kept, _ = _masked(values, mask)
    rows = values.shape[0] if values.dim() > 1 else 1
    n = max(rows, 1) if count is None else count
    return kept.sum() / (n * max_tokens)


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    aggregation: Aggregation,
    *,
    max_tokens: int | None = None,
    count: float | None = None,
) -> torch.Tensor:
    """Reduce a (batch, length) per-token tensor to a scalar by one of ``AGGREGATIONS``.

    ``max_tokens`` is required by ``dr-grpo`` and ignored otherwise; ``count`` is the global denominator
    count for micro-batching (see the module docstring).
    """
    if aggregation == "token-mean":
        return token_mean(values, mask, count)
    if aggregation == "seq-mean":
        return sequence_mean(values, mask, count)
    if aggregation == "dr-grpo":
        if max_tokens is None:
            raise ValueError("aggregation 'dr-grpo' needs max_tokens (the fixed per-sequence token budget)")
        return dr_grpo_mean(values, mask, max_tokens, count)
    raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")
