"""cross_entropy on (N, C) logits runs core's compiled log_softmax in the forward pass and recomputes the
softmax in the backward pass (``downslope.ops._jit_softmax``, where numba is on): the losses and
gradients are PyTorch's, and the NumPy path's (``jit_gate.disabled()``), in every variant: class
weights, ignore_index, label smoothing, probability targets, each reduction, float16/32/64, double
backward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

torch = pytest.importorskip("torch")
TF = torch.nn.functional

N, C = 7, 5


@pytest.fixture(autouse=True)
def _small_logits_take_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled kernels serve logits from JIT_SOFTMAX_MIN_SIZE elements; these tests' small ones too."""
    from downslope.ops import reductions

    monkeypatch.setattr(reductions, "JIT_SOFTMAX_MIN_SIZE", 1)


VARIANTS: list[dict[str, Any]] = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": True},
    {"weight": True, "reduction": "sum"},
    {"ignore_index": 1},
    {"ignore_index": 1, "weight": True, "reduction": "mean"},
    {"ignore_index": 2, "reduction": "none"},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.2, "weight": True},
    {"label_smoothing": 0.1, "weight": True, "ignore_index": 0, "reduction": "sum"},
    {"label_smoothing": 0.3, "ignore_index": 3, "reduction": "none"},
    {"probabilities": True},
    {"probabilities": True, "weight": True, "label_smoothing": 0.2, "reduction": "sum"},
]


