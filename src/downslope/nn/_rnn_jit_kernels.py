"""numba loops of the LSTM sequence kernel (see ``_rnn_jit`` for why and when they run).

Importing this module imports numba; ``_rnn_jit.kernels()`` does, on the first LSTM call that can
use it. The functions compile on first use and are cached on disk (``cache=True``). The layouts
are those of the NumPy formulation in ``_rnn_kernels`` (gate-major, every array C-contiguous):

* ``w`` (4H, K) = [W_ih | W_hh | b] with the sigmoid gates' rows halved, ``z`` (L+1, K, N) with
  ``z[t] = [x_t.T; h_t.T; 1]`` (the forward writes h_{t+1} into the h rows of ``z[t+1]``);
* ``gates`` (L, 4H, N): the activations i, f, g, o of each step (with several parts, each part's
  four blocks in turn, see below); ``cells`` (L+1, H, N) with ``cells[0] = c0.T``; ``tanh_c`` (L, H, N);
* backward: ``dh`` (L+1, H, N) holds the gradient reaching each output state and gets each step's
  ``W_hh.T @ dG`` added; ``dc`` (H, N) the gradient reaching the cell; ``d_cols`` (4H, L, N) the
  pre-activations' gradients, time and batch along the columns, as the weight-gradient product
  after the loop reads them.

``sgemm`` is oneDNN's ``dnnl_sgemm`` (``gemm.sgemm_function()``), ``pause`` libc's ``sched_yield``;
a kernel returns its first nonzero status, -1 when another part failed, or 0. ``lo, hi, part,
parts, sync``: the units [lo, hi) of this part, its index and the part count, and the counters the
parts meet on (one part: 0, H, 0, 1 and any zeroed ``sync``).

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
from numba.core import cgutils, types
from numba.extending import intrinsic

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


# ---------------------------------------------------------------------- parts run at once
# With several threads the hidden units are split into parts, each run by one thread calling its
# kernel at once with the same arrays. Part p owns units [lo, hi): its gate rows are contiguous,
# [i; f; g; o] of its units, starting at row 4 * lo (the caller permutes the rows of W so; with one
# part that is the plain gate-major layout), and its cells, states and gradients are those units'
# rows. A step needs every part's states of the step before (forward) or every part's gate
# gradients of this step (backward, for W_hh.T @ dG), so the parts meet once per step: each
# publishes how many steps it has done in ``sync[part * _LINE]`` and waits for the others. A part
# whose product fails sets ``sync[0]`` (the others then stop with status -1).
_LINE = 16  # int64 slots per cache line and a half: each part's counter on a line of its own


@intrinsic
def _load_acquire(typingctx, array, index):
    """``array[index]`` (int64) as an atomic load: not hoisted out of a wait loop, and the writes a
    part made before publishing its count are seen after it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _store_release(typingctx, array, index, value):
    """``array[index] = value`` (int64) as an atomic store, after every write before it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, pointer, "release", 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@numba.njit(inline="always")
def _publish(sync, part, count):
    # (numba passes an intrinsic's typing context itself; mypy sees one argument too few)
    _store_release(sync, (part + 1) * _LINE, count)  # type: ignore[call-arg]


@numba.njit(inline="always")
def _fail(sync, why):
    _store_release(sync, 0, why)  # type: ignore[call-arg]


#: Looks at the other parts' counters before a waiting part starts yielding its core.
_SPINS = 2000
#: ``sync[0]`` after a part's product failed, or after a part gave up waiting: it yields its core
#: at most ``sync[1]`` times while waiting (a part that never runs, as in an OpenMP team smaller
#: than asked for, then gives an error instead of a hang).
FAILED, WAITED_TOO_LONG = 1, 2


@numba.njit(inline="always")
def _wait_for_all(sync, parts, count, pause):
    """Spin until every part has published ``count``; after a while, yield the core between looks
    (``pause`` is sched_yield) so a part waiting on a busy machine does not hold up the one it waits
    for. Returns False when a part failed (or this one waited too long)."""
    for other in range(parts):
        spins = 0
        while _load_acquire(sync, (other + 1) * _LINE) < count:  # type: ignore[call-arg]
            if _load_acquire(sync, 0) != 0:
                return False
            spins += 1
            if spins > _SPINS:
                pause()
                if spins > _SPINS + sync[1]:
                    _fail(sync, WAITED_TOO_LONG)
                    return False
    return True


@_jit
def lstm_forward(sgemm, pause, w, z, gates, cells, tanh_c, features, lo, hi, part, parts, sync):
    length, rows, batch = gates.shape
    size = hi - lo
    top = 4 * lo  # this part's first gate row
    k = w.shape[1]
    for t in range(length):
        if t > 0 and not _wait_for_all(sync, parts, t, pause):  # every part's h_t is in z[t]
            return -1
        status = sgemm(
            _N,
            _N,
            4 * size,
            batch,
            k,
            _ONE,
            w[top].ctypes.data,
            k,
            z[t].ctypes.data,
            batch,
            _F(0.0),
            gates[t, top].ctypes.data,
            batch,
        )
        if status != 0:
            _fail(sync, FAILED)
            return status
        # Views with an integer index first and a plain slice last are C-contiguous in numba's
        # typing, so the element loops over them vectorise.
        g = gates[t, top : top + 4 * size]
        c_prev = cells[t, lo:hi]
        c_new = cells[t + 1, lo:hi]
        tc = tanh_c[t, lo:hi]
        h = z[t + 1, features + lo : features + hi]
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
                h[r, j] = o * tanh_of_c
        _publish(sync, part, t + 1)
    return 0


@_jit
def lstm_backward(sgemm, pause, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols, lo, hi, part, parts, sync):
    length, rows, batch = gates.shape
    size = hi - lo
    top = 4 * lo
    for t in range(length - 1, -1, -1):
        g = gates[t, top : top + 4 * size]
        c_prev = cells[t, lo:hi]
        tc = tanh_c[t, lo:hi]
        dh_t = dh[t + 1, lo:hi]
        dc_part = dc[lo:hi]
        for r in range(size):
            for j in range(batch):
                i = g[r, j]
                f = g[size + r, j]
                gg = g[2 * size + r, j]
                o = g[3 * size + r, j]
                tanh_of_c = tc[r, j]
                grad_h = dh_t[r, j]
                grad_c = dc_part[r, j] + grad_h * o * (_ONE - tanh_of_c * tanh_of_c)
                d_cols[top + r, t, j] = grad_c * gg * i * (_ONE - i)
                d_cols[top + size + r, t, j] = grad_c * c_prev[r, j] * f * (_ONE - f)
                d_cols[top + 2 * size + r, t, j] = grad_c * i * (_ONE - gg * gg)
                d_cols[top + 3 * size + r, t, j] = grad_h * tanh_of_c * o * (_ONE - o)
                dc_part[r, j] = grad_c * f
        _publish(sync, part, length - t)
        if not _wait_for_all(sync, parts, length - t, pause):  # every part's rows of dG_t are in
            return -1
        # dh[t][lo:hi] += W_hh.T[lo:hi] @ dG_t: ``w_hh_t`` is W_hh.T (H, 4H), dG_t the (4H, N) block
        # of d_cols of step t (all parts' rows)
        status = sgemm(
            _N,
            _N,
            size,
            batch,
            rows,
            _ONE,
            w_hh_t[lo].ctypes.data,
            rows,
            d_cols[0, t].ctypes.data,
            length * batch,
            _ONE,
            dh[t, lo].ctypes.data,
            batch,
        )
        if status != 0:
            _fail(sync, FAILED)
            return status
    return 0


# The parts run on OpenMP's threads (numba's "omp" threading layer, the GNU OpenMP runtime that
# oneDNN's GEMM uses too): they are already awake between parallel regions, where a Python thread
# pool's worker is woken per call (about 45 us per call measured, a tenth of the loop). oneDNN's
# GEMM called inside the parallel region runs on its caller's thread alone. Each part must be on a
# thread of its own (they wait for each other): the caller makes at most as many parts as numba has
# threads, and numba hands an OpenMP team of that many threads one chunk of the range each.
_jit_parts = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")


@_jit_parts
def lstm_forward_parts(sgemm, pause, w, z, gates, cells, tanh_c, features, bounds, sync, statuses):
    parts = bounds.shape[0] - 1
    for part in numba.prange(parts):
        statuses[part] = lstm_forward(
            sgemm, pause, w, z, gates, cells, tanh_c, features, bounds[part], bounds[part + 1], part, parts, sync
        )


@_jit_parts
def lstm_backward_parts(sgemm, pause, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols, bounds, sync, statuses):
    parts = bounds.shape[0] - 1
    for part in numba.prange(parts):
        statuses[part] = lstm_backward(
            sgemm,
            pause,
            w_hh_t,
            gates,
            cells,
            tanh_c,
            dh,
            dc,
            d_cols,
            bounds[part],
            bounds[part + 1],
            part,
            parts,
            sync,
        )
