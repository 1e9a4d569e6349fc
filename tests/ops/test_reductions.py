"""Reductions (downslope.ops.reductions) against PyTorch: how max, min, amax and amin share a gradient
among tied elements."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# Row 0 has a tie for the largest value, row 1 is all ties, row 2 has a tie for the smallest.
_X = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 4.0, -1.0, 0.5]])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_of_all_elements_split_a_tie_evenly_like_torch(check_op, name, dtype):
    check_op(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [_X.astype(dtype)])
    check_op(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [_X[1].astype(dtype)])


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim", [0, 1, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin_split_a_tie_evenly_like_torch(check_op, name, dim, keepdim):
    check_op(lambda t: getattr(ds, name)(t, dim, keepdim), lambda t: getattr(torch, name)(t, dim, keepdim), [_X])


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1])
def test_max_min_along_a_dim_give_a_tie_gradient_to_the_returned_index_like_torch(check_op, name, dim):
    check_op(lambda t: getattr(t, name)(dim).values, lambda t: getattr(t, name)(dim).values, [_X])
    ours = getattr(ds.tensor(_X), name)(dim).indices.numpy()
    np.testing.assert_array_equal(ours, getattr(torch.tensor(_X), name)(dim).indices.numpy())


def test_the_tie_share_of_a_full_max_is_one_over_the_number_of_ties():
    x = ds.tensor(_X[1], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(4, 0.25))
    y = ds.tensor(_X[0], requires_grad=True)
    ds.amax(y, 0).backward(ds.tensor(3.0))
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.5, 1.5, 0.0])


_EMPTY_DIM_REDUCTIONS = {
    "sum": (lambda m, x, d, k: m.sum(x, dim=d, keepdim=k)),
    "mean": (lambda m, x, d, k: m.mean(x, dim=d, keepdim=k)),
    "amax": (lambda m, x, d, k: m.amax(x, d, k)),
    "amin": (lambda m, x, d, k: m.amin(x, d, k)),
    "nansum": (lambda m, x, d, k: m.nansum(x, d, k)),
    "nanmean": (lambda m, x, d, k: m.nanmean(x, d, k)),
    "var": (lambda m, x, d, k: m.var(x, d, keepdim=k)),
    "std": (lambda m, x, d, k: x.std(dim=d, keepdim=k)),
    "norm": (lambda m, x, d, k: x.norm(dim=d, keepdim=k)),
    "vector_norm": (lambda m, x, d, k: m.linalg.vector_norm(x, dim=d, keepdim=k)),
    "count_nonzero": (lambda m, x, d, k: m.count_nonzero(x, d)),
}


@pytest.mark.parametrize("name", sorted(_EMPTY_DIM_REDUCTIONS))
@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("keepdim", [False, True])
def test_an_empty_dim_list_reduces_over_all_dims_like_torch(check_op, name, dim, keepdim):
    fn = _EMPTY_DIM_REDUCTIONS[name]
    check_op(
        lambda t: fn(ds, t, dim, keepdim),
        lambda t: fn(torch, t, dim, keepdim),
        [_X],
        grad=name not in ("count_nonzero", "var", "std"),
    )
    # (torch 2.x gives var and std over dim=() an infinite gradient: it divides by the count of no dims)


def test_squeeze_and_flip_of_no_dims_change_nothing_like_torch():
    x = np.ones((1, 2, 1))
    assert ds.tensor(x).squeeze(()).shape == tuple(torch.tensor(x).squeeze(()).shape)
    assert ds.tensor(x).flip(()).shape == tuple(torch.tensor(x).flip(()).shape)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "bool"])
def test_integer_sums_take_int64_or_the_dtype_asked_for_like_torch(dtype):
    data = [1, 0, 1]
    for ours, theirs in [
        (ds.tensor(data, dtype=getattr(ds, dtype)).sum(), torch.tensor(data, dtype=getattr(torch, dtype)).sum()),
        (
            ds.tensor(data, dtype=getattr(ds, dtype)).sum(dtype=ds.int8),
            torch.tensor(data, dtype=getattr(torch, dtype)).sum(dtype=torch.int8),
        ),
        (
            ds.tensor(data, dtype=getattr(ds, dtype)).prod(0, dtype=ds.int16),
            torch.tensor(data, dtype=getattr(torch, dtype)).prod(0, dtype=torch.int16),
        ),
    ]:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert ours.item() == theirs.item()


def test_softmax_dim_must_be_an_int_as_in_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for name in ("softmax", "log_softmax"):
        with pytest.raises(TypeError):
            getattr(torch, name)(torch.tensor(x), None)
        with pytest.raises(ds.errors.ArgumentTypeError, match=f"{name}: dim must be an int, got NoneType"):
            getattr(ds, name)(ds.tensor(x), None)  # was the softmax over all elements
        with pytest.raises(ds.errors.OutOfRangeError, match=name):
            getattr(ds, name)(ds.tensor(x), 2)
    np.testing.assert_allclose(ds.softmax(ds.tensor(3.0), 0).numpy(), torch.softmax(torch.tensor(3.0), 0).numpy())


def test_argmax_argmin_of_empty_and_bad_dims_raise_like_torch() -> None:
    torch = pytest.importorskip("torch")
    for name in ("argmax", "argmin"):
        with pytest.raises(IndexError):
            getattr(torch, name)(torch.zeros(0))
        with pytest.raises(ds.errors.OutOfRangeError, match=f"{name}: expected a reduction dim"):
            getattr(ds, name)(ds.zeros(0))
        with pytest.raises(IndexError):
            getattr(torch, name)(torch.zeros(0, 3), 0)
        with pytest.raises(ds.errors.OutOfRangeError, match="non-zero size"):
            getattr(ds, name)(ds.zeros(0, 3), 0)
        with pytest.raises(ds.errors.OutOfRangeError, match=f"{name}: dimension 2 is out of range"):
            getattr(ds, name)(ds.randn(2, 3), dim=2)
        assert getattr(ds, name)(ds.zeros(0, 3), 1).shape == tuple(getattr(torch, name)(torch.zeros(0, 3), 1).shape)
        x = np.array([[1.0, 3.0], [4.0, 2.0]], np.float32)
        np.testing.assert_array_equal(
            getattr(ds, name)(ds.tensor(x), -1, keepdim=True).numpy(),
            getattr(torch, name)(torch.tensor(x), -1, keepdim=True).numpy(),
        )


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("layout", ["rows", "transposed", "middle"])
def test_float32_reduction_down_a_long_noncontiguous_axis_is_accurate(op: str, layout: str) -> None:
    # NumPy adds such an axis sequentially in float32 (relative error ~1e-5 here); torch's is ~1e-7
    rs = np.random.RandomState(0)
    base = (rs.rand(400_000, 3) + 0.5).astype(np.float32)
    if layout == "rows":
        x, dim, ref = ds.from_numpy(base), 0, base.astype(np.float64)
    elif layout == "transposed":
        x, dim, ref = ds.from_numpy(base).T, 1, base.astype(np.float64)
    else:
        x, dim, ref = ds.from_numpy(base.reshape(2, 200_000, 3)), 1, base.reshape(2, 200_000, 3).astype(np.float64)
    want = getattr(ref, op)(axis=0 if layout != "middle" else 1)
    got = getattr(x, op)(dim)
    assert got.dtype == ds.float32
    assert np.abs(got.numpy() / want - 1).max() < 1e-6


def test_float32_small_and_last_axis_reductions_unchanged() -> None:
    a = np.random.RandomState(1).rand(64, 10).astype(np.float32)
    np.testing.assert_array_equal(ds.from_numpy(a).sum(0).numpy(), a.sum(0))
    np.testing.assert_array_equal(ds.from_numpy(a).mean(1).numpy(), a.mean(1))
    x = ds.from_numpy(a.copy()).requires_grad_()
    x.mean(0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((64, 10), 1 / 64, np.float32))


@pytest.mark.parametrize("p", [2, 3, 1.5, 0.5, float("inf")])
def test_normalising_a_zero_vector_gives_torch_gradient(p):
    # x / x.norm() at a zero row: the forward is NaN, and torch's backward lets the NaN through the
    # norm's masked gradient (it masks x / norm, then multiplies by the incoming gradient)
    rows = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    grads = []
    for lib in (ds, torch):
        x = lib.tensor(rows, dtype=lib.float64, requires_grad=True)
        y = x / lib.linalg.vector_norm(x, p, dim=1, keepdim=True)
        y.sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_nansum_and_nanmean_gradients_match_torch_over_all_nan_slices(dim):
    # a fully missing series in a batch: nanmean is 0/0 there, and torch's nansum gradient
    # (grad * ~isnan) lets that NaN through where a where()-based mask would hide it as 0
    rows = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [4.0, 5.0, np.nan]])
    results = []
    for lib in (ds, torch):
        x = lib.tensor(rows, dtype=lib.float64, requires_grad=True)
        weight = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)
        mean = lib.nanmean(x) if dim is None else lib.nanmean(x, dim=dim)
        total = lib.nansum(x, dim=dim, keepdim=True) if dim is not None else lib.nansum(x)
        loss = (mean * (weight if dim is not None else 1.0)).sum() + (total * 0.5).sum()
        loss.backward()
        results.append((mean.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, equal_nan=True)