def _data(dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    labels = rng.integers(0, C, N)
    labels[:3] = [1, 2, 3]  # the ignored classes of the variants occur
    probs = rng.random((N, C))
    probs /= probs.sum(1, keepdims=True)
    w = rng.random(C) + 0.2
    return x, labels, probs, w


def _call(lib: Any, fn: Any, x: Any, v: dict[str, Any], labels: Any, probs: Any, w: Any) -> Any:
    kw = {k: val for k, val in v.items() if k not in ("weight", "probabilities")}
    target = probs if v.get("probabilities") else labels
    return fn(x, target, w if v.get("weight") else None, **kw)


def _run(v: dict[str, Any], dtype: Any, numpy_path: bool) -> tuple[np.ndarray, np.ndarray]:
    x, labels, probs, w = _data(dtype)
    dt = ds.float16 if dtype == np.float16 else ds.float64 if dtype == np.float64 else ds.float32
    xd = ds.tensor(x, dtype=dt, requires_grad=True)
    args = (ds.tensor(labels), ds.tensor(probs.astype(dtype), dtype=dt), ds.tensor(w.astype(dtype), dtype=dt))
    with jit_gate.disabled() if numpy_path else _nothing():
        loss = _call(ds, F.cross_entropy, xd, v, *args)
        g = np.random.default_rng(3).standard_normal(loss.shape).astype(dtype)
        (loss * ds.tensor(g, dtype=dt)).sum().backward()
    return loss.detach().numpy(), xd.grad.numpy()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _torch(v: dict[str, Any], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    x, labels, probs, w = _data(dtype)
    tdt = {np.float16: torch.float32, np.float32: torch.float64, np.float64: torch.float64}[dtype]
    xt = torch.tensor(x.astype(np.float64), dtype=tdt, requires_grad=True)
    loss = _call(
        torch, TF.cross_entropy, xt, v, torch.tensor(labels), torch.tensor(probs, dtype=tdt), torch.tensor(w, dtype=tdt)
    )
    g = np.random.default_rng(3).standard_normal(tuple(loss.shape)).astype(dtype)
    (loss * torch.tensor(g.astype(np.float64), dtype=tdt)).sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "v", VARIANTS, ids=[",".join(f"{k}={val}" for k, val in v.items()) or "plain" for v in VARIANTS]
)
def test_fast_path_matches_torch_and_the_numpy_path(v: dict[str, Any], dtype: Any) -> None:
    loss, grad = _run(v, dtype, numpy_path=False)
    np_loss, np_grad = _run(v, dtype, numpy_path=True)
    t_loss, t_grad = _torch(v, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-13}
    assert loss.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(loss, t_loss, **tol)
    np.testing.assert_allclose(grad, t_grad, **tol)
    np.testing.assert_allclose(loss, np_loss, **tol)
    np.testing.assert_allclose(grad, np_grad, **tol)


@pytest.mark.parametrize("v", [{}, {"label_smoothing": 0.1, "weight": True}, {"ignore_index": 1}])
def test_float16_unchanged_numpy_steps(v: dict[str, Any]) -> None:
    # float16 stays on the NumPy steps in its own precision, jit or not
    loss, grad = _run(v, np.float16, numpy_path=False)
    np_loss, np_grad = _run(v, np.float16, numpy_path=True)
    assert loss.dtype == np.float16 and grad.dtype == np.float16
    np.testing.assert_array_equal(loss, np_loss)
    np.testing.assert_array_equal(grad, np_grad)
    t_loss, t_grad = _torch(v, np.float16)
    np.testing.assert_allclose(loss, t_loss, rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(grad, t_grad, rtol=5e-3, atol=5e-3)


def test_every_target_ignored_gives_nan_and_a_zero_gradient_as_torch() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xd, ds.tensor([1, 1, 1]), ignore_index=1)
    t_loss = TF.cross_entropy(xt, torch.tensor([1, 1, 1]), ignore_index=1)
    loss.backward()
    t_loss.backward()
    assert np.isnan(loss.item()) and np.isnan(t_loss.item())
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("v", [{}, {"weight": True, "label_smoothing": 0.2, "ignore_index": 2}])
def test_double_backward_matches_torch(v: dict[str, Any]) -> None:
    x, labels, probs, w = _data(np.float64, seed=4)
    xd = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss = _call(ds, F.cross_entropy, xd, v, ds.tensor(labels), None, ds.tensor(w, dtype=ds.float64))
    t_loss = _call(torch, TF.cross_entropy, xt, v, torch.tensor(labels), None, torch.tensor(w))
    (gd,) = ds.autograd.grad(loss, xd, create_graph=True)
    (gt,) = torch.autograd.grad(t_loss, xt, create_graph=True)
    np.testing.assert_allclose(gd.detach().numpy(), gt.detach().numpy(), rtol=1e-11, atol=1e-13)
    (gd**2).sum().backward()
    (gt**2).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_strided_and_large_logits_match_torch() -> None:
    rng = np.random.default_rng(5)
    big = (rng.standard_normal((6, 2 * 300)) * 40).astype(np.float32)  # saturated rows: exp underflows
    for x in (big[:, ::2], big[:, :300].copy()):
        labels = rng.integers(0, 300, 6)
        xd = ds.tensor(np.ascontiguousarray(x), requires_grad=True) if x.flags.c_contiguous else ds.tensor(x)
        xd.requires_grad_(True)
        xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
        loss = F.cross_entropy(xd, ds.tensor(labels), label_smoothing=0.05)
        t_loss = TF.cross_entropy(xt, torch.tensor(labels), label_smoothing=0.05)
        loss.backward()
        t_loss.backward()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_module_and_nd_input_unchanged() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 3, 2)).astype(np.float32)  # class dim not last: the NumPy steps
    labels = rng.integers(0, 4, (2, 3, 2))
    loss = ds.nn.CrossEntropyLoss(label_smoothing=0.1)(ds.tensor(x), ds.tensor(labels))
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(x), torch.tensor(labels))
    np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-5)


def test_the_compiled_path_is_the_one_taken_for_2d_float_logits() -> None:
    pytest.importorskip("numba")
    if jit_gate.switched_off():
        pytest.skip("DOWNSLOPE_JIT=0: the compiled path is switched off")
    from downslope.nn.losses import classification

    assert classification._rows_fast(np.zeros((4, 3), np.float32))
    from downslope.ops import reductions

    reductions.JIT_SOFTMAX_MIN_SIZE = 13  # (undone by the fixture's monkeypatch)
    assert not classification._rows_fast(np.zeros((4, 3), np.float32))  # too small to earn numba's load
    reductions.JIT_SOFTMAX_MIN_SIZE = 1
    assert not classification._rows_fast(np.zeros((4, 3), np.float16))
    assert not classification._rows_fast(np.zeros((4, 6), np.float32)[:, ::2])
    with jit_gate.disabled():
        assert not classification._rows_fast(np.zeros((4, 3), np.float32))
