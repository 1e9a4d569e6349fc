"""clamp with tensor bounds on arrays large enough for the fast paths (the in-place second bound, the
skipped zero-tie fix, the branch-free gradient select): values and all three gradients against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")


def _run(lib, x, lo, hi, g):
    ts = [None if a is None else lib.from_numpy(a.copy()).requires_grad_() for a in (x, lo, hi)]
    y = lib.clamp(ts[0], min=ts[1], max=ts[2])
    y.backward(lib.from_numpy(g.copy()))
    return [y.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["both", "min", "max"])
@pytest.mark.parametrize("rows", [64, 128])  # 128 x 37: past _JIT_CLAMP_MIN_SIZE, the compiled pass
@pytest.mark.parametrize("bound_shape", [(37,), "full", (1,), (1, 37), "column"])
def test_clamp_with_tensor_bounds_on_a_large_array_matches_torch(dtype, which, rows, bound_shape):
    rng = np.random.default_rng(11)
    bound_shape = {"full": (rows, 37), "column": (rows, 1)}.get(bound_shape, bound_shape)
    x = rng.standard_normal((rows, 37)).astype(dtype)
    lo = (rng.standard_normal(bound_shape) - 0.5).astype(dtype)
    hi = (lo + rng.uniform(-0.5, 2.0, bound_shape)).astype(dtype)  # some hi < lo: the result is hi there
    x[::5] = np.broadcast_to(lo, x.shape)[::5]  # ties with lo and with hi: the gradient goes to x
    x[1::7] = np.broadcast_to(hi, x.shape)[1::7]
    x[2, :5] = np.nan
    g = rng.standard_normal(x.shape).astype(dtype)
    g[3, :4] = np.inf  # an infinite gradient at a clamped place gives 0 there, not NaN
    lo_, hi_ = (lo if which != "max" else None), (hi if which != "min" else None)
    for i, (ours, theirs) in enumerate(zip(_run(ds, x, lo_, hi_, g), _run(torch, x, lo_, hi_, g))):
        if i < 2 or ours.shape == x.shape:  # the value and the unreduced gradients: exact
            np.testing.assert_array_equal(ours, theirs)
        else:  # a bound's gradient summed over broadcast rows: the order of the sum may differ
            np.testing.assert_allclose(ours, theirs, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)
        assert ours.dtype == theirs.dtype


def test_clamp_with_tensor_bounds_keeps_the_input_zero_on_a_signed_zero_tie():
    # torch's scalar loop (std::max) keeps x on a tie of 0.0 with -0.0 (its vector loop keeps the bound):
    # downslope keeps x everywhere, whether or not a bound holds a zero
    x = np.array([-0.0, 0.0, -0.0, 0.0, 0.5, -0.0] * 11, dtype=np.float32)
    lo = np.array([0.0, -0.0, -0.0, 0.0, 1.0, -1.0] * 11, dtype=np.float32)
    hi = np.full_like(lo, 2.0)
    out = ds.clamp(ds.from_numpy(x), ds.from_numpy(lo), ds.from_numpy(hi)).numpy()
    expected = np.where(x < lo, lo, x)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))
    out = ds.clamp(ds.from_numpy(-x), max=ds.from_numpy(-lo)).numpy()
    np.testing.assert_array_equal(np.signbit(out), np.signbit(np.where(-x > -lo, -lo, -x)))


def test_clamp_with_tensor_bounds_passes_gradcheck_in_float64():
    rng = np.random.default_rng(5)
    x = ds.from_numpy(rng.standard_normal((6, 7))).requires_grad_()
    lo = ds.from_numpy(rng.standard_normal(7) - 0.5).requires_grad_()
    hi = ds.from_numpy(rng.standard_normal((6, 1)) + 0.5).requires_grad_()
    assert ds.autograd.gradcheck(lambda a, b, c: ds.clamp(a, b, c), (x, lo, hi))


@pytest.mark.parametrize("bound_shape", [(300,), (20, 300), ()])
def test_clamp_compiled_pass_gives_the_numpy_paths_bits(bound_shape):
    # NaN, infinities, signed zero ties, lo > hi: the one-pass kernel against maximum-then-minimum
    rng = np.random.default_rng(9)
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5], dtype=np.float32)
    x = rng.choice(values, (20, 300)).astype(np.float32)
    lo, hi = (rng.choice(values, bound_shape).astype(np.float32) for _ in range(2))
    ours = ds.clamp(ds.from_numpy(x), ds.from_numpy(lo), ds.from_numpy(hi)).numpy()
    with jit_gate.disabled():
        numpy_path = ds.clamp(ds.from_numpy(x), ds.from_numpy(lo), ds.from_numpy(hi)).numpy()
    np.testing.assert_array_equal(ours, numpy_path)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(numpy_path))
    for which in ("min", "max"):
        kwargs = {which: ds.from_numpy(lo)}
        with jit_gate.disabled():
            expected = ds.clamp(ds.from_numpy(x), **kwargs).numpy()
        got = ds.clamp(ds.from_numpy(x), **kwargs).numpy()
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
