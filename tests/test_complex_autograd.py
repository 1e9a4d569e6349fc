"""Custom Functions with complex outputs stay in the graph, as in torch (and so do checkpoint and
full backward hooks, which are built on them): values and gradients against torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.utils.checkpoint as dcp

torch = pytest.importorskip("torch")
import torch.utils.checkpoint as tcp  # noqa: E402

DTYPES = [(np.complex64, torch.complex64, 1e-5), (np.complex128, torch.complex128, 1e-12)]


def _data(dtype: Any, seed: int = 0, shape: tuple[int, ...] = (3,)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _dt(m: Any, npd: Any) -> Any:
    return getattr(m, np.dtype(npd).name)


def _functions(m: Any) -> tuple[Any, Any]:
    class Scale(m.autograd.Function):  # y = x * c (c complex), grad_x = g * conj(c) in torch's convention
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * (2 - 1j)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * (2 + 1j)

    class Split(m.autograd.Function):  # two outputs: a complex one and a real one (|x|^2)
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            ctx.save_for_backward(x, w)
            return x * w, (x.abs() ** 2) * w

        @staticmethod
        def backward(ctx: Any, g1: Any, g2: Any) -> Any:
            x, w = ctx.saved_tensors
            gx = g1 * w + 2 * x * g2 * w
            gw = (g1 * x.conj()).real.sum() + (g2 * x.abs() ** 2).sum()
            return gx, gw

    return Scale, Split


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_custom_function_complex_output_keeps_gradient(npd: Any, td: Any, tol: float) -> None:
    xs = _data(npd)
    grads = []
    for m in (torch, ds):
        scale, _ = _functions(m)
        x = m.tensor(xs, dtype=_dt(m, npd), requires_grad=True)
        y = scale.apply(x)
        assert y.requires_grad
        loss = (y.abs() ** 2).sum() + (x * x).real.sum()
        loss.backward()
        grads.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=tol, atol=tol)


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_custom_function_complex_and_real_outputs(npd: Any, td: Any, tol: float) -> None:
    xs = _data(npd)
    real = np.float32 if npd == np.complex64 else np.float64
    got = []
    for m in (torch, ds):
        _, split = _functions(m)
        x = m.tensor(xs, dtype=_dt(m, npd), requires_grad=True)
        w = m.tensor(0.7, dtype=_dt(m, real), requires_grad=True)
        a, b = split.apply(x, w)
        loss = (a.abs() ** 2).sum() + (b * b).sum()
        loss.backward()
        got.append((x.grad.numpy(), w.grad.numpy()))
    assert got[1][1].dtype == real
    np.testing.assert_allclose(got[1][0], got[0][0], rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(got[1][1], got[0][1], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_custom_function_complex_under_create_graph(npd: Any, td: Any, tol: float) -> None:
    xs = _data(npd)
    got = []
    for m in (torch, ds):
        scale, _ = _functions(m)
        x = m.tensor(xs, dtype=_dt(m, npd), requires_grad=True)
        loss = (scale.apply(x).abs() ** 2).sum()
        (gx,) = m.autograd.grad(loss, x, create_graph=True)
        (gx.abs() ** 2).sum().backward()
        got.append(x.grad.numpy())
    np.testing.assert_allclose(got[1], got[0], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_checkpoint_through_complex_block(npd: Any, td: Any, tol: float) -> None:
    xs, ws = _data(npd, 1), _data(npd, 2)
    got = []
    for m, cp in ((torch, tcp), (ds, dcp)):
        x = m.tensor(xs, dtype=_dt(m, npd), requires_grad=True)
        w = m.tensor(ws, dtype=_dt(m, npd), requires_grad=True)
        out = cp.checkpoint(lambda a, w=w, m=m: m.fft.fft(a * w), x, use_reentrant=False)
        ((out.abs() ** 2).sum() + (x.abs() ** 2).sum()).backward()
        assert w.grad is not None
        got.append((x.grad.numpy(), w.grad.numpy()))
    np.testing.assert_allclose(got[1][0], got[0][0], rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(got[1][1], got[0][1], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_full_backward_hook_on_complex_module(npd: Any, td: Any, tol: float) -> None:
    ws, xs = _data(npd, 3, (2, 2)), _data(npd, 4, (1, 2))
    got = []
    for m in (torch, ds):
        lin = m.nn.Linear(2, 2, dtype=td if m is torch else npd)
        with m.no_grad():
            lin.weight.copy_(m.tensor(ws, dtype=_dt(m, npd)))
            lin.bias.zero_()
        seen: list[Any] = []
        lin.register_full_backward_hook(
            lambda mod, gin, gout, seen=seen: seen.append((gin[0].numpy(), gout[0].numpy()))
        )
        x = m.tensor(xs, dtype=_dt(m, npd), requires_grad=True)
        (lin(x).abs() ** 2).sum().backward()
        assert len(seen) == 1
        got.append((x.grad.numpy(), lin.weight.grad.numpy(), *seen[0]))
    for ours, ref in zip(got[1], got[0]):
        np.testing.assert_allclose(ours, ref, rtol=tol * 10, atol=tol * 10)


def _gradcheck_cases(m: Any) -> dict[str, Any]:
    class Wrong(m.autograd.Function):  # the holomorphic rule without the conjugate: a wrong gradient
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * (2 - 1j)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * (2 - 1j)

    return {
        "holomorphic": lambda a, r: a * a.conj() + m.sinh(a),
        "complex_to_real": lambda a, r: a.abs() * r,
        "real_to_complex": lambda a, r: r * (1 + 2j) * a,
        "tuple": lambda a, r: (a.abs(), a * r),
        "fft": lambda a, r: m.fft.fft(a * r),
        "wrong_gradient": lambda a, r: Wrong.apply(a) * r,
    }


@pytest.mark.parametrize(
    "case", ["holomorphic", "complex_to_real", "real_to_complex", "tuple", "fft", "wrong_gradient"]
)
def test_gradcheck_complex_verdicts_match_torch(case: str) -> None:
    z = np.array([0.3 + 0.2j, -1 + 0.5j])
    r = np.array([0.7, -1.2])
    verdicts = []
    for m in (torch, ds):
        a = m.tensor(z, dtype=m.complex128, requires_grad=True)
        rr = m.tensor(r, dtype=m.float64, requires_grad=True)
        f = _gradcheck_cases(m)[case]
        verdicts.append(m.autograd.gradcheck(f, (a, rr), raise_exception=False))
    assert verdicts[1] == verdicts[0] == (case != "wrong_gradient")


def test_gradcheck_complex_forward_ad_refused_clearly() -> None:
    a = ds.tensor([0.3 + 0.2j], dtype=ds.complex128, requires_grad=True)
    with pytest.raises(ds.errors.DTypeError, match="check_forward_ad=True is not supported for complex"):
        ds.autograd.gradcheck(lambda a: a.sin(), (a,), check_forward_ad=True)


@pytest.mark.parametrize(("npd", "td", "tol"), DTYPES)
def test_functional_jacobian_and_vjp_complex_input(npd: Any, td: Any, tol: float) -> None:
    zs, rs = _data(npd, 5), np.array([0.7, -1.2, 2.0], dtype=np.finfo(npd).dtype)
    got = []
    for m in (torch, ds):
        a = m.tensor(zs, dtype=_dt(m, npd))
        r = m.tensor(rs, dtype=_dt(m, rs.dtype))
        jac = m.autograd.functional.jacobian(lambda x, y: (x * x).abs() * y, (a, r))
        _, vjp = m.autograd.functional.vjp(lambda x: x * x, a, m.ones(3, dtype=_dt(m, npd)))
        got.append([jac[0].numpy(), jac[1].numpy(), vjp.numpy()])
    for ours, ref in zip(got[1], got[0]):
        assert ours.dtype == ref.dtype
        np.testing.assert_allclose(ours, ref, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("real_input", [True, False])
def test_functional_jacobian_complex_output_refused_as_torch(real_input: bool) -> None:
    def arg(m: Any) -> Any:
        return m.tensor([0.5, 1.0], dtype=m.float64) if real_input else m.tensor([0.3 + 0.2j], dtype=m.complex128)

    with pytest.raises(RuntimeError, match="real scalar outputs"):
        torch.autograd.functional.jacobian(lambda x: x * (1 + 2j), arg(torch))
    with pytest.raises(ds.errors.DTypeError, match="grad can be implicitly created only for real outputs"):
        ds.autograd.functional.jacobian(lambda x: x * (1 + 2j), arg(ds))
