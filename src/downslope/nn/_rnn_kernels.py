"""Fused recurrent kernels: one direction of one RNN/LSTM/GRU layer over a whole sequence as ONE op.

Unrolled into basic ops, a 50-step LSTM records ~20 graph nodes per step, and each node's
gradient rule allocates its own temporaries; the Python overhead then costs more than the
arithmetic. Here the sequence is one node:

* forward: per step one or two matrix products (the LSTM folds the input projection and the bias
  into its recurrent product; the GRU and RNN project the input separately) and one fused gate
  computation, written into preallocated buffers (no allocation inside the loop);
* backward through time, in the same node: the per-step derivative factors of the gates are
  computed for all steps at once (long vectorised passes), so that each step's loop body is the
  recurrent product with W_hh and two or three multiply-adds; the weight gradients are then ONE
  matrix product each over all steps (``dG.T @ H_prev`` and ``dG.T @ X``).

Matrix products go through :mod:`downslope.gemm` (oneDNN's GEMM for float32 host arrays when the
``onednn`` extra is installed, NumPy's ``matmul`` otherwise); the per-step ones through
``gemm.stepper``, which works out pointers and layouts once per loop. For float32 host arrays
with both the ``jit`` and ``onednn`` extras, the LSTM's loops over time steps run compiled
(``_rnn_jit``): one call per pass, each step one GEMM and one fused pass over its gates, on
PyTorch's batch-major layouts (compiled loops have no strided-slice penalty, see below, so the
output, the incoming gradient and the weight-gradient products need no transposing copies).

The LSTM and GRU run "gate-major": per step ``W_hh (G*H, H) @ h.T (H, N)``, so each gate of a step
is a contiguous (H, N) block (NumPy's element-wise ops on the strided gate slices of the
``(N, G*H)`` layout took ~4x as long). One transposing copy at the end of each pass puts the
results back in PyTorch's layouts; the Elman RNN, which has no gate slices, keeps ``(N, H)``.

The sigmoid gates use ``sigmoid(a) = (1 + tanh(a / 2)) / 2``: the rows of the weights and biases
that feed sigmoid gates are halved once per call (exact in floating point), so a single ``tanh``
over all gates plus one multiply-add gives every gate.

The node's value packs what the layer returns (``L`` = sequence length, steps in processing
order, which is reversed time for the backward direction of a bidirectional layer):
``packed[0] = h0``, ``packed[1:L+1] = h_1..h_L`` and, for the LSTM, ``packed[L+1] = c_L``. The
layer reads the output sequence, ``h_n`` and ``c_n`` from it by slicing.

One code path for every device: the arrays are made in the input's namespace (``namespace_of``:
NumPy on the host, CuPy on a GPU, the strict stand-in in tests), the NumPy calls with ``out=``
(``np.matmul``, ``np.tanh``, ``np.copyto``...) dispatch to that namespace, and the scratch buffers
come from ``_workspace`` (its host pool for NumPy arrays, a fresh array of the namespace otherwise).
Nothing is read back to the host.

The gradient rule is plain array code (not recorded); under ``create_graph=True`` (double
backward) the rule instead reruns the sequence step by step with the cells' recorded ops and
differentiates that, so gradient penalties and meta-learning work through recurrent layers too
(slower: it is taken only when a gradient is to be differentiated again).

Gate order and formulas follow PyTorch: LSTM (i, f, g, o), GRU (r, z, n) with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) * n + z * h``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import gemm, parallel
from .. import workspace as _workspace
from ..backend import namespace_of
from ..errors import ArgumentError, StateError
from ..tensor import Tensor, record_op
from . import _rnn_jit
from ._arrays import array_like

__all__ = ["rnn_sequence"]


def rnn_sequence(
    mode: str,
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    reverse: bool = False,
    active: Any = None,
) -> Tensor:
    """Run one direction of a recurrent layer over ``x`` (L, N, I); returns the packed states.

    ``mode`` is ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``; ``h0`` (and ``c0`` for the
    LSTM) is ``(N, H)``; weights and biases have PyTorch's shapes. The result has shape
    ``(L + 2, N, H)`` for the LSTM and ``(L + 1, N, H)`` otherwise (see the module docstring).

    ``active`` (a packed batch): a host integer array of ``L`` row counts, PyTorch's
    ``batch_sizes`` of a batch sorted longest first, so non-increasing: at time step ``t`` only the
    rows ``[0, active[t])`` have an element. The other rows keep their state (and cell) through the
    step, so each sequence's final state is the one at its own last element and the reverse
    direction starts each sequence at its own end; their gradients pass through unchanged.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn._rnn_kernels import rnn_sequence
        >>> w_ih, w_hh = ds.ones(4, 2) * 0.1, ds.ones(4, 4) * 0.1
        >>> packed = rnn_sequence("RNN_TANH", ds.ones(3, 1, 2), ds.zeros(1, 4), None, w_ih, w_hh, None, None)
        >>> packed.shape
        downslope.Size([4, 1, 4])
    """
    parents: tuple[Tensor, ...] = (x, h0) + ((c0,) if c0 is not None else ()) + (w_ih, w_hh)
    has_bias = b_ih is not None and b_hh is not None
    if has_bias:
        assert b_ih is not None and b_hh is not None
        parents += (b_ih, b_hh)
    steps = _processing_steps(active, x.shape[0], x.shape[1], reverse)
    # Every array below is made in the input's namespace (NumPy, CuPy, or the strict test stand-in):
    # the kernels' NumPy calls with ``out=`` dispatch to it; creation goes through ``xp`` or ``like=``.
    xa = x.array[::-1] if reverse else x.array
    bi = b_ih.array if has_bias and b_ih is not None else None
    bh = b_hh.array if has_bias and b_hh is not None else None
    if mode == "LSTM":
        assert c0 is not None
        packed, saved = _lstm_forward(xa, h0.array, c0.array, w_ih.array, w_hh.array, bi, bh, steps)
    elif mode == "GRU":
        packed, saved = _gru_forward(xa, h0.array, w_ih.array, w_hh.array, bi, bh, steps)
    else:
        packed, saved = _rnn_forward(xa, h0.array, w_ih.array, w_hh.array, bi, bh, mode == "RNN_RELU", steps)
    return record_op(packed, parents, _rnn_sequence_vjp, (mode, reverse, has_bias, xa, saved, steps))


def _processing_steps(active: Any, length: int, batch: int, reverse: bool) -> np.ndarray | None:
    """``active`` in the order the steps run (reversed for the backward direction) as host int64,
    or None when every row has an element at every step (a plain batch)."""
    if active is None:
        return None
    counts = np.asarray(active, dtype=np.int64).reshape(-1)  # host: row counts, PyTorch's batch_sizes
    if counts.shape[0] != length or (length and (counts.max() > batch or counts.min() < 0)):
        shown = counts.tolist()  # host: the row counts are host data
        raise ArgumentError(f"rnn_sequence: expected {length} active row counts in [0, {batch}], got {shown}")
    if length > 1 and bool((counts[1:] > counts[:-1]).any()):  # host: the row counts are host data
        shown = counts.tolist()  # host: the row counts are host data
        raise ArgumentError(f"rnn_sequence: the active row counts must not increase, got {shown}")
    if length == 0 or counts.min() == batch:
        return None
    return np.ascontiguousarray(counts[::-1]) if reverse else counts  # host: the row counts are host data


def _gate_scale(sigmoid_gates: tuple[int, ...], gates: int, size: int, like: Any) -> Any:
    """(gates*size,) factors in ``like``'s namespace and dtype: 0.5 for rows feeding a sigmoid gate, 1 for the others."""
    scale = namespace_of(like).ones((gates, size), dtype=like.dtype)
    for k in sigmoid_gates:
        scale[k] = 0.5
    return scale.reshape(-1)


