"""``downslope.utils.data.distributed``: PyTorch's module path of ``DistributedSampler``
(``from torch.utils.data.distributed import DistributedSampler``), the sampler of
:mod:`downslope.distributed` (one implementation). Importing it does not import mpi4py: a plain
process is a world of one, and with ``num_replicas`` and ``rank`` given the sampler needs no world.

Example:
    >>> from downslope.utils.data.distributed import DistributedSampler
    >>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    [1, 4, 7, 0]
"""

from __future__ import annotations

from ...distributed.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
