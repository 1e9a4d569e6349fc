"""bincount's dtype and gradient rule, cdist's gradient at p=0 and p=inf, gather's sparse_grad keyword,
and one-line errors from repeat_interleave and unique, each against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

WEIGHT_DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
def test_bincount_result_dtype_follows_torch_for_each_weights_dtype(dtype: str) -> None:
    values, weights = np.array([0, 1, 1, 3]), np.array([1, 0, 1, 1]).astype(dtype)
    got = ds.bincount(ds.tensor(values), weights=ds.from_numpy(weights), minlength=6)
    ref = torch.bincount(torch.tensor(values), weights=torch.from_numpy(weights), minlength=6)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_bincount_counts_and_empty_input_are_int64_as_in_torch() -> None:
    assert ds.bincount(ds.tensor([0, 2, 2])).tolist() == [1, 0, 2]
    assert ds.bincount(ds.tensor([0, 2, 2], dtype=ds.int32)).dtype == ds.int64
    empty = ds.bincount(ds.tensor([], dtype=ds.int64), weights=ds.tensor([]), minlength=3)
    ref = torch.bincount(torch.tensor([], dtype=torch.int64), weights=torch.tensor([]), minlength=3)
    assert empty.dtype == ds.int64 and str(ref.dtype) == "torch.int64"
    assert empty.tolist() == ref.tolist()


def test_bincount_method_and_function_agree() -> None:
    x, w = ds.tensor([1, 1, 4]), ds.tensor([0.25, 0.5, 2.0])
    np.testing.assert_array_equal(x.bincount(w, 2).numpy(), ds.bincount(x, w, 2).numpy())
    assert x.bincount(w).dtype == ds.float32


def test_bincount_weights_requiring_grad_raise_at_backward_as_torch() -> None:
    w = ds.tensor([0.5, 1.0, 2.0], requires_grad=True)
    out = ds.bincount(ds.tensor([0, 1, 1]), weights=w)
    assert out.requires_grad  # as torch's
    with pytest.raises(RuntimeError, match="derivative .*bincount is not implemented"):
        out.sum().backward()
    with ds.no_grad():
        assert not ds.bincount(ds.tensor([0, 1, 1]), weights=w).requires_grad
    assert ds.bincount(ds.tensor([0, 1, 1]), weights=w.detach()).tolist() == [0.5, 3.0]


@pytest.mark.host_only
def test_bincount_refuses_negative_values() -> None:
    with pytest.raises(ValueError, match="expected non-negative integers, got the value -1"):
        ds.bincount(ds.tensor([0, -1]))


def test_bincount_refuses_bad_arguments_in_one_line() -> None:
    with pytest.raises(
        ValueError, match=r"weights should be 1-D and have the same length as input \(2\), got shape \(3,\)"
    ):
        ds.bincount(ds.tensor([0, 1]), weights=ds.ones(3))
    with pytest.raises(ValueError, match="minlength should be an integer >= 0, got -1"):
        ds.bincount(ds.tensor([0, 1]), minlength=-1)
    with pytest.raises(TypeError, match="1-D tensor of non-negative integers, got float32"):
        ds.bincount(ds.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="got bool"):
        ds.bincount(ds.tensor([True, False]))


# ---------------------------------------------------------------------- cdist
A = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, -1.0], [0.5, 2.0], [0.2, 0.3]])
B = np.array([[0.5, 2.0], [1.0, 0.0], [0.7, 0.8]])  # A[3] = B[0]: a zero distance; A[4]-B[2]: a tie for inf


def _cdist(lib: Any, p: float) -> list[Any]:
    a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(B, dtype=lib.float64, requires_grad=True)
    d = lib.cdist(a, b, p=p)
    assert d.requires_grad
    (d * lib.arange(15, dtype=lib.float64).reshape(5, 3)).sum().backward()
    return [d.detach().numpy(), None if a.grad is None else a.grad.numpy(), None if b.grad is None else b.grad.numpy()]


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, float("inf")])
def test_cdist_values_and_gradients_match_torch(p: float) -> None:
    for what, got, ref in zip(("value", "x1 grad", "x2 grad"), _cdist(ds, p), _cdist(torch, p)):
        assert got is not None and ref is not None, what
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=what)


def test_cdist_p0_gradient_is_zeros_not_missing() -> None:
    a = ds.tensor(A, requires_grad=True)
    (g,) = ds.autograd.grad(ds.cdist(a, ds.tensor(B), p=0).sum(), (a,))
    assert g is not None and not g.numpy().any()


def test_cdist_inf_gives_each_tied_element_the_whole_gradient() -> None:
    a = ds.tensor([[0.0, 0.0]], requires_grad=True)
    ds.cdist(a, ds.tensor([[0.5, 0.5]]), p=float("inf")).sum().backward()
    assert a.grad.tolist() == [[-1.0, -1.0]]  # torch's; norm(p=inf) shares it: [[-0.5, -0.5]]


@pytest.mark.parametrize("p", [0.0, float("inf")])
def test_cdist_p0_and_inf_double_backward_matches_finite_differences(p: float) -> None:
    # torch has no second derivative of cdist; away from ties the first derivative is smooth
    rng = np.random.default_rng(7)
    a0, b0 = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))

    def first(b: np.ndarray, create_graph: bool = False) -> Any:
        a = ds.tensor(a0, dtype=ds.float64, requires_grad=True)
        bt = ds.tensor(b, dtype=ds.float64, requires_grad=True)
        (ga,) = ds.autograd.grad((ds.cdist(a, bt, p=p) ** 2).sum(), (a,), create_graph=create_graph)
        return (ga * ds.tensor(a0, dtype=ds.float64)).sum(), bt

    total, bt = first(b0, create_graph=True)
    (gb,) = ds.autograd.grad(total, (bt,), allow_unused=True)
    got = np.zeros(b0.shape) if gb is None else gb.numpy()
    expected = np.zeros(b0.shape)
    for i in np.ndindex(b0.shape):
        step = np.zeros(b0.shape)
        step[i] = 1e-6
        expected[i] = (first(b0 + step)[0].item() - first(b0 - step)[0].item()) / 2e-6
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- gather(sparse_grad=...)
@pytest.mark.parametrize("sparse_grad", [False, True])
def test_gather_accepts_sparse_grad_with_a_dense_gradient(sparse_grad: bool) -> None:
    base = np.array([[5.0, 1.0], [2.0, 2.0], [3.0, 0.0], [4.0, 4.0]])
    index = np.array([[0, 0], [0, 3], [0, 0]])
    grads = []
    for lib in (ds, torch):
        x = lib.tensor(base, dtype=lib.float64, requires_grad=True)
        out = x.gather(0, lib.tensor(index), sparse_grad=sparse_grad)
        (out * lib.arange(6, dtype=lib.float64).reshape(3, 2)).sum().backward()
        g = x.grad.to_dense() if lib is torch and x.grad.is_sparse else x.grad
        grads.append((out.detach().numpy(), g.numpy()))
    for a, r in zip(*grads):
        np.testing.assert_array_equal(a, r)
    got = ds.gather(ds.tensor(base), 1, ds.tensor([[1], [0], [1], [0]]), sparse_grad=sparse_grad)
    assert got.tolist() == [[1.0], [2.0], [0.0], [4.0]]


def test_gather_refuses_a_sparse_grad_that_is_not_a_bool() -> None:
    with pytest.raises(TypeError, match="sparse_grad must be a bool"):
        ds.tensor([1.0, 2.0]).gather(0, ds.tensor([1]), sparse_grad="yes")


# ---------------------------------------------------------------------- repeat_interleave, unique
def test_repeat_interleave_errors_name_what_was_given() -> None:
    x = ds.tensor([1, 2])
    with pytest.raises(RuntimeError, match="repeats can not be negative, got -1"):
        ds.repeat_interleave(x, ds.tensor([-1, 2]))
    with pytest.raises(RuntimeError, match="repeats can not be negative, got -3"):
        ds.repeat_interleave(x, -3)
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        ds.repeat_interleave(ds.tensor([-1, 2]))
    with pytest.raises(
        RuntimeError,
        match=r"repeats must have the same size as input along dim, but got repeats.size\(0\) = 3 and input.size\(0\) = 2",
    ):
        ds.repeat_interleave(x, ds.tensor([1, 2, 3]))
    with pytest.raises(RuntimeError, match=r"repeats.size\(0\) = 3 and input.size\(1\) = 2"):
        ds.tensor([[1, 2], [3, 4]]).repeat_interleave(ds.tensor([1, 2, 3]), dim=1)
    with pytest.raises(ValueError, match=r"0-d or 1-d tensor, got shape \(1, 2\)"):
        ds.repeat_interleave(x, ds.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="repeats must be integers, got float32"):
        ds.repeat_interleave(x, ds.tensor([1.0, 2.0]))


def test_repeat_interleave_still_matches_torch() -> None:
    for args, kw in [
        (([1, 2], [1, 3]), {}),
        (([[1, 2], [3, 4]], [2]), {"dim": 0}),
        (([[1, 2], [3, 4]], 2), {"dim": 1}),
    ]:
        data, reps = args
        r_ds = ds.tensor(reps) if isinstance(reps, list) else reps
        r_t = torch.tensor(reps) if isinstance(reps, list) else reps
        got = ds.repeat_interleave(ds.tensor(data), r_ds, **kw)
        assert got.tolist() == torch.repeat_interleave(torch.tensor(data), r_t, **kw).tolist()


def test_unique_dim_out_of_range_is_a_one_line_index_error() -> None:
    with pytest.raises(IndexError, match="unique: dimension 1 is out of range for a tensor with 1 dimension"):
        ds.unique(ds.tensor([1, 2]), dim=1)
    with pytest.raises(IndexError, match="unique: dimension -2 is out of range"):
        ds.tensor([1, 2]).unique(dim=-2)
    with pytest.raises(IndexError, match="no dimensions"):
        ds.unique(ds.tensor(2), dim=0)
    with pytest.raises(TypeError, match="dim must be an int"):
        ds.unique(ds.tensor([[1, 2]]), dim=1.5)


def test_unique_with_dim_still_matches_torch() -> None:
    data = [[1, 0, 1], [2, 5, 2]]
    got = ds.unique(ds.tensor(data), dim=-1, return_inverse=True, return_counts=True)
    ref = torch.unique(torch.tensor(data), dim=-1, return_inverse=True, return_counts=True)
    for a, b in zip(got, ref):
        assert a.tolist() == b.tolist()
