"""Masked reductions: the three aggregations on hand-written tensors, all-masked rows, micro-batch counts."""
import pytest
import torch

from medgym.rl import aggregate, dr_grpo_mean, masked_mean, sequence_mean, token_mean

VALUES = torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0], [7.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
MASK = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0]])


def test_token_mean_is_sum_over_token_count():
    assert token_mean(VALUES, MASK).item() == pytest.approx((1 + 2 + 3 + 4 + 5 + 7) / 6)


def test_sequence_mean_skips_empty_rows():
    # row means 1.5, 4, 7; the all-masked fourth row is not counted
    assert sequence_mean(VALUES, MASK).item() == pytest.approx((1.5 + 4 + 7) / 3)


def test_dr_grpo_mean_uses_a_constant_normaliser():
    assert dr_grpo_mean(VALUES, MASK, max_tokens=10).item() == pytest.approx(22 / (4 * 10))


def test_masked_mean_per_row_gives_zero_for_an_empty_row():
    assert torch.allclose(masked_mean(VALUES, MASK, dim=-1), torch.tensor([1.5, 4.0, 7.0, 0.0]))


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean", "dr-grpo"])
def test_all_masked_gives_zero_and_finite_gradients(aggregation):
    values = torch.randn(3, 5, requires_grad=True)
    out = aggregate(values, torch.zeros(3, 5), aggregation, max_tokens=5)
    out.backward()
    assert out.item() == 0.0
    assert torch.isfinite(values.grad).all()


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean", "dr-grpo"])
def test_nan_at_masked_positions_does_not_leak(aggregation):
    values = VALUES.clone()
    values[0, 2] = float("nan")
    values[3] = float("inf")
    out = aggregate(values, MASK, aggregation, max_tokens=10)
    assert torch.isfinite(out)
    assert out == aggregate(VALUES, MASK, aggregation, max_tokens=10)


@pytest.mark.parametrize(
    ("aggregation", "count"), [("token-mean", 6.0), ("seq-mean", 3.0), ("dr-grpo", 4.0)]
)
def test_micro_batches_with_a_global_count_sum_to_the_full_batch(aggregation, count):
    full = aggregate(VALUES, MASK, aggregation, max_tokens=10)
    parts = sum(
        aggregate(VALUES[i : i + 2], MASK[i : i + 2], aggregation, max_tokens=10, count=count) for i in (0, 2)
    )
    assert parts.item() == pytest.approx(full.item())


def test_inputs_are_not_modified():
    values, mask = VALUES.clone(), MASK.clone()
    for aggregation in ("token-mean", "seq-mean", "dr-grpo"):
        aggregate(values, mask, aggregation, max_tokens=3)
    assert torch.equal(values, VALUES) and torch.equal(mask, MASK)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="needs max_tokens"):
        aggregate(VALUES, MASK, "dr-grpo")
    with pytest.raises(ValueError, match="unknown aggregation 'mean'"):
        aggregate(VALUES, MASK, "mean")
    with pytest.raises(ValueError, match="does not match"):
        token_mean(VALUES, MASK[:, :2])
    with pytest.raises(ValueError, match="count must be > 0"):
        token_mean(VALUES, MASK, count=0)