def _input_projection(x: np.ndarray, w_ih: np.ndarray, bias: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """``x @ (scale * W_ih).T + scale * bias`` for all time steps in one GEMM: a borrowed (L, N, rows)."""
    length, batch, features = x.shape
    w = w_ih if scale is None else w_ih * scale[:, None]
    out = _workspace.take((length, batch, w.shape[0]), x.dtype, like=x)
    gemm.matmul(x.reshape(length * batch, features), w.T, out=out.reshape(length * batch, w.shape[0]))
    if bias is not None:
        out += bias if scale is None else bias * scale
    return out


# ---------------------------------------------------------------------- LSTM
# The NumPy formulation runs "gate-major" (the compiled loops: see _lstm_forward_compiled): per step the product is W (4H, K) @ z_t (K, N), so the gates of a step
# form a (4H, N) block whose i, f, g, o parts are contiguous (H, N) blocks, and states and cells are
# kept as (H, N). On the interleaved (N, 4H) layout every gate slice is a strided view, and NumPy's
# element-wise ops on such views took ~4x as long as on contiguous blocks (measured: 2.3 vs 0.56 us
# for a 32x128 multiply), which was most of the per-step cost besides the GEMM.
#
# One product per step gives all four pre-activations, bias included: W = [W_ih | W_hh | b] and
# z_t = [x_t.T; h_t.T; 1] (K = I + H + 1 rows; the ones row only with a bias). The x rows of every
# z_t are filled by one copy up front and each step writes h_{t+1} into the h rows of z_{t+1}; one
# (4H, I+H+1) @ (I+H+1, N) product took 21.9 us on oneDNN where the separate input projection and
# recurrent product took 5.8 + 17.9 us plus a bias pass. The backward pass gets d[W_ih | W_hh | b]
# the same way, as ONE product dG @ [X; H; 1].T over all steps after its loop.
def _lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, steps=None):
    length, batch, features = x.shape
    gain = length * _compiled_gain_per_step(batch, h0.shape[-1])
    compiled = _rnn_jit.kernels(x, w_hh, h0, c0, gain_us=gain) if batch else None
    if compiled is not None:  # the whole loop compiled (numba and oneDNN): see _rnn_jit
        return _lstm_forward_compiled(compiled, x, h0, c0, w_ih, w_hh, b_ih, b_hh, steps)
    size = h0.shape[-1]
    dt = x.dtype
    xp = namespace_of(x)
    scale = _gate_scale((0, 1, 3), 4, size, x)  # i, f, o are sigmoid gates; g is tanh
    has_bias = b_ih is not None
    k = features + size + (1 if has_bias else 0)
    w = xp.empty((4 * size, k), dtype=dt)  # [W_ih | W_hh | b], the sigmoid gates' rows halved
    np.multiply(w_ih, scale[:, None], out=w[:, :features])
    np.multiply(w_hh, scale[:, None], out=w[:, features : features + size])
    if has_bias:
        np.add(b_ih, b_hh, out=w[:, -1])
        w[:, -1] *= scale
    # z[t] = [x_t.T; h_t.T; 1]: h_0 .. h_L in the h rows (z[L] holds only h_L, for the packing below).
    z = _workspace.take((length + 1, k, batch), dt, like=x)
    np.copyto(z[:length, :features], x.transpose(0, 2, 1))
    if has_bias:
        z[:, -1] = 1
    hs = z[:, features : features + size]  # (L + 1, H, N) views of the h rows
    hs[0] = h0.T
    gates = _workspace.take((length, 4 * size, batch), dt, like=x)  # the gate activations of each step
    cells = _workspace.take((length + 1, size, batch), dt, like=x)
    cells[0] = c0.T
    tanh_c = _workspace.take((length, size, batch), dt, like=x)
    _lstm_forward_steps(w, z, gates, cells, tanh_c, features, steps)
    packed = _workspace.lend((length + 2, batch, size), dt, like=x)  # the op's output: pooled memory
    np.copyto(packed[: length + 1], hs.transpose(0, 2, 1))
    np.copyto(packed[length + 1], cells[length].T)
    # Kept for the backward pass, leased: the workspace gets them back when the node is freed.
    lease = _workspace.Lease
    return packed, _GateMajor(lease(gates), lease(cells), lease(tanh_c), lease(z))


