"""topk's partition path bounds the k-th value by folding each row in halves (the extremes of 4k to 8k
interleaved blocks, an odd last column folded onto column 0): rows of every length around the fold
points, NaN and infinities where the folds move them, integer and half dtypes, dims other than the
last; indices, values and gradients as torch's (tied values in torch's CPU order). Short rows of many (a
mixture-of-experts gate's 1024x64) take that path too."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.ops import sorting

torch = pytest.importorskip("torch")

# the partition path serves host arrays; a device keeps the full sort
pytestmark = pytest.mark.host_only


def _always_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sorting, "_PARTITION_MIN", (1, 1))


def test_a_gate_of_short_rows_takes_the_partition_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("topk sorted the whole rows")

    monkeypatch.setattr(sorting, "_sorted", refuse)
    a = np.random.default_rng(5).standard_normal((1024, 64)).astype(np.float32)
    x = ds.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    ours, theirs = x.topk(2, -1), t.topk(2, -1)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(ours.values.detach().numpy(), theirs.values.detach().numpy())
    w = np.random.default_rng(6).standard_normal((1024, 2)).astype(np.float32)
    (ours.values * ds.tensor(w)).sum().backward()
    (theirs.values * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_rows_of_every_length_around_the_folds(monkeypatch: pytest.MonkeyPatch, k: int, largest: bool) -> None:
    _always_partition(monkeypatch)
    rng = np.random.default_rng(k)
    for n in sorted({2 * k, 8 * k - 1, 8 * k, 8 * k + 1, 16 * k + 1, 16 * k + 3, 97, 257, 1023}):
        a = rng.permutation(7 * n).reshape(7, n).astype(np.float64) / 3  # distinct: torch's order is defined
        x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        ours, theirs = x.topk(k, 1, largest), t.topk(k, 1, largest)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy(), err_msg=f"n={n}")
        np.testing.assert_array_equal(ours.values.detach().numpy(), theirs.values.detach().numpy())
        ours.values.sum().backward()
        theirs.values.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("n", [40, 41, 81, 83, 200])
def test_nan_and_infinities_where_the_folds_carry_them(monkeypatch: pytest.MonkeyPatch, n: int, largest: bool) -> None:
    """NaN is the largest (torch's order): in the odd columns each fold carries to column 0, in the last
    column, in rows of several NaNs (more than k: the bound is NaN), with infinities around them."""
    _always_partition(monkeypatch)
    k = 5
    rng = np.random.default_rng(n)
    a = rng.standard_normal((12, n)).astype(np.float32)
    odd_columns = []
    width = n
    while width >= 8 * k:  # the column each fold moves onto column 0
        if width % 2:
            odd_columns.append(width - 1)
        width //= 2
    for row, col in enumerate(odd_columns + [n - 1, 0]):
        a[row, col] = np.nan
    a[6, rng.choice(n, k + 2, replace=False)] = np.nan  # more NaNs than k
    a[7, :] = np.nan  # all NaN
    a[8, rng.choice(n, 3, replace=False)] = np.inf
    a[9, rng.choice(n, 3, replace=False)] = -np.inf
    a[10, : n - 3] = np.nan  # few numbers: smallest must reach into the NaNs
    a[11, rng.choice(n, 2, replace=False)] = [np.nan, -np.inf]
    ours = ds.topk(ds.tensor(a), k, 1, largest)
    theirs = torch.topk(torch.tensor(a), k, 1, largest)
    # among tied values torch's CPU order (sorted=True), which topk follows
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())


@pytest.mark.parametrize("dtype", ["float16", "int64", "uint8", "int8"])
@pytest.mark.parametrize("largest", [True, False])
def test_other_dtypes_and_dims(monkeypatch: pytest.MonkeyPatch, dtype: str, largest: bool) -> None:
    _always_partition(monkeypatch)
    rng = np.random.default_rng(len(dtype))
    info = np.iinfo(dtype) if dtype != "float16" else None
    low, high = (int(info.min), int(info.max) + 1) if info is not None else (-1000, 1000)
    a = rng.integers(low, high, (3, 150, 4)).astype(dtype)  # many ties among the int8 and uint8 values
    for dim in (0, 1, 2, -2):
        k = max(1, a.shape[dim] // 3)
        ours = ds.topk(ds.tensor(a), k, dim, largest)
        theirs = torch.topk(torch.tensor(a), k, dim, largest)
        # among tied values torch's CPU order (sorted=True), which topk follows
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())


@pytest.mark.parametrize("largest", [True, False])
def test_unsorted_results_are_the_sorted_ones(largest: bool) -> None:
    """sorted=False leaves the order to the implementation (torch's differs by size): downslope sorts."""
    a = np.random.default_rng(9).standard_normal((64, 500)).astype(np.float32)
    ours = ds.topk(ds.tensor(a), 7, 1, largest, sorted=False)
    want = ds.topk(ds.tensor(a), 7, 1, largest, sorted=True)
    np.testing.assert_array_equal(ours.indices.numpy(), want.indices.numpy())
    theirs = torch.topk(torch.tensor(a), 7, 1, largest, sorted=False)
    np.testing.assert_array_equal(np.sort(ours.values.numpy(), 1), np.sort(theirs.values.numpy(), 1))
