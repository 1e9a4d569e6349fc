"""``torch.distributed.nn.functional``: collectives that take part in autograd.

:func:`all_gather` is open_clip's ``gather_with_grad``: every rank's tensor on every rank, with a
backward pass that sums the gradients over the ranks and hands each rank the part for its own tensor,
as torch's does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import Function
from ...tensor import Tensor, wrap_array
from .. import world
from ..process_group import _check_group, _check_tensor
from ..torch_calls import _gathered, _host_copy


class _AllGather(Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> tuple[Tensor, ...]:
        w = world.initialized_world("nn.functional.all_gather")
        ctx.world = w
        if w.world_size == 1:
            return (wrap_array(tensor.array.copy()),)  # any device: no host round trip
        mine = _host_copy(tensor, "nn.functional.all_gather")
        return tuple(wrap_array(a.astype(tensor.array.dtype)) for a in _gathered(mine, w, "nn.functional.all_gather"))

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Tensor) -> Tensor:
        # this rank's tensor is output[rank] on every rank: its gradient is the sum over the ranks of
        # their grad_outputs[rank] (torch's reduce-scatter / all-to-all-and-sum)
        w = ctx.world
        if w.world_size == 1:
            return grad_outputs[0]
        dtype = grad_outputs[0].array.dtype
        stacked = np.stack(
            [np.asarray(g.array, dtype=np.float32 if dtype == np.float16 else dtype) for g in grad_outputs]
        )
        w.comm.allreduce_sum(stacked.reshape(-1))
        return wrap_array(stacked[w.rank].astype(dtype))


def all_gather(tensor: Tensor, group: Any = None) -> tuple[Tensor, ...]:
    """``torch.distributed.nn.functional.all_gather``: a tuple of every rank's ``tensor`` (rank order),
    differentiable: the gradient reaching this rank's ``tensor`` is the sum over the ranks of the
    gradients of their output for this rank.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> from downslope.distributed.nn import all_gather
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> x = ds.tensor([1.0, 2.0], requires_grad=True)
        >>> (out,) = all_gather(x); (3 * out).sum().backward(); x.grad
        tensor([3., 3.])
        >>> dist.destroy_process_group()
    """
    _check_group(group, "nn.functional.all_gather")
    _check_tensor(tensor, "nn.functional.all_gather")
    return _AllGather.apply(tensor)


__all__ = ["all_gather"]
