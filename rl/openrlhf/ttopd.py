"""TT-OPD inside OpenRLHF 0.11.x: the EMA teacher, its log-probs, the distillation term and the teacher schedule.

Where each part lives (OpenRLHF has no teacher; this is the "in-process EMA teacher" design, option B of
``../shared/reference/openrlhf-integration.md``):

* **The teacher** is a second OpenRLHF ``Actor`` inside every policy actor process (``TTOPDPolicyModelActor``),
  outside DeepSpeed: a frozen copy of the student in the training dtype, plus an fp32 master copy on the CPU
  that the EMA is taken on when that dtype is 16-bit (at decay 0.995 a bf16 update ``0.005 * (s - t)`` is
  below bf16's resolution for most weights, so a bf16 teacher would silently stay put: the "stale teacher"
  failure). ZeRO-1/2 keep full student weights on every rank, so each rank updates its own teacher
  identically; ZeRO-3 is refused (its partitioned weights would need gathering, and OpenRLHF's own EMA is a
  silent no-op there).
* **Teacher log-probs** are computed by ``teacher_forward`` on the actor, called by ``TTOPDExperienceMaker``
  right after OpenRLHF's own actor forward: the student's sequences with the outcome-conditioned hint (a user
  message, as in the local backend) inserted where the opening's messages end, then realigned to the
  student's positions (``medgym.rl.insert_hint`` / ``teacher_logprobs_for_student``). They travel in
  ``Experience.base_action_log_probs``, a per-token field OpenRLHF pads, splits and batches (new ``Experience``
  fields would be dropped). The outcome comes from ``Experience.scores`` (the agent's 1.0/0.0), the hint
  texts from ``Experience.labels``; both survive batching too.
* **The loss**: ``TTOPDActorTrainer.training_step`` is OpenRLHF's, with the policy loss wrapped so that
  ``lambda * KL(student || teacher)`` (``medgym.rl.KL_ESTIMATORS``, reduced by ``medgym.rl.turn_kl``) is added
  over the assistant tokens of the kept turns: turn spans rebuilt from ``action_mask`` and cut by
  ``medgym.rl.truncate_turns`` (context limit counted with the hint, optional max turn index). The KL uses the
  same global denominators as OpenRLHF's policy loss (``loss_batch_info``), so its scale is the same across
  data-parallel ranks and gradient accumulation; a dropped turn adds nothing to the sum.
* **The schedule**: ``medgym.rl.TeacherSchedule`` (EMA every ``ema_every`` steps, hard copy every
  ``hard_copy_every``, the optional KL phase-out) advances once per global step at the end of the actor's
  ``fit``, i.e. after that step's optimiser updates and before ``broadcast_to_vllm``. A global step is one
  optimiser step when ``train.batch_size`` equals the rollout batch (what the launcher sets).

Plain GRPO is the same path with lambda 0: no teacher is built and no teacher forward runs.

``install_into_openrlhf()`` rebinds ``PolicyModelActor`` and ``PPOTrainer`` in OpenRLHF's modules; the run's
processes call it through ``medgym.rl.openrlhf.patches`` (see ``launch``). The run's settings come from the
resolved training config named by ``MEDGYM_OPENRLHF_CONFIG``.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import ray
import torch
from openrlhf.trainer import ppo_trainer as _ppo_trainer
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
from openrlhf.trainer.ray import ppo_actor as _ppo_actor

from medgym.rl import (
    KL_ESTIMATORS,
    TeacherSchedule,
    TeacherUpdate,
    copy_weights_,
    ema_update_,
    insert_hint,
    masked_mean,
    teacher_logprobs_for_student,
    truncate_turns,
    turn_kl,
)
from medgym.rl.local.chat import ChatFormat
from medgym.rl.openrlhf import CONFIG_ENV
from medgym.rl.openrlhf.dataset import TaskLabel

__all__ = [
    "EmaTeacher",
    "HintTokens",
    "TTOPDActorTrainer",
    "TTOPDExperienceMaker",
    "TTOPDPPOTrainer",
    "TTOPDPolicyModelActor",
    "TTOPDSettings",
    "assistant_mask",
    "distillation_loss",
    "hint_boundaries",
    "install_into_openrlhf",
    "kept_turn_mask",
    "teacher_action_logprobs",
]

_AGGREGATIONS = {"token_mean": "token-mean", "sequence_mean": "seq-mean"}
_UPDATE_CODES = {TeacherUpdate.NONE: 0.0, TeacherUpdate.EMA: 1.0, TeacherUpdate.COPY: 2.0}


@dataclass(frozen=True)
class TTOPDSettings:
    """TT-OPD's settings for one OpenRLHF run, from the training config (``TrainConfig``)."""

    kl_coef: float = 4.0
    """lambda; 0 is plain GRPO (no teacher)."""
    estimator: str = "k3"
    aggregation: str = "token-mean"
    ema_decay: float = 0.995
    ema_every: int | None = 5
    copy_every: int | None = 30
    kl_threshold: float | None = None
    coef_floor: float = 0.0
    phase_out_steps: int = 0
    hints: bool = True
    """False: the teacher scores the student's own input (the no-hint ablation)."""
    context_limit: int | None = None
    max_turns: int | None = None
    prompt: str = "policy"
    fp32_master: bool = True
    """Keep the EMA on an fp32 host copy when the teacher's weights are 16-bit."""

    def __post_init__(self) -> None:
        if self.estimator not in KL_ESTIMATORS:
            raise ValueError(f"OpenRLHF TT-OPD supports the sampled-token KL estimators {sorted(KL_ESTIMATORS)}, "
                             f"not {self.estimator!r} (the full-vocabulary KL runs on the local backend)")
        if self.aggregation not in _AGGREGATIONS.values():
            raise ValueError(f"aggregation must be one of {sorted(_AGGREGATIONS.values())}, got {self.aggregation!r}")

    @classmethod
    def from_config(cls, config) -> "TTOPDSettings":
        a = config.algorithm
        return cls(kl_coef=float(a.kl_coef), estimator=a.kl_estimator, aggregation=_AGGREGATIONS[a.kl_aggregation],
                   ema_decay=a.ema_decay, ema_every=a.ema_every, copy_every=a.hard_copy_every,
                   kl_threshold=a.kl_phase_out, coef_floor=min(a.kl_coef_floor, float(a.kl_coef)),
                   phase_out_steps=a.kl_phase_out_steps, hints=a.hints,
                   # truncate_turns off (the ablation): KL on every assistant token
                   context_limit=config.rollout.context_limit if a.truncate_turns else None,
                   max_turns=a.max_turn_index if a.truncate_turns else None,
                   prompt=getattr(config.rollout, "prompt", "policy"),
                   fp32_master=config.openrlhf.teacher_fp32_master)

    @classmethod
    def from_env(cls) -> "TTOPDSettings | None":
        """The settings of the run whose resolved config ``MEDGYM_OPENRLHF_CONFIG`` names (None when unset)."""
        path = os.environ.get(CONFIG_ENV)
        if not path:
            return None
        from medgym.rl.config import TrainConfig

        with open(path, encoding="utf-8") as f:
            return cls.from_config(TrainConfig.model_validate(json.load(f)))

    def schedule(self) -> TeacherSchedule:
        return TeacherSchedule(ema_decay=self.ema_decay, ema_every=self.ema_every, copy_every=self.copy_every,
                               kl_coef=self.kl_coef, kl_threshold=self.kl_threshold, coef_floor=self.coef_floor,
                               phase_out_steps=self.phase_out_steps)


