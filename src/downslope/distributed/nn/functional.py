"""``torch.distributed.nn.functional``: collectives that take part in autograd.

:func:`all_gather` is open_clip's ``gather_with_grad``: every rank's tensor on every rank, with a
backward pass that sums the gradients over the ranks and hands each rank the part for its own tensor,
as torch's does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import Function
from ...backend import namespace_of
from ...tensor import Tensor, wrap_array
from .. import process_group, torch_calls, world
from ..process_group import ReduceOp, _check_group, _check_tensor
from ..torch_calls import _gathered, _host_copy


def _copy(tensor: Tensor) -> Tensor:
    """A fresh tensor with ``tensor``'s values: the collectives write in place, the functional forms must not."""
    return wrap_array(tensor.array.copy())


def _zeros_like(tensor: Tensor) -> Tensor:
    return wrap_array(namespace_of(tensor.array).zeros_like(tensor.array))


class _AllReduce(Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, op: ReduceOp) -> Tensor:
        ctx.op = op
        out = _copy(tensor)
        process_group.all_reduce(out, op)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # torch's rule: the gradient goes back through the same all_reduce (for SUM: every rank's output
        # depends on every rank's input with slope 1, so the input's gradient is the sum of the gradients)
        out = _copy(grad)
        process_group.all_reduce(out, ctx.op)
        return out, None


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None) -> Tensor:
    """``torch.distributed.nn.functional.all_reduce``: ``tensor`` combined over the ranks with ``op``, as a
    new tensor (``tensor`` is left as it is); differentiable, its gradient is the all_reduce of the
    output's gradient, as torch's.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> from downslope.distributed.nn.functional import all_reduce
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> x = ds.tensor([1.0, 2.0], requires_grad=True)
        >>> (2 * all_reduce(x)).sum().backward(); x.grad
        tensor([2., 2.])
        >>> dist.destroy_process_group()
    """
    _check_group(group, "nn.functional.all_reduce")
    _check_tensor(tensor, "nn.functional.all_reduce")
    return _AllReduce.apply(tensor, op)


class _Broadcast(Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, src: int) -> Tensor:
        ctx.src = src
        out = _copy(tensor)
        process_group.broadcast(out, src)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # every rank's output is src's tensor: src's gradient is the sum of them all; the others' is zero
        out = _copy(grad)
        process_group.reduce(out, ctx.src, ReduceOp.SUM)
        if world.initialized_world("nn.functional.broadcast").rank != ctx.src:
            out = _zeros_like(out)
        return out, None


def broadcast(tensor: Tensor, src: int, group: Any = None) -> Tensor:
    """``torch.distributed.nn.functional.broadcast``: rank ``src``'s ``tensor`` on every rank, as a new
    tensor; differentiable (the gradients of every rank's output are summed into ``src``'s input)."""
    _check_group(group, "nn.functional.broadcast")
    _check_tensor(tensor, "nn.functional.broadcast")
    return _Broadcast.apply(tensor, src)


class _Reduce(Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, dst: int, op: ReduceOp) -> Tensor:
        ctx.dst = dst
        out = _copy(tensor)
        process_group.reduce(out, dst, op)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        out = _copy(grad)
        process_group.broadcast(out, ctx.dst)
        return out, None, None


def reduce(tensor: Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: Any = None) -> Tensor:
    """``torch.distributed.nn.functional.reduce``: on rank ``dst`` the combination over the ranks (elsewhere
    a copy of ``tensor``), as a new tensor; differentiable (``dst``'s gradient is sent to every rank)."""
    _check_group(group, "nn.functional.reduce")
    _check_tensor(tensor, "nn.functional.reduce")
    return _Reduce.apply(tensor, dst, op)


class _ReduceScatter(Function):
    @staticmethod
    def forward(ctx: Any, op: ReduceOp, output: Tensor, *inputs: Tensor) -> Tensor:
        out = _copy(output)
        torch_calls.reduce_scatter(out, list(inputs), op)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        # input_list[r] on every rank feeds rank r's output: its gradient is rank r's output gradient
        w = world.initialized_world("nn.functional.reduce_scatter")
        everyone = [_zeros_like(grad) for _ in range(w.world_size)]
        process_group.all_gather(everyone, _copy(grad))
        return (None, None, *everyone)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM, group: Any = None) -> Tensor:
    """``torch.distributed.nn.functional.reduce_scatter``: rank r's result is ``input_list[r]`` combined
    over the ranks with ``op``, as a new tensor of ``output``'s shape (``output`` is not written, as
    torch's, whose forward writes a copy); differentiable with respect to ``input_list``."""
    _check_group(group, "nn.functional.reduce_scatter")
    _check_tensor(output, "nn.functional.reduce_scatter")
    return _ReduceScatter.apply(op, output, *input_list)


