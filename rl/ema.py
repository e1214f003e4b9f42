"""The EMA teacher: in-place parameter averaging, and the schedule that says when and how hard to distil.

TT-OPD's teacher is an exponential moving average of the student: every ``ema_every`` optimiser steps
``theta_T <- a * theta_T + (1 - a) * theta_S`` (a = 0.995), and every ``copy_every`` steps a hard copy
``theta_T <- theta_S`` (step 30, 60, ...: a copy wins over an EMA update due at the same step). In the
anchor's published runs neither update ever ran, so the teacher stayed at its initial weights; the tests here
check the closed form after k updates.

``TeacherSchedule`` is a small state machine the trainer advances once per optimiser step. Besides the
update it also carries the distillation coefficient lambda, with two optional safeguards from the anchor's
failed runs (teacher corruption and "re-engagement explosion" when distillation switched back on):

* a KL threshold: the first step whose KL exceeds it (or is not finite) starts a phase-out. From the next
  loss on, the coefficient falls linearly, reaching ``coef_floor`` on the ``phase_out_steps``-th loss (at
  once when 0 or 1), and never rises again, whatever the KL does later;
* a coefficient floor: the value the phase-out ends at (0 stops distilling altogether).

``state_dict()`` / ``load_state_dict()`` carry the counters across a checkpoint, so a resumed run updates
the teacher at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import torch
from torch import nn

__all__ = ["TeacherSchedule", "TeacherUpdate", "copy_weights_", "ema_update_"]


def _paired(teacher: nn.Module, student: nn.Module, what: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    get = (lambda m: dict(m.named_parameters())) if what == "parameters" else (lambda m: dict(m.named_buffers()))
    t, s = get(teacher), get(student)
    if t.keys() != s.keys():
        missing = sorted(set(t) ^ set(s))[:5]
        raise ValueError(f"teacher and student {what} differ in names (e.g. {missing})")
    pairs = [(t[name], s[name]) for name in t]
    for name, (a, b) in zip(t, pairs):
        if a.shape != b.shape:
            raise ValueError(
                f"teacher and student {what} {name!r} differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
            )
    return pairs


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place, without gradients: ``theta_T <- decay * theta_T + (1 - decay) * theta_S`` for every parameter.

    Buffers (rotary tables, norms' running stats) are copied from the student. Parameters are matched by
    name; the student's values are cast to the teacher's dtype and device, so a bf16 teacher can follow an
    fp32 student. ``decay`` 0 is a hard copy (prefer ``copy_weights_``, which is exact).
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must lie in [0, 1], got {decay}")
    for t, s in _paired(teacher, student, "parameters"):
        t.lerp_(s.detach().to(device=t.device, dtype=t.dtype), 1.0 - decay)
    for t, s in _paired(teacher, student, "buffers"):
        t.copy_(s)


@torch.no_grad()
def copy_weights_(teacher: nn.Module, student: nn.Module) -> None:
    """In place, without gradients: ``theta_T <- theta_S`` exactly, buffers included."""
    for what in ("parameters", "buffers"):
        for t, s in _paired(teacher, student, what):
            t.copy_(s)


class TeacherUpdate(enum.Enum):
    """What the teacher gets after an optimiser step."""

    NONE = "none"
    EMA = "ema"
    COPY = "copy"


class TeacherSchedule:
    """When to update the EMA teacher, and the distillation coefficient lambda to use.

    Call ``step(kl)`` once after each optimiser step, with that step's KL (a float, or None when not
    measured). It returns the update due at this step; ``update_teacher_`` does the same and applies it.
    ``kl_coef`` is the lambda for the *next* loss. Steps count from 1.
    """

    def __init__(
        self,
        *,
        ema_decay: float = 0.995,
        ema_every: int | None = 5,
        copy_every: int | None = 30,
        kl_coef: float = 4.0,
        kl_threshold: float | None = None,
        phase_out_steps: int = 0,
        coef_floor: float = 0.0,
    ) -> None:
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1], got {ema_decay}")
        for name, every in (("ema_every", ema_every), ("copy_every", copy_every)):
            if every is not None and every < 1:
                raise ValueError(f"{name} must be >= 1 (None to disable), got {every}")
        if not kl_coef >= 0.0:
            raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
        if kl_threshold is not None and not kl_threshold > 0.0:
            raise ValueError(f"kl_threshold must be > 0 (None to disable), got {kl_threshold}")
        if phase_out_steps < 0:
            raise ValueError(f"phase_out_steps must be >= 0, got {phase_out_steps}")
        if not 0.0 <= coef_floor <= kl_coef:
            raise ValueError(f"coef_floor must lie in [0, kl_coef={kl_coef}], got {coef_floor}")
        self.ema_decay = ema_decay
        self.ema_every = ema_every
        self.copy_every = copy_every
        self.base_coef = kl_coef
        self.kl_threshold = kl_threshold
        self.phase_out_steps = phase_out_steps
        self.coef_floor = coef_floor
        self.steps = 0
        """Optimiser steps taken so far."""
        self.phased_out_at: int | None = None
        """The step whose KL started the phase-out, None while distilling at full strength."""

    def due(self, step: int) -> TeacherUpdate:
        """The update the schedule prescribes after optimiser step ``step`` (1-based); pure."""
        if self.copy_every is not None and step % self.copy_every == 0:
            return TeacherUpdate.COPY
        if self.ema_every is not None and step % self.ema_every == 0:
            return TeacherUpdate.EMA
        return TeacherUpdate.NONE

    @property
    def kl_coef(self) -> float:
        """The distillation coefficient for the next loss: the base value, or less once phasing out."""
        if self.phased_out_at is None:
            return self.base_coef
        if self.phase_out_steps == 0:
            return self.coef_floor
        # one notch down right after the triggering step; the floor phase_out_steps - 1 steps later
        remaining = max(0.0, 1.0 - (self.steps - self.phased_out_at + 1) / self.phase_out_steps)
        return self.coef_floor + (self.base_coef - self.coef_floor) * remaining

    @property
    def phased_out(self) -> bool:
        """Whether the KL threshold has been crossed (it stays crossed)."""
        return self.phased_out_at is not None

    def step(self, kl: float | None = None) -> TeacherUpdate:
        """Advance one optimiser step; return the teacher update due now.

        A ``kl`` above ``kl_threshold``, or not finite (a corrupted teacher), starts the phase-out.
        """
        self.steps += 1
        if self.kl_threshold is not None and self.phased_out_at is None and kl is not None:
            value = float(kl)
            if not math.isfinite(value) or value > self.kl_threshold:
                self.phased_out_at = self.steps
        return self.due(self.steps)

    def update_teacher_(self, teacher: nn.Module, student: nn.Module, kl: float | None = None) -> TeacherUpdate:
        """``step(kl)``, then apply the update it returns to ``teacher`` in place."""
        update = self.step(kl)
        if update is TeacherUpdate.COPY:
            copy_weights_(teacher, student)
        elif update is TeacherUpdate.EMA:
            ema_update_(teacher, student, self.ema_decay)
        return update

    def state_dict(self) -> dict[str, Any]:
        """The counters, for a checkpoint (the settings come from the run's config)."""
        return {"steps": self.steps, "phased_out_at": self.phased_out_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters saved by ``state_dict``."""
        steps, phased = state.get("steps"), state.get("phased_out_at")
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"state 'steps' must be an int >= 0, got {steps!r}")
        if phased is not None and (not isinstance(phased, int) or not 1 <= phased <= steps):
            raise ValueError(f"state 'phased_out_at' must be None or an int in [1, {steps}], got {phased!r}")
        self.steps, self.phased_out_at = steps, phased

    def __repr__(self) -> str:
        return (
            f"TeacherSchedule(steps={self.steps}, ema_decay={self.ema_decay}, ema_every={self.ema_every}, "
            f"copy_every={self.copy_every}, kl_coef={self.kl_coef}, phased_out_at={self.phased_out_at})"
        )
