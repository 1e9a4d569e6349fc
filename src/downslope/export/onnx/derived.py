"""Ops the tracer follows from their Python calls rather than from a recorded gradient rule.

Some values of a forward are made without being recorded (a comparison's mask, a cast to an integer,
argmax, ``x.detach()``), and some recorded results say too little about how they were made (amax
and amin share one rule; ``repeat`` and reflection padding are an index into the input; F.max_pool2d
saves only its window geometry). While tracing, the exporter watches the calls whose code is in
:data:`DERIVED` return and reads their arguments (the frame's locals) to write the op's own ONNX nodes.

A handler ``(tracer, local, result) -> emit | None`` is called when the op returns; ``emit()`` writes
the nodes when the value is used and returns the name of the result's graph value. ``None`` leaves
the result to the tracer's other rules (a recorded rule, or a constant that the check then tests).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ExportError
from ...tensor import Tensor
from .graph import EMITTERS, broadcast_axis

if TYPE_CHECKING:
    from .tracing import _Tracer

Emit = Callable[[], str]
Handler = Callable[["_Tracer", dict[str, Any], Any], "Emit | None"]


def _elementwise(tr: _Tracer, y: str, result: Tensor, names: list[str], operands: list[Any]) -> str:
    """``y``, the value of an elementwise op on ``operands`` (graph values ``names``), with its batch axis."""
    pairs = [(n, p) for n, p in zip(names, operands) if isinstance(p, Tensor)]
    tr.g.batch_axis[y] = broadcast_axis(tr.g, result, [n for n, _ in pairs], tuple(p for _, p in pairs))
    return y


def _compare(onnx_op: str, negate: bool = False) -> Handler:
    """``x < y`` and the other comparisons, their operands in the dtype the comparison used."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        me, other, a, b = local.get("self"), local.get("other"), local.get("a"), local.get("b")
        if not isinstance(me, Tensor) or a is None or b is None:
            return None
        common = np.result_type(a, b)

        def emit() -> str:
            left = tr.cast(tr.resolve(me), me, common)
            if isinstance(other, Tensor):
                right = tr.cast(tr.resolve(other), other, common)
            else:
                right = tr.g.const(np.asarray(b, dtype=common), "number")
            y = tr.g.node(onnx_op, [left, right], onnx_op.lower())
            if negate:
                y = tr.g.node("Not", [y], "not")
            return _elementwise(tr, y, result, [left, right], [me, other])

        return emit

    return make


def _as_bool(tr: _Tracer, t: Tensor) -> str:
    name = tr.resolve(t)
    return name if t.array.dtype == np.bool_ else tr.cast(name, t, np.dtype(bool))


