"""Group-relative advantages against the obvious per-group loop."""
import math

import pytest
import torch

from medgym.rl import dr_grpo_advantages, grpo_advantages


def slow_advantages(rewards, group_size, eps, use_std):
    """The specification: for each group of n rollouts, centre on the mean and (GRPO) divide by the std."""
    values = [float(r) for r in rewards]
    out = []
    for g in range(0, len(values), group_size):
        group = values[g : g + group_size]
        mean = sum(group) / len(group)
        if use_std:
            var = sum((r - mean) ** 2 for r in group) / max(len(group) - 1, 1)
            out += [(r - mean) / (math.sqrt(var) + eps) for r in group]
        else:
            out += [r - mean for r in group]
    return torch.tensor(out)


@pytest.mark.parametrize("group_size", [1, 2, 3, 8])
@pytest.mark.parametrize("seed", range(3))
def test_grpo_matches_the_loop(group_size, seed):
    rewards = torch.randn(4 * group_size, generator=torch.Generator().manual_seed(seed))
    expected = slow_advantages(rewards, group_size, 1e-6, use_std=True)
    assert torch.allclose(grpo_advantages(rewards, group_size), expected, atol=1e-5)


@pytest.mark.parametrize("group_size", [1, 3, 5])
def test_dr_grpo_matches_the_loop(group_size):
    rewards = torch.rand(6 * group_size, generator=torch.Generator().manual_seed(7))
    expected = slow_advantages(rewards, group_size, 0.0, use_std=False)
    assert torch.allclose(dr_grpo_advantages(rewards, group_size), expected, atol=1e-6)


def test_grpo_hand_values():
    # group (1, 0, 0): mean 1/3, unbiased std 1/sqrt(3)
    adv = grpo_advantages(torch.tensor([1.0, 0.0, 0.0]), 3, eps=1e-12)
    s = 1 / math.sqrt(3)
    assert torch.allclose(adv, torch.tensor([(2 / 3) / s, (-1 / 3) / s, (-1 / 3) / s]))


def test_equal_rewards_and_single_rollouts_give_zero_not_nan():
    rewards = torch.tensor([0.7, 0.7, 0.7, -0.3, -0.3, -0.3])
    assert torch.equal(grpo_advantages(rewards, 3), torch.zeros(6))
    assert torch.equal(grpo_advantages(torch.tensor([1.0, 2.0]), 1), torch.zeros(2))
    assert torch.equal(dr_grpo_advantages(rewards, 3), torch.zeros(6))


def test_advantages_are_zero_mean_per_group_and_inputs_untouched():
    rewards = torch.randn(12, generator=torch.Generator().manual_seed(3))
    before = rewards.clone()
    for adv in (grpo_advantages(rewards, 4), dr_grpo_advantages(rewards, 4)):
        assert torch.allclose(adv.reshape(3, 4).sum(-1), torch.zeros(3), atol=1e-5)
    assert torch.equal(rewards, before)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="do not split into groups of 4"):
        grpo_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="must be 1-D"):
        dr_grpo_advantages(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        grpo_advantages(torch.zeros(3), 0)