def _compiled_gain_per_step(batch: int, size: int) -> float:
    """The microseconds the compiled loops save a time step (forward and backward) over the NumPy
    formulation, estimated for ``_rnn_jit``'s start rule. Measured (medians; a two-core AMD EPYC
    shared with other processes) for 64, 1024, 4096, 16384, 32768 and 131072 gate values a step
    (batch x 4 x units): 11, 16-18, 25-70, 51-72, 108-124 and 125-285 us of CPU on one thread; 30 us
    (1024) in wall time on two threads. This line is near those for small layers and above them for
    large ones (which then start the loops sooner: they repay the start soonest)."""
    return 24.0 + batch * 4 * size / 150.0


class _GateMajor(NamedTuple):
    """What the NumPy formulation's forward keeps for the backward pass (leased arrays)."""

    gates: _workspace.Lease
    cells: _workspace.Lease
    tanh_c: _workspace.Lease
    z: _workspace.Lease


class _BatchMajor(NamedTuple):
    """What the compiled forward keeps for the backward pass: leased arrays in the layouts of
    ``_rnn_jit_kernels`` and the chunks of the batch its threads took."""

    gates: _workspace.Lease
    cells: _workspace.Lease
    tanh_c: _workspace.Lease
    inputs: _workspace.Lease  # [X | 1] (L * N, I + 1), or X without a bias
    bounds: tuple[int, ...]


def _lstm_forward_compiled(compiled, x, h0, c0, w_ih, w_hh, b_ih, b_hh, steps=None):
    """The forward pass on the compiled loop, batch-major (see ``_rnn_jit_kernels``): the input
    projection of every step in one product up front (``X @ W_ih.T`` added to the summed biases),
    then per step ``h_t @ W_hh.T`` and the gates. In PyTorch's layouts throughout, so the layer's
    output is written in place (no transposing copies), and the products read the weights as they
    are (no copies of them either: at batch 1 a scaled, transposed copy of a 512-unit layer's
    weights cost as much as its 50 steps)."""
    length, batch, features = x.shape
    size = h0.shape[-1]
    dt = x.dtype
    bounds = _batch_chunks(x, length, batch, size)
    has_bias = b_ih is not None
    # [X | 1]: kept for the backward pass, whose dG.T @ [X | 1] is [dW_ih | db]
    inputs = _workspace.take((length * batch, features + has_bias), dt, like=x)
    inputs.reshape(length, batch, features + has_bias)[:, :, :features] = x  # one copy, also from the reversed view
    gates = _workspace.take((length, batch, 4 * size), dt, like=x)
    if has_bias:
        inputs[:, features] = 1
        gates[...] = b_ih + b_hh  # the projection's product is added to the biases
    else:
        gates[...] = 0
    w_ih = np.ascontiguousarray(w_ih)  # host: numba path (C order)
    if batch >= TRANSPOSED_STEP_MIN_ROWS and length >= TRANSPOSED_STEP_MIN_STEPS:
        w_hh = np.ascontiguousarray(w_hh.T)  # host: numba path (the steps' products on (H, 4H))
    else:
        w_hh = np.ascontiguousarray(w_hh)  # host: numba path (oneDNN reads it transposed)
    packed = _workspace.lend((length + 2, batch, size), dt, like=x)  # the op's output: pooled memory
    packed[0] = h0
    cells = _workspace.take((length + 1, batch, size), dt, like=x)
    cells[0] = c0
    tanh_c = _workspace.take((length, batch, size), dt, like=x)
    chunks = len(bounds) - 1
    weights, arrays = (w_ih, w_hh), (inputs, gates, packed, cells, tanh_c)
    active = _full_steps(length, batch) if steps is None else steps
    blocks = (_edges(_blocks(4 * size, chunks)), _edges(bounds), active)
    _run_tasks(compiled, "lstm_forward", chunks, 4 * size * size * batch, weights, arrays, blocks)
    packed[length + 1] = cells[length]
    lease = _workspace.Lease
    return packed, _BatchMajor(lease(gates), lease(cells), lease(tanh_c), lease(inputs), bounds)


#: The compiled LSTM forward's per-step products read W_hh (4H, H) transposed by oneDNN, or, from
#: this many batch rows and steps, a transposed copy (H, 4H) made per call: oneDNN's products of
#: 8 or more rows ran faster on the copy, enough to repay it over about 12 (128 units) to 37 (512
#: units) steps. Measured (one thread, AMD EPYC, ms per 50 steps, copy vs transposed read): 512
#: units, batch 8 4.8 vs 8.5, batch 32 16.3 vs 22.6, the copy 2.7; 256 units, batch 16 2.4 vs 3.3,
#: the copy 0.31; batch 1 and 4 within noise of each other.
TRANSPOSED_STEP_MIN_ROWS = 8
TRANSPOSED_STEP_MIN_STEPS = 32


def _full_steps(length: int, batch: int) -> np.ndarray:
    """Every row active at every step, as the compiled loops take it."""
    return np.full(length, batch, dtype=np.int64)  # host: the compiled loops' arguments


#: Fewest batch rows per chunk when the compiled LSTM loops split a batch over threads: oneDNN ran
#: the per-step products of 8 rows at 95% of the speed of 32 (0.236 vs 0.892 ms for 50 steps of a
#: 128-unit layer; AMD EPYC).
MIN_ROWS_PER_CHUNK = 8


