"""numba loops of the LSTM sequence kernel (see ``_rnn_jit`` for why and when they run).

Importing this module imports numba; ``_rnn_jit.kernels()`` does, on the first LSTM call that can
use it. The functions compile on first use and are cached on disk (``cache=True``). The layouts are
batch-major, PyTorch's own (every array C-contiguous), so the layer's output, the incoming
gradient and the weight-gradient products after the loop need no transposing copies:

* ``gates`` (L, N, 4H): before the forward loop the input projection ``x_t @ W_ih.T + b`` of
  every step (``b = b_ih + b_hh`` written there first, the product added); each step adds
  ``h_t @ W_hh.T`` (its product), then overwrites its block with the activations i, f, g, o (the
  sigmoid gates' pre-activations halved there, see ``_rnn_jit``). The products read the layer's
  W_ih (4H, I) and W_hh (4H, H) as they are, transposed by oneDNN (a halved, transposed copy of
  the weights, made at every call, took as long as the whole loop at batch 1), or for batches
  and sequences long enough to repay it a transposed copy of W_hh (H, 4H) (see
  ``_rnn_kernels._lstm_forward_compiled``);
* ``packed`` (L + 2, N, H): the layer's states, ``packed[0] = h0``; the forward writes ``h_{t+1}``
  into ``packed[t + 1]``; ``cells`` (L + 1, N, H) with ``cells[0] = c0``; ``tanh_c`` (L, N, H);
* backward: ``dh`` (L + 1, N, H) holds the gradient reaching each output state and gets each
  step's ``dG_t @ W_hh`` added (``w_hh`` the plain W_hh, (4H, H)); ``dc`` (N, H) the gradient
  reaching the cell; ``d_gates`` (L, N, 4H) the pre-activations' gradients;
* ``active`` (int64, L): the rows ``[0, active[t])`` that have an element at step ``t``. A packed
  batch (sorted longest first) has a prefix of its rows at each step: the others keep their
  state and cell through the step (``_freeze_step``), so each sequence ends, or for the reverse
  direction starts, at its own length. A plain batch has ``active[t] = N`` throughout.

``sgemm`` is oneDNN's ``dnnl_sgemm`` (``gemm.sgemm_function()``), ``pause`` libc's ``sched_yield``;
a kernel returns its first nonzero status, -1 when a task on another thread failed, or 0.
``bounds`` (int64): the first rows of the batch chunks and N (one chunk: ``[0, N]``), and so the
other blocks' bounds; ``counters``: a zeroed int64 array of 3 * 16 the threads running a kernel
at once share (see below).

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
# of the tanh approximation has no branch and the element loops vectorise. fastmath "contract"
# only: a * b + c may become one fused multiply-add (rounded once), which made the forward's gate
# pass 25% faster (0.19 vs 0.25 ms for 50 steps of 32 x 128 units); no other IEEE rule is relaxed.
_MATH = {"contract"}
_jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_MATH)

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


@numba.njit(inline="always", error_model="numpy", fastmath=_MATH)
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


# ---------------------------------------------------------------------- tasks, taken by threads
# The samples of a batch never meet in a recurrent layer: each one's states depend on its own
# inputs only. With several threads the batch is split into chunks of rows, bounds[c] to
# bounds[c + 1], and a chunk is one task: the whole loop over the time steps for those rows, its
# product per step an (rows, H) @ (H, 4H) block on the thread that runs it (oneDNN ran these
# products at the speed of the whole batch's down to 8 rows). The loops of two chunks never wait
# for each other and share no data but the weights.
#
# The large products around the loops are tasks of the same kernel call, in blocks: before the
# forward loops the input projection (blocks of the 4H columns, ``columns``), after the backward
# loops the weight gradients (blocks of the 4H gate rows, ``rows``) and the input gradient (blocks of
# the L * N rows, ``samples``). So a pass is ONE parallel region, not one per product: an OpenMP
# region's end waits for every thread of the team, also for one that is still waking up, and on
# a virtual machine whose idle cores halt such wakes were slow for tens of milliseconds after a
# pause (the tasks let the threads that are there do the work meanwhile).
#
# Every thread that runs a kernel takes tasks in order from one ticket counter; a task of the
# second phase (the loops after the projection, the weight gradients after the loops) first waits
# until every task of the first is done. So one thread alone runs them all, no thread ever waits
# for a task nobody has taken, and a thread that arrives late (an OpenMP worker woken from
# sleep) or is descheduled (two runs at once on the same cores) leaves the tasks it has not taken
# to the others. ``counters``: [0] a failure flag, [_LINE] the next ticket, [2 * _LINE] the tasks
# done (each on a cache line of its own).
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


@numba.njit(inline="always")
def _gemm(sgemm, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """C (m, n) = op(A) @ op(B) + beta * C on the row-major addresses ``a``, ``b``, ``c``."""
    return sgemm(ta, tb, m, n, k, _ONE, a, lda, b, ldb, _F(beta), c, ldc)


@_jit
def _project(sgemm, inputs, w_ih, gates, c0, c1):
    """Columns [c0, c1) of the input projection of every step: gates (L * N, 4H)[:, c0:c1] +=
    X (L * N, I) @ w_ih[c0:c1].T, X the first I columns of ``inputs`` ([X | 1] or X)."""
    samples, width = inputs.shape
    k = w_ih.shape[1]
    columns = gates.shape[2]
    a, b, c = inputs.ctypes.data, w_ih[c0].ctypes.data, gates[0, 0, c0:].ctypes.data
    return _gemm(sgemm, _N, _T, samples, c1 - c0, k, a, width, b, k, 1.0, c, columns)


@_jit
def _weight_gradients(sgemm, d_gates, packed, inputs, dw_hh_t, dw_in_t, c0, c1):
    """Columns [c0, c1) of dW_hh.T = [h_0 .. h_{L-1}].T @ dG and of [dW_ih | db].T = [X | 1].T @ dG,
    dG being ``d_gates`` as (L * N, 4H): transposed, because oneDNN ran these products 10% and 20%
    faster so than as dG.T @ H and dG.T @ [X | 1] (0.84 vs 0.93 ms and 0.27 vs 0.33 ms, 128 units,
    1,600 rows)."""
    length, batch, columns = d_gates.shape
    size = dw_hh_t.shape[0]
    k = inputs.shape[1]
    a, b, c = packed.ctypes.data, d_gates[0, 0, c0:].ctypes.data, dw_hh_t[0, c0:].ctypes.data
    status = _gemm(sgemm, _T, _N, size, c1 - c0, length * batch, a, size, b, columns, 0.0, c, columns)
    if status != 0:
        return status
    a, b, c = inputs.ctypes.data, d_gates[0, 0, c0:].ctypes.data, dw_in_t[0, c0:].ctypes.data
    return _gemm(sgemm, _T, _N, k, c1 - c0, length * batch, a, k, b, columns, 0.0, c, columns)


@_jit
def _input_gradient(sgemm, d_gates, w_ih, dx, n0, n1):
    """Rows [n0, n1) of dX (L * N, I) = dG (L * N, 4H) @ W_ih (4H, I)."""
    columns = d_gates.shape[2]
    batch = d_gates.shape[1]
    features = w_ih.shape[1]
    a, b, c = d_gates[n0 // batch, n0 % batch].ctypes.data, w_ih.ctypes.data, dx[n0].ctypes.data
    return _gemm(sgemm, _N, _N, n1 - n0, features, columns, a, columns, b, features, 0.0, c, features)


@_jit
def _forward_step(sgemm, w_hh, gates, packed, cells, tanh_c, t, j0, j1):
    """Step ``t`` of the batch rows [j0, j1): their rows of the product with ``w_hh`` (W_hh (4H, H)
    itself, or its transposed copy (H, 4H)), then their gates, cells and states. The sigmoid gates'
    pre-activations are halved here (exactly, a power of two): sigmoid(a) = (1 + tanh(a / 2)) / 2."""
    columns = gates.shape[2]
    size = columns // 4
    if j1 <= j0:
        return 0
    a, b, c = packed[t, j0].ctypes.data, w_hh.ctypes.data, gates[t, j0].ctypes.data
    if w_hh.shape[0] == columns:  # W_hh as it is: oneDNN reads it transposed
        status = _gemm(sgemm, _N, _T, j1 - j0, columns, size, a, size, b, size, 1.0, c, columns)
    else:
        status = _gemm(sgemm, _N, _N, j1 - j0, columns, size, a, size, b, columns, 1.0, c, columns)
    if status != 0:
        return status
    for j in range(j0, j1):
        # Views with integer indices first and a plain slice last are C-contiguous in numba's
        # typing, so the element loops over them vectorise.
        g = gates[t, j]
        c_prev = cells[t, j]
        c_new = cells[t + 1, j]
        tc = tanh_c[t, j]
        h = packed[t + 1, j]
        for r in range(size):
            i = _HALF + _HALF * _tanh(_HALF * g[r])
            f = _HALF + _HALF * _tanh(_HALF * g[size + r])
            gg = _tanh(g[2 * size + r])
            o = _HALF + _HALF * _tanh(_HALF * g[3 * size + r])
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
def _freeze_step(gates, packed, cells, tanh_c, t, j0, j1):
    """Step ``t`` of the batch rows [j0, j1) that have no element at this step (a packed batch):
    their state and cell stay as they are, and their gates are set to i = g = o = 0, f = 1, for
    which the backward formulas give zero gate gradients and pass the cell's gradient unchanged."""
    size = gates.shape[2] // 4
    for j in range(j0, j1):
        g = gates[t, j]
        c_prev = cells[t, j]
        c_new = cells[t + 1, j]
        tc = tanh_c[t, j]
        h_prev = packed[t, j]
        h = packed[t + 1, j]
        for r in range(size):
            g[r] = _F(0.0)
            g[size + r] = _ONE
            g[2 * size + r] = _F(0.0)
            g[3 * size + r] = _F(0.0)
            c_new[r] = c_prev[r]
            tc[r] = _F(0.0)
        for r in range(h.shape[0]):
            h[r] = h_prev[r]


