"""The process group's sum for ``nn.SyncBatchNorm``, installed into nn when this package is imported.

nn is below distributed in the package's layers, so the layer cannot ask for the world itself: it
holds a :class:`~downslope.nn.sync_batchnorm.ProcessGroupSum` that this module registers. A process
that joins a job has imported this package, so the layer synchronizes exactly when PyTorch's does:
in training, once the process group is initialised (:func:`~downslope.distributed.init`,
``init_process_group`` or ``dist.fit``), over more than one rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.sync_batchnorm import register_process_group_sum
from . import world
from .process_group import _check_group


class WorldSum:
    """The sum over every rank of the job (the only process group there is: ``group.WORLD``)."""

    def size(self, process_group: Any) -> int:
        current = world._world
        if current is None:  # not initialised: a plain batch norm, as torch's before init_process_group
            return 1
        if current.world_size > 1:
            _check_group(process_group, "SyncBatchNorm")
        return current.world_size

    def allreduce_sum(self, buf: np.ndarray, process_group: Any) -> None:
        current = world.initialized_world("SyncBatchNorm")
        current.comm.allreduce_sum(buf)


register_process_group_sum(WorldSum())

__all__ = ["WorldSum"]
