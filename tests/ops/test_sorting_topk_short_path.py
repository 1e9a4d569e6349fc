"""topk's short path for host rows of tensors without grad (the checks skipped) against the path
with them, and against torch: the same values and indices on random rows, ties, NaN, -inf and
float64, largest or not; taken only where the checked path would take the same steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.ops import sorting

torch = pytest.importorskip("torch")


def _rows(rng: np.random.Generator, shape: tuple[int, ...], special: str, dtype: Any) -> np.ndarray:
    a = rng.standard_normal(shape)
    rows = a.reshape(-1, shape[-1])  # a view: writes reach ``a``
    if special == "ties":
        a = np.round(a * 2)
    elif special == "nan":
        rows[0, 3] = np.nan
    elif special == "-inf":
        rows[rows < 0] = -np.inf
    elif special == "zeros":  # -0.0 and 0.0 compare equal: a tie
        rows[0, :2] = (-0.0, 0.0)
        rows[0, 2:] = -1.0
    return a.astype(dtype)


@pytest.mark.host_only  # the short path, and torch's order of equal values, are the host arrays'
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("special", ["none", "ties", "nan", "-inf", "zeros"])
@pytest.mark.parametrize("shape, k", [((1, 65), 10), ((325,), 5), ((3, 4, 9), 9), ((2, 7), 1)])
@pytest.mark.parametrize("largest", [True, False])
def test_short_path_as_the_checked_path_and_torch(
    dtype: Any, special: str, shape: tuple, k: int, largest: bool
) -> None:
    if dtype == np.int64 and special in ("nan", "-inf"):
        pytest.skip("integers hold no NaN or inf")
    a = _rows(np.random.default_rng(0), shape, special, dtype)
    a = a.astype(dtype)
    x = ds.tensor(a, dtype=ds.float64 if dtype == np.float64 else None)
    assert x.numpy().dtype == dtype
    with ds.no_grad():
        short = ds.topk(x, k, largest=largest)
    checked = ds.topk(x, k, -1, largest, True)  # nothing requires grad: the short path too
    checked_np = ds.topk(x, k, np.int64(-1), largest=largest)  # dim as a NumPy int: the checks
    want = torch.topk(torch.tensor(a), k, largest=largest)
    for got in (short, checked, checked_np):
        assert got.values.dtype == checked_np.values.dtype and got.indices.dtype == ds.int64
        assert got.values.numpy().tobytes() == checked_np.values.numpy().tobytes()
        np.testing.assert_array_equal(got.indices.numpy(), checked_np.indices.numpy())
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


@pytest.mark.host_only  # the short path is the host arrays'
def test_short_path_skipped_where_the_checks_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = sorting._distinct_topk
    monkeypatch.setattr(sorting, "_distinct_topk", lambda *args: calls.append(1) or real(*args))
    x = ds.randn(1, 65)
    with pytest.raises(Exception, match="out of range"):
        ds.topk(x, 66)
    assert calls == []
    ds.topk(x, 3)
    assert calls == [1]
    with pytest.raises(Exception, match="complex"):  # the short path declines it: the checks refuse it
        ds.topk(ds.tensor(np.ones((1, 4), np.complex64)), 2)
    y = ds.randn(1, 65, requires_grad=True)  # the values are gathered from the input, recorded
    top = ds.topk(y, 3)
    assert top.values.requires_grad
    top.values.sum().backward()
    assert float(y.grad.sum()) == 3.0