@_jit
def _frozen_gradients(dh, d_gates, t, j0, j1):
    """Backward of :func:`_freeze_step`: zero gate gradients, and the state's gradient passes to
    the step before (the cell's, ``dc``, stays as it is)."""
    columns = d_gates.shape[2]
    for j in range(j0, j1):
        d = d_gates[t, j]
        for r in range(columns):
            d[r] = _F(0.0)
        before = dh[t, j]
        after = dh[t + 1, j]
        for r in range(after.shape[0]):
            before[r] += after[r]


@_jit
def _gate_gradients(gates, cells, tanh_c, dh, dc, d_gates, t, j0, j1):
    """Step ``t`` of the batch rows [j0, j1), backward: their gates' gradients (into ``d_gates``)
    and the cells' (``dc``)."""
    size = gates.shape[2] // 4
    for j in range(j0, j1):
        g = gates[t, j]
        d = d_gates[t, j]
        c_prev = cells[t, j]
        tc = tanh_c[t, j]
        grad_h = dh[t + 1, j]
        dc_row = dc[j]
        for r in range(size):
            i = g[r]
            f = g[size + r]
            gg = g[2 * size + r]
            o = g[3 * size + r]
            tanh_of_c = tc[r]
            grad_c = dc_row[r] + grad_h[r] * o * (_ONE - tanh_of_c * tanh_of_c)
            d[r] = grad_c * gg * i * (_ONE - i)
            d[size + r] = grad_c * c_prev[r] * f * (_ONE - f)
            d[2 * size + r] = grad_c * i * (_ONE - gg * gg)
            d[3 * size + r] = grad_h[r] * tanh_of_c * o * (_ONE - o)
            dc_row[r] = grad_c * f


