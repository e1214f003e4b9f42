"""Assistant turns in a multi-turn trajectory, and TT-OPD's turn-level truncation.

The input is an assistant mask over the token layout of a batch of right-padded sequences: shape (B, T),
1 on tokens the assistant generated and 0 on prompt, tool-result, environment and padding tokens. A turn is
a maximal run of 1s; spans are half-open ``(start, end)`` token indices. Two assistant turns separated by no
masked-out token read as one turn (OpenRLHF's ``action_mask`` loses turn boundaries the same way).

To use a token-layout mask on next-token log-probs (column j predicts token j + 1, see ``medgym.rl``), take
``mask[:, 1:]``.
"""

from __future__ import annotations

import torch

__all__ = ["truncate_turns", "turn_index", "turn_spans"]


def _bool_mask(assistant_mask: torch.Tensor) -> torch.Tensor:
    if assistant_mask.dim() != 2:
        raise ValueError(f"assistant_mask must be (batch, tokens), got shape {tuple(assistant_mask.shape)}")
    return assistant_mask != 0


def _starts(m: torch.Tensor) -> torch.Tensor:
    previous = torch.zeros_like(m)
    previous[:, 1:] = m[:, :-1]
    return m & ~previous


def turn_index(assistant_mask: torch.Tensor) -> torch.Tensor:
    """The 0-based index of the assistant turn each token belongs to, -1 for non-assistant tokens; (B, T) long."""
    m = _bool_mask(assistant_mask)
    index = _starts(m).long().cumsum(dim=-1) - 1
    return torch.where(m, index, torch.full_like(index, -1))


def turn_spans(assistant_mask: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the half-open ``(start, end)`` token spans of its assistant turns, in order."""
    m = _bool_mask(assistant_mask)
    following = torch.zeros_like(m)
    following[:, :-1] = m[:, 1:]
    starts, ends = _starts(m), m & ~following
    return [
        list(zip(s.nonzero().flatten().tolist(), (e.nonzero().flatten() + 1).tolist()))
        for s, e in zip(starts.cpu(), ends.cpu())
    ]


def truncate_turns(
    assistant_mask: torch.Tensor,
    *,
    context_limit: int | None = None,
    max_turns: int | None = None,
    hint_lens: torch.Tensor | None = None,
) -> torch.Tensor:
    """The assistant mask with whole turns dropped: the tokens whose KL term TT-OPD keeps.

    A turn is kept when it lies entirely within ``context_limit`` tokens, i.e. its end (exclusive) plus the
    row's hint length is at most ``context_limit``: ``hint_lens`` (B,) counts tokens inserted before the
    response in the teacher's input, which push every response token that far right in the teacher's
    context. With ``max_turns`` set, turns whose 0-based index is ``>= max_turns`` are dropped as well. None
    means no limit. A turn is never cut in the middle: either all of its tokens count or none do.

    Returns a new tensor with the input's shape and dtype.
    """
    m = _bool_mask(assistant_mask)
    if context_limit is not None and context_limit < 0:
        raise ValueError(f"context_limit must be >= 0, got {context_limit}")
    if max_turns is not None and max_turns < 1:
        raise ValueError(f"max_turns must be >= 1 (None for no limit), got {max_turns}")
    keep = m.clone()
    index = turn_index(assistant_mask)
    if context_limit is not None:
        positions = torch.arange(1, m.shape[1] + 1, device=m.device).expand_as(index)
        turn_count = max(int(index.max().item()) + 1, 1) if index.numel() else 1
        turn_end = torch.zeros(m.shape[0], turn_count, dtype=torch.long, device=m.device)
        token_end = torch.where(m, positions, torch.zeros_like(positions))
        turn_end = turn_end.scatter_reduce(1, index.clamp(min=0), token_end, reduce="amax")
        end_of_my_turn = turn_end.gather(1, index.clamp(min=0))
        if hint_lens is not None:
            if hint_lens.shape != (m.shape[0],):
                raise ValueError(f"hint_lens must be (batch,), got shape {tuple(hint_lens.shape)}")
            end_of_my_turn = end_of_my_turn + hint_lens.to(device=m.device, dtype=torch.long).unsqueeze(1)
        keep &= end_of_my_turn <= context_limit
    if max_turns is not None:
        keep &= index < max_turns
    return keep.to(assistant_mask.dtype)
