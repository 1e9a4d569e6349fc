"""An LSTM with a projection (proj_size) runs each step as the fused LSTM cell plus the projection:
values, gradients and double backward against torch, and the size of the recorded graph."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _pair(dtype: str, **kw: Any) -> tuple[Any, Any]:
    torch.manual_seed(0)
    tm = torch.nn.LSTM(5, 8, proj_size=3, **kw).to(getattr(torch, dtype))
    dm = ds.nn.LSTM(5, 8, proj_size=3, dtype=getattr(ds, dtype), **kw)
    dm.load_state_dict({k: ds.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    return tm, dm


def _graph_nodes(t: Any) -> int:
    seen: set[int] = set()
    stack = [t]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(n._parents)
    return len(seen)


def test_few_nodes_per_step() -> None:
    """The cell is one node per step (it was ~14 recorded ops), the projection and the slicing a few more."""
    _, dm = _pair("float32")
    steps = 20
    out, _ = dm(ds.randn(steps, 2, 5))
    assert _graph_nodes(out) < 6 * steps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "num_layers": 2}, {"batch_first": True}])
def test_matches_torch_with_initial_state(dtype: str, kw: dict[str, Any]) -> None:
    tm, dm = _pair(dtype, **kw)
    rng = np.random.default_rng(1)
    layers = 2 * kw.get("num_layers", 1) if kw.get("bidirectional") else kw.get("num_layers", 1)
    x = rng.standard_normal((4, 6, 5) if kw.get("batch_first") else (6, 4, 5)).astype(dtype)
    h0 = rng.standard_normal((layers, 4, 3)).astype(dtype)
    c0 = rng.standard_normal((layers, 4, 8)).astype(dtype)
    res = []
    for lib, m in ((torch, tm), (ds, dm)):
        xs = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True) for a in (x, h0, c0)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: projections are not supported with oneDNN
            out, (h, c) = m(xs[0], (xs[1], xs[2]))
        ((out**2).sum() + (1.3 * h).sum() + (c**2).sum()).backward()
        res.append([out.detach().numpy(), h.detach().numpy(), c.detach().numpy()] + [t.grad.numpy() for t in xs])
        res[-1] += [p.grad.numpy() for p in m.parameters()]
    tol = 1e-5 if dtype == "float32" else 1e-11
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_double_backward_matches_torch() -> None:
    tm, dm = _pair("float64")
    x = np.random.default_rng(2).standard_normal((4, 3, 5))
    res = []
    for lib, m in ((torch, tm), (ds, dm)):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, _ = m(xt)
        (g,) = lib.autograd.grad((out**2).sum(), xt, create_graph=True)
        (g**2).sum().backward()
        res.append([g.detach().numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)
