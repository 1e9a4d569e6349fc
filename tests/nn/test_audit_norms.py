"""Batch and instance norm edge cases against torch (float64 eval precision, empty batches, instance
norm's running statistics), gaussian_nll_loss with a float variance and dropout3d's other dims."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_batch_norm_eval_keeps_float64_precision(affine: bool, requires_grad: bool) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    t = torch.nn.BatchNorm1d(4, affine=affine).double().eval()
    t.running_mean.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    t.running_var.copy_(torch.tensor([0.5, 1.5, 2.0, 3.0]))
    m = nn.BatchNorm1d(4, affine=affine).double().eval()
    m.load_state_dict({k: ds.from_numpy(v.numpy().copy()) for k, v in t.state_dict().items()})
    xd = ds.from_numpy(x.copy())
    xd.requires_grad_(requires_grad)
    out = m(xd)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4, 4)])
def test_batch_norm_of_an_empty_batch_gives_zero_parameter_gradients(shape: tuple[int, ...]) -> None:
    m = nn.BatchNorm1d(3) if len(shape) == 2 else nn.BatchNorm2d(3)
    x = ds.zeros(*shape, requires_grad=True)
    y = m(x)
    assert y.shape == shape
    y.sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    np.testing.assert_array_equal(m.weight.grad.numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(m.bias.grad.numpy(), np.zeros(3, np.float32))
    assert x.grad is not None and x.grad.shape == shape


def _set_affine(t: Any, d: Any, rng: np.random.Generator) -> None:
    w, b = rng.standard_normal(t.num_features), rng.standard_normal(t.num_features)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(w))
        t.bias.copy_(torch.tensor(b))
    d.load_state_dict({k: ds.from_numpy(v.numpy().copy()) for k, v in t.state_dict().items()})


@pytest.mark.parametrize("spatial", [1, 2, 3])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_with_running_stats_matches_torch(spatial: int, affine: bool, momentum: Any) -> None:
    rng = np.random.default_rng(spatial)
    name = f"InstanceNorm{spatial}d"
    t = getattr(torch.nn, name)(3, affine=affine, track_running_stats=True, momentum=momentum).double()
    d = getattr(nn, name)(3, affine=affine, track_running_stats=True, momentum=momentum).double()
    if affine:
        _set_affine(t, d, rng)
    assert set(d.state_dict()) == set(t.state_dict())
    for step, training in enumerate([True, True, False, True, False]):
        t.train(training)
        d.train(training)
        shape = [2, 3] + [4] * spatial
        x = rng.standard_normal(shape[1:] if step == 3 else shape) * 2 + 1  # step 3: unbatched
        xt = torch.tensor(x, requires_grad=True)
        xd = ds.from_numpy(x.copy())
        xd.requires_grad_(True)
        yt, yd = t(xt), d(xd)
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        yd.backward(ds.from_numpy(g))
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(d.running_mean.numpy(), t.running_mean.numpy(), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(d.running_var.numpy(), t.running_var.numpy(), rtol=1e-13, atol=1e-14)
        if affine:
            np.testing.assert_allclose(d.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(d.bias.grad.numpy(), t.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
            t.zero_grad()
            d.zero_grad()
    assert int(d.num_batches_tracked.item()) == int(t.num_batches_tracked) == 0


def test_instance_norm_repr_and_reset_as_torch() -> None:
    d = nn.InstanceNorm2d(3, track_running_stats=True)
    assert repr(d) == "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=True)"
    d(ds.randn(2, 3, 4, 4))
    d.reset_running_stats()
    np.testing.assert_array_equal(d.running_var.numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_functional_instance_norm_with_running_stats_matches_torch(use_input_stats: bool) -> None:
    rng = np.random.default_rng(7)
    x, mean, var = rng.standard_normal((2, 3, 5)), rng.standard_normal(3), rng.random(3) + 0.5
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    tm, tv = torch.tensor(mean), torch.tensor(var)
    dm, dv = ds.from_numpy(mean.copy()), ds.from_numpy(var.copy())
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    xd, wd = ds.from_numpy(x.copy()), ds.from_numpy(w.copy())
    xd.requires_grad_(True)
    wd.requires_grad_(True)
    kw = dict(use_input_stats=use_input_stats, momentum=0.3, eps=1e-3)
    yt = TF.instance_norm(xt, tm, tv, wt, torch.tensor(b), **kw)
    yd = F.instance_norm(xd, dm, dv, wd, ds.from_numpy(b.copy()), **kw)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dm.numpy(), tm.numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dv.numpy(), tv.numpy(), rtol=1e-13, atol=1e-14)
    g = rng.standard_normal(x.shape)
    yt.backward(torch.tensor(g))
    yd.backward(ds.from_numpy(g))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_functional_instance_norm_without_input_stats_needs_running_stats() -> None:
    with pytest.raises(ds.errors.ArgumentError, match="running_mean and running_var"):
        F.instance_norm(ds.randn(2, 3, 5), use_input_stats=False)
    with pytest.raises(ds.errors.ArgumentError, match="more than 1 spatial element"):
        nn.InstanceNorm1d(3, track_running_stats=True)(ds.randn(2, 3, 1))
    # in eval mode the running statistics are used, and one position is fine (as torch)
    assert nn.InstanceNorm1d(3, track_running_stats=True).eval()(ds.randn(2, 3, 1)).shape == (2, 3, 1)


def test_lazy_instance_norm_with_running_stats_matches_torch() -> None:
    rng = np.random.default_rng(3)
    t, d = torch.nn.LazyInstanceNorm2d().double(), nn.LazyInstanceNorm2d().double()
    for training in (True, False):
        t.train(training)
        d.train(training)
        x = rng.standard_normal((2, 3, 4, 4))
        np.testing.assert_allclose(
            d(ds.from_numpy(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), atol=1e-12
        )
    np.testing.assert_allclose(d.running_var.numpy(), t.running_var.numpy(), rtol=1e-13)


def test_gaussian_nll_loss_takes_a_float_variance() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for var, full in ((0.5, False), (0.5, True), (0.0, False)):
        xt = torch.tensor(x, requires_grad=True)
        xd = ds.from_numpy(x.copy())
        xd.requires_grad_(True)
        lt = TF.gaussian_nll_loss(xt, torch.tensor(y), var, full=full)
        ld = F.gaussian_nll_loss(xd, ds.from_numpy(y.copy()), var, full=full)
        lt.backward()
        ld.backward()
        np.testing.assert_allclose(ld.item(), lt.item(), rtol=1e-13)
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    module = nn.GaussianNLLLoss()(ds.from_numpy(x), ds.from_numpy(y), 0.5).item()
    np.testing.assert_allclose(module, torch.nn.GaussianNLLLoss()(torch.tensor(x), torch.tensor(y), 0.5).item())
    with pytest.raises(ds.errors.ArgumentError, match="negative"):
        F.gaussian_nll_loss(ds.from_numpy(x), ds.from_numpy(y), -1.0)


@pytest.mark.parametrize("shape", [(6, 4, 5), (6, 4)])
def test_dropout3d_of_other_dims_warns_and_drops_along_the_first_dim(shape: tuple[int, ...]) -> None:
    with pytest.warns(UserWarning, match=f"Received a {len(shape)}-D input to dropout3d"):
        y = F.dropout3d(ds.ones(*shape), 0.5)
    rows = y.numpy().reshape(shape[0], -1)
    assert all(set(row.tolist()) in ({0.0}, {2.0}) for row in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nn.Dropout3d(0.5).eval()(ds.ones(*shape)).shape == shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 4-D and 5-D input: no warning
        F.dropout3d(ds.ones(2, 2, 2, 2), 0.5)
