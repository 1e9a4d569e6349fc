"""Classification losses on 0-d tensors (a per-example loss after ``.squeeze()``, as inside
``vmap(grad(...))``): value and gradient against PyTorch for every loss of the module, float32 and
float64, with weight and pos_weight, and the same refusals where torch needs a class dimension."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

_REDUCTIONS = ("none", "mean", "sum")


def _cases() -> dict[str, Callable[..., Any]]:
    """Each loss as ``f(F, lib, x, t)`` for a 0-d logit ``x`` and a 0-d target ``t`` in (0, 1)."""
    cases: dict[str, Callable[..., Any]] = {}
    for r in _REDUCTIONS:
        cases[f"bce_{r}"] = lambda F, L, x, t, r=r: F.binary_cross_entropy(L.sigmoid(x), t, reduction=r)
        cases[f"bce_weight_{r}"] = lambda F, L, x, t, r=r: F.binary_cross_entropy(
            L.sigmoid(x), t, weight=L.tensor(2.0, dtype=x.dtype), reduction=r
        )
        cases[f"bce_logits_{r}"] = lambda F, L, x, t, r=r: F.binary_cross_entropy_with_logits(x, t, reduction=r)
        cases[f"bce_logits_weights_{r}"] = lambda F, L, x, t, r=r: F.binary_cross_entropy_with_logits(
            x, t, weight=L.tensor(0.5, dtype=x.dtype), pos_weight=L.tensor(2.0, dtype=x.dtype), reduction=r
        )
    for r in (*_REDUCTIONS, "batchmean"):
        for log_target in (False, True):
            cases[f"kl_div_{r}_{log_target}"] = lambda F, L, x, t, r=r, lt=log_target: F.kl_div(
                x, L.log(t) if lt else t, reduction=r, log_target=lt
            )
    cases["bce_logits_far_negative"] = lambda F, L, x, t: F.binary_cross_entropy_with_logits(-40 * x, t)
    cases["BCEWithLogitsLoss"] = lambda F, L, x, t: L.nn.BCEWithLogitsLoss(pos_weight=L.tensor(3.0, dtype=x.dtype))(
        x, t
    )
    cases["BCELoss"] = lambda F, L, x, t: L.nn.BCELoss()(L.sigmoid(x), t)
    cases["KLDivLoss"] = lambda F, L, x, t: L.nn.KLDivLoss(reduction="batchmean")(x, t)
    return cases


_CASES = _cases()


def _value_and_grad(lib: Any, fn: Callable[..., Any], dtype: str, x: float, t: float) -> tuple[np.ndarray, np.ndarray]:
    xt = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=True)
    tt = lib.tensor(t, dtype=getattr(lib, dtype))
    grad = torch.autograd.grad if lib is torch else ds.autograd.grad
    loss = fn(TF if lib is torch else F, lib, xt, tt)
    (g,) = grad(loss.sum(), xt)
    return loss.detach().numpy(), g.detach().numpy()


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_CASES))
def test_losses_on_0d_tensors_match_torch(name: str, dtype: str) -> None:
    for x, t in ((0.3, 1.0), (-1.7, 0.25)):
        ours, ours_grad = _value_and_grad(ds, _CASES[name], dtype, x, t)
        ref, ref_grad = _value_and_grad(torch, _CASES[name], dtype, x, t)
        tol = 1e-6 if dtype == "float32" else 1e-12
        assert ours.shape == ref.shape == () and ours_grad.shape == ref_grad.shape == ()
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(ours_grad, ref_grad, rtol=tol, atol=tol)


def test_bce_with_logits_per_example_gradients_under_vmap() -> None:
    xs = np.linspace(-2, 2, 5, dtype=np.float32)
    ts = np.array([0, 1, 1, 0, 1], np.float32)

    def ours(x: Any, t: Any) -> Any:
        return F.binary_cross_entropy_with_logits(x, t, pos_weight=ds.tensor(2.0))

    def ref(x: Any, t: Any) -> Any:
        return TF.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(2.0))

    got = ds.func.vmap(ds.func.grad(ours))(ds.tensor(xs), ds.tensor(ts))
    want = torch.func.vmap(torch.func.grad(ref))(torch.tensor(xs), torch.tensor(ts))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_bce_with_logits_0d_second_derivative() -> None:
    hessians = []
    for lib, fn in ((ds, F), (torch, TF)):
        grad = torch.autograd.grad if lib is torch else ds.autograd.grad
        x = lib.tensor(0.3, dtype=lib.float64, requires_grad=True)
        (g,) = grad(fn.binary_cross_entropy_with_logits(x, lib.tensor(1.0, dtype=lib.float64)), x, create_graph=True)
        (h,) = grad(g, x)
        hessians.append(float(h))
    assert hessians[0] == pytest.approx(hessians[1], rel=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_losses_refuse_0d_inputs_as_torch(loss: str) -> None:
    with pytest.raises((RuntimeError, ValueError)):  # torch: RuntimeError (cross_entropy), ValueError (nll_loss)
        getattr(TF, loss)(torch.tensor(0.3), torch.tensor(0))
    with pytest.raises(ds.errors.ShapeError, match="class dimension"):
        getattr(F, loss)(ds.tensor(0.3), ds.tensor(0))
