"""The basic tensor ops the tracer translates between layers (add, matmul, reshape, indexing...),
keyed by the name of the op's gradient rule, which every recorded result carries (``Tensor._vjp``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import ExportError
from ...tensor import Tensor
from .graph import GraphBuilder

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


OpEmitter = Callable[[GraphBuilder, Tensor, list[str], tuple[Tensor, ...]], str]
OP_EMITTERS: dict[str, OpEmitter] = {}


def _op(name: str, onnx_op: str) -> None:
    OP_EMITTERS[name] = lambda g, t, ins, parents: g.node(onnx_op, ins, onnx_op.lower())


for _rule, _onnx_op in {
    "_add_vjp": "Add", "_sub_vjp": "Sub", "_mul_vjp": "Mul", "_div_vjp": "Div", "_pow_vjp": "Pow",
    "_matmul_vjp": "MatMul", "_neg_vjp": "Neg", "_exp_vjp": "Exp", "_log_vjp": "Log", "_sqrt_vjp": "Sqrt",
    "_abs_vjp": "Abs", "_sin_vjp": "Sin", "_cos_vjp": "Cos", "_tanh_vjp": "Tanh", "_sigmoid_vjp": "Sigmoid",
    "_relu_vjp": "Relu", "_maximum_vjp": "Max", "_minimum_vjp": "Min", "_erf_vjp": "Erf",
}.items():  # fmt: skip
    _op(_rule, _onnx_op)


def _reshape_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    x = parents[0]
    shape = list(t.shape)
    if g.dynamic_batch:
        if x.ndim == 0 or not shape or shape[0] != x.shape[0]:
            raise ExportError(
                f"ONNX export: a reshape from {x.shape} to {t.shape} changes the batch dim 0, so it cannot be "
                f"written for any batch size; keep dim 0 or export with dynamic_batch=False"
            )
        shape[0] = 0  # ONNX: copy dim 0 from the input
    return g.node("Reshape", [ins[0], g.ints(shape)], "reshape")


def _permute_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    inverse = t._saved
    perm = [int(i) for i in np.argsort(inverse)]
    return g.node("Transpose", ins, "transpose", perm=perm)


def _getitem_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    idx, advanced = t._saved
    items = idx if isinstance(idx, tuple) else (idx,)
    if advanced or any(isinstance(i, np.ndarray) for i in items):
        raise ExportError("ONNX export: indexing with arrays or masks is not supported; use slices and integers")
    ndim = parents[0].ndim
    if any(i is Ellipsis for i in items):
        at = items.index(Ellipsis)
        fill = ndim - sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:at] + (slice(None),) * fill + items[at + 1 :]
    y, axis = ins[0], 0  # ``axis``: where the next item applies in the current (partly indexed) value
    for item in items:
        if item is None:
            y = g.node("Unsqueeze", [y, g.ints([axis], "axes")])
            axis += 1
        elif isinstance(item, slice):
            if item == slice(None):
                axis += 1
                continue
            step = 1 if item.step is None else int(item.step)
            start = item.start if item.start is not None else (0 if step > 0 else -1)
            stop = item.stop if item.stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN)
            y = g.node(
                "Slice",
                [y, g.ints([start], "starts"), g.ints([stop], "ends"), g.ints([axis], "axes"), g.ints([step], "steps")],
            )
            axis += 1
        elif isinstance(item, (bool, np.bool_)):
            raise ExportError("ONNX export: indexing with True/False is not supported; use slices and integers")
        elif isinstance(item, (int, np.integer)):
            if axis == 0 and g.dynamic_batch:
                raise ExportError("ONNX export: indexing the batch dim 0 with an integer is not supported")
            y = g.node("Gather", [y, g.const(np.asarray(int(item), np.int64), "index")], "select", axis=axis)
        else:
            raise ExportError(f"ONNX export: index item {item!r} is not supported")
    return g.node("Identity", [y], "getitem")


def _concat_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Concat", ins, "concat", axis=int(t._saved[0]))


def _stack_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    axis = int(t._saved)
    parts = [g.node("Unsqueeze", [i, g.ints([axis], "axes")]) for i in ins]
    return g.node("Concat", parts, "stack", axis=axis)


def _softmax_op(op: str) -> OpEmitter:
    return lambda g, t, ins, parents: g.node(op, ins, op.lower(), axis=int(t._saved))


def _leaky_relu_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("LeakyRelu", ins, "leaky_relu", alpha=float(t._saved))


def _astype_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Cast", ins, "cast", to=g.onnx.helper.np_dtype_to_tensor_dtype(t.array.dtype))


def _reduced_axes(x: Tensor, t: Tensor, dynamic: bool) -> list[int]:
    """The axes a sum/mean reduced, from the input shape and the saved kept shape (reduced dims as 1).
    A size-1 dim may or may not have been reduced (same values either way); when the output lost
    dims, the ones needed are taken from the last size-1 dims, the batch dim last."""
    kept, keep = t._saved[0], t._saved[1]
    axes = [i for i, (a, k) in enumerate(zip(x.shape, kept)) if k == 1 and a != 1]
    if not keep:
        missing = x.ndim - len(axes) - t.ndim
        ones = [i for i, (a, k) in enumerate(zip(x.shape, kept)) if a == 1 and k == 1]
        ones = sorted(ones, key=lambda i: (i == 0 and dynamic, -i))
        axes = sorted(axes + ones[:missing])
    return axes


def _reduce_op(op: str) -> OpEmitter:
    def emit(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
        x = parents[0]
        axes = _reduced_axes(x, t, g.dynamic_batch)
        keep = int(bool(t._saved[1]))
        if not axes:
            return g.node("Identity", ins, op.lower())
        if op == "ReduceSum" or g.opset >= 18:  # axes became an input: ReduceSum in opset 13, the rest in 18
            return g.node(op, [ins[0], g.ints(axes, "axes")], op.lower(), keepdims=keep)
        return g.node(op, ins, op.lower(), axes=axes, keepdims=keep)

    return emit


OP_EMITTERS.update(
    {
        "_sum_vjp": _reduce_op("ReduceSum"),
        "_mean_vjp": _reduce_op("ReduceMean"),
        "_reshape_vjp": _reshape_op,
        "_permute_vjp": _permute_op,
        "_getitem_vjp": _getitem_op,
        "_concatenate_vjp": _concat_op,
        "_stack_vjp": _stack_op,
        "_softmax_vjp": _softmax_op("Softmax"),
        "_log_softmax_vjp": _softmax_op("LogSoftmax"),
        "_leaky_relu_vjp": _leaky_relu_op,
        "_astype_vjp": _astype_op,
    }
)
