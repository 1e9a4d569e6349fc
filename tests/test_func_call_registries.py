"""``functional_call`` swaps the entries of the modules' ``_parameters``/``_buffers`` for the call, as
torch's does: code that reads them inside the call (an L2 term over ``self.parameters()``, the hooks of
``nn.utils.weight_norm`` and ``spectral_norm``, which read ``module._parameters``) sees the given tensors,
and everything is put back afterwards, also when the call raises. Values are compared with PyTorch."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(4)
_W, _X, _P = _RNG.standard_normal((3, 4)), _RNG.standard_normal((5, 4)), _RNG.standard_normal((3, 4))


def _l2_net(lib: Any) -> Any:
    class Net(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lib.nn.Linear(2, 1).double()

        def forward(self, x: Any) -> Any:  # a penalty over the module's own parameters
            return self.lin(x).sum() + 0.5 * sum((p**2).sum() for p in self.parameters())

    return Net()


@pytest.mark.parametrize("call", ["func", "stateless"])
def test_parameters_inside_the_call_are_the_given_ones(call: str) -> None:
    results = []
    for lib in (ds, torch):
        m = _l2_net(lib)
        fast = {
            "lin.weight": lib.tensor([[3.0, -2.0]], dtype=lib.float64, requires_grad=True),
            "lin.bias": lib.tensor([0.5], dtype=lib.float64, requires_grad=True),
        }
        fc = lib.func.functional_call if call == "func" else lib.nn.utils.stateless.functional_call
        out = fc(m, fast, (lib.ones(1, 2, dtype=lib.float64),))
        grads = lib.autograd.grad(out, list(fast.values()))
        results.append([out.item(), *(g.detach().numpy().ravel().tolist() for g in grads)])
        assert m.lin.weight is m.lin._parameters["weight"]  # the module's own Parameter again
        assert isinstance(m.lin.weight, lib.nn.Parameter)
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for ours, theirs in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def _weight_norm_call(lib: Any) -> tuple[float, float, np.ndarray]:
    lin = lib.nn.Linear(4, 3).double()
    with lib.no_grad():
        lin.weight.copy_(lib.tensor(_W, dtype=lib.float64))
        lin.bias.zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation of the old weight_norm
        m = lib.nn.utils.weight_norm(lin)
    x = lib.tensor(_X, dtype=lib.float64)
    g = (m.weight_g * 2).detach().requires_grad_()
    p = {k: (g if k == "weight_g" else v) for k, v in m.named_parameters()}
    out = lib.func.functional_call(m, p, (x,)).tanh().sum()
    (grad_g,) = lib.autograd.grad(out, [g])
    return m(x).sum().item(), out.item(), grad_g.numpy()


def test_old_weight_norm_hook_reads_the_given_tensors() -> None:
    (plain, ours, ours_g), (plain_t, theirs, theirs_g) = _weight_norm_call(ds), _weight_norm_call(torch)
    assert plain == pytest.approx(plain_t, rel=1e-12)
    assert ours == pytest.approx(theirs, rel=1e-12)
    np.testing.assert_allclose(ours_g, theirs_g, rtol=1e-10)


def _spectral_norm_call(lib: Any) -> float:
    lin = lib.nn.Linear(4, 3).double()
    with lib.no_grad():
        lin.weight.copy_(lib.tensor(_W, dtype=lib.float64))
        lin.bias.zero_()
    m = lib.nn.utils.spectral_norm(lin)
    m.eval()  # no power iteration: the given u, v decide
    with lib.no_grad():
        m.weight_u.copy_(lib.tensor([0.6, 0.8, 0.0], dtype=lib.float64))
        m.weight_v.copy_(lib.tensor([0.5, 0.5, 0.5, 0.5], dtype=lib.float64))
    p = {k: (v + lib.tensor(_P, dtype=lib.float64) if k == "weight_orig" else v) for k, v in m.named_parameters()}
    return lib.func.functional_call(m, p, (lib.tensor(_X, dtype=lib.float64),)).sum().item()


def test_spectral_norm_hook_reads_the_given_weight_orig() -> None:
    assert _spectral_norm_call(ds) == pytest.approx(_spectral_norm_call(torch), rel=1e-12)


class _Boom(Exception):
    pass


def _buffer_reader(lib: Any) -> Any:
    class Shift(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("offset", lib.zeros(2, dtype=lib.float64))

        def forward(self, x: Any) -> Any:
            if x.shape[0] != 2:
                raise _Boom
            return x + self._buffers["offset"] + sum(b.sum() for b in self.buffers())

    return Shift()


def test_buffers_registry_holds_the_given_tensor_and_is_restored_after_an_error() -> None:
    outs = []
    for lib in (ds, torch):
        m = _buffer_reader(lib)
        original = m.offset
        given = {"offset": lib.tensor([1.0, 2.0], dtype=lib.float64)}
        outs.append(lib.func.functional_call(m, given, (lib.zeros(2, dtype=lib.float64),)).numpy())
        with pytest.raises(_Boom):
            lib.func.functional_call(m, given, (lib.zeros(3, dtype=lib.float64),))  # the forward fails
        assert m.offset is original and m._buffers["offset"] is original
    np.testing.assert_array_equal(outs[0], outs[1])


def _tied(lib: Any) -> Any:
    m = lib.nn.Sequential(lib.nn.Linear(2, 2, bias=False).double(), lib.nn.Linear(2, 2, bias=False).double())
    m[1].weight = m[0].weight
    with lib.no_grad():
        m[0].weight.copy_(lib.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=lib.float64))
    return m


@pytest.mark.parametrize("tie_weights", [True, False])
def test_tied_weights_inside_the_call(tie_weights: bool) -> None:
    seen = []
    for lib in (ds, torch):
        m = _tied(lib)
        given = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)
        inside: list[bool] = []
        m.register_forward_pre_hook(
            lambda mod, a, inside=inside, given=given: inside.append(mod[1]._parameters["weight"] is given)
        )
        out = lib.func.functional_call(
            m, {"0.weight": given}, (lib.ones(1, 2, dtype=lib.float64),), tie_weights=tie_weights
        )
        seen.append((inside, out.detach().numpy()))
        assert m[1].weight is m[0].weight and isinstance(m[0].weight, lib.nn.Parameter)
    assert seen[0][0] == seen[1][0]
    np.testing.assert_allclose(seen[0][1], seen[1][1], rtol=1e-12)