def _logical_not(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    me = local.get("self")
    if not isinstance(me, Tensor) or result.array.dtype != np.bool_:  # ~ on an integer tensor: a bitwise not
        return None

    def emit() -> str:
        x = _as_bool(tr, me)
        return _elementwise(tr, tr.g.node("Not", [x], "not"), result, [x], [me])

    return emit


def _bitwise(op: str) -> Handler:
    """``mask & mask``, ``|`` and ``^`` of boolean tensors (integers' bitwise ops are not followed)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        t, other = local.get("self"), local.get("other")
        if result.array.dtype != np.bool_ or not isinstance(t, Tensor) or t.array.dtype != np.bool_:
            return None
        return _logical(tr, op, t, other, result)

    return make


def _logical(tr: _Tracer, op: str, t: Tensor, other: Any, result: Tensor) -> Emit:

    def emit() -> str:
        left = tr.resolve(t)
        right = _as_bool(tr, other) if isinstance(other, Tensor) else tr.g.const(np.asarray(bool(other)), "flag")
        return _elementwise(tr, tr.g.node(op, [left, right], op.lower()), result, [left, right], [t, other])

    return emit


def _reduced_batch(batch: int | None, axes: list[int], keep: bool) -> int | None:
    if batch is None or batch in axes:
        return None
    return batch if keep else batch - sum(1 for a in axes if a < batch)


def _arg_extreme(op: str) -> Handler:
    """argmax/argmin: ONNX's ArgMax/ArgMin pick the first extreme, as NumPy does."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        t, dim, axis = local.get("self"), local.get("dim"), local.get("axis")
        if not isinstance(t, Tensor) or t.ndim == 0:
            return None
        d = dim if axis is None else axis
        return _arg_nodes(tr, op, t, None if d is None else int(d) % t.ndim, bool(local.get("keepdim")))

    return make


def _arg_nodes(tr: _Tracer, op: str, t: Tensor, dim: int | None, keepdim: bool) -> Emit:

    def emit() -> str:
        x = tr.resolve(t)
        if dim is None:  # over the flattened tensor
            flat = tr.g.node("Reshape", [x, tr.g.ints([-1])], "flatten")
            y = tr.g.node(op, [flat], op.lower(), axis=0, keepdims=0)
            if keepdim:
                y = tr.g.node("Reshape", [y, tr.g.ints([1] * t.ndim)], op.lower())
            tr.g.batch_axis[y] = None
            return y
        y = tr.g.node(op, [x], op.lower(), axis=dim, keepdims=int(keepdim))
        tr.g.batch_axis[y] = _reduced_batch(tr.g.batch_axis.get(x), [dim], keepdim)
        return y

    return emit


def _reduce(tr: _Tracer, op: str, x: str, axes: list[int], keep: bool) -> str:
    """ReduceMax/ReduceMin over ``axes``: their axes are an input from opset 18 on, an attribute before."""
    if tr.g.opset >= 18:
        y = tr.g.node(op, [x, tr.g.ints(axes, "axes")], op.lower(), keepdims=int(keep))
    else:
        y = tr.g.node(op, [x], op.lower(), axes=axes, keepdims=int(keep))
    tr.g.batch_axis[y] = _reduced_batch(tr.g.batch_axis.get(x), axes, keep)
    return y


def _extreme(op: str) -> Handler:
    """amax/amin, and max()/min() over everything: their rule is the same for both directions; the axes
    and keepdim are the ones the op saved, (kept shape, keepdim, axes)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        x, saved = local.get("x"), result._saved
        if isinstance(local.get("dim"), Tensor):  # max(a, b): the elementwise maximum, recorded as such
            return None
        if not isinstance(x, Tensor) or x.ndim == 0 or not (isinstance(saved, tuple) and len(saved) == 3):
            return None
        axes, keep = [int(a) for a in saved[2]], bool(saved[1])
        return lambda: _reduce(tr, op, tr.resolve(x), axes, keep)

    return make


def _extreme_with_indices(op: str) -> Callable[[_Tracer, dict[str, Any], Any], list[tuple[Tensor, Emit]]]:
    """``x.max(dim)`` / ``x.min(dim)``: the values (ReduceMax) and the indices (ArgMax) of the named tuple."""
    reduce_op, arg_op = f"Reduce{op}", f"Arg{op}"

    def make(tr: _Tracer, local: dict[str, Any], result: Any) -> list[tuple[Tensor, Emit]]:
        x, d, keep = local.get("x"), local.get("d"), bool(local.get("keep"))
        values, indices = result
        if not isinstance(x, Tensor) or d is None or x.ndim == 0:
            return []
        dim = int(d) % x.ndim
        return [(values, lambda: _reduce(tr, reduce_op, tr.resolve(x), [dim], keep)),
                (indices, _arg_nodes(tr, arg_op, x, dim, keep))]  # fmt: skip

    return make


def _cast(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    x = local.get("x")
    if not isinstance(x, Tensor) or result is x:
        return None

    def emit() -> str:
        name = tr.resolve(x)
        y = tr.g.node("Cast", [name], "cast", to=tr.g.onnx.helper.np_dtype_to_tensor_dtype(result.array.dtype))
        return _elementwise(tr, y, result, [name], [x])

    return emit


def _detach(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """``x.detach()`` of a traced value (var() holds its mean constant so): the same value in the graph."""
    me = local.get("self")
    if not isinstance(me, Tensor) or tr._is_constant(me):
        return None

    def emit() -> str:
        x = tr.resolve(me)
        return _elementwise(tr, tr.g.node("Identity", [x], "detach"), result, [x], [me])

    return emit


def _where(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """``where(mask, a, b)`` of values that are not recorded (``where(x > 0, 1.0, 0.0)``)."""
    condition, a, b = local.get("condition"), local.get("a"), local.get("b")
    if not (isinstance(condition, Tensor) and isinstance(a, Tensor) and isinstance(b, Tensor)):
        return None

    def emit() -> str:
        names = [_as_bool(tr, condition)] + [tr.cast(tr.resolve(v), v, result.array.dtype) for v in (a, b)]
        return _elementwise(tr, tr.g.node("Where", names, "where"), result, names, [condition, a, b])

    return emit


def _cosine_similarity(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """F.cosine_similarity, written by nn.CosineSimilarity's emitter (torch's formula with eps)."""
    from ...nn import activation

    x1, x2, dim, eps = local.get("x1"), local.get("x2"), local.get("dim"), local.get("eps")
    if not (isinstance(x1, Tensor) and isinstance(x2, Tensor)) or dim is None or eps is None:
        return None
    layer = _as_layer("cosine_similarity", dim=int(dim), eps=float(eps))

    def emit() -> str:
        names = [tr.resolve(x1), tr.resolve(x2)]
        emit_pair: Any = EMITTERS[activation.CosineSimilarity]  # a two-input emitter: lists of names and tensors
        y: str = emit_pair(tr.g, layer, names, [x1, x2], result)
        return _elementwise(tr, y, result, names, [x1, x2]) if y not in tr.g.batch_axis else y

    return emit


def _attention(tr: _Tracer, local: dict[str, Any], result: Tensor) -> None:
    """F.scaled_dot_product_attention with a boolean attn_mask: the fused node's mask, for its emitter."""
    mask, node = local.get("mask"), local.get("result")
    if local.get("mask_kind") != "bool" or not isinstance(mask, Tensor) or not isinstance(node, Tensor):
        return
    if getattr(node._vjp, "__name__", "") != "_sdpa_vjp" and node._parents:  # grouped heads: reshaped after it
        node = node._parents[0]
    if getattr(node._vjp, "__name__", "") == "_sdpa_vjp":
        tr.attention_masks[id(node)] = (node, mask, bool(local.get("is_causal")))


