"""linalg.lu_factor refuses an exactly singular matrix as torch does (lu_factor_ex and lu factor it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

L, T = ds.linalg, torch.linalg

SINGULAR = [
    np.zeros((2, 2)),
    np.array([[1.0, 2.0], [2.0, 4.0]]),
    np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]),  # wide: U[2,2] is zero
    np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]),  # tall
    np.stack([np.eye(3), [[1.0, 2, 3], [2, 4, 6], [1, 1, 1]]]),  # a batch: element 1 fails
]


def _torch_message(a: np.ndarray, fn: str) -> str:
    with pytest.raises(RuntimeError) as info:
        if fn == "lu_factor":
            T.lu_factor(torch.tensor(a))
        else:
            T.lu_factor_ex(torch.tensor(a), check_errors=True)
    return str(info.value).removeprefix("torch.")  # downslope names its ops without the package


@pytest.mark.parametrize("k", range(len(SINGULAR)))
def test_lu_factor_of_a_singular_matrix_raises_torchs_error(k: int) -> None:
    a = SINGULAR[k]
    with pytest.raises(L.LinAlgError) as info:
        L.lu_factor(ds.tensor(a, dtype=ds.float64))
    assert str(info.value) == _torch_message(a, "lu_factor")
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(L.LinAlgError) as info:
        L.lu_factor_ex(ds.tensor(a, dtype=ds.float64), check_errors=True)
    assert str(info.value) == _torch_message(a, "lu_factor_ex")


@pytest.mark.parametrize("k", range(len(SINGULAR)))
def test_lu_factor_ex_and_lu_still_factor_a_singular_matrix(k: int) -> None:
    a = SINGULAR[k]
    mine, ref = L.lu_factor_ex(ds.tensor(a, dtype=ds.float64)), T.lu_factor_ex(torch.tensor(a))
    np.testing.assert_array_equal(mine.info.numpy(), ref.info.numpy())
    np.testing.assert_allclose(mine.LU.numpy(), ref.LU.numpy(), rtol=1e-12, atol=1e-12)
    p, lo, up = L.lu(ds.tensor(a, dtype=ds.float64))
    tp, tlo, tup = T.lu(torch.tensor(a))
    for ours, theirs in ((p, tp), (lo, tlo), (up, tup)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_lu_factor_of_a_regular_matrix_is_unchanged() -> None:
    a = np.random.default_rng(0).normal(size=(3, 4, 4))
    lu, piv = L.lu_factor(ds.tensor(a, dtype=ds.float64))
    ref = T.lu_factor(torch.tensor(a))
    np.testing.assert_allclose(lu.numpy(), ref.LU.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(piv.numpy(), ref.pivots.numpy())
