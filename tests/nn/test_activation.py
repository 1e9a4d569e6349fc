"""Activation modules against PyTorch: values and input gradients, with their options."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")

CASES = [
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.ELU(), torch.nn.ELU()),
    (nn.ELU(0.5), torch.nn.ELU(0.5)),
    (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Softmax(-1), torch.nn.Softmax(-1)),
    (nn.Softmax(0), torch.nn.Softmax(0)),
    (nn.LogSoftmax(-1), torch.nn.LogSoftmax(-1)),
    (nn.LogSoftmax(1), torch.nn.LogSoftmax(1)),
    (nn.Softplus(), torch.nn.Softplus()),
    (nn.Softplus(beta=2.0, threshold=5.0), torch.nn.Softplus(beta=2.0, threshold=5.0)),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.Identity(), torch.nn.Identity()),
    (nn.ReLU6(), torch.nn.ReLU6()),
    (nn.Hardtanh(-2.0, 3.0), torch.nn.Hardtanh(-2.0, 3.0)),
    (nn.SELU(), torch.nn.SELU()),
    (nn.CELU(0.5), torch.nn.CELU(0.5)),
    (nn.Mish(), torch.nn.Mish()),
    (nn.Softsign(), torch.nn.Softsign()),
    (nn.Softmin(1), torch.nn.Softmin(1)),
    (nn.LogSigmoid(), torch.nn.LogSigmoid()),
    (nn.Tanhshrink(), torch.nn.Tanhshrink()),
    (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (nn.Hardswish(), torch.nn.Hardswish()),
    (nn.Threshold(0.5, -2.0), torch.nn.Threshold(0.5, -2.0)),
    (nn.GLU(0), torch.nn.GLU(0)),
    (nn.PReLU(), torch.nn.PReLU()),
    (nn.PReLU(3, 0.1), torch.nn.PReLU(3, 0.1)),
]


@pytest.mark.parametrize(("ours", "ref"), CASES, ids=lambda m: repr(m))
def test_activation_matches_torch(check_op: Any, ours: nn.Module, ref: Any) -> None:
    x = (np.random.default_rng(0).standard_normal((4, 3, 5)) * 4).astype(np.float32)
    x[np.abs(x) < 1e-3] = 0.5  # away from kinks, where one-sided derivatives are a convention
    check_op(ours, ref, [x])


def test_softmax_default_dim_is_last_and_documented() -> None:
    y = nn.Softmax()(ds.randn(3, 4))
    np.testing.assert_allclose(y.numpy().sum(-1), np.ones(3), rtol=1e-6)


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        nn.GELU("fast")


def test_activations_have_no_parameters_and_readable_repr() -> None:
    assert nn.LeakyReLU(0.2).num_parameters() == 0
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softplus(beta=2.0)) == "Softplus(beta=2.0, threshold=20.0)"


def test_prelu_slopes_are_parameters_with_torchs_gradient() -> None:
    x = (np.random.default_rng(1).standard_normal((4, 3, 5)) * 4).astype(np.float32)
    ours, theirs = nn.PReLU(3, 0.1), torch.nn.PReLU(3, 0.1)
    ours(ds.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5)


def test_similarity_modules_match_torch() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 4, 6)).astype(np.float32)
    got = nn.CosineSimilarity(dim=1)(ds.tensor(a), ds.tensor(b)).numpy()
    np.testing.assert_allclose(got, torch.nn.CosineSimilarity(dim=1)(torch.tensor(a), torch.tensor(b)), rtol=1e-5)
    got = nn.PairwiseDistance(p=1.0)(ds.tensor(a), ds.tensor(b)).numpy()
    np.testing.assert_allclose(got, torch.nn.PairwiseDistance(p=1.0)(torch.tensor(a), torch.tensor(b)), rtol=1e-5)


def test_shrink_softmax2d_and_unflatten_match_torch(check_op: Any) -> None:
    x = (np.random.default_rng(3).standard_normal((2, 3, 4, 5)) * 2).astype(np.float32)
    x[np.abs(np.abs(x) - 0.5) < 1e-3] = 1.0
    check_op(nn.Softshrink(), torch.nn.Softshrink(), [x])
    check_op(nn.Hardshrink(0.7), torch.nn.Hardshrink(0.7), [x])
    check_op(nn.Softmax2d(), torch.nn.Softmax2d(), [x])
    check_op(nn.Softmax2d(), torch.nn.Softmax2d(), [x[0]])
    check_op(nn.Unflatten(-1, (5, 1)), torch.nn.Unflatten(-1, (5, 1)), [x])
    check_op(nn.Unflatten(1, (1, 3)), torch.nn.Unflatten(1, (1, 3)), [x])


def test_glu_dim_out_of_range_raises_like_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError):
        torch.nn.GLU(dim=3)(torch.ones(2, 4))
    with pytest.raises(ds.errors.OutOfRangeError, match="glu: dimension 3 is out of range"):
        nn.GLU(dim=3)(ds.ones(2, 4))  # was silently dim 3 % 2 = 1
    np.testing.assert_allclose(
        nn.GLU(dim=-2)(ds.ones(4, 2)).numpy(), torch.nn.GLU(dim=-2)(torch.ones(4, 2)).numpy(), rtol=1e-6
    )
