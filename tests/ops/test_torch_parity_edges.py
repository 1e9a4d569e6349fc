"""Edge cases against PyTorch: 0-d transposes, bool diff/sign/pow, empty reductions (logsumexp,
amax/amin and max/min along a dim when another dim is empty, prod), repeat_interleave of counts
alone, unflatten with -1 beside an empty dim, torch's promotion in bitwise ops and in the floating
binary ops (atan2, hypot, copysign, logaddexp, xlogy), and softmax of a row of -inf without warnings."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

INF = float("inf")


def _same(f: Any) -> None:
    """``f(lib)`` gives the same dtype, shape and values under downslope and torch."""
    ours, theirs = f(ds), f(torch)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(
        np.asarray(ours.tolist(), dtype=np.float64), np.asarray(theirs.tolist(), dtype=np.float64), rtol=1e-3
    )


def _both_raise(f: Any) -> None:
    for lib in (ds, torch):
        with pytest.raises((RuntimeError, ValueError, IndexError, TypeError)):
            f(lib)


# ---------------------------------------------------------------------- 0-d and 1-d transposes
@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.tensor(1.5).transpose(0, -1),
        lambda m: m.tensor(1.5).transpose(-1, -1),
        lambda m: m.tensor(1.5).swapaxes(0, -1),
        lambda m: m.tensor(1.5).swapdims(0, 0),
        lambda m: m.transpose(m.tensor(1.5), 0, -1),
        lambda m: m.swapaxes(m.tensor(1.5), 0, -1),
        lambda m: m.tensor(1.5).movedim(0, -1),
    ],
)
def test_zero_d_transpose_returns_the_tensor(f: Any) -> None:
    _same(f)


def test_zero_d_transpose_keeps_the_gradient() -> None:
    x = ds.tensor(2.0, requires_grad=True)
    (x.transpose(0, -1) * 3).backward()
    assert x.grad.item() == 3.0


@pytest.mark.parametrize("name", ["mT", "mH", "adjoint", "H"])
def test_matrix_transposes_on_0d_warn_and_on_1d_raise_like_torch(name: str) -> None:
    def get(t: Any) -> Any:
        v = getattr(t, name)
        return v() if callable(v) else v

    for lib in (ds, torch):
        with pytest.warns(UserWarning, match="deprecated on 0-D"):
            out = get(lib.tensor(1.5))
        assert out.shape == () and out.item() == 1.5
        with pytest.raises(RuntimeError, match="only supported on matrices"):
            get(lib.tensor([1.0, 2.0]))
    _same(lambda m: get(m.arange(6.0).reshape(2, 3)))


# ---------------------------------------------------------------------- booleans
B = [True, False, False, True, True]


@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.tensor(B).diff(),
        lambda m: m.tensor(B).diff(n=2),
        lambda m: m.tensor(B).diff(prepend=m.tensor([True]), append=m.tensor([False])),
        lambda m: m.tensor([[True, False], [False, False]]).diff(dim=0),
        lambda m: m.tensor(B).sign(),
        lambda m: m.sign(m.tensor(B)),
        lambda m: m.tensor(B).sgn(),
        lambda m: m.tensor(B) ** True,
        lambda m: m.tensor(B) ** False,
        lambda m: m.pow(m.tensor(B), True),
        lambda m: m.tensor(B) ** 2,
    ],
)
def test_bool_diff_sign_and_pow_match_torch(f: Any) -> None:
    _same(f)


# ---------------------------------------------------------------------- empty reductions
@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.zeros(0, 3).logsumexp(0),
        lambda m: m.zeros(0, 3).logsumexp(1),
        lambda m: m.zeros(0, 3).logsumexp((0, 1)),
        lambda m: m.zeros(0, 3).logsumexp(0, keepdim=True),
        lambda m: m.zeros(0, 3, dtype=m.int64).logsumexp(0),
        lambda m: m.zeros(0, 3).amax(1),
        lambda m: m.zeros(0, 3).amin(1, keepdim=True),
        lambda m: m.zeros(0, 3, 2).amax((1, 2)),
        lambda m: m.zeros(0, 3).max(1).values,
        lambda m: m.zeros(0, 3).max(1).indices,
        lambda m: m.zeros(0, 3).min(1, keepdim=True).values,
        lambda m: m.zeros(0, 3).prod(),
    ],
)
def test_reductions_with_an_empty_dim_match_torch(f: Any) -> None:
    _same(f)


@pytest.mark.parametrize(
    "f",
    [lambda m: m.zeros(0, 3).amax(0), lambda m: m.zeros(0, 3).max(0), lambda m: m.zeros(0, 3, 2).amin((0, 2))],
)
def test_extremes_over_an_empty_dim_still_raise(f: Any) -> None:
    _both_raise(f)


def test_logsumexp_of_a_row_of_minus_inf_is_minus_inf_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(lambda m: m.tensor([[-INF, -INF], [0.0, 1.0]]).logsumexp(1))


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_prod_of_an_empty_tensor_gives_a_zero_size_gradient(shape: tuple[int, ...]) -> None:
    grads = []
    for lib in (ds, torch):
        x = lib.zeros(*shape, dtype=lib.float64, requires_grad=True)
        x.prod().backward()
        assert x.grad is not None
        grads.append(tuple(x.grad.shape))
    assert grads[0] == grads[1] == shape


def test_amax_gradient_with_an_empty_other_dim() -> None:
    for lib in (ds, torch):
        x = lib.zeros(0, 3, requires_grad=True)
        x.amax(1).sum().backward()
        assert tuple(x.grad.shape) == (0, 3)


# ---------------------------------------------------------------------- softmax of -inf rows
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_a_row_of_minus_inf_is_nan_without_a_warning(name: str) -> None:
    rows = [[-INF, -INF, -INF], [1.0, 2.0, 3.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = getattr(ds, name)(ds.tensor(rows), 1)
        also = getattr(ds.nn.functional, name)(ds.tensor(rows), dim=1)
    theirs = getattr(torch, name)(torch.tensor(rows), 1)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    np.testing.assert_allclose(also.numpy(), theirs.numpy(), rtol=1e-6)
    assert np.isnan(ours.numpy()[0]).all()


# ---------------------------------------------------------------------- repeat_interleave, unflatten
@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.repeat_interleave(m.tensor([1, 0, 3])),
        lambda m: m.repeat_interleave(m.tensor([2, 1], dtype=m.int32)),
        lambda m: m.repeat_interleave(m.tensor([], dtype=m.int64)),
        lambda m: m.repeat_interleave(m.tensor([1, 2]), output_size=3),
        lambda m: m.tensor([1, 2]).repeat_interleave(2),
        lambda m: m.tensor([[1.0, 2.0]]).repeat_interleave(m.tensor([1, 2]), dim=1),
    ],
)
def test_repeat_interleave_matches_torch(f: Any) -> None:
    _same(f)


@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.repeat_interleave(m.tensor(2)),
        lambda m: m.repeat_interleave(m.tensor([[1, 2]])),
        lambda m: m.repeat_interleave(m.tensor([1, -2])),
        lambda m: m.repeat_interleave(m.tensor([1.0, 2.0])),
    ],
)
def test_repeat_interleave_of_bad_counts_raises_like_torch(f: Any) -> None:
    _both_raise(f)


@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.zeros(2, 0).unflatten(-2, (-1, 1)),
        lambda m: m.zeros(2, 0).unflatten(1, (2, -1)),
        lambda m: m.zeros(4, 0).unflatten(0, (-1, 2)),
        lambda m: m.zeros(0).unflatten(0, (-1,)),
        lambda m: m.arange(12.0).reshape(2, 6).unflatten(1, (3, -1)),
        lambda m: m.arange(12.0).reshape(2, 6).unflatten(-1, (2, 3)),
    ],
)
def test_unflatten_matches_torch(f: Any) -> None:
    _same(f)


@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.zeros(2, 5).unflatten(1, (2, 3)),
        lambda m: m.zeros(2, 6).unflatten(1, (-1, -1)),
        lambda m: m.zeros(2, 6).unflatten(1, (-1, 4)),
        lambda m: m.zeros(2, 6).unflatten(1, ()),
        lambda m: m.zeros(2, 0).unflatten(1, (-1, 0)),
    ],
)
def test_unflatten_of_bad_sizes_raises_like_torch(f: Any) -> None:
    _both_raise(f)


# ---------------------------------------------------------------------- promotion
@pytest.mark.parametrize(
    "f",
    [
        lambda m: m.tensor([3], dtype=m.uint8) | m.tensor(2, dtype=m.int8),
        lambda m: m.tensor([3], dtype=m.uint8) & m.tensor(2, dtype=m.int8),
        lambda m: m.tensor([3], dtype=m.uint8) ^ m.tensor(2),
        lambda m: m.tensor(2, dtype=m.int8) | m.tensor([3], dtype=m.uint8),
        lambda m: m.tensor([3], dtype=m.int8) | m.tensor(2, dtype=m.uint8),
        lambda m: m.tensor([3], dtype=m.uint8) << m.tensor(2, dtype=m.int8),
        lambda m: m.tensor([3], dtype=m.uint8) | m.tensor([2], dtype=m.int8),
        lambda m: m.tensor([True]) | m.tensor(2),
    ],
)
def test_bitwise_ops_promote_like_torch(f: Any) -> None:
    _same(f)


BINARY_FLOAT_OPS = ["atan2", "hypot", "copysign", "logaddexp", "xlogy"]
OPERANDS = {
    "f16,f16": lambda m: (m.tensor([1.0, 2.0], dtype=m.float16), m.tensor([1.0, 3.0], dtype=m.float16)),
    "f16,int": lambda m: (m.tensor([1.0, 2.0], dtype=m.float16), m.tensor([1, 2])),
    "int,0d f64": lambda m: (m.tensor([1, 2]), m.tensor(1.0, dtype=m.float64)),
    "0d f64,int": lambda m: (m.tensor(1.0, dtype=m.float64), m.tensor([1, 2])),
    "f16,0d f64": lambda m: (m.tensor([1.0, 2.0], dtype=m.float16), m.tensor(1.0, dtype=m.float64)),
    "f32,f64": lambda m: (m.tensor([1.0, 2.0]), m.tensor([1.0, 3.0], dtype=m.float64)),
}


@pytest.mark.parametrize("op", BINARY_FLOAT_OPS)
@pytest.mark.parametrize("operands", sorted(OPERANDS))
def test_floating_binary_ops_keep_torchs_result_dtype(op: str, operands: str) -> None:
    _same(lambda m: getattr(m, op)(*OPERANDS[operands](m)))


def test_a_0d_operand_of_another_float_dtype_still_gets_its_gradient() -> None:
    grads = []
    for lib in (ds, torch):
        a = lib.ones(2, requires_grad=True)
        b = lib.tensor(2.0, dtype=lib.float64, requires_grad=True)
        (lib.atan2(a, b) + a * b).sum().backward()
        assert b.grad is not None and str(b.grad.dtype).endswith("float64")
        grads.append((a.grad.tolist(), b.grad.item()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-6)


def test_logcumsumexp_of_minus_inf_is_minus_inf_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(lambda m: m.logcumsumexp(m.tensor([-INF, -INF, 0.0, 1.0]), 0))
