"""ONNX export: a downslope model as an ONNX graph that ONNX Runtime (or any ONNX backend) can run.

How it works (the table-of-rules idea): the exporter runs the model once on the example input and
records what flows where.

* Layers: ``EMITTERS`` maps a layer class (``nn.Linear``, ``nn.Conv2d``, ``nn.LSTM``...) to a
  function that writes that layer's ONNX nodes. Layers know nothing of ONNX; adding a layer means
  adding one entry here (:func:`register_emitter`).
* Containers and user Modules: any other Module (``nn.Sequential``, a user's ``class Net(nn.Module)``)
  is not translated as a whole. Its ``forward`` runs for real and every tensor that reaches a layer
  of the table (or the model's output) is traced back: it must be the model's input, the output of a
  layer already recorded, or the result of a basic tensor op of ``OP_EMITTERS`` (add, mul, reshape,
  indexing, concatenation...) applied to those. Anything else (an op without an ONNX rule, a tensor
  rebuilt from NumPy values) is refused with an :class:`~downslope.errors.ExportError` naming the
  Module type whose ``forward`` made it, never written as a wrong graph.
* Check: after writing, the graph runs on a second, different batch (a different batch size,
  other values) in ONNX Runtime (or, if it is not installed, in ``onnx``'s reference evaluator) and
  must reproduce the model's outputs; a forward whose Python control flow depends on the values, or
  a value frozen at export, fails here instead of in deployment.

The model is exported in evaluation semantics: Dropout is the identity and BatchNorm uses its
running statistics, whatever mode the model is in (its mode is restored afterwards).

Example:
    >>> import downslope as ds
    >>> model = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.ReLU(), ds.nn.Linear(8, 3))
    >>> ds.onnx.export(model, ds.randn(2, 4), "model.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import enable_grad, no_grad
from ..errors import ArgumentError, ExportError
from ..nn import activation as act
from ..nn import convolution as conv
from ..nn import layers, module, normalization, recurrent
from ..nn.module import Module
from ..tensor import Tensor

__all__ = [
    "export",
    "to_model",
    "trace",
    "register_emitter",
    "supported_layers",
    "supported_ops",
    "EMITTERS",
    "OP_EMITTERS",
    "MIN_OPSET",
]

MIN_OPSET = 17  # LayerNormalization is an ONNX op from opset 17 on
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def require_onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it.

    Example:
        >>> onnx = require_onnx()  # doctest: +SKIP
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'downslope[onnx]'") from None
    return onnx


# ---------------------------------------------------------------------- graph builder
class GraphBuilder:
    """Nodes and constants of the ONNX graph being written; unique value names.

    Emitters call :meth:`node` and :meth:`const` and return the names of their outputs.
    """

    def __init__(self, opset: int, dynamic_batch: bool) -> None:
        self.onnx = require_onnx()
        self.opset = opset
        self.dynamic_batch = dynamic_batch
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.domains: set[str] = set()
        self._used: set[str] = set()

    def fresh(self, hint: str) -> str:
        base = hint.replace(" ", "_") or "v"
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        if name in self._used:
            raise ArgumentError(f"ONNX export: two inputs or outputs are named {name!r}; ONNX needs unique names")
        self._used.add(name)

    def const(self, array: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def node(
        self, op: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1, domain: str = "", **attrs: Any
    ) -> Any:
        outs = [self.fresh(f"{hint or op.lower()}") for _ in range(n_out)]
        if domain:
            self.domains.add(domain)
        self.nodes.append(
            self.onnx.helper.make_node(
                op, list(inputs), outs, name=self.fresh(f"{op}_node"), domain=domain or None, **attrs
            )
        )
        return outs[0] if n_out == 1 else outs


Emitter = Callable[[GraphBuilder, Any, str, Tensor, Any], Any]
EMITTERS: dict[type, Emitter] = {}


def register_emitter(*layer_types: type) -> Callable[[Emitter], Emitter]:
    """Decorator: ``fn(graph, layer, input_name, input_tensor, output) -> output name(s)`` writes the
    ONNX nodes of ``layer_types``. A subclass is covered only if it keeps the registered ``forward``.

    Example:
        >>> from downslope.export.onnx import EMITTERS
        >>> from downslope import nn
        >>> nn.Linear in EMITTERS and nn.LSTM in EMITTERS
        True
    """

    def decorate(fn: Emitter) -> Emitter:
        for t in layer_types:
            EMITTERS[t] = fn
        return fn

    return decorate


def _emitter_for(m: Module) -> Emitter | None:
    for cls in type(m).__mro__:
        fn = EMITTERS.get(cls)
        if fn is not None:
            # A subclass that writes its own forward computes something else: trace it instead.
            return fn if type(m).forward is getattr(cls, "forward", None) else None
    return None


def _batched(x: Tensor, ndim: int, layer: Any) -> None:
    if x.ndim != ndim:
        raise ExportError(
            f"ONNX export: {type(layer).__name__} expects a batched input of {ndim} dims here, got shape {x.shape}; "
            f"export with a batched example input"
        )


# ---------------------------------------------------------------------- layer emitters
@register_emitter(layers.Linear)
def _linear(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    w = m.weight.array
    if xt.ndim == 2:
        inputs = [x, g.const(w, "weight")] + ([g.const(m.bias.array, "bias")] if m.bias is not None else [])
        return g.node("Gemm", inputs, "linear", transB=1)
    y = g.node("MatMul", [x, g.const(np.ascontiguousarray(w.T), "weight_t")], "matmul")
    return g.node("Add", [y, g.const(m.bias.array, "bias")], "linear") if m.bias is not None else y


@register_emitter(module.Identity, layers.Dropout)
def _identity(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return x  # Dropout in evaluation semantics is the identity


def _simple(op: str, **attrs: Any) -> Emitter:
    def emit(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
        return g.node(op, [x], op.lower(), **attrs)

    return emit


register_emitter(act.ReLU)(_simple("Relu"))
register_emitter(act.Sigmoid)(_simple("Sigmoid"))
register_emitter(act.Tanh)(_simple("Tanh"))


@register_emitter(act.LeakyReLU)
def _leaky_relu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("LeakyRelu", [x], "leaky_relu", alpha=float(m.negative_slope))


@register_emitter(act.ELU)
def _elu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Elu", [x], "elu", alpha=float(m.alpha))


def _scalar(g: GraphBuilder, value: float, like: Tensor) -> str:
    return g.const(np.asarray(value, dtype=like.array.dtype), "c")


@register_emitter(act.GELU)
def _gelu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    # Written out: the Gelu op only exists from opset 20 on.
    half = g.node("Mul", [x, _scalar(g, 0.5, xt)], "half_x")
    if m.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x], "x_cubed")
        inner = g.node("Add", [x, g.node("Mul", [cube, _scalar(g, 0.044715, xt)])])
        t = g.node("Tanh", [g.node("Mul", [inner, _scalar(g, math.sqrt(2.0 / math.pi), xt)])])
    else:
        t = g.node("Erf", [g.node("Mul", [x, _scalar(g, 1.0 / math.sqrt(2.0), xt)])])
    return g.node("Mul", [half, g.node("Add", [t, _scalar(g, 1.0, xt)])], "gelu")


@register_emitter(act.SiLU)
def _silu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x])], "silu")


@register_emitter(act.Softplus)
def _softplus(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    # PyTorch's rule: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold.
    bx = g.node("Mul", [x, _scalar(g, m.beta, xt)]) if m.beta != 1.0 else x
    soft = g.node("Softplus", [bx])
    if m.beta != 1.0:
        soft = g.node("Div", [soft, _scalar(g, m.beta, xt)])
    linear = g.node("Greater", [bx, _scalar(g, m.threshold, xt)])
    return g.node("Where", [linear, x, soft], "softplus")


@register_emitter(act.Softmax)
def _softmax(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Softmax", [x], "softmax", axis=int(m.dim))


@register_emitter(act.LogSoftmax)
def _log_softmax(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("LogSoftmax", [x], "log_softmax", axis=int(m.dim))


@register_emitter(module.Flatten)
def _flatten(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    start = m.start_dim % xt.ndim
    end = m.end_dim % xt.ndim
    if start == 1 and end == xt.ndim - 1:
        return g.node("Flatten", [x], "flatten", axis=1)
    # 0 copies a leading dim and -1 takes the merged ones, so any batch size (dim 0) still fits.
    shape = [0] * start + [-1] + list(out.shape[start + 1 :])
    return g.node("Reshape", [x, g.ints(shape)], "flatten")


def _conv_pads(m: Any) -> list[int]:
    n = len(m.kernel_size)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return [0] * (2 * n)
        before, after = [], []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            before.append(total // 2)  # an odd total puts the extra one after the input, as PyTorch does
            after.append(total - total // 2)
        return before + after
    return list(m.padding) * 2


@register_emitter(conv.Conv1d, conv.Conv2d)
def _conv(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = len(m.kernel_size)
    _batched(xt, n + 2, m)
    pads = _conv_pads(m)
    if m.padding_mode != "zeros":
        mode = {"reflect": "reflect", "replicate": "edge"}.get(m.padding_mode)
        if mode is None:
            raise ExportError(
                f"ONNX export: {type(m).__name__}(padding_mode={m.padding_mode!r}) is not supported "
                f"(supported: 'zeros', 'reflect', 'replicate')"
            )
        full = [0, 0] + pads[:n] + [0, 0] + pads[n:]
        x = g.node("Pad", [x, g.ints(full, "pads")], "padded", mode=mode)
        pads = [0] * (2 * n)
    inputs = [x, g.const(m.weight.array, "weight")] + ([g.const(m.bias.array, "bias")] if m.bias is not None else [])
    return g.node(
        "Conv",
        inputs,
        "conv",
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        pads=pads,
        dilations=list(m.dilation),
        group=int(m.groups),
    )


def _ntuple(value: Any, n: int) -> list[int]:
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n
    return [int(v) for v in value]


@register_emitter(conv.MaxPool1d, conv.MaxPool2d)
def _max_pool(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = 1 if isinstance(m, conv.MaxPool1d) else 2
    _batched(xt, n + 2, m)
    if m.return_indices:
        raise ExportError(f"ONNX export: {type(m).__name__}(return_indices=True) is not supported")
    pads = _ntuple(m.padding, n)
    return g.node(
        "MaxPool",
        [x],
        "max_pool",
        kernel_shape=_ntuple(m.kernel_size, n),
        strides=_ntuple(m.stride, n),
        pads=pads + pads,
        dilations=_ntuple(m.dilation, n),
        ceil_mode=int(bool(m.ceil_mode)),
    )


@register_emitter(conv.AvgPool1d, conv.AvgPool2d)
def _avg_pool(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = 1 if isinstance(m, conv.AvgPool1d) else 2
    _batched(xt, n + 2, m)
    kernel, pads = _ntuple(m.kernel_size, n), _ntuple(m.padding, n)
    divisor = getattr(m, "divisor_override", None)
    if m.ceil_mode and (divisor is not None or any(pads)):
        # The divisor of a window that runs past the padded input differs between PyTorch and ONNX.
        raise ExportError(
            f"ONNX export: {type(m).__name__}(ceil_mode=True) with padding or divisor_override is not supported"
        )
    y = g.node(
        "AveragePool",
        [x],
        "avg_pool",
        kernel_shape=kernel,
        strides=_ntuple(m.stride, n),
        pads=pads + pads,
        ceil_mode=int(bool(m.ceil_mode)),
        count_include_pad=int(bool(m.count_include_pad) or divisor is not None),
    )
    if divisor is not None:  # every window is full here: the sum is the mean times the window size
        y = g.node("Mul", [y, _scalar(g, math.prod(kernel) / divisor, xt)], "avg_pool")
    return y


def _adaptive_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """(size, out): column i averages x[floor(i*size/out) : ceil((i+1)*size/out)] (PyTorch's windows)."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    j = np.arange(size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return np.ascontiguousarray((inside / (end - start)[:, None]).T.astype(dtype))


@register_emitter(conv.AdaptiveAvgPool1d, conv.AdaptiveAvgPool2d)
def _adaptive_avg_pool(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = 1 if isinstance(m, conv.AdaptiveAvgPool1d) else 2
    _batched(xt, n + 2, m)
    sizes, outs = xt.shape[2:], out.shape[2:]
    if all(o == 1 for o in outs):
        return g.node("GlobalAveragePool", [x], "avg_pool")
    dtype = xt.array.dtype
    # Separable: average the last axis with a matrix, then (for 2-D) the height as the last axis of the transpose.
    y = x if outs[-1] == sizes[-1] else g.node("MatMul", [x, g.const(_adaptive_matrix(sizes[-1], outs[-1], dtype))])
    if n == 2 and outs[0] != sizes[0]:
        t = g.node("Transpose", [y], perm=[0, 1, 3, 2])
        t = g.node("MatMul", [t, g.const(_adaptive_matrix(sizes[0], outs[0], dtype))])
        y = g.node("Transpose", [t], "avg_pool", perm=[0, 1, 3, 2])
    return y


@register_emitter(normalization.BatchNorm1d, normalization.BatchNorm2d)
def _batch_norm(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    if m.running_mean is None or m.running_var is None:
        raise ExportError(
            f"ONNX export: {type(m).__name__}(track_running_stats=False) normalizes with each batch's own "
            f"statistics even in evaluation; only layers with running statistics can be exported"
        )
    c = m.num_features
    dtype = m.running_mean.array.dtype
    scale = m.weight.array if m.weight is not None else np.ones(c, dtype)
    bias = m.bias.array if m.bias is not None else np.zeros(c, dtype)
    return g.node(
        "BatchNormalization",
        [x, g.const(scale, "bn_scale"), g.const(bias, "bn_bias"), g.const(m.running_mean.array, "running_mean"),
         g.const(m.running_var.array, "running_var")],
        "batch_norm",
        epsilon=float(m.eps),
    )  # fmt: skip


@register_emitter(normalization.LayerNorm)
def _layer_norm(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    shape = tuple(m.normalized_shape)
    dtype = xt.array.dtype
    scale = m.weight.array if m.weight is not None else np.ones(shape, dtype)
    inputs = [x, g.const(scale, "ln_scale")]
    if m.bias is not None:
        inputs.append(g.const(m.bias.array, "ln_bias"))
    return g.node("LayerNormalization", inputs, "layer_norm", axis=-len(shape), epsilon=float(m.eps))


@register_emitter(layers.Embedding)
def _embedding(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Gather", [g.const(m.weight.array, "embedding"), x], "embedding", axis=0)


# PyTorch stacks the gates as (i, f, g, o) for LSTM and (r, z, n) for GRU; ONNX as (i, o, f, c) and (z, r, h).
_RNN_OPS = {
    "LSTM": ("LSTM", 4, [0, 3, 1, 2]),
    "GRU": ("GRU", 3, [1, 0, 2]),
    "RNN_TANH": ("RNN", 1, [0]),
    "RNN_RELU": ("RNN", 1, [0]),
}


def _reorder(w: np.ndarray, order: list[int]) -> np.ndarray:
    chunks = np.split(w, len(order), axis=0)
    return np.concatenate([chunks[i] for i in order], axis=0)


@register_emitter(recurrent.RNN, recurrent.LSTM, recurrent.GRU)
def _rnn(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> Any:
    _batched(xt, 3, m)
    op, _, order = _RNN_OPS[m.mode]
    h = m.hidden_size
    directions = 2 if m.bidirectional else 1
    seq = g.node("Transpose", [x], "time_major", perm=[1, 0, 2]) if m.batch_first else x
    finals_h: list[str] = []
    finals_c: list[str] = []
    for layer in range(m.num_layers):
        ws, rs, bs = [], [], []
        for d in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            ws.append(_reorder(getattr(m, "weight_ih" + suffix).array, order))
            rs.append(_reorder(getattr(m, "weight_hh" + suffix).array, order))
            if m.bias:
                b_ih = _reorder(getattr(m, "bias_ih" + suffix).array, order)
                b_hh = _reorder(getattr(m, "bias_hh" + suffix).array, order)
                bs.append(np.concatenate([b_ih, b_hh]))
            else:
                bs.append(np.zeros(2 * ws[-1].shape[0], ws[-1].dtype))
        attrs: dict[str, Any] = {"hidden_size": h, "direction": "bidirectional" if directions == 2 else "forward"}
        if op == "GRU":
            attrs["linear_before_reset"] = 1  # PyTorch applies the reset gate after the hidden matmul
        if op == "RNN":
            attrs["activations"] = ["Relu" if m.mode == "RNN_RELU" else "Tanh"] * directions
        n_out = 3 if op == "LSTM" else 2
        outs = g.node(
            op,
            [seq, g.const(np.stack(ws), "W"), g.const(np.stack(rs), "R"), g.const(np.stack(bs), "B")],
            op.lower(),
            n_out=n_out,
            **attrs,
        )
        # Y is (L, D, N, H); the next layer (and PyTorch's output) wants (L, N, D*H).
        y = g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3])
        seq = g.node("Reshape", [y, g.ints([0, 0, -1])], "rnn_out")
        finals_h.append(outs[1])
        if op == "LSTM":
            finals_c.append(outs[2])
    output = g.node("Transpose", [seq], "rnn_out", perm=[1, 0, 2]) if m.batch_first else seq
    h_n = finals_h[0] if len(finals_h) == 1 else g.node("Concat", finals_h, "h_n", axis=0)
    if op == "LSTM":
        c_n = finals_c[0] if len(finals_c) == 1 else g.node("Concat", finals_c, "c_n", axis=0)
        return output, (h_n, c_n)
    return output, h_n


# ---------------------------------------------------------------------- tensor-op emitters
# Keyed by the name of the op's gradient rule, which every recorded result carries (Tensor._vjp).
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


# ---------------------------------------------------------------------- tracing
class _Tracer:
    """Runs the model once, writing each table layer's nodes and tracing the tensors between them."""

    def __init__(self, g: GraphBuilder) -> None:
        self.g = g
        self.names: dict[int, tuple[str, Tensor, np.ndarray]] = {}
        self.stack: list[Module] = []  # Modules (not in the table) whose forward is running
        self.depth = 0  # > 0 while a table layer's own forward runs

    def bind(self, value: Any, names: Any) -> None:
        if isinstance(value, Tensor):
            self.names[id(value)] = (names, value, value.array.copy())
        elif isinstance(value, (tuple, list)):
            for v, n in zip(value, names):
                self.bind(v, n)

    def _culprit(self) -> str:
        return type(self.stack[-1]).__name__ if self.stack else "the model"

    def resolve(self, t: Any) -> str:
        if not isinstance(t, Tensor):
            raise ExportError(
                f"ONNX export: {self._culprit()}.forward passes a {type(t).__name__} where a Tensor was expected"
            )
        entry = self.names.get(id(t))
        if entry is not None:
            name, _, snapshot = entry
            if t.array.shape != snapshot.shape or not np.array_equal(t.array, snapshot, equal_nan=True):
                raise ExportError(
                    f"ONNX export: {self._culprit()}.forward changes a tensor in place after a layer made it; "
                    f"in-place updates cannot be exported (write y = x + 1 instead of x += 1)"
                )
            return name
        rule = getattr(t, "_vjp", None)
        if rule is None:
            # A constant at export time: a parameter or literal the forward uses directly.
            name = self.g.const(t.array, "const")
        else:
            rule_name = getattr(rule, "__name__", repr(rule))
            emit = OP_EMITTERS.get(rule_name)
            if emit is None:
                op = rule_name.strip("_").removesuffix("_vjp")
                op = {"extreme": "max/min"}.get(op, op)
                raise ExportError(
                    f"ONNX export: {self._culprit()}.forward uses the tensor operation {op!r}, which the exporter "
                    f"cannot translate (supported layers: {', '.join(supported_layers())}; supported tensor ops: "
                    f"{', '.join(supported_ops())})"
                )
            parents = tuple(t._parents)
            name = emit(self.g, t, [self.resolve(p) for p in parents], parents)
        self.bind(t, name)
        return name

    def call(self, original: Callable[..., Any], m: Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.depth:
            return original(m, *args, **kwargs)
        emit = _emitter_for(m)
        if emit is None:
            if not m._modules and (m._parameters or m._buffers) and type(m).__module__.startswith("downslope."):
                raise ExportError(
                    f"ONNX export: the layer {type(m).__name__} is not supported (supported: "
                    f"{', '.join(supported_layers())})"
                )
            self.stack.append(m)
            try:
                return original(m, *args, **kwargs)
            finally:
                self.stack.pop()
        extra = [a for a in args[1:] if a is not None] + [v for v in kwargs.values() if v is not None]
        if not args or extra:
            raise ExportError(
                f"ONNX export: {type(m).__name__} is called with {len(args)} positional and {len(kwargs)} keyword "
                f"arguments; only a single input tensor can be exported (initial RNN states are not supported)"
            )
        x = args[0]
        name = self.resolve(x)
        self.depth += 1
        try:
            out = original(m, *args, **kwargs)
        finally:
            self.depth -= 1
        self.bind(out, emit(self.g, m, name, x, out))
        return out


def supported_layers() -> list[str]:
    """Names of the layer classes in the emitter table.

    Example:
        >>> from downslope.export.onnx import supported_layers
        >>> "Conv2d" in supported_layers()
        True
    """
    return sorted(t.__name__ for t in EMITTERS)


def supported_ops() -> list[str]:
    """Names of the basic tensor ops the tracer translates between layers.

    Example:
        >>> from downslope.export.onnx import supported_ops
        >>> "reshape" in supported_ops()
        True
    """
    return sorted(k.strip("_").removesuffix("_vjp") for k in OP_EMITTERS)


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _as_inputs(example_input: Any) -> list[Tensor]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    out = []
    for item in items:
        if isinstance(item, Tensor):
            out.append(Tensor(item.array.copy()))
        elif isinstance(item, np.ndarray):
            out.append(Tensor(item.copy()))
        else:
            raise ArgumentError(
                f"ONNX export: example_input must be a Tensor or NumPy array, got {type(item).__name__}"
            )
    return out


def _run_model(model: Callable[..., Any], inputs: list[Tensor]) -> list[np.ndarray]:
    with no_grad():
        out = model(*inputs)
    return [np.asarray(o.array) for o in _flat(out)]


def trace(g: GraphBuilder, model: Module, inputs: list[Tensor], names: Sequence[str]) -> tuple[list[str], list[Tensor]]:
    """Run ``model`` on ``inputs`` (bound to the graph values ``names``) in evaluation mode, writing
    its nodes into ``g``; return the graph names of its outputs and the output tensors.

    Example:
        >>> names, outs = trace(graph, model, [ds.randn(2, 4)], ["input"])  # doctest: +SKIP
    """
    if not isinstance(model, Module):
        raise ArgumentError(f"ONNX export: expected an nn.Module, got {type(model).__name__}")
    tracer = _Tracer(g)
    inputs = [Tensor(t.array.copy()) for t in inputs]
    for t, n in zip(inputs, names):
        if t.array.dtype.kind == "f":
            t.requires_grad = True  # every op on the input then records itself, so it can be traced
        tracer.bind(t, n)
    modes = {id(m): m.training for m in model.modules()}
    original = Module.__call__

    def traced(self: Module, *args: Any, **kwargs: Any) -> Any:
        return tracer.call(original, self, args, kwargs)

    model.eval()
    Module.__call__ = traced  # type: ignore[method-assign]
    try:
        with enable_grad():
            out = model(*inputs)
        outs = _flat(out)
        tracer.stack.append(model)
        internal = [tracer.resolve(o) for o in outs]
    finally:
        Module.__call__ = original  # type: ignore[method-assign]
        for m in model.modules():
            m.training = modes[id(m)]
    return internal, outs


def value_info(name: str, arr: np.ndarray, dynamic: set[int]) -> Any:
    """An ONNX input/output declaration: ``arr``'s dtype and shape, with the dims in ``dynamic`` free."""
    h = require_onnx().helper
    shape = [("batch" if i in dynamic else int(s)) for i, s in enumerate(arr.shape)]
    return h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(arr.dtype), shape)


def finish(g: GraphBuilder, name: str, inputs: list[Any], outputs: list[tuple[str, str, Any]]) -> Any:
    """The ModelProto of ``g``: ``outputs`` are (internal value, output name, value_info) triples;
    each output name must have been reserved in ``g`` (or made by ``g.fresh``) before tracing."""
    onnx = require_onnx()
    h = onnx.helper
    for src, dst, _ in outputs:  # the output names were reserved (or made fresh) by the caller
        g.nodes.append(h.make_node("Identity", [src], [dst], name=g.fresh("output_node")))
    nodes, initializers = _prune(g.nodes, g.initializers, [dst for _, dst, _ in outputs])
    graph = h.make_graph(nodes, name, inputs, [info for _, _, info in outputs], initializers)
    opsets = [h.make_opsetid("", g.opset)] + [
        h.make_opsetid(d, 3 if d == "ai.onnx.ml" else 1) for d in sorted(g.domains)
    ]
    proto = h.make_model(graph, opset_imports=opsets, producer_name="downslope")
    proto.ir_version = h.find_min_ir_version_for(opsets)
    return proto


def to_model(
    model: Module,
    example_input: Any,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int = MIN_OPSET,
) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (see :func:`export`, which also checks and writes it).

    Example:
        >>> import downslope as ds
        >>> proto = ds.onnx.to_model(ds.nn.Linear(3, 2), ds.randn(4, 3))  # doctest: +SKIP
    """
    if opset < MIN_OPSET:
        raise ArgumentError(f"ONNX export: opset must be at least {MIN_OPSET}, got {opset}")
    inputs = _as_inputs(example_input)
    in_names = list(input_names) if input_names is not None else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    )  # fmt: skip
    if len(in_names) != len(inputs):
        raise ArgumentError(f"ONNX export: {len(inputs)} example inputs but {len(in_names)} input_names")
    g = GraphBuilder(opset, dynamic_batch)
    for n in in_names + list(output_names or []):  # before tracing, so that no internal value takes them
        g.reserve(n)
    internal, outs = trace(g, model, inputs, in_names)
    if output_names is None:
        out_names = [g.fresh("output")] if len(outs) == 1 else [g.fresh(f"output_{i}") for i in range(len(outs))]
    else:
        out_names = list(output_names)
    if len(out_names) != len(outs):
        raise ArgumentError(f"ONNX export: the model returns {len(outs)} tensors but {len(out_names)} output_names")
    # Output dims that follow the batch size: those that change when the model sees another batch.
    changed = _batch_dims(model, inputs, [o.array.shape for o in outs]) if dynamic_batch else [set()] * len(outs)
    graph_inputs = [
        value_info(n, t.array, {0} if dynamic_batch and t.ndim else set()) for n, t in zip(in_names, inputs)
    ]
    outputs = [(src, dst, value_info(dst, o.array, c)) for src, dst, o, c in zip(internal, out_names, outs, changed)]
    return finish(g, type(model).__name__, graph_inputs, outputs)


def _batch_dims(model: Module, inputs: list[Tensor], shapes: list[tuple[int, ...]]) -> list[set[int]]:
    other = _other_batch(inputs, np.random.default_rng(0))
    with_other = _run_model(_evaluating(model), other)
    return [{i for i, (a, b) in enumerate(zip(s, o.shape)) if a != b} for s, o in zip(shapes, with_other)]


class _evaluating:  # noqa: N801 - used like a function
    """Calls ``model`` in eval mode and restores each submodule's mode afterwards."""

    def __init__(self, model: Module) -> None:
        self.model = model

    def __call__(self, *args: Any) -> Any:
        modes = {id(m): m.training for m in self.model.modules()}
        self.model.eval()
        try:
            return self.model(*args)
        finally:
            for m in self.model.modules():
                m.training = modes[id(m)]


def _other_batch(inputs: list[Tensor], rng: np.random.Generator) -> list[Tensor]:
    """Rows of the example resampled to a batch one larger; floating values also get a little noise."""
    out = []
    n = inputs[0].shape[0] if inputs[0].ndim else 1
    rows = rng.integers(0, n, size=n + 1)
    for t in inputs:
        a = t.array[rows] if t.ndim else t.array
        if a.dtype.kind == "f":
            a = a + (0.1 * (np.std(a) + 1e-3) * rng.standard_normal(a.shape)).astype(a.dtype)
        out.append(Tensor(np.ascontiguousarray(a)))
    return out


def _prune(nodes: list[Any], initializers: list[Any], outputs: list[str]) -> tuple[list[Any], list[Any]]:
    """Only the nodes (and constants) that the outputs depend on, in their original order."""
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    return list(reversed(keep)), [t for t in initializers if t.name in needed]


def run_onnx(proto: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of an ONNX model: ONNX Runtime if installed, else ``onnx``'s reference evaluator.

    Example:
        >>> outs = run_onnx(proto, {"input": x})  # doctest: +SKIP
    """
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return [np.asarray(o) for o in ReferenceEvaluator(proto).run(None, feeds)]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feeds)]


def verify(
    proto: Any, feeds: dict[str, np.ndarray], expected: Sequence[np.ndarray], where: str = "ONNX export"
) -> None:
    """Run ``proto`` on ``feeds`` and raise ExportError unless its outputs match ``expected``.

    Example:
        >>> verify(proto, {"input": x}, [model(ds.tensor(x)).numpy()])  # doctest: +SKIP
    """
    try:
        got = run_onnx(proto, feeds)
    except Exception as exc:  # the runtime's own error types; e.g. a shape frozen at the example's batch size
        raise ExportError(
            f"{where}: the exported graph fails on a second batch of another size ({type(exc).__name__}: {exc}); "
            f"the forward probably builds a tensor from the example's sizes or values"
        ) from None
    for name, e, o in zip([o.name for o in proto.graph.output], expected, got):
        e = np.asarray(e)
        if e.shape != o.shape:
            same = False
        elif e.dtype.kind in "fc":
            same = bool(np.allclose(o, e, rtol=1e-3, atol=1e-3 * (1 + np.abs(e).max(initial=0))))
        else:
            same = bool(np.array_equal(e.astype(o.dtype) if e.dtype != o.dtype else e, o))
        if not same:
            raise ExportError(
                f"{where}: the exported graph's output {name!r} differs from the model's on a second batch "
                f"(shape {o.shape} vs {e.shape}); the forward probably depends on the values or the batch size "
                f"in a way the trace cannot see"
            )


def export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike[str],
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int = MIN_OPSET,
    check: bool = True,
) -> Any:
    """Write ``model`` as an ONNX file at ``path``; return the ``onnx.ModelProto``.

    ``example_input`` (a Tensor or array, or a tuple of them for several inputs) fixes every input
    dim except dim 0, which stays free (any batch size) when ``dynamic_batch``. The model is
    exported in evaluation semantics (Dropout off, BatchNorm's running statistics). The graph
    passes ``onnx.checker.check_model``; with ``check`` it is also run on a second batch (of another size;
    the example itself when not ``dynamic_batch``) and must
    reproduce the model's outputs (see the module docstring). Raises
    :class:`~downslope.errors.ExportError` naming any layer or op it cannot translate.

    Example:
        >>> import downslope as ds
        >>> model = ds.nn.Sequential(ds.nn.Linear(4, 8), ds.nn.ReLU(), ds.nn.Linear(8, 3))
        >>> proto = ds.onnx.export(model, ds.randn(2, 4), "model.onnx")  # doctest: +SKIP
        >>> [i.name for i in proto.graph.input]  # doctest: +SKIP
        ['input']
    """
    onnx = require_onnx()
    proto = to_model(model, example_input, input_names, output_names, dynamic_batch, opset)
    onnx.checker.check_model(proto, full_check=True)
    if check:
        inputs = _as_inputs(example_input)
        second = _other_batch(inputs, np.random.default_rng(1)) if dynamic_batch else inputs
        feeds = {i.name: t.array for i, t in zip(proto.graph.input, second)}
        verify(proto, feeds, _run_model(_evaluating(model), second))
    onnx.save_model(proto, os.fspath(path))
    return proto
