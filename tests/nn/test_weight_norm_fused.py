"""The fused weight-norm op (nn/_weight_norm.py) behind both weight_norm APIs, against torch in float64:
the weight, the gradients wrt g and v, double backward, the parameter names and the removal paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn
from downslope.nn._weight_norm import weight_norm_op

# (layer maker, dim): dim 0 for Linear and Conv, 1 for ConvTranspose's (in, out, k) weight, None and
# -1 for the whole tensor, negative dims counted from the end
CASES = [
    ("Linear", (6, 5), 0),
    ("Linear", (6, 5), None),
    ("Linear", (6, 5), 1),
    ("Linear", (6, 5), -2),
    ("Conv1d", (4, 3, 3), 0),
    ("Conv2d", (4, 3, (3, 2)), 0),
    ("Conv2d", (4, 3, (3, 2)), -1),
    ("Conv2d", (4, 3, (3, 2)), 2),
    ("ConvTranspose1d", (4, 3, 3), 1),
    ("ConvTranspose2d", (4, 3, (2, 2)), 1),
]


def _input(name: str, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    if name == "Linear":
        return rng.randn(3, 6)
    if name.endswith("1d"):
        return rng.randn(2, 4, 7)
    return rng.randn(2, 4, 6, 5)


def _layers(name: str, args: tuple, seed: int) -> tuple[torch.nn.Module, nn.Module]:
    t_layer = getattr(torch.nn, name)(*args).double()
    d_layer = getattr(nn, name)(*args, dtype=ds.float64)
    with ds.no_grad():
        for (_, tp), (_, dp) in zip(t_layer.named_parameters(), d_layer.named_parameters()):
            dp.copy_(ds.tensor(tp.detach().numpy(), dtype=ds.float64))
    return t_layer, d_layer


def _grads(module: object) -> dict[str, np.ndarray]:
    return {n: p.grad.numpy() for n, p in module.named_parameters()}


@pytest.mark.parametrize("api", ["utils", "parametrizations"])
@pytest.mark.parametrize(("name", "args", "dim"), CASES)
def test_weight_norm_matches_torch(api: str, name: str, args: tuple, dim: int | None) -> None:
    t_layer, d_layer = _layers(name, args, 0)
    if api == "utils":
        t_layer = torch.nn.utils.weight_norm(t_layer, dim=dim)
        d_layer = nn.utils.weight_norm(d_layer, dim=dim)
    else:
        t_layer = torch.nn.utils.parametrizations.weight_norm(t_layer, dim=dim)
        d_layer = nn.utils.parametrizations.weight_norm(d_layer, dim=dim)
    assert [n for n, _ in d_layer.named_parameters()] == [n for n, _ in t_layer.named_parameters()]
    x = _input(name, 1)
    weights = np.random.RandomState(2).randn(*t_layer(torch.tensor(x)).shape)
    t_out = t_layer(torch.tensor(x))
    d_out = d_layer(ds.tensor(x, dtype=ds.float64))
    np.testing.assert_allclose(d_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d_layer.weight.detach().numpy(), t_layer.weight.detach().numpy(), rtol=1e-12, atol=1e-12)
    (t_out * torch.tensor(weights)).sum().backward()
    (d_out * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    t_grads, d_grads = _grads(t_layer), _grads(d_layer)
    assert set(d_grads) == set(t_grads)
    for key in t_grads:
        np.testing.assert_allclose(d_grads[key], t_grads[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(("name", "args", "dim"), [CASES[0], CASES[1], CASES[5], CASES[8]])
def test_weight_norm_is_one_node(name: str, args: tuple, dim: int | None) -> None:
    """The weight is one recorded op with g and v as its inputs (not the square/sum/sqrt/div/mul chain)."""
    _, d_layer = _layers(name, args, 0)
    d_layer = nn.utils.parametrizations.weight_norm(d_layer, dim=dim)
    w = d_layer.weight
    originals = d_layer.parametrizations.weight
    assert w.grad_fn is not None
    assert [p is q for p, q in zip(w._parents, (originals.original0, originals.original1))] == [True, True]
    if dim is not None:  # torch composes the whole-tensor norm (MulBackward0) and fuses the others
        assert w.grad_fn.name() == "WeightNormInterfaceBackward0"


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_double_backward_matches_torch(dim: int | None) -> None:
    rng = np.random.RandomState(3)
    v0 = rng.randn(4, 3, 2)
    g_shape = () if dim is None else tuple(n if a == dim else 1 for a, n in enumerate(v0.shape))
    g0 = rng.rand(*g_shape) + 0.5
    cot = rng.randn(*v0.shape)
    probe_g, probe_v = rng.randn(*g_shape), rng.randn(*v0.shape)

    def run(lib: object, fn: object) -> list[np.ndarray]:
        f64 = lib.float64
        g = lib.tensor(g0, dtype=f64, requires_grad=True)
        v = lib.tensor(v0, dtype=f64, requires_grad=True)
        w = fn(g, v)
        gg, gv = lib.autograd.grad((w * lib.tensor(cot, dtype=f64)).sum(), (g, v), create_graph=True)
        second = (gg * lib.tensor(probe_g, dtype=f64)).sum() + (gv * lib.tensor(probe_v, dtype=f64)).sum()
        hg, hv = lib.autograd.grad(second, (g, v))
        return [x.detach().numpy() for x in (gg, gv, hg, hv)]

    # torch's composed form as the reference: torch 2.13's fused _weight_norm gets the second
    # derivative wrt v wrong for dim 0 (its own gradgradcheck fails there)
    axes = tuple(range(v0.ndim)) if dim is None else tuple(a for a in range(v0.ndim) if a != dim)
    expected = run(torch, lambda g, v: g * v / (v * v).sum(dim=axes, keepdim=dim is not None).sqrt())
    got = run(ds, lambda g, v: weight_norm_op(g, v, dim))
    for e, r in zip(expected, got):
        np.testing.assert_allclose(r, e, rtol=1e-10, atol=1e-12)


def test_weight_norm_gradients_match_finite_differences() -> None:
    rng = np.random.RandomState(4)
    g = ds.tensor(rng.rand(3, 1, 1) + 0.5, dtype=ds.float64, requires_grad=True)
    v = ds.tensor(rng.randn(3, 4, 2), dtype=ds.float64, requires_grad=True)
    assert ds.autograd.gradcheck(lambda a, b: weight_norm_op(a, b, 0), (g, v))
    assert ds.autograd.gradgradcheck(lambda a, b: weight_norm_op(a, b, 0), (g, v))


def test_weight_norm_float32_matches_torch() -> None:
    """The default dtype: the fused sums in float32 stay within float32 rounding of torch's."""
    rng = np.random.RandomState(5)
    v0 = rng.randn(64, 32, 5, 1).astype(np.float32)
    g0 = (rng.rand(64, 1, 1, 1) + 0.5).astype(np.float32)
    cot = rng.randn(*v0.shape).astype(np.float32)
    tg, tv = torch.tensor(g0, requires_grad=True), torch.tensor(v0, requires_grad=True)
    tw = torch._weight_norm(tv, tg, 0)
    (tw * torch.tensor(cot)).sum().backward()
    dg, dv = ds.tensor(g0, requires_grad=True), ds.tensor(v0, requires_grad=True)
    dw = weight_norm_op(dg, dv, 0)
    assert dw.dtype == ds.float32
    (dw * ds.tensor(cot)).sum().backward()
    np.testing.assert_allclose(dw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dg.grad.numpy(), tg.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dv.grad.numpy(), tv.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [0, None])