# -- masks and positions ---------------------------------------------------------------------------------------


def assistant_mask(action_mask: torch.Tensor) -> torch.Tensor:
    """OpenRLHF's ``action_mask`` (B, T-1; column j marks token j+1) back in the token layout (B, T), long.

    ``medgym.rl.turn_spans`` of the result are the executor's ``action_ranges`` (two turns with no feedback
    between them read as one).
    """
    mask = (action_mask != 0).long()
    return torch.cat([torch.zeros_like(mask[:, :1]), mask], dim=1)


def hint_boundaries(sequences: torch.Tensor, action_mask: torch.Tensor, attention_mask: torch.Tensor,
                    generation_prompt_ids: Sequence[int] = ()) -> torch.Tensor:
    """(B,) where each row's hint goes: before the first generation prompt, else at the first action token.

    The first action token is the first 1 of the rebuilt assistant mask; when the tokens just before it are
    the chat template's generation prompt (ChatML's ``<|im_start|>assistant\\n``), the boundary moves before
    them, so that the hint message sits between the opening's messages and the assistant's turn (where the
    local backend puts it). A row with no action token gets its length (clamped to [1, T]).
    """
    assistant = assistant_mask(action_mask)
    rows, length = sequences.shape
    first = torch.where(assistant.any(dim=1), assistant.argmax(dim=1), attention_mask.sum(dim=1))
    g = len(generation_prompt_ids)
    if g:
        expected = torch.as_tensor(list(generation_prompt_ids), dtype=sequences.dtype, device=sequences.device)
        for b in range(rows):
            f = int(first[b])
            if f >= g + 1 and torch.equal(sequences[b, f - g:f], expected):
                first[b] = f - g
    return first.clamp(1, length)


