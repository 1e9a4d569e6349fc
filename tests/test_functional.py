"""Composite ops (var, std, gelu, elu) against PyTorch: their argument conventions, and gradients
(first and second order) that come from the basic ops they are built from."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
F = torch.nn.functional

X = np.random.default_rng(0).uniform(-2, 2, size=(3, 4, 5))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda t: ds.var(t), lambda t: torch.var(t)),  # correction=1 by default, like torch
        (lambda t: ds.var(t, 1), lambda t: torch.var(t, 1)),
        (lambda t: ds.var(t, (0, 2), keepdim=True), lambda t: torch.var(t, (0, 2), keepdim=True)),
        # positional order is torch's (dim, unbiased, keepdim): a bool second argument is `unbiased`
        (lambda t: t.var(1, False), lambda t: t.var(1, False)),
        (lambda t: ds.var(t, 0, True, True), lambda t: torch.var(t, 0, True, True)),
        (lambda t: t.std(2, False, True), lambda t: t.std(2, False, True)),
        (lambda t: ds.std(t, (0, 1), False), lambda t: torch.std(t, (0, 1), False)),
        (lambda t: ds.var(t, axis=-1, keepdims=True, ddof=0), lambda t: torch.var(t, -1, keepdim=True, correction=0)),
        (lambda t: ds.var(t, 0, unbiased=False), lambda t: torch.var(t, 0, unbiased=False)),
        (lambda t: ds.var(t, 2, correction=2), lambda t: torch.var(t, 2, correction=2)),
        (lambda t: t.var(1, keepdim=True), lambda t: t.var(1, keepdim=True)),
        (lambda t: ds.std(t), lambda t: torch.std(t)),
        (lambda t: ds.std(t, (1, 2)), lambda t: torch.std(t, (1, 2))),
        (lambda t: t.std(0, keepdim=True, correction=0), lambda t: t.std(0, keepdim=True, correction=0)),
        (lambda t: ds.std(t, axis=1, ddof=1), lambda t: torch.std(t, 1)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_var_std_conventions(check_op, ours, theirs, dtype):
    check_op(ours, theirs, [X.astype(dtype)])


def test_var_matches_numpy_with_ddof():
    np.testing.assert_allclose(ds.var(ds.tensor(X, dtype="float64"), axis=1, ddof=0).numpy(), X.var(axis=1))
    np.testing.assert_allclose(
        ds.std(ds.tensor(X, dtype="float64"), axis=(0, 1), ddof=1).numpy(), X.std(axis=(0, 1), ddof=1)
    )


def test_var_of_one_element_with_correction_is_nan_like_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(ds.var(ds.tensor([1.0])).item()) and np.isnan(torch.var(torch.tensor([1.0])).item())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_std_of_constant_slices_has_zero_gradient_like_torch(check_op, assert_close, dtype):
    """sqrt'(0) is infinite: differentiating sqrt(var) naively gives 0 * inf = NaN; torch gives 0."""
    x = np.array([[1.5, 1.5, 1.5, 1.5], [1.0, 2.0, -1.0, 0.5], [-3.0, -3.0, -3.0, -3.0]], dtype=dtype)
    check_op(lambda t: t.std(1), lambda t: t.std(1), [x])
    check_op(lambda t: ds.std(t, axis=1, keepdims=True, ddof=0), lambda t: t.std(1, keepdim=True, correction=0), [x])
    check_op(lambda t: t[0].std(), lambda t: t[0].std(), [x])
    # second derivative (a gradient penalty) stays finite and matches too
    ours = ds.tensor(x, dtype=dtype, requires_grad=True)
    (g,) = ds.autograd.grad(ours.std(1).sum(), [ours], create_graph=True)
    (g * g).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(theirs.std(1).sum(), [theirs], create_graph=True)
    (tg * tg).sum().backward()
    assert_close(ours.grad.numpy(), theirs.grad.numpy(), dtype, "second derivative")


