"""nn.Parameter's copy semantics against PyTorch's."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _both(build):
    return build(torch), build(ds)


def test_deepcopy_parameter_drops_grad_hooks_and_attributes_as_torch() -> None:
    def build(lib):
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        p.grad = lib.tensor([5.0, 6.0])
        p.note = "fisher"
        p.register_hook(lambda g: g * 10)
        q = copy.deepcopy(p)
        (q * q).sum().backward()  # a hook carried over would scale this gradient
        return q, hasattr(q, "note"), q.requires_grad, type(q).__name__

    (tq, t_attr, t_rg, t_type), (dq, d_attr, d_rg, d_type) = _both(build)
    assert (d_attr, d_rg, d_type) == (t_attr, t_rg, t_type) == (False, True, "Parameter")
    np.testing.assert_array_equal(dq.grad.numpy(), tq.grad.numpy())  # 2 * q, not 5 + 2 * q


def test_deepcopy_plain_tensor_keeps_grad_as_torch() -> None:
    def build(lib):
        t = lib.tensor([1.0, 2.0], requires_grad=True)
        t.grad = lib.tensor([3.0, 4.0])
        return copy.deepcopy(t).grad

    tg, dg = _both(build)
    np.testing.assert_array_equal(dg.numpy(), tg.numpy())


def test_deepcopy_model_then_local_step_matches_torch() -> None:
    # A federated client: the global model holds grads, the client copies it, steps, and zeroes after.
    def build(lib):
        g = lib.nn.Linear(3, 1)
        g.load_state_dict({"weight": lib.tensor([[1.0, 2.0, 3.0]]), "bias": lib.tensor([0.5])})
        g(lib.ones(1, 3)).sum().backward()
        local = copy.deepcopy(g)
        grads_none = [p.grad is None for p in local.parameters()]
        opt = lib.optim.SGD(local.parameters(), lr=0.1)
        local(lib.ones(1, 3)).sum().backward()
        opt.step()
        return grads_none, local.weight.detach().numpy().copy(), g.weight.grad.numpy().copy()

    (t_none, tw, tg), (d_none, dw, dg) = _both(build)
    assert d_none == t_none == [True, True]
    np.testing.assert_array_equal(dw, tw)
    np.testing.assert_array_equal(dg, tg)  # the original keeps its gradient


def test_deepcopy_keeps_ties_dtype_and_requires_grad() -> None:
    lin = ds.nn.Linear(2, 2)
    lin.weight.grad = ds.ones(2, 2)
    model = ds.nn.Sequential(lin, lin)
    frozen = ds.nn.Parameter(ds.ones(3, dtype=ds.float64), requires_grad=False)
    c, f = copy.deepcopy((model, frozen))
    assert c[0].weight is c[1].weight and c[0].weight is not lin.weight
    assert not np.shares_memory(c[0].weight.array, lin.weight.array)
    assert (f.dtype, f.requires_grad, type(f)) == (np.dtype(np.float64), False, ds.nn.Parameter)


def test_a_complex_parameter_holds_and_differentiates_as_torchs() -> None:
    torch = pytest.importorskip("torch")
    z = np.array([1 + 2j, 3 - 1j], np.complex64)
    ours, theirs = ds.nn.Parameter(ds.tensor(z)), torch.nn.Parameter(torch.tensor(z))
    assert ours.requires_grad and str(ours.dtype) == str(theirs.dtype)[6:] == "complex64"
    (ours.abs() ** 2).sum().backward()
    (theirs.abs() ** 2).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)
    layer = ds.nn.Module()
    layer.w = ours
    assert layer.state_dict()["w"].dtype == ds.complex64
    with pytest.raises(TypeError, match="floating point and complex"):
        ds.nn.Parameter(ds.tensor([1, 2]))  # integers cannot require gradients, as in torch
