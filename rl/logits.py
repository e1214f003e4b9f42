"""Log-probs and KL from hidden states, computed only where the loss reads them, a chunk of positions at a time.

A causal LM's logits are ``head(hidden)``: (B, T, V) floats, 49k wide for SmolLM2. The losses read them only on
assistant tokens, a few hundred of a multi-thousand-token trajectory, so materialising every position is the
memory peak of an update and most of its head FLOPs. These functions take the hidden states (B, T, H) and a
selection mask, apply the head to the selected positions only, ``chunk_size`` positions at a time, and
recompute each chunk's logits in the backward pass (activation checkpointing) instead of keeping them: peak
memory is one chunk's (chunk_size, V) whatever the sequence length.

The results are in the next-token layout of ``medgym.rl.kl``: column j scores token j + 1 from position j;
pass ``hidden[:, :-1]``, ``input_ids[:, 1:]`` and a mask of that shape. Unselected columns are 0 and carry no
gradient. With every column selected they equal ``token_logprobs(head(hidden) / temperature, ids)`` and
``kl_full`` (the tests check it).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["selected_kl_full", "selected_logprobs"]

Head = Callable[[torch.Tensor], torch.Tensor]


def _chunk_logprobs(hidden: torch.Tensor, targets: torch.Tensor, head: Head, temperature: float) -> torch.Tensor:
    logits = head(hidden).float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _chunk_kl(student: torch.Tensor, teacher: torch.Tensor, head: Head, teacher_head: Head,
              temperature: float) -> torch.Tensor:
    s = torch.log_softmax(head(student).float() / temperature, dim=-1)
    with torch.no_grad():
        t = torch.log_softmax(teacher_head(teacher).float() / temperature, dim=-1)
    return (s.exp() * (s - t)).sum(dim=-1).clamp(min=0.0)  # clamp: rounding where the two agree


def _run_chunks(fn, tensors: tuple[torch.Tensor, ...], extra: tuple, chunk_size: int) -> torch.Tensor:
    """``fn`` over row chunks of ``tensors``, checkpointed when gradients flow; the results concatenated."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    pieces = []
    grad = torch.is_grad_enabled() and tensors[0].requires_grad
    for start in range(0, tensors[0].shape[0], chunk_size):
        part = tuple(t[start:start + chunk_size] for t in tensors)
        pieces.append(checkpoint(fn, *part, *extra, use_reentrant=False) if grad else fn(*part, *extra))
    return torch.cat(pieces) if pieces else tensors[0].new_zeros((0,), dtype=torch.float32)


def _scatter(values: torch.Tensor, select: torch.Tensor, where: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    out = torch.zeros(select.shape, dtype=torch.float32, device=select.device)
    return out.index_put(where, values)  # out of place: gradients reach ``values``


def selected_logprobs(hidden: torch.Tensor, head: Head, targets: torch.Tensor, select: torch.Tensor, *,
                      temperature: float = 1.0, chunk_size: int = 256) -> torch.Tensor:
    """log softmax(head(hidden) / temperature)[target] where ``select`` is set, 0 elsewhere: (B, L) float32.

    ``hidden`` (B, L, H) are the positions that predict ``targets`` (B, L); ``select`` (B, L) picks the
    positions computed (the union of the loss masks).
    """
    if hidden.shape[:2] != targets.shape or targets.shape != select.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)}, targets {tuple(targets.shape)} and select "
                         f"{tuple(select.shape)} must agree on (batch, positions)")
    where = (select != 0).nonzero(as_tuple=True)
    values = _run_chunks(_chunk_logprobs, (hidden[where], targets[where]), (head, temperature), chunk_size)
    return _scatter(values, select, where)


def selected_kl_full(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, head: Head, teacher_head: Head,
                     select: torch.Tensor, *, temperature: float = 1.0, chunk_size: int = 256) -> torch.Tensor:
    """The full-vocabulary reverse KL(student || teacher) where ``select`` is set, 0 elsewhere: (B, L) float32.

    ``teacher_hidden`` must already line up with ``student_hidden`` (the hint removed); the teacher gets no
    gradient.
    """
    if student_hidden.shape[:2] != select.shape or teacher_hidden.shape[:2] != select.shape:
        raise ValueError(f"student {tuple(student_hidden.shape)} and teacher {tuple(teacher_hidden.shape)} hidden "
                         f"states must match select {tuple(select.shape)} on (batch, positions)")
    where = (select != 0).nonzero(as_tuple=True)
    values = _run_chunks(_chunk_kl, (student_hidden[where], teacher_hidden[where].detach()),
                         (head, teacher_head, temperature), chunk_size)
    return _scatter(values, select, where)
