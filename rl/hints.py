"""Outcome-conditioned privileged hints: which text the teacher sees, where it goes, and how to take it out.

TT-OPD's teacher scores the student's own trajectory with a hint spliced in at the prompt/response
boundary: a reinforcing hint when the trajectory was correct, a corrective one when it was wrong. The
student never sees the hint. The hint tokens are then removed from the teacher's output so that the teacher's
prediction for every response token sits at the same position as the student's.

Layouts (B rows, right-padded; see ``medgym.rl``):

* token layout, (B, T): column t is token t. The student row is ``prompt (p) | response | padding``; the
  teacher row (``insert_hint``) is ``prompt (p) | hint (h) | response | padding``, T + max(h) long.
  Student token t is teacher token ``t`` when ``t < p`` and ``t + h`` otherwise (``hint_position_map``).
* next-token layout, (B, T - 1): column j is the prediction of token j + 1 (``logits[:, :-1]``). Student
  prediction j comes from teacher prediction ``j`` when ``j < p - 1`` and ``j + h`` otherwise: the prediction
  of the first response token is read from the *last hint position*, not from the last prompt position.
  ``teacher_logprobs_for_student`` and ``teacher_logits_for_student`` do this mapping.

Hints may differ per row, including empty hints (h = 0), for which the teacher row is the student row.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .kl import token_logprobs

__all__ = [
    "DEFAULT_HINTS",
    "HintSet",
    "HintedBatch",
    "drop_hint_positions",
    "hint_position_map",
    "insert_hint",
    "teacher_logits_for_student",
    "teacher_logprobs_for_student",
]


@dataclass(frozen=True)
class HintSet:
    """A domain's hint texts: reinforcing ones for correct trajectories, corrective ones for wrong ones.

    A hint must not give the answer away: it tells the teacher how the trajectory went, not what the truth
    is, so that the teacher's distribution differs from the student's where the outcome says it should.
    """

    reinforcing: tuple[str, ...]
    """Shown to the teacher when the trajectory was correct."""
    corrective: tuple[str, ...]
    """Shown to the teacher when the trajectory was wrong."""
    domain: str | None = None
    """The domain these texts were written for (None for the domain-neutral default)."""

    def __post_init__(self) -> None:
        for name in ("reinforcing", "corrective"):
            texts = getattr(self, name)
            if isinstance(texts, str) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"HintSet.{name} must be a non-empty tuple of non-empty strings")

    def choose(self, correct: bool | None, seed: int) -> str:
        """The hint for one trajectory: from ``reinforcing`` if correct, ``corrective`` if wrong.

        ``seed`` fixes the choice among several texts (the same seed gives the same text on any machine).
        An unknown outcome (None) gets no hint: the empty string.
        """
        if correct is None:
            return ""
        texts = self.reinforcing if correct else self.corrective
        return texts[random.Random(seed).randrange(len(texts))]


DEFAULT_HINTS = HintSet(
    reinforcing=(
        "The reasoning above reached the right conclusion. Keep each step grounded in the findings that were "
        "actually observed, and state the answer plainly.",
        "This approach works: the key findings were gathered before committing to an answer. Stay concise and "
        "consistent with the tool results.",
        "The work-up here is sound. Check that every number cited matches what the tools returned, then answer.",
    ),
    corrective=(
        "The reasoning above does not reach the right answer. Re-examine the clinical findings, check whether "
        "any essential information was never gathered, and reconsider the conclusion.",
        "Something in this work-up is wrong. Verify each step against the observed data, consider the "
        "alternatives that were dismissed, and look for a missed test or calculation.",
        "This conclusion is not supported by the evidence. Revisit the differential and the scoring rules, and "
        "make sure the answer follows from what the tools actually returned.",
    ),
)
"""Domain-neutral hints, used when a domain declares none."""


class HintedBatch(NamedTuple):
    """The teacher's input built by ``insert_hint``."""

    input_ids: torch.Tensor
    """(B, T + max(h)) long: prompt, hint, response, padding."""
    attention_mask: torch.Tensor
    """(B, T + max(h)) long: 1 on real tokens (hint included), 0 on padding."""
    hint_lens: torch.Tensor
    """(B,) long: the number of hint tokens inserted in each row."""