@_jit
def _state_gradient(sgemm, w_hh, d_gates, dh, t, j0, j1):
    """dh[t][j0:j1] += dG_t[j0:j1] @ W_hh (``w_hh`` the plain W_hh, (4H, H))."""
    columns = d_gates.shape[2]
    size = w_hh.shape[1]
    a, b, c = d_gates[t, j0].ctypes.data, w_hh.ctypes.data, dh[t, j0].ctypes.data
    return _gemm(sgemm, _N, _N, j1 - j0, size, columns, a, columns, b, size, 1.0, c, size)


@_jit
def lstm_forward(sgemm, pause, weights, arrays, blocks, counters):
    """The input projection, then the loop over the steps. ``weights`` = (w_ih, w_hh),
    ``arrays`` = (inputs, gates, packed, cells, tanh_c), ``blocks`` = (columns: the projection's
    column blocks, bounds: the batch chunks, active: per step the rows [0, active[t]) that have an
    element, the others keep their state: see :func:`_freeze_step`)."""
    w_ih, w_hh = weights
    inputs, gates, packed, cells, tanh_c = arrays
    columns, bounds, active = blocks
    projections = columns.shape[0] - 1
    total = projections + bounds.shape[0] - 1
    while True:
        ticket = _take_ticket(counters)
        if ticket >= total:
            return 0
        if ticket < projections:
            status = _project(sgemm, inputs, w_ih, gates, columns[ticket], columns[ticket + 1])
        else:
            if not _wait_until_done(counters, projections, pause):  # every column of the projection
                return -1
            j0, j1 = bounds[ticket - projections], bounds[ticket - projections + 1]
            status = 0
            for t in range(gates.shape[0]):
                # rows [0, active[t]) have an element at step t (a packed batch: a prefix)
                split = min(max(active[t], j0), j1)
                status = _forward_step(sgemm, w_hh, gates, packed, cells, tanh_c, t, j0, split)
                if status != 0:
                    break
                if split < j1:
                    _freeze_step(gates, packed, cells, tanh_c, t, split, j1)
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


