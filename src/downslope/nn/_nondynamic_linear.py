"""PyTorch's ``NonDynamicallyQuantizableLinear``: the Linear that ``MultiheadAttention.out_proj`` is.

PyTorch gives the attention's output projection this Linear subclass (its quantization tooling skips
it) and prints that class name in the repr; downslope has no quantization, so the class is a plain
:class:`~downslope.nn.Linear` under PyTorch's name, for identical reprs and ``isinstance`` checks.
"""

from __future__ import annotations

from typing import Any

from .layers import Linear


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` under the name PyTorch gives ``MultiheadAttention.out_proj``.

    Example:
        >>> import downslope as ds
        >>> ds.nn.MultiheadAttention(4, 2).out_proj
        NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        # ``device=`` is taken by the Module machinery, which places the layer once built (as for Linear)
        super().__init__(in_features, out_features, bias=bias, dtype=dtype)
