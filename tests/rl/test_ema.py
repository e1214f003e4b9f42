"""The EMA teacher: closed form after k updates, exact copies, the schedule, safeguards and resume."""
import copy

import pytest
import torch

from medgym.rl import TeacherSchedule, TeacherUpdate, copy_weights_, ema_update_


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_k_updates_toward_a_fixed_student_match_the_closed_form(tiny_lm):
    teacher, student = tiny_lm(seed=0), tiny_lm(seed=1)
    t0, s = params(teacher), params(student)
    a, k = 0.9, 7
    for _ in range(k):
        ema_update_(teacher, student, a)
    # theta_T(k) = a^k theta_T(0) + (1 - a^k) theta_S
    for got, start, target in zip(teacher.parameters(), t0, s):
        assert torch.allclose(got, a**k * start + (1 - a**k) * target, atol=1e-6)
    assert all(torch.equal(p, q) for p, q in zip(student.parameters(), s))  # the student is untouched


def test_updates_toward_a_moving_student_match_the_unrolled_sum(tiny_lm):
    teacher, student = tiny_lm(seed=0), tiny_lm(seed=1)
    t0 = params(teacher)
    a, students = 0.995, []
    for step in range(4):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1 * (step + 1))
        students.append(params(student))
        ema_update_(teacher, student, a)
    # theta_T(k) = a^k theta_T(0) + sum_i (1 - a) a^(k - i) theta_S(i), i = 1..k
    k = len(students)
    for n, got in enumerate(teacher.parameters()):
        expected = a**k * t0[n] + sum((1 - a) * a ** (k - i) * students[i - 1][n] for i in range(1, k + 1))
        assert torch.allclose(got, expected, atol=1e-6)


def test_updates_need_no_grad_and_keep_requires_grad(tiny_lm):
    teacher, student = tiny_lm(seed=0), tiny_lm(seed=1)
    ema_update_(teacher, student, 0.5)
    assert all(p.grad is None and p.grad_fn is None for p in teacher.parameters())


def test_copy_is_exact_and_follows_a_low_precision_teacher(tiny_lm):
    teacher, student = tiny_lm(seed=0).to(torch.bfloat16), tiny_lm(seed=1)
    copy_weights_(teacher, student)
    assert all(torch.equal(t, s.to(torch.bfloat16)) for t, s in zip(teacher.parameters(), student.parameters()))
    ema_update_(teacher, student, 0.5)
    assert all(t.dtype == torch.bfloat16 for t in teacher.parameters())


def test_mismatched_models_are_rejected(tiny_lm):
    teacher = tiny_lm(seed=0)
    with pytest.raises(ValueError, match="differ in names"):
        ema_update_(teacher, torch.nn.Linear(2, 2), 0.9)
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\]"):
        ema_update_(teacher, copy.deepcopy(teacher), 1.5)


def test_default_schedule_ema_every_5_copy_every_30():
    schedule = TeacherSchedule()
    updates = [schedule.step() for _ in range(60)]
    ema = [i + 1 for i, u in enumerate(updates) if u is TeacherUpdate.EMA]
    copies = [i + 1 for i, u in enumerate(updates) if u is TeacherUpdate.COPY]
    assert ema == [5, 10, 15, 20, 25, 35, 40, 45, 50, 55]
    assert copies == [30, 60]
    assert schedule.kl_coef == 4.0 and schedule.ema_decay == 0.995


def test_the_teacher_changes_exactly_on_schedule(tiny_lm):
    teacher, student = tiny_lm(seed=0), tiny_lm(seed=1)
    schedule = TeacherSchedule(ema_decay=0.5, ema_every=2, copy_every=5)
    changed = []
    for step in range(1, 8):
        with torch.no_grad():  # stands in for the optimiser step
            for p in student.parameters():
                p.add_(0.01)
        before = params(teacher)
        update = schedule.update_teacher_(teacher, student)
        now = params(teacher)
        changed.append(any(not torch.equal(b, n) for b, n in zip(before, now)))
        if update is TeacherUpdate.COPY:
            assert all(torch.equal(t, s) for t, s in zip(now, params(student)))
    # EMA at 2, 4 and 6, a copy at 5, nothing at 1, 3 and 7
    assert changed == [False, True, False, True, True, True, False]


def test_resume_from_state_dict_gives_the_same_sequence():
    def run(schedule, kls):
        return [(schedule.step(kl), schedule.kl_coef) for kl in kls]

    kls = [0.1, 0.2, 0.3, 0.9, 0.1, 0.1, 0.2, 0.1] * 5
    settings = dict(ema_every=3, copy_every=7, kl_threshold=0.5, phase_out_steps=4, coef_floor=1.0)
    whole = run(TeacherSchedule(**settings), kls)
    first = TeacherSchedule(**settings)
    head = run(first, kls[:13])
    state = first.state_dict()
    resumed = TeacherSchedule(**settings)
    resumed.load_state_dict(dict(state))
    assert head + run(resumed, kls[13:]) == whole


def test_phase_out_is_monotonic_and_stops_at_the_floor():
    schedule = TeacherSchedule(kl_coef=4.0, kl_threshold=0.7, phase_out_steps=4, coef_floor=1.0)
    coefs = []
    for kl in [0.1, 0.5, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]:
        schedule.step(kl)
        coefs.append(schedule.kl_coef)
    assert coefs == [4.0, 4.0, 3.25, 2.5, 1.75, 1.0, 1.0, 1.0, 1.0]
    assert schedule.phased_out and schedule.phased_out_at == 3


def test_phase_out_without_ramp_stops_distilling_and_never_reengages():
    schedule = TeacherSchedule(kl_threshold=0.5)
    schedule.step(0.2)
    assert schedule.kl_coef == 4.0
    schedule.step(0.6)
    assert schedule.kl_coef == 0.0
    for _ in range(50):
        schedule.step(0.0)
    assert schedule.kl_coef == 0.0


def test_a_non_finite_kl_counts_as_over_the_threshold():
    schedule = TeacherSchedule(kl_threshold=10.0)
    schedule.step(float("nan"))
    assert schedule.phased_out and schedule.kl_coef == 0.0


def test_without_a_threshold_the_coefficient_never_moves():
    schedule = TeacherSchedule(kl_coef=2.0)
    for kl in [100.0, float("inf"), 0.0]:
        schedule.step(kl)
    assert schedule.kl_coef == 2.0 and not schedule.phased_out


def test_disabled_updates_and_bad_settings():
    schedule = TeacherSchedule(ema_every=None, copy_every=None)
    assert {schedule.step() for _ in range(100)} == {TeacherUpdate.NONE}
    with pytest.raises(ValueError, match="ema_every must be >= 1"):
        TeacherSchedule(ema_every=0)
    with pytest.raises(ValueError, match=r"coef_floor must lie in \[0, kl_coef=4.0\]"):
        TeacherSchedule(coef_floor=5.0)
    with pytest.raises(ValueError, match="phased_out_at"):
        TeacherSchedule().load_state_dict({"steps": 2, "phased_out_at": 3})
