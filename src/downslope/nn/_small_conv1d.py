"""A direct path for small 1-D convolutions on the host (a finite-difference stencil over a short
signal, a learned FIR filter): one product of the weight with the input's windows, where the
general path (a 2-D convolution on a height-1 image, with its workspaces, im2col and parallel
split) costs some 40 times the arithmetic at these sizes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..tensor import Tensor, record_op

#: The most multiply-adds (N * C_out * L_out * C_in * k) that take this path; larger convolutions
#: take the general one, whose parallel split and blocked kernels pay off there.
SMALL_CONV1D_WORK = 1 << 16
_FLOATS = (np.float32, np.float64)


def small_conv1d(
    x: Tensor, w: Tensor, bias: Any, padding: Any, stride: int, dilation: int, groups: int
) -> Tensor | None:
    """``conv1d(x, w, bias, padding=padding)`` for batched ``x`` (N, C_in, L) when it is small, on host
    float arrays of one dtype, with stride 1, dilation 1, one group and zero padding given as a pair
    ``(0, q)`` (conv1d's form) or ``'valid'``; None for anything else (the general path serves, and
    raises the errors)."""
    if stride != 1 or dilation != 1 or groups != 1:
        return None
    if padding == "valid":
        q = 0
    elif type(padding) is tuple and padding[0] == 0 and type(padding[1]) is int:
        q = padding[1]
    else:
        return None
    a, k_arr = x.array, w.array
    if (
        type(a) is not np.ndarray
        or type(k_arr) is not np.ndarray
        or a.dtype != k_arr.dtype
        or a.dtype.type not in _FLOATS
    ):
        return None
    if bias is not None:
        if not isinstance(bias, Tensor) or type(bias.array) is not np.ndarray or bias.array.dtype != a.dtype:
            return None
        if bias.array.shape != (k_arr.shape[0],):
            return None
    n, c, length = a.shape
    c_out, c_w, k = k_arr.shape
    out_len = length + 2 * q - k + 1
    if c != c_w or min(n, c, c_out, k, out_len) < 1 or n * c_out * out_len * c * k > SMALL_CONV1D_WORK:
        return None
    out = _forward(a, k_arr, q)
    if bias is not None:
        out += bias.array[:, None]
        return record_op(out, (x, w, bias), _small_conv1d_vjp, q)
    return record_op(out, (x, w), _small_conv1d_vjp, q)


def _windows(a: Any, k: int, q: int) -> Any:
    """The input's windows as columns (N, C * k, L_out): row ``c * k + j`` holds ``x[:, c, l + j]``."""
    if q:
        a = np.pad(a, ((0, 0), (0, 0), (q, q)))
    a = np.ascontiguousarray(a)  # host: the direct path takes host arrays only
    n, c, length = a.shape
    out_len = length - k + 1
    step = a.strides[-1]
    # (N, C, k, L_out) windows over a's memory, no copy: made directly, as sliding_window_view's Python
    # checks cost more than the convolution at these sizes; the reshape copies them into columns
    view = np.ndarray((n, c, k, out_len), a.dtype, buffer=a, strides=(a.strides[0], a.strides[1], step, step))
    return view.reshape(n, c * k, out_len)


def _forward(a: Any, w: Any, q: int) -> Any:
    c_out, c, k = w.shape
    return np.matmul(w.reshape(c_out, c * k), _windows(a, k, q))


def _small_conv1d_vjp(g, y, args, saved, needs, xp):
    q = saved
    x, w = args[0], args[1]
    if xp.differentiable:  # double backward: through the recorded convolutions that are the adjoints
        from .conv_transpose import conv_transpose1d
        from .convolution import conv1d

        g_x = conv_transpose1d(g, w, padding=q) if needs[0] else None
        g_w = (
            ops.transpose(conv1d(ops.transpose(x, 0, 1), ops.transpose(g, 0, 1), padding=q), 0, 1) if needs[1] else None
        )
        grads: list[Any] = [g_x, g_w]
        if len(args) > 2:
            grads.append(ops.sum(g, (0, 2)) if needs[2] else None)
        return tuple(grads)
    return _host_grads(g, x, w, q, needs, len(args) > 2)


def _host_grads(g: np.ndarray, x: np.ndarray, w: np.ndarray, q: int, needs: Any, bias: bool) -> tuple[Any, ...]:
    """The gradients of input, weight (and bias) on the host arrays the forward took."""
    n, c, length = x.shape
    c_out, _, k = w.shape
    out_len = g.shape[-1]
    g_x: np.ndarray | None = None
    g_w: np.ndarray | None = None
    if needs[0]:
        cols = np.matmul(w.reshape(c_out, c * k).T, g).reshape(n, c, k, out_len)
        padded = np.zeros((n, c, length + 2 * q), dtype=g.dtype)  # host: the direct path takes host arrays only
        for j in range(k):  # each tap's share lands on its shifted window (k is small here)
            padded[..., j : j + out_len] += cols[:, :, j]
        g_x = padded[..., q : q + length] if q else padded
    if needs[1]:
        g_w = np.matmul(g, _windows(x, k, q).transpose(0, 2, 1)).sum(0).reshape(c_out, c, k)
    if not bias:
        return (g_x, g_w)
    return (g_x, g_w, g.sum((0, 2)) if needs[2] else None)
