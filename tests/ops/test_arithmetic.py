"""Elementwise ops of two tensors (downslope.ops.arithmetic) against PyTorch: where the inputs tie."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# Equal pairs in positions 0 and 2, a win for each side elsewhere.
_A = np.array([1.0, 2.0, 3.0, 2.0, -1.5])
_B = np.array([1.0, 5.0, 3.0, 0.0, -1.5])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_minimum_split_a_tie_evenly_like_torch(check_op, name, dtype):
    check_op(getattr(ds, name), getattr(torch, name), [_A.astype(dtype), _B.astype(dtype)])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_the_tie_share_is_one_half_for_each_input(name):
    a = ds.tensor(_A, requires_grad=True)
    b = ds.tensor(_B, requires_grad=True)
    getattr(ds, name)(a, b).backward(ds.tensor([2.0, 1.0, 4.0, 1.0, 6.0]))
    win_a = [0.0, 0.0, 0.0, 1.0, 0.0] if name == "maximum" else [0.0, 1.0, 0.0, 0.0, 0.0]
    win_b = [0.0, 1.0, 0.0, 0.0, 0.0] if name == "maximum" else [0.0, 0.0, 0.0, 1.0, 0.0]
    tie = np.array([1.0, 0.0, 2.0, 0.0, 3.0])  # half of the upstream gradient where the inputs are equal
    np.testing.assert_array_equal(a.grad.numpy(), tie + win_a)
    np.testing.assert_array_equal(b.grad.numpy(), tie + win_b)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_a_broadcast_operand_sums_its_tie_shares_like_torch(check_op, name):
    # the scalar 2.0 ties with two elements of the vector: it gets half of each of their gradients
    check_op(getattr(ds, name), getattr(torch, name), [np.array(2.0), np.array([2.0, 2.0, 1.0, 3.0])])
    check_op(
        getattr(ds, name), getattr(torch, name), [np.full((3, 1), 0.5), np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 2.0]])]
    )


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_tie_gradients_under_create_graph_match_torch(name):
    a, b = ds.tensor(_A, requires_grad=True), ds.tensor(_B, requires_grad=True)
    ta, tb = torch.tensor(_A, requires_grad=True), torch.tensor(_B, requires_grad=True)
    ga, gb = ds.autograd.grad((getattr(ds, name)(a, b) ** 2).sum(), [a, b], create_graph=True)
    tga, tgb = torch.autograd.grad((getattr(torch, name)(ta, tb) ** 2).sum(), [ta, tb], create_graph=True)
    np.testing.assert_allclose(ga.detach().numpy(), tga.detach().numpy())
    np.testing.assert_allclose(gb.detach().numpy(), tgb.detach().numpy())
    (ga * ga + gb).sum().backward()
    (tga * tga + tgb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint8"])
@pytest.mark.parametrize("divisor", [3, "tensor", 2.5])
def test_fmod_and_remainder_of_integers_keep_the_integer_dtype_like_torch(dtype, divisor):
    data = [-7, 7, 5] if dtype != "uint8" else [7, 5, 0]
    for name in ("fmod", "remainder"):
        ours = getattr(ds, name)(
            ds.tensor(data, dtype=getattr(ds, dtype)), ds.tensor([3, 3, 3]) if divisor == "tensor" else divisor
        )
        theirs = getattr(torch, name)(
            torch.tensor(data, dtype=getattr(torch, dtype)), torch.tensor([3, 3, 3]) if divisor == "tensor" else divisor
        )
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "op",
    [
        lambda m: m.tensor([3, 4]) // m.tensor([0, 2]),
        lambda m: m.tensor([3, 4]) % 0,
        lambda m: m.fmod(m.tensor([3]), 0),
        lambda m: m.div(m.tensor([3]), 0, rounding_mode="floor"),
        lambda m: m.div(m.tensor([3]), 0, rounding_mode="trunc"),
    ],
)
@pytest.mark.host_only  # the check reads the divisor: on a device it would wait for it
def test_integer_division_by_zero_raises_like_torch(op):
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        op(torch)
    with pytest.raises(ZeroDivisionError):
        op(ds)
    with pytest.raises(RuntimeError):
        op(ds)


@pytest.mark.parametrize("name", ["add", "sub"])
@pytest.mark.parametrize("alpha", [2, 0.5, -3])
def test_add_and_sub_take_alpha_like_torch(check_op, name, alpha):
    a, b = np.array([[1.0, -2.0, 0.5]]), np.array([[3.0], [0.25]])
    check_op(
        lambda x, y: getattr(ds, name)(x, y, alpha=alpha), lambda x, y: getattr(torch, name)(x, y, alpha=alpha), [a, b]
    )
    ours = getattr(ds, name)(ds.tensor([1, 2]), ds.tensor([3, 4]), alpha=2)
    theirs = getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([3, 4]), alpha=2)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------------- integer powers, remainders, booleans
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
def test_integer_powers_with_negative_exponents_follow_torch(dtype):
    base = np.array([2, 3, 1, -1, -1, 0, -2, 5, 0], dtype=np.int64)
    exponent = np.array([-1, 2, -5, -3, -4, -1, -2, 0, 0], dtype=np.int64)
    if dtype == "uint8":
        base = np.abs(base)
    b = torch.from_numpy(base.astype(dtype))
    e = torch.from_numpy(exponent.astype(np.int8 if dtype == "uint8" else dtype))
    got = ds.from_numpy(base.astype(dtype)) ** ds.from_numpy(e.numpy())
    want = b**e
    assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("number", [3, 1, -1, 0, 2, 300])
def test_a_number_to_integer_tensor_powers_follows_torch(number):
    exponent = np.array([-2, -3, 3, 0], dtype=np.int64)
    np.testing.assert_array_equal(
        (number ** ds.from_numpy(exponent)).numpy(), (number ** torch.from_numpy(exponent)).numpy()
    )
    np.testing.assert_array_equal(
        ds.pow(number, ds.from_numpy(exponent)).numpy(), torch.pow(number, torch.from_numpy(exponent)).numpy()
    )


def test_integer_pow_of_0d_tensors_and_booleans_follows_torch():
    np.testing.assert_array_equal((ds.tensor(3) ** ds.tensor([-2, 3])).numpy(), [0, 27])
    np.testing.assert_array_equal((ds.tensor([2, 1]) ** ds.tensor(-1)).numpy(), [0, 1])
    np.testing.assert_array_equal((ds.tensor([True, False]) ** ds.tensor([-1, -1])).numpy(), [1, 0])
    assert (ds.tensor([True, False]) ** True).dtype == ds.bool
    with pytest.raises(TypeError, match="not implemented for 'Bool'"):
        ds.tensor([True]) ** ds.tensor([True])


def _remainder_inputs():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-9, 9, 12), [1.5, -2.0, -4.0, 4.0, 0.0, -0.0, 7.0, 1e10]])
    b = np.concatenate([rng.uniform(-3, 3, 12), [0.0, 0.0, 2.0, -2.0, 3.0, -3.0, -0.0, 3.3]])
    return a, b


@pytest.mark.parametrize("name", ["remainder", "fmod"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_remainder_and_fmod_match_torch_values_and_gradients(name, dtype):
    a, b = _remainder_inputs()
    a, b = a.astype(dtype), b.astype(dtype)
    x, y = ds.tensor(a, dtype=dtype, requires_grad=True), ds.tensor(b, dtype=dtype, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, ref = getattr(ds, name)(x, y), getattr(torch, name)(tx, ty)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    number = ~np.isnan(ref.detach().numpy())  # the sign of zeros too (a NaN's sign bit means nothing)
    np.testing.assert_array_equal(np.signbit(out.detach().numpy()[number]), np.signbit(ref.detach().numpy()[number]))
    g = np.linspace(-1, 1, a.size).astype(dtype)
    gx, gy = ds.autograd.grad(out, (x, y), ds.tensor(g, dtype=dtype))
    tgx, tgy = torch.autograd.grad(ref, (tx, ty), torch.tensor(g))
    np.testing.assert_array_equal(gx.numpy(), tgx.numpy())  # 1 everywhere, also where b == 0
    np.testing.assert_allclose(gy.numpy(), tgy.numpy(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    # torch says Backward1 for two tensors (its Tensor overload), Backward0 for a number
    assert out.grad_fn.name()[:-1] == ref.grad_fn.name()[:-1]


@pytest.mark.parametrize("name", ["remainder", "fmod"])
def test_remainder_and_fmod_double_backward_match_torch(name):
    a, b = _remainder_inputs()
    x, y = ds.tensor(a, dtype=ds.float64, requires_grad=True), ds.tensor(b, dtype=ds.float64, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    gx, gy = ds.autograd.grad((getattr(ds, name)(x, y) ** 2).sum(), (x, y), create_graph=True)
    tgx, tgy = torch.autograd.grad((getattr(torch, name)(tx, ty) ** 2).sum(), (tx, ty), create_graph=True)
    np.testing.assert_allclose(gy.detach().numpy(), tgy.detach().numpy(), rtol=1e-12)
    hx = ds.autograd.grad((gx + gy).sum(), (x, y))
    thx = torch.autograd.grad((tgx + tgy).sum(), (tx, ty))
    for ours, theirs in zip(hx, thx):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_gradient_of_x_remainder_a_zero_number_is_one_as_in_torch():
    x = ds.tensor([1.5, -2.0], requires_grad=True)
    (gx,) = ds.autograd.grad((x % 0).sum(), (x,))
    np.testing.assert_array_equal(gx.numpy(), [1.0, 1.0])
    (gx,) = ds.autograd.grad(ds.fmod(x, 0).sum(), (x,))
    np.testing.assert_array_equal(gx.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("create_graph", [False, True])
def test_gradient_of_zero_to_the_x_matches_torch_at_negative_x(create_graph):
    e = np.array([-1.0, -2.5, 0.0, 2.0, 0.5])
    base = np.array([0.0, 0.0, 0.0, 0.0, 2.0])
    x, b = ds.tensor(e, dtype=ds.float64, requires_grad=True), ds.tensor(base, dtype=ds.float64, requires_grad=True)
    tx, tb = torch.tensor(e, requires_grad=True), torch.tensor(base, requires_grad=True)
    ours = ds.autograd.grad((0**x).sum(), (x,), create_graph=create_graph)[0]
    theirs = torch.autograd.grad((0**tx).sum(), (tx,))[0]
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.numpy())  # -inf at x < 0, 0 at x >= 0
    ours = ds.autograd.grad((b**x).sum(), (x,), create_graph=create_graph)[0]
    theirs = torch.autograd.grad((tb**tx).sum(), (tx,))[0]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "op",
    [
        lambda L, a, b: a // b,
        lambda L, a, b: a % b,
        lambda L, a, b: L.fmod(a, b),
        lambda L, a, b: L.div(a, b, rounding_mode="floor"),
        lambda L, a, b: L.div(a, b, rounding_mode="trunc"),
        lambda L, a, b: a << b,
        lambda L, a, b: a >> b,
        lambda L, a, b: L.bitwise_left_shift(a, b),
    ],
)
@pytest.mark.parametrize("other", ["tensor", "number"])
def test_integer_only_ops_refuse_two_booleans_as_torch_does(op, other):
    def operands(L):
        return L.tensor([True, False]), (L.tensor([True, True]) if other == "tensor" else True)

    with pytest.raises((RuntimeError, TypeError)):  # torch: NotImplementedError ... for 'Bool'
        op(torch, *operands(torch))
    with pytest.raises(TypeError, match="not implemented for 'Bool'"):
        op(ds, *operands(ds))


@pytest.mark.parametrize(
    "op",
    [
        lambda L: L.tensor([1.5, 2.0]) - True,
        lambda L: True - L.tensor([1.5, 2.0]),
        lambda L: L.tensor([3, -4]) - True,
        lambda L: L.tensor([1.5, 2.0]).sub(True),
        lambda L: L.sub(L.tensor([1.5, 2.0]), True),
        lambda L: L.tensor([1.5, 2.0]) - L.tensor(True),
        lambda L: L.tensor([True]) - 2.5,
        lambda L: L.tensor([1.5, 2.0]).sub_(True),
        lambda L: L.tensor([1.5, 2.0]).sub_(L.tensor([True, False])),
    ],
)
def test_subtraction_with_a_boolean_is_refused_as_in_torch(op):
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with a bool tensor"):
        op(torch)
    with pytest.raises(TypeError, match="Subtraction, the `-` operator, with a bool tensor"):
        op(ds)
    with pytest.raises(TypeError, match="with two bool tensors is not supported"):
        ds.tensor([True]) - ds.tensor([False])