def test_remove_weight_norm_keeps_the_weight(dim: int | None) -> None:
    t_layer, d_layer = _layers("Conv1d", (4, 3, 3), 6)
    t_layer = torch.nn.utils.weight_norm(t_layer, dim=dim)
    d_layer = nn.utils.weight_norm(d_layer, dim=dim)
    with torch.no_grad(), ds.no_grad():
        t_layer.weight_g.mul_(1.5)
        d_layer.weight_g.mul_(1.5)
    t_layer(torch.zeros(1, 4, 5, dtype=torch.float64))
    d_layer(ds.zeros(1, 4, 5, dtype=ds.float64))
    torch.nn.utils.remove_weight_norm(t_layer)
    nn.utils.remove_weight_norm(d_layer)
    assert [n for n, _ in d_layer.named_parameters()] == [n for n, _ in t_layer.named_parameters()]
    np.testing.assert_allclose(d_layer.weight.detach().numpy(), t_layer.weight.detach().numpy(), rtol=1e-12)


def test_remove_parametrizations_keeps_the_weight() -> None:
    t_layer, d_layer = _layers("ConvTranspose1d", (4, 3, 3), 7)
    t_layer = torch.nn.utils.parametrizations.weight_norm(t_layer, dim=1)
    d_layer = nn.utils.parametrizations.weight_norm(d_layer, dim=1)
    with torch.no_grad(), ds.no_grad():
        t_layer.parametrizations.weight.original0.mul_(0.5)
        d_layer.parametrizations.weight.original0.mul_(0.5)
    assert list(d_layer.state_dict()) == list(t_layer.state_dict())
    torch.nn.utils.parametrize.remove_parametrizations(t_layer, "weight")
    nn.utils.parametrize.remove_parametrizations(d_layer, "weight")
    assert list(d_layer.state_dict()) == list(t_layer.state_dict())
    np.testing.assert_allclose(d_layer.weight.detach().numpy(), t_layer.weight.detach().numpy(), rtol=1e-12)


