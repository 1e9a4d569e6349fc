"""vmap over diagonal and trace (functions and methods): torch's values and gradients, in one op over
the batch (a Laplacian as the trace of a per-point Hessian, as physics-informed fitting writes it)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES = [
    ("trace", lambda L, h: L.trace(h[:, :3])),
    ("diagonal", lambda L, h: L.diagonal(h)),
    ("diagonal_offset", lambda L, h: L.diagonal(h, 1)),
    ("diagonal_dims", lambda L, h: L.diagonal(h, -1, -1, 0)),
    ("linalg_diagonal", lambda L, h: L.linalg.diagonal(h, offset=-2)),
    ("method_diagonal", lambda L, h: h.diagonal(offset=2, dim1=1, dim2=0)),
    ("method_trace", lambda L, h: h[:, 1:].trace() * h.diagonal().sum()),
]


@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_vmap_of_diagonal_and_trace_matches_torch(name, fn):
    h0 = np.random.default_rng(0).standard_normal((5, 3, 4))
    got = {}
    for lib in (torch, ds):
        h = lib.tensor(h0, dtype=lib.float64, requires_grad=True)
        out = lib.func.vmap(lambda e, lib=lib: fn(lib, e))(h)
        (g,) = lib.autograd.grad((out * out).sum(), h)
        got[lib.__name__] = (out.detach().numpy(), g.numpy())
    for d, t in zip(got["downslope"], got["torch"]):
        assert d.shape == t.shape
        np.testing.assert_allclose(d, t, rtol=1e-13, atol=1e-13)


def test_laplacian_as_vmapped_trace_of_hessian_and_its_parameter_gradient_match_torch():
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((7, 2))
    w0, v0 = rng.standard_normal((2, 5)), rng.standard_normal(5)
    got = {}
    for lib in (torch, ds):
        w = lib.tensor(w0, dtype=lib.float64, requires_grad=True)
        v = lib.tensor(v0, dtype=lib.float64, requires_grad=True)

        def u(p, w=w, v=v, lib=lib):
            return (lib.tanh(p @ w) * v).sum()

        lap = lib.func.vmap(lambda p, lib=lib, u=u: lib.trace(lib.func.hessian(u)(p)))(
            lib.tensor(x0, dtype=lib.float64)
        )
        gw, gv = lib.autograd.grad((lap**2).mean(), (w, v))
        got[lib.__name__] = (lap.detach().numpy(), gw.numpy(), gv.numpy())
    for d, t in zip(got["downslope"], got["torch"]):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", [lambda e: ds.trace(e), lambda e: e.diagonal().sum(), lambda e: e.trace()])
def test_vmap_of_trace_is_one_op_over_the_batch_not_a_stack_of_elements(fn):
    # a per-element loop stacks one result per element (a graph node per element, a Python call each)
    h = ds.tensor(np.ones((300, 3, 3)), dtype=ds.float64, requires_grad=True)
    out = ds.func.vmap(fn)(h)
    assert out.shape == (300,)
    assert len(out.grad_fn.next_functions) < 300