def kept_turn_mask(action_mask: torch.Tensor, hint_lens: torch.Tensor, *, context_limit: int | None,
                   max_turns: int | None) -> torch.Tensor:
    """The assistant tokens whose KL counts, in ``action_mask``'s layout (B, T-1): whole turns, cut by
    ``medgym.rl.truncate_turns`` (a turn whose end plus the row's hint passes ``context_limit`` is dropped)."""
    kept = truncate_turns(assistant_mask(action_mask), context_limit=context_limit, max_turns=max_turns,
                          hint_lens=hint_lens.to(action_mask.device))
    return kept[:, 1:].to(action_mask.dtype)


# -- the teacher -----------------------------------------------------------------------------------------------


class HintTokens:
    """The hint token ids of one sample, from the tokenizer's chat template (a user message, as locally)."""

    _OPENING = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]

    def __init__(self, tokenizer, prompt: str = "policy", enabled: bool = True):
        self.tokenizer, self.enabled = tokenizer, enabled
        self.fmt = ChatFormat(tokenizer, prompt)
        closed = self.fmt.render(self._OPENING, None, False)
        opened = self.fmt.render(self._OPENING, None, True)
        self.generation_prompt_ids = self.fmt.encode(opened[len(closed):]) if opened.startswith(closed) else []

    def text(self, label, correct: bool) -> str:
        if not self.enabled:  # the no-hint ablation: nothing is inserted
            return ""
        parsed = TaskLabel.parse(label)
        return parsed.hint_set().choose(bool(correct), parsed.hint_seed)

    def ids(self, label, correct: bool) -> list[int]:
        return self.fmt.hint_ids(self._OPENING, None, self.text(label, correct))

    def batch(self, labels: Sequence, scores: torch.Tensor | None) -> list[list[int]]:
        """One hint per row: reinforcing where ``scores`` >= 0.5 (the agent's correct flag), corrective otherwise."""
        if scores is None:
            raise ValueError("TT-OPD needs Experience.scores (the agent's correct flag) to choose the hints")
        correct = (scores.detach().float().reshape(-1) >= 0.5).tolist()
        if len(correct) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(correct)} scores")
        return [self.ids(label, good) for label, good in zip(labels, correct)]


