"""Compiled (numba) update kernels for SGD, Adam, NAdam, RMSprop, Adagrad and Adadelta on large parameters, one pass over each
parameter; imported only through ``jit_gate.kernels`` (see ``_fused.py``, which decides when they
apply).

The transforms path gathers every gradient into the flat gradient buffer and then runs each
transform as a few whole-buffer NumPy passes (scale by ``-lr``, momentum, the add into the
parameters): memory-bound, several reads and writes of every element where PyTorch makes two or
three. These kernels read each parameter's own ``.grad`` and update the parameter and its state
slices of the flat buffers in one loop, in PyTorch's formula order (``_single_tensor_sgd`` and
``_single_tensor_adam``, ...), the scalars given in the arrays' dtype, so float32 steps round as
PyTorch's float32 steps do.

Importing this module imports numba (half a second), so nothing imports it at ``import downslope``
time. The kernels compile on first use and are cached on disk (``cache=True``). They take NumPy
arrays only (``jit_gate.kernels`` answers None for device arrays).

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.optim._jit_updates")
    >>> p, g = np.ones(4, np.float32), np.full(4, 2.0, np.float32)
    >>> if k is not None:
    ...     k.sgd_(p, g, np.float32(-0.1), np.float32(0.0), False)
    ...     assert np.allclose(p, 0.8)
"""

from __future__ import annotations

import math

import numba
import numpy as np

# error_model="numpy": a division by zero gives inf/NaN as NumPy's (and PyTorch's) would, with no
# check per element (the check would also keep LLVM from vectorising the loop).
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


# Each public kernel picks, outside its loop, one loop body specialised for its flags (inlined
# with the flags as constants): a flag tested inside the loop keeps LLVM from vectorising it
# (measured 6x slower for Adam).
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


@_inline
def _sgd_loop(p, g, neg_lr, wd, sign, use_wd):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        if use_wd:
            d = d + wd * p[i]
        p[i] = p[i] + neg_lr * d


@_jit
def sgd_(p: np.ndarray, g: np.ndarray, neg_lr: float, wd: float, maximize: bool) -> None:  # pragma: no cover
    """SGD without momentum, PyTorch's order: ``d = g + wd * p`` (``g`` negated first when
    ``maximize``; the decay skipped when ``wd`` is 0), ``p = p + (-lr) * d``."""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)  # times 1 or -1: exact
    if wd != 0:
        _sgd_loop(p, g, neg_lr, wd, sign, True)
    else:
        _sgd_loop(p, g, neg_lr, wd, sign, False)


@_inline
def _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, use_wd, nesterov, first):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        if use_wd:
            d = d + wd * p[i]
        if first:
            b = d
        else:
            b = buf[i] * mu + keep * d
        buf[i] = b
        if nesterov:
            d = d + mu * b
        else:
            d = b
        p[i] = p[i] + neg_lr * d


@_jit
def sgd_momentum_(
    p: np.ndarray,
    g: np.ndarray,
    buf: np.ndarray,
    neg_lr: float,
    wd: float,
    mu: float,
    keep: float,
    nesterov: bool,
    first: bool,
    maximize: bool,
) -> None:  # pragma: no cover
    """SGD with momentum, PyTorch's order: ``d = g + wd * p``; ``buf = d`` on the first step, else
    ``buf = buf * mu + keep * d`` (``keep = 1 - dampening``); ``d = d + mu * buf`` (Nesterov) or
    ``d = buf``; ``p = p + (-lr) * d``."""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    use_wd = wd != 0
    if first:
        if use_wd:
            if nesterov:
                _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, True, True, True)
            else:
                _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, True, False, True)
        elif nesterov:
            _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, False, True, True)
        else:
            _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, False, False, True)
    elif use_wd:
        if nesterov:
            _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, True, True, False)
        else:
            _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, True, False, False)
    elif nesterov:
        _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, False, True, False)
    else:
        _momentum_loop(p, g, buf, neg_lr, wd, mu, keep, sign, False, False, False)


