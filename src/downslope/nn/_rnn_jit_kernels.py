"""numba loops of the LSTM sequence kernel (see ``_rnn_jit`` for why and when they run).

Importing this module imports numba; ``_rnn_jit.kernels()`` does, on the first LSTM call that can
use it. The functions compile on first use and are cached on disk (``cache=True``). The layouts
are those of the NumPy formulation in ``_rnn_kernels`` (gate-major, every array C-contiguous):

* ``w`` (4H, K) = [W_ih | W_hh | b] with the sigmoid gates' rows halved, ``z`` (L+1, K, N) with
  ``z[t] = [x_t.T; h_t.T; 1]`` (the forward writes h_{t+1} into the h rows of ``z[t+1]``);
* ``gates`` (L, 4H, N): the activations i, f, g, o of each step; ``cells`` (L+1, H, N) with
  ``cells[0] = c0.T``; ``tanh_c`` (L, H, N);
* backward: ``dh`` (L+1, H, N) holds the gradient reaching each output state and gets each step's
  ``W_hh.T @ dG`` added; ``dc`` (H, N) the gradient reaching the cell; ``d_cols`` (4H, L, N) the
  pre-activations' gradients, time and batch along the columns, as the weight-gradient product
  after the loop reads them.

``sgemm`` is oneDNN's ``dnnl_sgemm`` (``gemm.sgemm_function()``); a kernel returns its first
nonzero status, or 0.

Example:
    >>> import numpy as np
    >>> from downslope.nn import _rnn_jit_kernels as k
    >>> out = np.empty(3, dtype=np.float32)
    >>> k.tanh_into(np.array([-1.0, 0.0, 2.0], dtype=np.float32), out)
    >>> bool(np.allclose(out, np.tanh([-1.0, 0.0, 2.0]), rtol=1e-6))
    True
"""

from __future__ import annotations

import numba
import numpy as np

# error_model="numpy": a float division by zero gives inf/nan instead of raising, so the division
# of the tanh approximation has no branch and the element loops vectorise.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

_F = np.float32
_ONE, _HALF = _F(1.0), _F(0.5)
_N, _T = 78, 84  # BLAS's "N" and "T"
# Eigen's float tanh: x * P(x^2) / Q(x^2) on [-7.905, 7.905] (where it reaches +-1 in float32).
_CLAMP = _F(7.90531110763549805)
_A1, _A3, _A5, _A7 = (
    _F(4.89352455891786e-03),
    _F(6.37261928875436e-04),
    _F(1.48572235717979e-05),
    _F(5.12229709037114e-08),
)
_A9, _A11, _A13 = _F(-8.60467152213735e-11), _F(2.00018790482477e-13), _F(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = (
    _F(4.89352518554385e-03),
    _F(2.26843463243900e-03),
    _F(1.18534705686654e-04),
    _F(1.19825839466702e-06),
)


@numba.njit(inline="always", error_model="numpy")
def _tanh(x):
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


@_jit
def tanh_into(x, out):
    """``out[:] = tanh(x)`` for 1-D float32 arrays, by the approximation the kernels use."""
    for i in range(x.shape[0]):
        out[i] = _tanh(x[i])


@_jit
def lstm_forward(sgemm, w, z, gates, cells, tanh_c, features):
    length, rows, batch = gates.shape
    size = rows // 4
    k = w.shape[1]
    for t in range(length):
        status = sgemm(
            _N,
            _N,
            rows,
            batch,
            k,
            _ONE,
            w.ctypes.data,
            k,
            z[t].ctypes.data,
            batch,
            _F(0.0),
            gates[t].ctypes.data,
            batch,
        )
        if status != 0:
            return status
        g = gates[t]
        c_prev = cells[t]
        c_new = cells[t + 1]
        tc = tanh_c[t]
        h = z[t + 1]
        for r in range(size):
            for j in range(batch):
                i = _HALF + _HALF * _tanh(g[r, j])
                f = _HALF + _HALF * _tanh(g[size + r, j])
                gg = _tanh(g[2 * size + r, j])
                o = _HALF + _HALF * _tanh(g[3 * size + r, j])
                c = f * c_prev[r, j] + i * gg
                tanh_of_c = _tanh(c)
                g[r, j] = i
                g[size + r, j] = f
                g[2 * size + r, j] = gg
                g[3 * size + r, j] = o
                c_new[r, j] = c
                tc[r, j] = tanh_of_c
                h[features + r, j] = o * tanh_of_c
    return 0


@_jit
def lstm_backward(sgemm, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols):
    length, rows, batch = gates.shape
    size = rows // 4
    for t in range(length - 1, -1, -1):
        g = gates[t]
        c_prev = cells[t]
        tc = tanh_c[t]
        dh_t = dh[t + 1]
        for r in range(size):
            for j in range(batch):
                i = g[r, j]
                f = g[size + r, j]
                gg = g[2 * size + r, j]
                o = g[3 * size + r, j]
                tanh_of_c = tc[r, j]
                grad_h = dh_t[r, j]
                grad_c = dc[r, j] + grad_h * o * (_ONE - tanh_of_c * tanh_of_c)
                d_cols[r, t, j] = grad_c * gg * i * (_ONE - i)
                d_cols[size + r, t, j] = grad_c * c_prev[r, j] * f * (_ONE - f)
                d_cols[2 * size + r, t, j] = grad_c * i * (_ONE - gg * gg)
                d_cols[3 * size + r, t, j] = grad_h * tanh_of_c * o * (_ONE - o)
                dc[r, j] = grad_c * f
        # dh[t] += W_hh.T @ dG_t: ``w_hh_t`` is W_hh.T (H, 4H) contiguous (oneDNN ran this product
        # 10% faster so than reading W_hh transposed), dG_t a (4H, N) block of d_cols
        status = sgemm(
            _N,
            _N,
            size,
            batch,
            rows,
            _ONE,
            w_hh_t.ctypes.data,
            rows,
            d_cols[0, t].ctypes.data,
            length * batch,
            _ONE,
            dh[t].ctypes.data,
            batch,
        )
        if status != 0:
            return status
    return 0
