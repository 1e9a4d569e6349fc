"""nn.utils clipping on a 0-dim parameter (a learnable temperature such as CLIP's logit_scale), against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _backward(lib):  # type: ignore[no-untyped-def]
    """A vector parameter and a 0-dim one whose gradient comes from a product with a Python number
    (NumPy hands such a 0-d product back as a scalar); ``lib`` is ds or torch."""
    w = lib.nn.Parameter(lib.tensor([3.0, 4.0]))
    s = lib.nn.Parameter(lib.tensor(2.0))
    ((w * lib.tensor([3.0, 4.0])).sum() + s * 6.0).backward()
    return w, s


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_scales_a_zero_dim_parameter_as_torch(norm_type: float) -> None:
    w, s = _backward(ds)
    tw, ts = _backward(torch)
    total = ds.nn.utils.clip_grad_norm_([w, s], 1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_([tw, ts], 1.0, norm_type=norm_type)
    np.testing.assert_allclose(float(total), float(expected), rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-6)


def test_clip_grad_value_clips_a_zero_dim_parameter_as_torch() -> None:
    w, s = _backward(ds)
    tw, ts = _backward(torch)
    ds.nn.utils.clip_grad_value_([w, s], 5.0)
    torch.nn.utils.clip_grad_value_([tw, ts], 5.0)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy())


def test_clip_grads_with_norm_scales_a_zero_dim_parameter_as_torch() -> None:
    w, s = _backward(ds)
    tw, ts = _backward(torch)
    ds.nn.utils.clip_grads_with_norm_([w, s], 1.0, ds.nn.utils.get_total_norm([w.grad, s.grad]))
    torch.nn.utils.clip_grads_with_norm_([tw, ts], 1.0, torch.nn.utils.get_total_norm([tw.grad, ts.grad]))
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-6)


def test_clipping_writes_a_gradient_held_as_a_numpy_scalar() -> None:
    # a gradient array put in place by other code as a NumPy scalar is still clipped, not rebound locally
    s = ds.nn.Parameter(ds.tensor(2.0))
    (s * 6.0).backward()
    s.grad.array = np.float32(6.0)
    ds.nn.utils.clip_grad_value_([s], 5.0)
    assert float(s.grad) == 5.0
    s.grad.array = np.float32(6.0)
    ds.nn.utils.clip_grad_norm_([s], 3.0)
    ts = torch.nn.Parameter(torch.tensor(2.0))
    ts.grad = torch.tensor(6.0)
    torch.nn.utils.clip_grad_norm_([ts], 3.0)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-6)
