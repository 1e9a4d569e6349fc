"""Linear with zero in or out features, as torch builds it (AdaptiveLogSoftmaxWithLoss's tail projections
``in_features // div_value ** (i + 1)`` are 0 for small inputs): empty weights, torch's init on them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_linear_with_zero_out_features_gives_an_empty_output_and_gradient() -> None:
    layer = ds.nn.Linear(8, 0)
    assert layer.weight.shape == (0, 8) and layer.bias is not None and layer.bias.shape == (0,)
    x = ds.randn(2, 8, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 0)
    (y.sum() + x.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 8), np.float32))
    assert layer.weight.grad is not None and layer.weight.grad.shape == (0, 8)


def test_linear_with_zero_in_features_has_a_zero_bias_as_torch() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.Linear(0, 3)
    d = ds.nn.Linear(0, 3)
    np.testing.assert_array_equal(d.bias.detach().numpy(), t.bias.detach().numpy())  # U(-0, 0): torch's bound 0
    np.testing.assert_array_equal(d(ds.zeros(2, 0)).detach().numpy(), t(torch.zeros(2, 0)).detach().numpy())


def test_linear_refuses_negative_features_with_torchs_error_class() -> None:
    with pytest.raises(RuntimeError):
        torch.nn.Linear(8, -1)
    with pytest.raises(RuntimeError, match="out_features must be a non-negative integer, got -1") as caught:
        ds.nn.Linear(8, -1)
    assert isinstance(caught.value, ValueError)  # the library's ArgumentError still


def test_adaptive_log_softmax_with_a_zero_width_tail_matches_torch() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8])
    d = ds.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8])
    d.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    target = np.array([0, 5, 9])
    to = t(torch.from_numpy(x), torch.from_numpy(target))
    do = d(ds.from_numpy(x), ds.from_numpy(target))
    np.testing.assert_allclose(float(do.loss), float(to.loss), rtol=1e-5)
    np.testing.assert_allclose(do.output.detach().numpy(), to.output.detach().numpy(), rtol=1e-5, atol=1e-6)
