"""Argument forms a differential fuzzer against torch found handled otherwise: a dim named twice,
dtype as softmax's third positional argument, std/var's (input, unbiased) overload, 0-d tensors as
hyperparameters, 0-d inputs to split, empty medians and legacy empty cats, block_diag's and ldexp's
dtypes, one-element p-norms with a large p and in-place scans asked for another dtype. Each case is
compared with torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as dF

torch = pytest.importorskip("torch")
tF = pytest.importorskip("torch.nn.functional")


def _a(L):
    return L.from_numpy(np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize(
    "op",
    ["sum", "mean", "std", "var", "amax", "amin", "logsumexp", "nansum", "var_mean", "count_nonzero", "all", "any"],
)
@pytest.mark.parametrize("dims", [(0, -2), (1, 1), (-1, 1, 0)])
def test_a_dim_named_twice_is_refused_as_in_torch(op, dims):
    with pytest.raises(RuntimeError, match="appears multiple times"):
        getattr(torch, op)(_a(torch), dim=dims)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        getattr(ds, op)(_a(ds), dim=dims)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.norm(_a(L), 2, dim=(1, -1)),
        lambda L: _a(L).flip((0, 0)),
        lambda L: L.zeros(1, 3).squeeze((0, -2)),
        lambda L: L.zeros(()).sum((0, -1)),
    ],
    ids=["norm", "flip", "squeeze", "0-d"],
)
def test_a_dim_named_twice_is_refused_by_other_ops_too(call):
    with pytest.raises(RuntimeError, match="appears multiple times"):
        call(torch)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        call(ds)


def test_distinct_dims_still_reduce():
    assert ds.sum(_a(ds), dim=(0, -1)).item() == 15.0
    assert ds.amax(_a(ds), dim=(-1, 0)).item() == 5.0


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_takes_dtype_as_its_third_positional_argument(name, dtype):
    expected = getattr(torch, name)(torch.tensor([[1, 2, 3]]).float(), -1, getattr(torch, dtype))
    got = getattr(ds, name)(ds.tensor([[1, 2, 3]]).float(), -1, getattr(ds, dtype))
    assert str(got.dtype) == dtype
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda L, x: L.std(x, False),
        lambda L, x: L.std(x, True),
        lambda L, x: x.std(False),
        lambda L, x: x.var(False),
        lambda L, x: L.var(x, True),
        lambda L, x: L.var(x, unbiased=False),
        lambda L, x: x.std(1, False),
    ],
)
def test_std_and_var_take_torchs_input_unbiased_overload(call):
    data = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]], dtype=np.float64)
    expected = call(torch, torch.from_numpy(data.copy()))
    got = call(ds, ds.from_numpy(data.copy()))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)


def test_rsub_takes_alpha_positionally():
    x = [[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]]
    assert ds.rsub(ds.tensor(x), 1.0, 2).tolist() == torch.rsub(torch.tensor(x), 1.0, 2).tolist()


@pytest.mark.parametrize(
    "call",
    [
        lambda L, F, x, t: x.norm(p=t),
        lambda L, F, x, t: L.dist(x, x * 0, t),
        lambda L, F, x, t: F.normalize(x, p=t).sum(),
        lambda L, F, x, t: x.hardshrink(t / 4).sum(),
        lambda L, F, x, t: F.softshrink(x, t / 4).sum(),
        lambda L, F, x, t: F.dropout(x, t / 4, training=False).sum(),
        lambda L, F, x, t: L.linalg.vector_norm(x, ord=t),
    ],
    ids=["norm", "dist", "normalize", "hardshrink", "softshrink", "dropout", "vector_norm"],
)
def test_a_zero_d_float_tensor_is_taken_as_a_hyperparameter(call):
    expected = call(torch, tF, torch.arange(6.0).reshape(2, 3) / 5, torch.tensor(2.0)).item()
    got = call(ds, dF, ds.arange(6.0).reshape(2, 3) / 5, ds.tensor(2.0)).item()
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda L: L.tensor(5.0).split(1), "split expects at least a 1-dimensional tensor"),
        (lambda L: L.tensor(5.0).chunk(1), "chunk expects at least a 1-dimensional tensor"),
        (lambda L: L.tensor(5.0).hsplit(1), "hsplit requires a tensor with at least 1 dimension"),
        (lambda L: L.tensor(5.0).tensor_split(1), "tensor_split expected at least a 1-dimensional tensor"),
        (lambda L: L.tensor(5.0).narrow(0, 0, 1), r"narrow\(\) cannot be applied to a 0-dim tensor"),
    ],
    ids=["split", "chunk", "hsplit", "tensor_split", "narrow"],
)
def test_splitting_a_zero_d_tensor_is_refused_with_torchs_class_and_words(call, message):
    with pytest.raises(RuntimeError, match=message):
        call(torch)
    with pytest.raises(RuntimeError, match=message):
        call(ds)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "bool"])
@pytest.mark.parametrize("shape", [(0,), (2, 0)])
def test_median_of_an_empty_integer_tensor_is_torchs_fill(dtype, shape):
    expected = torch.zeros(shape, dtype=getattr(torch, dtype)).median()
    got = ds.zeros(shape, dtype=getattr(ds, dtype)).median()
    assert (str(got.dtype), got.item()) == (dtype, expected.item())


def test_median_of_an_empty_float_tensor_is_still_nan():
    assert np.isnan(ds.tensor([]).median().item())


@pytest.mark.parametrize("dim", [0, 1, 5, -3])
def test_cat_of_only_1d_empty_tensors_skips_them_whatever_the_dim(dim):
    expected = torch.cat([torch.zeros(0), torch.zeros(0)], dim=dim)
    got = ds.cat([ds.zeros(0), ds.zeros(0)], dim=dim)
    assert tuple(got.shape) == tuple(expected.shape) == (0,)
    assert tuple(ds.cat([ds.zeros(0)], dim=1).shape) == (0,)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("float32", "float64"),
        ("int64", "float64"),
        ("int64", "int32"),
        ("float16", "float64"),
        ("float32", "complex128"),
        ("bool", "int32"),
    ],
)
def test_block_diag_with_a_zero_d_block_promotes_as_torch(a, b):
    expected = torch.block_diag(torch.ones(2, dtype=getattr(torch, a)), torch.tensor(2, dtype=getattr(torch, b)))
    got = ds.block_diag(ds.ones(2, dtype=getattr(ds, a)), ds.tensor(2, dtype=getattr(ds, b)))
    assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_ldexp_of_an_integer_tensor_with_a_float64_exponent_keeps_float64_precision():
    got = ds.ldexp(ds.tensor([3, -5]), ds.tensor(0.7, dtype=ds.float64))
    exact = np.array([3.0, -5.0]) * 2.0**0.7
    assert str(got.dtype) == "float64"
    np.testing.assert_allclose(got.numpy(), exact, rtol=1e-15)
    expected = torch.ldexp(torch.tensor([3, -5]), torch.tensor(0.7, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-15)


@pytest.mark.parametrize("p", [3.0, 400.0, 1000.0, 9e99, -7.0, -500.0])
@pytest.mark.parametrize("value", [0.4, 9.0, -2.5])
def test_the_p_norm_of_one_element_is_its_magnitude_for_any_p(p, value):
    assert ds.tensor([value]).norm(p=p).item() == pytest.approx(abs(value), rel=1e-6)
    assert ds.linalg.vector_norm(ds.tensor([[value], [value]]), ord=p, dim=1).tolist() == pytest.approx(
        [abs(value)] * 2, rel=1e-6
    )
    assert ds.dist(ds.tensor([value]), ds.tensor([0.0]), p=p).item() == pytest.approx(abs(value), rel=1e-6)
    assert torch.tensor([value]).norm(p=p).item() == pytest.approx(abs(value), rel=1e-6)


def test_the_one_element_p_norm_gradient_is_the_sign_for_a_moderate_p():
    x = ds.tensor([-2.5], dtype=ds.float64, requires_grad=True)
    x.norm(p=3.0).backward()
    assert x.grad.tolist() == pytest.approx([-1.0])


@pytest.mark.parametrize("name", ["cumsum_", "cumprod_"])
def test_an_in_place_scan_into_another_dtype_is_refused_as_in_torch(name):
    data = np.array([0.6, 1.7, -2.2])
    with pytest.raises(RuntimeError, match="Bad in-place call"):
        getattr(torch.from_numpy(data.copy()), name)(0, dtype=torch.int32)
    x = ds.from_numpy(data.copy())
    with pytest.raises(RuntimeError, match="Bad in-place call"):
        getattr(x, name)(0, dtype=ds.int32)
    assert x.tolist() == data.tolist()  # nothing written
    same = getattr(ds.from_numpy(data.copy()), name)(0, dtype=ds.float64)
    expected = getattr(torch.from_numpy(data.copy()), name)(0, dtype=torch.float64)
    np.testing.assert_allclose(same.numpy(), expected.numpy(), rtol=1e-15)
