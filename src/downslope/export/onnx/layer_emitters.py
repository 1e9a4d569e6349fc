"""One emitter per layer class: the ONNX nodes of Linear, the activations, Conv/Pool, the norms,
Embedding and the recurrent layers, registered in ``EMITTERS`` when this module is imported."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import ExportError
from ...nn import activation as act
from ...nn import conv_transpose, layers, module, normalization, pooling_extra, recurrent, volumetric
from ...nn import convolution as conv
from ...tensor import Tensor
from .graph import Emitter, GraphBuilder, check_batched, register_emitter


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


def _softmax_axis(m: Any, xt: Tensor) -> int:
    """The layer's dim, or for dim=None the one PyTorch's implicit choice makes (as the forward does)."""
    return int(m.dim) if m.dim is not None else (0 if xt.ndim in (0, 1, 3) else 1)


@register_emitter(act.Softmax)
def _softmax(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Softmax", [x], "softmax", axis=_softmax_axis(m, xt))


@register_emitter(act.LogSoftmax)
def _log_softmax(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("LogSoftmax", [x], "log_softmax", axis=_softmax_axis(m, xt))


# ---------------------------------------------------------------------- PyTorch's further activations
def _clip(g: GraphBuilder, x: str, xt: Tensor, low: float, high: float, hint: str) -> str:
    return g.node("Clip", [x, _scalar(g, low, xt), _scalar(g, high, xt)], hint)


@register_emitter(act.ReLU6)
def _relu6(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return _clip(g, x, xt, 0.0, 6.0, "relu6")


@register_emitter(act.Hardtanh)
def _hardtanh(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return _clip(g, x, xt, m.min_val, m.max_val, "hardtanh")


# PyTorch's constants (ONNX's defaults differ in the last digits).
register_emitter(act.SELU)(_simple("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805))
register_emitter(act.Softsign)(_simple("Softsign"))
register_emitter(act.Hardsigmoid)(_simple("HardSigmoid", alpha=1.0 / 6.0, beta=0.5))
register_emitter(act.Hardswish)(_simple("HardSwish"))


@register_emitter(act.CELU)
def _celu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Celu", [x], "celu", alpha=float(m.alpha))


@register_emitter(act.Mish)
def _mish(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])], "mish")


@register_emitter(act.LogSigmoid)
def _log_sigmoid(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    # -softplus(-x): no overflow for large |x|, as in downslope and PyTorch.
    return g.node("Neg", [g.node("Softplus", [g.node("Neg", [x])])], "log_sigmoid")


@register_emitter(act.Tanhshrink)
def _tanhshrink(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Sub", [x, g.node("Tanh", [x])], "tanhshrink")


@register_emitter(act.Softmin)
def _softmin(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Softmax", [g.node("Neg", [x])], "softmin", axis=_softmax_axis(m, xt))


@register_emitter(act.Softmax2d)
def _softmax2d(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    return g.node("Softmax", [x], "softmax2d", axis=-3)


@register_emitter(act.Threshold)
def _threshold(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    keep = g.node("Greater", [x, _scalar(g, m.threshold, xt)])
    return g.node("Where", [keep, x, _scalar(g, m.value, xt)], "threshold")


@register_emitter(act.Softshrink)
def _softshrink(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    lambd, neg = _scalar(g, m.lambd, xt), _scalar(g, -m.lambd, xt)
    low = g.node("Where", [g.node("Less", [x, neg]), g.node("Add", [x, lambd]), _scalar(g, 0.0, xt)])
    return g.node("Where", [g.node("Greater", [x, lambd]), g.node("Sub", [x, lambd]), low], "softshrink")


@register_emitter(act.Hardshrink)
def _hardshrink(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    keep = g.node("Greater", [g.node("Abs", [x]), _scalar(g, m.lambd, xt)])
    return g.node("Where", [keep, x, _scalar(g, 0.0, xt)], "hardshrink")


@register_emitter(act.RReLU)
def _rrelu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    # Evaluation semantics: the fixed slope (lower + upper) / 2, as PyTorch in eval mode.
    slope = _scalar(g, (m.lower + m.upper) / 2, xt)
    keep = g.node("GreaterOrEqual", [x, _scalar(g, 0.0, xt)])
    return g.node("Where", [keep, x, g.node("Mul", [x, slope])], "rrelu")


@register_emitter(act.PReLU)
def _prelu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    w = m.weight.array
    if w.size > 1:
        if xt.ndim < 2 or xt.shape[1] != w.size:
            raise ExportError(
                f"ONNX export: PReLU has {w.size} slopes but the input's channel dim (1) is shape {tuple(xt.shape)}"
            )
        w = w.reshape((w.size,) + (1,) * (xt.ndim - 2))  # broadcast over the dims after the channels
    return g.node("PRelu", [x, g.const(w, "slope")], "prelu")


@register_emitter(act.GLU)
def _glu(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    axis = int(m.dim) % xt.ndim
    a, b = g.node("Split", [x], "glu_half", n_out=2, axis=axis)  # two equal halves (even size checked by forward)
    return g.node("Mul", [a, g.node("Sigmoid", [b])], "glu")


def _norm(g: GraphBuilder, d: str, xt: Tensor, p: float, axis: int, keepdim: bool) -> str:
    """The ``p``-norm of ``d`` over ``axis``, written as downslope's ``F._norm`` computes it."""
    axes, keep = g.ints([axis], "axes"), int(keepdim)
    if p == 2:
        return g.node("Sqrt", [g.node("ReduceSum", [g.node("Mul", [d, d]), axes], keepdims=keep)])
    if p == 1:
        return g.node("ReduceSum", [g.node("Abs", [d]), axes], keepdims=keep)
    powered = g.node("Pow", [g.node("Abs", [d]), _scalar(g, p, xt)])
    return g.node("Pow", [g.node("ReduceSum", [powered, axes], keepdims=keep), _scalar(g, 1.0 / p, xt)])