def _batch_chunks(x: np.ndarray, length: int, batch: int, size: int) -> tuple[int, ...]:
    """Bounds of the chunks of the batch the compiled loops split a layer's rows into, one per
    oneDNN thread (see ``downslope.parallel``) and at most one per thread of numba's OpenMP team:
    (0, batch) for one chunk.

    Measured with two threads (a 128-unit layer, 50 steps, batch 32; AMD EPYC, two cores), against
    the hidden units split into two parts that met at every step: the forward loop 0.78 -> 0.66 ms,
    the backward loop 0.86 -> 0.71 ms. Against oneDNN splitting each step's product over its two
    threads with the gate arithmetic on one, two such processes at once on the two cores ran at
    6 instead of 58 ms per step (each step's product on two threads waits for a thread the other
    process has the core of, 50 times per loop)."""
    work = length * 4 * size * size * batch // parallel.MULTIPLY_ADDS_PER_NS
    count = parallel.parts(x, batch // MIN_ROWS_PER_CHUNK, work)
    if count > 1:
        count = min(count, _rnn_jit.threads())
    return tuple(batch * i // count for i in range(count + 1))


def _blocks(n: int, count: int) -> tuple[int, ...]:
    """Bounds of ``count`` consecutive blocks of ``range(n)`` (none for ``count == 0``)."""
    return tuple(n * i // count for i in range(count + 1)) if count else (0,)


def _edges(bounds: tuple[int, ...]) -> np.ndarray:
    """Bounds as the compiled kernels take them."""
    return np.asarray(bounds, dtype=np.int64)  # host: the compiled loops' arguments


def _run_tasks(compiled: Any, kernel: str, threads: int, step_product: int, *arguments: Any) -> None:
    """The compiled ``kernel`` over ``arguments``, its tasks taken by ``threads`` threads (this one
    alone for one); raises on a failed status. ``step_product``: the multiply-adds of one step's
    product (one thread's products on that thread alone when small, as ``gemm.stepper``'s are: see
    ``gemm.STEP_THREADED_MULTIPLY_ADDS``)."""
    sgemm, pause = gemm.sgemm_function(), _rnn_jit.pause_function()
    counters = np.zeros(3 * 16, dtype=np.int64)  # host: the compiled loops' counters (see _rnn_jit_kernels)
    if threads == 1:
        count = gemm.get_num_threads() or 1
        alone = gemm.steps_on_one_thread(step_product)
        if alone:
            gemm.set_num_threads(1)
        try:
            status = getattr(compiled, kernel)(sgemm, pause, *arguments, counters)
        finally:
            if alone:
                gemm.set_num_threads(count)
        _check(status)
        return
    statuses = np.zeros(threads, dtype=np.int64)  # host: the compiled loops' results
    getattr(compiled, kernel + "_threads")(sgemm, pause, *arguments, counters, statuses)
    failed = [int(status) for status in statuses if status > 0]
    if failed:
        _check(failed[0])


#: The NumPy formulation's whole-sequence products (the input and weight gradients) smaller than this
#: run on one thread: each product on several threads ends in a wait for every thread, and with
#: another process on the cores that wait is for a thread whose core it has. A batch of 8 and 32
#: units over 20 steps (products of 1M multiply-adds) took 1.2-2.6 ms a pass with them on two
#: threads and 0.75 ms on one (two cores shared with other processes, load 8-11).
SEQUENCE_THREADED_MULTIPLY_ADDS = 4_000_000


def _sequence_matmul(a: Any, b: Any) -> Any:
    """``gemm.matmul(a, b)`` for a whole sequence's product, on one thread when it is small (see
    ``SEQUENCE_THREADED_MULTIPLY_ADDS``)."""
    count = gemm.get_num_threads() if type(a) is np.ndarray and a.dtype == np.float32 else None  # oneDNN products
    if not count or count == 1 or a.shape[0] * a.shape[1] * b.shape[1] >= SEQUENCE_THREADED_MULTIPLY_ADDS:
        return gemm.matmul(a, b)
    gemm.set_num_threads(1)
    try:
        return gemm.matmul(a, b)
    finally:
        gemm.set_num_threads(count)


def _lstm_forward_steps(w, z, gates, cells, tanh_c, features, steps=None):
    """The forward loop in NumPy calls (any namespace): per step the product, then the gates; the
    rows past ``steps[t]`` then keep their state and cell, their gates set to i = g = o = 0, f = 1
    (for which the backward pass's factors are zero and the cell's gradient passes unchanged)."""
    length, rows, batch = gates.shape
    size = rows // 4
    hs = z[:, features : features + size]
    scale = _gate_scale((0, 1, 3), 4, size, gates)
    scale_block = np.repeat(scale[:, None], batch, axis=1)
    shift_block = 1 - scale_block  # sigmoid(a) = tanh(a/2) * 0.5 + 0.5; tanh gates: * 1 + 0
    ig = namespace_of(gates).empty((size, batch), dtype=gates.dtype)
    product = gemm.stepper(w, z[:length], gates)
    gate = gates.reshape(length, 4, size, batch)
    for t in range(length):
        product(t)
        g = gates[t]
        np.tanh(g, out=g)
        g *= scale_block
        g += shift_block
        i, f, gg, o = gate[t]
        c = cells[t + 1]
        np.multiply(f, cells[t], out=c)
        np.multiply(i, gg, out=ig)
        c += ig
        np.tanh(c, out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
        if steps is not None and steps[t] < batch:
            a = int(steps[t])  # host: a row count from the host batch_sizes
            c[:, a:] = cells[t][:, a:]
            hs[t + 1][:, a:] = hs[t][:, a:]
            gates[t][:, a:] = 0
            f[:, a:] = 1


def _check(status: int) -> None:
    if status:
        raise StateError(f"nn.LSTM: oneDNN's sgemm failed with status {status} in the compiled recurrent loop")


def _lstm_backward(dp, packed, saved, x, w_ih, w_hh, needs, steps=None):
    """Returns (dx, dh0, dc0, dW_ih, dW_hh, db) (None where not needed; db is both biases' gradient)."""
    if isinstance(saved, _BatchMajor):
        compiled = _rnn_jit.kernels(dp, w_hh)
        if compiled is not None:
            return _lstm_backward_compiled(compiled, dp, packed, saved, x, w_ih, w_hh, needs, steps)
        saved = _to_gate_major(saved, packed, x, has_bias=len(needs) > 5)  # the compiled loops were switched off
    gates, cells, tanh_c, z = (lease.array for lease in saved)
    length, rows, batch = gates.shape
    size = rows // 4
    features = w_ih.shape[1]
    dt = gates.dtype
    xp = namespace_of(gates)
    # dh of every step, (H, N) each: the output's gradient, to which each step adds W_hh.T @ dG (the
    # gradient reaching the previous state) in its product; dc the gradient reaching the cell.
    dh = _workspace.take((length + 1, size, batch), dt, like=gates)
    np.copyto(dh, dp[: length + 1].transpose(0, 2, 1))
    dc = dp[length + 1].T.copy()  # a copy even when the transpose is contiguous: it is updated in place
    # dG with time and batch along the columns, (4H, L, N): the input gradient and the weight
    # gradients are then ONE product each over all steps (accumulated step by step, the weight
    # gradient took 1.6x as long).
    d_cols = _workspace.take((rows, length, batch), dt, like=gates)
    _lstm_backward_steps(gates, cells, tanh_c, w_hh, dh, dc, d_cols, steps)
    dx = dw = None
    k = z.shape[1]
    d_flat = d_cols.reshape(rows, length * batch)
    if needs[0]:
        dx = _sequence_matmul(d_flat.T, w_ih).reshape(length, batch, features)
    if any(needs[3:]):  # d[W_ih | W_hh | b] = dG @ [X; H; 1].T
        z_cols = _workspace.take((k, length, batch), dt, like=gates)
        np.copyto(z_cols, z[:length].transpose(1, 0, 2))
        dw = _sequence_matmul(d_flat, z_cols.reshape(k, length * batch).T)
        _workspace.give(z_cols)
    _workspace.give(d_cols)
    dh0 = dh[0].T.copy()  # a copy, never a view: with batch 1 the transpose is contiguous, and dh goes back to the pool
    _workspace.give(dh)
    dw_ih = dw_hh = db = None
    if dw is not None:  # contiguous copies (small): each parameter gets an array of its own
        dw_ih = xp.ascontiguousarray(dw[:, :features])
        dw_hh = xp.ascontiguousarray(dw[:, features : features + size])
        db = xp.ascontiguousarray(dw[:, -1]) if k > features + size else None
    return dx, dh0, xp.ascontiguousarray(dc.T), dw_ih, dw_hh, db


def _lstm_backward_compiled(compiled, dp, packed, saved, x, w_ih, w_hh, needs, steps=None):
    """The backward pass on the compiled loop (see ``_rnn_jit_kernels``), with the input and weight
    gradients after it as tasks of the same call, reading the forward's arrays as they are:
    ``dW_hh.T = [h_0 .. h_{L-1}].T @ dG`` (``packed``), ``[dW_ih | db].T = [X | 1].T @ dG``,
    ``dX = dG @ W_ih``."""
    gates, cells, tanh_c, inputs = (a.array for a in saved[:4])
    length, batch, rows = gates.shape
    size = rows // 4
    features = w_ih.shape[1]
    dt = gates.dtype
    dh = _workspace.take((length + 1, batch, size), dt, like=gates)
    np.copyto(dh, dp[: length + 1])
    dc = dp[length + 1].copy()  # updated in place
    d_gates = _workspace.take((length, batch, rows), dt, like=gates)
    chunks = len(saved.bounds) - 1
    weights_needed = needs[3] or needs[4] or any(needs[5:])
    dw_hh_t = np.empty((size, rows), dtype=dt)  # host: numba path
    dw_in_t = np.empty((inputs.shape[1], rows), dtype=dt)  # host: numba path
    dx = np.empty((length * batch if needs[0] else 0, features), dtype=dt)  # host: numba path
    weights = (np.ascontiguousarray(w_hh), np.ascontiguousarray(w_ih))  # host: numba path
    arrays = (gates, cells, tanh_c, packed, inputs)
    grads = (dh, dc, d_gates, dw_hh_t, dw_in_t, dx)
    blocks = (
        _edges(saved.bounds),
        _edges(_blocks(rows, chunks if weights_needed else 0)),  # the weight gradients' row blocks
        _edges(_blocks(length * batch, chunks if needs[0] else 0)),  # the input gradient's
        _full_steps(length, batch) if steps is None else steps,
    )
    _run_tasks(compiled, "lstm_backward", chunks, 4 * size * size * batch, weights, arrays, grads, blocks)
    _workspace.give(d_gates)
    dh0 = dh[0].copy()
    _workspace.give(dh)
    own = np.ascontiguousarray  # host: numba path
    dw_ih = own(dw_in_t[:features].T) if needs[3] else None
    db = dw_in_t[features].copy() if any(needs[5:]) else None
    return (
        dx.reshape(length, batch, features) if needs[0] else None,
        dh0,
        dc,
        dw_ih,
        own(dw_hh_t.T) if needs[4] else None,
        db,
    )


def _to_gate_major(saved: _BatchMajor, packed: np.ndarray, x: np.ndarray, has_bias: bool) -> _GateMajor:
    """The compiled forward's saved arrays in the NumPy formulation's layouts (for a backward pass
    run after the compiled loops were switched off)."""
    gates, cells, tanh_c = saved.gates.array, saved.cells.array, saved.tanh_c.array
    length, batch, features = x.shape
    size = cells.shape[2]
    z = _workspace.take((length + 1, features + size + has_bias, batch), gates.dtype, like=gates)
    z[:length, :features] = x.transpose(0, 2, 1)
    z[:, features : features + size] = packed[: length + 1].transpose(0, 2, 1)
    if has_bias:
        z[:, -1] = 1

    def leased_transpose(a: np.ndarray) -> _workspace.Lease:  # (L, N, R) -> (L, R, N)
        copy = _workspace.take((a.shape[0], a.shape[2], a.shape[1]), a.dtype, like=a)
        np.copyto(copy, a.transpose(0, 2, 1))
        return _workspace.Lease(copy)

    return _GateMajor(leased_transpose(gates), leased_transpose(cells), leased_transpose(tanh_c), _workspace.Lease(z))


def _lstm_backward_steps(gates, cells, tanh_c, w_hh, dh, dc, d_cols, steps=None):
    """The backward loop in NumPy calls (any namespace); fills ``d_cols`` and updates ``dh``, ``dc``.
    The rows past ``steps[t]`` kept their state through step ``t``: their gates' factors are zero
    (see ``_lstm_forward_steps``) and their state's gradient passes to the step before."""
    length, rows, batch = gates.shape
    size = rows // 4
    dt = gates.dtype
    i, f, g, o = (gates[:, k * size : (k + 1) * size] for k in range(4))
    # Per-step factors, all steps at once, as rows of one (5H, N) block per step:
    # dG_i = dc * g i (1-i), dG_f = dc * c_prev f (1-f), dG_g = dc * i (1-g^2), dG_o = dh * tanh(c) o (1-o),
    # and the fifth: dc gets dh * o (1-tanh(c)^2). dh then multiplies rows 3H:5H in one call.
    factors = _workspace.take((length, 5 * size, batch), dt, like=gates)
    fi, ff, fg, fo, to_cell = (factors[:, k * size : (k + 1) * size] for k in range(5))
    np.subtract(1, i, out=fi)
    fi *= i
    fi *= g
    np.subtract(1, f, out=ff)
    ff *= f
    ff *= cells[:length]
    np.multiply(g, g, out=fg)
    np.subtract(1, fg, out=fg)
    fg *= i
    np.subtract(1, o, out=fo)
    fo *= o
    fo *= tanh_c
    np.multiply(tanh_c, tanh_c, out=to_cell)
    np.subtract(1, to_cell, out=to_cell)
    to_cell *= o
    d = _workspace.take((length, 5 * size, batch), dt, like=gates)  # rows :4H are dG; rows 4H: scratch
    d_gates = d[:, :rows]
    to_state = gemm.stepper(w_hh.T, d_gates, dh[:length], accumulate=True)
    factor = factors.reshape(length, 5, size, batch)
    grad = d.reshape(length, 5, size, batch)
    for t in range(length - 1, -1, -1):
        np.multiply(dh[t + 1], factor[t, 3:], out=grad[t, 3:])
        dc += grad[t, 4]
        np.multiply(dc, factor[t, :3], out=grad[t, :3])
        dc *= f[t]
        to_state(t)
        if steps is not None and steps[t] < batch:
            a = int(steps[t])  # host: a row count from the host batch_sizes
            dh[t][:, a:] += dh[t + 1][:, a:]
    np.copyto(d_cols, d_gates.transpose(1, 0, 2))
    _workspace.give(factors, d)


# ---------------------------------------------------------------------- GRU
# Gate-major like the LSTM: per step W_hh (3H, H) @ h.T (H, N), so r, z and n are contiguous (H, N)
# blocks of the step's (3H, N) block.
def _gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, steps=None):
    length, batch, _ = x.shape
    size = h0.shape[-1]
    dt = x.dtype
    xp = namespace_of(x)
    scale = _gate_scale((0, 1), 3, size, x)  # r, z are sigmoid gates; n is tanh
    acts = _workspace.take((length, 3 * size, batch), dt, like=x)  # the input projection, then r, z, n step by step
    projection = gemm.stepper(w_ih * scale[:, None], x.transpose(0, 2, 1), acts)
    for t in range(length):
        projection(t)
    if b_ih is not None:  # added as a (3H, N) block, much faster than a (3H, 1) column broadcast
        acts += np.repeat((b_ih * scale)[:, None], batch, axis=1)
    w_hh_s = w_hh * scale[:, None]
    b_hh_block = None if b_hh is None else np.repeat((b_hh * scale)[:, None], batch, axis=1)
    states = _workspace.take((length + 1, size, batch), dt, like=x)  # h0.T, h_1.T .. h_L.T
    states[0] = h0.T
    hn = _workspace.take((length, size, batch), dt, like=x)  # W_hn h + b_hn, which the gradient of r needs
    rec = xp.empty((3 * size, batch), dtype=dt)
    recurrent = gemm.stepper(w_hh_s, states[:length], rec)
    for t in range(length):
        a = acts[t]
        h = states[t]
        recurrent(t)
        if b_hh_block is not None:
            rec += b_hh_block
        rz = a[: 2 * size]
        rz += rec[: 2 * size]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        n = a[2 * size :]
        np.multiply(rz[:size], rec[2 * size :], out=hn[t])
        n += hn[t]
        np.tanh(n, out=n)
        hn[t] = rec[2 * size :]
        out = states[t + 1]
        np.subtract(h, n, out=out)
        out *= rz[size:]
        out += n
        if steps is not None and steps[t] < batch:
            # The rows past steps[t] keep their state; z = 1 makes every factor of their gradient
            # zero and passes the state's gradient unchanged (see _gru_backward).
            k = int(steps[t])  # host: a row count from the host batch_sizes
            out[:, k:] = h[:, k:]
            rz[size:, k:] = 1
    packed = xp.empty((length + 1, batch, size), dtype=dt)
    np.copyto(packed, states.transpose(0, 2, 1))
    return packed, tuple(_workspace.Lease(a) for a in (acts, hn, states))


def _gru_backward(dp, packed, saved, w_hh, steps=None):
    acts, hn, states = (lease.array for lease in saved)
    length, rows, batch = acts.shape
    size = rows // 3
    dt = acts.dtype
    xp = namespace_of(acts)
    r, z, n = acts[:, :size], acts[:, size : 2 * size], acts[:, 2 * size :]
    # With dh the gradient reaching h_t: dn_pre = dh (1-z)(1-n^2) =: dh * fn; dr_pre = dh * fn hn r(1-r);
    # dz_pre = dh (h_prev - n) z(1-z); d(W_hn h + b_hn) = dh * fn r; dh_prev = dGh @ W_hh + dh z.
    fn = _workspace.take(n.shape, dt, like=acts)
    np.multiply(n, n, out=fn)
    np.subtract(1, fn, out=fn)
    scratch = _workspace.take(z.shape, dt, like=acts)
    np.subtract(1, z, out=scratch)
    fn *= scratch
    factors = _workspace.take((length, 3 * size, batch), dt, like=acts)  # rows: r, z, W_hn h + b_hn
    fr, fz, fh = factors[:, :size], factors[:, size : 2 * size], factors[:, 2 * size :]
    np.subtract(1, r, out=fr)
    fr *= r
    fr *= hn
    fr *= fn
    np.multiply(z, scratch, out=fz)
    np.subtract(states[:length], n, out=scratch)
    fz *= scratch
    np.multiply(fn, r, out=fh)
    dgh = _workspace.take((length, 3 * size, batch), dt, like=acts)  # gradient of the recurrent pre-activations
    dgi_n = _workspace.take((length, size, batch), dt, like=acts)  # the input pre-activations' n part: dn_pre
    dp_t = _workspace.take((length + 1, size, batch), dt, like=acts)
    np.copyto(dp_t, dp.transpose(0, 2, 1))
    dh = xp.empty((size, batch), dtype=dt)
    tmp = np.empty_like(dh)
    dh_next = np.zeros_like(dh)
    to_state = gemm.stepper(w_hh.T, dgh, dh_next)
    for t in range(length - 1, -1, -1):
        np.add(dp_t[t + 1], dh_next, out=dh)
        np.multiply(dh, factors[t].reshape(3, size, batch), out=dgh[t].reshape(3, size, batch))
        np.multiply(dh, fn[t], out=dgi_n[t])
        to_state(t)
        np.multiply(dh, z[t], out=tmp)
        dh_next += tmp
    # As (3H, L*N), time and batch along the columns: the weight gradients are one GEMM each. The input
    # pre-activations share r and z with the recurrent ones; their n part is dn_pre.
    d_h = _workspace.take((rows, length, batch), dt, like=acts)
    np.copyto(d_h, dgh.transpose(1, 0, 2))
    d_i = _workspace.take((rows, length, batch), dt, like=acts)
    np.copyto(d_i[: 2 * size], d_h[: 2 * size])
    np.copyto(d_i[2 * size :], dgi_n.transpose(1, 0, 2))
    _workspace.give(fn, scratch, factors, dgh, dgi_n, dp_t)
    flat_i = d_i.reshape(rows, length * batch).T  # (L*N, 3H), column-major
    flat_h = d_h.reshape(rows, length * batch).T
    return flat_i, flat_h, xp.ascontiguousarray(dh_next.T), None, (d_i, d_h)


# ---------------------------------------------------------------------- Elman RNN
def _rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, relu, steps=None):
    length, batch, _ = x.shape
    size = h0.shape[-1]
    xp = namespace_of(x)
    pre = _input_projection(x, w_ih, None if b_ih is None else b_ih + b_hh, None)
    packed = xp.empty((length + 1, batch, size), dtype=x.dtype)
    packed[0] = h0
    rec = xp.empty((batch, size), dtype=x.dtype)
    recurrent = gemm.stepper(packed[:length], w_hh.T, rec)
    for t in range(length):
        out = packed[t + 1]
        recurrent(t)
        np.add(pre[t], rec, out=out)
        if relu:
            np.maximum(out, 0, out=out)
        else:
            np.tanh(out, out=out)
        if steps is not None and steps[t] < batch:
            k = int(steps[t])  # host: a row count from the host batch_sizes
            out[k:] = packed[t][k:]  # the rows past steps[t] keep their state
    _workspace.give(pre)
    return packed, (relu,)


def _rnn_backward(dp, packed, saved, w_hh, steps=None):
    (relu,) = saved
    length = packed.shape[0] - 1
    hs = packed[1:]
    slope = _workspace.take(hs.shape, hs.dtype, like=hs)
    if relu:
        np.greater(hs, 0, out=slope)
    else:
        np.multiply(hs, hs, out=slope)
        np.subtract(1, slope, out=slope)
    batch = hs.shape[1]
    if steps is not None:  # a row that kept its state through a step: no gradient to its pre-activation
        for t in range(length):
            if steps[t] < batch:
                slope[t][int(steps[t]) :] = 0  # host: a row count from the host batch_sizes
    dpre = _workspace.take(hs.shape, hs.dtype, like=hs)
    dh = namespace_of(hs).empty(hs.shape[1:], dtype=hs.dtype)
    dh_next = np.zeros_like(dh)
    to_state = gemm.stepper(dpre, w_hh, dh_next)
    for t in range(length - 1, -1, -1):
        np.add(dp[t + 1], dh_next, out=dh)
        np.multiply(dh, slope[t], out=dpre[t])
        to_state(t)
        if steps is not None and steps[t] < batch:
            k = int(steps[t])  # host: a row count from the host batch_sizes
            dh_next[k:] += dh[k:]  # its state's gradient passes to the step before
    _workspace.give(slope)
    flat = dpre.reshape(-1, dpre.shape[-1])
    return flat, flat, dh_next, None, (dpre,)


_BACKWARD = {"GRU": _gru_backward, "RNN_TANH": _rnn_backward, "RNN_RELU": _rnn_backward}


def _rnn_sequence_grads_recorded(
    g: Tensor, mode: str, reverse: bool, has_bias: bool, args: Any, needs: Any, steps: Any = None
) -> Any:
    """The sequence's gradients as recorded ops (``create_graph=True``): the forward is run again step
    by step with the cells' recorded ops (whose rules support double backward) from the node's
    inputs, and differentiated with ``autograd.grad(create_graph=True)``. Slower than the fused
    kernel, and only taken when a gradient is to be differentiated again."""
    from ..autograd import grad
    from ..graph import enable_grad

    with enable_grad():
        packed = _rerun_recorded(mode, reverse, has_bias, args, steps)
        wanted = [a for a, n in zip(args, needs) if n]
        found = iter(grad([packed], wanted, [g], create_graph=True, allow_unused=True))
    return tuple(next(found) if n else None for n in needs)


def _rerun_recorded(mode: str, reverse: bool, has_bias: bool, args: Any, steps: Any = None) -> Tensor:
    """The packed states of :func:`rnn_sequence`, computed with recorded per-step ops (``steps``:
    the active rows of each step in processing order; the others keep their state)."""
    from .. import ops
    from ._rnn_cells import gru_cell, lstm_cell

    lstm = mode == "LSTM"
    x, h = args[0], args[1]
    c = args[2] if lstm else None
    k = 3 if lstm else 2
    w_ih, w_hh = args[k], args[k + 1]
    b_ih, b_hh = (args[k + 2], args[k + 3]) if has_bias else (None, None)
    inputs = ops.flip(x, (0,)) if reverse else x
    batch = x.shape[1]
    states = [h]
    for t in range(inputs.shape[0]):
        x_t = inputs[t]
        h_prev, c_prev = h, c
        if c is not None:  # the LSTM
            pair = lstm_cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh)
            h, c = pair[0], pair[1]
        elif mode == "GRU":
            h = gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh)
        else:
            pre = x_t @ ops.transpose(w_ih, 0, 1) + h @ ops.transpose(w_hh, 0, 1)
            if b_ih is not None and b_hh is not None:
                pre = pre + b_ih + b_hh
            h = ops.relu(pre) if mode == "RNN_RELU" else ops.tanh(pre)
        if steps is not None and steps[t] < batch:  # the rows past steps[t] keep their state
            keep = np.arange(batch)[:, None] < steps[t]  # host: from the host row counts
            keep_here = array_like(keep, x.array)
            h = ops.where(keep_here, h, h_prev)
            if c is not None:
                c = ops.where(keep_here, c, c_prev)
        states.append(h)
    if c is not None:
        states.append(c)
    return ops.stack(states, 0)


