"""``torch.nn.modules.linear``: Identity, Linear, Bilinear, LazyLinear and NonDynamicallyQuantizableLinear,
the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Linear is ds.nn.Linear
    True
"""

from __future__ import annotations

from .. import Bilinear, Identity, LazyLinear, Linear
from .._nondynamic_linear import NonDynamicallyQuantizableLinear

__all__ = ["Bilinear", "Identity", "LazyLinear", "Linear", "NonDynamicallyQuantizableLinear"]
