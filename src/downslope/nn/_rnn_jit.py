"""Compiled (numba) loops of the fused LSTM sequence kernel; imported only through :func:`kernels`.

The NumPy formulation in ``_rnn_kernels`` spends about 1 us of Python and dispatch per ufunc call,
and a step of the LSTM makes ten of them forward and about fifteen backward (the per-step factors
included) around its matrix product: about as much time as the products themselves for a layer
of 128 units. Here the whole loop over time steps is one compiled call: each step is the product
on oneDNN's GEMM (called from the compiled code through its C entry point, passed in as a ctypes
function) and ONE pass over the step's gate block that computes every gate, the cell and the
output state (forward), or every gate's gradient and the cell's (backward).

``tanh`` here is a rational approximation evaluated in float32 (the one Eigen uses, odd degree-13
numerator over even degree-6 denominator, clamped at +-7.905), because numba compiles ``math.tanh``
to a scalar libm call that cannot be vectorised (14x slower on a 16K block than NumPy's SIMD
``tanh``); this one vectorises (2.1 us per 16K block) and is within 4e-7 of the exact value,
absolute and relative (7 float32 ulps at worst; ``tests/nn/test_rnn_jit.py`` checks it on a dense
grid), so results agree with PyTorch's to float32 rounding, not bit for bit. Sigmoid gates use
``sigmoid(a) = (1 + tanh(a / 2)) / 2``, the halving done in the gate pass (exact: a power of two;
the NumPy formulation folds it into a copy of the weights instead). So the kernels run for
float32 host arrays when both numba (the ``jit`` extra) and oneDNN (the ``onednn`` extra) are
there; everything else takes the NumPy formulation, and the parity tests run every path against
PyTorch.

With oneDNN on several threads, the batch is split into chunks of rows (its samples never meet
in a recurrent layer), and the threads of an OpenMP team (numba's ``prange`` under its OpenMP
layer, the runtime oneDNN uses too) take the chunks in order, each running the whole loop over
the time steps for its rows with no waiting on the others; the large products before and after
the loops are tasks of the same call (see ``_rnn_jit_kernels``). That beats
oneDNN splitting each step's small product over the threads with the gate arithmetic on one, and
keeps its speed when another process shares the cores (``_rnn_kernels._batch_chunks`` has numbers).

Starting the loops costs a process about 0.6 s of CPU (1 s and more of wall time): importing numba
and what its CPU target loads on its first call (scipy.linalg among them), then the cached kernels.
A small layer gains little a pass from them (16-30 us a time step, forward and backward, for a
batch of 8 and 32 units), so a process that has not imported numba runs small passes on the NumPy
formulation until their estimated gains (``kernels``' ``gain_us``) add up to the start cost, then
starts the loops (a rent-or-buy rule: as far as the estimates hold, at most twice the better
choice's cost, whether a run is short or long). A pass that gains much (``EAGER_GAIN_US``), or any
pass in a process that already imported numba, starts them at once.

Example:
    >>> from downslope.nn import _rnn_jit
    >>> k = _rnn_jit.kernels()
    >>> k is None or hasattr(k, "lstm_forward")
    True
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import numpy as np

from .. import gemm, jit_gate
from ..device import are_deterministic_algorithms_enabled
from . import _jit

_loaded: ModuleType | None = None
_tried = False
_pause: Any = None
_openmp: bool | None = None  # numba's threading layer is OpenMP (known once it started)

#: What starting the compiled loops costs a process that has not imported numba, in microseconds of
#: CPU: 0.54-0.62 s measured for the first pass of a small LSTM against 0.03-0.04 s on the NumPy
#: formulation (one thread, fresh processes; a shared two-core AMD EPYC).
START_COST_US = 600_000
#: A pass estimated to gain at least this much starts the loops at once: it repays the start within
#: 64 passes (a layer of 128 units over 100 steps of a batch of 64 gains about 12 ms a pass).
EAGER_GAIN_US = START_COST_US // 64
_deferred_us = 0.0  # the gains estimated for the passes run on the NumPy formulation so far


def kernels(*arrays: Any, gain_us: float | None = None) -> ModuleType | None:
    """The compiled module (``_rnn_jit_kernels``) when numba and oneDNN are both usable and every one
    of ``arrays`` is a float32 host array; None otherwise. ``gain_us``: what the compiled loops are
    estimated to save this pass; given, and numba not yet started in the process, the loops start
    only once the passes' gains add up to ``START_COST_US`` (or this one gains ``EAGER_GAIN_US``).

    That rent-or-buy rule makes a pass's path depend on the passes before it (the loops may round
    differently from the NumPy formulation in the last bit: a seeded run repeated in one process can
    differ from its first run there); under ``use_deterministic_algorithms(True)`` a pass gaining less
    than ``EAGER_GAIN_US`` always runs on the NumPy formulation instead."""
    global _loaded, _tried, _deferred_us
    if any(type(a) is not np.ndarray or a.dtype != np.float32 for a in arrays):
        return None
    if _jit._off or os.environ.get("DOWNSLOPE_JIT", "1") == "0" or gemm.sgemm_function() is None:
        return None
    if gain_us is not None and gain_us < EAGER_GAIN_US and are_deterministic_algorithms_enabled():
        # Asked for run-to-run identical results: the path is the pass's own (its estimated gain), never
        # what earlier passes started, since the loops may round differently from the NumPy formulation.
        return None
    if not _tried:
        if gain_us is not None and gain_us < EAGER_GAIN_US and "numba" not in sys.modules:
            _deferred_us += gain_us
            if _deferred_us < START_COST_US:
                return None  # not yet worth the start: this pass runs on the NumPy formulation
        _tried = True
        # The core's gate imports the module: numba missing gives the NumPy formulation quietly, any
        # other failure (numba's RuntimeError when no cache directory is writable, a failed compile)
        # gives it with one warning, as for the other kernels, rather than a crash in the layer.
        _loaded = jit_gate.kernels("downslope.nn._rnn_jit_kernels")
        if _loaded is not None:
            try:
                pause_function()
            except (AttributeError, OSError):  # no sched_yield in this libc: the NumPy formulation
                _loaded = None
    return _loaded


def pause_function() -> Any:
    """libc's ``sched_yield`` as a ctypes function: the ``pause`` the compiled loops call while a
    thread has waited long for another's task (see ``_rnn_jit_kernels``)."""
    global _pause
    if _pause is None:
        import ctypes

        function = ctypes.CDLL(None).sched_yield
        function.restype, function.argtypes = ctypes.c_int, []
        _pause = function
    return _pause


def threads() -> int:
    """How many threads the compiled loops may share a layer's chunks over: numba's thread count
    under its OpenMP layer, whose team runs oneDNN's GEMMs inside it on their caller's thread alone;
    1 under another layer (TBB's or numba's own workers would each start a team of oneDNN threads).
    A team with fewer threads than that (OpenMP's dynamic sizes) only shares the tasks over fewer."""
    global _openmp
    import numba

    if _openmp is None:
        before = gemm.get_num_threads()
        numba.get_num_threads()  # starts numba's threading layer, which sets OpenMP's thread count
        if before:
            gemm.set_num_threads(before)  # the count the user chose for oneDNN's GEMM stays
        _openmp = numba.threading_layer() == "omp"
    return int(numba.get_num_threads()) if _openmp else 1
