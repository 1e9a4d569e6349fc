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
    """``mask & mask``, ``|`` and ``^`` of boolean tensors (And, Or, Xor), and of integer tensors (ONNX's
    BitwiseAnd/Or/Xor, from opset 18 on)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        t, other = local.get("self"), local.get("other")
        if not isinstance(t, Tensor):
            return None
        if result.array.dtype.kind in "iu":
            return _integer_bitwise(tr, f"Bitwise{op}", t, other, result)
        if result.array.dtype != np.bool_ or t.array.dtype != np.bool_:
            return None
        return _logical(tr, op, t, other, result)

    return make


def _int_operands(tr: _Tracer, t: Tensor, other: Any, result: Tensor) -> tuple[str, str]:
    """The two operands of an integer op as graph values in the result's dtype (a number as a constant)."""
    dtype = result.array.dtype
    left = tr.cast(tr.resolve(t), t, dtype)
    if isinstance(other, Tensor):
        return left, tr.cast(tr.resolve(other), other, dtype)
    return left, tr.g.const(np.asarray(other).astype(dtype), "number")


def _integer_bitwise(tr: _Tracer, op: str, t: Tensor, other: Any, result: Tensor) -> Emit:
    def emit() -> str:
        if tr.g.opset < 18:
            raise ExportError(
                f"{op} of integer tensors is an ONNX operator from opset 18 on, and this graph is written for "
                f"opset {tr.g.opset}; export with opset=18 or later"
            )
        left, right = _int_operands(tr, t, other, result)
        return _elementwise(tr, tr.g.node(op, [left, right], op.lower()), result, [left, right], [t, other])

    return emit