@_jit
def lstm_backward(sgemm, pause, weights, arrays, grads, blocks, counters):
    """The loop back over the steps, then the weight gradients, transposed, and the input
    gradient. ``weights`` = (w_hh, w_ih), ``arrays`` = (gates, cells, tanh_c, packed, inputs) of
    the forward pass, ``grads`` = (dh, dc, d_gates, dw_hh_t, dw_in_t, dx), ``blocks`` = (bounds:
    the batch chunks, rows: blocks of the 4H gate rows of the weight gradients, none for ``[0]``,
    samples: blocks of the L * N rows of ``dx``, none for ``[0]``, active: as the forward's)."""
    w_hh, w_ih = weights
    gates, cells, tanh_c, packed, inputs = arrays
    dh, dc, d_gates, dw_hh_t, dw_in_t, dx = grads
    bounds, rows, samples, active = blocks
    chunks = bounds.shape[0] - 1
    weight_blocks = rows.shape[0] - 1
    total = chunks + weight_blocks + samples.shape[0] - 1
    while True:
        ticket = _take_ticket(counters)
        if ticket >= total:
            return 0
        status = 0
        if ticket < chunks:
            j0, j1 = bounds[ticket], bounds[ticket + 1]
            for t in range(gates.shape[0] - 1, -1, -1):
                split = min(max(active[t], j0), j1)
                if split > j0:
                    _gate_gradients(gates, cells, tanh_c, dh, dc, d_gates, t, j0, split)
                    status = _state_gradient(sgemm, w_hh, d_gates, dh, t, j0, split)
                    if status != 0:
                        break
                if split < j1:
                    _frozen_gradients(dh, d_gates, t, split, j1)
        else:
            if not _wait_until_done(counters, chunks, pause):  # every gate gradient
                return -1
            block = ticket - chunks
            if block < weight_blocks:
                status = _weight_gradients(
                    sgemm, d_gates, packed, inputs, dw_hh_t, dw_in_t, rows[block], rows[block + 1]
                )
            else:
                block -= weight_blocks
                status = _input_gradient(sgemm, d_gates, w_ih, dx, samples[block], samples[block + 1])
        if status != 0:
            _fail(counters)
            return status
        _count_done(counters)


# Several threads run the same kernel at once, each taking tasks as above, on an OpenMP team:
# numba's prange under its OpenMP layer (the runtime oneDNN's GEMM uses too, so the GEMMs inside
# run on their caller's thread alone).
_jit_threads = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_MATH)


@_jit_threads
def lstm_forward_threads(sgemm, pause, weights, arrays, blocks, counters, statuses):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_forward(sgemm, pause, weights, arrays, blocks, counters)


@_jit_threads
def lstm_backward_threads(sgemm, pause, weights, arrays, grads, blocks, counters, statuses):
    for thread in numba.prange(statuses.shape[0]):
        statuses[thread] = lstm_backward(sgemm, pause, weights, arrays, grads, blocks, counters)
