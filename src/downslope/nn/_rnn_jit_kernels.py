"""numba loops of the LSTM sequence kernel (see ``_rnn_jit`` for why and when they run).

Importing this module imports numba; ``_rnn_jit.kernels()`` does, on the first LSTM call that can
use it. The functions compile on first use and are cached on disk (``cache=True``). The layouts are
batch-major, PyTorch's own (every array C-contiguous), so the layer's output, the incoming
gradient and the weight-gradient products after the loop need no transposing copies:

* ``gates`` (L, N, 4H): before the forward loop the input projection ``x_t @ W_ih.T + b`` of
  every step; each step adds ``h_t @ W_hh.T`` (its product), then overwrites its block with the
  activations i, f, g, o (the sigmoid gates' weights and biases halved, see ``_rnn_jit``);
  ``w_hh_t`` is that halved W_hh transposed (H, 4H);
* ``packed`` (L + 2, N, H): the layer's states, ``packed[0] = h0``; the forward writes ``h_{t+1}``
  into ``packed[t + 1]``; ``cells`` (L + 1, N, H) with ``cells[0] = c0``; ``tanh_c`` (L, N, H);
* backward: ``dh`` (L + 1, N, H) holds the gradient reaching each output state and gets each
  step's ``dG_t @ W_hh`` added (``w_hh`` the plain W_hh, (4H, H)); ``dc`` (N, H) the gradient
  reaching the cell; ``d_gates`` (L, N, 4H) the pre-activations' gradients.

With several parts (below) the columns of the 4H axis are in the parts' order: each part's i, f,
g and o columns together (the caller permutes the rows of the weights so).

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
# bounds[p], bounds[p + 1]: its gate columns are contiguous, [i, f, g, o] of its units, starting at
# column 4 * lo (with one part that is the plain gate-major order), and its cells, states and
# gradients are those units' columns. The work is a sequence of steps of one task per part; a
# step's tasks need every task of the step before (a step needs all of the previous states).
#
# Every thread that runs a kernel takes tasks in order from one ticket counter, waits until every
# task of the earlier steps is done, runs the task and counts it done. So the tasks are shared
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
def _forward_step(sgemm, w_hh_t, gates, packed, cells, tanh_c, t, lo, hi):
    """Step ``t`` of the units [lo, hi): their columns of the product, then their gates, cell and state."""
    batch, columns = gates.shape[1], gates.shape[2]
    size = hi - lo
    top = 4 * lo  # this part's first gate column
    status = sgemm(
        _N,
        _N,
        batch,
        4 * size,
        w_hh_t.shape[0],
        _ONE,
        packed[t].ctypes.data,
        w_hh_t.shape[0],
        w_hh_t[0, top:].ctypes.data,
        columns,
        _ONE,
        gates[t, 0, top:].ctypes.data,
        columns,
    )
    if status != 0:
        return status
    for j in range(batch):
        # Views with integer indices first and a plain slice last are C-contiguous in numba's
        # typing, so the element loops over them vectorise.
        g = gates[t, j, top : top + 4 * size]
        c_prev = cells[t, j, lo:hi]
        c_new = cells[t + 1, j, lo:hi]
        tc = tanh_c[t, j, lo:hi]
        h = packed[t + 1, j, lo:hi]
        for r in range(size):
            i = _HALF + _HALF * _tanh(g[r])
            f = _HALF + _HALF * _tanh(g[size + r])
            gg = _tanh(g[2 * size + r])
            o = _HALF + _HALF * _tanh(g[3 * size + r])
            c = f * c_prev[r] + i * gg
            tanh_of_c = _tanh(c)
            g[r] = i
            g[size + r] = f
            g[2 * size + r] = gg
            g[3 * size + r] = o
            c_new[r] = c
            tc[r] = tanh_of_c
            h[r] = o * tanh_of_c
    return 0


@_jit
def _gate_gradients(gates, cells, tanh_c, dh, partials, dc, d_gates, t, lo, hi):
    """Step ``t`` of the units [lo, hi), backward: their gates' gradients (into ``d_gates``) and the
    cell's (``dc``). The gradient reaching their states is dh[t + 1] plus, with several parts, every
    part's share of the product of step t + 1 (``partials``, none for the last step)."""
    batch = gates.shape[1]
    size = hi - lo
    top = 4 * lo
    shares = partials.shape[1] if t + 1 < gates.shape[0] else 0
    for j in range(batch):
        grad_h = dh[t + 1, j, lo:hi]
        for q in range(shares):
            grad_h += partials[(t + 1) % 2, q, j, lo:hi]
        g = gates[t, j, top : top + 4 * size]
        d = d_gates[t, j, top : top + 4 * size]
        c_prev = cells[t, j, lo:hi]
        tc = tanh_c[t, j, lo:hi]
        dc_part = dc[j, lo:hi]
        for r in range(size):
            i = g[r]
            f = g[size + r]
            gg = g[2 * size + r]
            o = g[3 * size + r]
            tanh_of_c = tc[r]
            grad_c = dc_part[r] + grad_h[r] * o * (_ONE - tanh_of_c * tanh_of_c)
            d[r] = grad_c * gg * i * (_ONE - i)
            d[size + r] = grad_c * c_prev[r] * f * (_ONE - f)
            d[2 * size + r] = grad_c * i * (_ONE - gg * gg)
            d[3 * size + r] = grad_h[r] * tanh_of_c * o * (_ONE - o)
            dc_part[r] = grad_c * f