def test_std_keeps_nan_for_nan_input_like_torch():
    data = [[1.0, float("nan")], [2.0, 2.0]]
    x, t = ds.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, ref = x.std(1), t.std(1)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())  # equal_nan: [nan, 0]
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_var_refuses_two_corrections():
    with pytest.raises(TypeError, match="only one"):
        ds.var(ds.tensor([1.0, 2.0]), ddof=0, correction=1)
    with pytest.raises(TypeError, match="only one"):
        ds.std(ds.tensor([1.0, 2.0]), unbiased=True, ddof=1)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (ds.gelu, F.gelu),
        (lambda t: ds.gelu(t, approximate="tanh"), lambda t: F.gelu(t, approximate="tanh")),
        (ds.elu, F.elu),
        (lambda t: ds.elu(t, alpha=1.7), lambda t: F.elu(t, alpha=1.7)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_elu(check_op, ours, theirs, dtype):
    x = np.where(np.abs(X) < 0.05, 0.3, X)  # elu's second derivative jumps at 0
    check_op(ours, theirs, [x.astype(dtype)])


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_gradient_at_zero_matches_torch(check_op, alpha):
    check_op(lambda t: ds.elu(t, alpha), lambda t: F.elu(t, alpha), [np.array([0.0, -0.0, 1.0, -1.0])])


def test_gelu_refuses_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        ds.gelu(ds.tensor([1.0]), approximate="fast")


@pytest.mark.parametrize("name", ["var", "std", "gelu", "gelu_tanh", "elu"])
def test_composites_second_derivative_matches_torch(assert_close, name):
    fns = {
        "var": (lambda t: ds.var(t, 1), lambda t: torch.var(t, 1)),
        "std": (lambda t: ds.std(t, 0), lambda t: torch.std(t, 0)),
        "gelu": (ds.gelu, F.gelu),
        "gelu_tanh": (lambda t: ds.gelu(t, approximate="tanh"), lambda t: F.gelu(t, approximate="tanh")),
        "elu": (ds.elu, F.elu),
    }
    ours_fn, theirs_fn = fns[name]
    x = np.where(np.abs(X[0]) < 0.05, 0.3, X[0])
    ours, theirs = ds.tensor(x, dtype="float64", requires_grad=True), torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad(ours_fn(ours).sum(), [ours], create_graph=True)
    (gt,) = torch.autograd.grad(theirs_fn(theirs).sum(), [theirs], create_graph=True)
    (g * g).sum().backward()
    (gt * gt).sum().backward()
    assert_close(ours.grad.numpy(), theirs.grad.numpy(), np.float64, "second derivative")


@pytest.mark.parametrize("name", ["var", "std", "gelu", "gelu_tanh", "elu"])
def test_composites_gradcheck(name):
    fns = {
        "var": lambda t: ds.var(t, 1, keepdim=True),
        "std": lambda t: ds.std(t, axis=0, ddof=0),
        "gelu": ds.gelu,
        "gelu_tanh": lambda t: ds.gelu(t, approximate="tanh"),
        "elu": lambda t: ds.elu(t, alpha=0.5),
    }
    x = np.where(np.abs(X[0]) < 0.05, 0.3, X[0])
    assert ds.gradcheck(fns[name], [ds.tensor(x, dtype="float64")]).passed


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, float("inf")])
def test_cdist_matches_torch_with_gradients_and_a_zero_distance(check_op, p):
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    x2 = rng.standard_normal((2, 5, 3)).astype(np.float32)
    x2[0, 1] = x1[0, 2]  # one pair at distance 0: its gradient is 0, not NaN
    check_op(lambda a, b: ds.cdist(a, b, p=p), lambda a, b: torch.cdist(a, b, p=p), [x1, x2], grad=p != 0.0)
    with pytest.raises(ds.ShapeError, match="same M"):
        ds.cdist(ds.ones(2, 3), ds.ones(2, 4))


