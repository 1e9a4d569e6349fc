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
a kernel returns its first nonzero status, -1 when a task on another thread failed, or 0.
``bounds`` (int64): the parts' first units and H (one part: ``[0, H]``); ``counters``: a zeroed
int64 array of 3 * 16 the threads running a kernel at once share (see below).

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


# ---------------------------------------------------------------------- parts, taken by threads
# With several threads a layer's hidden units are split into parts. Part p owns units [lo, hi) =
# bounds[p], bounds[p + 1]: its gate rows are contiguous, [i; f; g; o] of its units, starting at
# row 4 * lo (the caller permutes the rows of W so; with one part that is the plain gate-major
# layout), and its cells, states and gradients are those units' rows. The work is a sequence of
# phases (forward: a step; backward: a step's gate gradients, then its product W_hh.T @ dG) of one
# task per part; a phase's tasks need every task of the phase before (a step needs all of the
# previous step's states; the product needs all of the step's gate gradients).
#
# Every thread that runs a kernel takes tasks in order from one ticket counter, waits until every
# task of the earlier phases is done, runs the task and counts it done. So the tasks are shared
# out as the threads come: one thread alone runs them all (one part, or a thread that has not
# started yet), none ever waits for a task nobody has taken, and a thread that arrives late (an
# OpenMP worker woken from sleep) or is descheduled (two runs at once on the same cores) only
# delays the tasks it holds. ``counters``: [0] a failure flag, [_LINE] the next ticket,
# [2 * _LINE] the tasks done (each on a cache line of its own).
_LINE = 16  # int64 slots per cache line and a half
_SPINS = 2000  # looks at the done count before a waiting thread starts yielding its core
FAILED = 1  # counters[0] after a task's product failed


@intrinsic
def _load_acquire(typingctx, array, index):
    """``array[index]`` (int64) as an atomic load: not hoisted out of a wait loop, and every write
    a thread made before counting its task done is seen after it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """``array[index] += value`` (int64) atomically, after every write before it; returns the old
    value."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", pointer, value, "acq_rel")

    return types.int64(array, index, value), codegen


# (numba passes an intrinsic's typing context itself; mypy sees one argument too few)
@numba.njit(inline="always")
def _take_ticket(counters):
    return _fetch_add(counters, _LINE, 1)  # type: ignore[call-arg]


@numba.njit(inline="always")
def _count_done(counters):
    _fetch_add(counters, 2 * _LINE, 1)  # type: ignore[call-arg]


@numba.njit(inline="always")
def _failed(counters):
    return _load_acquire(counters, 0) != 0  # type: ignore[call-arg]


@numba.njit(inline="always")
def _fail(counters):
    _fetch_add(counters, 0, FAILED)  # type: ignore[call-arg]


@numba.njit(inline="always")
def _wait_until_done(counters, tasks, pause):
    """Spin until ``tasks`` tasks are done, yielding the core (``pause`` is sched_yield) after a
    while so a waiting thread does not hold up a descheduled one on a busy machine. False when a
    task failed."""
    spins = 0
    while _load_acquire(counters, 2 * _LINE) < tasks:  # type: ignore[call-arg]
        if _failed(counters):
            return False
        spins += 1
        if spins > _SPINS:
            pause()
    return True


@_jit
def _forward_step(sgemm, w, z, gates, cells, tanh_c, features, t, lo, hi):
    """Step ``t`` of the units [lo, hi): their rows of the product, then their gates, cell and state."""
    batch = gates.shape[2]
    size = hi - lo
    top = 4 * lo  # this part's first gate row
    k = w.shape[1]
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
    return 0


@_jit
def _gate_gradients(gates, cells, tanh_c, dh, dc, d_cols, t, lo, hi):
    """Step ``t`` of the units [lo, hi), backward: their gates' gradients (into ``d_cols``) and the
    cell's (``dc``)."""
    batch = gates.shape[2]
    size = hi - lo
    top = 4 * lo
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