@_inline
def _adam_loop(
    p, g, m, v, vmax, sign, l2, shrink, coeff, beta2, w2, neg_step, bc2_sqrt, eps, small, use_l2, amsgrad
):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        pi = p[i] * shrink  # times exactly 1 without decoupled weight decay
        if use_l2:
            d = d + l2 * pi
        mi = m[i]
        # PyTorch's lerp: m + w1 * (d - m) for a small weight, else d + (w1 - 1) * (d - m)
        base = mi if small else d
        mi = base + coeff * (d - mi)
        m[i] = mi
        vi = v[i] * beta2 + w2 * d * d
        v[i] = vi
        if amsgrad:
            top = vmax[i]
            if vi > top or vi != vi:  # NaN propagates, as torch.maximum
                top = vi
            vmax[i] = top
            vi = top
        p[i] = pi + neg_step * mi / (math.sqrt(vi) / bc2_sqrt + eps)


@_jit
def adam_(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: np.ndarray,
    maximize: bool,
    l2: float,
    shrink: float,
    w1: float,
    beta2: float,
    w2: float,
    neg_step: float,
    bc2_sqrt: float,
    eps: float,
    amsgrad: bool,
) -> None:  # pragma: no cover
    """One Adam step, PyTorch's order (``_single_tensor_adam``)::

        p = p * shrink                                  (decoupled weight decay: shrink = 1 - lr * wd)
        d = g + l2 * p                                  (L2 weight decay; skipped when l2 is 0)
        m = m.lerp(d, w1)                               (w1 = 1 - beta1)
        v = v * beta2 + w2 * d * d                      (w2 = 1 - beta2)
        vmax = max(vmax, v)                             (AMSGrad: the denominator reads vmax)
        p = p + neg_step * m / (sqrt(v) / bc2_sqrt + eps)

    ``shrink`` is 1 without decoupled weight decay; ``vmax`` is read only with ``amsgrad``."""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    small = abs(w1) < 0.5
    coeff = w1 if small else w1 - p.dtype.type(1)
    if l2 != 0:
        if amsgrad:
            _adam_loop(p, g, m, v, vmax, sign, l2, shrink, coeff, beta2, w2, neg_step, bc2_sqrt, eps, small, True, True)
        else:
            _adam_loop(
                p, g, m, v, vmax, sign, l2, shrink, coeff, beta2, w2, neg_step, bc2_sqrt, eps, small, True, False
            )
    elif amsgrad:
        _adam_loop(p, g, m, v, vmax, sign, l2, shrink, coeff, beta2, w2, neg_step, bc2_sqrt, eps, small, False, True)
    else:
        _adam_loop(p, g, m, v, vmax, sign, l2, shrink, coeff, beta2, w2, neg_step, bc2_sqrt, eps, small, False, False)


@_inline
def _nadam_loop(
    p, g, m, v, sign, l2, shrink, coeff, beta2, w2, bc2, eps, c_grad, c_m, small, use_l2
):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        pi = p[i] * shrink  # times exactly 1 without decoupled weight decay
        if use_l2:
            d = d + l2 * pi
        mi = m[i]
        base = mi if small else d  # PyTorch's lerp, as in _adam_loop
        mi = base + coeff * (d - mi)
        m[i] = mi
        vi = v[i] * beta2 + w2 * d * d
        v[i] = vi
        denom = math.sqrt(vi / bc2) + eps
        # PyTorch's two addcdiv_, each stored: p + (value * t1) / t2
        pi = pi + c_grad * d / denom
        p[i] = pi + c_m * mi / denom


