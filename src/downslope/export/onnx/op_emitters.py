"""The basic tensor ops the tracer translates between layers (add, matmul, reshape, indexing...),
keyed by the name of the op's gradient rule, which every recorded result carries (``Tensor._vjp``)."""

from __future__ import annotations

import math
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
    "_clone_vjp": "Identity",  # clone() and contiguous(): ONNX values have no memory layout
    "_reciprocal_vjp": "Reciprocal",
}.items():  # fmt: skip
    _op(_rule, _onnx_op)


def _batch_target(src: tuple[int, ...], dst: tuple[int, ...], axis: int) -> int | None:
    """The dim of ``dst`` that a reshape from ``src`` keeps as ``src``'s dim ``axis`` (the same size, the
    same number of elements before and after it), or None when the reshape merges or splits that dim."""
    before, after = math.prod(src[:axis]), math.prod(src[axis + 1 :])
    found = [
        j
        for j, n in enumerate(dst)
        if n == src[axis] and math.prod(dst[:j]) == before and math.prod(dst[j + 1 :]) == after
    ]
    if not found:
        return None
    return axis if axis in found else found[0]


def _folded_target(src: tuple[int, ...], dst: tuple[int, ...], axis: int, inner: int) -> tuple[int, int] | None:
    """For a reshape that merges the batch dim with the dims after it (``(B, L, D) -> (B*L, D)``) or
    splits such a merged dim again (``(B*L, 3D) -> (B, L, 3D)``): the output dim that holds the batch
    and the fixed factor merged into it with the batch, or None when the reshape mixes the batch with
    the dims before it. ``src[axis]`` is the batch size times ``inner``."""
    before = math.prod(src[:axis])
    batch = src[axis] // inner
    for j, n in enumerate(dst):
        if math.prod(dst[:j]) == before and n % batch == 0 and n:
            return j, n // batch
    return None


def _reshape_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    x = parents[0]
    shape = list(t.shape)
    axis = g.batch_axis.get(ins[0])
    inner = g.batch_inner.get(ins[0], 1)
    target = None
    if axis is not None:
        target = _batch_target(tuple(x.shape), tuple(t.shape), axis) if inner == 1 else None
        new_inner = 1
        if target is None:
            found = _folded_target(tuple(x.shape), tuple(t.shape), axis, inner)
            if found is None:
                seq_first = (
                    "; a sequence-first model (batch_first=False: inputs (L, N, E)) has its batch on the input's dim 1, "
                    "while the input's dim 0, the sequence, was taken as the batch: export it with "
                    "dynamic_axes={'<input name>': {1: 'batch'}}"
                    if axis == 1
                    else ""
                )
                size = x.shape[axis] // inner
                held = f"the batch (size {size}) times {inner} rows" if inner != 1 else f"the batch (size {size})"
                raise ExportError(
                    f"a reshape from {tuple(x.shape)} to {tuple(t.shape)} cannot be written for any batch size: dim "
                    f"{axis} holds {held}, and the new shape does not keep that as one dim of its own or split it "
                    f"into the batch and fixed dims after it. What exports: keeping the batch dim, merging it with the "
                    f"fixed dims after it ((B, T, C) -> (B*T, C)) and splitting such a merged dim back ((B*T, C) -> "
                    f"(B, T, C)); or export with dynamic_batch=False{seq_first}"
                )
            target, new_inner = found
        # ONNX: 0 copies the input's dim at the same index; -1 is whatever the other (fixed) dims leave.
        shape[target] = 0 if target == axis and new_inner == inner else -1
    y = g.node("Reshape", [ins[0], g.ints(shape)], "reshape")
    g.batch_axis[y] = target
    if target is not None and new_inner != 1:
        g.batch_inner[y] = new_inner  # the dim holds the batch times this many rows of fixed size
    return y


def _permute_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    inverse = t._saved
    perm = [int(i) for i in np.argsort(inverse)]
    y = g.node("Transpose", ins, "transpose", perm=perm)
    axis = g.batch_axis.get(ins[0])
    g.batch_axis[y] = perm.index(axis) if axis is not None and axis in perm else None
    return y


def _take_along_one_dim(
    g: GraphBuilder, items: tuple[object, ...], ins: list[str], parents: tuple[Tensor, ...]
) -> str | None:
    """``x[:, idx]``: full slices and one 1-D integer array (repeat_interleave, index_select) as a
    Gather of constant indices; None for any other index."""
    ndim = parents[0].ndim
    if any(i is Ellipsis for i in items):
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (ndim - len(items) + 1) + items[at + 1 :]
    arrays = [k for k, i in enumerate(items) if isinstance(i, np.ndarray)]
    if len(arrays) != 1 or len(items) > ndim:
        return None
    pos = arrays[0]
    index = items[pos]
    assert isinstance(index, np.ndarray)
    if index.ndim != 1 or index.dtype.kind not in "iu":
        return None
    if any(not (isinstance(i, slice) and i == slice(None)) for k, i in enumerate(items) if k != pos):
        return None
    batch = g.batch_axis.get(ins[0])
    if batch == pos:
        return None  # picking batch rows by a fixed index list is not batch-dynamic
    y = g.node("Gather", [ins[0], g.const(index.astype(np.int64), "indices")], "take", axis=pos)
    g.batch_axis[y] = batch
    if ins[0] in g.batch_inner:
        g.batch_inner[y] = g.batch_inner[ins[0]]
    return y


