"""nan_to_num on complex tensors: the real and imaginary parts replaced separately, as torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")
VALUES = [complex(NAN, NAN), complex(INF, 1.0), 1 + 2j, complex(2.0, NAN), complex(-INF, INF), complex(NAN, -INF)]


@pytest.mark.parametrize("name", ["complex64", "complex128"])
@pytest.mark.parametrize("kwargs", [{}, {"nan": 1.5, "posinf": 7.0, "neginf": -3.0}], ids=["defaults", "given"])
def test_nan_to_num_complex_matches_torch(name: str, kwargs: dict[str, float]) -> None:
    ref = torch.nan_to_num(torch.tensor(VALUES, dtype=getattr(torch, name)), **kwargs).numpy()
    ours = ds.nan_to_num(ds.tensor(VALUES, dtype=getattr(ds, name)), **kwargs).numpy()
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", ["complex64", "complex128"])
def test_nan_to_num_complex_gradient_passes_where_finite(name: str) -> None:
    # torch has no complex gradient for nan_to_num; its real rule, grad * isfinite(x), in closed form
    x = ds.tensor(VALUES, dtype=getattr(ds, name), requires_grad=True)
    w = np.array([1 + 2j, 3j, 2 - 1j, 1 + 1j, 4.0, -1j], dtype=name)
    (ds.nan_to_num(x, posinf=7.0, neginf=-3.0) * ds.tensor(w)).real.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(np.isfinite(np.array(VALUES)), w.conj(), 0))
