"""One GRPO / TT-OPD update on real rollouts of the tiny model, and the data order."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from medgym.rl.config import TrainConfig
from medgym.rl.local import TaskOrder, make_batch, shaped_rewards, update
from mini_update import played, update_config


def _config(**algorithm) -> TrainConfig:
    return update_config(12, **algorithm)


@pytest.fixture(scope="module")
def setup(tiny_model_dir, mini_build):
    return played(tiny_model_dir, mini_build, seed=1, max_new_tokens=12)


def _run(setup, config, micro_batch_size, teacher_seed=None, kl_coef=4.0):
    model, fmt, trajectories, hints = setup
    student = copy.deepcopy(model)
    teacher = None
    if config.algorithm.name == "tt_opd":
        teacher = copy.deepcopy(model)
        if teacher_seed is not None:  # a teacher that differs from the student, so the KL has a gradient
            g = torch.Generator().manual_seed(teacher_seed)
            with torch.no_grad():
                for p in teacher.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * 0.05)
    config.optim.micro_batch_size = micro_batch_size
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    result = update(student, teacher, optimizer, trajectories, config, fmt, hints=hints, kl_coef=kl_coef, hint_seed=7)
    return student, result


def test_a_tt_opd_step_changes_the_weights_and_reports_the_kl(setup):
    model = setup[0]
    student, result = _run(setup, _config(), 4, teacher_seed=3)
    changed = [n for (n, a), b in zip(student.named_parameters(), model.parameters()) if not torch.equal(a, b)]
    assert changed, "no parameter moved"
    m = result.metrics
    assert result.kl is not None and result.kl > 0 and m["kl"] == result.kl
    assert m["kl_coef"] == 4.0 and m["grad_norm"] > 0 and m["hint_tokens"] > 0
    assert m["loss"] == pytest.approx(m["policy_loss"] + 4.0 * m["kl"], rel=1e-5)


def test_grpo_needs_no_teacher(setup):
    student, result = _run(setup, _config(name="grpo"), 4)
    assert result.kl is None and result.metrics["kl"] is None and result.metrics["kl_coef"] == 0.0
    assert result.metrics["advantage_abs"] > 0  # the groups' rewards differ
    assert any(not torch.equal(a, b) for a, b in zip(student.parameters(), setup[0].parameters()))


@pytest.mark.parametrize("algorithm", [{}, {"kl_aggregation": "sequence_mean", "kl_estimator": "full"},
                                       {"advantage": "dr_grpo", "kl_estimator": "k1"}])
def test_micro_batches_give_the_full_batch_update(setup, algorithm):
    """Gradient accumulation over micro-batches of 1 equals one pass over the batch, truncated turns included."""
    config = _config(**algorithm)
    config.rollout.context_limit = max(len(t.ids) for t in setup[2]) - 30  # drops the last turn of long rows
    whole, a = _run(setup, config, 4, teacher_seed=5)
    pieces, b = _run(setup, config, 1, teacher_seed=5)
    assert a.metrics["kl_kept_tokens"] < sum(t.assistant_tokens for t in setup[2])  # truncation did bite
    assert a.kl == pytest.approx(b.kl, rel=1e-4)
    assert a.metrics["policy_loss"] == pytest.approx(b.metrics["policy_loss"], rel=1e-4, abs=1e-7)
    for x, y in zip(whole.parameters(), pieces.parameters()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_rewards_correctness_and_cosine_shaping(setup):
    _, _, trajectories, _ = setup
    config = _config()
    env, correct, shaped = shaped_rewards(trajectories, config)
    assert correct.tolist() == [r >= 0.5 for r in env.tolist()]
    # correct: 1.1 -> 0.7 and wrong: 0 -> -0.3 over max_length 64 assistant tokens; 36 tokens here (3 x 12)
    for t, value, good in zip(trajectories, shaped.tolist(), correct.tolist()):
        start, end = (1.1, 0.7) if good else (0.0, -0.3)
        x = min(t.assistant_tokens, 64) / 64
        assert value == pytest.approx(end + (start - end) * (1 + math.cos(math.pi * x)) / 2, abs=1e-6)
    trajectories[1].overflow = True
    try:
        assert shaped_rewards(trajectories, config)[2][1].item() == pytest.approx(-0.5)
    finally:
        trajectories[1].overflow = False
    config.reward.cosine = False
    assert torch.equal(shaped_rewards(trajectories, config)[2], env)


def test_batches_stop_at_the_last_assistant_token(setup):
    _, fmt, trajectories, _ = setup
    batch = make_batch(trajectories, fmt.tokenizer.pad_token_id)
    for row, t in enumerate(trajectories):
        last = max(i for i, m in enumerate(t.assistant_mask) if m)
        assert int(batch.lengths[row]) == last + 1
        assert batch.input_ids[row, : last + 1].tolist() == t.ids[: last + 1]
        assert int(batch.hint_at[row]) == t.conversation.hint_at


def test_task_order_is_a_seeded_permutation_per_epoch_and_resumes_from_a_cursor():
    tasks = [("d", f"t{i}") for i in range(5)]
    order = TaskOrder(tasks, seed=3)
    first = order.take(5) + order.take(5)
    assert sorted(first[:5]) == sorted(tasks) and sorted(first[5:]) == sorted(tasks) and first[:5] != first[5:]
    assert TaskOrder(tasks, seed=3).take(10) == first
    assert TaskOrder(tasks, seed=3, cursor=7).take(3) == first[7:]
    assert TaskOrder(tasks, seed=4).take(5) != first[:5]
    with pytest.raises(ValueError, match="no training tasks"):
        TaskOrder([], seed=0)


def _reference_step(setup, config, teacher_seed):
    """The update written the plain way: full logits of whole rows, one pass, no shared prompt, no chunks."""
    from medgym.rl import insert_hint, kl_k3, teacher_logprobs_for_student, token_logprobs, tt_opd_loss
    from medgym.rl.local.update import _advantages, _hint_ids

    model, fmt, trajectories, hints = setup
    student, teacher = copy.deepcopy(model), copy.deepcopy(model)
    g = torch.Generator().manual_seed(teacher_seed)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    batch = make_batch(trajectories, fmt.tokenizer.pad_token_id)
    _, correct, rewards = shaped_rewards(trajectories, config)
    hint_ids = _hint_ids(trajectories, fmt, hints, correct, 7)
    t = config.rollout.temperature
    ids, attention, mask = batch.input_ids, batch.attention_mask, batch.assistant_mask[:, 1:]
    logprobs = token_logprobs(student(input_ids=ids, attention_mask=attention).logits.float() / t, ids)
    hinted = insert_hint(ids, batch.hint_at, hint_ids, attention_mask=attention, pad_id=fmt.tokenizer.pad_token_id)
    with torch.no_grad():
        teacher_logits = teacher(input_ids=hinted.input_ids, attention_mask=hinted.attention_mask).logits.float() / t
    teacher_lp = teacher_logprobs_for_student(teacher_logits, hinted.input_ids, batch.hint_at, hinted.hint_lens,
                                              ids.shape[1])
    loss, metrics = tt_opd_loss(logprobs, logprobs.detach(), _advantages(rewards, config), mask,
                                kl_k3(logprobs, teacher_lp), mask, kl_coef=4.0)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), config.optim.grad_clip)
    torch.optim.SGD(student.parameters(), lr=0.1).step()
    return student, metrics


@pytest.mark.parametrize("micro_batch_size", [1, 4])
def test_the_fast_update_equals_the_plain_one(setup, micro_batch_size):
    """Shared prompt forwards, selected and chunked logits, a teacher without autograd: the same step."""
    config = _config()
    config.optim.logits_chunk = 5
    fast, result = _run(setup, config, micro_batch_size, teacher_seed=9)
    plain, metrics = _reference_step(setup, _config(), teacher_seed=9)
    assert result.metrics["policy_loss"] == pytest.approx(float(metrics["policy_loss"]), rel=1e-4, abs=1e-7)
    assert result.kl == pytest.approx(float(metrics["kl"]), rel=1e-4)
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
