"""The clipped GRPO loss and TT-OPD's combined loss: a slow loop, metrics, and real optimiser steps."""
import math

import pytest
import torch

from medgym.rl import (
    cosine_length_reward,
    grpo_advantages,
    grpo_policy_loss,
    insert_hint,
    kl_full,
    kl_k3,
    teacher_logits_for_student,
    teacher_logprobs_for_student,
    token_logprobs,
    truncate_turns,
    tt_opd_loss,
    turn_kl,
)


def slow_policy_loss(logp, old, adv, mask, eps_low, eps_high, aggregation, max_tokens=None):
    """The specification, one token at a time."""
    rows = []
    for b in range(logp.shape[0]):
        row = []
        for t in range(logp.shape[1]):
            if mask[b, t]:
                ratio = math.exp(float(logp[b, t]) - float(old[b, t]))
                a = float(adv[b])
                clipped = min(max(ratio, 1 - eps_low), 1 + eps_high)
                row.append(-min(ratio * a, clipped * a))
        rows.append(row)
    if aggregation == "token-mean":
        tokens = [x for row in rows for x in row]
        return sum(tokens) / max(len(tokens), 1)
    if aggregation == "seq-mean":
        means = [sum(row) / len(row) for row in rows if row]
        return sum(means) / max(len(means), 1)
    return sum(x for row in rows for x in row) / (len(rows) * max_tokens)


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(5)
    old = -torch.rand(4, 9, generator=g) * 3
    logp = old + torch.randn(4, 9, generator=g) * 0.4
    adv = torch.randn(4, generator=g)
    mask = (torch.rand(4, 9, generator=g) < 0.7).long()
    mask[3] = 0  # a trajectory with nothing left
    return logp, old, adv, mask


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean", "dr-grpo"])
@pytest.mark.parametrize(("eps_low", "eps_high"), [(0.2, None), (0.2, 0.28)])
def test_policy_loss_matches_the_loop(tensors, aggregation, eps_low, eps_high):
    logp, old, adv, mask = tensors
    loss, metrics = grpo_policy_loss(
        logp, old, adv, mask, clip_eps=eps_low, clip_eps_high=eps_high, aggregation=aggregation, max_tokens=16
    )
    expected = slow_policy_loss(logp, old, adv, mask, eps_low, eps_high or eps_low, aggregation, 16)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics["tokens"].item() == mask.sum().item()
    assert 0.0 < metrics["clip_frac"].item() < 1.0


def test_clip_fraction_and_ppo_kl_by_hand():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.0, 1.5, 0.5, 1.1]]))  # ratios 1, 1.5, 0.5, 1.1
    adv = torch.tensor([1.0])
    _, metrics = grpo_policy_loss(logp, old, adv, torch.ones(1, 4))
    # with A > 0 the clipped term is taken where ratio > 1.2: one token of four
    assert metrics["clip_frac"].item() == pytest.approx(0.25)
    assert metrics["ppo_kl"].item() == pytest.approx(-logp.mean().item())
    assert metrics["ratio_max"].item() == pytest.approx(1.5)


def test_lambda_zero_is_plain_grpo_and_lambda_adds_the_kl(tensors):
    logp, old, adv, mask = tensors
    kl = torch.rand(4, 9)
    plain, _ = grpo_policy_loss(logp, old, adv, mask)
    zero, metrics = tt_opd_loss(logp, old, adv, mask, kl, mask, kl_coef=0.0)
    assert zero.item() == plain.item()
    assert metrics["kl"].item() > 0  # still reported
    combined, metrics = tt_opd_loss(logp, old, adv, mask, kl, mask)
    kl_mean = (kl * mask).sum() / mask.sum()
    assert combined.item() == pytest.approx(plain.item() + 4.0 * kl_mean.item(), abs=1e-6)
    assert metrics["kl_coef"].item() == 4.0 and metrics["kl_tokens"].item() == mask.sum().item()
    assert all(not v.requires_grad for v in metrics.values())


def test_kl_coef_without_kl_is_an_error(tensors):
    logp, old, adv, mask = tensors
    with pytest.raises(ValueError, match="kl_coef > 0 needs kl_per_token"):
        tt_opd_loss(logp, old, adv, mask)
    loss, metrics = tt_opd_loss(logp, old, adv, mask, kl_coef=0.0)
    assert metrics["kl"].item() == 0.0


