"""unique's counting path for integer tensors of a narrow value range (one bincount instead of a
sort), against torch.unique and np.unique: values, inverse and counts, for each integer dtype and
shape, and the wide ranges that still sort."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds


def _both(a: np.ndarray, **kw: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ours = ds.unique(ds.from_numpy(np.ascontiguousarray(a)), **kw)
    theirs = torch.unique(torch.from_numpy(np.ascontiguousarray(a)), **kw)
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    return [o.numpy() for o in ours], [t.numpy() for t in theirs]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("counts", [False, True])
def test_integer_unique_matches_torch(dtype: Any, shape: tuple[int, ...], inverse: bool, counts: bool) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(len(shape) + 10 * inverse + 20 * counts)
    lo, hi = max(info.min, -60), min(info.max, 60)
    a = rng.integers(lo, hi + 1, size=shape).astype(dtype)
    ours, theirs = _both(a, return_inverse=inverse, return_counts=counts)
    assert len(ours) == len(theirs) == 1 + inverse + counts
    for o, t in zip(ours, theirs):
        assert o.dtype == t.dtype and o.shape == t.shape
        np.testing.assert_array_equal(o, t)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
def test_integer_unique_at_the_ends_of_the_dtype_matches_numpy(dtype: Any) -> None:
    # the dtype's extremes (a range wider than the dtype's signed half for int8) next to each other
    info = np.iinfo(dtype)
    edge = [info.min, info.min + 1, info.max] if np.dtype(dtype).itemsize < 8 else [info.min, info.min + 3]
    a = np.array(edge * 3 + [info.min], dtype=dtype)
    got = ds.unique(ds.from_numpy(a), return_inverse=True, return_counts=True)
    want = np.unique(a, return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        assert g.numpy().dtype == (a.dtype if w is want[0] else np.int64)
        np.testing.assert_array_equal(g.numpy(), w)


def test_wide_integer_range_and_floats_still_match_torch() -> None:
    rng = np.random.default_rng(3)
    wide = rng.integers(-(10**12), 10**12, 5000)
    wide[::7] = wide[0]
    floats = rng.integers(0, 30, 4000).astype(np.float32)
    for a in (wide, floats):
        ours, theirs = _both(a, return_inverse=True, return_counts=True)
        for o, t in zip(ours, theirs):
            np.testing.assert_array_equal(o, t)


@pytest.mark.host_only  # the counting path is for host arrays
def test_narrow_integer_range_counts_without_sorting(monkeypatch: pytest.MonkeyPatch) -> None:
    # the counting path is linear: elements of a narrow range never reach a sort
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a narrow integer range was sorted")

    a = np.random.default_rng(0).integers(-5, 3000, 100_000)
    want = np.unique(a, return_inverse=True, return_counts=True)
    for name in ("unique", "sort", "argsort"):
        monkeypatch.setattr(np, name, refuse)
    got = ds.unique(ds.from_numpy(a), return_inverse=True, return_counts=True)
    monkeypatch.undo()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)


def test_empty_integer_tensor_matches_torch() -> None:
    ours, theirs = _both(np.zeros((0, 3), np.int64), return_inverse=True, return_counts=True)
    for o, t in zip(ours, theirs):
        assert o.shape == t.shape and o.dtype == t.dtype
