"""Fused single-step kernels for ``LSTMCell`` and ``GRUCell``: one graph node per call.

A cell stepped in a Python loop (``for t: h, c = cell(x[t], (h, c))``) is the common way to write
a custom recurrence. Written with basic ops, one LSTM step records ~14 graph nodes (two linears,
an add, sigmoid, tanh, four slices, the cell update), and for small layers the per-node cost of
recording and of running each gradient rule is most of the time. Here a step is ONE node:

* forward: the two matrix products (``x @ W_ih.T`` and ``h @ W_hh.T``) and the gate arithmetic in
  a few in-place NumPy passes; the LSTM's value packs ``[h', c']`` as a ``(2, N, H)`` array that
  the cell slices (two cheap view nodes), the GRU's value is ``h'`` itself;
* backward: the gate derivatives in a few passes, then one matrix product per gradient.

The matrix products go through :func:`downslope.gemm.matmul` (oneDNN's GEMM for float32 host
arrays large enough to pay for the call, NumPy's ``matmul`` otherwise).

Both run gate-major, ``W_ih @ x.T`` giving a (G*H, N) block per step, so that every gate is a
contiguous (H, N) block: NumPy's element-wise ops on the strided gate slices of the (N, G*H)
layout took ~3x as long (3.5 vs 1.2 us for a 97x51 float64 multiply).

Under ``create_graph=True`` the same rule is written with differentiable ops (the gates recomputed
from the node's inputs), so double backward through a cell keeps working (and through the sequence
layers, whose rule reruns the sequence with these cells under ``create_graph``).

Gate order and formulas follow PyTorch: LSTM (i, f, g, o), GRU (r, z, n) with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) * n + z * h``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import gemm
from ..backend import namespace_of
from ..tensor import Tensor, record_op

__all__ = ["gru_cell", "lstm_cell"]


def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """sigmoid in place as ``tanh(a / 2) / 2 + 1/2`` (one SIMD tanh, no exp overflow warnings)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _pre_activations(
    x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: Any, b_hh: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Gate-major ``(W_ih @ x.T + b_ih, W_hh @ h.T + b_hh)``, each a fresh (G*H, N) array."""
    gi = gemm.matmul(w_ih, x.T)
    gh = gemm.matmul(w_hh, h.T)
    if b_ih is not None:
        gi += b_ih[:, None]
    if b_hh is not None:
        gh += b_hh[:, None]
    return gi, gh


def _array(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.array


def _parents(x: Tensor, state: tuple[Tensor, ...], weights: tuple[Any, ...]) -> tuple[tuple[Tensor, ...], bool]:
    has_bias = weights[2] is not None and weights[3] is not None
    parents = (x, *state, weights[0], weights[1]) + ((weights[2], weights[3]) if has_bias else ())
    return parents, has_bias


# ---------------------------------------------------------------------- LSTM
def lstm_cell(
    x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> Tensor:
    """One LSTM step on ``x`` (N, I), ``h`` and ``c`` (N, H); returns ``[h', c']`` packed as (2, N, H).
    ``h`` may be smaller than ``c`` (N, P): the projected state of an LSTM with ``proj_size``, whose
    projection the caller applies to the returned ``o * tanh(c')`` (still (N, H)).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn._rnn_cells import lstm_cell
        >>> w_ih, w_hh = ds.ones(8, 3) * 0.1, ds.ones(8, 2) * 0.1
        >>> lstm_cell(ds.ones(4, 3), ds.zeros(4, 2), ds.zeros(4, 2), w_ih, w_hh, None, None).shape
        downslope.Size([2, 4, 2])
    """
    parents, has_bias = _parents(x, (h, c), (w_ih, w_hh, b_ih, b_hh))
    size = c.shape[-1]  # the hidden size (h has the projection's, when there is one)
    gates, gh = _pre_activations(x.array, h.array, w_ih.array, w_hh.array, _array(b_ih), _array(b_hh))
    gates += gh
    i, f, g, o = (gates[k * size : (k + 1) * size] for k in range(4))
    # i, f and o are sigmoid gates (as tanh(a/2)/2 + 1/2, with one tanh over all four), g is tanh.
    gates[: 2 * size] *= 0.5
    o *= 0.5
    np.tanh(gates, out=gates)
    for s in (gates[: 2 * size], o):
        s *= 0.5
        s += 0.5
    c_new = np.multiply(f, c.array.T)
    np.multiply(i, g, out=gh[:size])
    c_new += gh[:size]
    tanh_c = np.tanh(c_new)
    out = namespace_of(gates).empty((2,) + c.shape, dtype=gates.dtype)
    np.multiply(o, tanh_c, out=out[0].T)
    np.copyto(out[1].T, c_new)
    return record_op(out, parents, _lstm_cell_vjp, (has_bias, gates, tanh_c))


def _lstm_cell_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return _lstm_cell_vjp_recorded(g, args, needs)
    has_bias, gates, tanh_c = saved
    x, h, c, w_ih, w_hh = args[:5]
    size = c.shape[-1]
    i, f, gg, o = (gates[k * size : (k + 1) * size] for k in range(4))
    dh, dc = g[0].T, g[1].T  # (H, N) views, like the gates
    # d(pre-activation) of each gate, block by block, in one gate-major (4H, N) array.
    dpre = np.empty_like(gates)
    di, df, dg, do = (dpre[k * size : (k + 1) * size] for k in range(4))
    # dc_total = dc + dh * o * (1 - tanh(c')^2), computed in do's block before do itself.
    np.multiply(tanh_c, tanh_c, out=do)
    np.subtract(1, do, out=do)
    do *= o
    do *= dh
    dct = np.add(dc, do)
    # o: dh * tanh(c') * o (1 - o)
    np.subtract(1, o, out=do)
    do *= o
    do *= tanh_c
    do *= dh
    # i: dct * g * i (1 - i); f: dct * c * f (1 - f); g: dct * i * (1 - g^2)
    np.subtract(1, i, out=di)
    di *= i
    di *= gg
    di *= dct
    np.subtract(1, f, out=df)
    df *= f
    df *= c.T
    df *= dct
    np.multiply(gg, gg, out=dg)
    np.subtract(1, dg, out=dg)
    dg *= i
    dg *= dct
    dct *= f  # the gradient reaching c
    grads = _linear_grads(dpre, dpre, x, h, w_ih, w_hh, needs[:2] + needs[3:], has_bias)
    grads.insert(2, dct.T if needs[2] else None)
    return tuple(grads)


# ---------------------------------------------------------------------- GRU
def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """One GRU step on ``x`` (N, I) and ``h`` (N, H); returns ``h'`` (N, H).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn._rnn_cells import gru_cell
        >>> w_ih, w_hh = ds.ones(6, 3) * 0.1, ds.ones(6, 2) * 0.1
        >>> gru_cell(ds.ones(4, 3), ds.zeros(4, 2), w_ih, w_hh, None, None).shape
        downslope.Size([4, 2])
    """
    parents, has_bias = _parents(x, (h,), (w_ih, w_hh, b_ih, b_hh))
    size = h.shape[-1]
    acts, gh = _pre_activations(x.array, h.array, w_ih.array, w_hh.array, _array(b_ih), _array(b_hh))
    rz = acts[: 2 * size]
    rz += gh[: 2 * size]
    _sigmoid_(rz)
    hn = gh[2 * size :]  # W_hn h + b_hn, which the gradient of r needs
    n = acts[2 * size :]
    n += rz[:size] * hn
    np.tanh(n, out=n)
    diff = np.subtract(h.array.T, n)
    diff *= rz[size:]
    out = namespace_of(acts).empty(h.shape, dtype=acts.dtype)
    np.add(diff, n, out=out.T)
    return record_op(out, parents, _gru_cell_vjp, (has_bias, acts, hn))


def _gru_cell_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return _gru_cell_vjp_recorded(g, args, needs)
    has_bias, acts, hn = saved
    x, h, w_ih, w_hh = args[:4]
    size = h.shape[-1]
    r, z, n = acts[:size], acts[size : 2 * size], acts[2 * size :]
    g_t = g.T  # (H, N), like the gates
    dgi = np.empty_like(acts)  # gradients of the input pre-activations (r, z, W_in x + b_in)
    dr, dz, dn = dgi[:size], dgi[size : 2 * size], dgi[2 * size :]
    # dn_pre = dh (1 - z)(1 - n^2)
    np.multiply(n, n, out=dn)
    np.subtract(1, dn, out=dn)
    dn *= g_t
    dn -= dn * z
    # dr_pre = dn_pre * hn * r (1 - r); dz_pre = dh (h - n) z (1 - z)
    np.subtract(1, r, out=dr)
    dr *= r
    dr *= hn
    dr *= dn
    np.subtract(1, z, out=dz)
    dz *= z
    dz *= g_t
    dz *= h.T - n
    dgh = dgi.copy()  # the recurrent pre-activations share r and z; their n part is dn_pre * r
    dgh[2 * size :] *= r
    grads = _linear_grads(dgi, dgh, x, h, w_ih, w_hh, needs, has_bias)
    if needs[1]:
        grads[1] += (g_t * z).T  # h' = n + z (h - n) also reads h directly
    return tuple(grads)


# ---------------------------------------------------------------------- shared
def _linear_grads(dgi, dgh, x, h, w_ih, w_hh, needs, has_bias):
    """Gradients of (x, h, W_ih, W_hh, b_ih, b_hh) from the gate-major (G*H, N) gradients of the
    pre-activations ``W_ih @ x.T + b_ih`` (``dgi``) and ``W_hh @ h.T + b_hh`` (``dgh``); ``needs``
    lists the same six in that order."""
    grads: list[Any] = [
        gemm.matmul(dgi.T, w_ih) if needs[0] else None,
        gemm.matmul(dgh.T, w_hh) if needs[1] else None,
        gemm.matmul(dgi, x) if needs[2] else None,
        gemm.matmul(dgh, h) if needs[3] else None,
    ]
    if has_bias:
        db_i = dgi.sum(axis=1) if needs[4] or (needs[5] and dgi is dgh) else None
        grads.append(db_i if needs[4] else None)
        if not needs[5]:
            grads.append(None)
        else:  # the LSTM's two biases get the same gradient: one sum
            grads.append(db_i.copy() if dgi is dgh and db_i is not None else dgh.sum(axis=1))
    return grads


def _recorded_grads(dgi, dgh, args, needs, has_bias):
    """``_linear_grads`` from differentiable ops (Tensors), for the rules under ``create_graph``."""
    x, h, w_ih, w_hh = args
    grads: list[Any] = [
        dgi @ w_ih if needs[0] else None,
        dgh @ w_hh if needs[1] else None,
        dgi.T @ x if needs[2] else None,
        dgh.T @ h if needs[3] else None,
    ]
    if has_bias:
        grads += [dgi.sum(axis=0) if needs[4] else None, dgh.sum(axis=0) if needs[5] else None]
    return grads


def _lstm_cell_vjp_recorded(g, args, needs):
    """The LSTM cell's rule from differentiable ops, the gates recomputed from the inputs (create_graph)."""
    from .. import ops
    from . import functional as F

    x, h, c, w_ih, w_hh = args[:5]
    has_bias = len(args) == 7
    size = c.shape[-1]
    gates = F.linear(x, w_ih, args[5] if has_bias else None) + F.linear(h, w_hh, args[6] if has_bias else None)
    s = ops.sigmoid(gates)
    i, f, o = s[..., :size], s[..., size : 2 * size], s[..., 3 * size :]
    gg = ops.tanh(gates[..., 2 * size : 3 * size])
    tc = ops.tanh(f * c + i * gg)
    dh, dc = g[0], g[1]
    dct = dc + dh * o * (1 - tc * tc)
    dpre = ops.concatenate(
        [dct * gg * i * (1 - i), dct * c * f * (1 - f), dct * i * (1 - gg * gg), dh * tc * o * (1 - o)], axis=-1
    )
    grads = _recorded_grads(dpre, dpre, (x, h, w_ih, w_hh), needs[:2] + needs[3:], has_bias)
    grads.insert(2, dct * f if needs[2] else None)
    return tuple(grads)


def _gru_cell_vjp_recorded(g, args, needs):
    """The GRU cell's rule from differentiable ops, the gates recomputed from the inputs (create_graph)."""
    from .. import ops
    from . import functional as F

    x, h, w_ih, w_hh = args[:4]
    has_bias = len(args) == 6
    size = h.shape[-1]
    gi = F.linear(x, w_ih, args[4] if has_bias else None)
    gh = F.linear(h, w_hh, args[5] if has_bias else None)
    rz = ops.sigmoid(gi[..., : 2 * size] + gh[..., : 2 * size])
    r, z = rz[..., :size], rz[..., size:]
    hn = gh[..., 2 * size :]
    n = ops.tanh(gi[..., 2 * size :] + r * hn)
    dn = g * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = g * (h - n) * z * (1 - z)
    dgi = ops.concatenate([dr, dz, dn], axis=-1)
    dgh = ops.concatenate([dr, dz, dn * r], axis=-1)
    grads = _recorded_grads(dgi, dgh, (x, h, w_ih, w_hh), needs, has_bias)
    if needs[1]:
        grads[1] = grads[1] + g * z
    return tuple(grads)