def test_all_masked_rows_give_finite_loss_and_gradients(tensors):
    logp, old, adv, mask = tensors
    logp = logp.clone().requires_grad_(True)
    for aggregation in ("token-mean", "seq-mean", "dr-grpo"):
        empty = torch.zeros_like(mask)
        loss, metrics = tt_opd_loss(
            logp, old, adv, empty, kl_k3(logp, old), empty, aggregation=aggregation, max_tokens=9
        )
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(logp.grad).all()
        assert all(torch.isfinite(v) for v in metrics.values())
        logp.grad = None


def test_inputs_are_not_modified(tensors):
    logp, old, adv, mask = tensors
    kept = [t.clone() for t in (logp, old, adv, mask)]
    tt_opd_loss(logp, old, adv, mask, kl_k3(logp, old), mask, aggregation="seq-mean")
    assert all(torch.equal(a, b) for a, b in zip((logp, old, adv, mask), kept))


def _student_kl(logits, ids, teacher_lp, teacher_full, estimator):
    """Per-token KL(student || teacher) of a student's logits, by the named estimator."""
    if estimator == "k3":
        return kl_k3(token_logprobs(logits, ids), teacher_lp)
    return kl_full(logits[:, :-1], teacher_full)


@pytest.mark.parametrize("estimator", ["k3", "full"])
def test_one_step_on_the_combined_loss_lowers_kl_toward_the_teacher(batch, tiny_lm, estimator):
    student, teacher = tiny_lm(seed=0), tiny_lm(seed=1)
    ids, att, p, assistant = batch["input_ids"], batch["attention_mask"], batch["prompt_lens"], batch["assistant_mask"]
    correct = torch.tensor([True, False, True])
    rewards = cosine_length_reward(correct, 16, assistant_mask=assistant)
    advantages = grpo_advantages(rewards, 3)
    hinted = insert_hint(ids, p, [[60, 61], [62], []], attention_mask=att)
    with torch.no_grad():
        teacher_logits = teacher(hinted.input_ids, attention_mask=hinted.attention_mask).logits
    teacher_lp = teacher_logprobs_for_student(teacher_logits, hinted.input_ids, p, hinted.hint_lens)
    kept = truncate_turns(assistant, context_limit=13, hint_lens=hinted.hint_lens)[:, 1:]
    mask = assistant[:, 1:]
    assert 0 < kept.sum() < mask.sum()  # some turn was truncated

    teacher_full = teacher_logits_for_student(teacher_logits, p, hinted.hint_lens)

    logits = student(ids, attention_mask=att).logits
    student_lp = token_logprobs(logits, ids)
    kl = _student_kl(logits, ids, teacher_lp, teacher_full, estimator)
    loss, metrics = tt_opd_loss(student_lp, student_lp.detach(), advantages, mask, kl, kept, kl_coef=4.0)
    loss.backward()
    torch.optim.SGD(student.parameters(), lr=0.01).step()
    with torch.no_grad():
        kl_after = _student_kl(student(ids, attention_mask=att).logits, ids, teacher_lp, teacher_full, estimator)
    before, after = metrics["kl"].item(), turn_kl(kl_after, kept).item()
    assert before > 0.1
    assert after < 0.95 * before
    assert metrics["clip_frac"].item() == 0.0  # on-policy: ratio 1 everywhere


def test_a_grpo_step_moves_log_probs_with_the_advantage_sign(batch, tiny_lm):
    student = tiny_lm(seed=0)
    ids, att, mask = batch["input_ids"], batch["attention_mask"], batch["assistant_mask"][:, 1:]
    advantages = torch.tensor([1.0, -1.0, 0.0])

    def row_logprob():
        with torch.no_grad():
            lp = token_logprobs(student(ids, attention_mask=att).logits, ids)
        return (lp * mask).sum(-1)

    before = row_logprob()
    lp = token_logprobs(student(ids, attention_mask=att).logits, ids)
    loss, _ = tt_opd_loss(lp, lp.detach(), advantages, mask, kl_coef=0.0)
    loss.backward()
    torch.optim.SGD(student.parameters(), lr=0.05).step()
    after = row_logprob()
    assert after[0] > before[0] and after[1] < before[1]