def _lengths(values: torch.Tensor | int | Sequence[int], batch: int, device: torch.device, name: str) -> torch.Tensor:
    lengths = torch.as_tensor(values, dtype=torch.long, device=device)
    if lengths.dim() == 0:
        lengths = lengths.expand(batch)
    if lengths.shape != (batch,):
        raise ValueError(f"{name} must be an int or have shape ({batch},), got shape {tuple(lengths.shape)}")
    return lengths


def _check_prompt_lens(prompt_lens: torch.Tensor, length: int) -> None:
    if bool((prompt_lens < 1).any()) or bool((prompt_lens > length).any()):
        raise ValueError(f"prompt lengths must lie in [1, {length}], got {prompt_lens.tolist()}")


def insert_hint(
    input_ids: torch.Tensor,
    prompt_lens: torch.Tensor | int | Sequence[int],
    hint_ids: Sequence[Sequence[int] | torch.Tensor],
    *,
    attention_mask: torch.Tensor | None = None,
    pad_id: int = 0,
) -> HintedBatch:
    """Build the teacher's input: each row's hint tokens inserted at its prompt/response boundary.

    ``input_ids`` (B, T) are the student's right-padded sequences, ``prompt_lens`` (B,) (or one int) the
    number of prompt tokens in each row, ``hint_ids`` one token-id sequence per row (possibly empty).
    ``attention_mask`` (B, T) marks the student's real tokens (all ones when None). Positions past the end
    of a row are filled with ``pad_id`` and masked out. The inputs are not modified.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, tokens), got shape {tuple(input_ids.shape)}")
    batch, length = input_ids.shape
    device = input_ids.device
    if len(hint_ids) != batch:
        raise ValueError(f"need one hint per row: {batch} rows, {len(hint_ids)} hints")
    prompt = _lengths(prompt_lens, batch, device, "prompt_lens")
    _check_prompt_lens(prompt, length)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    elif attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    rows = [torch.as_tensor(h, dtype=input_ids.dtype, device=device).reshape(-1) for h in hint_ids]
    hint_lens = torch.tensor([len(h) for h in rows], dtype=torch.long, device=device)
    max_hint = int(hint_lens.max().item()) if batch else 0
    hints = torch.full((batch, max(max_hint, 1)), pad_id, dtype=input_ids.dtype, device=device)
    for b, h in enumerate(rows):
        hints[b, : len(h)] = h

    u = torch.arange(length + max_hint, device=device).expand(batch, -1)
    p, h = prompt.unsqueeze(1), hint_lens.unsqueeze(1)
    in_prompt = u < p
    in_hint = (u >= p) & (u < p + h)
    source = torch.where(in_prompt, u, u - h)  # student column of a prompt or response position
    from_student = ~in_hint & (source < length)
    source = source.clamp(0, length - 1)
    hint_col = (u - p).clamp(0, hints.shape[1] - 1)

    pad = torch.full_like(u, pad_id, dtype=input_ids.dtype)
    ids = torch.where(from_student, input_ids.gather(1, source), pad)
    ids = torch.where(in_hint, hints.gather(1, hint_col), ids)
    mask = torch.where(from_student, attention_mask.gather(1, source), torch.zeros_like(u, dtype=attention_mask.dtype))
    mask = torch.where(in_hint, torch.ones_like(mask), mask)
    return HintedBatch(ids, mask.long(), hint_lens)


def hint_position_map(
    prompt_lens: torch.Tensor | int | Sequence[int], hint_lens: torch.Tensor | Sequence[int], length: int
) -> torch.Tensor:
    """For each student position t < ``length``, the teacher position holding it: t if t < p, else t + h.

    Shape (B, length), long. This is the token-layout map; for next-token columns pass ``prompt_lens - 1``.
    """
    hints = torch.as_tensor(hint_lens, dtype=torch.long)
    if hints.dim() != 1:
        raise ValueError(f"hint_lens must be (batch,), got shape {tuple(hints.shape)}")
    if bool((hints < 0).any()):
        raise ValueError("hint_lens must be >= 0")
    prompt = _lengths(prompt_lens, hints.shape[0], hints.device, "prompt_lens")
    t = torch.arange(length, device=hints.device).expand(hints.shape[0], -1)
    return torch.where(t < prompt.unsqueeze(1), t, t + hints.unsqueeze(1))


def drop_hint_positions(
    teacher_values: torch.Tensor,
    prompt_lens: torch.Tensor | int | Sequence[int],
    hint_lens: torch.Tensor | Sequence[int],
    length: int | None = None,
) -> torch.Tensor:
    """Teacher values (B, T_teacher, ...) without the hint rows, realigned to the student: (B, length, ...).

    Row b loses columns ``[p_b, p_b + h_b)``; what follows moves left by ``h_b``. ``length`` defaults to
    ``T_teacher - max(h)`` (what ``insert_hint`` produces). Any trailing dims (a vocabulary) come along.
    Works on either layout given the matching ``prompt_lens`` (see the module docstring).
    """
    hints = torch.as_tensor(hint_lens, dtype=torch.long, device=teacher_values.device)
    if teacher_values.dim() < 2 or hints.shape != (teacher_values.shape[0],):
        raise ValueError(
            f"teacher_values {tuple(teacher_values.shape)} must be (batch, positions, ...) with one hint length per row"
        )
    longest = int(hints.max().item()) if hints.numel() else 0
    if length is None:
        length = teacher_values.shape[1] - longest
    if length < 0 or length + longest > teacher_values.shape[1]:
        raise ValueError(
            f"teacher has {teacher_values.shape[1]} positions, too few for {length} student positions "
            f"plus a hint of {longest}"
        )
    index = hint_position_map(prompt_lens, hints, length).to(teacher_values.device)
    index = index.reshape(*index.shape, *([1] * (teacher_values.dim() - 2))).expand(
        -1, -1, *teacher_values.shape[2:]
    )
    return teacher_values.gather(1, index)


def teacher_logprobs_for_student(
    teacher_logits: torch.Tensor,
    teacher_input_ids: torch.Tensor,
    prompt_lens: torch.Tensor | int | Sequence[int],
    hint_lens: torch.Tensor | Sequence[int],
    student_len: int | None = None,
) -> torch.Tensor:
    """The teacher's log-prob of each student token, in the student's next-token layout: (B, student_len - 1).

    ``teacher_logits`` (B, T_t, V) come from the teacher on ``teacher_input_ids`` (``insert_hint``'s
    output). The hint's own tokens are excluded: the column that predicts the first response token is the
    teacher's prediction from the last hint position. ``student_len`` defaults to ``T_t - max(h)``.
    """
    hints = torch.as_tensor(hint_lens, dtype=torch.long, device=teacher_logits.device)
    if student_len is None:
        student_len = teacher_logits.shape[1] - (int(hints.max().item()) if hints.numel() else 0)
    prompt = _lengths(prompt_lens, teacher_logits.shape[0], teacher_logits.device, "prompt_lens")
    _check_prompt_lens(prompt, student_len)
    teacher = token_logprobs(teacher_logits, teacher_input_ids)
    return drop_hint_positions(teacher, prompt - 1, hints, student_len - 1)


def teacher_logits_for_student(
    teacher_logits: torch.Tensor,
    prompt_lens: torch.Tensor | int | Sequence[int],
    hint_lens: torch.Tensor | Sequence[int],
    student_len: int | None = None,
) -> torch.Tensor:
    """The teacher's next-token logits realigned to the student: (B, student_len - 1, V).

    Column j lines up with ``student_logits[:, :-1][:, j]``; use it for the full-vocabulary KL
    (``medgym.rl.kl.kl_full``). This copies a (B, T, V) tensor; ``teacher_logprobs_for_student`` is the
    cheap path for the sampled-token estimators.
    """
    hints = torch.as_tensor(hint_lens, dtype=torch.long, device=teacher_logits.device)
    if student_len is None:
        student_len = teacher_logits.shape[1] - (int(hints.max().item()) if hints.numel() else 0)
    prompt = _lengths(prompt_lens, teacher_logits.shape[0], teacher_logits.device, "prompt_lens")
    _check_prompt_lens(prompt, student_len)
    return drop_hint_positions(teacher_logits[:, :-1], prompt - 1, hints, student_len - 1)
