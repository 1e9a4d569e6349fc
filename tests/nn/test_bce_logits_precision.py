"""binary_cross_entropy_with_logits: torch's loss and gradients, without the cancellation that made
tiny losses lose digits for large |x| (compared with the exact value where torch's own formula
cancels too), with pos_weight, weight, a target that requires grad and double backward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F

TF = torch.nn.functional


def _exact(x: float, t: float, pw: float = 1.0) -> float:
    from mpmath import exp, log, mp, mpf

    mp.dps = 50
    xm, tm, pm = mpf(x), mpf(t), mpf(pw)
    return float((1 - tm) * xm + (1 + (pm - 1) * tm) * log(1 + exp(-xm)))


@pytest.mark.parametrize("x", [-30.0, -40.0, 30.0, -1.0, 0.0, 2.5, -800.0, 800.0])
@pytest.mark.parametrize("pw", [None, 2.5])
def test_loss_is_exact_where_it_is_tiny(x: float, pw: float | None) -> None:
    pytest.importorskip("mpmath")
    for t in (1 / (1 + math.exp(-x)) if abs(x) < 700 else float(x > 0), 0.0, 1.0, 0.3):
        kw = {} if pw is None else {"pos_weight": ds.tensor([pw], dtype=ds.float64)}
        loss = F.binary_cross_entropy_with_logits(
            ds.tensor([x], dtype=ds.float64), ds.tensor([t], dtype=ds.float64), **kw
        )
        assert loss.item() == pytest.approx(_exact(x, t, 1.0 if pw is None else pw), rel=1e-14, abs=1e-300)


def test_the_reported_case() -> None:
    # bce(-30, sigmoid(-30)): 2.9009e-12 (torch's own formula gives 2.899e-12, the composite 2.807e-12)
    t = 1 / (1 + math.exp(30.0))
    loss = F.binary_cross_entropy_with_logits(ds.tensor([-30.0], dtype=ds.float64), ds.tensor([t], dtype=ds.float64))
    assert loss.item() == pytest.approx(2.90086312e-12, rel=1e-8)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5), ("float16", 2e-2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", ["", "pos_weight", "weight", "both"])
def test_matches_torch(dtype: str, tol: float, reduction: str, extra: str) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 4)) * 4).astype(dtype)
    t = rng.random((5, 4)).astype(dtype)
    args = {"pos_weight": (rng.random(4) * 3).astype(dtype), "weight": rng.random((5, 4)).astype(dtype)}
    keys = {"": [], "pos_weight": ["pos_weight"], "weight": ["weight"], "both": ["pos_weight", "weight"]}[extra]
    xd, xt = ds.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    ld = F.binary_cross_entropy_with_logits(
        xd, ds.from_numpy(t), reduction=reduction, **{k: ds.from_numpy(args[k]) for k in keys}
    )
    lt = TF.binary_cross_entropy_with_logits(
        xt, torch.from_numpy(t), reduction=reduction, **{k: torch.from_numpy(args[k]) for k in keys}
    )
    ld.sum().backward()
    lt.sum().backward()
    assert ld.dtype == getattr(ds, dtype) and xd.grad.dtype == getattr(ds, dtype)
    np.testing.assert_allclose(ld.detach().numpy().astype(float), lt.detach().numpy().astype(float), rtol=tol, atol=tol)
    np.testing.assert_allclose(xd.grad.numpy().astype(float), xt.grad.numpy().astype(float), rtol=tol, atol=tol)


def test_target_gradient_and_double_backward_match_torch() -> None:
    rng = np.random.default_rng(1)
    x, t, pw = rng.standard_normal((3, 4)), rng.random((3, 4)), rng.random(4) + 0.5
    results = []
    for lib in (ds, torch):
        xx = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        tt = lib.tensor(t, dtype=lib.float64, requires_grad=True)
        p64 = lib.tensor(pw, dtype=lib.float64)
        lib.nn.functional.binary_cross_entropy_with_logits(xx, tt, pos_weight=p64).backward()
        x2 = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        loss = lib.nn.functional.binary_cross_entropy_with_logits(x2, lib.tensor(t, dtype=lib.float64), pos_weight=p64)
        (gx,) = lib.autograd.grad(loss, x2, create_graph=True)
        (gx**2).sum().backward()
        results.append([xx.grad.numpy(), tt.grad.numpy(), gx.detach().numpy(), x2.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


def test_extremes_as_torch_where_its_formula_is_exact() -> None:
    nan, inf = float("nan"), float("inf")
    xs = np.array([nan, inf, -inf, inf, -0.0, 40.0])
    ts = np.array([0.5, 0.0, 0.0, 1.0, 0.5, 1.0])
    xd, xt = ds.from_numpy(xs).requires_grad_(), torch.from_numpy(xs).requires_grad_()
    ld = F.binary_cross_entropy_with_logits(xd, ds.from_numpy(ts), reduction="none")
    lt = TF.binary_cross_entropy_with_logits(xt, torch.from_numpy(ts), reduction="none")
    np.testing.assert_array_equal(ld.detach().numpy(), lt.detach().numpy())
    ld.sum().backward()
    lt.sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
