"""LBFGS over parameters of two dtypes (a float64 network and one float32 parameter): as torch's, the
flat vectors are in the promoted dtype and each parameter keeps its own dtype, with torch's iterates."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _fit(lib, line_search_fn, steps=3):  # type: ignore[no-untyped-def]
    w = lib.nn.Parameter(lib.tensor([1.0, -0.5], dtype=lib.float64))
    s = lib.nn.Parameter(lib.tensor([0.5, 0.2], dtype=lib.float32))
    opt = lib.optim.LBFGS([w, s], max_iter=5, history_size=3, line_search_fn=line_search_fn)

    def closure():  # type: ignore[no-untyped-def]
        opt.zero_grad()
        loss = ((w - 2) ** 2 * (1 + (s.double() - 3) ** 2) + (s.double() * w).sin()).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    state = opt.state[w] if lib is torch else opt._lbfgs
    return w.detach().numpy(), s.detach().numpy(), losses, state["n_iter"], state["func_evals"], state["d"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_mixed_dtype_parameters_follow_torchs_iterates(line_search_fn) -> None:  # type: ignore[no-untyped-def]
    w, s, losses, n_iter, evals, d = _fit(ds, line_search_fn)
    tw, ts, tlosses, tn_iter, tevals, td = _fit(torch, line_search_fn)
    assert s.dtype == np.float32 and w.dtype == np.float64
    assert (n_iter, evals) == (tn_iter, tevals)
    assert str(d.dtype).split(".")[-1] == str(td.dtype).split(".")[-1] == "float64"  # the promoted dtype
    np.testing.assert_allclose(w, tw, rtol=1e-10)
    np.testing.assert_array_equal(s, ts)  # the same float32 rounding of each update
    np.testing.assert_allclose(losses, tlosses, rtol=1e-10)