def _repeat(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """``x.repeat(*sizes)`` as a Tile (the batch dim repeated once, so that any batch size works)."""
    x, reps = local.get("x"), local.get("reps")
    if not isinstance(x, Tensor) or reps is None or len(reps) != x.ndim:
        return None

    def emit() -> str:
        name = tr.resolve(x)
        batch = tr.g.batch_axis.get(name)
        if batch is not None and int(reps[batch]) != 1:
            raise ExportError(
                f"repeat{tuple(int(r) for r in reps)} repeats the batch dim {batch} (the dim that follows the input's "
                f"dim 0), which cannot be written for any batch size; repeat the other dims, or export with "
                f"dynamic_batch=False"
            )
        y = tr.g.node("Tile", [name, tr.g.ints([int(r) for r in reps], "repeats")], "repeat")
        tr.g.batch_axis[y] = batch
        return y

    return emit


def _pad(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """F.pad / ds.ops.pad: constant (any value), reflect and replicate (ONNX's Pad modes)."""
    x, widths, mode, value = local.get("x"), local.get("widths"), local.get("mode"), local.get("value")
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}.get(mode)  # type: ignore[arg-type]
    if onnx_mode is None or not isinstance(x, Tensor) or widths is None or len(widths) != x.ndim:
        return None
    if any(b < 0 or a < 0 for b, a in widths):  # (constant mode has cropped by now; the others map positions)
        return None

    def emit() -> str:
        name = tr.resolve(x)
        batch = tr.g.batch_axis.get(name)
        if batch is not None and any(widths[batch]):
            raise ExportError(
                f"pad {tuple(widths[batch])} on the batch dim {batch} cannot be written for any batch size; pad the "
                f"other dims, or export with dynamic_batch=False"
            )
        pads = [int(b) for b, _ in widths] + [int(a) for _, a in widths]
        inputs = [name, tr.g.ints(pads, "pads")]
        if onnx_mode == "constant":
            inputs.append(tr.g.const(np.asarray(0 if value is None else value, result.array.dtype), "pad_value"))
        y = tr.g.node("Pad", inputs, "pad", mode=onnx_mode)
        tr.g.batch_axis[y] = batch
        return y

    return emit


def _as_layer(kind: str, **attrs: Any) -> Any:
    """An object with a layer's attributes, for its emitter (named like the functional form in messages)."""
    layer = type(kind, (types.SimpleNamespace,), {})()
    vars(layer).update(attrs)
    return layer


def _layer_form(build: Callable[[dict[str, Any]], tuple[Any, Any] | None]) -> Handler:
    """A functional form written by its layer's emitter: ``build(local)`` gives (the layer or an object with
    its attributes, the emitter's key class), or None when the call is not one the layer can write."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        x = local.get("input")
        built = build(local)
        if not isinstance(x, Tensor) or built is None:
            return None
        layer, key = built
        # The weights are written as constants: only the model's own (parameters, buffers).
        if any(isinstance(w, Tensor) and not tr._is_constant(w) for w in vars(layer).values()):
            return None

        def emit() -> str:
            name = tr.resolve(x)
            y: str = EMITTERS[key](tr.g, layer, name, x, result)
            if y not in tr.g.batch_axis:
                axis = tr.g.batch_axis.get(name)
                tr.g.batch_axis[y] = axis if axis is not None and axis < result.ndim else None
            return y

        return emit

    return make


def _pool(cls_name: str) -> Callable[[dict[str, Any]], tuple[Any, Any] | None]:
    from ...nn import convolution as conv

    cls = getattr(conv, cls_name)

    def build(local: dict[str, Any]) -> tuple[Any, Any] | None:
        if local.get("return_indices"):
            return None
        keys = ["kernel_size", "stride", "padding", "ceil_mode"]
        keys += ["dilation"] if "Max" in cls_name else ["count_include_pad"]
        if "divisor_override" in local and local["divisor_override"] is not None:
            return None
        kwargs = {k: local[k] for k in keys if k in local}
        return cls(**kwargs), cls

    return build


def _conv_build(n: int) -> Callable[[dict[str, Any]], tuple[Any, Any] | None]:
    from ...nn import convolution as conv

    def build(local: dict[str, Any]) -> tuple[Any, Any] | None:
        weight, padding = local.get("weight"), local.get("padding")
        if not isinstance(weight, Tensor) or weight.ndim != n + 2:
            return None

        def tup(v: Any) -> tuple[int, ...]:
            return tuple([int(v)] * n) if isinstance(v, (int, np.integer)) else tuple(int(i) for i in v)

        attrs = {
            "weight": weight,
            "bias": local.get("bias"),
            "kernel_size": tuple(weight.shape[2:]),
            "stride": tup(local.get("stride", 1)),
            "dilation": tup(local.get("dilation", 1)),
            "padding": padding if isinstance(padding, str) else tup(padding),
            "groups": int(local.get("groups", 1)),
            "padding_mode": "zeros",
        }
        return _as_layer(f"conv{n}d", **attrs), conv.Conv2d

    return build


def _layer_norm_build(local: dict[str, Any]) -> tuple[Any, Any] | None:
    from ...nn import normalization

    shape = local.get("normalized_shape")
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)  # type: ignore[union-attr]
    attrs = {"normalized_shape": shape, "weight": local.get("weight"), "bias": local.get("bias"), "eps": local["eps"]}
    return _as_layer("layer_norm", **attrs), normalization.LayerNorm


def _embedding_build(local: dict[str, Any]) -> tuple[Any, Any] | None:
    from ...nn import layers

    weight = local.get("weight")
    if not isinstance(weight, Tensor):
        return None
    attrs = {"weight": weight, "max_norm": local.get("max_norm"), "norm_type": local.get("norm_type", 2.0)}
    return _as_layer("embedding", **attrs), layers.Embedding


def _code(fn: Any) -> Any:
    """The code that runs for ``fn``: the function inside an out=/method wrapper (ops/out.py)."""
    return inspect.unwrap(fn).__code__


def _table() -> tuple[
    dict[Any, Handler], dict[Any, Callable[..., list[tuple[Tensor, Emit]]]], dict[Any, Callable[..., None]]
]:
    """(handlers of single results by code, handlers of named-tuple results by code, calls only noted:
    scaled_dot_product_attention's boolean mask). Only public functions and methods are watched."""
    from ...nn import attention, convolution, functional, layers, normalization, pooling
    from ...ops import pointwise, rearrange, reductions

    table: dict[Any, Handler] = {
        _code(Tensor.__dict__[name]): _compare(op, negate)
        for name, op, negate in [
            ("__lt__", "Less", False), ("__le__", "LessOrEqual", False), ("__gt__", "Greater", False),
            ("__ge__", "GreaterOrEqual", False), ("__eq__", "Equal", False), ("__ne__", "Equal", True),
        ]
    }  # fmt: skip
    table.update(
        {
            _code(Tensor.__dict__["__invert__"]): _logical_not,
            _code(Tensor.__dict__["logical_not"]): _logical_not,
            _code(Tensor.__dict__["detach"]): _detach,
            _code(Tensor.__dict__["__and__"]): _bitwise("And"),
            _code(Tensor.__dict__["__or__"]): _bitwise("Or"),
            _code(Tensor.__dict__["__xor__"]): _bitwise("Xor"),
            _code(Tensor.__dict__["argmax"]): _arg_extreme("ArgMax"),
            _code(Tensor.__dict__["argmin"]): _arg_extreme("ArgMin"),
            _code(pointwise.astype): _cast,
            _code(pointwise.where): _where,
            _code(functional.cosine_similarity): _cosine_similarity,
            _code(reductions.amax): _extreme("ReduceMax"),
            _code(reductions.amin): _extreme("ReduceMin"),
            _code(reductions.max): _extreme("ReduceMax"),
            _code(reductions.min): _extreme("ReduceMin"),
            _code(rearrange.repeat): _repeat,
            _code(rearrange.pad): _pad,
            _code(pooling.max_pool2d): _layer_form(_pool("MaxPool2d")),
            _code(pooling.max_pool1d): _layer_form(_pool("MaxPool1d")),
            _code(pooling.avg_pool2d): _layer_form(_pool("AvgPool2d")),
            _code(pooling.avg_pool1d): _layer_form(_pool("AvgPool1d")),
            _code(convolution.conv2d): _layer_form(_conv_build(2)),
            _code(convolution.conv1d): _layer_form(_conv_build(1)),
            _code(normalization.layer_norm): _layer_form(_layer_norm_build),
            _code(layers.embedding): _layer_form(_embedding_build),
        }
    )
    tuples = {
        _code(reductions.max): _extreme_with_indices("Max"),
        _code(reductions.min): _extreme_with_indices("Min"),
    }
    return table, tuples, {_code(attention.scaled_dot_product_attention): _attention}


DERIVED, DERIVED_TUPLES, NOTED = _table()
# What the calls above add to the tensor ops the tracer translates (for messages and supported_ops()).
DERIVED_NAMES = [
    "lt", "le", "gt", "ge", "eq", "ne", "logical_not", "and", "or", "xor", "argmax", "argmin", "astype",
    "detach", "where(mask)", "cosine_similarity", "amax", "amin", "max(dim)", "min(dim)", "repeat", "pad",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "layer_norm", "embedding",
]  # fmt: skip
