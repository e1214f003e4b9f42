"""The cosine length reward against hand-computed values."""
import math

import pytest
import torch

from medgym.rl import CosineLengthReward, cosine_length_reward

C = math.cos(math.pi / 4)  # t = L_max / 4


@pytest.mark.parametrize(
    ("correct", "length", "expected"),
    [
        (True, 0, 1.1),
        (True, 100, 0.7),
        (True, 50, 0.9),  # cos(pi/2) = 0: the midpoint
        (True, 25, 0.7 + 0.4 * 0.5 * (1 + C)),  # 1.041421...
        (True, 75, 0.7 + 0.4 * 0.5 * (1 - C)),  # 0.758578...
        (False, 0, 0.0),
        (False, 50, -0.15),
        (False, 100, -0.3),
        (False, 25, -0.3 + 0.3 * 0.5 * (1 + C)),  # -0.043933...
        (True, 101, -0.5),
        (False, 10_000, -0.5),
    ],
)
def test_hand_computed_values(correct, length, expected):
    out = cosine_length_reward(torch.tensor([correct]), 100, lengths=torch.tensor([length]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(expected, abs=1e-6)


def test_numbers_written_out():
    out = cosine_length_reward(torch.tensor([True, False]), 100, lengths=torch.tensor([25, 25]))
    assert torch.allclose(out, torch.tensor([1.0414214, -0.0439340]), atol=1e-6)


def test_reward_falls_with_length_and_correct_beats_wrong():
    lengths = torch.arange(0, 101)
    right = cosine_length_reward(torch.ones(101, dtype=torch.bool), 100, lengths=lengths)
    wrong = cosine_length_reward(torch.zeros(101, dtype=torch.bool), 100, lengths=lengths)
    assert (right[1:] <= right[:-1]).all() and (wrong[1:] <= wrong[:-1]).all()
    assert (right > wrong).all()


def test_length_counts_assistant_tokens_only():
    # 3 assistant tokens, then 40 tool-output tokens, then 2 assistant tokens: length 5, not 45
    mask = torch.tensor([[1] * 3 + [0] * 40 + [1] * 2])
    from_mask = cosine_length_reward(torch.tensor([1]), 10, assistant_mask=mask)
    from_count = cosine_length_reward(torch.tensor([1]), 10, lengths=torch.tensor([5]))
    assert from_mask.item() == pytest.approx(from_count.item()) == pytest.approx(0.9)


def test_truncated_flag_gives_the_exceed_penalty():
    out = cosine_length_reward(
        torch.tensor([True, True]), 100, lengths=torch.tensor([30, 30]), truncated=torch.tensor([True, False])
    )
    assert out[0].item() == pytest.approx(-0.5) and out[1].item() > 0.7


def test_constants_are_configurable():
    yeo = CosineLengthReward(correct_start=2.0, correct_end=1.0, wrong_start=-10.0, wrong_end=0.0, exceed=-10.0)
    out = cosine_length_reward(
        torch.tensor([True, False, False, True]), 8, lengths=torch.tensor([0, 0, 8, 9]), constants=yeo
    )
    assert torch.allclose(out, torch.tensor([2.0, -10.0, 0.0, -10.0]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="exactly one of"):
        cosine_length_reward(torch.tensor([True]), 10)
    with pytest.raises(ValueError, match="max_length must be > 0"):
        cosine_length_reward(torch.tensor([True]), 0, lengths=torch.tensor([1]))
    with pytest.raises(ValueError, match="must both be"):
        cosine_length_reward(torch.tensor([True, False]), 10, lengths=torch.tensor([1]))
