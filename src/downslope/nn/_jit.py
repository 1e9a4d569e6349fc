"""The optional compiled path: numba kernels for max pooling and 3x3 convolutions, when installed.

``pip install downslope[jit]`` installs numba; the layers then use the kernels of
``_jit_kernels`` where they apply, and the NumPy kernels everywhere else. Without numba (or with
the environment variable ``DOWNSLOPE_JIT=0``) every layer runs on NumPy alone, with the same
results: the parity tests run both paths against PyTorch.

numba is imported on the first call of a layer that could use it, never at ``import downslope``
(numba itself takes half a second to import). Kernels compile on first use and are cached on
disk, so only the first process on a machine pays the compile time.

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

_loaded: ModuleType | None = None
_tried = False
_off = 0  # depth of active disabled() blocks


def kernels() -> ModuleType | None:
    """The compiled kernels module, or None when numba is missing or the path is switched off."""
    global _loaded, _tried
    if _off or os.environ.get("DOWNSLOPE_JIT", "1") == "0":
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
