"""medgym's KL estimators and the distillation term against OpenRLHF's own ``compute_approx_kl`` and
``aggregate_loss``, on identical inputs."""
from __future__ import annotations

import pytest

REASON = "openrlhf is not importable: pip install --no-deps openrlhf==0.11.2 && pip install -e '.[openrlhf-cpu]'"
torch = pytest.importorskip("torch")
utils = pytest.importorskip("openrlhf.models.utils", reason=REASON)
loss_module = pytest.importorskip("openrlhf.models.loss", reason=REASON)
ttopd = pytest.importorskip("medgym.rl.openrlhf.ttopd", reason=REASON)

from medgym.rl import KL_ESTIMATORS  # noqa: E402


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(4, 37, generator=g) * 3 - 2
    teacher = torch.randn(4, 37, generator=g) * 3 - 2
    # values far outside the clamps, both signs: [-10, 10] on the result, r >= -10 before k3's exp
    student[0, :4] = torch.tensor([0.0, -30.0, 25.0, -0.001])
    teacher[0, :4] = torch.tensor([-40.0, 0.0, -1.0, 0.0])
    return student, teacher


@pytest.mark.parametrize("estimator", sorted(KL_ESTIMATORS))
def test_our_kl_equals_openrlhf_compute_approx_kl(estimator):
    student, teacher = _inputs()
    ours_s = student.clone().requires_grad_(True)
    theirs_s = student.clone().requires_grad_(True)
    ours = KL_ESTIMATORS[estimator](ours_s, teacher)
    theirs = utils.compute_approx_kl(theirs_s, teacher, kl_estimator=estimator)
    assert ours.shape == theirs.shape == student.shape
    assert torch.equal(ours, theirs)
    assert ours.abs().max() == 10.0  # the clamps were exercised
    (ours * torch.arange(37.0)).sum().backward()
    (theirs * torch.arange(37.0)).sum().backward()
    assert torch.allclose(ours_s.grad, theirs_s.grad)
    assert torch.isfinite(ours_s.grad).all()


@pytest.mark.parametrize("estimator", sorted(KL_ESTIMATORS))
@pytest.mark.parametrize("aggregation,token_level", [("token-mean", True), ("seq-mean", False)])
def test_distillation_term_matches_openrlhf_aggregate_loss(estimator, aggregation, token_level):
    """With OpenRLHF's per-step global counts (2 DP ranks, a step split into micro-batches) the TT-OPD term is
    exactly what ``aggregate_loss`` gives for OpenRLHF's own KL loss: same scale as the policy loss."""
    student, teacher = _inputs(1)
    kept = (torch.rand(4, 37, generator=torch.Generator().manual_seed(2)) > 0.3).long()
    kept[3] = 0  # a trajectory whose every turn was truncated
    info = {"dp_size": 2, "batch_num_tokens": torch.tensor(150.0), "global_batch_size": torch.tensor(7.0)}
    ours, kl_mean = ttopd.distillation_loss(student, teacher, kept, estimator=estimator, aggregation=aggregation,
                                            loss_batch_info=info)
    reference = loss_module.aggregate_loss(utils.compute_approx_kl(student, teacher, kl_estimator=estimator),
                                           kept.float(), token_level_loss=token_level, **info)
    assert torch.allclose(ours, reference, rtol=1e-6, atol=1e-7)
    expected_mean = (KL_ESTIMATORS[estimator](student, teacher) * kept).sum() / kept.sum()
    assert torch.allclose(kl_mean, expected_mean)
    local, _ = ttopd.distillation_loss(student, teacher, kept, estimator=estimator, aggregation=aggregation)
    reference_local = loss_module.aggregate_loss(utils.compute_approx_kl(student, teacher, kl_estimator=estimator),
                                                 kept.float(), token_level_loss=token_level)
    assert torch.allclose(local, reference_local, rtol=1e-6)


def test_kl_is_zero_when_teacher_equals_student():
    student, _ = _inputs()
    for estimator in KL_ESTIMATORS:
        term, mean = ttopd.distillation_loss(student, student.clone(), torch.ones_like(student), estimator=estimator)
        assert term == 0 and mean == 0
