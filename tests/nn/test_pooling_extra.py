"""Adaptive max pooling and LP pooling against torch: values and input gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.mark.parametrize(("shape", "size"), [((2, 3, 6, 8), (3, 4)), ((1, 2, 5, 7), (3, 2)), ((2, 5, 5), 1),
                                             ((1, 2, 4, 6), (None, 4))])  # fmt: skip
def test_adaptive_max_pool2d_matches_torch(check_op: Any, shape: tuple, size: Any) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    check_op(lambda x: F.adaptive_max_pool2d(x, size), lambda x: TF.adaptive_max_pool2d(x, size), [x])
    check_op(nn.AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size), [x])


@pytest.mark.parametrize(("shape", "size"), [((2, 3, 8), 4), ((1, 2, 7), 3), ((3, 9), 1)])
def test_adaptive_max_pool1d_matches_torch(check_op: Any, shape: tuple, size: int) -> None:
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    check_op(nn.AdaptiveMaxPool1d(size), torch.nn.AdaptiveMaxPool1d(size), [x])


@pytest.mark.parametrize(("p", "k", "s"), [(2.0, 2, None), (3.0, (2, 3), 1), (1.0, 3, 2)])
def test_lp_pool_matches_torch(check_op: Any, p: float, k: Any, s: Any) -> None:
    x = np.abs(np.random.default_rng(2).standard_normal((2, 3, 6, 7))).astype(np.float32) + 0.1
    check_op(lambda x: F.lp_pool2d(x, p, k, s), lambda x: TF.lp_pool2d(x, p, k, s), [x])
    k1 = k if isinstance(k, int) else k[0]
    check_op(nn.LPPool1d(p, k1, s), torch.nn.LPPool1d(p, k1, s), [x[:, :, 0]])


def test_return_indices_gives_torchs_indices() -> None:
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 7)).astype(np.float32)
    out, idx = nn.AdaptiveMaxPool2d(2, return_indices=True)(ds.tensor(x))
    ref_out, ref_idx = torch.nn.AdaptiveMaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), ref_out.numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())


@pytest.mark.parametrize(("k", "s", "p", "shape"), [(2, None, 0, (2, 3, 6, 8)), (3, 2, 1, (1, 2, 7, 7))])
def test_max_unpool2d_matches_torch(check_op: Any, k: int, s: Any, p: int, shape: tuple) -> None:
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    pooled, idx = TF.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
    ours_idx = ds.tensor(idx.detach().numpy())
    check_op(
        lambda v: F.max_unpool2d(v, ours_idx, k, s, p, output_size=shape[2:]),
        lambda v: TF.max_unpool2d(v, idx, k, s, p, output_size=shape[2:]),
        [pooled.detach().numpy()],
    )
    check_op(lambda v: nn.MaxUnpool2d(k, s, p)(v, ours_idx), lambda v: torch.nn.MaxUnpool2d(k, s, p)(v, idx),
             [pooled.detach().numpy()])  # fmt: skip


def test_max_unpool1d_round_trips_max_pool1d(check_op: Any) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 8)).astype(np.float32)
    pooled, idx = TF.max_pool1d(torch.tensor(x), 2, return_indices=True)
    check_op(
        lambda v: F.max_unpool1d(v, ds.tensor(idx.detach().numpy()), 2),
        lambda v: TF.max_unpool1d(v, idx, 2),
        [pooled.detach().numpy()],
    )


def test_pooling_of_an_empty_batch_and_empty_spatial_dims_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for name, args, shape in [
        ("MaxPool1d", (2,), (0, 3, 8)), ("MaxPool2d", (2,), (0, 3, 8, 8)), ("MaxPool3d", (2,), (0, 3, 4, 4, 4)),
        ("AvgPool1d", (2,), (0, 3, 8)), ("AvgPool2d", (2,), (0, 3, 8, 8)), ("AvgPool3d", (2,), (0, 3, 4, 4, 4)),
        ("LPPool1d", (2, 2), (0, 3, 8)), ("LPPool2d", (2, 2), (0, 3, 8, 8)),
        ("AdaptiveMaxPool2d", (2,), (0, 1, 4, 4)), ("AdaptiveAvgPool2d", (2,), (0, 1, 4, 4)),
    ]:  # fmt: skip
        x = ds.randn(*shape, requires_grad=True)
        y = getattr(nn, name)(*args)(x)
        assert y.shape == tuple(getattr(torch.nn, name)(*args)(torch.randn(shape)).shape), name
        y.sum().backward()
        assert x.grad.shape == shape
    for name, shape in [("AdaptiveMaxPool2d", (1, 1, 0, 4)), ("AdaptiveAvgPool2d", (1, 1, 0, 4)),
                        ("AdaptiveMaxPool1d", (1, 1, 0)), ("AdaptiveAvgPool1d", (1, 1, 0)), ("AdaptiveAvgPool3d", (1, 1, 2, 0, 2))]:  # fmt: skip
        with pytest.raises(RuntimeError):
            getattr(torch.nn, name)(2)(torch.zeros(shape))
        with pytest.raises(ds.errors.ShapeError, match="non-zero size for non-batch dimensions"):
            getattr(nn, name)(2)(ds.zeros(*shape))


def test_lp_pool_norm_type_zero_is_a_clear_error() -> None:
    with pytest.raises(ZeroDivisionError):  # torch's own error
        torch.nn.LPPool2d(0, 2)(torch.randn(1, 1, 4, 4))
    with pytest.raises(ds.errors.ArgumentError, match="lp_pool2d: norm_type must be nonzero"):
        nn.LPPool2d(0, 2)(ds.randn(1, 1, 4, 4))
    with pytest.raises(ds.errors.ArgumentError, match="lp_pool1d: norm_type must be nonzero"):
        nn.LPPool1d(0, 2)(ds.randn(1, 1, 4))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_max_unpool_backward_on_an_empty_batch_matches_torch(dims: int) -> None:
    """A zero-size batch: the gradient is an empty tensor of the input's shape (the row length of the
    gradient cannot be inferred from zero rows)."""
    x = torch.randn((0, 2) + (4,) * dims)
    pooled, idx = getattr(torch.nn, f"MaxPool{dims}d")(2, return_indices=True)(x)
    theirs = pooled.clone().requires_grad_(True)
    getattr(torch.nn, f"MaxUnpool{dims}d")(2)(theirs, idx).sum().backward()
    ours = ds.from_numpy(pooled.numpy().copy()).requires_grad_(True)
    out = getattr(nn, f"MaxUnpool{dims}d")(2)(ours, ds.from_numpy(idx.numpy().copy()))
    assert out.shape == tuple(x.shape)
    out.sum().backward()
    assert ours.grad.shape == tuple(theirs.grad.shape)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("norm", [2.0, float("inf")])
def test_lp_pool_errors_name_the_lp_op(dims: int, norm: float) -> None:
    """LP pooling is built from average (or, at inf, max) pooling; its errors name the LP op called."""
    x = ds.randn(*((1, 2) + (3,) * dims))
    with pytest.raises(ValueError, match=rf"^lp_pool{dims}d: .*(smaller than|kernel)"):
        getattr(nn, f"LPPool{dims}d")(norm, 5)(x)
    with pytest.raises(RuntimeError):  # torch refuses it too
        getattr(torch.nn, f"LPPool{dims}d")(norm, 5)(torch.randn(*x.shape))
