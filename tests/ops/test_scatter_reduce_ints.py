"""scatter_reduce / index_reduce on integer (and float, bool) tensors against PyTorch: every
reduction, with and without the tensor's own values; integer 'mean' floors, as torch's does."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

DTYPES = ["int64", "int32", "int16", "int8", "uint8", "float32", "float64"]


def _data(dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    low = 0 if dtype == "uint8" else -5
    base = rng.integers(low, 6, (5, 3)).astype(dtype)
    src = rng.integers(low, 6, (7, 3)).astype(dtype)
    return base, src, np.array([0, 3, 0, 1, 3, 3, 0])  # row 2 and 4 of base are never written


def _both(fn: Any) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's index_reduce is "in beta"
        ref = fn(torch)
    got = fn(ds)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    return got.numpy(), ref.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(dtype: str, reduce: str, include_self: bool) -> None:
    base, src, idx = _data(dtype, 1)
    index = np.repeat(idx[:, None], 3, axis=1)
    got, ref = _both(
        lambda m: m.from_numpy(base.copy()).scatter_reduce(
            0, m.from_numpy(index), m.from_numpy(src.copy()), reduce, include_self=include_self
        )
    )
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_matches_torch(dtype: str, reduce: str, include_self: bool) -> None:
    base, src, idx = _data(dtype, 2)
    got, ref = _both(
        lambda m: m.from_numpy(base.copy()).index_reduce(
            0, m.from_numpy(idx), m.from_numpy(src.copy()), reduce, include_self=include_self
        )
    )
    np.testing.assert_array_equal(got, ref)


def test_the_reported_cases() -> None:
    idx, src = ds.tensor([0, 0, 1, 1]), ds.tensor([-3, -4, 3, 4])
    zeros = ds.zeros(3, dtype=ds.long)
    assert zeros.scatter_reduce(0, idx, src, "amax", include_self=False).tolist() == [-3, 4, 0]
    assert zeros.index_reduce(0, idx, src, "amin", include_self=False).tolist() == [-4, 3, 0]
    assert zeros.scatter_reduce(0, idx, src, "mean").tolist() == [-3, 2, 0]  # floor(-7 / 3)
    assert zeros.scatter_reduce(0, idx, src, "mean", include_self=False).tolist() == [-4, 3, 0]  # floor(-7 / 2)


def test_integer_extremes_survive_amax_and_amin() -> None:
    big = np.iinfo(np.int64)
    x = ds.tensor([0, 0], dtype=ds.int64)
    src = ds.tensor([big.min, big.max], dtype=ds.int64)
    assert x.scatter_reduce(0, ds.tensor([0, 1]), src, "amax", include_self=False).tolist() == [big.min, big.max]
    assert x.scatter_reduce(0, ds.tensor([0, 1]), src, "amin", include_self=False).tolist() == [big.min, big.max]


@pytest.mark.parametrize("reduce", ["sum", "prod", "amax", "amin"])
def test_bool_matches_torch(reduce: str) -> None:
    rng = np.random.default_rng(3)
    base, src = rng.integers(0, 2, (4, 2)).astype(bool), rng.integers(0, 2, (6, 2)).astype(bool)
    index = np.repeat(np.array([0, 2, 0, 1, 2, 2])[:, None], 2, axis=1)
    for include_self in (True, False):
        got, ref = _both(
            lambda m, inc=include_self: m.from_numpy(base.copy()).scatter_reduce(
                0, m.from_numpy(index), m.from_numpy(src.copy()), reduce, include_self=inc
            )
        )
        np.testing.assert_array_equal(got, ref)


def test_bool_mean_is_refused_as_in_torch() -> None:
    with pytest.raises(RuntimeError, match="reduce='mean' is not implemented for bool"):
        ds.zeros(3, dtype=ds.bool).scatter_reduce(0, ds.tensor([0]), ds.tensor([True]), "mean")


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_float_gradients_still_match_torch(reduce: str, include_self: bool) -> None:
    rng = np.random.default_rng(4)
    base, src = rng.standard_normal((4, 2)), rng.standard_normal((6, 2))
    index = np.repeat(np.array([0, 2, 0, 1, 2, 2])[:, None], 2, axis=1)
    grads = []
    for m in (ds, torch):
        b = m.tensor(base, dtype=m.float64, requires_grad=True)
        s = m.tensor(src, dtype=m.float64, requires_grad=True)
        out = b.scatter_reduce(0, m.tensor(index), s, reduce, include_self=include_self)
        (out * m.arange(8, dtype=m.float64).reshape(4, 2)).sum().backward()
        grads.append((out.detach().numpy(), b.grad.numpy(), s.grad.numpy()))
    for a, r in zip(*grads):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)
