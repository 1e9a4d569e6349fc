"""topk picks the k largest (smallest) without sorting whole rows: values, indices and gradients as
torch's, among tied values too (torch's CPU order, which topk reproduces), whatever the partition
chose."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.ops import sorting

torch = pytest.importorskip("torch")

# the partition path serves host arrays; a device keeps the full sort
pytestmark = pytest.mark.host_only


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_topk_of_distinct_values_matches_torch_with_gradients(largest: bool, dtype: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.permutation(40 * 3000).reshape(40, 3000).astype(dtype) / 7  # distinct: torch's order is defined
    # NaN counts as the largest; at most one per row (NaNs are tied among themselves)
    a[np.arange(0, 40, 3), rng.integers(0, 3000, 14)] = np.nan
    w = rng.standard_normal((40, 25)).astype(dtype)
    for dim, src in ((1, a), (0, a.T.copy())):
        x = ds.tensor(src, dtype=getattr(ds, dtype), requires_grad=True)
        t = torch.tensor(src, requires_grad=True)
        ours, theirs = x.topk(25, dim, largest), t.topk(25, dim, largest)
        ww = w if dim == 1 else w.T.copy()
        (ours.values * ds.tensor(ww, dtype=getattr(ds, dtype))).sum().backward()
        (theirs.values * torch.tensor(ww)).sum().backward()
        np.testing.assert_array_equal(ours.values.detach().numpy(), theirs.values.detach().numpy())
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "float16"])
@pytest.mark.parametrize("partition", ["small inputs too", "large inputs only"])
def test_topk_among_ties_keeps_torchs_order(monkeypatch: pytest.MonkeyPatch, dtype: str, partition: str) -> None:
    if partition == "small inputs too":  # the partition path on every input: both paths agree
        monkeypatch.setattr(sorting, "_PARTITION_MIN", (1, 1))
    rng = np.random.default_rng({"float32": 0, "float64": 1, "int64": 2, "uint8": 3, "float16": 4}[dtype])
    for _ in range(150):
        ndim = int(rng.integers(1, 4))
        shape = [int(n) for n in rng.integers(1, 6, ndim)]
        shape[-1] = int(rng.integers(2, 700))
        a = rng.integers(0, int(rng.integers(1, 6)), shape)
        if rng.random() < 0.3:  # a few distinct winners among many equal values (popularity scores)
            a = (rng.random(shape) < 0.01).astype(np.int64) * rng.integers(1, 4, shape)
        a = a.astype(dtype)
        if dtype.startswith("float") and rng.random() < 0.3:
            a[rng.random(shape) < 0.05] = np.nan
        dim = int(rng.integers(-ndim, ndim))
        k = int(rng.integers(1, a.shape[dim] // 2 + 1)) if a.shape[dim] > 1 else 1
        largest = bool(rng.random() < 0.5)
        ours = ds.topk(ds.tensor(a), k, dim, largest)
        theirs = torch.topk(torch.tensor(a), k, dim, largest)  # tied values: torch's order is unspecified
        # among tied values torch's CPU order (sorted=True), which topk follows
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())


def test_topk_does_not_sort_whole_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("topk sorted the whole row")

    monkeypatch.setattr(sorting, "_sorted", refuse)
    a = np.random.default_rng(2).standard_normal((8, 5000)).astype(np.float32)
    got = ds.topk(ds.tensor(a), 20, 1)
    np.testing.assert_array_equal(got.indices.numpy(), torch.topk(torch.tensor(a), 20, 1).indices.numpy())