@_jit
def nadam_(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    maximize: bool,
    l2: float,
    shrink: float,
    w1: float,
    beta2: float,
    w2: float,
    bc2: float,
    eps: float,
    c_grad: float,
    c_m: float,
) -> None:  # pragma: no cover
    """One NAdam step, PyTorch's order (``_single_tensor_nadam``)::

        p = p * shrink                                  (decoupled weight decay: shrink = 1 - lr * wd)
        d = g + l2 * p                                  (L2 weight decay; skipped when l2 is 0)
        m = m.lerp(d, w1)                               (w1 = 1 - beta1)
        v = v * beta2 + w2 * d * d                      (w2 = 1 - beta2)
        denom = sqrt(v / bc2) + eps                     (bc2 = 1 - beta2**t)
        p = p + c_grad * d / denom;  p = p + c_m * m / denom

    ``c_grad = -lr (1 - mu_t) / (1 - prod mu)`` and ``c_m = -lr mu_{t+1} / (1 - mu_{t+1} prod mu)`` are the
    parameter's scalars, computed by the caller from its running product."""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    small = abs(w1) < 0.5
    coeff = w1 if small else w1 - p.dtype.type(1)
    if l2 != 0:
        _nadam_loop(p, g, m, v, sign, l2, shrink, coeff, beta2, w2, bc2, eps, c_grad, c_m, small, True)
    else:
        _nadam_loop(p, g, m, v, sign, l2, shrink, coeff, beta2, w2, bc2, eps, c_grad, c_m, small, False)


@_inline
def _rmsprop_loop(
    p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, use_wd, centered, momentum
):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        if use_wd:
            d = d + wd * p[i]
        vi = v[i] * alpha + w * d * d
        v[i] = vi
        if centered:
            mi = mean_g[i]
            base = mi if small else d  # PyTorch's lerp, as in _adam_loop
            mi = base + coeff * (d - mi)
            mean_g[i] = mi
            sq = mi * mi
            if sq > cap:  # torch's addcmul does not round the product: inf - (huge) stays inf, not NaN
                sq = cap
            avg = math.sqrt(vi - sq) + eps
        else:
            avg = math.sqrt(vi) + eps
        if momentum:
            b = buf[i] * mu + d / avg
            buf[i] = b
            p[i] = p[i] + neg_lr * b
        else:
            p[i] = p[i] + neg_lr * (d / avg)


@_jit
def rmsprop_(
    p: np.ndarray,
    g: np.ndarray,
    v: np.ndarray,
    mean_g: np.ndarray,
    buf: np.ndarray,
    maximize: bool,
    wd: float,
    alpha: float,
    w: float,
    eps: float,
    neg_lr: float,
    mu: float,
    cap: float,
    centered: bool,
) -> None:  # pragma: no cover
    """One RMSprop step, PyTorch's order (``_single_tensor_rmsprop``)::

        d = g + wd * p                                  (weight decay; skipped when wd is 0)
        v = v * alpha + w * d * d                       (w = 1 - alpha)
        mean_g = mean_g.lerp(d, w)                      (centered only)
        avg = sqrt(v - mean_g * mean_g) + eps           (centered; else sqrt(v) + eps)
        buf = buf * mu + d / avg;  p = p + neg_lr * buf (momentum mu > 0)
        p = p + neg_lr * (d / avg)                      (no momentum)

    ``mean_g`` is read only when ``centered``, ``buf`` only when ``mu > 0``; ``cap`` is the dtype's
    largest finite number."""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    small = abs(w) < 0.5
    coeff = w if small else w - p.dtype.type(1)
    use_wd, momentum = wd != 0, mu > 0
    # one specialised loop per combination of flags (see _inline)
    if centered:
        if momentum:
            if use_wd:
                _rmsprop_loop(
                    p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, True, True, True
                )
            else:
                _rmsprop_loop(
                    p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, False, True, True
                )
        elif use_wd:
            _rmsprop_loop(
                p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, True, True, False
            )
        else:
            _rmsprop_loop(
                p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, False, True, False
            )
    elif momentum:
        if use_wd:
            _rmsprop_loop(
                p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, True, False, True
            )
        else:
            _rmsprop_loop(
                p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, False, False, True
            )
    elif use_wd:
        _rmsprop_loop(p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, True, False, False)
    else:
        _rmsprop_loop(p, g, v, mean_g, buf, sign, wd, alpha, w, coeff, small, cap, eps, neg_lr, mu, False, False, False)


