"""The optional compiled path of the nn layers: numba kernels for max pooling, 3x3 and depthwise
convolutions, normalisation and activations, when installed.

``pip install downslope[jit]`` installs numba; the layers then use the kernels of
``_jit_kernels`` where they apply, and the NumPy kernels everywhere else. Without numba (or with
the environment variable ``DOWNSLOPE_JIT=0``) every layer runs on NumPy alone, with the same
results: the parity tests run both paths against PyTorch.

The gate itself (the switches, the host-array and dtype checks, the lazy import) is
:mod:`downslope.jit_gate`, in the core so that core ops (softmax) can use it too; this module asks
it for the nn kernels, and :func:`disabled` here is the same switch, so it turns off the core's
kernels as well.

numba is imported on the first call of a layer that could use it, never at ``import downslope``
(numba itself takes half a second to import). Kernels compile on first use and are cached on disk,
so only the first process on a machine pays the compile time.

Which path a call takes is a function of the call alone: its sizes (each layer's size gate, see
:func:`kernels_at`), its arrays' types and dtypes, and the switch; never of what ran earlier in the
process. The kernels may round differently from the NumPy steps in the last bit, so a small call
that took the kernels only once a larger call had loaded them would make a seeded run repeated in
one process give different bits on its first run than on later ones.

numba works on host NumPy arrays only: a layer passes its arrays to :func:`kernels`, which answers
None unless every one is a ``numpy.ndarray``, so device arrays (CuPy, the strict stand-in) take
the NumPy-formulated path through their own namespace. numba has no float16 (nor long double, nor
object) type, so arrays of those dtypes take the NumPy path too.

Example:
    >>> from downslope.nn import _jit
    >>> with _jit.disabled():
    ...     _jit.kernels() is None
    True
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .. import jit_gate
from ..jit_gate import disabled as disabled

__all__ = ["disabled", "kernels", "kernels_at"]

_KERNELS = "downslope.nn._jit_kernels"


def kernels(*arrays: Any) -> ModuleType | None:
    """The compiled kernels module, or None when numba is missing, the path is switched off, or
    one of ``arrays`` (the arrays the kernel would read) is not a host ``numpy.ndarray`` of a dtype
    numba compiles for (float16 is not one)."""
    return jit_gate.kernels(_KERNELS, *arrays)


def kernels_at(size: int, min_size: int, *arrays: Any) -> ModuleType | None:
    """:func:`kernels` for a call of ``size`` elements behind its layer's size gate ``min_size``:
    None below the gate, always.

    The kernels beat NumPy per call at most sizes, but by tens of microseconds on small arrays,
    while the first call of a process pays numba's import and the kernels' cache load (0.4-1 s,
    more under load): below the gate a process does not start them.

    Below the gate the NumPy path is taken even when a larger call has already loaded the kernels:
    the kernels' sums may differ from NumPy's in the last bit, so which path a call takes must
    depend on the call alone (its sizes and dtypes, and the switch), never on what ran earlier in the
    process; otherwise a seeded run repeated in one process would not repeat its results bit for bit.
    """
    if size < min_size:
        return None
    return jit_gate.kernels(_KERNELS, *arrays)


def __getattr__(name: str) -> Any:
    # ``_off`` (truthy while the path is switched off) is read by the LSTM's own gate (_rnn_jit); the
    # state lives in jit_gate, so it is answered from there rather than kept twice.
    if name == "_off":
        return jit_gate.switched_off()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
