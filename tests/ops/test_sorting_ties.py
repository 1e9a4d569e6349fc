"""kthvalue among tied values picks torch's index (the element its CPU quickselect leaves at place k),
so values and gradients go to the same element as torch's; a randomized test with many ties, NaNs,
integer dtypes and every dim."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# the tie rule reads the values on the host; on a device kthvalue keeps the first index in order
pytestmark = pytest.mark.host_only


def _tied(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    a = rng.integers(0, int(rng.integers(1, 5)), shape)
    if dtype == "int64":
        return a.astype(np.int64)
    a = a.astype(dtype)
    if rng.random() < 0.3:
        a[rng.random(shape) < 0.15] = np.nan
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_kthvalue_picks_torchs_index_among_ties(dtype: str) -> None:
    rng = np.random.default_rng({"float32": 0, "float64": 1, "int64": 2}[dtype])
    for _ in range(300):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 9, ndim))
        if rng.random() < 0.2:
            shape = (*shape[:-1], int(rng.integers(30, 200)))  # longer slices: several partitioning rounds
        a = _tied(rng, shape, dtype)
        dim = int(rng.integers(-ndim, ndim))
        k = int(rng.integers(1, shape[dim] + 1))
        keepdim = bool(rng.random() < 0.5)
        ours = ds.kthvalue(ds.tensor(a), k, dim, keepdim)
        theirs = torch.kthvalue(torch.tensor(a), k, dim, keepdim)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy(), err_msg=f"{a!r}, k={k}, dim={dim}")
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())


def test_kthvalue_gradient_goes_to_torchs_element_among_ties() -> None:
    a = np.array([[2, 2, 2, 2, 1, 1, 4, 4, 0, 0], [1, 3, 3, 2, 3, 5, 5, 0, 5, 1]], np.float64)
    x, tx = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
    ds.kthvalue(x, 4, 1).values.sum().backward()
    torch.kthvalue(tx, 4, 1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
