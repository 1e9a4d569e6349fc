"""PyTorch's ``torch.nn.parallel``: ``DataParallel`` and ``DistributedDataParallel``.

``DataParallel(model)`` is what PyTorch's is on a machine without GPUs: a wrapper whose forward
calls the model (``device_ids`` is ``[]``), whose state_dict keys carry the ``module.`` prefix, and
whose ``.module`` is the model. With CUDA (CuPy), the batch is not split over several GPUs: the
model runs on its own device, the same numbers one GPU gives.

downslope has no process groups, so ``DistributedDataParallel`` refuses to be built and says what
to use instead: ``downslope.distributed`` (data parallelism over MPI: ``dist.init()``,
``dist.broadcast_parameters(model)``, ``dist.allreduce_gradients(model)`` after ``backward()``, or
``dist.fit``). That package sits above ``nn`` and is not imported here.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> model = nn.parallel.DataParallel(nn.Linear(2, 3))
    >>> model(ds.ones(4, 2)).shape, model.device_ids, sorted(model.state_dict())
    ((4, 3), [], ['module.bias', 'module.weight'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..device import cuda
from ..errors import ArgumentTypeError, StateError
from .module import Module

__all__ = ["DataParallel", "DistributedDataParallel"]


class DataParallel(Module):
    """Wrap ``module`` as ``torch.nn.DataParallel`` does; the forward calls ``module`` on the whole
    batch (see the module docstring). ``device_ids`` is ``[]`` without a GPU, as in torch; with
    CuPy it lists the GPUs asked for (all of them by default), ``output_device`` the first, and
    the batch is still run on the module's own device.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> ds.nn.DataParallel(layer).module is layer
        True
    """

    def __init__(
        self, module: Module, device_ids: Sequence[Any] | None = None, output_device: Any = None, dim: int = 0
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise ArgumentTypeError(f"DataParallel: expected an nn.Module, got {type(module).__name__}")
        self.module = module
        if not cuda.is_available():  # torch's CPU-only case: a plain pass-through
            self.device_ids: list[int] = []
            return
        ids = list(range(cuda.device_count())) if device_ids is None else list(device_ids)
        self.device_ids = [_index(d) for d in ids]
        self.output_device = self.device_ids[0] if output_device is None else _index(output_device)
        self.dim = dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


def _index(d: Any) -> int:
    from ..device import device

    if isinstance(d, int) and not isinstance(d, bool):
        return d
    index = device(d).index
    return 0 if index is None else int(index)


class DistributedDataParallel(Module):
    """``torch.nn.parallel.DistributedDataParallel``: refused with a pointer to what downslope
    offers instead, ``downslope.distributed`` (see the module docstring).

    Example:
        >>> import downslope as ds
        >>> try:
        ...     ds.nn.parallel.DistributedDataParallel(ds.nn.Linear(2, 1))
        ... except ds.DownslopeError as e:
        ...     print(str(e).split(";")[0])
        DistributedDataParallel: downslope has no process groups
    """

    def __init__(self, module: Module, *args: Any, **kwargs: Any) -> None:
        raise StateError(
            "DistributedDataParallel: downslope has no process groups; for data-parallel training use "
            "`from downslope import distributed as dist` (under mpiexec): dist.init(), "
            "dist.broadcast_parameters(model), then dist.allreduce_gradients(model) after each backward(), "
            "or dist.fit(model, loss_fn, optimizer, data, ...)"
        )
