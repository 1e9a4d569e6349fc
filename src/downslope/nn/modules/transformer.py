"""``torch.nn.modules.transformer``: the Transformer and its encoder and decoder layers, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> TransformerEncoderLayer is ds.nn.TransformerEncoderLayer
    True
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import ArgumentError
from ...tensor import Tensor
from .. import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .. import functional as F

__all__ = [
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer"
]  # fmt: skip


def _get_activation_fn(activation: str) -> Callable[[Tensor], Tensor]:
    """torch's helper behind the layers' ``activation="relu"|"gelu"`` (model code imports it from here)."""
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ArgumentError(f"activation should be relu/gelu, not {activation}")
