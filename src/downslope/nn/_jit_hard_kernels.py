"""Compiled (numba) kernels for hardswish and hardsigmoid of float32/float64 arrays, forward and
backward, each one pass over the data (the NumPy path makes four or five passes and as many
temporaries); imported only when ``jit_gate.kernels`` says the compiled path applies (numba
installed, not switched off, host arrays of numba's dtypes).

The formulas are torch's CPU kernels', step for step: forward ``x * min(max(x + 3, 0), 6) / 6``
and ``min(max(x + 3, 0), 6) / 6``; backward ``0`` for x <= -3, ``g * (x / 3 + 1/2)`` below 3 and
``g`` from 3 on (NaN included) for hardswish, ``g * (1/6)`` strictly inside (-3, 3) and 0 elsewhere
(NaN included) for hardsigmoid. A NaN input stays NaN forward (the comparisons that clamp are
false for it), -inf * 0 is NaN as torch's. These kernels take and make NumPy arrays only.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.nn._jit_hard_kernels")
    >>> if k is not None:
    ...     out = np.empty(3, np.float32)
    ...     k.hardswish(np.array([-4.0, 0.0, 1.0], np.float32), out)
    ...     assert out.tolist() == [-0.0, 0.0, np.float32(1.0) * np.float32(4.0) / np.float32(6.0)]
"""

from __future__ import annotations

import numba

# no fastmath: each step rounds as torch's kernel does (no fused multiply-add, nothing reassociated)
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def hardswish(x, out):
    """``out = x * min(max(x + 3, 0), 6) / 6`` (flat arrays of one dtype)."""
    three = x.dtype.type(3.0)
    six = x.dtype.type(6.0)
    zero = x.dtype.type(0.0)
    for i in range(x.shape[0]):
        v = x[i]
        c = v + three
        c = zero if c < zero else c  # NaN: both comparisons false, c stays NaN
        c = six if c > six else c
        out[i] = v * c / six


@_jit
def hardswish_backward(g, x, out):
    """``out = 0`` where x <= -3, ``g * (x / 3 + 1/2)`` where -3 < x < 3, ``g`` elsewhere (NaN too)."""
    three = x.dtype.type(3.0)
    half = x.dtype.type(0.5)
    zero = x.dtype.type(0.0)
    for i in range(x.shape[0]):
        v = x[i]
        inner = g[i] * (v / three + half)
        upper = inner if v < three else g[i]
        out[i] = zero if v <= -three else upper


@_jit
def hardsigmoid(x, out):
    """``out = min(max(x + 3, 0), 6) / 6`` (flat arrays of one dtype)."""
    three = x.dtype.type(3.0)
    six = x.dtype.type(6.0)
    zero = x.dtype.type(0.0)
    for i in range(x.shape[0]):
        c = x[i] + three
        c = zero if c < zero else c
        c = six if c > six else c
        out[i] = c / six


@_jit
def hardsigmoid_backward(g, x, out):
    """``out = g * (1/6)`` where -3 < x < 3, 0 elsewhere (NaN too)."""
    three = x.dtype.type(3.0)
    sixth = x.dtype.type(1.0 / 6.0)
    zero = x.dtype.type(0.0)
    for i in range(x.shape[0]):
        v = x[i]
        inside = g[i] * sixth
        out[i] = inside if (v > -three) & (v < three) else zero
