"""In-place ops that take complex values, written through views of a complex tensor in the graph (index,
slice, select, transpose, diagonal, and the real views real/imag/view_as_real), against torch 2.13's
gradients in complex128 (the conjugate Wirtinger convention: a wrong conjugation shows as a sign flip)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

Z = (np.arange(9.0).reshape(3, 3) - 4) / 3 + 1j * np.cos(np.arange(9.0)).reshape(3, 3)
W = np.sin(np.arange(9.0)).reshape(3, 3) + 0.5j


def _other(lib: Any, shape: tuple[int, ...]) -> Any:
    n = int(np.prod(shape))
    return lib.tensor((np.linspace(0.5, 1.5, n) + 1j * np.linspace(-1, 1, n)).reshape(shape))


def _real_other(lib: Any, shape: tuple[int, ...]) -> Any:
    n = int(np.prod(shape))
    return lib.tensor(np.linspace(0.5, 1.5, n).reshape(shape))


# views of a complex (3, 3) tensor that stay complex
COMPLEX_VIEWS: dict[str, Callable[[Any], Any]] = {
    "index": lambda h: h[1],
    "element": lambda h: h[0, 2],
    "slice": lambda h: h[:, 1:],
    "step": lambda h: h[::2],
    "select": lambda h: h.select(1, 0),
    "transpose": lambda h: h.t(),
    "diagonal": lambda h: h.diagonal(),
    "view": lambda h: h.view(9),
    "slice of transpose": lambda h: h.transpose(0, 1)[1:],
}
# views that are real tensors over a complex one's memory
REAL_VIEWS: dict[str, Callable[[Any], Any]] = {
    "real": lambda h: h.real,
    "imag": lambda h: h.imag,
    "view_as_real": lambda h: h.view_as_real() if hasattr(h, "view_as_real") else None,
    "real of slice": lambda h: h[1:].real,
    "imag of select": lambda h: h[:, 2].imag,
    "view_as_real row": lambda h: _view_as_real(h)[0],
    "view_as_real imag column": lambda h: _view_as_real(h)[..., 1],
}


def _view_as_real(h: Any) -> Any:
    return (ds if isinstance(h, ds.Tensor) else torch).view_as_real(h)


REAL_VIEWS["view_as_real"] = _view_as_real

# in-place ops that accept complex values: (lib, view) -> None
COMPLEX_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "mul_ 1j": lambda L, v: v.mul_(1j),
    "mul_ scalar": lambda L, v: v.mul_(2 - 3j),
    "mul_ tensor": lambda L, v: v.mul_(_other(L, tuple(v.shape))),
    "div_ scalar": lambda L, v: v.div_(1 + 2j),
    "div_ tensor": lambda L, v: v.div_(_other(L, tuple(v.shape))),
    "add_ alpha": lambda L, v: v.add_(_other(L, tuple(v.shape)), alpha=2 - 1j),
    "sub_ alpha": lambda L, v: v.sub_(_other(L, tuple(v.shape)), alpha=1j),
    "addcmul_": lambda L, v: v.addcmul_(v.detach() * 0 + _other(L, tuple(v.shape)), v * 1j, value=0.5 + 1j),
    "addcdiv_": lambda L, v: v.addcdiv_(v * 2, _other(L, tuple(v.shape)), value=1 - 1j),
    "copy_": lambda L, v: v.copy_(v.conj() * (1 + 1j)),
    "copy_ other": lambda L, v: v.copy_(_other(L, tuple(v.shape))),
    "exp_": lambda L, v: v.exp_(),
    "neg_": lambda L, v: v.neg_(),
    "sqrt_": lambda L, v: v.sqrt_(),
    "pow_": lambda L, v: v.pow_(2),
    "sin_": lambda L, v: v.sin_(),
    "tanh_": lambda L, v: v.tanh_(),
    "square_": lambda L, v: v.square_(),
    "zero_": lambda L, v: v.zero_(),
    "fill_": lambda L, v: v.fill_(1 - 2j),
    "reciprocal_": lambda L, v: v.reciprocal_(),
    "rsqrt_": lambda L, v: v.rsqrt_(),
    "log_": lambda L, v: v.log_(),
    "sigmoid_": lambda L, v: v.sigmoid_(),
    "cos_": lambda L, v: v.cos_(),
    "expm1_": lambda L, v: v.expm1_(),
    "sgn_": lambda L, v: v.sgn_(),
    "lerp_": lambda L, v: v.lerp_(_other(L, tuple(v.shape)), 0.3),
    "masked_fill_": lambda L, v: v.masked_fill_(L.ones(tuple(v.shape), dtype=L.bool), 1j),
    "iadd": lambda L, v: v.__iadd__(v.conj()),
    "imul": lambda L, v: v.__imul__(v.conj().clone()),  # (torch's conj is a lazy view of v: clone() it)
}
REAL_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "mul_": lambda L, v: v.mul_(-3.0),
    "mul_ tensor": lambda L, v: v.mul_(_real_other(L, tuple(v.shape))),
    "add_ alpha": lambda L, v: v.add_(_real_other(L, tuple(v.shape)), alpha=2.0),
    "div_": lambda L, v: v.div_(_real_other(L, tuple(v.shape))),
    "addcmul_": lambda L, v: v.addcmul_(v * 2, _real_other(L, tuple(v.shape)), value=0.5),
    "copy_": lambda L, v: v.copy_(v * v),
    "exp_": lambda L, v: v.exp_(),
    "zero_": lambda L, v: v.zero_(),
    "fill_": lambda L, v: v.fill_(2.0),
    "clamp_": lambda L, v: v.clamp_(-0.5, 0.5),
}


def _grads(lib: Any, view: Callable[[Any], Any], op: Callable[[Any, Any], Any]) -> tuple[np.ndarray, ...]:
    x = lib.tensor(Z, requires_grad=True)
    c = lib.tensor(W, requires_grad=True)
    h = x * c
    op(lib, view(h))
    loss = (lib.view_as_real(h) * lib.tensor(np.cos(np.arange(18.0)).reshape(3, 3, 2))).sum() + (h * h).abs().sum()
    loss.backward()
    return x.grad.numpy(), c.grad.numpy(), h.detach().numpy()


def _check(view: Callable[[Any], Any], op: Callable[[Any, Any], Any]) -> None:
    try:
        expected = _grads(torch, view, op)
    except RuntimeError as e:  # torch refuses (a value saved for backward was written): so does downslope
        assert "inplace" in str(e)
        with pytest.raises(RuntimeError, match="inplace"):
            _grads(ds, view, op)
        return
    got = _grads(ds, view, op)
    for g, e, what in zip(got, expected, ("x.grad", "c.grad", "values")):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-10, err_msg=what)


@pytest.mark.parametrize("op", sorted(COMPLEX_OPS))
@pytest.mark.parametrize("view", sorted(COMPLEX_VIEWS))
def test_complex_inplace_through_a_view_as_torch(view: str, op: str, float64_defaults: None) -> None:
    _check(COMPLEX_VIEWS[view], COMPLEX_OPS[op])


@pytest.mark.parametrize("op", sorted(REAL_OPS))
@pytest.mark.parametrize("view", sorted(REAL_VIEWS))
def test_inplace_through_a_real_view_of_a_complex_tensor_as_torch(view: str, op: str, float64_defaults: None) -> None:
    _check(REAL_VIEWS[view], REAL_OPS[op])


def test_report_case_mul_by_1j_through_an_index() -> None:
    # the conjugated gradient this gave: -1.41+1.41j where torch's is 1.41+1.41j
    grads = []
    for lib in (torch, ds):
        x = lib.tensor([1 + 1j, 2 - 1j], dtype=lib.complex64, requires_grad=True)
        h = x * 2
        h[0].mul_(1j)
        h.abs().sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def test_complex_gradient_through_a_view_write_matches_finite_differences(float64_defaults: None) -> None:
    # complex128 central differences of a real loss: dL/dRe + i dL/dIm
    def loss(z: np.ndarray, record: bool = False) -> Any:
        x = ds.tensor(z, requires_grad=record)
        h = x * ds.tensor(W)
        h[1:, ::2].mul_(2 - 1j)
        h.real[0].mul_(3.0)
        h.t()[2].div_(1 + 1j)
        out = (ds.view_as_real(h) * ds.tensor(np.cos(np.arange(18.0)).reshape(3, 3, 2))).sum() + h.abs().sum()
        if record:
            out.backward()
            return x.grad.numpy()
        return float(out.item())

    analytic = loss(Z, True)
    eps = 1e-6
    numeric = np.zeros_like(Z)
    for i in np.ndindex(Z.shape):
        for unit in (1, 1j):
            d = np.zeros_like(Z)
            d[i] = eps * unit
            numeric[i] += unit * (loss(Z + d) - loss(Z - d)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


def test_a_write_into_a_real_view_reaches_the_complex_tensor_as_torch(float64_defaults: None) -> None:
    out = []
    for lib in (torch, ds):
        z = lib.tensor(Z.copy())
        z.real.mul_(2)
        z.imag[0].fill_(5.0)
        lib.view_as_real(z)[2, :, 0].zero_()
        out.append(z.numpy())
    np.testing.assert_array_equal(out[1], out[0])