@_jit
def _state_gradient(sgemm, w_hh, d_gates, out, t, lo, hi, beta):
    """out (N, H) = beta * out + dG_t[:, columns] @ W_hh[columns], the columns of the units [lo, hi)
    (all of them for one part): ``w_hh`` (4H, H) plain W_hh (its rows in the parts' order)."""
    batch, columns = d_gates.shape[1], d_gates.shape[2]
    top = 4 * lo
    units = w_hh.shape[1]
    return sgemm(
        _N,
        _N,
        batch,
        units,
        4 * (hi - lo),
        _ONE,
        d_gates[t, 0, top:].ctypes.data,
        columns,
        w_hh[top].ctypes.data,
        units,
        beta,
        out.ctypes.data,
        units,
    )


@_jit
def lstm_forward(sgemm, pause, w_hh_t, gates, packed, cells, tanh_c, bounds, counters):
    parts = bounds.shape[0] - 1
    total = gates.shape[0] * parts
    while True:
        ticket = _take_ticket(counters)
        if ticket >= total:
            return 0
        t = ticket // parts
        part = ticket - t * parts
        if not _wait_until_done(counters, t * parts, pause):  # every state of step t is in packed[t]
            return -1
        status = _forward_step(sgemm, w_hh_t, gates, packed, cells, tanh_c, t, bounds[part], bounds[part + 1])
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


@_jit
def lstm_backward(sgemm, pause, w_hh, gates, cells, tanh_c, dh, partials, dc, d_gates, bounds, counters):
    """Backward through time. With one part each step adds dG_t @ W_hh to dh[t] itself. With
    several, a step's task writes its part's share of that product, over all H units, into
    ``partials[t % 2, part]`` (2, parts, N, H), and the next step's task of each part adds every
    part's share for its units: one meeting per step, and only (N, H / parts) of each other part's
    results cross to the thread (every part's gate gradients would, were the product split by
    output units). After the loop the caller adds every share in ``partials[0]`` to dh[0]."""
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
        _gate_gradients(gates, cells, tanh_c, dh, partials, dc, d_gates, t, lo, hi)
        if parts == 1:
            status = _state_gradient(sgemm, w_hh, d_gates, dh[t], t, lo, hi, _ONE)
        else:
            status = _state_gradient(sgemm, w_hh, d_gates, partials[t % 2, part], t, lo, hi, _F(0.0))
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


# Several threads run the same kernel at once, each taking tasks as above, on an OpenMP team:
# numba's prange under its OpenMP layer (the runtime oneDNN's GEMM uses too, so the GEMMs inside
# run on their caller's thread alone).
_jit_threads = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")


@_jit_threads
def lstm_forward_threads(sgemm, pause, w_hh_t, gates, packed, cells, tanh_c, bounds, counters, statuses):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_forward(sgemm, pause, w_hh_t, gates, packed, cells, tanh_c, bounds, counters)


@_jit_threads
def lstm_backward_threads(
    sgemm, pause, w_hh, gates, cells, tanh_c, dh, partials, dc, d_gates, bounds, counters, statuses
):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_backward(
            sgemm, pause, w_hh, gates, cells, tanh_c, dh, partials, dc, d_gates, bounds, counters
        )
