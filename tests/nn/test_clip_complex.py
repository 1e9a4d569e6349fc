"""Gradient clipping with complex parameters (LRU/S5-style models) against torch: the total norm of
complex gradients is that of their moduli (real), clip_grad_norm_ scales complex gradients, and
clip_grad_value_ refuses them as torch's clamp does; whatever the warnings filters say."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]


def _grads(lib: Any, dtype: str) -> list[Any]:
    """Two complex parameters and a real one, their gradients set from fixed values."""
    rng = np.random.default_rng(0)
    params = []
    for shape, kind in (((3,), dtype), ((2, 2), dtype), ((4,), "float32" if dtype == "complex64" else "float64")):
        values = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if kind.startswith("complex") else 0)
        grad = 3 * (rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if kind.startswith("complex") else 0))
        p = lib.nn.Parameter(lib.tensor(values, dtype=getattr(lib, kind)))
        p.grad = lib.tensor(grad, dtype=getattr(lib, kind))
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_of_complex_gradients_matches_torch(dtype: str, norm_type: float) -> None:
    ours, theirs = _grads(ds, dtype), _grads(torch, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nothing may rest on a warnings filter
        total = ds.nn.utils.clip_grad_norm_(ours, 1.0, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type)
    assert str(total.dtype) == str(want.dtype).replace("torch.", "")
    tol = {"rtol": 1e-5} if dtype == "complex64" else {"rtol": 1e-12}
    np.testing.assert_allclose(float(total), float(want), **tol)
    for p, q in zip(ours, theirs):
        assert p.grad.dtype == p.dtype
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_get_total_norm_of_complex_tensors_is_real_as_torch(dtype: str) -> None:
    ours = [p.grad for p in _grads(ds, dtype)]
    theirs = [p.grad for p in _grads(torch, dtype)]
    got, want = ds.nn.utils.get_total_norm(ours), torch.nn.utils.get_total_norm(theirs)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_clip_grad_value_refuses_complex_gradients_as_torch() -> None:
    params = _grads(ds, "complex64")
    before = [p.grad.numpy().copy() for p in params]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DTypeError, match="clip_grad_value_: clamp is not supported for complex"):
            ds.nn.utils.clip_grad_value_(params, 0.5)
    for p, b in zip(params, before):  # nothing clipped before the refusal
        np.testing.assert_array_equal(p.grad.numpy(), b)
    with pytest.raises(NotImplementedError):
        torch.nn.utils.clip_grad_value_(_grads(torch, "complex64"), 0.5)
