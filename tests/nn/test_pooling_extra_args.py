"""LP pooling's infinite norms, max unpooling's output_size range and NumPy integer sizes, against torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional
INF = float("inf")


@pytest.mark.parametrize("p", [INF, -INF])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool_infinite_norm_is_max_or_min_of_magnitudes(check_op: Any, p: float, ceil_mode: bool) -> None:
    # the power mean's limits: torch pools |x| by max (inf) or min (-inf), with max pooling's gradient
    rng = np.random.default_rng(3)
    x2 = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    check_op(
        lambda x: F.lp_pool2d(x, p, (2, 3), 2, ceil_mode), lambda x: TF.lp_pool2d(x, p, (2, 3), 2, ceil_mode), [x2]
    )
    check_op(nn.LPPool2d(p, 2, ceil_mode=ceil_mode), torch.nn.LPPool2d(p, 2, ceil_mode=ceil_mode), [x2])
    x1 = rng.standard_normal((2, 3, 9)).astype(np.float64)
    check_op(lambda x: F.lp_pool1d(x, p, 3, 2, ceil_mode), lambda x: TF.lp_pool1d(x, p, 3, 2, ceil_mode), [x1])
    check_op(nn.LPPool1d(p, 2), torch.nn.LPPool1d(p, 2), [x1])
    x3 = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    check_op(lambda x: F.lp_pool3d(x, p, 2, None, ceil_mode), lambda x: TF.lp_pool3d(x, p, 2, None, ceil_mode), [x3])
    check_op(nn.LPPool3d(p, (2, 1, 3)), torch.nn.LPPool3d(p, (2, 1, 3)), [x3])


def test_lp_pool_infinite_norm_gradient_is_finite_and_signed() -> None:
    x = ds.tensor([[[0.5, 2.0, -3.0, 0.2]]], requires_grad=True)
    F.lp_pool1d(x, INF, 2).sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [[[0.0, 1.0, -1.0, 0.0]]]  # d|x|/dx at each window's largest |x|


@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_max_unpool_refuses_output_size_outside_torchs_range(spatial: int) -> None:
    shape = (1, 2) + (4,) * spatial
    # decreasing values: each window's maximum is its first element, a valid index in the smaller sizes
    x = -np.arange(float(np.prod(shape)), dtype=np.float32).reshape(shape)
    pool = (TF.max_pool1d, TF.max_pool2d, TF.max_pool3d)[spatial - 1]
    out, idx = pool(torch.tensor(x), 2, return_indices=True)
    ours = ds.tensor(out.numpy())
    unpool = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[spatial - 1]
    tunpool = (TF.max_unpool1d, TF.max_unpool2d, TF.max_unpool3d)[spatial - 1]
    # the default size is 4 per dim (stride 2): torch takes 3..5 and refuses 2 and 6
    for size in (2, 3, 4, 5, 6):
        wanted = (size,) + (4,) * (spatial - 1)
        try:
            ref = tunpool(out, idx, 2, output_size=wanted)
        except ValueError:
            with pytest.raises(ds.errors.ArgumentError, match=r"invalid output_size .*dim 0 must be between 2 and 6"):
                unpool(ours, ds.tensor(idx.numpy()), 2, output_size=wanted)
            continue
        got = unpool(ours, ds.tensor(idx.numpy()), 2, output_size=wanted)
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
    # torch also takes the full (N, C, ...) size, and refuses other lengths
    full = tuple(shape)
    np.testing.assert_array_equal(
        unpool(ours, ds.tensor(idx.numpy()), 2, output_size=full).numpy(),
        tunpool(out, idx, 2, output_size=full).numpy(),
    )
    with pytest.raises(ValueError):
        tunpool(out, idx, 2, output_size=(4,) * (spatial + 1))
    with pytest.raises(ds.errors.ArgumentError, match=f"output_size should have {spatial} or {spatial + 2}"):
        unpool(ours, ds.tensor(idx.numpy()), 2, output_size=(4,) * (spatial + 1))


def test_max_unpool2d_module_checks_output_size() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, i = F.max_pool2d(ds.tensor(x), 2, return_indices=True)
    with pytest.raises(ds.errors.ArgumentError, match="max_unpool2d: invalid output_size"):
        nn.MaxUnpool2d(2)(y, i, output_size=(7, 9))


def test_numpy_integer_sizes_are_taken_as_torch_takes_them(check_op: Any) -> None:
    n = np.int64(2)
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 6)).astype(np.float32)
    check_op(nn.LPPool2d(2, n), torch.nn.LPPool2d(2, n), [x])
    check_op(lambda x: F.lp_pool3d(x, 2, n), lambda x: TF.lp_pool3d(x, 2, n), [x[:, None]])
    out, idx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    got = nn.MaxUnpool2d(n, stride=np.int64(2), padding=np.int64(0))(ds.tensor(out.numpy()), ds.tensor(idx.numpy()))
    # torch's own MaxUnpool2d trips over NumPy integers in its size check: compared with Python ints
    np.testing.assert_array_equal(got.numpy(), torch.nn.MaxUnpool2d(2)(out, idx).numpy())
    assert repr(nn.MaxUnpool2d(n)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    out1, idx1 = TF.max_pool1d(torch.tensor(x[:, :, 0]), 2, return_indices=True)
    got1 = F.max_unpool1d(ds.tensor(out1.numpy()), ds.tensor(idx1.numpy()), n)
    np.testing.assert_array_equal(got1.numpy(), TF.max_unpool1d(out1, idx1, 2).numpy())