class _AllToAll(Function):
    @staticmethod
    def forward(ctx: Any, outputs: list[Tensor], *inputs: Tensor) -> tuple[Tensor, ...]:
        ctx.input_shapes = [(t.array.shape, t.array.dtype) for t in inputs]
        received = [_copy(t) for t in outputs]
        torch_calls.all_to_all(received, list(inputs))
        return tuple(received)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Any, ...]:
        # what rank r received from rank s came from s's input_tensor_list[r]: the gradients go back the same way
        xp = namespace_of(grads[0].array)
        back = [wrap_array(xp.zeros(shape, dtype=dtype)) for shape, dtype in ctx.input_shapes]
        torch_calls.all_to_all(back, [_copy(g) for g in grads])
        return (None, *back)


def all_to_all(
    output_tensor_list: list[Tensor], input_tensor_list: list[Tensor], group: Any = None
) -> tuple[Tensor, ...]:
    """``torch.distributed.nn.functional.all_to_all``: what every rank sent here (``input_tensor_list[r]``
    goes to rank r), as a tuple of new tensors shaped as ``output_tensor_list``'s; differentiable."""
    _check_group(group, "nn.functional.all_to_all")
    return _AllToAll.apply(list(output_tensor_list), *input_tensor_list)


class _Gather(Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, dst: int) -> tuple[Tensor, ...]:
        w = world.initialized_world("nn.functional.gather")
        ctx.dst = dst
        ctx.rank = w.rank
        outputs = [_zeros_like(tensor) for _ in range(w.world_size)]
        torch_calls.gather(_copy(tensor), outputs if w.rank == dst else None, dst)
        return tuple(outputs)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor, None]:
        out = _zeros_like(grads[0])
        torch_calls.scatter(out, [_copy(g) for g in grads] if ctx.rank == ctx.dst else None, ctx.dst)
        return out, None


def gather(tensor: Tensor, dst: int = 0, group: Any = None) -> tuple[Tensor, ...]:
    """``torch.distributed.nn.functional.gather``: on rank ``dst`` a tuple of every rank's ``tensor`` (on the
    other ranks, zeros of its shape, as torch's); differentiable (``dst``'s gradients are scattered back)."""
    _check_group(group, "nn.functional.gather")
    _check_tensor(tensor, "nn.functional.gather")
    return _Gather.apply(tensor, dst)


class _Scatter(Function):
    @staticmethod
    def forward(ctx: Any, src: int, *tensors: Tensor) -> Tensor:
        w = world.initialized_world("nn.functional.scatter")
        ctx.src = src
        ctx.rank = w.rank
        out = _zeros_like(tensors[0])
        torch_calls.scatter(out, [_copy(t) for t in tensors] if w.rank == src else None, src)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        w = world.initialized_world("nn.functional.scatter")
        grads = [_zeros_like(grad) for _ in range(w.world_size)]
        torch_calls.gather(_copy(grad), grads if ctx.rank == ctx.src else None, ctx.src)
        return (None, *grads)


def scatter(tensors: list[Tensor], src: int = 0, group: Any = None) -> Tensor:
    """``torch.distributed.nn.functional.scatter``: rank r's result is ``tensors[r]`` of rank ``src`` (every
    rank passes a list of world_size tensors of one shape, as torch's; only ``src``'s values are read);
    differentiable (the gradients are gathered back to ``src``)."""
    _check_group(group, "nn.functional.scatter")
    if not tensors or any(tuple(t.shape) != tuple(tensors[0].shape) for t in tensors):
        from ...errors import ArgumentError

        raise ArgumentError(
            f"nn.functional.scatter: expected a list of tensors of one shape, got shapes {[tuple(t.shape) for t in tensors]}"
        )
    return _Scatter.apply(src, *tensors)


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


__all__ = ["all_gather", "all_reduce", "broadcast", "reduce", "reduce_scatter", "all_to_all", "gather", "scatter"]
