"""Edge cases of pointwise ops against torch 2.13: clamp with a NaN number beside a tensor bound and
clamp's three-operand type promotion, lerp with infinite ends, addcmul/addcdiv gradients of a
broadcast operand beside an infinite factor, pow's exponent gradient of a float16 base, angle's out=."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

NAN = math.nan
INF = math.inf


def _dtype_name(t: object) -> str:
    return str(t.dtype).replace("torch.", "")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "call",
    [
        lambda L, x: L.clamp(x, L.tensor(0.0), NAN),
        lambda L, x: L.clamp(x, NAN, L.tensor(2.0)),
        lambda L, x: x.clamp(min=L.tensor(0.0), max=NAN),
        lambda L, x: L.clip(x, L.tensor(0.0), NAN),
        lambda L, x: x.clone().clamp_(L.tensor(0.0), NAN),
        lambda L, x: L.clamp(x, L.tensor(0.0, dtype=L.float64), NAN),
    ],
)
def test_clamp_with_a_tensor_bound_and_a_nan_number_bound_is_nan_as_torch(call) -> None:
    ref = call(torch, torch.tensor([1.0, 5.0, -3.0]))
    got = call(ds, ds.tensor([1.0, 5.0, -3.0]))
    assert _dtype_name(got) == _dtype_name(ref)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())  # NaN where torch has NaN


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.clamp(L.tensor([-15, 3], dtype=L.int16), L.tensor(-9.5, dtype=L.float16), L.tensor(2.5)),
        lambda L: L.clamp(L.tensor([True, False]), L.tensor(-5), L.tensor([1, 2], dtype=L.int32)),
        lambda L: L.clamp(L.tensor([1, 2, 3]), L.tensor(0.5, dtype=L.float64), 2),  # torch's Scalar overload
        lambda L: L.clamp(L.tensor([1, 2, 3]), L.tensor(0.5, dtype=L.float64), L.tensor(2)),
        lambda L: L.clamp(L.tensor([1, 2, 3]), L.tensor(0.5, dtype=L.float64), L.tensor(2.5, dtype=L.float16)),
        lambda L: L.clamp(L.tensor([1, 2, 3], dtype=L.int16), L.tensor(-9), 2),
        lambda L: L.clamp(L.tensor([1.0, 2.0, 3.0], dtype=L.float16), L.tensor(-9.0, dtype=L.float64), 2),
        lambda L: L.clamp(L.tensor([True, False]), L.tensor(0), 1.5),
        lambda L: L.clamp(L.tensor([1, 200, 3], dtype=L.uint8), L.tensor(2, dtype=L.uint8), L.tensor(-1)),
        lambda L: L.clamp(L.tensor(7, dtype=L.int8), L.tensor([1.5, 9.0], dtype=L.float16), L.tensor(3.0)),
    ],
)
def test_clamp_with_tensor_bounds_promotes_over_all_three_operands_as_torch(call) -> None:
    ref, got = call(torch), call(ds)
    assert _dtype_name(got) == _dtype_name(ref)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_clamp_refuses_a_number_bound_that_overflows_the_result_dtype_as_torch() -> None:
    with pytest.raises(RuntimeError, match="overflow"):
        torch.clamp(torch.tensor([1, 2], dtype=torch.int8), torch.tensor(0), 300)
    with pytest.raises(ds.errors.InvalidValueError, match="clamp: value 300 cannot be converted to int8"):
        ds.clamp(ds.tensor([1, 2], dtype=ds.int8), ds.tensor(0), 300)


def test_clamp_with_mixed_bound_dtypes_has_torchs_gradient() -> None:
    x64 = np.array([-2.0, 0.25, 0.5, 3.0])
    grads = {}
    for L in (torch, ds):
        x = L.tensor(x64, dtype=L.float32, requires_grad=True)
        lo = L.tensor([0.25, 0.25, -1.0, 0.0], dtype=L.float64, requires_grad=True)
        hi = L.tensor(2.0, dtype=L.float16)
        y = L.clamp(x, lo, hi)
        (y * L.tensor([1.0, 2.0, 3.0, 4.0], dtype=y.dtype)).sum().backward()
        grads[L.__name__] = (_dtype_name(y), x.grad.tolist(), lo.grad.tolist(), _dtype_name(lo.grad))
    assert grads["downslope"] == grads["torch"]


@pytest.mark.parametrize("weight", ["tensor", 0.75, 0.3, 1.0, -0.7])
def test_lerp_of_infinite_ends_follows_torchs_two_sided_formula(weight) -> None:
    s, e, w = [-25.0, INF, -INF, INF, 3.0], [-5.0, 12.25, 2.0, 1.0, -INF], [0.2, 0.997, 0.6, 0.3, 0.5]
    out = {}
    for L in (torch, ds):
        wt = L.tensor(w) if weight == "tensor" else weight
        out[L.__name__] = L.lerp(L.tensor(s), L.tensor(e), wt)
    assert _dtype_name(out["downslope"]) == _dtype_name(out["torch"])
    np.testing.assert_array_equal(out["downslope"].numpy(), out["torch"].numpy())


@pytest.mark.parametrize("weight", ["tensor", 0.75, 0.3])
def test_lerp_gradients_match_torch_in_float64_with_broadcasting(weight) -> None:
    rng = np.random.default_rng(0)
    s, e, w = rng.normal(size=(3, 4)), rng.normal(size=(4,)), rng.uniform(-1, 2, size=(3, 1))
    cot = rng.normal(size=(3, 4))
    grads = {}
    for L in (torch, ds):
        start = L.tensor(s, dtype=L.float64, requires_grad=True)
        end = L.tensor(e, dtype=L.float64, requires_grad=True)
        wt = L.tensor(w, dtype=L.float64, requires_grad=True) if weight == "tensor" else weight
        y = L.lerp(start, end, wt)
        (y * L.tensor(cot, dtype=L.float64)).sum().backward()
        parts = [y.detach().numpy(), start.grad.numpy(), end.grad.numpy()]
        if weight == "tensor":
            parts.append(wt.grad.numpy())
        grads[L.__name__] = parts
    for ours, theirs in zip(grads["downslope"], grads["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_lerp_gradient_of_the_weight_at_an_infinite_start_is_torchs() -> None:
    grads = {}
    for L in (torch, ds):
        start = L.tensor([INF, 1.0], dtype=L.float64, requires_grad=True)
        end = L.tensor([2.0, 3.0], dtype=L.float64, requires_grad=True)
        w = L.tensor([0.9, 0.1], dtype=L.float64, requires_grad=True)
        L.lerp(start, end, w).sum().backward()
        grads[L.__name__] = [start.grad.tolist(), end.grad.tolist(), w.grad.tolist()]
    assert str(grads["downslope"]) == str(grads["torch"])


def test_lerp_second_derivative_through_the_weight_matches_torch() -> None:
    out = {}
    for L in (torch, ds):
        start = L.tensor([1.0, -2.0], dtype=L.float64, requires_grad=True)
        w = L.tensor([0.2, 0.8], dtype=L.float64, requires_grad=True)
        y = L.lerp(start, L.tensor([3.0, 5.0], dtype=L.float64), w)
        (gs,) = L.autograd.grad((y * y).sum(), start, create_graph=True)
        (gw,) = L.autograd.grad(gs.sum(), w)
        out[L.__name__] = gw.numpy()
    np.testing.assert_allclose(out["downslope"], out["torch"], rtol=1e-12)


@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
def test_addc_gradient_of_a_broadcast_factor_beside_an_infinite_one_is_nan_as_torch(name) -> None:
    other = -INF if name == "addcmul" else -0.0  # tensor1 / -0.0 is -inf per element
    cot = np.array([0.5, -1.0, 2.0])
    grads = {}
    for L in (torch, ds):
        x = L.tensor([1.0, -1.0, 0.0], dtype=L.float64)
        a = L.tensor([1.2], dtype=L.float64, requires_grad=True)
        b = L.tensor(other, dtype=L.float64, requires_grad=True)
        (getattr(L, name)(x, a, b, value=2) * L.tensor(cot, dtype=L.float64)).sum().backward()
        grads[L.__name__] = (a.grad.tolist(), b.grad.tolist())
    assert str(grads["downslope"]) == str(grads["torch"])


@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_addc_values_and_gradients_match_torch_with_broadcasting(name, dtype) -> None:
    rng = np.random.default_rng(1)
    xs, a1, a2 = rng.normal(size=(1, 4)), rng.normal(size=(3, 1)), rng.uniform(0.5, 2, size=(4,))
    cot = rng.normal(size=(3, 4))
    out = {}
    for L in (torch, ds):
        dt = getattr(L, dtype)
        ts = [L.tensor(v, dtype=dt, requires_grad=True) for v in (xs, a1, a2)]
        y = getattr(L, name)(*ts, value=-0.75)
        (y * L.tensor(cot, dtype=dt)).sum().backward()
        out[L.__name__] = [y.detach().numpy()] + [t.grad.numpy() for t in ts]
    tol = 1e-6 if dtype == "float32" else 1e-13
    for ours, theirs in zip(out["downslope"], out["torch"]):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def test_addcmul_second_derivative_matches_torch() -> None:
    out = {}
    for L in (torch, ds):
        a = L.tensor([1.5, -2.0], dtype=L.float64, requires_grad=True)
        b = L.tensor([0.5, 3.0], dtype=L.float64, requires_grad=True)
        y = L.addcdiv(L.zeros(2, dtype=L.float64), a, b, value=3)
        (ga,) = L.autograd.grad((y * y).sum(), a, create_graph=True)
        (gb,) = L.autograd.grad(ga.sum(), b)
        out[L.__name__] = gb.numpy()
    np.testing.assert_allclose(out["downslope"], out["torch"], rtol=1e-12)


def test_pow_exponent_gradient_of_a_float16_base_is_computed_in_the_result_dtype() -> None:
    base = [1.5, 2.0, 3.0, 2.5, 0.0]
    exponent = [1.0, 0.25, -2.0, 3.0, 2.0]
    ref = np.array(base) ** np.array(exponent) * np.log(np.where(np.array(base) == 0, 1, base))  # float64 closed form
    grads = {}
    for L in (torch, ds):
        b = L.tensor(exponent, dtype=L.float32, requires_grad=True)
        L.pow(L.tensor(base, dtype=L.float16), b).sum().backward()
        grads[L.__name__] = b.grad.numpy()
    assert grads["downslope"].dtype == np.float32
    np.testing.assert_allclose(grads["downslope"], ref, rtol=2e-7)  # float16 log(base) was 3e-4 off
    np.testing.assert_allclose(grads["downslope"], grads["torch"], rtol=2e-7)


def test_angle_takes_out_as_torch() -> None:
    outs = {}
    for L in (torch, ds):
        o = L.empty(2, dtype=L.float64)
        assert L.angle(L.tensor([-1.0, 2.0]), out=o) is o  # float32's pi, written as float64
        outs[L.__name__] = o.numpy()
        refusal = RuntimeError if L is torch else ds.errors.ArgumentTypeError  # ds's out= refusal, as for every op
        with pytest.raises(refusal, match="can't be cast"):  # a floating result into an integer out
            L.angle(L.tensor([-1.0, 2.0]), out=L.empty(2, dtype=L.int64))
    np.testing.assert_array_equal(outs["downslope"], outs["torch"])
    np.testing.assert_allclose(outs["downslope"], [math.pi, 0.0], rtol=1e-7)


@pytest.mark.parametrize("offset", [1, -2, 0])
def test_diag_takes_torchs_diagonal_keyword(offset) -> None:
    for make in (lambda L: L.arange(3.0), lambda L: L.arange(12.0).reshape(3, 4)):
        ref = torch.diag(make(torch), diagonal=offset)
        np.testing.assert_array_equal(ds.diag(make(ds), diagonal=offset).numpy(), ref.numpy())
        np.testing.assert_array_equal(ds.diag(input=make(ds), diagonal=offset).numpy(), ref.numpy())


@pytest.mark.parametrize("low", [0.0, 0.49])
@pytest.mark.parametrize("high", [0.49, 1.5])
@pytest.mark.parametrize(
    "shapes", [((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), (2, 3, 4)), ((2, 3, 4), (4,), (3, 1)), ((), (), (5,))]
)
def test_lerp_by_a_tensor_weight_matches_torch(shapes, low, high) -> None:
    rng = np.random.default_rng(2)
    s_shape, e_shape, w_shape = shapes
    s = rng.normal(size=s_shape) * 1e3
    e = rng.normal(size=e_shape)
    w = rng.uniform(low, high, size=w_shape)
    for dtype in ("float32", "float64", "float16"):
        out = {L.__name__: L.lerp(*(L.tensor(v, dtype=getattr(L, dtype)) for v in (s, e, w))) for L in (torch, ds)}
        assert _dtype_name(out["downslope"]) == dtype
        # torch's vectorised kernel fuses the multiply-add (one rounding, NumPy has none): an ulp apart
        rtol = {"float32": 2.5e-7, "float64": 4.5e-16, "float16": 1e-3}[dtype]
        np.testing.assert_allclose(out["downslope"].numpy(), out["torch"].numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("weight", ["tensor", 0.75, 0.25])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_lerp_in_place_follows_torchs_two_sided_formula(weight, dtype) -> None:
    out = {}
    for L in (torch, ds):
        x = L.tensor([INF, 1.0, -INF, 3.0], dtype=getattr(L, dtype))
        wt = L.tensor([0.75, 0.1, 1.0, 0.5], dtype=getattr(L, dtype)) if weight == "tensor" else weight
        assert x.lerp_(L.tensor([2.0, 3.0, 1.0, -1.0], dtype=getattr(L, dtype)), wt) is x
        out[L.__name__] = x.tolist()
    assert str(out["downslope"]) == str(out["torch"])


def test_lerp_in_place_while_recording_has_torchs_gradients() -> None:
    grads = {}
    for L in (torch, ds):
        s = L.tensor([INF, 1.0, 2.0], dtype=L.float64, requires_grad=True)
        e = L.tensor([2.0, 3.0, -1.0], dtype=L.float64, requires_grad=True)
        w = L.tensor([0.75, 0.1, 0.5], dtype=L.float64, requires_grad=True)
        y = s * 1
        y.lerp_(e, w)
        (y * L.tensor([1.0, 2.0, 3.0], dtype=L.float64)).sum().backward()
        grads[L.__name__] = [y.tolist(), s.grad.tolist(), e.grad.tolist(), w.grad.tolist()]
    assert str(grads["downslope"]) == str(grads["torch"])


def test_lerp_by_a_number_lets_its_inputs_be_overwritten_afterwards_as_torch() -> None:
    grads = {}
    for L in (torch, ds):
        s = L.tensor([1.0, 2.0], requires_grad=True)
        start = s * 1
        y = L.lerp(start, L.tensor([3.0, 5.0]), 0.3)
        start.mul_(2)  # torch's rule keeps no input for a number weight: no "modified by an inplace operation"
        y.sum().backward()
        grads[L.__name__] = s.grad.tolist()
    assert grads["downslope"] == pytest.approx(grads["torch"])
