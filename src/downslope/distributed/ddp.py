"""The process group's collectives for ``nn.parallel.DistributedDataParallel``, installed into nn when
this package is imported.

nn is below distributed in the package's layers, so the wrapper cannot reach the world itself: it holds
a :class:`~downslope.nn.parallel.DataParallelGroup` that this module registers. A script that builds
DDP has called ``init_process_group`` (or :func:`~downslope.distributed.init`), so it has imported this
package. The work is done by the package's own tools: :func:`check_same_model`, the flat broadcasts of
:func:`broadcast_parameters` and :class:`GradientAllreducer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UninitializedError
from ..nn.module import Module
from ..nn.parallel import register_data_parallel_group
from ..tensor import Tensor
from . import world
from .collectives import GradientAllreducer, _broadcast_tensors, broadcast_buffers, check_same_model
from .process_group import _check_group


class WorldDataParallel:
    """DDP's collectives over every rank of the job (the only process group there is: ``group.WORLD``)."""

    def world(self, process_group: Any, what: str) -> tuple[int, int]:
        current = world._world
        if current is None:  # torch's error, with the calls that make the group here
            raise UninitializedError(
                f"{what}: Default process group has not been initialized, please make sure to call "
                "init_process_group (here: `from downslope import distributed as dist; dist.init_process_group()`, "
                "in every rank of an `mpiexec -n W` job)"
            )
        _check_group(process_group, what)
        return current.rank, current.world_size

    def check_same_parameters(self, named: Mapping[str, Tensor], what: str) -> None:
        check_same_model(named, world.initialized_world("DistributedDataParallel"), what=what)

    def broadcast(self, tensors: Sequence[Tensor], bucket_bytes: int) -> None:
        current = world.initialized_world("DistributedDataParallel")
        if current.world_size > 1 and tensors:
            _broadcast_tensors(tensors, 0, current, bucket_bytes)

    def broadcast_buffers(self, module: Module, bucket_bytes: int) -> None:
        # usually a few small buffers of two dtypes (BatchNorm's): one Bcast of their bytes per forward pass
        broadcast_buffers(
            module, 0, world=world.initialized_world("DistributedDataParallel"), bucket_bytes=bucket_bytes
        )

    def gradient_reducer(self, params: Sequence[Tensor], bucket_bytes: int) -> GradientAllreducer:
        # replace_grads: the reduction runs inside backward, from the last parameter's hook
        return GradientAllreducer(
            params,
            world=world.initialized_world("DistributedDataParallel"),
            bucket_bytes=bucket_bytes,
            replace_grads=True,
        )


register_data_parallel_group(WorldDataParallel())

__all__ = ["WorldDataParallel"]