@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3, float("inf"), -float("inf")])
def test_norm_and_cdist_match_torch_at_zero_rows_and_zero_elements(p):
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.0], [0.5, 0.5, -3.0]])
    ours, theirs = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    ds.norm(ours, p, dim=1).sum().backward()
    torch.norm(theirs, p, dim=1).sum().backward()
    assert (ours.grad is None) == (theirs.grad is None)  # p = 0: a count, no gradient, in both
    if theirs.grad is not None:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    if p < 0:
        return  # cdist takes p >= 0 only, in both
    ours, theirs = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    np.testing.assert_allclose(
        ds.cdist(ours, ours, p).detach().numpy(), torch.cdist(theirs, theirs, p).detach().numpy()
    )
    (ds.cdist(ours, ours, p) * ds.tensor(x[:, :1] + 2.0)).sum().backward()
    (torch.cdist(theirs, theirs, p) * torch.tensor(x[:, :1] + 2.0)).sum().backward()
    got = np.zeros_like(x) if ours.grad is None else ours.grad.numpy()  # p = 0: None here, zeros in torch
    np.testing.assert_allclose(got, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["var", "std", "var_mean", "std_mean"])
def test_float32_var_down_a_long_strided_axis_is_as_accurate_as_torchs(name: str) -> None:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((1_000_000, 4)) * 3 + 1000).astype(np.float32)
    ref = a.astype(np.float64).var(0, ddof=1)
    ref = ref if name.startswith("var") else np.sqrt(ref)

    def rel_err(lib):
        out = getattr(lib, name)(lib.tensor(a), 0)
        out = out[0] if isinstance(out, tuple) else out
        assert out.dtype == lib.float32
        return np.abs(out.numpy().astype(np.float64) - ref).max() / np.abs(ref).max()

    assert rel_err(ds) <= 1.5 * rel_err(torch) + 1e-9


def test_var_and_std_in_float64_keep_float32_gradients_equal_to_torchs() -> None:
    x = np.random.default_rng(1).standard_normal((5000, 3)).astype(np.float32)
    for name in ("var", "std"):
        ours, theirs = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (getattr(ours, name)(0) * ds.tensor([1.0, 2.0, 3.0])).sum().backward()
        (getattr(theirs, name)(0) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        assert ours.grad.dtype == np.float32
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(("dim", "keepdim"), [(None, False), ((0, 1), True), ((1, 0), False)])
def test_norm_nuc_matches_torch_values_and_gradients(dim, keepdim):
    a = np.random.default_rng(3).standard_normal((3, 4))
    ours, theirs = ds.tensor(a, dtype=ds.float64, requires_grad=True), torch.tensor(a, requires_grad=True)
    o = ds.norm(ours, p="nuc", dim=dim, keepdim=keepdim)
    t = torch.norm(theirs, p="nuc", dim=dim, keepdim=keepdim)
    o.sum().backward()
    t.sum().backward()
    assert tuple(o.shape) == tuple(t.shape)
    np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.norm("nuc").item(), theirs.norm("nuc").item(), rtol=1e-12)


def test_norm_nuc_over_two_dims_of_a_batch_and_refusals():
    a = np.random.default_rng(4).standard_normal((2, 3, 4))
    o = ds.norm(ds.tensor(a, dtype=ds.float64), p="nuc", dim=(0, 2))
    np.testing.assert_allclose(o.numpy(), torch.norm(torch.tensor(a), p="nuc", dim=(0, 2)).numpy(), rtol=1e-12)
    with pytest.raises(ds.errors.ArgumentError, match="2-d tensor or dim of two dims"):
        ds.norm(ds.tensor(a), p="nuc")


@pytest.mark.host_only  # the float64 redo reads the result on the host
def test_std_of_values_whose_squares_overflow_float32_is_finite_as_torch():
    a = np.array([[3e25, -3e25, 1e25], [1.0, 2.0, np.inf]], dtype=np.float32)
    ours, theirs = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    o, t = ours.std(1), theirs.std(1)
    o.sum().backward()
    t.sum().backward()
    assert o.dtype == ds.float32
    np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-6)  # [3.06e25, nan]
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5)
    assert np.isinf(ds.tensor(a[0]).var().item()) and np.isinf(theirs[0].var().item())


def test_cdist_refuses_operands_of_different_dtypes_as_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="expected scalar type"):
        torch.cdist(torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3))
    with pytest.raises(ds.errors.DTypeError, match="cdist: expected x1 and x2 to have the same dtype"):
        ds.cdist(ds.ones(2, 3, dtype=ds.float64), ds.ones(2, 3))
