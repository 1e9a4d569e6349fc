"""Running reductions (downslope.ops.scans) against PyTorch: infinities in logcumsumexp, dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

inf = float("inf")


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize(
    "values",
    [[-inf], [1.0, inf], [-inf, 1.0, 2.0], [1.0, -inf, 2.0], [1000.0, inf, 3.0], [inf, 1.0], [-inf, -inf, 0.0]],
)
def test_logcumsumexp_with_infinities_matches_torch(device, values):
    x = ds.tensor(values, dtype=ds.float64, device=device, requires_grad=True)
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y, r = ds.logcumsumexp(x, 0), torch.logcumsumexp(t, 0)
    np.testing.assert_allclose(y.detach().cpu().numpy(), r.detach().numpy())
    weights = np.arange(1.0, len(values) + 1)
    y.backward(ds.tensor(weights, dtype=ds.float64, device=device))
    r.backward(torch.tensor(weights))
    np.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy())


def test_logcumsumexp_of_a_matrix_with_infinities_matches_torch(check_op):
    a = np.array([[-inf, 0.5, 1.0], [2.0, inf, -1.0], [-inf, -inf, -inf]])
    check_op(lambda t: ds.logcumsumexp(t, 1), lambda t: torch.logcumsumexp(t, 1), [a], grad=False)
    check_op(lambda t: ds.logcumsumexp(t, 0), lambda t: torch.logcumsumexp(t, 0), [a], grad=False)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "bool"])
@pytest.mark.parametrize("asked", [None, "int8", "int16"])
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_integer_running_sums_take_int64_or_the_dtype_asked_for_like_torch(dtype, asked, name):
    data = [1, 1, 0]
    ours = getattr(ds.tensor(data, dtype=getattr(ds, dtype)), name)(0, dtype=asked and getattr(ds, asked))
    theirs = getattr(torch.tensor(data, dtype=getattr(torch, dtype)), name)(0, dtype=asked and getattr(torch, asked))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# Accumulation: torch sums a float32 running sum, product or log-sum-exp in float64 and rounds each
# result once; NumPy's float32 running sum drifts (1e6 x 0.1 gave 100958.3 where torch gives 100000.0).


def test_float32_cumsum_of_a_million_tenths_is_torchs_exactly():
    b = np.full(10**6, 0.1, np.float32)
    ours = ds.tensor(b).cumsum(0).numpy()
    assert ours[-1] == 100000.0
    np.testing.assert_array_equal(ours, torch.tensor(b).cumsum(0).numpy())


@pytest.mark.parametrize("dim", [0, 1])
def test_long_float32_cumsum_and_its_gradient_are_torchs_exactly(dim):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (3000, 4) if dim == 0 else (4, 3000)).astype(np.float32)
    w = rng.uniform(0, 1, a.shape).astype(np.float32)
    x, t = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, r = x.cumsum(dim), t.cumsum(dim)
    np.testing.assert_array_equal(y.detach().numpy(), r.detach().numpy())
    y.backward(ds.tensor(w))
    r.backward(torch.tensor(w))
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_long_float32_cumprod_and_logcumsumexp_are_torchs():
    rng = np.random.default_rng(1)
    a = (1 + rng.normal(0, 1e-3, 10**5)).astype(np.float32)
    np.testing.assert_array_equal(ds.tensor(a).cumprod(0).numpy(), torch.tensor(a).cumprod(0).numpy())
    b = rng.normal(0, 1, 10**5).astype(np.float32)
    np.testing.assert_array_equal(ds.tensor(b).logcumsumexp(0).numpy(), torch.tensor(b).logcumsumexp(0).numpy())


def test_short_float32_cumsum_stays_within_an_ulp_or_two_of_torch():
    a = np.random.default_rng(2).uniform(0, 1, (64, 128)).astype(np.float32)
    for dim in (0, 1):
        np.testing.assert_allclose(ds.tensor(a).cumsum(dim).numpy(), torch.tensor(a).cumsum(dim).numpy(), rtol=1e-6)


def test_float16_cumsum_still_accumulates_in_float32_like_torch():
    h = np.full(5000, 0.1, np.float16)
    np.testing.assert_array_equal(ds.tensor(h, dtype=ds.float16).cumsum(0).numpy(), torch.tensor(h).cumsum(0).numpy())


@pytest.mark.parametrize("values", [[-1000.0, 0.0], [-100.0, 0.0, -200.0, 5.0], [50.0, -50.0, 80.0]])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logcumsumexp_does_not_underflow_far_below_the_maximum(values, dtype):
    ours = ds.tensor(values, dtype=getattr(ds, dtype)).logcumsumexp(0).numpy()
    theirs = torch.tensor(values, dtype=getattr(torch, dtype)).logcumsumexp(0).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_logcumsumexp_gradient_and_double_backward_match_torch_in_float64(device, dim):
    rng = np.random.default_rng(3)
    a = rng.normal(0, 3, (5, 7))
    a[1, 2] = -60.0
    w = rng.normal(0, 1, a.shape)
    w[0, 0] = 0.0  # a zero output gradient: its log is not taken
    v = rng.normal(0, 1, a.shape)
    x = ds.tensor(a, dtype=ds.float64, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (gx,) = ds.autograd.grad(
        (ds.logcumsumexp(x, dim) * ds.tensor(w, dtype=ds.float64, device=device)).sum(), x, create_graph=True
    )
    (gt,) = torch.autograd.grad((torch.logcumsumexp(t, dim) * torch.tensor(w)).sum(), t, create_graph=True)
    np.testing.assert_allclose(gx.detach().cpu().numpy(), gt.detach().numpy(), rtol=1e-12, atol=1e-14)
    (ggx,) = ds.autograd.grad((gx * ds.tensor(v, dtype=ds.float64, device=device)).sum(), x)
    (ggt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), t)
    np.testing.assert_allclose(ggx.cpu().numpy(), ggt.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_long_float32_running_gradients_under_create_graph_match_torch(name):
    rng = np.random.default_rng(4)
    a = (1 + rng.normal(0, 1e-2, (3, 200))).astype(np.float32)
    w, v = rng.normal(0, 1, a.shape).astype(np.float32), rng.normal(0, 1, a.shape).astype(np.float32)
    x, t = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ys, yt = getattr(x, name)(1), getattr(t, name)(1)
    if name == "cumprod":  # no double backward here: the first gradient only
        (ys * ds.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=2e-5, atol=1e-5)
        return
    ws, wt = ds.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gx,) = ds.autograd.grad((ys * ws).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((yt * wt).sum(), t, create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), gt.detach().numpy())
    (gx * ds.tensor(v)).sum().backward()  # the gradient's gradient: a running sum again
    (gt * torch.tensor(v)).sum().backward()
    np.testing.assert_array_equal(ws.grad.numpy(), wt.grad.numpy())


def test_log_scan_by_doubling_strides_matches_the_sequential_one():
    from downslope.ops.scans import _log_scan_doubling

    a = np.random.default_rng(5).normal(0, 5, (3, 37, 2))
    np.testing.assert_allclose(_log_scan_doubling(a, 1), np.logaddexp.accumulate(a, axis=1), rtol=1e-13)
