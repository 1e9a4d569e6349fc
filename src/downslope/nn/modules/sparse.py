"""``torch.nn.modules.sparse``: ``Embedding`` and ``EmbeddingBag``, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Embedding is ds.nn.Embedding
    True
"""

from __future__ import annotations

from .. import Embedding, EmbeddingBag

__all__ = ["Embedding", "EmbeddingBag"]