def _getitem_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    idx, advanced = t._saved
    items = idx if isinstance(idx, tuple) else (idx,)
    taken = _take_along_one_dim(g, items, ins, parents)
    if taken is not None:
        return taken
    if advanced or any(isinstance(i, np.ndarray) for i in items):
        raise ExportError(
            "indexing with arrays or masks (y[idx], y[mask], or an op built on them such as sort, topk, median, "
            "roll or circular padding) is not supported; use slices and integers"
        )
    ndim = parents[0].ndim
    batch = g.batch_axis.get(ins[0])
    if any(i is Ellipsis for i in items):
        at = items.index(Ellipsis)
        fill = ndim - sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:at] + (slice(None),) * fill + items[at + 1 :]
    # ``axis``: where the next item applies in the current (partly indexed) value; ``src``: the input's dim.
    y, axis, src, out_batch = ins[0], 0, 0, None
    for item in items:
        if item is None:
            y = g.node("Unsqueeze", [y, g.ints([axis], "axes")])
            axis += 1
            continue
        if isinstance(item, slice):
            if src == batch:
                out_batch = axis
            src += 1
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
            raise ExportError("indexing with True/False is not supported; use slices and integers")
        elif isinstance(item, (int, np.integer)):
            if src == batch:
                raise ExportError(
                    f"indexing the batch dim {batch} (the dim that follows the input's dim 0) with an integer "
                    f"is not supported; keep the batch dim (index another dim, or slice)"
                )
            y = g.node("Gather", [y, g.const(np.asarray(int(item), np.int64), "index")], "select", axis=axis)
            src += 1
        else:
            raise ExportError(f"index item {item!r} is not supported")
    if batch is not None and src <= batch:  # the batch dim lies after the items: shifted by what they did
        out_batch = axis + (batch - src)
    out = g.node("Identity", [y], "getitem")
    g.batch_axis[out] = out_batch
    return out


def _concat_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    axis = int(t._saved[0]) % max(t.ndim, 1)
    batch = next((g.batch_axis[i] for i in ins if g.batch_axis.get(i) is not None), None)
    if batch is not None and batch != axis:
        ref = next(i for i in ins if g.batch_axis.get(i) == batch)
        ins = [_batch_invariant(g, name, p, batch, ref) for name, p in zip(ins, parents)]
    y = g.node("Concat", ins, "concat", axis=axis)
    g.batch_axis[y] = batch
    return y


def _batch_invariant(g: GraphBuilder, name: str, p: Tensor, batch: int, ref: str) -> str:
    """A constant joined to batched values (the zero key/value row that MultiheadAttention's add_zero_attn
    appends, made with the example's batch size): when its rows along the batch dim are all the same, one
    row expanded to the batch size of ``ref`` at run time; any other value as it is."""
    if (
        g.batch_axis.get(name) is not None or getattr(p, "_vjp", None) is not None or g.batch_size in (None, 1)
        or p.ndim <= batch or p.shape[batch] != g.batch_size or type(p.array) is not np.ndarray  # host: export
    ):  # fmt: skip
        return name
    rows = np.moveaxis(p.array, batch, 0)  # host: the exporter reads the example's constants
    if not all(np.array_equal(rows[0], r, equal_nan=True) for r in rows[1:]):
        return name
    row = g.node("Slice", [name, g.ints([0], "starts"), g.ints([1], "ends"), g.ints([batch], "axes")], "row")
    size = g.node("Gather", [g.node("Shape", [ref], "shape"), g.ints([batch], "batch_dim")], axis=0)
    after = p.ndim - batch - 1
    parts = [g.ints([1] * batch, "ones")] if batch else []
    parts += [size] + ([g.ints([1] * after, "ones")] if after else [])
    target = parts[0] if len(parts) == 1 else g.node("Concat", parts, "target_shape", axis=0)
    y = g.node("Expand", [row, target], "batch_invariant")
    g.batch_axis[y] = batch
    return y


def _stack_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    axis = int(t._saved)
    parts = [g.node("Unsqueeze", [i, g.ints([axis], "axes")]) for i in ins]
    y = g.node("Concat", parts, "stack", axis=axis)
    batch = next((g.batch_axis[i] for i in ins if g.batch_axis.get(i) is not None), None)
    g.batch_axis[y] = None if batch is None else batch + (1 if batch >= axis % t.ndim else 0)
    return y


def _softmax_axes(saved: object) -> tuple[int, ...]:
    """The axes a softmax/log_softmax saved: a tuple of non-negative ints (ops.reductions), or one int."""
    if isinstance(saved, (tuple, list)):
        return tuple(int(a) for a in saved)
    return (int(saved),)  # type: ignore[call-overload]


