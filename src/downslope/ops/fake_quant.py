"""Fake quantization (PyTorch's ``torch.fake_quantize_per_tensor_affine`` and
``torch.fake_quantize_per_channel_affine``): round onto an integer grid and back in floating point,
the forward pass of quantization-aware training, with the straight-through gradient.

Each value becomes ``(clamp(rint(x / scale) + zero_point, quant_min, quant_max) - zero_point) * scale``
with torch's arithmetic: ``1 / scale`` taken in float32 and multiplied (not divided), ties rounded to
even, a NaN input clamped to ``quant_min``. The gradient passes where the rounded value lies in
``[quant_min, quant_max]`` and is 0 elsewhere (and at NaN); ``scale`` and ``zero_point`` get none, as
in torch.

Example:
    >>> import downslope as ds
    >>> x = ds.tensor([-1.0, -0.25, 0.0, 0.35, 1.0], requires_grad=True)
    >>> y = fake_quantize_per_tensor_affine(x, 0.1, 0, -5, 5)
    >>> y
    tensor([-0.5, -0.2,  0. ,  0.4,  0.5], grad_fn=<FakeQuantizePerTensorAffineCachemaskBackward0>)
    >>> y.sum().backward(); x.grad
    tensor([0., 1., 1., 1., 0.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import to_host
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..tensor import Tensor, record_op

__all__ = ["fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine"]


def _float_input(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
    if x.array.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating input (float32, float64 or float16), got dtype {x.array.dtype}")
    return x


def _check_range(quant_min: int, quant_max: int, name: str) -> tuple[int, int]:
    if isinstance(quant_min, bool) or isinstance(quant_max, bool):
        raise ArgumentTypeError(f"{name}: quant_min and quant_max must be ints, got {quant_min!r}, {quant_max!r}")
    qmin, qmax = int(quant_min), int(quant_max)
    if qmin > qmax:
        raise ArgumentError(f"{name}: expected quant_min <= quant_max, got quant_min={qmin}, quant_max={qmax}")
    return qmin, qmax


def _scalar(value: Any, name: str, what: str) -> float:
    if isinstance(value, Tensor):
        if value.array.size != 1:
            raise ShapeError(f"{name}: expected {what} to hold one value, got a tensor of shape {tuple(value.shape)}")
        return float(to_host(value.array).reshape(-1)[0])  # host: torch reads it there too (scale.item())
    return float(value)  # host: a Python number


def _work_dtype(x: Tensor) -> Any:
    # torch computes half and bfloat16 inputs in float32 (its kernels' opmath type)
    return x.array.dtype if x.array.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _fake_quantize_per_tensor_affine_cachemask_vjp(g, y, args, saved, needs, xp):
    # torch's fake_quantize_*_cachemask_backward: the gradient times the mask (so 0 * inf is NaN, as there)
    return (g * saved,)


def _fake_quantize_per_channel_affine_cachemask_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)  # (a rule of its own for torch's node name)


def _quantize(
    x: Tensor, inv_scale: Any, scale: Any, zero_point: Any, qmin: int, qmax: int, float_zp: bool, rule: Any
) -> Tensor:
    """The fake-quantized ``x`` (``inv_scale``, ``scale``, ``zero_point`` broadcast against it) and its mask."""
    a = x.array
    xp = namespace_of(a)
    work = _work_dtype(x)
    v = a.astype(work, copy=False)
    if float_zp:  # torch's float zero point (per channel): added before rounding
        q = xp.rint(v * inv_scale + zero_point)
    else:
        q = xp.rint(v * inv_scale) + zero_point
    inside = (q >= qmin) & (q <= qmax)
    clamped = xp.fmin(xp.fmax(q, qmin), qmax)
    if not float_zp:
        clamped = xp.trunc(clamped)  # torch's int64 cast of the clamped value
    # torch's (q - zero_point) * scale in scale's dtype: float32 per tensor (a float), the input's per channel
    out = ((clamped - zero_point).astype(scale.dtype) * scale).astype(a.dtype, copy=False)
    return record_op(out, (x,), rule, inside.astype(a.dtype))


def fake_quantize_per_tensor_affine(
    input: Tensor, scale: Any, zero_point: Any, quant_min: int, quant_max: int
) -> Tensor:
    """``input`` rounded onto the grid ``scale * (q - zero_point)`` for integers ``q`` in
    ``[quant_min, quant_max]``, in floating point; the gradient passes where ``q`` was in range
    (torch's straight-through estimator). ``scale`` and ``zero_point`` are numbers or one-element
    tensors (torch's two overloads)."""
    name = "fake_quantize_per_tensor_affine"
    x = _float_input(input, name)
    qmin, qmax = _check_range(quant_min, quant_max, name)
    s = _scalar(scale, name, "scale")
    if not isinstance(zero_point, Tensor) and (
        isinstance(zero_point, (bool, float)) or not hasattr(zero_point, "__index__")
    ):
        raise ArgumentTypeError(f"{name}: expected zero_point as an int or a one-element tensor, got {zero_point!r}")
    zp = int(_scalar(zero_point, name, "zero_point"))  # a floating tensor's is truncated, as torch's
    if not qmin <= zp <= qmax:
        raise ArgumentError(f"{name}: expected zero_point in [quant_min, quant_max] = [{qmin}, {qmax}], got {zp}")
    work = _work_dtype(x)
    s32 = np.float32(s)
    inv = (np.float32(1.0) / s32).astype(work)
    return _quantize(x, inv, s32, work.type(zp), qmin, qmax, False, _fake_quantize_per_tensor_affine_cachemask_vjp)


def fake_quantize_per_channel_affine(
    input: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int, quant_max: int
) -> Tensor:
    """``input`` fake-quantized with one ``scale[c]`` and ``zero_point[c]`` per index ``c`` of dim
    ``axis`` (as :func:`fake_quantize_per_tensor_affine` per channel). ``zero_point`` is an int32
    tensor (added after rounding) or a floating one (added before, torch's float-qparams scheme)."""
    name = "fake_quantize_per_channel_affine"
    x = _float_input(input, name)
    qmin, qmax = _check_range(quant_min, quant_max, name)
    if not isinstance(scale, Tensor) or not isinstance(zero_point, Tensor):
        raise ArgumentTypeError(
            f"{name}: expected scale and zero_point as 1-d tensors, got {type(scale).__name__} and "
            f"{type(zero_point).__name__}"
        )
    nd = x.array.ndim
    if isinstance(axis, bool) or not 0 <= int(axis) < nd:  # torch takes no negative axis either
        raise ArgumentError(f"{name}: expected axis in [0, {nd}) for an input of shape {tuple(x.shape)}, got {axis}")
    axis = int(axis)
    channels = x.array.shape[axis]
    for what, t in (("scale", scale), ("zero_point", zero_point)):
        if t.array.ndim != 1 or t.array.shape[0] != channels:
            raise ShapeError(
                f"{name}: expected {what} of shape ({channels},) (input dim {axis} of shape {tuple(x.shape)}), got {tuple(t.shape)}"
            )
    zkind = zero_point.array.dtype
    if zkind not in (np.int32, np.float32, np.float16, np.float64):
        raise DTypeError(f"{name}: expected zero_point of dtype int32, float32 or float16, got {zkind}")
    float_zp = zkind.kind == "f"
    if not float_zp:
        zp_host = to_host(zero_point.array)  # torch checks the range on the host too
        if ((zp_host < qmin) | (zp_host > qmax)).any():
            raise ArgumentError(f"{name}: expected every zero_point in [quant_min, quant_max] = [{qmin}, {qmax}]")
    work = _work_dtype(x)
    xp = namespace_of(x.array)
    where = [1] * nd
    where[axis] = channels
    s32 = xp.asarray(scale.array).astype(np.float32)
    inv = (np.float32(1.0) / s32).astype(work).reshape(where)
    zp = xp.asarray(zero_point.array).astype(work).reshape(where)
    return _quantize(
        x,
        inv,
        s32.astype(work).reshape(where),
        zp,
        qmin,
        qmax,
        float_zp,
        _fake_quantize_per_channel_affine_cachemask_vjp,
    )
