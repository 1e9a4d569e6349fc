"""``torch.utils.data.sampler``: the samplers, the same objects as :mod:`downslope.data`'s.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.data import sampler
    >>> sampler.BatchSampler is ds.data.BatchSampler
    True
"""

from __future__ import annotations

from ...data import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]