def _softmax_op(op: str) -> OpEmitter:
    def emit(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
        axes = _softmax_axes(t._saved)
        if len(axes) == 1:
            return g.node(op, ins, op.lower(), axis=axes[0])
        if not axes:  # a 0-d input: softmax of one value is 1, its log 0
            x = ins[0]
            zero = g.node("Sub", [x, x])
            return zero if op == "LogSoftmax" else g.node("Exp", [zero], op.lower())
        # Several axes at once: written out, stable (the max is subtracted first), as downslope computes it.
        x, keep = ins[0], g.ints(list(axes), "axes")
        if g.opset >= 18:
            top = g.node("ReduceMax", [x, keep], keepdims=1)
        else:
            top = g.node("ReduceMax", [x], axes=list(axes), keepdims=1)
        shifted = g.node("Sub", [x, top])
        total = g.node("ReduceSum", [g.node("Exp", [shifted]), keep], keepdims=1)
        if op == "LogSoftmax":
            return g.node("Sub", [shifted, g.node("Log", [total])], op.lower())
        return g.node("Div", [g.node("Exp", [shifted]), total], op.lower())

    return emit


def _leaky_relu_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("LeakyRelu", ins, "leaky_relu", alpha=float(t._saved))


def _astype_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Cast", ins, "cast", to=g.onnx.helper.np_dtype_to_tensor_dtype(t.array.dtype))


def _reduced_axes(x: Tensor, t: Tensor, batch: int | None) -> list[int]:
    """The axes a sum/mean reduced, from the input shape and the saved kept shape (reduced dims as 1).
    A size-1 dim may or may not have been reduced (same values either way); when the output lost
    dims, the ones needed are taken from the last size-1 dims, the batch dim last."""
    kept, keep = t._saved[0], t._saved[1]
    axes = [i for i, (a, k) in enumerate(zip(x.shape, kept)) if k == 1 and a != 1]
    if not keep:
        missing = x.ndim - len(axes) - t.ndim
        ones = [i for i, (a, k) in enumerate(zip(x.shape, kept)) if a == 1 and k == 1]
        ones = sorted(ones, key=lambda i: (i == batch, -i))
        axes = sorted(axes + ones[:missing])
    return axes


def _reduce_op(op: str) -> OpEmitter:
    def emit(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
        x = parents[0]
        batch = g.batch_axis.get(ins[0])
        axes = _reduced_axes(x, t, batch)
        keep = int(bool(t._saved[1]))
        if not axes:
            y = g.node("Identity", ins, op.lower())
        elif op == "ReduceSum" or g.opset >= 18:  # axes became an input: ReduceSum in opset 13, the rest in 18
            y = g.node(op, [ins[0], g.ints(axes, "axes")], op.lower(), keepdims=keep)
        else:
            y = g.node(op, ins, op.lower(), axes=axes, keepdims=keep)
        if batch is None or batch in axes:
            g.batch_axis[y] = None
        else:
            g.batch_axis[y] = batch if keep else batch - sum(1 for a in axes if a < batch)
        return y

    return emit


def _scalar(g: GraphBuilder, value: float, like: Tensor, hint: str = "scalar") -> str:
    return g.const(np.asarray(value, dtype=like.array.dtype), hint)


def _note_frozen(g: GraphBuilder, arr: np.ndarray, out_ndim: int, batch: int | None, what: str) -> None:
    """Describe a constant that has the batch dim (a mask made from the example's values): frozen."""
    if batch is None:
        return
    pos = batch - (out_ndim - arr.ndim)
    if 0 <= pos < arr.ndim and arr.shape[pos] != 1:
        g.frozen.append(f"{what} of shape {tuple(arr.shape)}")


def _first_batch(g: GraphBuilder, ins: list[str], parents: tuple[Tensor, ...], out_ndim: int) -> int | None:
    for name, p in zip(ins, parents):
        axis = g.batch_axis.get(name)
        if axis is not None:
            moved = axis + out_ndim - p.ndim
            return moved if 0 <= moved < out_ndim else None
    return None


def _rsqrt_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Reciprocal", [g.node("Sqrt", ins)], "rsqrt")


def _where_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    traced = g.conditions.get(id(t._saved))  # a mask the trace follows (a comparison, a boolean input)
    if traced is not None:
        return g.node("Where", [traced, ins[0], ins[1]], "where")
    cond = np.asarray(t._saved, dtype=bool)  # else a constant of the trace (a buffer, a mask from NumPy)
    _note_frozen(g, cond, t.ndim, _first_batch(g, ins, parents, t.ndim), "a where() condition")
    return g.node("Where", [g.const(cond, "condition"), ins[0], ins[1]], "where")


def _broadcast_to_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    x = parents[0]
    shape = list(t.shape)
    axis = g.batch_axis.get(ins[0])
    if axis is not None:
        out_axis = axis + t.ndim - x.ndim
        shape[out_axis] = 1  # Expand broadcasts: 1 keeps the input's (batch-sized) dim
        y = g.node("Expand", [ins[0], g.ints(shape)], "expand")
        g.batch_axis[y] = out_axis
        return y
    size = g.batch_size
    lead = t.ndim - x.ndim
    grown = [
        k for k in range(t.ndim) if t.shape[k] == size and (k < lead or x.shape[k - lead] == 1) and t.shape[k] != 1
    ]
    if g.dynamic_batch and size is not None and grown and g.batch_input is not None:
        # A constant expanded to the batch size (cls_token.expand(x.shape[0], -1, -1)): the size read from
        # the example is written as the input's dim 0, so the graph follows any batch.
        k = grown[0]
        g.frozen.append(f"an expand() to {tuple(t.shape)} whose dim {k} was taken to be the batch size")
        at = g.batch_axis[g.batch_input] or 0
        dims = g.node("Shape", [g.batch_input], "input_shape", start=at, end=at + 1)
        parts = [g.ints(shape[:k]), dims, g.ints(shape[k + 1 :])] if shape[:k] else [dims, g.ints(shape[k + 1 :])]
        target = g.node("Concat", parts, "expand_shape", axis=0)
        y = g.node("Expand", [ins[0], target], "expand")
        g.batch_axis[y] = k
        return y
    return g.node("Expand", [ins[0], g.ints(shape)], "expand")


def _linear_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    y = g.node("Gemm", ins, "linear", transB=1)  # (N, in) x (out, in)^T + bias
    g.batch_axis[y] = 0 if g.batch_axis.get(ins[0]) == 0 else None
    if 0 == g.batch_axis[y] and ins[0] in g.batch_inner:
        g.batch_inner[y] = g.batch_inner[ins[0]]
    return y


def _gelu_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    x = parents[0]
    erf = g.node("Erf", [g.node("Mul", [ins[0], _scalar(g, math.sqrt(0.5), x)])])
    half = g.node("Mul", [ins[0], _scalar(g, 0.5, x)])
    return g.node("Mul", [half, g.node("Add", [erf, _scalar(g, 1.0, x)])], "gelu")


def _gelu_tanh_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    # gelu(approximate="tanh") is one recorded op: written out (the Gelu op only exists from opset 20 on)
    x = parents[0]
    cube = g.node("Mul", [g.node("Mul", [ins[0], ins[0]]), ins[0]])
    inner = g.node("Add", [ins[0], g.node("Mul", [cube, _scalar(g, 0.044715, x)])])
    th = g.node("Tanh", [g.node("Mul", [inner, _scalar(g, math.sqrt(2.0 / math.pi), x)])])
    half = g.node("Mul", [ins[0], _scalar(g, 0.5, x)])
    return g.node("Mul", [half, g.node("Add", [th, _scalar(g, 1.0, x)])], "gelu")


def _sdpa_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """scaled_dot_product_attention written out: softmax(q k^T * scale + mask) v, with a boolean mask
    or the causal pattern as a Where to -inf (rows masked entirely give zeros, as downslope's op)."""
    _, _, _, scale, blocked, const_mask, packed = t._saved[:7]  # (an 8th entry: causal blocks, none of ONNX's)
    n_in = 1 if packed else 3
    if packed:
        qkv = ins[0]
        q, k, v = (g.node("Gather", [qkv, g.const(np.asarray(i, np.int64), "index")], n, axis=0) for i, n in
                   enumerate(("q", "k", "v")))  # fmt: skip
        k_ndim = parents[0].ndim - 1
    else:
        q, k, v = ins[:3]
        k_ndim = parents[1].ndim
    perm = list(range(k_ndim - 2)) + [k_ndim - 1, k_ndim - 2]
    scores = g.node("MatMul", [g.node("Mul", [q, _scalar(g, scale, t)]), g.node("Transpose", [k], perm=perm)])
    batch = _first_batch(g, ins[:1], parents[:1], t.ndim) if not packed else None
    if len(parents) > n_in:  # a float mask that is part of the trace
        scores = g.node("Add", [scores, ins[n_in]])
    elif const_mask is not None:
        _note_frozen(g, np.asarray(const_mask), t.ndim, batch, "an attention mask")
        scores = g.node("Add", [scores, g.const(np.asarray(const_mask, dtype=t.array.dtype), "attn_mask")])
    masked = blocked is not None or len(parents) > n_in or const_mask is not None
    traced = g.conditions.get(id(t))  # a boolean attn_mask the trace follows (an input, a comparison)
    if traced is not None:
        scores = g.node("Where", [traced, _scalar(g, -np.inf, t), scores])
    elif blocked is not None:
        blocked = np.asarray(blocked, dtype=bool)
        _note_frozen(g, blocked, t.ndim, batch, "a boolean attention mask")
        scores = g.node("Where", [g.const(blocked, "blocked"), _scalar(g, -np.inf, t), scores])
    probs = g.node("Softmax", [scores], axis=-1)
    if masked:  # a row with every key masked is NaN in ONNX's Softmax, zeros in downslope's op
        probs = g.node("Where", [g.node("IsNaN", [probs]), _scalar(g, 0.0, t), probs])
    return g.node("MatMul", [probs, v], "attention")


def _rsub_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """``number - x``: the op keeps only x, so the number is read back from the output (t + x where x
    is smallest) and must reproduce every output value exactly."""
    x, y = np.asarray(parents[0].array), np.asarray(t.array)
    if y.size:
        xb = np.broadcast_to(x, y.shape)
        i = int(np.argmin(np.abs(xb)))
        value = y.dtype.type(y.flat[i] + xb.flat[i])
        if np.array_equal(np.asarray(value, y.dtype) - xb, y, equal_nan=True):
            return g.node("Sub", [g.const(np.asarray(value, y.dtype), "number"), ins[0]], "rsub")
    raise ExportError("`number - x` could not be read back from the trace; write -(x - number) instead")


def _silu_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Mul", [ins[0], g.node("Sigmoid", ins)], "silu")


def _log1p_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    return g.node("Log", [g.node("Add", [ins[0], _scalar(g, 1.0, t)])], "log1p")


def _clip_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """clamp/clip with number bounds (either may be None) as Max and Min: NaN passes through, as in torch."""
    bounds = t._saved if isinstance(t._saved, tuple) and len(t._saved) == 2 else (t, t)
    numbers = (int, float, np.integer, np.floating)
    if not all(b is None or (isinstance(b, numbers) and not isinstance(b, bool)) for b in bounds):
        raise ExportError("clamp/clip with tensor bounds is not supported; give numbers (or use ds.maximum/ds.minimum)")
    y = ins[0]
    for op, bound in zip(("Max", "Min"), bounds):
        if bound is not None:
            y = g.node(op, [y, _scalar(g, float(bound), t)], "clamp")
    return y if y != ins[0] else g.node("Identity", ins, "clamp")


def _cumsum_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    axis = int(t._saved)
    batch = g.batch_axis.get(ins[0])
    if batch is not None and axis == batch:
        raise ExportError(
            f"cumsum over the batch dim {batch} (the dim that follows the input's dim 0) mixes the samples; it "
            "cannot be exported with a dynamic batch (export with dynamic_batch=False)"
        )
    return g.node("CumSum", [ins[0], g.const(np.asarray(axis, np.int64), "axis")], "cumsum")


def _vector_norm_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """norm(p, dim) for p = 2, 1, inf, -inf and other numbers (0, a count of nonzeros, is not written)."""
    _, keep, axes, p = t._saved
    axes = [int(a) for a in axes]
    x = ins[0]
    batch = g.batch_axis.get(x)

    def total(v: str) -> str:
        return g.node("ReduceSum", [v, g.ints(axes, "axes")], "norm_sum", keepdims=int(bool(keep)))

    if p == 2:
        y = g.node("Sqrt", [total(g.node("Mul", [x, x]))], "norm")
    elif p == 1:
        y = total(g.node("Abs", [x]))
    elif p in (np.inf, -np.inf):
        op = "ReduceMax" if p > 0 else "ReduceMin"
        mag = g.node("Abs", [x])
        if g.opset >= 18:
            y = g.node(op, [mag, g.ints(axes, "axes")], "norm", keepdims=int(bool(keep)))
        else:
            y = g.node(op, [mag], "norm", axes=axes, keepdims=int(bool(keep)))
    elif p != 0:
        powered = g.node("Pow", [g.node("Abs", [x]), _scalar(g, p, t)])
        y = g.node("Pow", [total(powered), _scalar(g, 1.0 / p, t)], "norm")
    else:
        raise ExportError("norm with p=0 (a count of nonzero elements) is not supported")
    if batch is None or batch in axes:
        g.batch_axis[y] = None
    else:
        g.batch_axis[y] = batch if keep else batch - sum(1 for a in axes if a < batch)
    return y


def _corrected_variance_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """var/std's variance over ``axes``: the mean of x - mean squared, summed and divided by n - correction."""
    axes_saved, keep, n, corr = t._saved
    axes = [int(a) for a in axes_saved]
    x = ins[0]
    batch = g.batch_axis.get(x)
    if g.opset >= 18:
        mean = g.node("ReduceMean", [x, g.ints(axes, "axes")], "var_mean", keepdims=1)
    else:
        mean = g.node("ReduceMean", [x], "var_mean", axes=axes, keepdims=1)
    d = g.node("Sub", [x, mean])
    total = g.node("ReduceSum", [g.node("Mul", [d, d]), g.ints(axes, "axes")], "var_sum", keepdims=int(bool(keep)))
    if batch is not None and batch in axes:  # n follows the batch size: counted from the shape in the graph
        sizes = g.node("Gather", [g.node("Shape", [x]), g.ints(axes, "axes")], "var_sizes")
        count = g.node("Cast", [g.node("ReduceProd", [sizes], keepdims=0)], "var_n", to=_onnx_dtype(g, t))
        y = g.node("Div", [total, g.node("Sub", [count, _scalar(g, float(corr), t)])], "var")
    else:
        y = g.node("Div", [total, _scalar(g, float(n - corr), t)], "var")
    if batch is None or batch in axes:
        g.batch_axis[y] = None
    else:
        g.batch_axis[y] = batch if keep else batch - sum(1 for a in axes if a < batch)
    return y


def _std_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """std's one op: the Sqrt of the variance above (the same saved axes, n and correction)."""
    variance = _corrected_variance_op(g, t, ins, parents)
    y = g.node("Sqrt", [variance], "std")
    g.batch_axis[y] = g.batch_axis[variance]
    return y


def _kron_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """kron: a reshaped to (a0, 1, a1, 1, ...) times b reshaped to (1, b0, 1, b1, ...), each pair of
    dims then merged. A batch dim would be multiplied with the other operand's size: refused."""
    sa, sb = t._saved[:2]  # (the operands' shapes, then what the rule keeps for its gradients)
    for name, parent in zip(ins, parents):
        if g.batch_axis.get(name) is not None:
            raise ExportError(
                f"kron of an input with the batch dim (shape {tuple(parent.shape)}) mixes the batch with the other "
                "operand's sizes, so it cannot be written for any batch size; export with dynamic_batch=False"
            )
    left = g.node("Reshape", [ins[0], g.ints([v for s in sa for v in (s, 1)])], "kron_a")
    right = g.node("Reshape", [ins[1], g.ints([v for s in sb for v in (1, s)])], "kron_b")
    y = g.node("Reshape", [g.node("Mul", [left, right]), g.ints([p * q for p, q in zip(sa, sb)])], "kron")
    g.batch_axis[y] = None
    return y


def _along_axis_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """interpolate's resampling of one dim by the compiled kernels (nn.upsampling): ``x.take(index)``
    (nearest), or ``x.take(index) * w0 + x.take(hi) * w1`` (linear), the indices and weights fixed by the
    sizes, as Gathers of constant indices."""
    axis, _, index, blend = t._saved
    axis = int(axis)
    if g.batch_axis.get(ins[0]) == axis:
        raise ExportError(f"resampling the batch dim {axis} cannot be written for any batch size")

    def take(positions: np.ndarray) -> str:
        return g.node("Gather", [ins[0], g.const(np.asarray(positions, np.int64), "indices")], "take", axis=axis)

    if blend is None:
        return take(index)
    hi, w0, w1 = blend
    shape = [len(index)] + [1] * (t.ndim - axis - 1)  # the weights broadcast along the resized dim

    def weight(w: np.ndarray) -> str:
        return g.const(np.asarray(w, t.array.dtype).reshape(shape), "weight")

    low = g.node("Mul", [take(index), weight(w0)])
    return g.node("Add", [low, g.node("Mul", [take(hi), weight(w1)])], "resample")


def _cdist_host_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """cdist for p other than 2 (computed by host kernels without the pairs' differences): here the
    differences (..., P, R, M) of x1 (..., P, M) and x2 (..., R, M), reduced over M by the p-norm."""
    p = float(t._saved[0])
    a, b = parents
    diff = g.node(
        "Sub",
        [g.node("Unsqueeze", [ins[0], g.ints([-2], "axes")]), g.node("Unsqueeze", [ins[1], g.ints([-3], "axes")])],
        "cdist_diff",
    )
    mag = g.node("Abs", [diff])
    last = g.ints([-1], "axes")
    if p == 1:
        y = g.node("ReduceSum", [mag, last], "cdist", keepdims=0)
    elif p == math.inf:
        if g.opset >= 18:
            y = g.node("ReduceMax", [mag, last], "cdist", keepdims=0)
        else:
            y = g.node("ReduceMax", [mag], "cdist", axes=[-1], keepdims=0)
    else:
        total = g.node("ReduceSum", [g.node("Pow", [mag, _scalar(g, p, t)]), last], "cdist_sum", keepdims=0)
        y = g.node("Pow", [total, _scalar(g, 1.0 / p, t)], "cdist")
    # the batch follows x1's leading dims or rows (P), or x2's leading dims or rows (R); not the features M
    axis = None
    for k, x, name in ((0, a, ins[0]), (1, b, ins[1])):
        batch = g.batch_axis.get(name)
        if axis is None and batch is not None and batch < x.ndim - 1:
            if batch < x.ndim - 2:
                axis = batch + t.ndim - x.ndim
            else:
                axis = t.ndim - 2 + k
    g.batch_axis[y] = axis
    return y


def _triangle_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """tril/triu: a Where on the constant (rows, cols) mask, so NaN and inf outside the triangle become 0
    as in torch (a product with the mask would keep them)."""
    keep = np.ascontiguousarray(np.asarray(t._saved, dtype=bool))  # host: the mask depends on the shapes only
    _note_frozen(g, keep, t.ndim, g.batch_axis.get(ins[0]), "tril/triu's mask")
    y = g.node("Where", [g.const(keep, "triangle_mask"), ins[0], _scalar(g, 0.0, t)], "triangle")
    g.batch_axis[y] = g.batch_axis.get(ins[0])
    return y


def _times_number_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """``x * number`` (trapezoid's spacing), the number being the one the op kept."""
    return g.node("Mul", [ins[0], _scalar(g, t._saved, t)], "scaled")


def _clip_tensor_bounds_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """clamp with tensor bounds (either may be absent) as Max then Min, as the op computes it."""
    has_lo, has_hi = t._saved
    bounds = iter(ins[1:])
    y = ins[0]
    if has_lo:
        y = g.node("Max", [y, next(bounds)], "clamp")
    if has_hi:
        y = g.node("Min", [y, next(bounds)], "clamp")
    return y if y != ins[0] else g.node("Identity", ins, "clamp")


def _rounded_div_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """div(rounding_mode=) of floats: Floor of the quotient, or for 'trunc' its sign times the Floor of
    its magnitude (ONNX has no Trunc); the mode is the one the op recorded."""
    mode = t._saved
    q = g.node("Div", ins[:2], "div")
    if mode == "trunc":
        return g.node("Mul", [g.node("Sign", [q]), g.node("Floor", [g.node("Abs", [q])])], "trunc_div")
    return g.node("Floor", [q], "floor_div")


def _roll_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """roll: along each shifted dim, the last ``shift`` elements (a Slice) put before the rest (a Concat)."""
    y = ins[0]
    batch = g.batch_axis.get(ins[0])
    for axis, shift in enumerate(t._saved):
        if not shift:
            continue
        if axis == batch:
            raise ExportError(
                f"roll along the batch dim {axis} moves samples between rows; it cannot be written for any batch "
                "size (export with dynamic_batch=False)"
            )
        size = t.shape[axis]

        def part(start: int, stop: int, source: str = y, at: int = axis) -> str:
            return g.node("Slice", [source, g.ints([start], "starts"), g.ints([stop], "ends"), g.ints([at], "axes")])

        y = g.node("Concat", [part(size - shift, size), part(0, size - shift)], "roll", axis=axis)
    if y == ins[0]:
        y = g.node("Identity", ins, "roll")
    g.batch_axis[y] = batch
    return y


def _nan_to_num_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """nan_to_num as a chain of Wheres: IsNaN, then IsInf for +inf and for -inf, each taking its fill (the
    values the op recorded, by default the dtype's largest and lowest finite values), rounded to the
    dtype as the op rounds them (a fill past float16's range is inf there too)."""
    x = ins[0]
    with np.errstate(over="ignore"):
        nan, posinf, neginf = (np.asarray(v).astype(t.array.dtype) for v in t._saved)  # host: the recorded fills
    y = g.node("Where", [g.node("IsInf", [x], "is_neginf", detect_positive=0), g.const(neginf, "neginf"), x])
    y = g.node("Where", [g.node("IsInf", [x], "is_posinf", detect_negative=0), g.const(posinf, "posinf"), y])
    y = g.node("Where", [g.node("IsNaN", [x], "is_nan"), g.const(nan, "nan"), y], "nan_to_num")
    g.batch_axis[y] = g.batch_axis.get(x)
    return y


def _pdist_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """pdist of (N, M) rows: the pairs of the upper triangle, row by row, as Gathers of constant index
    lists (i < j), their differences reduced over M by the p-norm (p = 0 a count of nonzeros)."""
    p = float(t._saved[0])
    x = ins[0]
    n = parents[0].shape[0]
    if g.batch_axis.get(x) == 0:
        raise ExportError(
            "pdist over rows that follow the batch size: its number of pairs, N (N - 1) / 2, is not one "
            "constant index list for every batch (export with dynamic_batch=False)"
        )
    first, second = np.triu_indices(n, 1)  # host: the pairs depend on the shape only

    def rows(index: np.ndarray) -> str:
        return g.node("Gather", [x, g.const(index.astype(np.int64), "pair_rows")], "pdist_rows", axis=0)

    diff = g.node("Sub", [rows(first), rows(second)], "pdist_diff")
    features = g.ints([1], "axes")
    if p == 0:
        nonzero = g.node("Not", [g.node("Equal", [diff, _scalar(g, 0.0, t)])])
        count = g.node("Cast", [nonzero], "pdist_nonzero", to=_onnx_dtype(g, t))
        y = g.node("ReduceSum", [count, features], "pdist", keepdims=0)
    elif p == 2:
        y = g.node("Sqrt", [g.node("ReduceSum", [g.node("Mul", [diff, diff]), features], keepdims=0)], "pdist")
    elif p == 1:
        y = g.node("ReduceSum", [g.node("Abs", [diff]), features], "pdist", keepdims=0)
    elif p == math.inf:
        mag = g.node("Abs", [diff])
        if g.opset >= 18:
            y = g.node("ReduceMax", [mag, features], "pdist", keepdims=0)
        else:
            y = g.node("ReduceMax", [mag], "pdist", axes=[1], keepdims=0)
    else:
        powered = g.node("Pow", [g.node("Abs", [diff]), _scalar(g, p, t)])
        y = g.node("Pow", [g.node("ReduceSum", [powered, features], keepdims=0), _scalar(g, 1.0 / p, t)], "pdist")
    g.batch_axis[y] = None  # the batch, if any, was among the features M, summed over
    return y


def _onnx_dtype(g: GraphBuilder, t: Tensor) -> int:
    """ONNX's element type of ``t``'s dtype."""
    return int(g.onnx.helper.np_dtype_to_tensor_dtype(t.array.dtype))


def _weight_norm_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """nn's fused weight norm (``g * v / ||v||``, the norm over every dim but the saved one, or all
    of them) written as the ops it fuses."""
    kept, v = t._saved[0], parents[1]
    axes = [a for a in range(v.ndim) if a != kept]
    squares = g.node("Mul", [ins[1], ins[1]], "weight_norm_squares")
    sums = g.node("ReduceSum", [squares, g.ints(axes, "axes")], "weight_norm_sums", keepdims=int(kept is not None))
    scale = g.node("Div", [ins[0], g.node("Sqrt", [sums], "weight_norm_norms")], "weight_norm_scale")
    out = g.node("Mul", [ins[1], scale], "weight_norm")
    g.batch_axis[out] = None  # a weight: made from parameters only
    return out


def _unary_table(build: Callable[[GraphBuilder, str, Tensor], str]) -> OpEmitter:
    """An op of pointwise's table of unary functions (tan, log2, frac...): ``build(g, x, t)``."""

    def emit(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
        return build(g, ins[0], t)

    return emit


def _scaled(op: str, factor: float, before: bool) -> Callable[[GraphBuilder, str, Tensor], str]:
    """``op(x * factor)`` (before) or ``op(x) * factor``; ``op`` '' for the product alone."""

    def build(g: GraphBuilder, x: str, t: Tensor) -> str:
        k = _scalar(g, factor, t)
        if before:
            return g.node(op, [g.node("Mul", [x, k])], op.lower())
        return g.node("Mul", [g.node(op, [x]) if op else x, k], (op or "scaled").lower())

    return build


def _plain(op: str) -> Callable[[GraphBuilder, str, Tensor], str]:
    """The ONNX op of the same meaning, on x."""

    def build(g: GraphBuilder, x: str, t: Tensor) -> str:
        return g.node(op, [x], op.lower())

    return build


def _frac_nodes(g: GraphBuilder, x: str, t: Tensor) -> str:
    negative = g.node("Less", [x, _scalar(g, 0.0, t)])
    whole = g.node("Where", [negative, g.node("Ceil", [x]), g.node("Floor", [x])], "trunc")
    return g.node("Sub", [x, whole], "frac")


for _name, _onnx_unary in {
    "tan": "Tan", "sinh": "Sinh", "cosh": "Cosh", "asin": "Asin", "acos": "Acos", "atan": "Atan", "asinh": "Asinh",
    "acosh": "Acosh", "atanh": "Atanh",
}.items():  # fmt: skip
    OP_EMITTERS[f"_{_name}_vjp"] = _unary_table(_plain(_onnx_unary))


def _copy_pad_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """A copying pad (reflect, replicate) as the op recorded it: ``(widths per dim, mode)``."""
    widths, mode = t._saved
    onnx_mode = {"reflect": "reflect", "replicate": "edge"}.get(mode)
    if onnx_mode is None:
        raise ExportError(f"pad mode {mode!r} is not supported (supported: constant, reflect, replicate)")
    batch = g.batch_axis.get(ins[0])
    if batch is not None and any(widths[batch]):
        raise ExportError(
            f"pad {tuple(widths[batch])} on the batch dim {batch} cannot be written for any batch size; pad the "
            "other dims, or export with dynamic_batch=False"
        )
    pads = [int(b) for b, _ in widths] + [int(a) for _, a in widths]
    y = g.node("Pad", [ins[0], g.ints(pads, "pads")], "pad", mode=onnx_mode)
    g.batch_axis[y] = batch
    return y


OP_EMITTERS["copy_pad_vjp"] = _copy_pad_op
OP_EMITTERS.update(
    {
        "_log2_vjp": _unary_table(_scaled("Log", 1 / math.log(2), False)),
        "_log10_vjp": _unary_table(_scaled("Log", 1 / math.log(10), False)),
        "_exp2_vjp": _unary_table(_scaled("Exp", math.log(2), True)),
        "_deg2rad_vjp": _unary_table(_scaled("", math.pi / 180, False)),
        "_rad2deg_vjp": _unary_table(_scaled("", 180 / math.pi, False)),
        "_frac_vjp": _unary_table(_frac_nodes),
    }
)


OP_EMITTERS.update(
    {
        "_nan_to_num_vjp": _nan_to_num_op,
        "_weight_norm_vjp": _weight_norm_op,
        "_pdist_rule": _pdist_op,
        "_along_axis_vjp": _along_axis_op,
        "_silu_vjp": _silu_op,
        "_log1p_vjp": _log1p_op,
        "_clip_vjp": _clip_op,
        "_cumsum_vjp": _cumsum_op,
        "_vector_norm_vjp": _vector_norm_op,
        "_corrected_variance_vjp": _corrected_variance_op,
        "_std_vjp": _std_op,
        "_kron_vjp": _kron_op,
        "_cdist_host_vjp": _cdist_host_op,
        "_triangle_vjp": _triangle_op,
        "_times_number_vjp": _times_number_op,
        "_clip_tensor_bounds_vjp": _clip_tensor_bounds_op,
        "_rounded_div_vjp": _rounded_div_op,
        "_roll_vjp": _roll_op,
        "_rsub_vjp": _rsub_op,
        "_rsqrt_vjp": _rsqrt_op,
        "_where_vjp": _where_op,
        "_broadcast_to_vjp": _broadcast_to_op,
        "_linear_vjp": _linear_op,
        "_gelu_vjp": _gelu_op,
        "_gelu_tanh_vjp": _gelu_tanh_op,
        "_sdpa_vjp": _sdpa_op,
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


def _xlog_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """xlogy (saved shift 0) and xlog1py (shift 1): a * log(b + shift), 0 where a == 0 (whatever b is),
    b itself where b is NaN (torch's conventions), in the result dtype."""
    dtype = t.array.dtype
    a, b = (_cast_to(g, n, p, dtype) for n, p in zip(ins, parents))
    shifted = b if not t._saved else g.node("Add", [b, _scalar(g, 1.0, t)])
    product = g.node("Mul", [a, g.node("Log", [shifted])])
    zero = _scalar(g, 0.0, t)
    y = g.node("Where", [g.node("Equal", [a, zero]), zero, product])
    return g.node("Where", [g.node("IsNaN", [b]), b, y], "xlogy")


def _cast_to(g: GraphBuilder, name: str, p: Tensor, dtype: np.dtype) -> str:
    if p.array.dtype == dtype:
        return name
    y = g.node("Cast", [name], "cast", to=g.onnx.helper.np_dtype_to_tensor_dtype(dtype))
    g.batch_axis[y] = g.batch_axis.get(name)
    return y


def _lerp_nodes(g: GraphBuilder, t: Tensor, start: str, end: str, weight: str, small: str | None) -> str:
    """torch's two-sided lerp: start + w (end - start) where ``small`` (|w| < 0.5; None: everywhere),
    end - (end - start)(1 - w) elsewhere (exact at w = 1)."""
    diff = g.node("Sub", [end, start])
    low = g.node("Add", [start, g.node("Mul", [weight, diff])])
    high = g.node("Sub", [end, g.node("Mul", [diff, g.node("Sub", [_scalar(g, 1.0, t), weight])])])
    if small is None:
        return g.node("Identity", [low], "lerp")
    return g.node("Where", [small, low, high], "lerp")


def _lerp_number_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    w = float(t._saved)
    start, end = (_cast_to(g, n, p, t.array.dtype) for n, p in zip(ins, parents))
    if abs(w) < 0.5:
        return _lerp_nodes(g, t, start, end, _scalar(g, w, t), None)
    diff = g.node("Sub", [end, start])
    return g.node("Sub", [end, g.node("Mul", [diff, _scalar(g, 1.0 - w, t)])], "lerp")


def _lerp_tensor_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    start, end, weight = (_cast_to(g, n, p, t.array.dtype) for n, p in zip(ins, parents))
    small = g.node("Less", [g.node("Abs", [weight]), _scalar(g, 0.5, t)])
    return _lerp_nodes(g, t, start, end, weight, small)


def _median_all_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """The lower median of all elements of a float tensor: TopK of the smallest (n - 1) // 2 + 1 (n read
    from the input's shape at run time, so that it follows the batch), its last value; NaN if any is."""
    flat = g.node("Reshape", [ins[0], g.ints([-1])], "flat")
    count = g.node("Shape", [flat], "count")
    two, one = g.ints([2], "two"), g.ints([1], "one")
    k = g.node("Add", [g.node("Div", [g.node("Sub", [count, one]), two]), one], "k")
    values, _ = g.node("TopK", [flat, k], "median_topk", n_out=2, axis=0, largest=0, sorted=1)
    last = g.node("Slice", [values, g.ints([-1], "starts"), g.ints([_INT64_MAX], "ends")])
    value = g.node("Reshape", [last, g.ints([], "scalar_shape")], "median")
    nan_in = g.node("Cast", [g.node("IsNaN", [flat])], "nan_in", to=g.onnx.TensorProto.INT32)
    # (ReduceMax without axes reduces every dim, in each opset)
    any_nan = g.node("Cast", [g.node("ReduceMax", [nan_in], keepdims=0)], to=g.onnx.TensorProto.BOOL)
    y = g.node("Where", [any_nan, _scalar(g, np.nan, t), value], "median")
    g.batch_axis[y] = None
    return y


# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems, 2011): a
# polynomial in w = -log(1 - x^2) - 2.5 for w < 5, in sqrt(w) - 3 beyond; relative error below 4e-7.
_ERFINV_CENTRAL = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                   -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]  # fmt: skip
_ERFINV_TAIL = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                0.00943887047, 1.00167406, 2.83297682]  # fmt: skip


def _erfinv_op(g: GraphBuilder, t: Tensor, ins: list[str], parents: tuple[Tensor, ...]) -> str:
    """erfinv, which has no ONNX operator, written with ops that exist: Giles' polynomial approximation,
    of float32 precision; +-inf at +-1 and NaN beyond, as torch. float64 is refused: refining the
    approximation (Newton steps on Erf) needs a float64 Erf, which ONNX Runtime does not implement."""
    dtype = t.array.dtype
    if dtype == np.float64:
        raise ExportError(
            "erfinv of float64 values cannot be written to float64 precision: ONNX has no erfinv operator, and the "
            "polynomial it is written with here has float32 precision (refining it needs Erf of float64, which "
            "ONNX Runtime does not implement); export the model in float32, or compute erfinv outside the graph"
        )
    work = dtype if dtype == np.float32 else np.dtype(np.float32)
    x = _cast_to(g, ins[0], parents[0], work)

    def number(v: float) -> str:
        return g.const(np.asarray(v, work), "erfinv_coefficient")

    one = number(1.0)
    w = g.node("Neg", [g.node("Log", [g.node("Mul", [g.node("Sub", [one, x]), g.node("Add", [one, x])])])])
    central, tail = g.node("Sub", [w, number(2.5)]), g.node("Sub", [g.node("Sqrt", [w]), number(3.0)])
    polys = []
    for at, coefficients in ((central, _ERFINV_CENTRAL), (tail, _ERFINV_TAIL)):
        p = number(coefficients[0])
        for c in coefficients[1:]:
            p = g.node("Add", [number(c), g.node("Mul", [p, at])])
        polys.append(p)
    y = g.node("Mul", [g.node("Where", [g.node("Less", [w, number(5.0)]), *polys]), x])
    edge = g.node("Equal", [g.node("Abs", [x]), one])  # erfinv(+-1) = +-inf
    y = g.node("Where", [edge, g.node("Mul", [x, number(np.inf)]), y], "erfinv")
    if work != dtype:  # float16 and bfloat16 were computed in float32
        y = g.node("Cast", [y], "erfinv", to=g.onnx.helper.np_dtype_to_tensor_dtype(dtype))
    return y


OP_EMITTERS.update(
    {
        "_xlog_vjp": _xlog_op,
        "_lerp_number_weight_vjp": _lerp_number_op,
        "_lerp_tensor_weight_vjp": _lerp_tensor_op,
        "_median_all_vjp": _median_all_op,
        "_erfinv_vjp": _erfinv_op,
    }
)
