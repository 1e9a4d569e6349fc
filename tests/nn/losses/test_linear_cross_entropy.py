"""F.linear_cross_entropy and nn.LinearCrossEntropyLoss against torch 2.13: values and the gradients
of input, weight and bias, class indices and probabilities, K-dimensional logits, the module's
parameters and repr."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
if not hasattr(torch.nn.functional, "linear_cross_entropy"):
    pytest.skip("this torch has no linear_cross_entropy", allow_module_level=True)


def _run(L: Any, x: np.ndarray, w: np.ndarray, t: np.ndarray, b: np.ndarray | None, kw: dict) -> list[np.ndarray]:
    if L is torch:
        make = lambda a: torch.tensor(a, requires_grad=a.dtype.kind == "f")  # noqa: E731
        target = torch.from_numpy(t)
    else:
        make = lambda a: ds.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f")  # noqa: E731
        target = ds.from_numpy(t.copy())
    xs, ws, bs = make(x), make(w), None if b is None else make(b)
    out = L.nn.functional.linear_cross_entropy(xs, ws, target, linear_bias=bs, **kw)
    out.sum().backward()
    return [out.detach().numpy(), xs.grad.numpy(), ws.grad.numpy()] + ([] if bs is None else [bs.grad.numpy()])


_RNG = np.random.default_rng(0)
_CASES = {
    "plain": ((4, 5), (3, 5), _RNG.integers(0, 3, 4), False, {}),
    "bias-none-smoothing": (
        (4, 5),
        (3, 5),
        _RNG.integers(0, 3, 4),
        True,
        {"reduction": "none", "label_smoothing": 0.1},
    ),
    "unbatched": ((5,), (3, 5), np.array(1), False, {}),
    "k-dim": ((4, 5), (3, 2, 5), _RNG.integers(0, 3, (4, 2)), True, {"reduction": "sum"}),
    "default-ignore": ((4, 5), (3, 5), np.array([0, -100, 2, 1]), False, {}),
    "ignore-index": ((4, 5), (3, 5), np.array([0, 1, 2, 1]), False, {"ignore_index": 1}),
    "probabilities": ((4, 5), (3, 5), _RNG.dirichlet(np.ones(3), 4).astype(np.float32), False, {}),
    "class-weight": ((4, 5), (3, 5), np.array([0, 1, 2, 0]), False, {"weight": np.array([1.0, 2.0, 0.5], np.float32)}),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_values_and_gradients_match_torch(case: str) -> None:
    x_shape, w_shape, target, with_bias, kw = _CASES[case]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[:-1]).astype(np.float32) if with_bias else None
    theirs_kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    ours_kw = {k: ds.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    theirs, ours = _run(torch, x, w, target, b, theirs_kw), _run(ds, x, w, target, b, ours_kw)
    for t, o in zip(theirs, ours):
        assert o.shape == t.shape
        np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-6)


def test_gradient_against_finite_differences() -> None:
    rng = np.random.default_rng(2)
    x = ds.from_numpy(rng.standard_normal((3, 4))).requires_grad_(True)
    w = ds.from_numpy(rng.standard_normal((5, 4)))
    t = ds.tensor([0, 4, 2])
    ds.nn.functional.linear_cross_entropy(x, w, t).backward()
    eps, numeric = 1e-6, np.zeros((3, 4))
    base = x.detach().numpy()
    for i in np.ndindex(base.shape):
        hi, lo = base.copy(), base.copy()
        hi[i] += eps
        lo[i] -= eps
        f = [ds.nn.functional.linear_cross_entropy(ds.from_numpy(a), w, t).item() for a in (hi, lo)]
        numeric[i] = (f[0] - f[1]) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_module_matches_torch() -> None:
    theirs = torch.nn.LinearCrossEntropyLoss(5, 3, out_features=(2,), bias=True, label_smoothing=0.05)
    ours = ds.nn.LinearCrossEntropyLoss(5, 3, out_features=(2,), bias=True, label_smoothing=0.05)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["linear.bias", "linear.weight"]
    ours.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 3, (4, 2))
    theirs(torch.from_numpy(x), torch.from_numpy(t)).backward()
    loss = ours(ds.from_numpy(x), ds.from_numpy(t))
    loss.backward()
    np.testing.assert_allclose(loss.item(), theirs(torch.from_numpy(x), torch.from_numpy(t)).item(), rtol=1e-6)
    np.testing.assert_allclose(ours.linear.weight.grad.numpy(), theirs.linear.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.linear.bias.grad.numpy(), theirs.linear.bias.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_refusals_as_torch() -> None:
    F = ds.nn.functional
    with pytest.raises(RuntimeError, match="dimensionality 1 or 2"):
        F.linear_cross_entropy(ds.ones(2, 2, 3), ds.ones(4, 3), ds.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="in_features"):
        F.linear_cross_entropy(ds.ones(2, 3), ds.ones(4, 5), ds.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="requires batched input"):
        F.linear_cross_entropy(ds.ones(3), ds.ones(4, 2, 3), ds.tensor(0))
    with pytest.raises(ValueError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(ds.ones(2, 3), ds.ones(4, 3), ds.ones(2, 4) / 4, ignore_index=0)
