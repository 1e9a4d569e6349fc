"""2-D max pooling on the compiled 3-D kernels (a depth of 1) against PyTorch: values, indices,
gradients (first and second order) over random geometries, NaN, -inf windows and channel-major
input; the same checks pass on the NumPy formulation (``DOWNSLOPE_JIT=0``, devices)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

TF = torch.nn.functional


@pytest.fixture(autouse=True)
def _compiled_at_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """These small inputs take the compiled path (where numba is installed), not only large ones."""
    from downslope.nn import pooling

    monkeypatch.setattr(pooling, "JIT_POOL_MIN_SIZE", 0)


def test_the_compiled_path_is_taken() -> None:
    if jit_gate.kernels("downslope.nn._jit_volumetric", np.zeros(1)) is None:
        pytest.skip("numba is not installed, or the compiled path is switched off")
    from downslope.nn import _vol_pooling

    calls = []
    real = _vol_pooling.max_pool2d_by_3d
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_vol_pooling, "max_pool2d_by_3d", lambda *a: calls.append(1) or real(*a))
        F.max_pool2d(ds.randn(1, 2, 5, 5), 3, 2, 1, return_indices=True)
    assert calls


def _geometries() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    out = []
    while len(out) < 40:
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        out.append(dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=bool(rng.random() < 0.4)))
    return out


def _check(a: np.ndarray, kwargs: dict[str, Any], channel_major: bool = False) -> None:
    g = None
    t = torch.tensor(a, requires_grad=True)
    try:
        to, ti = TF.max_pool2d(t, return_indices=True, **kwargs)
    except RuntimeError:
        return
    g = np.random.default_rng(1).standard_normal(tuple(to.shape)).astype(a.dtype)
    (to * torch.tensor(g)).sum().backward()
    x = ds.from_numpy(a.copy())
    if channel_major:  # a convolution's layout: (C, N, H, W) in memory
        x = ds.from_numpy(np.ascontiguousarray(a.transpose(1, 0, 2, 3))).permute(1, 0, 2, 3)
    x.requires_grad_()
    do, di = F.max_pool2d(x, return_indices=True, **kwargs)
    (do * ds.from_numpy(g)).sum().backward()
    np.testing.assert_array_equal(do.detach().numpy(), to.detach().numpy())
    np.testing.assert_array_equal(di.numpy(), ti.numpy())
    assert x.grad is not None and t.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", _geometries(), ids=str)
def test_values_indices_and_gradients_as_torch(kwargs: dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 7, 8))
    a[0, 0, 1, :3] = np.nan
    a[1, 2, :, 4:] = -np.inf
    a[0, 1] = np.round(a[0, 1])  # ties: the first in scan order wins
    _check(a, kwargs)
    _check(a.astype(np.float32), kwargs, channel_major=True)


def test_second_order_as_torch() -> None:
    a = np.random.default_rng(3).standard_normal((2, 2, 6, 7))
    t = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad((TF.max_pool2d(t, 3, 2, 1) ** 2).sum(), t, create_graph=True)
    (gt.sin().sum()).backward()
    x = ds.from_numpy(a.copy()).requires_grad_()
    (gx,) = ds.autograd.grad((F.max_pool2d(x, 3, 2, 1) ** 2).sum(), x, create_graph=True)
    (gx.sin().sum()).backward()
    np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    assert x.grad is not None and t.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
