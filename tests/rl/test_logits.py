"""Chunked, selected-position logits equal the full ones: values and gradients."""
import pytest
import torch

from medgym.rl import kl_full, selected_kl_full, selected_logprobs, token_logprobs


def _hidden(model, ids):
    return model.model(input_ids=ids).last_hidden_state


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_selected_logprobs_equal_the_full_ones_where_selected(tiny_lm, batch, chunk):
    model = tiny_lm(seed=0)
    ids, select = batch["input_ids"], batch["assistant_mask"][:, 1:]
    full = token_logprobs(model(input_ids=ids).logits.float() / 0.7, ids)
    hidden = _hidden(model, ids)[:, :-1]
    picked = selected_logprobs(hidden, model.lm_head, ids[:, 1:], select, temperature=0.7, chunk_size=chunk)
    keep = select != 0
    torch.testing.assert_close(picked[keep], full[keep], rtol=0, atol=1e-5)
    assert bool((picked[~keep] == 0).all())
    every = torch.ones_like(select)
    torch.testing.assert_close(selected_logprobs(hidden, model.lm_head, ids[:, 1:], every, temperature=0.7,
                                                 chunk_size=chunk), full, rtol=0, atol=1e-5)


def test_selected_logprobs_give_the_same_gradients(tiny_lm, batch):
    ids, select = batch["input_ids"], batch["assistant_mask"][:, 1:]
    weights = torch.linspace(-1, 1, select.numel()).reshape(select.shape)  # a loss that weighs every token
    grads = []
    for chunked in (False, True):
        model = tiny_lm(seed=0)
        if chunked:
            lp = selected_logprobs(_hidden(model, ids)[:, :-1], model.lm_head, ids[:, 1:], select, chunk_size=3)
        else:
            lp = token_logprobs(model(input_ids=ids).logits, ids)
        (lp * weights * select).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    # float32 sums taken in another order (chunks of 3) differ by a few 1e-6 on gradients of ~1e-2; a wrong
    # gradient is off by its own size
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-5)


def test_selected_kl_full_equals_kl_full(tiny_lm, batch):
    student, teacher = tiny_lm(seed=0), tiny_lm(seed=1)
    ids, select = batch["input_ids"], batch["assistant_mask"][:, 1:]
    reference = kl_full(student(input_ids=ids).logits[:, :-1] / 1.3, teacher(input_ids=ids).logits[:, :-1] / 1.3)
    with torch.no_grad():
        teacher_hidden = _hidden(teacher, ids)[:, :-1]
    got = selected_kl_full(_hidden(student, ids)[:, :-1], teacher_hidden, student.lm_head, teacher.lm_head, select,
                           temperature=1.3, chunk_size=4)
    keep = select != 0
    torch.testing.assert_close(got[keep], reference[keep], rtol=1e-5, atol=1e-6)
    assert bool((got[~keep] == 0).all()) and bool((got[keep] > 0).all())
    got.sum().backward()
    assert student.lm_head.weight.grad is not None and teacher.lm_head.weight.grad is None


def test_shapes_must_agree(tiny_lm, batch):
    model = tiny_lm(seed=0)
    ids = batch["input_ids"]
    with pytest.raises(ValueError, match="must agree"):
        selected_logprobs(_hidden(model, ids), model.lm_head, ids[:, 1:], ids[:, 1:])
