"""``torch.signal``: signal-processing helpers under PyTorch's names. PyTorch's namespace holds one
module, :mod:`downslope.signal.windows` (SciPy-style window functions: ``hann``, ``kaiser``...).

Example:
    >>> import downslope as ds
    >>> ds.signal.windows.hann(4, sym=False)
    tensor([0. , 0.5, 1. , 0.5])
"""

from __future__ import annotations

from . import windows

__all__ = ["windows"]
