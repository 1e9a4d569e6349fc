"""sum and mean over middle, leading and short trailing axes (downslope.ops.reductions), which run as
products with a vector of ones: values and gradients against PyTorch, accuracy no worse than
PyTorch's (measured against a float64 sum), NaN and inf as NumPy's sum gives them, empty means."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.ops import reductions

torch = pytest.importorskip("torch")

_CASES = [
    ((128, 40, 64), 1),  # Embedding + mean(dim=1)
    ((128, 40, 64), 0),
    ((128, 40, 64), (0, 1)),
    ((6, 300, 2), 1),  # more than one block of 128 rows
    ((4, 1000, 40), 1),
    ((2048, 32), 1),  # short trailing rows: gemv
    ((64, 8, 4, 4), (2, 3)),  # adaptive average pooling to 1x1
    ((3, 5, 7, 11), (1, 2)),
]


@pytest.mark.parametrize("shape, dim", _CASES)
@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_values_and_gradients_match_torch(shape: tuple, dim, name: str, keepdim: bool) -> None:
    a = (np.random.default_rng(0).standard_normal(shape) + 1.0).astype(np.float32)
    x = ds.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    out = getattr(ds, name)(x, dim, keepdim)
    ref = getattr(torch, name)(t, dim, keepdim)
    assert out.shape == tuple(ref.shape) and out.dtype == ds.float32
    exact = getattr(np, name)(a.astype(np.float64), axis=dim, keepdims=keepdim)
    np.testing.assert_allclose(out.detach().numpy(), exact, rtol=1e-5, atol=1e-5 * float(np.abs(exact).max()))
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(ds.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)  # type: ignore[union-attr]


# The accuracy checks below are about the host path: the products replace NumPy's row-by-row sum,
# which a device's own (tree) reduction does not share; the strict stand-in, being NumPy underneath,
# would measure NumPy's sum there rather than a device's.
@pytest.mark.host_only
@pytest.mark.parametrize("shape, dim", _CASES)
@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_accuracy_is_no_worse_than_torchs(shape: tuple, dim, name: str, keepdim: bool) -> None:
    a = (np.random.default_rng(0).standard_normal(shape) + 1.0).astype(np.float32)
    out = getattr(ds, name)(ds.tensor(a), dim, keepdim)
    ref = getattr(torch, name)(torch.tensor(a), dim, keepdim)
    exact = getattr(np, name)(a.astype(np.float64), axis=dim, keepdims=keepdim)
    ours_err = np.abs(out.numpy() - exact).max()
    torch_err = np.abs(ref.numpy() - exact).max()
    assert ours_err <= 2 * torch_err + 2 * np.finfo(np.float32).eps * float(np.abs(exact).max())  # 2 ulps slack


@pytest.mark.host_only
def test_a_long_middle_axis_is_as_accurate_as_torch_block_by_block() -> None:
    # 3000 rows down the middle: NumPy's row-by-row sum was 10x further off than torch's cascade sum
    a = (np.random.default_rng(2).standard_normal((8, 3000, 64)) + 1.0).astype(np.float32)
    exact = a.astype(np.float64).sum(1)
    ours = np.abs(ds.tensor(a).sum(1).numpy() - exact).max()
    theirs = np.abs(torch.tensor(a).sum(1).numpy() - exact).max()
    assert ours <= 1.5 * theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_product_path_agrees_with_numpy_on_non_finite_values(dtype) -> None:
    a = np.random.default_rng(3).standard_normal((16, 20, 8)).astype(dtype)
    a[0, 3, 1] = np.nan
    a[1, 2, 2] = np.inf
    a[2, 5, 3], a[2, 6, 3] = np.inf, -np.inf
    with np.errstate(invalid="ignore"):  # inf - inf: NumPy's sum says so as well
        ours = ds.tensor(a).sum(1).numpy()
        assert reductions._sum_by_product(a, (1,)) is not None  # the case takes the product path
        expected = a.sum(1)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_other_layouts_keep_numpys_reduction() -> None:
    a = np.ones((40, 30, 20), np.float32)
    assert reductions._sum_by_product(a, (0, 2)) is None  # not one run of dims
    assert reductions._sum_by_product(a.transpose(1, 0, 2), (1,)) is None  # not C-contiguous
    assert reductions._sum_by_product(a.astype(np.float16), (1,)) is None  # float16: float32 accumulation
    assert reductions._sum_by_product(a.astype(np.int64), (1,)) is None
    assert reductions._sum_by_product(np.ones((3, 5000, 2), np.float32), (1,)) is None  # float64 accumulation
    assert reductions._sum_by_product(np.ones((100, 500), np.float32), (1,)) is None  # long rows: pairwise
    np.testing.assert_array_equal(ds.tensor(a).transpose(0, 1).sum(1).numpy(), np.full((30, 20), 40.0))


@pytest.mark.parametrize("shape, dim", [((0,), None), ((3, 0), 1), ((3, 0, 4), (1, 2)), ((0, 3), 1)])
def test_empty_means_are_nan_without_numpy_warnings_as_torch(shape: tuple, dim) -> None:
    a = np.zeros(shape, np.float32)
    x = ds.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "Mean of empty slice" or a 1/0 in backward would raise
        out = x.mean() if dim is None else x.mean(dim)
        out.sum().backward()
    ref = t.mean() if dim is None else t.mean(dim)
    ref.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())  # NaN where torch has NaN
    assert x.grad.shape == shape  # type: ignore[union-attr]
