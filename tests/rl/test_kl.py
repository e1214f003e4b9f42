"""Per-token KL estimators and the kept-turn KL: formulas, sign conventions, zero at equality, masking."""
import copy

import pytest
import torch

from medgym.rl import (
    KL_ESTIMATORS,
    insert_hint,
    kl_full,
    kl_k1,
    kl_k3,
    teacher_logits_for_student,
    teacher_logprobs_for_student,
    token_logprobs,
    truncate_turns,
    turn_kl,
)


def reference_estimator(log_probs, log_probs_base, estimator):
    """OpenRLHF's compute_approx_kl semantics, restated: r = log_probs - log_probs_base in float32;
    k1 = r, k3 = exp(-r) - 1 + r; the result clamped to [-10, 10]."""
    r = log_probs.float() - log_probs_base.float()
    value = r if estimator == "k1" else torch.exp(-r) - 1 + r
    return value.clamp(-10, 10)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_estimators_match_openrlhf_conventions(estimator):
    g = torch.Generator().manual_seed(0)
    student = -torch.rand(4, 50, generator=g) * 8
    teacher = -torch.rand(4, 50, generator=g) * 8
    student[0, :3] = torch.tensor([-30.0, -0.01, -15.0])  # r far outside the clamp, both ways
    teacher[0, :3] = torch.tensor([-0.01, -30.0, -0.5])
    assert torch.equal(KL_ESTIMATORS[estimator](student, teacher), reference_estimator(student, teacher, estimator))


def test_k1_sign_and_k3_nonnegative():
    student, teacher = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0])
    assert kl_k1(student, teacher).tolist() == [1.0, -1.0]
    assert (kl_k3(student, teacher) >= 0).all()


def test_k3_gradient_stays_finite_where_exp_would_overflow():
    student = torch.tensor([-200.0, -1.0], requires_grad=True)
    kl_k3(student, torch.tensor([-0.1, -1.5])).sum().backward()
    assert torch.isfinite(student.grad).all()


def test_full_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 7, 11, generator=g) * 3, torch.randn(3, 7, 11, generator=g) * 3
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=s), torch.distributions.Categorical(logits=t)
    )
    assert torch.allclose(kl_full(s, t), expected, atol=1e-5)
    assert torch.equal(kl_full(s, s), torch.zeros(3, 7))


def test_sampled_estimators_average_to_the_exact_reverse_kl():
    # x ~ student: E[k1] = E[k3] = KL(student || teacher)
    g = torch.Generator().manual_seed(2)
    s_logits, t_logits = torch.randn(16, generator=g), torch.randn(16, generator=g)
    s, t = torch.log_softmax(s_logits, -1), torch.log_softmax(t_logits, -1)
    x = torch.multinomial(s.exp(), 200_000, replacement=True, generator=g)
    exact = kl_full(s_logits, t_logits).item()
    assert kl_k1(s[x], t[x]).mean().item() == pytest.approx(exact, rel=0.05)
    assert kl_k3(s[x], t[x]).mean().item() == pytest.approx(exact, rel=0.05)


def test_kl_is_zero_when_teacher_equals_student_and_the_hint_is_empty(batch, tiny_lm):
    student = tiny_lm(seed=0)
    teacher = copy.deepcopy(student)
    ids, att, p = batch["input_ids"], batch["attention_mask"], batch["prompt_lens"]
    hinted = insert_hint(ids, p, [[], [], []], attention_mask=att)
    student_logits = student(ids, attention_mask=att).logits
    student_lp = token_logprobs(student_logits, ids)
    with torch.no_grad():
        teacher_logits = teacher(hinted.input_ids, attention_mask=hinted.attention_mask).logits
    teacher_lp = teacher_logprobs_for_student(teacher_logits, hinted.input_ids, p, hinted.hint_lens)
    teacher_full = teacher_logits_for_student(teacher_logits, p, hinted.hint_lens)
    kept = truncate_turns(batch["assistant_mask"], context_limit=12, hint_lens=hinted.hint_lens)[:, 1:]
    assert kept.sum() > 0
    per_token = {
        "k1": kl_k1(student_lp, teacher_lp),
        "k3": kl_k3(student_lp, teacher_lp),
        "full": kl_full(student_logits[:, :-1], teacher_full),
    }
    for name, values in per_token.items():
        assert torch.equal(values, torch.zeros_like(values)), name
        for aggregation in ("token-mean", "seq-mean"):
            assert turn_kl(values, kept, aggregation).item() == 0.0


def test_gradients_reach_the_student_only():
    student = torch.randn(2, 5, 9, requires_grad=True)
    teacher = torch.randn(2, 5, 9, requires_grad=True)
    mask = torch.ones(2, 5)
    (turn_kl(kl_full(student, teacher), mask) + turn_kl(kl_k3(student[..., 0], teacher[..., 0]), mask)).backward()
    assert student.grad is not None and teacher.grad is None


def test_all_masked_rows_give_finite_values_and_gradients():
    student = torch.randn(3, 6, requires_grad=True)
    teacher = torch.randn(3, 6)
    mask = torch.tensor([[0] * 6, [1, 1, 0, 0, 0, 0], [0] * 6])
    for aggregation in ("token-mean", "seq-mean"):
        value = turn_kl(kl_k3(student, teacher), mask, aggregation)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(student.grad).all()
        student.grad = None
    nothing = turn_kl(kl_k1(student, teacher), torch.zeros(3, 6), "seq-mean")
    assert nothing.item() == 0.0


def test_seq_mean_and_token_mean_differ_as_documented():
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0], [5.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    assert turn_kl(values, mask, "token-mean").item() == pytest.approx(9 / 5)
    assert turn_kl(values, mask, "seq-mean").item() == pytest.approx(3.0)


def test_inputs_are_not_modified():
    s, t = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    s0, t0 = s.clone(), t.clone()
    kl_full(s, t), kl_k1(s, t), kl_k3(s, t), token_logprobs(s, torch.zeros(2, 4, dtype=torch.long))
    assert torch.equal(s, s0) and torch.equal(t, t0)
