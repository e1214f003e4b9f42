"""Per-token KL between the student and the teacher, and its reduction over the kept assistant tokens.

Three estimators of KL(student || teacher), one function each:

``kl_k1``   on the sampled token, ``r = log pi_S(x) - log pi_T(x)``. Unbiased for the reverse KL when x is
            sampled from the student, but high-variance and often negative per token.
``kl_k3``   on the sampled token, ``exp(-r) - 1 + r``: unbiased too, and never negative.
``kl_full`` over the whole vocabulary, ``sum_v pi_S(v) (log pi_S(v) - log pi_T(v))``: exact per position,
            needs both models' logits.

k1 and k3 are from John Schulman, "Approximating KL Divergence" (2020, http://joschu.net/blog/kl-approx.html).
They follow OpenRLHF's ``compute_approx_kl`` (``openrlhf/models/utils.py``) to the letter, so one can be
checked against the other: float32 arithmetic, ``r = log_probs - log_probs_base``, and the result clamped to
[-10, 10]. For k3, ``r`` is clamped at -10 before the ``exp`` (as OpenRLHF 0.11.2 does): the value is the
same (it hits the +10 clamp either way), but the gradient stays finite where ``exp(-r)`` would overflow.

The student's tensors carry gradients; the teacher's are detached here, so gradients reach only the student
(score the teacher under ``torch.no_grad()`` anyway, to save its activations). Every per-token tensor here
uses the next-token layout (column j predicts token j + 1), with a mask of the same shape: the kept-turn mask from
``medgym.rl.turns.truncate_turns``, shifted as ``mask[:, 1:]``.
"""

from __future__ import annotations

import torch

from .masked import Aggregation, aggregate

__all__ = ["KL_ESTIMATORS", "kl_full", "kl_k1", "kl_k3", "token_logprobs", "turn_kl"]

_CLAMP = 10.0


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token log-probs of the sequence's own tokens: (B, T - 1) float32, column j = log p(x_{j+1} | x_<=j).

    ``logits`` (B, T, V) come from a causal LM on ``input_ids`` (B, T). Computed in float32 on a new tensor;
    the caller's logits are not touched (divide by a sampling temperature before calling, if any: OpenRLHF's
    ``log_probs_from_logits`` divides the caller's logits in place).
    """
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be (batch, tokens, vocab) for input_ids {tuple(input_ids.shape)}"
        )
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return log_probs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def _log_ratio(student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    if student_logprobs.shape != teacher_logprobs.shape:
        raise ValueError(
            f"student {tuple(student_logprobs.shape)} and teacher {tuple(teacher_logprobs.shape)} log-probs "
            "differ in shape"
        )
    return student_logprobs.float() - teacher_logprobs.detach().float()


def kl_k1(student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k1 on sampled tokens: ``log pi_S - log pi_T``, clamped to [-10, 10]. Same shape as the inputs."""
    return _log_ratio(student_logprobs, teacher_logprobs).clamp(-_CLAMP, _CLAMP)


def kl_k3(student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 on sampled tokens: ``exp(-r) - 1 + r`` with ``r = log pi_S - log pi_T``, clamped to [-10, 10]."""
    r = _log_ratio(student_logprobs, teacher_logprobs).clamp(min=-_CLAMP)
    return ((-r).exp() - 1.0 + r).clamp(-_CLAMP, _CLAMP)


def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Exact reverse KL(pi_S || pi_T) at each position from logits (..., V): shape (...), float32, >= 0.

    Pass next-token logits that line up: ``student_logits[:, :-1]`` and
    ``medgym.rl.hints.teacher_logits_for_student(...)``.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} logits differ in shape"
        )
    student = torch.log_softmax(student_logits.float(), dim=-1)
    teacher = torch.log_softmax(teacher_logits.detach().float(), dim=-1)
    # clamp: rounding can leave a tiny negative sum where the distributions agree
    return (student.exp() * (student - teacher)).sum(dim=-1).clamp(min=0.0)


KL_ESTIMATORS = {"k1": kl_k1, "k3": kl_k3}
"""The sampled-token estimators by name, for configs: ``KL_ESTIMATORS[cfg.estimator](student, teacher)``."""


def turn_kl(
    kl_per_token: torch.Tensor,
    kept_mask: torch.Tensor,
    aggregation: Aggregation = "token-mean",
    *,
    max_tokens: int | None = None,
    count: float | None = None,
) -> torch.Tensor:
    """The KL over the assistant tokens of the kept turns, as a scalar.

    ``kept_mask`` selects the tokens (``truncate_turns(...)[:, 1:]``). A row with no kept token adds 0 and,
    under ``seq-mean``, is left out of the count; an all-masked batch gives 0, not NaN. See
    ``medgym.rl.masked`` for the aggregations and ``count``.
    """
    return aggregate(kl_per_token, kept_mask, aggregation, max_tokens=max_tokens, count=count)
