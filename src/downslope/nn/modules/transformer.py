"""``torch.nn.modules.transformer``: the Transformer and its encoder and decoder layers, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> TransformerEncoderLayer is ds.nn.TransformerEncoderLayer
    True
"""

from __future__ import annotations

from .. import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer"
]  # fmt: skip
