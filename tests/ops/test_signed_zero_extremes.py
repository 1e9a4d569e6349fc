"""maximum/minimum/fmax/fmin/max/min with signed zeros and ties, against torch on the CPU.

torch's own choice between -0.0 and 0.0 (equal values) depends on its kernel path: its vectorized loop
returns the second operand for maximum/minimum (the x86 max/min instructions' rule, NumPy's too), its
scalar remainder the first. These tests use whole vectors (64 elements), where torch's rule is the
vectorized one; fmax/fmin return the first operand on every path."""

import numpy as np
import pytest
import torch

import downslope as ds

NAMES = ("maximum", "minimum", "fmax", "fmin", "max", "min")


def test_full_keeps_the_sign_of_negative_zero() -> None:
    for dtype in ("float32", "float64", "float16"):
        got = ds.full((3,), -0.0, dtype=getattr(ds, dtype)).numpy()
        want = torch.full((3,), -0.0, dtype=getattr(torch, dtype)).numpy()
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    assert np.signbit(ds.full((2,), -0.0).numpy()).all()
    assert not np.signbit(ds.full((2,), 0.0).numpy()).any()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_signed_zero_ties_pick_the_operand_torch_picks(name: str, dtype: str) -> None:
    signs = {}
    for lib in (ds, torch):
        neg = lib.full((64,), -0.0, dtype=getattr(lib, dtype))
        pos = lib.zeros(64, dtype=getattr(lib, dtype))
        op = getattr(lib, name)
        signs[lib.__name__] = [np.signbit(op(neg, pos).numpy()), np.signbit(op(pos, neg).numpy())]
    for got, want in zip(signs["downslope"], signs["torch"]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_at_ties_matches_torch(name: str) -> None:
    a = np.array([1.0, 2.0, -0.0, 0.0, 5.0, np.nan, 1.0])
    b = np.array([1.0, 3.0, 0.0, -0.0, 4.0, 1.0, np.nan])
    grads = []
    for lib in (ds, torch):
        ta = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        tb = lib.tensor(b, dtype=lib.float64, requires_grad=True)
        (getattr(lib, name)(ta, tb) * lib.arange(1.0, 8.0, dtype=lib.float64)).sum().backward()
        grads.append((ta.grad.numpy(), tb.grad.numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])
    if name in ("maximum", "minimum", "max", "min"):  # ties (signed zeros too) split the gradient half and half
        np.testing.assert_array_equal(grads[0][0][[0, 2, 3]], [0.5, 1.5, 2.0])