@torch.no_grad()
def teacher_action_logprobs(teacher, sequences: torch.Tensor, action_mask: torch.Tensor,
                            attention_mask: torch.Tensor, boundaries: torch.Tensor, hint_ids: Sequence[Sequence[int]],
                            *, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's log-prob of every student token, hint inserted and removed: ((B, T-1), hint lengths (B,)).

    ``teacher`` is an OpenRLHF ``Actor`` (its logits come back in float32, divided by its temperature, like
    the student's). The result is in ``action_mask``'s layout and zero outside it, as OpenRLHF's own
    ``action_log_probs`` are.
    """
    length = sequences.shape[1]
    hinted = insert_hint(sequences, boundaries, hint_ids, attention_mask=attention_mask, pad_id=pad_id)
    output = teacher(hinted.input_ids, attention_mask=hinted.attention_mask, return_output=True)
    logprobs = teacher_logprobs_for_student(output["logits"], hinted.input_ids, boundaries, hinted.hint_lens,
                                            student_len=length)
    return logprobs * (action_mask != 0).float(), hinted.hint_lens


def _student_module(actor) -> torch.nn.Module:
    """The Hugging Face model inside an OpenRLHF ``Actor`` (unwrapping the DeepSpeed engine)."""
    model = actor.model
    return getattr(model, "module", model)


class EmaTeacher:
    """The teacher's weights: ``actor`` (an OpenRLHF ``Actor``) runs the forwards; ``master``, an fp32 copy,
    takes the EMA when the actor's weights are 16-bit (None: the EMA is taken on the actor's weights)."""

    def __init__(self, actor, master: torch.nn.Module | None = None):
        self.actor, self.master = actor, master
        for module in (actor.model, master):
            if module is not None:
                module.eval()
                module.requires_grad_(False)

    @classmethod
    def from_student(cls, actor, *, fp32_master: bool | None = None) -> "EmaTeacher":
        """A teacher for ``actor`` (already a copy of the student); an fp32 CPU master when its weights are 16-bit."""
        model = actor.model
        dtype = next(model.parameters()).dtype
        if fp32_master is None:
            fp32_master = dtype in (torch.bfloat16, torch.float16)
        master = None
        if fp32_master:
            import copy

            master = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
        return cls(actor, master)

    @property
    def model(self) -> torch.nn.Module:
        return self.actor.model

    @torch.no_grad()
    def apply(self, update: TeacherUpdate, student: torch.nn.Module, decay: float) -> None:
        """Apply one scheduled update from ``student`` (a Hugging Face model): EMA, hard copy or nothing."""
        if update is TeacherUpdate.NONE:
            return
        target = self.master if self.master is not None else self.model
        if update is TeacherUpdate.COPY:
            copy_weights_(target, student)
        else:
            ema_update_(target, student, decay)
        if self.master is not None:
            copy_weights_(self.model, self.master)

    def to(self, device) -> "EmaTeacher":
        self.model.to(device)
        return self

    def state_dict(self) -> dict:
        source = self.master if self.master is not None else self.model
        return {name: value.detach().cpu() for name, value in source.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        if self.master is not None:
            self.master.load_state_dict(state)
            copy_weights_(self.model, self.master)
        else:
            self.model.load_state_dict(state)


# -- the loss ----------------------------------------------------------------------------------------------------


def _global_count(aggregation: str, loss_batch_info: dict) -> float | None:
    """The denominator count that makes ``turn_kl`` equal OpenRLHF's ``aggregate_loss`` over the step."""
    dp_size = float(loss_batch_info.get("dp_size") or 1)
    total = loss_batch_info.get("batch_num_tokens" if aggregation == "token-mean" else "global_batch_size")
    if total is None:
        return None
    count = float(total) / dp_size
    return count if count > 0 else None


def distillation_loss(student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, kept: torch.Tensor, *,
                      estimator: str = "k3", aggregation: str = "token-mean",
                      loss_batch_info: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the KL term to add, times lambda, to the loss; the kept tokens' mean KL, detached, for the logs).

    With ``loss_batch_info`` (OpenRLHF's per-step global token and sample counts) the term is normalised like
    OpenRLHF's policy loss; without it, over this batch alone.
    """
    kl = KL_ESTIMATORS[estimator](student_logprobs, teacher_logprobs)
    count = _global_count(aggregation, loss_batch_info) if loss_batch_info else None
    term = turn_kl(kl, kept, aggregation, count=count)
    return term, masked_mean(kl.detach(), kept)


class _PolicyPlusDistillation:
    """OpenRLHF's ``PolicyLoss`` with ``lambda * KL`` added; it sees the student's log-probs with gradients."""

    def __init__(self, policy_loss, teacher_logprobs, kept, kl_coef: float, settings: TTOPDSettings, info: dict):
        self.policy_loss, self.teacher_logprobs, self.kept = policy_loss, teacher_logprobs, kept
        self.kl_coef, self.settings, self.info = kl_coef, settings, info

    def __call__(self, log_probs, old_log_probs, advantages, action_mask=None, rollout_log_probs=None,
                 **loss_batch_info):
        loss, *rest = self.policy_loss(log_probs, old_log_probs, advantages, action_mask=action_mask,
                                       rollout_log_probs=rollout_log_probs, **loss_batch_info)
        kept = self.kept.to(log_probs.device)
        term, kl_mean = distillation_loss(log_probs, self.teacher_logprobs.to(log_probs.device), kept,
                                          estimator=self.settings.estimator, aggregation=self.settings.aggregation,
                                          loss_batch_info=loss_batch_info)
        tokens = (action_mask != 0).sum().clamp(min=1) if action_mask is not None else kept.numel()
        self.info["tt_opd/kl"] = kl_mean
        self.info["tt_opd/grpo_loss"] = loss.detach()
        self.info["tt_opd/kl_coef"] = torch.tensor(float(self.kl_coef), device=log_probs.device)
        self.info["tt_opd/kept_token_frac"] = (kept != 0).sum() / tokens
        return (loss + self.kl_coef * term, *rest)


class TTOPDActorTrainer(_ppo_actor.ActorPPOTrainer):
    """OpenRLHF's ``ActorPPOTrainer`` with TT-OPD's KL term; set on the trainer by ``attach_tt_opd``.

    ``policy_loss`` in OpenRLHF's logs is then the whole actor loss; ``tt_opd/grpo_loss`` is the GRPO part.
    """

    def attach_tt_opd(self, settings: TTOPDSettings, schedule: TeacherSchedule, hints: HintTokens | None) -> None:
        self.tt_settings, self.tt_schedule, self.tt_hints = settings, schedule, hints

    def training_step(self, experience, kl_ctl, step, loss_batch_info=None):
        coef = self.tt_schedule.kl_coef
        if coef <= 0.0 or self.tt_hints is None:
            experience.info["tt_opd/kl_coef"] = torch.zeros((), device=experience.action_mask.device)
            return super().training_step(experience, kl_ctl, step, loss_batch_info)
        teacher_logprobs = experience.base_action_log_probs
        if teacher_logprobs is None:
            raise RuntimeError("TT-OPD: this batch has no teacher log-probs (Experience.base_action_log_probs): "
                               "the run's PPOTrainer is not medgym's TTOPDPPOTrainer (async training is not "
                               "supported; were the patches installed?)")
        hint_lens = torch.tensor([len(h) for h in self.tt_hints.batch(experience.labels, experience.scores)])
        kept = kept_turn_mask(experience.action_mask, hint_lens, context_limit=self.tt_settings.context_limit,
                              max_turns=self.tt_settings.max_turns)
        policy_loss = self.actor_loss_fn
        self.actor_loss_fn = _PolicyPlusDistillation(policy_loss, teacher_logprobs, kept, coef, self.tt_settings,
                                                     experience.info)
        try:
            return super().training_step(experience, kl_ctl, step, loss_batch_info)
        finally:
            self.actor_loss_fn = policy_loss


# -- the Ray actors --------------------------------------------------------------------------------------------


class _TTOPDPolicyModelActor(_ppo_actor.PolicyModelActor.__ray_actor_class__):
    """OpenRLHF's policy actor plus the EMA teacher, ``teacher_forward`` and the schedule at the end of ``fit``."""

    def init_model_from_pretrained(self, strategy, pretrain, max_steps=None, vllm_engines=None):
        super().init_model_from_pretrained(strategy, pretrain, max_steps, vllm_engines)
        args = strategy.args
        self.tt_settings = TTOPDSettings.from_env() or TTOPDSettings(kl_coef=0.0)
        self.tt_schedule = self.tt_settings.schedule()
        self.teacher = None
        hints = None
        if self.tt_settings.kl_coef > 0:
            if args.ds.zero_stage == 3:
                raise ValueError("TT-OPD keeps an EMA teacher beside each ZeRO-1/2 policy replica; ZeRO-3 "
                                 "partitions the student's weights: use --ds.zero_stage 2")
            if args.ds.lora.rank > 0:
                raise ValueError("TT-OPD with LoRA is not supported: the teacher tracks the full weights")
            from openrlhf.models import Actor

            teacher = Actor(pretrain, attn_implementation=args.ds.attn_implementation,
                            param_dtype=args.ds.param_dtype, packing_samples=False,
                            temperature=args.rollout.temperature)
            self.teacher = EmaTeacher.from_student(teacher, fp32_master=None if self.tt_settings.fp32_master
                                                   else False).to(torch.cuda.current_device())
            copy_weights_(self.teacher.model, _student_module(self.actor))
            if self.teacher.master is not None:
                copy_weights_(self.teacher.master, _student_module(self.actor))
            hints = HintTokens(self.tokenizer, self.tt_settings.prompt, self.tt_settings.hints)
            self._load_teacher_checkpoint()
            if args.ds.enable_sleep:  # colocated: vLLM rolls out first; the teacher waits in host memory
                self.teacher.to("cpu")
        self.trainer.__class__ = TTOPDActorTrainer
        self.trainer.attach_tt_opd(self.tt_settings, self.tt_schedule, hints)

    def teacher_forward(self, sequences, action_mask, attention_mask, labels, scores, packed_seq_lens=None,
                        mm_train_inputs_list=None):
        """The teacher's action log-probs on one micro-batch of the student's sequences (CPU tensor)."""
        device = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
        self.teacher.to(device)
        hints = self.trainer.tt_hints
        hint_ids = hints.batch(labels, scores)
        boundaries = hint_boundaries(sequences, action_mask, attention_mask, hints.generation_prompt_ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        logprobs, _ = teacher_action_logprobs(self.teacher.actor, sequences.to(device), action_mask.to(device),
                                              attention_mask.to(device), boundaries.to(device), hint_ids, pad_id=pad)
        return logprobs.to("cpu")

    def fit(self, kl_ctl: float = 0):
        status = super().fit(kl_ctl)
        status.update(self.teacher_step(status.get("tt_opd/kl")))
        return status

    def teacher_step(self, kl: float | None) -> dict:
        """Advance the schedule one step and apply its update to the teacher (before the vLLM broadcast)."""
        update = self.tt_schedule.step(kl)
        if self.teacher is not None:
            self.teacher.apply(update, _student_module(self.actor), self.tt_schedule.ema_decay)
        return {"tt_opd/teacher_update": _UPDATE_CODES[update], "tt_opd/next_kl_coef": self.tt_schedule.kl_coef,
                "tt_opd/phased_out": float(self.tt_schedule.phased_out)}

    def offload_states(self):
        super().offload_states()
        if self.teacher is not None:
            self.teacher.to("cpu")
            torch.cuda.empty_cache()

    def reload_states(self):
        super().reload_states()
        if self.teacher is not None:
            self.teacher.to(torch.cuda.current_device())

    def _teacher_checkpoint(self) -> str:
        return os.path.join(self.strategy.args.ckpt.path, "_teacher", "latest.pt")

    def save_checkpoint(self, tag, client_states=None, metric_value=None, metric_key=None):
        super().save_checkpoint(tag, client_states, metric_value, metric_key)
        if self.teacher is None or not self.strategy.is_rank_0():
            return
        path = self._teacher_checkpoint()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save({"tag": tag, "schedule": self.tt_schedule.state_dict(), "weights": self.teacher.state_dict()},
                   path + ".tmp")
        os.replace(path + ".tmp", path)

    def _load_teacher_checkpoint(self) -> None:
        path = self._teacher_checkpoint()
        if self.strategy.args.ckpt.load_enable and os.path.exists(path):
            state = torch.load(path, map_location="cpu")
            self.tt_schedule.load_state_dict(state["schedule"])
            self.teacher.load_state_dict(state["weights"])


class TTOPDExperienceMaker(RemoteExperienceMaker):
    """OpenRLHF's experience maker plus the teacher forward, its log-probs in ``base_action_log_probs``."""

    def attach_tt_opd(self, settings: TTOPDSettings) -> None:
        self.tt_settings = settings
        self.tt_active = settings.kl_coef > 0

    @torch.no_grad()
    def make_experience(self, samples_list):
        experiences = super().make_experience(samples_list)
        if not self.tt_active:
            return experiences
        args = self.strategy.args
        refs = self.actor_model_group.async_run_method_batch(
            method_name="teacher_forward",
            sequences=[s.sequences for s in samples_list],
            action_mask=[s.action_mask for s in samples_list],
            attention_mask=[s.attention_mask for s in samples_list],
            labels=[s.labels for s in samples_list],
            scores=[s.scores for s in samples_list],
        )
        if args.train.colocate_all or args.train.colocate_actor_ref:
            ray.get(refs)
            ray.get(self.actor_model_group.async_run_method(method_name="empty_cache"))
        teacher = self._flatten_results(refs, args.ds.ring_attn_size * args.ds.tensor_parallel_size)
        for experience, logprobs in zip(experiences, teacher):
            experience.base_action_log_probs = logprobs
        return experiences


class _TTOPDPPOTrainer(_ppo_trainer.PPOTrainer.__ray_actor_class__):
    """OpenRLHF's synchronous PPO trainer with ``TTOPDExperienceMaker``; stops teacher forwards once the
    schedule has phased distillation out for good."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.experience_maker.__class__ = TTOPDExperienceMaker
        self.experience_maker.attach_tt_opd(TTOPDSettings.from_env() or TTOPDSettings(kl_coef=0.0))

    def ppo_train(self, global_steps):
        status = super().ppo_train(global_steps)
        if status.get("tt_opd/next_kl_coef", 1.0) <= 0.0:
            self.experience_maker.tt_active = False
        return status


TTOPDPolicyModelActor = ray.remote(num_gpus=1)(_TTOPDPolicyModelActor)
TTOPDPPOTrainer = ray.remote(_TTOPDPPOTrainer)


def install_into_openrlhf() -> None:
    """Make OpenRLHF's ``train()`` build medgym's policy actor and PPO trainer (idempotent)."""
    _ppo_actor.PolicyModelActor = TTOPDPolicyModelActor
    _ppo_trainer.PPOTrainer = TTOPDPPOTrainer
    for name in ("openrlhf.cli.train_ppo_ray", "__main__"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "PolicyModelActor", None) is not None:
            module.PolicyModelActor = TTOPDPolicyModelActor


READY = True
"""Set last: ``medgym.rl.openrlhf.patches`` installs only a fully imported module."""

if any(getattr(finder, "medgym_openrlhf_patches", False) for finder in sys.meta_path):
    install_into_openrlhf()  # the run's import hook saw OpenRLHF's modules load while this module was importing