def _rnn_sequence_vjp(g, y, args, saved, needs, xp):
    mode, reverse, has_bias, x, state, steps = saved
    if xp.differentiable:  # double backward: through a recorded rerun of the sequence (see below)
        return _rnn_sequence_grads_recorded(g, mode, reverse, has_bias, args, needs, steps)
    lstm = mode == "LSTM"
    w_ih, w_hh = args[3 if lstm else 2], args[4 if lstm else 3]
    if lstm:  # the weight gradients come out of its backward loop (see _lstm_backward)
        dx, dh0, dc0, dw_ih, dw_hh, db = _lstm_backward(g, y, state, x, w_ih, w_hh, needs, steps)
        if dx is not None and reverse:
            dx = dx[::-1]
        lstm_grads = [dx, dh0 if needs[1] else None, dc0 if needs[2] else None, dw_ih, dw_hh]
        if has_bias:
            lstm_grads += [db if needs[5] else None, (db.copy() if needs[5] else db) if needs[6] else None]
        return tuple(lstm_grads)
    # The gradients of the pre-activations, (L*N, rows) each (views of borrowed arrays; given back below).
    flat_i, flat_h, dh0, dc0, borrowed = _BACKWARD[mode](g, y, state, w_hh, steps)
    length, batch = x.shape[0], x.shape[1]
    dh0 += g[0]  # packed[0] is h0 itself
    grads: list[Any] = [None, dh0 if needs[1] else None] + ([dc0 if needs[2] else None] if lstm else [])
    k = len(grads)
    dx = None
    if needs[0]:
        dx = _sequence_matmul(flat_i, w_ih).reshape(x.shape)
        dx = dx[::-1] if reverse else dx
    grads[0] = dx
    # the widths spelled out: -1 cannot be inferred for an empty batch (N = 0)
    grads.append(_sequence_matmul(flat_i.T, x.reshape(length * batch, x.shape[-1])) if needs[k] else None)
    grads.append(_sequence_matmul(flat_h.T, y[:length].reshape(length * batch, y.shape[-1])) if needs[k + 1] else None)
    if has_bias:
        db_i = flat_i.sum(axis=0) if needs[k + 2] or (flat_i is flat_h and needs[k + 3]) else None
        grads.append(db_i if needs[k + 2] else None)
        if needs[k + 3]:  # the LSTM's and RNN's two biases get the same gradient: one sum
            grads.append(db_i.copy() if flat_i is flat_h and db_i is not None else flat_h.sum(axis=0))
        else:
            grads.append(None)
    _workspace.give(*borrowed)
    return tuple(grads)