@_jit
def _state_gradient(sgemm, w_hh_t, d_cols, out, t, lo, hi, beta):
    """out (H, N) = beta * out + W_hh.T[:, rows] @ dG_t[rows], the rows of the units [lo, hi) (all
    of them for one part): ``w_hh_t`` is W_hh.T (H, 4H) contiguous (oneDNN ran this product 10% faster
    so than reading W_hh transposed), dG_t the (4H, N) block of d_cols of step t."""
    length, batch = d_cols.shape[1], d_cols.shape[2]
    rows = d_cols.shape[0]
    top = 4 * lo
    return sgemm(
        _N,
        _N,
        w_hh_t.shape[0],
        batch,
        4 * (hi - lo),
        _ONE,
        w_hh_t[0, top:].ctypes.data,
        rows,
        d_cols[top, t].ctypes.data,
        length * batch,
        beta,
        out.ctypes.data,
        batch,
    )


@_jit
def lstm_forward(sgemm, pause, w, z, gates, cells, tanh_c, features, bounds, counters):
    parts = bounds.shape[0] - 1
    total = gates.shape[0] * parts
    while True:
        ticket = _take_ticket(counters)
        if ticket >= total:
            return 0
        t = ticket // parts
        part = ticket - t * parts
        if not _wait_until_done(counters, t * parts, pause):  # every state of step t is in z[t]
            return -1
        status = _forward_step(sgemm, w, z, gates, cells, tanh_c, features, t, bounds[part], bounds[part + 1])
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


@_jit
def lstm_backward(sgemm, pause, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols, partials, bounds, counters):
    """Backward through time. With one part each step adds W_hh.T @ dG_t to dh[t] itself. With
    several, a step's task writes its part's share of that product, over all H units, into
    ``partials[t % 2, part]`` (2, parts, H, N), and the next step's task of each part first adds
    every part's share for its units to dh[t]: one meeting per step, and only (H / parts, N) of
    each other part's results cross to the thread (every part's gate gradients would, were the
    product split by output units). After the loop the caller adds ``partials[0]`` to dh[0]."""
    length = gates.shape[0]
    parts = bounds.shape[0] - 1
    total = length * parts
    while True:
        ticket = _take_ticket(counters)
        if ticket >= total:
            return 0
        step = ticket // parts
        part = ticket - step * parts
        t = length - 1 - step
        lo, hi = bounds[part], bounds[part + 1]
        if not _wait_until_done(counters, step * parts, pause):  # every share of step t + 1 is in
            return -1
        if parts == 1:
            _gate_gradients(gates, cells, tanh_c, dh, dc, d_cols, t, lo, hi)
            status = _state_gradient(sgemm, w_hh_t, d_cols, dh[t], t, lo, hi, _ONE)
        else:
            if step > 0:
                dh_units = dh[t + 1, lo:hi]
                for q in range(parts):
                    dh_units += partials[(t + 1) % 2, q, lo:hi]
            _gate_gradients(gates, cells, tanh_c, dh, dc, d_cols, t, lo, hi)
            status = _state_gradient(sgemm, w_hh_t, d_cols, partials[t % 2, part], t, lo, hi, _F(0.0))
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


# Several threads run the same kernel at once, each taking tasks as above, on an OpenMP team:
# numba's prange under its OpenMP layer (the runtime oneDNN's GEMM uses too, so the GEMMs inside
# run on their caller's thread alone).
_jit_threads = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")


@_jit_threads
def lstm_forward_threads(sgemm, pause, w, z, gates, cells, tanh_c, features, bounds, counters, statuses):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_forward(sgemm, pause, w, z, gates, cells, tanh_c, features, bounds, counters)


@_jit_threads
def lstm_backward_threads(
    sgemm, pause, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols, partials, bounds, counters, statuses
):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_backward(
            sgemm, pause, w_hh_t, gates, cells, tanh_c, dh, dc, d_cols, partials, bounds, counters
        )