def _invert(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
    """``~x`` of an integer tensor: -x - 1 for signed integers (two's complement), max - x for unsigned
    ones; written so in every opset (BitwiseNot is an ONNX operator from opset 18 only). Booleans: Not."""
    me = local.get("self")
    if not isinstance(me, Tensor):
        return None
    if result.array.dtype == np.bool_:
        return _logical_not(tr, local, result)
    dtype = result.array.dtype
    if dtype.kind not in "iu":
        return None

    def emit() -> str:
        x = tr.cast(tr.resolve(me), me, dtype)
        if dtype.kind == "u":
            y = tr.g.node("Sub", [_number(tr, np.iinfo(dtype).max, dtype), x], "invert")
        else:
            y = tr.g.node("Sub", [tr.g.node("Neg", [x]), _number(tr, 1, dtype)], "invert")
        return _elementwise(tr, y, result, [x], [me])

    return emit


def _shift(direction: str) -> Handler:
    """``x << s`` and ``x >> s`` of integer tensors (torch's: the right shift of a signed integer is
    arithmetic, rounding down). ONNX's BitShift takes unsigned integers only: the bits go through uint64
    (a left shift wraps as in two's complement), and a negative x shifted right is ~((~x) >> s)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        t, other = local.get("self"), local.get("other")
        dtype = result.array.dtype
        if not isinstance(t, Tensor) or dtype.kind not in "iu":
            return None

        def emit() -> str:
            x, s = _int_operands(tr, t, other, result)
            u64 = tr.g.onnx.TensorProto.UINT64
            to = tr.g.onnx.helper.np_dtype_to_tensor_dtype(dtype)
            amount = tr.g.node("Cast", [s], "shift", to=u64)
            if direction == "LEFT" or dtype.kind == "u":
                bits = tr.g.node("BitShift", [tr.g.node("Cast", [x], to=u64), amount], direction=direction)
                y = tr.g.node("Cast", [bits], "shifted", to=to)
            else:
                negative = tr.g.node("Less", [x, _number(tr, 0, dtype)])
                flipped = tr.g.node("Sub", [tr.g.node("Neg", [x]), _number(tr, 1, dtype)])
                base = tr.g.node("Cast", [tr.g.node("Where", [negative, flipped, x])], to=u64)
                shifted = tr.g.node("Cast", [tr.g.node("BitShift", [base, amount], direction="RIGHT")], to=to)
                back = tr.g.node("Sub", [tr.g.node("Neg", [shifted]), _number(tr, 1, dtype)])
                y = tr.g.node("Where", [negative, back, shifted], "shifted")
            return _elementwise(tr, y, result, [x, s], [t, other])

        return emit

    return make


def _filled_like(value_key: str | None, fill: float = 0.0) -> Handler:
    """zeros_like/ones_like/full_like of a traced tensor: ConstantOfShape of its shape at run time, so
    that the result follows the batch size (the trace would freeze the example's shape)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        x = local.get("t")
        if not isinstance(x, Tensor) or not isinstance(result, Tensor) or tr._is_constant(x) or result is x:
            return None
        value = local.get(value_key) if value_key else fill
        if isinstance(value, Tensor) or result.array.dtype.kind not in "biuf" or tuple(result.shape) != x.shape:
            return None
        return _constant_of_shape(tr, x, result, value, None)

    return make


def _constant_of_shape(tr: _Tracer, x: Tensor, result: Tensor, value: Any, sizes: Any) -> Emit:
    """``value`` in ``result``'s dtype and shape: the shape is ``x``'s at run time (``sizes`` None) or
    ``sizes`` with the batch dim of ``x`` read from ``x`` at run time where ``sizes`` has it."""

    def emit() -> str:
        name = tr.resolve(x)
        filler = tr.g.onnx.numpy_helper.from_array(np.asarray([value]).astype(result.array.dtype), "value")
        batch = tr.g.batch_axis.get(name)
        if sizes is None:
            shape = tr.g.node("Shape", [name], "shape")
            out_batch = batch
        else:
            shape, out_batch = tr.g.ints([int(n) for n in sizes], "sizes"), None
            if batch is not None and batch < len(sizes) and int(sizes[batch]) == x.shape[batch] != 1:
                size = tr.g.node("Gather", [tr.g.node("Shape", [name], "shape"), tr.g.ints([batch])], axis=0)
                parts = [tr.g.ints([int(n) for n in sizes[:batch]], "sizes")] if batch else []
                parts.append(size)
                if batch + 1 < len(sizes):
                    parts.append(tr.g.ints([int(n) for n in sizes[batch + 1 :]], "sizes"))
                shape = parts[0] if len(parts) == 1 else tr.g.node("Concat", parts, "sizes", axis=0)
                out_batch = batch
        if not result.ndim:
            y = tr.g.const(np.asarray(value).astype(result.array.dtype), "filled")
        else:
            y = tr.g.node("ConstantOfShape", [shape], "filled", value=filler)
        tr.g.batch_axis[y] = out_batch
        return y

    return emit


def _new_filled(fill: float | None) -> Handler:
    """``x.new_zeros(sizes)``, ``new_ones``, ``new_full(sizes, value)`` of a traced ``x``: a dim of
    ``sizes`` at ``x``'s batch dim, of the example's batch size, is read from ``x`` at run time (as
    ``x.new_zeros(x.shape[0], H)`` means); the other dims are the sizes given. The second-batch check
    then tests that reading."""

    def make(tr: _Tracer, local: dict[str, Any], result: Tensor) -> Emit | None:
        x = local.get("self")
        if not isinstance(x, Tensor) or not isinstance(result, Tensor) or tr._is_constant(x) or result is x:
            return None
        value = local.get("fill_value") if fill is None else fill
        if isinstance(value, Tensor) or result.array.dtype.kind not in "biuf":
            return None
        return _constant_of_shape(tr, x, result, value, tuple(result.shape))

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


def _number(tr: _Tracer, value: Any, dtype: Any, hint: str = "number") -> str:
    return tr.g.const(np.asarray(value, dtype=dtype), hint)


def _function(build: Callable[..., str], *operands: str, when: Callable[..., bool] | None = None) -> Handler:
    """A function whose result the graph computes by ``build(tr, names, tensors, local, result)``:
    ``names`` are the graph values of its operands (the locals ``operands``; None for a number),
    ``tensors`` the operands themselves. Elementwise unless ``build`` sets the result's batch axis.
    ``when(local, result)`` can leave a call to the tracer's other rules (None)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Any) -> Emit | None:
        values = [local.get(n) for n in operands]
        if not isinstance(result, Tensor) or not isinstance(values[0], Tensor) or result is values[0]:
            return None
        if when is not None and not when(local, result):
            return None

        def emit() -> str:
            names = [tr.resolve(v) if isinstance(v, Tensor) else None for v in values]
            y = build(tr, names, values, local, result)
            if y not in tr.g.batch_axis:
                known = [(n, v) for n, v in zip(names, values) if n is not None]
                _elementwise(tr, y, result, [n for n, _ in known], [v for _, v in known])
            return y

        return emit

    return make


def _operand(tr: _Tracer, name: str | None, value: Any, dtype: Any) -> str:
    """An operand's graph value in ``dtype``: a traced tensor cast when needed, or a number as a constant."""
    if name is None:
        return _number(tr, value, dtype)
    return tr.cast(name, value, np.dtype(dtype))


def _cast_of(source: str) -> Handler:
    """A helper that returns its tensor operand ``source`` in another dtype (operand promotion): a Cast."""

    def make(tr: _Tracer, local: dict[str, Any], result: Any) -> Emit | None:
        x = local.get(source)
        if not isinstance(x, Tensor) or not isinstance(result, Tensor) or result is x:
            return None
        if result.array.dtype.kind not in "biuf" or x.array.dtype.kind not in "biuf":
            return None
        return _cast_nodes(tr, x, result)

    return make


def _cast_nodes(tr: _Tracer, x: Tensor, result: Tensor) -> Emit:
    def emit() -> str:
        name = tr.resolve(x)
        y = tr.g.node("Cast", [name], "cast", to=tr.g.onnx.helper.np_dtype_to_tensor_dtype(result.array.dtype))
        return _elementwise(tr, y, result, [name], [x])

    return emit


def _promoted_pair(tr: _Tracer, local: dict[str, Any], result: Any) -> list[tuple[Tensor, Emit]]:
    """operands' ``_pair(a0, b0)``: each tensor operand it returned in another dtype is a Cast of it."""
    out = []
    for given, made in zip((local.get("a0"), local.get("b0")), result):
        if isinstance(given, Tensor) and isinstance(made, Tensor) and made is not given:
            if given.array.dtype.kind in "biuf" and made.array.dtype.kind in "biuf":
                out.append((made, _cast_nodes(tr, given, made)))
    return out


def _bool(tr: _Tracer, name: str, t: Tensor) -> str:
    return name if t.array.dtype == np.bool_ else tr.cast(name, t, np.dtype(bool))


def _truth_reduce(op: str) -> Callable[..., str]:
    """Tensor.all/any over ``axes`` (None: every dim): ReduceMin/ReduceMax of the truth values as int32."""

    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        x, t = names[0], values[0]
        axes = local.get("axes")
        axes = list(range(t.ndim)) if axes is None else [int(a) % max(t.ndim, 1) for a in np.atleast_1d(axes)]
        as_int = tr.g.node("Cast", [_bool(tr, x, t)], "truth", to=tr.g.onnx.TensorProto.INT32)
        tr.g.batch_axis[as_int] = tr.g.batch_axis.get(x)
        if not axes:
            y = as_int
        else:
            y = _reduce(tr, op, as_int, axes, bool(local.get("keepdim")))
        out = tr.g.node("Cast", [y], op.lower(), to=tr.g.onnx.TensorProto.BOOL)
        tr.g.batch_axis[out] = tr.g.batch_axis.get(y)
        return out

    return build


def _count_nonzero(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    x, t = names[0], values[0]
    axes = local.get("axes")
    axes = list(range(t.ndim)) if axes is None else [int(a) for a in np.atleast_1d(axes)]
    nonzero = _bool(tr, x, t)
    counts = tr.g.node("Cast", [nonzero], "nonzero", to=tr.g.onnx.TensorProto.INT64)
    if not axes:
        y = tr.g.node("Identity", [counts], "count_nonzero")
        tr.g.batch_axis[y] = tr.g.batch_axis.get(x)
        return y
    y = tr.g.node("ReduceSum", [counts, tr.g.ints(axes, "axes")], "count_nonzero", keepdims=0)
    tr.g.batch_axis[y] = _reduced_batch(tr.g.batch_axis.get(x), axes, False)
    return y


def _one_hot(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """F.one_hot as its own definition: the indices (with a new last dim) equal to arange(n), as int64."""
    n = int(result.shape[-1])
    idx = tr.g.node("Unsqueeze", [tr.cast(names[0], values[0], np.dtype(np.int64)), tr.g.ints([-1], "axes")])
    hit = tr.g.node("Equal", [idx, tr.g.ints(list(range(n)), "classes")], "one_hot_hit")
    y = tr.g.node("Cast", [hit], "one_hot", to=tr.g.onnx.TensorProto.INT64)
    tr.g.batch_axis[y] = tr.g.batch_axis.get(names[0])
    return y


def _unary(op: str, **attrs: Any) -> Callable[..., str]:
    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        x = tr.cast(names[0], values[0], result.array.dtype)
        return tr.g.node(op, [x], op.lower(), **attrs)

    return build


def _trunc_nodes(tr: _Tracer, x: str, dtype: Any) -> str:
    negative = tr.g.node("Less", [x, _number(tr, 0, dtype)])
    return tr.g.node("Where", [negative, tr.g.node("Ceil", [x]), tr.g.node("Floor", [x])], "trunc")


def _rounding(kind: str) -> Callable[..., str]:
    """floor/ceil/round(decimals)/trunc of a float tensor (integers are returned as they are)."""

    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        x, dtype = names[0], result.array.dtype
        if kind == "trunc":
            return _trunc_nodes(tr, x, dtype)
        if kind != "round" or not local.get("decimals"):
            return tr.g.node(kind.capitalize(), [x], kind)
        scale = _number(tr, 10.0 ** int(local["decimals"]), dtype, "scale")
        return tr.g.node("Div", [tr.g.node("Round", [tr.g.node("Mul", [x, scale])]), scale], "round")

    return build


def _when_float(local: dict[str, Any], result: Any) -> bool:
    return result.array.dtype.kind == "f"


def _sign(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    y = tr.g.node("Sign", [names[0]], "sign")
    if result.array.dtype.kind == "f":  # torch's sign of NaN is 0 (ONNX's is NaN)
        y = tr.g.node("Where", [tr.g.node("IsNaN", [names[0]]), _number(tr, 0, result.array.dtype), y], "sign")
    return y


def _frac(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    return tr.g.node("Sub", [names[0], _trunc_nodes(tr, names[0], result.array.dtype)], "frac")


def _signbit(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    x, t = names[0], values[0]
    zero = _number(tr, 0, t.array.dtype)
    below = tr.g.node("Less", [x, zero])
    if t.array.dtype.kind != "f":
        return below
    # -0.0 has its sign bit set: 1 / -0.0 is -inf
    inverse = tr.g.node("Div", [_number(tr, 1, t.array.dtype), x])
    negative_zero = tr.g.node("And", [tr.g.node("Equal", [x, zero]), tr.g.node("Less", [inverse, zero])])
    return tr.g.node("Or", [below, negative_zero], "signbit")


def _is(kind: str) -> Callable[..., str]:
    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        x = names[0]
        if kind == "isnan":
            return tr.g.node("IsNaN", [x], "isnan")
        if kind == "isinf":
            return tr.g.node("IsInf", [x], "isinf")
        bad = tr.g.node("Or", [tr.g.node("IsNaN", [x]), tr.g.node("IsInf", [x])])
        return tr.g.node("Not", [bad], "isfinite")

    return build


def _logical_of(op: str) -> Callable[..., str]:
    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        left = _bool(tr, names[0], values[0])
        if names[1] is None:
            right = _number(tr, bool(values[1]), bool, "flag")
        else:
            right = _bool(tr, names[1], values[1])
        return tr.g.node(op, [left, right], op.lower())

    return build


def _heaviside(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    x = tr.cast(names[0], values[0], dtype)
    v = _operand(tr, names[1], values[1], dtype)
    zero = _number(tr, 0, dtype)
    above = tr.g.node("Cast", [tr.g.node("Greater", [x, zero])], to=tr.g.onnx.helper.np_dtype_to_tensor_dtype(dtype))
    return tr.g.node("Where", [tr.g.node("Equal", [x, zero]), v, above], "heaviside")


def _floor_divide(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    a = _operand(tr, names[0], values[0], dtype)
    b = _operand(tr, names[1], values[1], dtype)
    if dtype.kind == "f":
        return tr.g.node("Floor", [tr.g.node("Div", [a, b])], "floor_divide")
    # integers: a - (a mod b) with Python's modulo (the divisor's sign) is a multiple of b; Div is then exact
    rest = tr.g.node("Mod", [a, b], fmod=0)
    return tr.g.node("Div", [tr.g.node("Sub", [a, rest]), b], "floor_divide")


def _remainder(fmod: bool) -> Callable[..., str]:
    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        dtype = result.array.dtype
        a = _operand(tr, names[0], values[0], dtype)
        b = _operand(tr, names[1], values[1], dtype)
        if dtype.kind == "f" and not fmod:  # ONNX's Mod of floats is C's fmod only: a - b floor(a / b)
            q = tr.g.node("Floor", [tr.g.node("Div", [a, b])])
            return tr.g.node("Sub", [a, tr.g.node("Mul", [b, q])], "remainder")
        return tr.g.node("Mod", [a, b], "fmod" if fmod else "remainder", fmod=int(fmod or dtype.kind == "f"))

    return build


def _integer_pow(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    return tr.g.node("Pow", [_operand(tr, names[0], values[0], dtype), _operand(tr, names[1], values[1], dtype)])


def _when_unrecorded(local: dict[str, Any], result: Any) -> bool:
    return getattr(result, "_vjp", None) is None


def _clip_between(lo_key: str | None, hi_key: str | None, lo: float = 0.0, hi: float = 0.0) -> Callable[..., str]:
    """hardtanh(min_val, max_val) and relu6 as a Clip (NaN passes through both)."""

    def build(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
        dtype = result.array.dtype
        low = float(local[lo_key]) if lo_key else lo
        high = float(local[hi_key]) if hi_key else hi
        return tr.g.node("Clip", [names[0], _number(tr, low, dtype), _number(tr, high, dtype)], "hardtanh")

    return build


def _threshold(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    below = tr.g.node("LessOrEqual", [names[0], _number(tr, local["threshold"], dtype)])
    return tr.g.node("Where", [below, _number(tr, local["value"], dtype), names[0]], "threshold")


def _softplus(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """log(1 + e^(beta x)) / beta, x itself where beta x > threshold (torch's definition)."""
    dtype = result.array.dtype
    scaled = tr.g.node("Mul", [names[0], _number(tr, local["beta"], dtype)])
    soft = tr.g.node("Div", [tr.g.node("Softplus", [scaled]), _number(tr, local["beta"], dtype)])
    linear = tr.g.node("Greater", [scaled, _number(tr, local["threshold"], dtype)])
    return tr.g.node("Where", [linear, names[0], soft], "softplus")


def _elu_family(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """torch's ELU kernel (elu, selu, celu): scale x for x > 0, alpha scale (e^(input_scale x) - 1) otherwise."""
    dtype, x = result.array.dtype, names[0]
    alpha, scale, inner = (float(local[k]) for k in ("alpha", "scale", "input_scale"))
    grown = tr.g.node(
        "Sub", [tr.g.node("Exp", [tr.g.node("Mul", [x, _number(tr, inner, dtype)])]), _number(tr, 1, dtype)]
    )
    low = tr.g.node("Mul", [grown, _number(tr, alpha, dtype)])
    picked = tr.g.node("Where", [tr.g.node("Greater", [x, _number(tr, 0, dtype)]), x, low])
    return tr.g.node("Mul", [picked, _number(tr, scale, dtype)], "elu")


def _mish(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    return tr.g.node("Mul", [names[0], tr.g.node("Tanh", [tr.g.node("Softplus", [names[0]])])], "mish")


def _hardsigmoid(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    return tr.g.node("HardSigmoid", [names[0]], "hardsigmoid", alpha=1.0 / 6.0, beta=0.5)


def _logsigmoid(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    return tr.g.node("Neg", [tr.g.node("Softplus", [tr.g.node("Neg", [names[0]])])], "logsigmoid")


def _logsumexp(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """logsumexp over its dims, stable: the max (0 where it is infinite) taken out first."""
    x, t = names[0], values[0]
    axes = [int(a) for a in local["axes"]] if local.get("axes") is not None else list(range(t.ndim))
    keep = bool(local.get("keep"))
    dtype = result.array.dtype
    top = _reduce(tr, "ReduceMax", x, axes, True)
    finite = tr.g.node("Where", [tr.g.node("IsInf", [top]), _number(tr, 0, dtype), top])
    total = tr.g.node("ReduceSum", [tr.g.node("Exp", [tr.g.node("Sub", [x, finite])]), tr.g.ints(axes, "axes")],
                      keepdims=1)  # fmt: skip
    y = tr.g.node("Add", [tr.g.node("Log", [total]), finite])
    if not keep:
        y = tr.g.node("Squeeze", [y, tr.g.ints(axes, "axes")], "logsumexp")
    tr.g.batch_axis[y] = _reduced_batch(tr.g.batch_axis.get(x), axes, keep)
    return y


def _prod(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    x, t = names[0], values[0]
    dim = local.get("d", local.get("dim"))
    axes = list(range(t.ndim)) if dim is None else [int(d) % t.ndim for d in np.atleast_1d(dim)]
    x = tr.cast(x, t, result.array.dtype)
    keep = bool(local.get("keepdim"))
    if tr.g.opset >= 18:
        y = tr.g.node("ReduceProd", [x, tr.g.ints(axes, "axes")], "prod", keepdims=int(keep))
    else:
        y = tr.g.node("ReduceProd", [x], "prod", axes=axes, keepdims=int(keep))
    tr.g.batch_axis[y] = _reduced_batch(tr.g.batch_axis.get(names[0]), axes, keep)
    return y


def _atan2(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """atan2(a, b): atan(a / b), moved by pi into the quadrant of (b, a); pi/2 signs at b == 0."""
    dtype = result.array.dtype
    a, b = (_operand(tr, n, v, dtype) for n, v in zip(names, values))
    zero, pi = _number(tr, 0, dtype), _number(tr, np.pi, dtype)
    base = tr.g.node("Atan", [tr.g.node("Div", [a, b])])
    sign_a = tr.g.node("Where", [tr.g.node("Less", [a, zero]), _number(tr, -1, dtype), _number(tr, 1, dtype)])
    shifted = tr.g.node("Add", [base, tr.g.node("Mul", [sign_a, pi])])
    y = tr.g.node("Where", [tr.g.node("Less", [b, zero]), shifted, base])
    half = tr.g.node("Mul", [tr.g.node("Sign", [a]), _number(tr, np.pi / 2, dtype)])
    return tr.g.node("Where", [tr.g.node("Equal", [b, zero]), half, y], "atan2")


def _addcmul(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    x, t1, t2 = (_operand(tr, n, v, dtype) for n, v in zip(names, values))
    product = tr.g.node("Mul", [t1, t2])
    value = local.get("value", 1)
    if not isinstance(value, (int, float)) or value != 1:
        product = tr.g.node("Mul", [product, _number(tr, float(value), dtype)])
    return tr.g.node("Add", [x, product], "addcmul")


def _square(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    x = tr.cast(names[0], values[0], result.array.dtype)
    return tr.g.node("Mul", [x, x], "square")


def _hypot(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    a, b = (_operand(tr, n, v, result.array.dtype) for n, v in zip(names, values))
    return tr.g.node("Sqrt", [tr.g.node("Add", [tr.g.node("Mul", [a, a]), tr.g.node("Mul", [b, b])])], "hypot")


def _copysign(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype = result.array.dtype
    a, b = (_operand(tr, n, v, dtype) for n, v in zip(names, values))
    size = tr.g.node("Abs", [a])
    zero = _number(tr, 0, dtype)
    # b's sign bit: below zero, or -0.0 (whose reciprocal is -inf)
    negative = tr.g.node(
        "Or",
        [
            tr.g.node("Less", [b, zero]),
            tr.g.node(
                "And",
                [
                    tr.g.node("Equal", [b, zero]),
                    tr.g.node("Less", [tr.g.node("Div", [_number(tr, 1, dtype), b]), zero]),
                ],
            ),
        ],
    )
    return tr.g.node("Where", [negative, tr.g.node("Neg", [size]), size], "copysign")


def _expm1(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    return tr.g.node("Sub", [tr.g.node("Exp", [names[0]]), _number(tr, 1, result.array.dtype)], "expm1")


def _logit(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    dtype, x = result.array.dtype, names[0]
    eps = local.get("eps")
    if eps is not None and eps >= 0:
        x = tr.g.node("Clip", [x, _number(tr, eps, dtype), _number(tr, 1 - eps, dtype)])
    return tr.g.node("Log", [tr.g.node("Div", [x, tr.g.node("Sub", [_number(tr, 1, dtype), x])])], "logit")


def _gather(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    x, t = names[0], values[0]
    dim = int(local["dim"]) % max(t.ndim, 1)
    batch = tr.g.batch_axis.get(x)
    if batch is not None and batch == dim:
        raise ExportError(
            f"gather along the batch dim {dim} picks samples by index, which cannot be written for any batch size; "
            "gather along another dim, or export with dynamic_batch=False"
        )
    index = local.get("index")
    if isinstance(index, Tensor):
        idx = tr.cast(tr.resolve(index), index, np.dtype(np.int64))
    else:
        idx = tr.g.const(np.asarray(index, np.int64), "indices")
    y = tr.g.node("GatherElements", [x, idx], "gather", axis=dim)
    tr.g.batch_axis[y] = batch
    return y


def _einsum(tr: _Tracer, local: dict[str, Any], result: Any) -> Emit | None:
    """einsum with an equation string: ONNX's Einsum node, the batch dim followed by its letter."""
    equation, operands = local.get("equation"), local.get("operands")
    if not isinstance(equation, str) or not isinstance(result, Tensor) or not operands:
        return None
    if not all(isinstance(o, Tensor) for o in operands):
        return None
    eq = equation.replace(" ", "")
    ins_spec = eq.split("->")[0].split(",")
    if "->" in eq:
        out_spec = eq.split("->")[1]
    else:  # implicit output: the letters that appear once, in alphabetical order
        letters = "".join(ins_spec).replace(".", "")
        out_spec = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        eq = f"{eq}->{out_spec}"

    def emit() -> str:
        names = [tr.cast(tr.resolve(o), o, result.array.dtype) for o in operands]
        batch = None
        for name, spec in zip(names, ins_spec):
            axis = tr.g.batch_axis.get(name)
            if axis is None:
                continue
            if "." in spec:
                raise ExportError(
                    f"einsum {equation!r} with '...' over the batch dim cannot be followed for any batch size; "
                    "name the batch dim with a letter, or export with dynamic_batch=False"
                )
            letter = spec[axis]
            if letter not in out_spec:
                raise ExportError(
                    f"einsum {equation!r} sums over the batch dim (its letter {letter!r}), which mixes the samples; "
                    "export with dynamic_batch=False"
                )
            batch = out_spec.index(letter)
            break
        y = tr.g.node("Einsum", names, "einsum", equation=eq)
        tr.g.batch_axis[y] = batch
        return y

    return emit


def _top(kind: str) -> Callable[[_Tracer, dict[str, Any], Any], list[tuple[Tensor, Emit]]]:
    """topk and sort as ONNX's TopK (sort: k the dim's size; ascending: largest=0); values and indices."""

    def make(tr: _Tracer, local: dict[str, Any], result: Any) -> list[tuple[Tensor, Emit]]:
        x = local.get("x")
        if not isinstance(x, Tensor) or x.ndim == 0 or len(result) != 2:
            return []
        dim = int(local.get("d", local.get("dim", -1))) % x.ndim
        largest = bool(local.get("largest", True)) if kind == "topk" else bool(local.get("descending"))
        k = int(local["k"]) if kind == "topk" else int(x.shape[dim])
        made: dict[str, Any] = {}

        def node() -> list[str]:
            if "out" not in made:
                name = tr.resolve(x)
                batch = tr.g.batch_axis.get(name)
                if batch == dim:
                    raise ExportError(
                        f"{kind} along the batch dim {dim} orders samples across the batch, which cannot be written "
                        "for any batch size; export with dynamic_batch=False"
                    )
                values, indices = tr.g.node("TopK", [name, tr.g.ints([k], "k")], kind, n_out=2, axis=dim,
                                            largest=int(largest), sorted=1)  # fmt: skip
                tr.g.batch_axis[values] = tr.g.batch_axis[indices] = batch
                made["out"] = [values, indices]
            out: list[str] = made["out"]
            return out

        return [(result[0], lambda: node()[0]), (result[1], lambda: node()[1])]

    return make


def _new_filled_by_factory(tr: _Tracer, local: dict[str, Any], result: Any) -> Emit | None:
    """new_zeros/new_empty (zeros) and new_ones, which share Tensor._new_like: see :func:`_new_filled`."""
    return _new_filled(1 if local.get("name") == "new_ones" else 0)(tr, local, result)


def _running_extreme(op: str) -> Callable[[_Tracer, dict[str, Any], Any], list[tuple[Tensor, Emit]]]:
    """cummax/cummin along a dim of n elements: for each k the extreme of the elements j <= k (an n x n
    triangle), NaN from the first NaN on; the index the last j <= k that holds that value (torch's: ties
    go to the later index, and a NaN holds until the next NaN)."""

    def make(tr: _Tracer, local: dict[str, Any], result: Any) -> list[tuple[Tensor, Emit]]:
        x = local.get("x")
        if not isinstance(x, Tensor) or x.ndim == 0 or len(result) != 2 or x.array.dtype.kind not in "iuf":
            return []
        dim = int(local["dim"]) % x.ndim
        made: dict[str, list[str]] = {}

        def node() -> list[str]:
            if "out" not in made:
                made["out"] = _running_extreme_nodes(tr, op, x, dim)
            return made["out"]

        return [(result[0], lambda: node()[0]), (result[1], lambda: node()[1])]

    return make


def _running_extreme_nodes(tr: _Tracer, op: str, x: Tensor, dim: int) -> list[str]:
    g, dtype = tr.g, x.array.dtype
    name = tr.resolve(x)
    batch = g.batch_axis.get(name)
    if batch == dim:
        raise ExportError(
            f"cum{op.lower()} along the batch dim {dim} runs across the samples, which cannot be written for any "
            "batch size; run it along another dim, or export with dynamic_batch=False"
        )
    n, trailing = int(x.shape[dim]), [1] * (x.ndim - dim - 1)
    before = np.tril(np.ones((n, n), dtype=bool)).T  # [j, k]: j <= k
    taken = g.const(before.reshape(n, n, *trailing), "prefix")
    xj = g.node("Unsqueeze", [name, g.ints([dim + 1], "axes")], "xj")  # (..., j, 1, ...)
    lowest = -np.inf if dtype.kind == "f" else np.iinfo(dtype).min
    if op == "Min":
        lowest = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
    fill = g.const(np.asarray(lowest, dtype), "fill")
    nan_j = g.node("IsNaN", [xj]) if dtype.kind == "f" else None
    plain = xj if nan_j is None else g.node("Where", [nan_j, fill, xj])
    picked = g.node("Where", [taken, plain, fill])
    axes = [dim]
    reduce_op = f"Reduce{op}"
    if g.opset >= 18:
        values = g.node(reduce_op, [picked, g.ints(axes, "axes")], f"cum{op.lower()}", keepdims=0)
    else:
        values = g.node(reduce_op, [picked], f"cum{op.lower()}", axes=axes, keepdims=0)
    if nan_j is not None:  # NaN from the first NaN on
        seen = g.node("Cast", [g.node("And", [nan_j, taken])], to=g.onnx.TensorProto.INT32)
        if g.opset >= 18:
            nan_count = g.node("ReduceMax", [seen, g.ints(axes, "axes")], keepdims=0)
        else:
            nan_count = g.node("ReduceMax", [seen], axes=axes, keepdims=0)
        any_nan = g.node("Cast", [nan_count], to=g.onnx.TensorProto.BOOL)
        values = g.node("Where", [any_nan, g.const(np.asarray(np.nan, dtype), "nan"), values], f"cum{op.lower()}")
    vk = g.node("Unsqueeze", [values, g.ints([dim], "axes")], "vk")  # (..., 1, k, ...)
    match = g.node("Equal", [xj, vk])
    if nan_j is not None:  # a NaN holds until the next NaN
        match = g.node("Or", [match, g.node("And", [nan_j, g.node("IsNaN", [vk])])])
    positions = g.const(np.arange(n, dtype=np.int64).reshape(n, 1, *trailing), "positions")
    where = g.node("Where", [g.node("And", [match, taken]), positions, g.ints([-1], "none")])
    if g.opset >= 18:
        indices = g.node("ReduceMax", [where, g.ints(axes, "axes")], "indices", keepdims=0)
    else:
        indices = g.node("ReduceMax", [where], "indices", axes=axes, keepdims=0)
    g.batch_axis[values] = g.batch_axis[indices] = batch
    return [values, indices]


def _median_dim(tr: _Tracer, local: dict[str, Any], result: Any) -> list[tuple[Tensor, Emit]]:
    """median(dim) of a float tensor: the (n - 1) // 2 + 1 smallest by TopK (ties in index order, as the
    stable sort downslope reads the lower median from), the last of them; a slice with a NaN gives NaN and
    the index of its first NaN, as torch."""
    x, d = local.get("x"), local.get("d")
    if not isinstance(x, Tensor) or d is None or x.ndim == 0 or x.array.dtype.kind != "f" or len(result) != 2:
        return []
    dim, keep = int(d) % x.ndim, bool(local.get("keepdim"))
    made: dict[str, list[str]] = {}

    def node() -> list[str]:
        if "out" in made:
            return made["out"]
        g = tr.g
        name = tr.resolve(x)
        batch = g.batch_axis.get(name)
        if batch == dim:
            raise ExportError(
                f"median along the batch dim {dim} mixes the samples, which cannot be written for any batch size; "
                "take it along another dim, or export with dynamic_batch=False"
            )
        k = (int(x.shape[dim]) - 1) // 2 + 1
        values, indices = g.node("TopK", [name, g.ints([k], "k")], "median_topk", n_out=2, axis=dim, largest=0,
                                 sorted=1)  # fmt: skip
        last = g.ints([k - 1], "last")
        value = g.node("Gather", [values, last], "median", axis=dim)  # keeps the dim (size 1)
        index = g.node("Gather", [indices, last], "median_index", axis=dim)
        nans = g.node("Cast", [g.node("IsNaN", [name])], "nans", to=g.onnx.TensorProto.INT32)
        first_nan = g.node("ArgMax", [nans], "first_nan", axis=dim, keepdims=1)
        if g.opset >= 18:
            has_nan = g.node("ReduceMax", [nans, g.ints([dim], "axes")], keepdims=1)
        else:
            has_nan = g.node("ReduceMax", [nans], axes=[dim], keepdims=1)
        has_nan = g.node("Cast", [has_nan], to=g.onnx.TensorProto.BOOL)
        value = g.node("Where", [has_nan, g.const(np.asarray(np.nan, x.array.dtype), "nan"), value])
        index = g.node("Where", [has_nan, first_nan, index])
        if not keep:
            value = g.node("Squeeze", [value, g.ints([dim], "axes")], "median")
            index = g.node("Squeeze", [index, g.ints([dim], "axes")], "median_index")
        g.batch_axis[value] = g.batch_axis[index] = _reduced_batch(batch, [dim], keep)
        made["out"] = [value, index]
        return made["out"]

    return [(result[0], lambda: node()[0]), (result[1], lambda: node()[1])]


def _isin(tr: _Tracer, names: list[Any], values: list[Any], local: dict[str, Any], result: Tensor) -> str:
    """isin(elements, test_elements): each element compared with every test element (flattened), any."""
    elements, tests = values
    common = np.result_type(elements.array.dtype, np.asarray(_tensor_or_array(tests)).dtype)
    x = tr.cast(names[0], elements, common)
    if names[1] is not None:
        flat = tr.g.node("Reshape", [tr.cast(names[1], tests, common), tr.g.ints([-1])], "test_elements")
    else:
        flat = tr.g.const(np.asarray(tests).astype(common).reshape(-1), "test_elements")
    hit = tr.g.node("Equal", [tr.g.node("Unsqueeze", [x, tr.g.ints([-1], "axes")]), flat])
    counts = tr.g.node("Cast", [hit], to=tr.g.onnx.TensorProto.INT32)
    if tr.g.opset >= 18:
        found = tr.g.node("ReduceMax", [counts, tr.g.ints([-1], "axes")], keepdims=0)
    else:
        found = tr.g.node("ReduceMax", [counts], axes=[-1], keepdims=0)
    y = tr.g.node("Cast", [found], "isin", to=tr.g.onnx.TensorProto.BOOL)
    if local.get("invert"):
        y = tr.g.node("Not", [y], "isin")
    tr.g.batch_axis[y] = tr.g.batch_axis.get(names[0])
    return y


def _tensor_or_array(v: Any) -> Any:
    return v.array if isinstance(v, Tensor) else v


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
            _code(Tensor.__dict__["__invert__"]): _invert,
            _code(Tensor.__dict__["__lshift__"]): _shift("LEFT"),
            _code(Tensor.__dict__["__rshift__"]): _shift("RIGHT"),
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
    from ... import functional as top
    from ...nn import functional as nnf
    from ...ops import arithmetic, comparison, indexing, linalg, operands, scans, sorting
    from ...tensor import full_like, ones_like, zeros_like

    method = Tensor.__dict__
    table.update(
        {
            _code(operands._lift_float): _cast_of("x"),
            _code(operands._cast_kept): _cast_of("t"),
            _code(method["all"]): _function(_truth_reduce("ReduceMin"), "self"),
            _code(method["any"]): _function(_truth_reduce("ReduceMax"), "self"),
            _code(reductions.count_nonzero): _function(_count_nonzero, "x"),
            _code(nnf.one_hot): _function(_one_hot, "input", when=lambda local, r: local.get("num_classes") != -1),
            _code(method["isnan"]): _function(_is("isnan"), "self", when=lambda local, r: local["self"].array.dtype.kind == "f"),
            _code(method["isinf"]): _function(_is("isinf"), "self", when=lambda local, r: local["self"].array.dtype.kind == "f"),
            _code(method["isfinite"]): _function(_is("isfinite"), "self",
                                                 when=lambda local, r: local["self"].array.dtype.kind == "f"),
            _code(method["logical_and"]): _function(_logical_of("And"), "self", "other"),
            _code(method["logical_or"]): _function(_logical_of("Or"), "self", "other"),
            _code(comparison.logical_xor): _function(_logical_of("Xor"), "a", "b"),
            _code(comparison.signbit): _function(_signbit, "x"),
            _code(arithmetic.heaviside): _function(_heaviside, "x", "v"),
            _code(arithmetic.floor_divide): _function(_floor_divide, "a", "b", when=_when_unrecorded),
            _code(arithmetic.fmod): _function(_remainder(True), "a", "b"),
            _code(arithmetic.remainder): _function(_remainder(False), "a", "b"),
            _code(arithmetic.pow): _function(_integer_pow, "a", "b", when=_when_unrecorded),
            _code(arithmetic.atan2): _function(_atan2, "a", "b"),
            _code(pointwise.floor): _function(_rounding("floor"), "x", when=_when_float),
            _code(pointwise.ceil): _function(_rounding("ceil"), "x", when=_when_float),
            _code(pointwise.trunc): _function(_rounding("trunc"), "x", when=_when_float),
            _code(pointwise.round): _function(_rounding("round"), "x", when=_when_float),
            _code(pointwise.sign): _function(_sign, "x", when=lambda local, r: r.array.dtype != np.bool_),
            _code(pointwise.hardtanh): _function(_clip_between("min_val", "max_val"), "x"),
            _code(pointwise.threshold): _function(_threshold, "x", when=_when_float),
            _code(pointwise.softplus): _function(_softplus, "x"),
            _code(nnf._elu_op): _function(_elu_family, "x"),
            _code(nnf.mish): _function(_mish, "x"),
            _code(nnf.hardsigmoid): _function(_hardsigmoid, "x"),
            _code(nnf.logsigmoid): _function(_logsigmoid, "x"),
            _code(reductions.logsumexp): _function(_logsumexp, "x", when=_when_float),
            _code(reductions.prod): _function(_prod, "x"),
            _code(top.addcmul): _function(_addcmul, "x", "tensor1", "tensor2"),
            _code(top.square): _function(_square, "x"),
            _code(arithmetic.hypot): _function(_hypot, "a", "b"),
            _code(arithmetic.copysign): _function(_copysign, "a", "b"),
            _code(pointwise.expm1): _function(_expm1, "x", when=_when_float),
            _code(pointwise.logit): _function(_logit, "x", when=_when_float),
            _code(indexing.gather): _function(_gather, "x"),
            _code(linalg.einsum): _einsum,
            _code(comparison.isin): _function(_isin, "elements", "test_elements"),
            _code(zeros_like): _filled_like(None, 0),
            _code(ones_like): _filled_like(None, 1),
            _code(full_like): _filled_like("value"),
            _code(method["_new_like"]): _new_filled_by_factory,
            _code(method["new_full"]): _new_filled(None),
        }
    )  # fmt: skip
    tuples = {
        _code(sorting.topk): _top("topk"),
        _code(sorting.sort): _top("sort"),
        _code(operands._pair): _promoted_pair,
        _code(reductions.max): _extreme_with_indices("Max"),
        _code(reductions.min): _extreme_with_indices("Min"),
        _code(scans.cummax): _running_extreme("Max"),
        _code(scans.cummin): _running_extreme("Min"),
        _code(sorting.median): _median_dim,
    }
    return table, tuples, {_code(attention.scaled_dot_product_attention): _attention}


DERIVED, DERIVED_TUPLES, NOTED = _table()


def _at_call() -> set[Any]:
    """Codes whose arguments the tracer reads as they were called (the function rebinds them before it returns)."""
    from ...ops import operands

    return {_code(operands._lift_float)}


AT_CALL = _at_call()
# What the calls above add to the tensor ops the tracer translates (for messages and supported_ops()).
DERIVED_NAMES = [
    "lt", "le", "gt", "ge", "eq", "ne", "logical_not", "and", "or", "xor", "argmax", "argmin", "astype",
    "detach", "where(mask)", "cosine_similarity", "amax", "amin", "max(dim)", "min(dim)", "repeat", "pad",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "layer_norm", "embedding",
    "all", "any", "count_nonzero", "one_hot", "isnan", "isinf", "isfinite", "logical_and", "logical_or",
    "logical_xor", "signbit", "heaviside", "floor_divide", "fmod", "remainder", "pow(int)", "atan2", "floor",
    "ceil", "trunc", "round", "sign", "hardtanh", "relu6", "threshold", "softplus", "elu", "selu", "celu", "mish",
    "hardsigmoid", "logsigmoid", "logsumexp", "prod", "addcmul", "square", "hypot", "copysign", "expm1", "logit",
    "gather", "einsum", "topk", "sort",
]  # fmt: skip
