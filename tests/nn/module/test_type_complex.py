"""Module.type() with a complex dtype casts the parameters as torch's (t.type(dtype) on each)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["complex64", "complex128"])
def test_module_type_complex_matches_torch(name: str) -> None:
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(3)
    got = []
    for m in (torch, ds):
        lin = m.nn.Linear(2, 3, dtype=m.float64)
        with m.no_grad():
            lin.weight.copy_(m.tensor(w, dtype=m.float64))
            lin.bias.copy_(m.tensor(b, dtype=m.float64))
        assert lin.type(getattr(m, name)) is lin
        assert isinstance(lin.weight, m.nn.Parameter) and lin.weight.requires_grad
        x = m.tensor(np.array([[1 + 2j, -0.5j]]), dtype=getattr(m, name), requires_grad=True)
        (lin(x).abs() ** 2).sum().backward()
        got.append([t.detach().numpy() for t in (lin.weight, lin.bias, lin.weight.grad, x.grad)])
    for ours, ref in zip(got[1], got[0]):
        assert ours.dtype == ref.dtype
        np.testing.assert_allclose(ours, ref, rtol=10 * np.finfo(ref.dtype).eps, atol=10 * np.finfo(ref.dtype).eps)
