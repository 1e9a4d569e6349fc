"""parametrizations.orthogonal of complex weights against torch: a unitary weight equal to torch's from the
same starting weight, and the same gradients for matrix_exp and cayley, in complex64 and complex128."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError
from downslope.nn.utils.parametrizations import orthogonal

from .._complex_helpers import to_numpy as _numpy
from .._complex_helpers import values as _values

torch = pytest.importorskip("torch")

_TOL = {"complex64": {"rtol": 2e-5, "atol": 2e-5}, "complex128": {"rtol": 1e-9, "atol": 1e-10}}


def _pair(shape: tuple[int, int], dtype: str, orthogonal_map: str | None) -> tuple[Any, Any]:
    """A torch Linear and ours with the same complex weight, both made orthogonal."""
    out_features, in_features = shape
    theirs = torch.nn.Linear(in_features, out_features, bias=False, dtype=getattr(torch, dtype))
    ours = ds.nn.Linear(in_features, out_features, bias=False, dtype=getattr(ds, dtype))
    w = _values(0, *shape)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
    with ds.no_grad():
        ours.weight.copy_(ds.tensor(w, dtype=getattr(ds, dtype)))
    torch.nn.utils.parametrizations.orthogonal(theirs, orthogonal_map=orthogonal_map)
    orthogonal(ours, orthogonal_map=orthogonal_map)
    return ours, theirs


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("orthogonal_map", [None, "matrix_exp", "cayley"])
def test_complex_orthogonal_is_torchs_unitary_weight(orthogonal_map: str | None, dtype: str) -> None:
    ours, theirs = _pair((4, 4), dtype, orthogonal_map)
    w = ours.weight
    assert w.dtype == getattr(ds, dtype)
    eye = np.eye(4)
    np.testing.assert_allclose(_numpy(w @ w.mH), eye, atol=_TOL[dtype]["atol"] * 10)
    np.testing.assert_allclose(_numpy(w), _numpy(theirs.weight), **_TOL[dtype])
    assert np.abs(_numpy(w).imag).max() > 0.1  # the imaginary part kept
    # away from the starting point: the map of a non-zero skew-Hermitian matrix, and its gradient
    x = _values(1, 4, 4) * 0.3
    with ds.no_grad():
        ours.parametrizations.weight.original.copy_(ds.tensor(x, dtype=getattr(ds, dtype)))
    with torch.no_grad():
        theirs.parametrizations.weight.original.copy_(torch.tensor(x))
    np.testing.assert_allclose(_numpy(ours.weight), _numpy(theirs.weight), **_TOL[dtype])
    inputs = _values(2, 3, 4)
    (ours(ds.tensor(inputs, dtype=getattr(ds, dtype))).abs() ** 2).sum().backward()
    (theirs(torch.tensor(inputs, dtype=getattr(torch, dtype))).abs() ** 2).sum().backward()
    np.testing.assert_allclose(
        _numpy(ours.parametrizations.weight.original.grad),
        _numpy(theirs.parametrizations.weight.original.grad),
        **_TOL[dtype],
    )


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_complex_orthogonal_of_a_non_square_weight_is_unitary_as_torch(shape: tuple[int, int]) -> None:
    # torch's default map for complex weights is matrix_exp at any shape (householder has no complex form)
    ours, theirs = _pair(shape, "complex128", None)
    mine, torchs = ours.parametrizations.weight[0].orthogonal_map, theirs.parametrizations.weight[0].orthogonal_map
    assert mine.name == torchs.name == "matrix_exp"
    w = _numpy(ours.weight)
    small = min(shape)
    gram = w.conj().T @ w if shape[0] > shape[1] else w @ w.conj().T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_complex_householder_is_refused_as_torch() -> None:
    with pytest.raises(ArgumentError, match="householder parametrization does not support complex"):
        orthogonal(ds.nn.Linear(3, 5, dtype=ds.cfloat), orthogonal_map="householder")
