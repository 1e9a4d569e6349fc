"""Input/target shape mismatches in the losses: the harmless broadcasts (a one-element target, size-1
dims that add no elements) give PyTorch's values, gradients and warnings; the ones that pair every
input with every target, or repeat one operand along the other, raise; BCE refuses any mismatch, as
PyTorch does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# (input shape, target shape) pairs whose broadcast is the elementwise loss
HARMLESS = [
    ((1, 1), (1,)),
    ((3,), ()),
    ((3,), (1,)),
    ((3,), (1, 1)),
    ((1,), ()),
    ((), (1,)),
    ((1, 1), (1, 1, 1)),
    ((2, 3), (1, 1)),
    ((2, 3), (1, 2, 3)),
    ((1, 2, 3), (2, 3)),
]
# pairs torch broadcasts into a bigger loss than the elementwise one
HARMFUL = [
    ((4, 1), (4,)),
    ((4, 1), (1, 4)),
    ((3,), (3, 1)),
    ((2, 1, 3), (2, 3)),
    ((2, 3), (3,)),
    ((1,), (3,)),
    ((), (3,)),
]

# name -> (ours, theirs, torch warns on a size mismatch)
LOSSES: dict[str, tuple[Callable[..., Any], Callable[..., Any], bool]] = {
    "mse_loss": (
        lambda x, t, r: F.mse_loss(x, t, reduction=r),
        lambda x, t, r: TF.mse_loss(x, t, reduction=r),
        True,
    ),
    "l1_loss": (
        lambda x, t, r: F.l1_loss(x, t, reduction=r),
        lambda x, t, r: TF.l1_loss(x, t, reduction=r),
        True,
    ),
    "huber_loss": (
        lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=0.7),
        lambda x, t, r: TF.huber_loss(x, t, reduction=r, delta=0.7),
        True,
    ),
    "smooth_l1_loss": (
        lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.6),
        lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.6),
        True,
    ),
    "poisson_nll_loss": (
        lambda x, t, r: F.poisson_nll_loss(x, t, reduction=r),
        lambda x, t, r: TF.poisson_nll_loss(x, t, reduction=r),
        False,
    ),
    "gaussian_nll_loss": (
        lambda x, t, r: F.gaussian_nll_loss(x, t, ds.full(x.shape, 0.7, dtype=ds.float64), reduction=r),
        lambda x, t, r: TF.gaussian_nll_loss(x, t, torch.full(x.shape, 0.7, dtype=torch.float64), reduction=r),
        False,
    ),
    "kl_div": (
        lambda x, t, r: F.kl_div(x, t, reduction=r),
        lambda x, t, r: TF.kl_div(x, t, reduction=r),
        False,
    ),
    "hinge_embedding_loss": (
        lambda x, t, r: F.hinge_embedding_loss(x, t.sign(), reduction=r),
        lambda x, t, r: TF.hinge_embedding_loss(x, t.sign(), reduction=r),
        False,
    ),
}


def _run(fn: Callable[..., Any], lib: Any, xs: np.ndarray, ts: np.ndarray, reduction: str) -> tuple[Any, ...]:
    x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
    t = lib.tensor(ts, dtype=lib.float64, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(x, t, reduction)
    out.sum().backward()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return out, x.grad, t.grad, messages


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("shape_x", "shape_t"), HARMLESS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_harmless_broadcasts_match_torch(
    name: str, shape_x: tuple[int, ...], shape_t: tuple[int, ...], reduction: str
) -> None:
    ours_fn, theirs_fn, warns = LOSSES[name]
    rng = np.random.default_rng(0)
    xs = rng.uniform(-2, 2, shape_x)
    ts = rng.uniform(0.1, 3, shape_t)
    if name == "gaussian_nll_loss" and shape_x == ():
        pytest.skip("var for a scalar input has its own shape rules")
    out, gx, gt, msgs = _run(ours_fn, ds, xs, ts, reduction)
    ref, rgx, rgt, rmsgs = _run(theirs_fn, torch, xs, ts, reduction)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gx.numpy(), rgx.numpy(), rtol=1e-12, atol=1e-14)
    if gt is None or rgt is None:  # a target only compared against +-1 (hinge): no gradient in either
        assert gt is None and rgt is None
    else:
        np.testing.assert_allclose(gt.numpy(), rgt.numpy(), rtol=1e-12, atol=1e-14)
    size_msgs = [m for m in rmsgs if "different to the input size" in m]
    assert bool(size_msgs) == warns
    assert [m for m in msgs if "different to the input size" in m] == size_msgs  # torch's text, word for word


@pytest.mark.parametrize(("shape_x", "shape_t"), HARMFUL)
@pytest.mark.parametrize("name", list(LOSSES))
def test_harmful_broadcasts_raise(name: str, shape_x: tuple[int, ...], shape_t: tuple[int, ...]) -> None:
    ours_fn, _, _ = LOSSES[name]
    fn = name if name != "gaussian_nll_loss" else "gaussian_nll_loss"
    with pytest.raises(ds.errors.ShapeError, match=rf"{fn}: input shape .* and target shape .* differ"):
        ours_fn(ds.rand(*shape_x, dtype=ds.float64), ds.rand(*shape_t, dtype=ds.float64), "mean")


def test_error_says_wrong_loss_only_for_the_pairing_broadcast() -> None:
    with pytest.raises(ds.errors.ShapeError, match=r"broadcast to \(4, 4\), pairing every input with every target"):
        F.mse_loss(ds.rand(4, 1), ds.rand(4))
    with pytest.raises(ds.errors.ShapeError, match="wrong loss silently"):
        F.kl_div(ds.rand(4, 1), ds.rand(4))
    with pytest.raises(ds.errors.ShapeError, match="repeating the target along the input") as info:
        F.mse_loss(ds.rand(2, 3), ds.rand(3))
    assert "wrong" not in str(info.value)
    with pytest.raises(ds.errors.ShapeError, match="do not broadcast"):
        F.l1_loss(ds.rand(2), ds.rand(3))


def test_the_reported_cases() -> None:
    v = ds.ones(1, 1, requires_grad=True)
    with pytest.warns(UserWarning, match=r"target size \(torch.Size\(\[1\]\)\).*input size \(torch.Size\(\[1, 1\]\)\)"):
        loss = F.smooth_l1_loss(v, ds.tensor([3.0]))
    loss.backward()
    assert loss.item() == pytest.approx(1.5)
    assert v.grad is not None and v.grad.shape == (1, 1)
    with pytest.warns(UserWarning, match="different to the input size"):
        assert nn.MSELoss()(ds.ones(3), ds.tensor(2.0)).item() == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="different to the input size"):
        # torch's mse promotes the types even for a 0-d target: float64, as torch.nn.functional.mse_loss
        assert F.mse_loss(ds.ones(3), ds.tensor(2.0, dtype=ds.float64)).dtype == ds.float64


@pytest.mark.parametrize("loss", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_bce_refuses_every_mismatch_as_torch(loss: Callable[..., Any]) -> None:
    for shape_x, shape_t in [((1, 1), (1,)), ((3,), ())]:
        with pytest.raises(ValueError):
            getattr(TF, loss.__name__)(torch.rand(shape_x), torch.rand(shape_t))
        with pytest.raises(ds.errors.ShapeError, match=r"differ; expected the same shape \(PyTorch raises here too\)"):
            loss(ds.rand(*shape_x), ds.rand(*shape_t))


def test_margin_losses_take_a_one_element_target() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))

    def both(fn: str, *arrays: Any, **kw: Any) -> tuple[float, float]:
        ours = getattr(F, fn)(*(ds.tensor(x, dtype=ds.float64) for x in arrays), **kw)
        ref = getattr(TF, fn)(*(torch.tensor(x, dtype=torch.float64) for x in arrays), **kw)
        return ours.item(), ref.item()

    ours, ref = both("margin_ranking_loss", a, b, [[1.0]], margin=0.2)
    assert ours == pytest.approx(ref, rel=1e-12)
    ours, ref = both("soft_margin_loss", a, [[-1.0]])
    assert ours == pytest.approx(ref, rel=1e-12)
    ours, ref = both("multilabel_soft_margin_loss", a, [1.0])
    assert ours == pytest.approx(ref, rel=1e-12)


WARNING_LOSSES = [name for name, (_, _, warns) in LOSSES.items() if warns]


@pytest.mark.parametrize(("shape_x", "shape_t"), HARMFUL)
@pytest.mark.parametrize("name", WARNING_LOSSES)
def test_regression_losses_broadcast_under_reduction_none_as_torch(
    name: str, shape_x: tuple[int, ...], shape_t: tuple[int, ...]
) -> None:
    """With reduction='none' the broadcast loss is what the caller gets back (its shape shows the
    pairing), so the losses torch warns for broadcast as torch does, with its warning."""
    ours_fn, theirs_fn, _ = LOSSES[name]
    rng = np.random.default_rng(3)
    xs, ts = rng.uniform(-2, 2, shape_x), rng.uniform(-2, 2, shape_t)
    out, gx, gt, msgs = _run(ours_fn, ds, xs, ts, "none")
    ref, rgx, rgt, rmsgs = _run(theirs_fn, torch, xs, ts, "none")
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gx.numpy(), rgx.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gt.numpy(), rgt.numpy(), rtol=1e-12, atol=1e-14)
    size_msgs = [m for m in rmsgs if "different to the input size" in m]
    assert size_msgs and [m for m in msgs if "different to the input size" in m] == size_msgs


@pytest.mark.parametrize("name", [name for name in LOSSES if name not in WARNING_LOSSES])
def test_losses_torch_does_not_warn_for_still_refuse_the_pairing_under_none(name: str) -> None:
    ours_fn, _, _ = LOSSES[name]
    with pytest.raises(ds.errors.ShapeError, match="pairing every input with every target") as info:
        ours_fn(ds.rand(4, 1, dtype=ds.float64), ds.rand(4, dtype=ds.float64), "none")
    assert "reduction='none'" not in str(info.value)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_pairing_broadcast_still_raises_and_points_to_none(reduction: str) -> None:
    with pytest.raises(ds.errors.ShapeError, match=r"pass reduction='none': it returns the \(4, 4\) loss"):
        F.smooth_l1_loss(ds.rand(4, 1), ds.rand(4), reduction=reduction)


def test_quantile_huber_loss_of_qr_dqn_matches_torch() -> None:
    """Tianshou's QR-DQN loss: every target quantile against every current one, (B, 1, N) against (B, N, 1)."""
    rng = np.random.default_rng(0)
    q, r = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    tau = (np.arange(3) + 0.5) / 3
    results = []
    for lib, fn in ((ds, F.smooth_l1_loss), (torch, TF.smooth_l1_loss)):
        current = lib.tensor(q, dtype=lib.float64, requires_grad=True)
        curr_dist, target_dist = current.unsqueeze(2), lib.tensor(r, dtype=lib.float64).unsqueeze(1)
        with pytest.warns(UserWarning, match="different to the input size"):
            diff = fn(target_dist, curr_dist, reduction="none")
        weight = (lib.tensor(tau, dtype=lib.float64) - (target_dist - curr_dist).detach().le(0.0).double()).abs()
        loss = (diff * weight).sum(-1).mean(1).mean()
        loss.backward()
        results.append((loss.item(), current.grad.numpy()))
    (ours, ours_grad), (ref, ref_grad) = results
    assert ours == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(ours_grad, ref_grad, rtol=1e-12)