@_inline
def _adagrad_loop(p, g, acc, sign, wd, eps, neg_clr, use_wd):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        if use_wd:
            d = d + wd * p[i]
        s = acc[i] + d * d
        acc[i] = s
        p[i] = p[i] + neg_clr * (d / (math.sqrt(s) + eps))


@_jit
def adagrad_(
    p: np.ndarray, g: np.ndarray, acc: np.ndarray, maximize: bool, wd: float, eps: float, neg_clr: float
) -> None:  # pragma: no cover
    """One Adagrad step, PyTorch's order (``_single_tensor_adagrad``)::

    d = g + wd * p                                  (weight decay; skipped when wd is 0)
    acc = acc + d * d
    p = p + neg_clr * (d / (sqrt(acc) + eps))       (neg_clr = -lr / (1 + (t - 1) * lr_decay))"""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    if wd != 0:
        _adagrad_loop(p, g, acc, sign, wd, eps, neg_clr, True)
    else:
        _adagrad_loop(p, g, acc, sign, wd, eps, neg_clr, False)


@_inline
def _adadelta_loop(p, g, v, u, sign, wd, rho, w, eps, neg_lr, use_wd):  # pragma: no cover
    for i in range(p.size):
        d = g[i] * sign
        if use_wd:
            d = d + wd * p[i]
        vi = v[i] * rho + w * d * d
        v[i] = vi
        delta = math.sqrt(u[i] + eps) / math.sqrt(vi + eps) * d
        u[i] = u[i] * rho + w * delta * delta
        p[i] = p[i] + neg_lr * delta


@_jit
def adadelta_(
    p: np.ndarray,
    g: np.ndarray,
    v: np.ndarray,
    u: np.ndarray,
    maximize: bool,
    wd: float,
    rho: float,
    w: float,
    eps: float,
    neg_lr: float,
) -> None:  # pragma: no cover
    """One Adadelta step, PyTorch's order (``_single_tensor_adadelta``)::

    d = g + wd * p                                  (weight decay; skipped when wd is 0)
    v = v * rho + w * d * d                         (w = 1 - rho)
    delta = sqrt(u + eps) / sqrt(v + eps) * d
    u = u * rho + w * delta * delta
    p = p + neg_lr * delta"""
    sign = p.dtype.type(-1) if maximize else p.dtype.type(1)
    if wd != 0:
        _adadelta_loop(p, g, v, u, sign, wd, rho, w, eps, neg_lr, True)
    else:
        _adadelta_loop(p, g, v, u, sign, wd, rho, w, eps, neg_lr, False)


# ---------------------------------------------------------------------- rows of a table (sparse gradients)
@_jit
def add_rows_(param, rows, values, alpha):
    """``param[rows[k]] += alpha * values[k]`` for each k in order (repeats add): PyTorch's
    ``p.add_(sparse_grad, alpha=alpha)`` of an uncoalesced sparse gradient, one pass over the rows
    looked up (NumPy's fancy ``-=`` needs the rows made distinct first, then reads and writes them twice)."""
    for k in range(rows.shape[0]):
        i = rows[k]
        for j in range(values.shape[1]):
            param[i, j] += alpha * values[k, j]


@_jit
def adam_rows_(param, exp_avg, exp_avg_sq, rows, g, one_minus_beta1, one_minus_beta2, eps, step_size):
    """SparseAdam on the distinct ``rows`` whose gradient rows are ``g``, PyTorch's formula order
    (``sparse_adam_update``'s, row by row in one pass)."""
    for k in range(rows.shape[0]):
        i = rows[k]
        for j in range(g.shape[1]):
            gk = g[k, j]
            m_old = exp_avg[i, j]
            v_old = exp_avg_sq[i, j]
            m_step = (gk - m_old) * one_minus_beta1
            v_step = (gk * gk - v_old) * one_minus_beta2
            exp_avg[i, j] = m_old + m_step
            exp_avg_sq[i, j] = v_old + v_step
            param[i, j] += -step_size * ((m_step + m_old) / (math.sqrt(v_step + v_old) + eps))