def test_other_g_shapes_and_dtypes_take_the_composed_path() -> None:
    """A 1-D v normalized per element (|v|), a g that only broadcasts, and float16 keep the ordinary
    ops' values (compared with torch's composition)."""
    v0 = np.array([3.0, -4.0, 0.5])
    g0 = np.array([2.0, 1.0, -1.0])
    got = weight_norm_op(ds.tensor(g0, dtype=ds.float64), ds.tensor(v0, dtype=ds.float64), 0).numpy()
    np.testing.assert_allclose(got, g0 * v0 / np.abs(v0))
    v2 = np.arange(1.0, 7.0).reshape(2, 3)
    got = weight_norm_op(ds.tensor(np.array([2.0]), dtype=ds.float64), ds.tensor(v2, dtype=ds.float64), None).numpy()
    np.testing.assert_allclose(got, 2.0 * v2 / np.sqrt((v2 * v2).sum()))
    half = weight_norm_op(ds.tensor(np.ones((2, 1)), dtype=ds.float16), ds.tensor(v2, dtype=ds.float16), 0)
    assert half.dtype == ds.float16
    np.testing.assert_allclose(half.detach().numpy(), v2 / np.linalg.norm(v2, axis=1, keepdims=True), rtol=1e-3)


@pytest.mark.host_only  # ONNX export reads the weights on the host
@pytest.mark.parametrize("dim", [0, None])
def test_parametrized_weight_norm_exports_to_onnx(dim: int | None, tmp_path: object) -> None:
    """The fused op has an ONNX rule: the export runs its graph on a second input and compares the
    outputs with the model's, so a wrong translation fails here."""
    pytest.importorskip("onnx")
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    nn.utils.parametrizations.weight_norm(model[0], dim=dim)
    ds.onnx.export(model, ds.randn(2, 3), str(tmp_path / "model.onnx"))  # type: ignore[operator]


@pytest.mark.parametrize("api", ["utils", "parametrizations"])
@pytest.mark.parametrize("dim", [0, None])
def test_layer_called_twice_sums_both_gradients_like_torch(api: str, dim: int | None) -> None:
    """A GAN discriminator sees real and generated data in one step: v and g get two contributions,
    the second added into the first in place (the rule's arrays are its own; g's is 0-d for None)."""
    t_layer, d_layer = _layers("Conv1d", (4, 3, 3), 8)
    wrap_t = torch.nn.utils.weight_norm if api == "utils" else torch.nn.utils.parametrizations.weight_norm
    wrap_d = nn.utils.weight_norm if api == "utils" else nn.utils.parametrizations.weight_norm
    t_layer, d_layer = wrap_t(t_layer, dim=dim), wrap_d(d_layer, dim=dim)
    rng = np.random.RandomState(9)
    a, b = rng.randn(2, 4, 6), rng.randn(3, 4, 6)
    (t_layer(torch.tensor(a)) ** 2).sum().backward()
    (t_layer(torch.tensor(b)) * 3).sum().backward()
    d_loss = (d_layer(ds.tensor(a, dtype=ds.float64)) ** 2).sum()
    d_loss = d_loss + (d_layer(ds.tensor(b, dtype=ds.float64)) * 3).sum()
    d_loss.backward()
    t_grads, d_grads = _grads(t_layer), _grads(d_layer)
    for key in t_grads:
        np.testing.assert_allclose(d_grads[key], t_grads[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("fresh", [True, False])
def test_engine_adds_into_a_fresh_rule_gradient_in_place(fresh: bool) -> None:
    """The engine's contract for a rule marked ``fresh_grads``: the first gradient array it returned
    for an input receives the later contributions in place (no new array of the weight's size);
    an unmarked rule's array is never written to (it may be shared)."""
    from downslope.tensor import record_op

    returned: list[np.ndarray] = []

    def double_vjp(g, y, args, saved, needs, xp):  # noqa: ANN001, ANN202 (the VJPRule signature)
        out = g * 2.0
        returned.append(out)
        return (out,)

    if fresh:
        double_vjp.fresh_grads = True  # type: ignore[attr-defined]
    x = ds.tensor(np.arange(4.0), dtype=ds.float64, requires_grad=True)
    h = x * 1.0  # a non-leaf: its gradient is summed inside the pass
    y1 = record_op(h.array * 2.0, (h,), double_vjp)
    y2 = record_op(h.array * 2.0, (h,), double_vjp)
    (y1.sum() + 5.0 * y2.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 12.0))
    # y2, made last, is reached first: its array (10) is the one a later contribution (2) joins
    first, second = ds.tensor(returned[0]).numpy(), ds.tensor(returned[1]).numpy()
    np.testing.assert_allclose(first, np.full(4, 12.0 if fresh else 10.0))
    np.testing.assert_allclose(second, np.full(4, 2.0))
