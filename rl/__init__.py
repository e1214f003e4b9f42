"""medgym.rl: the GRPO and TT-OPD math as small pure torch functions; trainers only call them.

Layouts. A batch is B right-padded sequences of T tokens, each ``prompt | response | padding``, where the
response interleaves assistant turns with tool and environment tokens. Two layouts appear:

* token layout (B, T): column t is token t. Assistant masks, turn spans and ``truncate_turns`` use it.
* next-token layout (B, T - 1): column j is the model's prediction of token j + 1 (``logits[:, :-1]``), as in
  OpenRLHF's ``action_mask``. Log-probs (``token_logprobs``), per-token KL and the losses use it; a
  token-layout mask ``m`` becomes ``m[:, 1:]``.

A TT-OPD step, in order::

    rewards    = cosine_length_reward(correct, max_length, assistant_mask=assistant_mask)
    advantages = grpo_advantages(rewards, group_size)
    hinted     = insert_hint(input_ids, prompt_lens, [ids of DEFAULT_HINTS.choose(c, seed) ...])
    teacher_lp = teacher_logprobs_for_student(teacher(hinted.input_ids, ...).logits, hinted.input_ids,
                                              prompt_lens, hinted.hint_lens)   # under torch.no_grad()
    kept       = truncate_turns(assistant_mask, context_limit=..., hint_lens=hinted.hint_lens)[:, 1:]
    loss, metrics = tt_opd_loss(student_lp, old_lp, advantages, assistant_mask[:, 1:],
                                kl_k3(student_lp, teacher_lp), kept, kl_coef=schedule.kl_coef)
    loss.backward(); optimiser.step()
    schedule.update_teacher_(teacher, student, kl=float(metrics["kl"]))
"""

from .advantages import dr_grpo_advantages, grpo_advantages
from .ema import TeacherSchedule, TeacherUpdate, copy_weights_, ema_update_
from .hints import (
    DEFAULT_HINTS,
    HintedBatch,
    HintSet,
    drop_hint_positions,
    hint_position_map,
    insert_hint,
    teacher_logits_for_student,
    teacher_logprobs_for_student,
)
from .kl import KL_ESTIMATORS, kl_full, kl_k1, kl_k3, token_logprobs, turn_kl
from .length_reward import CosineLengthReward, cosine_length_reward
from .logits import selected_kl_full, selected_logprobs
from .loss import grpo_policy_loss, tt_opd_loss
from .masked import AGGREGATIONS, aggregate, dr_grpo_mean, masked_mean, sequence_mean, token_mean
from .turns import truncate_turns, turn_index, turn_spans

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_HINTS",
    "KL_ESTIMATORS",
    "CosineLengthReward",
    "HintSet",
    "HintedBatch",
    "TeacherSchedule",
    "TeacherUpdate",
    "aggregate",
    "copy_weights_",
    "cosine_length_reward",
    "dr_grpo_advantages",
    "dr_grpo_mean",
    "drop_hint_positions",
    "ema_update_",
    "grpo_advantages",
    "grpo_policy_loss",
    "hint_position_map",
    "insert_hint",
    "kl_full",
    "kl_k1",
    "kl_k3",
    "masked_mean",
    "selected_kl_full",
    "selected_logprobs",
    "sequence_mean",
    "teacher_logits_for_student",
    "teacher_logprobs_for_student",
    "token_logprobs",
    "token_mean",
    "truncate_turns",
    "tt_opd_loss",
    "turn_index",
    "turn_kl",
    "turn_spans",
]
