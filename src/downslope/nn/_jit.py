"""The optional compiled path: numba kernels for max pooling, 3x3 and depthwise convolutions, when installed.

``pip install downslope[jit]`` installs numba; the layers then use the kernels of
``_jit_kernels`` where they apply, and the NumPy kernels everywhere else. Without numba (or with
the environment variable ``DOWNSLOPE_JIT=0``) every layer runs on NumPy alone, with the same
results: the parity tests run both paths against PyTorch.

numba is imported on the first call of a layer that could use it, never at ``import downslope``
(numba itself takes half a second to import). Kernels compile on first use and are cached on
disk, so only the first process on a machine pays the compile time.

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

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

_loaded: ModuleType | None = None
_tried = False
_off = 0  # depth of active disabled() blocks
# The dtypes numba compiles for (bool, the integers, float32/64, complex64/128), by dtype.char.
_NUMBA_DTYPES = frozenset("?bBhHiIlLqQpPfdFD")


def kernels(*arrays: Any) -> ModuleType | None:
    """The compiled kernels module, or None when numba is missing, the path is switched off, or
    one of ``arrays`` (the arrays the kernel would read) is not a host ``numpy.ndarray`` of a dtype
    numba compiles for (float16 is not one)."""
    global _loaded, _tried
    if _off or os.environ.get("DOWNSLOPE_JIT", "1") == "0":
        return None
    if any(type(a) is not np.ndarray or a.dtype.char not in _NUMBA_DTYPES for a in arrays if a is not None):
        return None
    if not _tried:
        _tried = True
        try:
            _loaded = importlib.import_module("downslope.nn._jit_kernels")
        except ImportError:
            _loaded = None
    return _loaded


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the NumPy kernels alone (the tests compare both paths).

    Example:
        >>> from downslope.nn import _jit
        >>> with _jit.disabled():
        ...     pass
    """
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1