@register_emitter(act.CosineSimilarity, inputs=2)
def _cosine_similarity(g: GraphBuilder, m: Any, x: Any, xt: Any, out: Any) -> str:
    # sum(x1 x2) / (max(|x1|, eps) max(|x2|, eps)) along dim, as torch.nn.functional.cosine_similarity.
    (a, b), like = x, xt[0]
    eps = _scalar(g, m.eps, like)
    n1 = g.node("Max", [_norm(g, a, like, 2, m.dim, False), eps])
    n2 = g.node("Max", [_norm(g, b, like, 2, m.dim, False), eps])
    dot = g.node("ReduceSum", [g.node("Mul", [a, b]), g.ints([m.dim], "axes")], keepdims=0)
    return g.node("Div", [dot, g.node("Mul", [n1, n2])], "cosine_similarity")


@register_emitter(act.PairwiseDistance, inputs=2)
def _pairwise_distance(g: GraphBuilder, m: Any, x: Any, xt: Any, out: Any) -> str:
    # ||x1 - x2 + eps||_p over the last dim, as torch.nn.functional.pairwise_distance.
    (a, b), like = x, xt[0]
    d = g.node("Add", [g.node("Sub", [a, b]), _scalar(g, m.eps, like)])
    return _norm(g, d, like, float(m.norm), -1, bool(m.keepdim))


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
    check_batched(xt, n + 2, m)
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
    check_batched(xt, n + 2, m)
    if m.return_indices:
        raise ExportError(f"ONNX export: {type(m).__name__}(return_indices=True) is not supported")
    pads = _ntuple(m.padding, n)
    kernel, dilation = _ntuple(m.kernel_size, n), _ntuple(m.dilation, n)
    stride = _ntuple(m.stride if m.stride is not None else m.kernel_size, n)
    ends = list(pads)
    if m.ceil_mode:
        # PyTorch's ceil rule drops a last window that would start inside the right padding, ONNX's
        # does not: write the output size PyTorch gives with floor mode and the end padding that makes it
        # (a window reaching into that padding only sees real values there: MaxPool ignores the pads).
        for i, (size, o) in enumerate(zip(xt.shape[2:], out.shape[2:])):
            ends[i] = max(0, (o - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 - size - pads[i])
            span = size + pads[i] + ends[i] - dilation[i] * (kernel[i] - 1) - 1
            if span < 0 or span // stride[i] + 1 != o or (o - 1) * stride[i] >= size + pads[i]:
                raise ExportError(
                    f"ONNX export: {type(m).__name__}(ceil_mode=True) on an input of size {size} gives {o} "
                    f"windows, which ONNX's MaxPool cannot reproduce"
                )
    return g.node(
        "MaxPool",
        [x],
        "max_pool",
        kernel_shape=kernel,
        strides=stride,
        pads=pads + ends,
        dilations=dilation,
        ceil_mode=0,
    )


@register_emitter(conv.AvgPool1d, conv.AvgPool2d)
def _avg_pool(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = 1 if isinstance(m, conv.AvgPool1d) else 2
    check_batched(xt, n + 2, m)
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
    check_batched(xt, n + 2, m)
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
    # The tracer has put back the rows that the forward renormalized in place: this is the table as it was.
    weight = m.weight.array
    rows = g.node("Gather", [g.const(weight, "embedding"), x], "embedding", axis=0)
    if m.max_norm is None:
        return rows
    # max_norm: each looked-up row whose norm exceeds it is scaled to it, computed on the gathered rows
    # (downslope and PyTorch renormalize the table's rows in place; the rows they return are these).
    p = float(m.norm_type)
    one = g.const(np.asarray(1.0, weight.dtype), "one")
    limit = g.const(np.asarray(m.max_norm, weight.dtype), "max_norm")
    axes = g.ints([-1], "axes")
    powered = g.node("Pow", [g.node("Abs", [rows]), g.const(np.asarray(p, weight.dtype), "norm_type")])
    norm = g.node("Pow", [g.node("ReduceSum", [powered, axes], keepdims=1), g.const(np.asarray(1.0 / p, weight.dtype))])
    scaled = g.node("Div", [limit, g.node("Add", [norm, g.const(np.asarray(1e-7, weight.dtype), "eps")])])
    scale = g.node("Where", [g.node("Greater", [norm, limit]), scaled, one], "renorm_scale")
    return g.node("Mul", [rows, scale], "embedding")


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
    check_batched(xt, 3, m)
    if getattr(m, "proj_size", 0):
        # ONNX's LSTM has no projection of the hidden state.
        raise ExportError(f"ONNX export: {type(m).__name__}(proj_size={m.proj_size}) is not supported")
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
    # h_n and c_n are (layers * directions, batch, hidden): their batch dim is 1, and they have none
    # that follows the input's dim 0 when that is the time (batch_first=False).
    axis = g.batch_axis.get(x)
    if axis == 0 and not m.batch_first:  # the input's free dim is the time: its graph inputs say so
        g.free_axis_role = "sequence"
    g.batch_axis[output] = axis if axis in (0, 1) else None
    final_axis = 1 if axis is not None and axis == (0 if m.batch_first else 1) else None
    g.batch_axis[h_n] = final_axis
    if op == "LSTM":
        c_n = finals_c[0] if len(finals_c) == 1 else g.node("Concat", finals_c, "c_n", axis=0)
        g.batch_axis[c_n] = final_axis
        return output, (h_n, c_n)
    return output, h_n


# ---------------------------------------------------------------------- more norms, transposed and 3-D convolutions
def _reduce_mean(g: GraphBuilder, x: str, axes: list[int], hint: str) -> str:
    """ReduceMean over ``axes`` (kept): its axes are an input from opset 18 on, an attribute before."""
    if g.opset >= 18:
        return g.node("ReduceMean", [x, g.ints(axes, "axes")], hint, keepdims=1)
    return g.node("ReduceMean", [x], hint, axes=axes, keepdims=1)


def _channel_affine(g: GraphBuilder, y: str, m: Any, xt: Tensor, hint: str) -> str:
    """``y * weight + bias`` with per-channel (dim 1) weight and bias shaped to broadcast, when the layer has them."""
    shape = [-1] + [1] * (xt.ndim - 2)
    if getattr(m, "weight", None) is not None:
        y = g.node("Mul", [y, g.const(m.weight.array.reshape(shape), f"{hint}_weight")])
    if getattr(m, "bias", None) is not None:
        y = g.node("Add", [y, g.const(m.bias.array.reshape(shape), f"{hint}_bias")])
    return g.node("Identity", [y], hint)


@register_emitter(normalization.GroupNorm)
def _group_norm(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    """Each sample's channels in ``num_groups`` groups, normalized over the group (biased variance, eps)."""
    if xt.ndim < 2:
        check_batched(xt, 3, m)
    dtype = xt.array.dtype
    grouped = g.node("Reshape", [x, g.ints([0, int(m.num_groups), -1])], "groups")
    mean = _reduce_mean(g, grouped, [2], "group_mean")
    centered = g.node("Sub", [grouped, mean])
    var = _reduce_mean(g, g.node("Mul", [centered, centered]), [2], "group_var")
    std = g.node("Sqrt", [g.node("Add", [var, g.const(np.asarray(m.eps, dtype), "eps")])])
    normed = g.node("Reshape", [g.node("Div", [centered, std]), g.node("Shape", [x])], "group_normed")
    return _channel_affine(g, normed, m, xt, "group_norm")


@register_emitter(normalization.InstanceNorm1d, normalization.InstanceNorm2d)
def _instance_norm(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    """Each sample's channels normalized over their own positions; with running statistics (tracked, in
    evaluation) those instead, as BatchNorm."""
    n = 1 if isinstance(m, normalization.InstanceNorm1d) else 2
    check_batched(xt, n + 2, m)
    c, dtype = xt.shape[1], xt.array.dtype
    scale = m.weight.array if m.weight is not None else np.ones(c, dtype)
    bias = m.bias.array if m.bias is not None else np.zeros(c, dtype)
    if m.track_running_stats and m.running_mean is not None:
        return g.node(
            "BatchNormalization",
            [x, g.const(scale, "in_scale"), g.const(bias, "in_bias"), g.const(m.running_mean.array, "running_mean"),
             g.const(m.running_var.array, "running_var")],
            "instance_norm",
            epsilon=float(m.eps),
        )  # fmt: skip
    return g.node(
        "InstanceNormalization", [x, g.const(scale, "in_scale"), g.const(bias, "in_bias")], "instance_norm",
        epsilon=float(m.eps),
    )  # fmt: skip


@register_emitter(normalization.RMSNorm)
def _rms_norm(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    """x / sqrt(mean(x^2 over the normalized dims) + eps) * weight; eps None is the dtype's machine epsilon (torch's)."""
    dims = len(tuple(m.normalized_shape))
    dtype = xt.array.dtype
    eps = float(np.finfo(dtype).eps) if m.eps is None else float(m.eps)
    mean = _reduce_mean(g, g.node("Mul", [x, x]), list(range(xt.ndim - dims, xt.ndim)), "rms_mean")
    root = g.node("Sqrt", [g.node("Add", [mean, g.const(np.asarray(eps, dtype), "eps")])])
    y = g.node("Div", [x, root], "rms_norm")
    if m.weight is not None:
        y = g.node("Mul", [y, g.const(m.weight.array, "rms_weight")], "rms_norm")
    return y


register_emitter(volumetric.Conv3d)(_conv)


@register_emitter(conv_transpose.ConvTranspose1d, conv_transpose.ConvTranspose2d)
def _conv_transpose(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    n = len(m.kernel_size)
    check_batched(xt, n + 2, m)
    inputs = [x, g.const(m.weight.array, "weight")] + ([g.const(m.bias.array, "bias")] if m.bias is not None else [])
    return g.node(
        "ConvTranspose",
        inputs,
        "conv_transpose",
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        pads=list(m.padding) * 2,
        dilations=list(m.dilation),
        output_padding=list(m.output_padding),
        group=int(m.groups),
    )


@register_emitter(pooling_extra.AdaptiveMaxPool2d)
def _adaptive_max_pool(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    """AdaptiveMaxPool2d where each output size divides the input's: a MaxPool of equal windows."""
    check_batched(xt, 4, m)
    if m.return_indices:
        raise ExportError(f"ONNX export: {type(m).__name__}(return_indices=True) is not supported")
    sizes, outs = xt.shape[2:], out.shape[2:]
    if any(s % o for s, o in zip(sizes, outs)):
        raise ExportError(
            f"ONNX export: {type(m).__name__} from size {tuple(sizes)} to {tuple(outs)} has windows of unequal "
            "sizes, which ONNX's MaxPool cannot write; only output sizes that divide the input's export"
        )
    kernel = [s // o for s, o in zip(sizes, outs)]
    return g.node("MaxPool", [x], "adaptive_max_pool", kernel_shape=kernel, strides=kernel)


@register_emitter(layers.EmbeddingBag)
def _embedding_bag(g: GraphBuilder, m: Any, x: str, xt: Tensor, out: Any) -> str:
    """EmbeddingBag of a 2-D input (each row a bag of equal length, no offsets): the rows looked up and
    reduced over the bag by its mode."""
    if xt.ndim != 2:
        raise ExportError(
            f"ONNX export: {type(m).__name__} is exported for a 2-D input of bags of equal length (no offsets), "
            f"got shape {tuple(xt.shape)}"
        )
    if m.max_norm is not None or m.padding_idx is not None:
        raise ExportError(f"ONNX export: {type(m).__name__} with max_norm or padding_idx is not supported")
    op = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}[m.mode]
    rows = g.node("Gather", [g.const(m.weight.array, "embedding"), x], "bag_rows", axis=0)
    if op == "ReduceSum" or g.opset >= 18:
        return g.node(op, [rows, g.ints([1], "axes")], "embedding_bag", keepdims=0)
    return g.node(op, [rows], "embedding_bag", axes=[1], keepdims=0)
