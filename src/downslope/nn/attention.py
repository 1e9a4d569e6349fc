"""Attention: ``scaled_dot_product_attention`` as one fused op, and ``MultiheadAttention``.

Scaled dot-product attention is ``softmax(q @ k^T * scale + mask) @ v``. Built from basic ops it
would record five nodes and keep their temporaries (the scores, the softmax, the dropped softmax);
fused, it keeps only the softmax probabilities P (and the dropout mask, one byte per entry).
The backward works from P alone, using the identity (FlashAttention's)

    sum_j P_ij dP_ij = sum_j Pd_ij (g_i . v_j) = g_i . out_i          (Pd = dropped P, out = Pd @ v)

so that the softmax's row sums come from the output and the output gradient, not from a second
(L, S) matrix: beside the saved P, one (L, S) matrix per head is alive at a time (dP, turned into
the score gradient in place). Under ``create_graph`` the rule is recomputed from differentiable
ops, so attention can be differentiated twice.

float16 inputs are computed in float32 (PyTorch's "opmath" on the CPU) and the output and the
gradients rounded to float16 once: float16 scores of inputs of a few hundred overflow, and the
backward's row sums cancel. P is then kept in float32, and the backward takes its row sums from
P (rowsum(dP * P)) rather than from the rounded output.

Masks follow PyTorch: in ``scaled_dot_product_attention`` a boolean mask says which keys *take
part* (True) and a float mask is added to the scores; in ``MultiheadAttention`` and the
Transformer layers a boolean mask says which positions are *masked out* (True), as there.
A query row whose keys are all masked out attends to nothing and gives zeros (PyTorch's
"safe softmax" in its fused kernels); the ``need_weights=True`` path of ``MultiheadAttention``
returns NaN for such rows, as PyTorch's does.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import backend, gemm, jit_gate, ops, workspace
from ..backend import namespace_of
from ..device import SDPBackend, set_sdp_backends
from ..errors import ArgumentAssertionError, ArgumentError, ArgumentTypeError, ShapeError
from ..graph import is_grad_enabled
from ..tensor import Tensor, empty, forget_layout_note, record_op, wrap_array
from . import init
from ._arrays import array_like, array_of, scalar
from ._nondynamic_linear import NonDynamicallyQuantizableLinear
from .module import Module, Parameter

__all__ = ["scaled_dot_product_attention", "MultiheadAttention", "multi_head_attention_forward"]
__all__ += ["SDPBackend", "sdpa_kernel"]  # torch.nn.attention's names
# torch.nn.attention is a package: an empty __path__ lets `import downslope.nn.attention.flex_attention`
# reach the finder that says why it is left out (a plain module would fail with "not a package")
__path__: list[str] = []

_HALF = np.dtype(np.float16)
# the numbers a probability may be given as (NumPy scalars too, as torch takes them); built once, not per call
_REALS = (int, float, np.integer, np.floating)
_F32 = np.dtype(np.float32)


# ---------------------------------------------------------------------- the fused op
def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | np.ndarray | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, one fused op (PyTorch's function).

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading
    dims broadcast. ``attn_mask`` broadcasts to (..., L, S): boolean (True = the key takes part)
    or float (added to the scores; a float mask that requires grad gets a gradient).
    ``is_causal`` masks key j > query i (top-left aligned, as PyTorch); given with ``attn_mask`` too,
    both apply (a key takes part where the mask lets it and it is not in the future), as PyTorch's
    CPU implementation does although its documentation calls the combination an error. ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention probabilities
    with the library's seeded generator; like PyTorch's function it applies whenever ``dropout_p >
    0`` (pass 0 in evaluation). ``enable_gqa``: key/value may have fewer heads (dim -3) than the
    query; query head h uses key/value head h // (Hq / Hk).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> q = k = v = ds.randn(2, 4, 5, 8)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        downslope.Size([2, 4, 5, 8])
    """
    if (
        attn_mask is None
        and not enable_gqa
        and (dropout_p.__class__ is float or dropout_p.__class__ is int)
        and dropout_p == 0
        and (scale is None or scale.__class__ is float)
        and isinstance(query, Tensor)
        and isinstance(key, Tensor)
        and isinstance(value, Tensor)
    ):
        # The usual call of a model's forward (no mask but the causal one, no dropout, host float
        # tensors of one dtype and the same leading dims) skips the checks below, which it passes:
        # a small model's forward makes many such calls on little data (token by token generation).
        qa, ka, va = query.array, key.array, value.array
        if (
            type(qa) is np.ndarray  # host: plain host arrays only; any other namespace takes the checks
            and type(ka) is np.ndarray
            and type(va) is np.ndarray
            and qa.dtype in _HOST_FLOATS
            and qa.dtype == ka.dtype == va.dtype
            and qa.ndim >= 2
            and qa.ndim == ka.ndim == va.ndim
            and qa.shape[-1] == ka.shape[-1]
            and ka.shape[-2] == va.shape[-2]
            and qa.shape[:-2] == ka.shape[:-2] == va.shape[:-2]
        ):
            scale = 1.0 / math.sqrt(qa.shape[-1]) if scale is None else scale
            if not (
                is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
            ) and _small_enough(qa.shape, ka.shape[-2], va.shape[-1], is_causal):
                out = _host_output_like(query, qa, va.shape[-1])
                return _small_attention((query, key, value), qa, ka, va, is_causal, scale, out)
            lead = qa.shape[:-2]
            out = _output_like(query, va.shape[-1], (lead, lead, lead))
            return _attention_node((query, key, value), qa, ka, va, None, None, is_causal, scale, dropout_p, out)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"scaled_dot_product_attention: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ShapeError(
                f"scaled_dot_product_attention: {name} needs shape (..., seq, features), got {tuple(t.shape)}"
            )
        if not backend.is_floating(t.array.dtype):
            raise ArgumentTypeError(
                f"scaled_dot_product_attention: {name} must be floating point, got dtype {t.array.dtype}"
            )
    if not (query.array.dtype == key.array.dtype == value.array.dtype):
        raise ArgumentTypeError(
            f"scaled_dot_product_attention: query, key and value must share a dtype, got "
            f"{query.array.dtype}, {key.array.dtype} and {value.array.dtype}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ShapeError(
            f"scaled_dot_product_attention: query's last dim ({tuple(query.shape)}) must equal key's ({tuple(key.shape)})"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: key {tuple(key.shape)} and value {tuple(value.shape)} need the same sequence "
            "length (dim -2)"
        )
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, _REALS) or not 0.0 <= dropout_p < 1.0:
        raise ArgumentError(f"scaled_dot_product_attention: dropout_p must be a number in [0, 1), got {dropout_p!r}")
    group = 1
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ShapeError(
                f"scaled_dot_product_attention(enable_gqa=True): the query's heads ({hq}, shape {tuple(query.shape)}) must "
                f"be a multiple of the key's and value's ({hk} and {value.shape[-3]})"
            )
        group = hq // hk
    e = query.shape[-1]
    scale = 1.0 / math.sqrt(e) if scale is None else float(scale)  # host: the caller's Python number

    q, k, v = query, key, value
    if group > 1:  # (..., Hk*G, L, E) -> (..., Hk, G, L, E); key/value (..., Hk, 1, S, E) broadcast over G
        q = ops.reshape(q, q.shape[:-3] + (q.shape[-3] // group, group) + q.shape[-2:])
        k = ops.reshape(k, k.shape[:-2] + (1,) + k.shape[-2:])
        v = ops.reshape(v, v.shape[:-2] + (1,) + v.shape[-2:])

    mask_kind, mask = _prepare_mask(attn_mask, query, q, group)
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ShapeError(
            f"scaled_dot_product_attention: the leading (batch, head) dims of query {tuple(query.shape)}, key {tuple(key.shape)} "
            f"and value {tuple(value.shape)} do not broadcast together"
        ) from None
    out = _output_like(query, value.shape[-1], (q.shape[:-2], k.shape[:-2], v.shape[:-2]))
    if out is not None and group > 1:
        out = out.reshape(q.shape[:-1] + (value.shape[-1],))  # the heads split into groups: a view
    result = _attention_node((q, k, v), q.array, k.array, v.array, mask_kind, mask, is_causal, scale, dropout_p, out)
    if group > 1:
        result = ops.reshape(result, query.shape[:-1] + (value.shape[-1],))
    return result


def _small_enough(q_shape: tuple[int, ...], keys: int, width: int, is_causal: bool) -> bool:
    """Whether attention of a query of ``q_shape`` over ``keys`` keys with values ``width`` wide takes
    the general path's plain NumPy steps: fewer scores than the compiled softmax takes
    (JIT_SCORES_MIN_SIZE), too few queries for the causal blocks (_CAUSAL_MIN) and both products
    below the size oneDNN's GEMM takes (gemm.MIN_MULTIPLY_ADDS)."""
    length, e = q_shape[-2], q_shape[-1]
    return (
        0 < math.prod(q_shape[:-2]) * length * keys < JIT_SCORES_MIN_SIZE
        and (not is_causal or length < _CAUSAL_MIN)
        and length * keys * max(e, width) < gemm.MIN_MULTIPLY_ADDS
    )


# 0-d host arrays of the softmax's constants by dtype (-inf, 0, 1), and of the scale by (scale, dtype):
# a 0-d array operand costs a ufunc call less than a NumPy scalar, which it converts on every call
# (half the time of an elementwise op on a few hundred scores).
_CONSTANTS: dict[Any, tuple[np.ndarray, ...]] = {}
_SCALES: dict[tuple[float, np.dtype], np.ndarray] = {}


def _constants(dtype: np.dtype) -> tuple[np.ndarray, ...]:
    kept = _CONSTANTS.get(dtype)
    if kept is None:
        kept = tuple(np.array(v, dtype=dtype) for v in (-np.inf, 0, 1))  # host: the small host path's only
        for c in kept:
            c.flags.writeable = False  # only ever read (ufunc operands)
        _CONSTANTS[dtype] = kept
    return kept


def _scale_of(scale: float, dtype: np.dtype) -> np.ndarray:
    kept = _SCALES.get((scale, dtype))
    if kept is None:
        kept = np.array(scalar(scale, dtype))  # host: as _constants; the same rounding as scalar()
        kept.flags.writeable = False
        if len(_SCALES) < 64:
            _SCALES[(scale, dtype)] = kept
    return kept


# From this many score rows the row max is taken over a transposed copy of the scores (a reduction
# down the columns runs over whole contiguous rows at once); below it the copy costs more than it saves.
_TRANSPOSED_MAX_ROWS = 32


def _small_attention(
    inputs: tuple[Tensor, Tensor, Tensor],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    is_causal: bool,
    scale: float,
    out: np.ndarray | None,
) -> Tensor:
    """Attention without a mask (but the causal one) or dropout, of host float arrays of the same
    leading dims, small enough for :func:`_small_enough`, that no gradient is recorded for: the steps
    of :func:`_attention_node` and :func:`_softmax_in_place` with the same results bit for bit, in
    fewer NumPy calls (a small model's forward makes many such calls on little data: token by token
    generation spends most of its time in the calls' fixed costs). The row max is exact in any
    order (a max of -0.0 and 0.0 may differ in sign, which shifts no score), and a row whose max is
    finite has a probability sum of at least 1, so the masked-out rows' fix-ups run only when a max
    is not finite."""
    neg_inf, zero, one = _constants(q.dtype)
    s = np.matmul(q, k.swapaxes(-1, -2))  # gemm.matmul's own choice below MIN_MULTIPLY_ADDS
    np.multiply(s, _scale_of(scale, q.dtype), out=s)
    blocked = None
    if is_causal:
        blocked = _causal_future(s.shape[-2], s.shape[-1])
        np.copyto(s, neg_inf, where=blocked)
    width = s.shape[-1]
    rows = s.size // width
    if rows >= _TRANSPOSED_MAX_ROWS:
        m = np.maximum.reduce(s.reshape(rows, width).T.copy(), axis=0).reshape(s.shape[:-1] + (1,))
    else:
        m = np.maximum.reduce(s, axis=-1, keepdims=True)
    # every max finite (a sum of them that overflows only takes the fix-ups, which then change nothing)
    every = math.isfinite(np.add.reduce(m, axis=None))  # host: a host array's number (host arrays only)
    if not every:
        np.copyto(m, zero, where=~np.isfinite(m))
    np.subtract(s, m, out=s)
    np.exp(s, out=s)
    z = np.add.reduce(s, axis=-1, keepdims=True)
    if not every:
        np.copyto(z, one, where=z == 0)
    np.divide(s, z, out=s)
    result = np.matmul(s, v) if out is None else np.matmul(s, v, out=out)
    saved = (s, None, 0.0, scale, blocked, None, False, None)
    node = record_op(result, inputs, _sdpa_vjp, saved)
    if not result.flags.c_contiguous:
        forget_layout_note(result)  # as _attention_node: the query's layout is PyTorch's too
    return node


def _packed_self_attention(qkv: Tensor, mask: Tensor | None, dropout_p: float, is_causal: bool) -> Tensor:
    """Attention of ``qkv[0]`` over ``qkv[1]``, ``qkv[2]`` for a packed (3, N, H, L, D) projection, as one
    node whose input gradient is one (3, N, H, L, D) array: taking q, k and v out by indexing would
    scatter each gradient into a zero array of the full packed shape and add the three up.
    ``mask`` is an additive float mask broadcasting to (N, H, L, L), or None."""
    d = qkv.array
    mask_kind = None if mask is None else "float"
    scale = 1.0 / math.sqrt(d.shape[-1])
    # The output stays in order here, not in the query's (N, L, H, D) layout: it never reaches the
    # caller's code (MultiheadAttention merges the heads by a reshape, then projects), and writing
    # it out of order measured some 4% slower on small inputs (N 32, L 16, E 64) and no faster on large.
    return _attention_node((qkv,), d[0], d[1], d[2], mask_kind, mask, is_causal, scale, dropout_p)


def _output_like(query: Tensor, width: int, batches: tuple[tuple[int, ...], ...]) -> np.ndarray | None:
    """An empty output of shape (B, H, L, ``width``) whose dims lie in memory in the order of the
    query's, as PyTorch's fused op lays its output out; None to compute it in order.

    Heads split by ``proj(x).view(B, L, H, D).transpose(1, 2)`` (the SDPA tutorial, nanoGPT) give a
    query that is (B, L, H, D) in memory; the callers then merge the heads by
    ``y.transpose(1, 2).view(B, L, H * D)``, which works on PyTorch's output and needs the output
    laid out (B, L, H, D) too. Only 4-d queries that are not broadcast against the key or value, as
    PyTorch (its 3-d and 5-d outputs, and those of a broadcast query, are in order). ``batches``: the
    leading dims of the query, key and value as the node takes them (grouped heads split)."""
    if query.ndim != 4:
        return None
    if not (batches[0] == batches[1] == batches[2]) and np.broadcast_shapes(*batches) != batches[0]:
        return None
    order = _memory_order(query.shape, query.stride())  # PyTorch's strides (a convolution's output is in order)
    if order is None:
        return None
    return _empty_in_order(query.array, query.shape[:-1] + (width,), order)


def _host_output_like(query: Tensor, q: np.ndarray, width: int) -> np.ndarray | None:
    """:func:`_output_like` for a host query ``q`` (the array of ``query``) whose leading dims the
    key's and the value's equal, in fewer steps."""
    if q.ndim != 4:
        return None
    order = _memory_order(q.shape, query.stride())
    if order is None:
        return None
    buffer_shape, axes = _in_order_plan(q.shape[:-1] + (width,), order)
    return np.empty(buffer_shape, dtype=q.dtype).transpose(axes)  # host: the caller takes host arrays only


@functools.lru_cache(maxsize=256)  # a pure function of two tuples, asked once per attention call
def _memory_order(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...] | None:
    """The leading dims of an array (all but the last) from the outermost in memory to the innermost
    (dims of size 1 left in place: they take no room), or None where the array is in order, or cannot
    be followed (a broadcast dim, or a last dim that is not the innermost)."""
    leading = [d for d in range(len(shape) - 1) if shape[d] > 1]
    if any(strides[d] == 0 for d in leading):
        return None
    if shape[-1] > 1 and any(strides[d] <= strides[-1] for d in leading):
        return None
    by_stride = sorted(leading, key=lambda d: -strides[d])  # stable: equal strides keep their order
    if by_stride == leading:
        return None
    order = list(range(len(shape) - 1))
    for place, d in zip(leading, by_stride):
        order[place] = d
    return tuple(order)


def _empty_in_order(like: np.ndarray, shape: tuple[int, ...], order: tuple[int, ...]) -> np.ndarray:
    """An empty array of ``shape`` (``like``'s dtype and device) whose leading dims lie in memory in
    ``order`` (:func:`_memory_order`), the last dim innermost."""
    buffer_shape, axes = _in_order_plan(tuple(shape), order)
    return np.transpose(namespace_of(like).empty(buffer_shape, dtype=like.dtype), axes)


@functools.lru_cache(maxsize=256)  # a pure function of two tuples, asked once per attention call
def _in_order_plan(shape: tuple[int, ...], order: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the buffer's shape, the axes that view it as ``shape``) for :func:`_empty_in_order`."""
    n = len(shape)
    back = [0] * (n - 1)
    for place, d in enumerate(order):
        back[d] = place
    return tuple(shape[d] for d in order) + (shape[-1],), tuple(back) + (n - 1,)


def _attention_node(
    inputs: tuple[Tensor, ...],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask_kind: str | None,
    mask: Tensor | None,
    is_causal: bool,
    scale: float,
    dropout_p: float,
    out: np.ndarray | None = None,
) -> Tensor:
    """The fused node: ``inputs`` are (q, k, v) or (packed qkv,), the arrays their values. ``out``:
    where to write the output (laid out as the query, :func:`_output_like`), or None."""
    L, S = q.shape[-2], k.shape[-2]
    lead = q.shape[:-2]
    if not (lead == k.shape[:-2] == v.shape[:-2]):  # (equal leading dims need no broadcasting)
        lead = np.broadcast_shapes(lead, k.shape[:-2], v.shape[:-2])
    score_shape = lead + (L, S)
    if mask is not None:
        try:
            score_shape = np.broadcast_shapes(score_shape, mask.shape)
        except ValueError:
            raise ShapeError(
                f"scaled_dot_product_attention: attn_mask of shape {tuple(mask.shape)} does not broadcast to the "
                f"scores' shape {score_shape} (..., L, S)"
            ) from None
        if score_shape[-2:] != (L, S):
            raise ShapeError(
                f"scaled_dot_product_attention: attn_mask of shape {tuple(mask.shape)} would change the scores' (L, S) = "
                f"{(L, S)}"
            )
    blocked = None
    if mask_kind == "bool":
        blocked = ~mask.array  # type: ignore[union-attr]
    if is_causal:
        if type(q) is np.ndarray:  # host: the read-only mask kept by size
            future = _causal_future(L, S)
        else:
            xp = namespace_of(q)
            future = xp.triu(xp.ones((L, S), dtype=bool), k=1)
        blocked = future if blocked is None else blocked | future
    float_mask = mask.array if mask_kind == "float" else None  # type: ignore[union-attr]
    dropout_p = float(dropout_p)  # host: the caller's Python number
    half = q.dtype == _HALF
    if half:
        # float16 in float32 and rounded once (torch's "opmath" for half on the CPU): float16 scores of
        # inputs near 300 overflow to inf, and inf - inf in the softmax gives NaN. P stays float32.
        q, k, v = q.astype(_F32), k.astype(_F32), v.astype(_F32)
        if float_mask is not None:
            float_mask = float_mask.astype(_F32)
    bounds = None
    if is_causal and L >= _CAUSAL_MIN and mask_kind is None and dropout_p == 0:
        bounds = _causal_bounds(L, S) if q.shape[:-2] == k.shape[:-2] == v.shape[:-2] else None
    p_arr, keep, result = _attention_forward(
        q, k, v, float_mask, blocked, score_shape, scale, dropout_p, is_causal, mask_kind == "bool", bounds,
        None if half else out,
    )  # fmt: skip
    if half:
        if out is None:
            out = result.astype(_HALF)
        else:
            out[...] = result  # rounded to float16 once, as astype
    else:
        out = result
    parents = inputs
    if mask_kind == "float" and mask is not None and mask.requires_grad:
        parents += (mask,)
    const_mask = float_mask if len(parents) == len(inputs) else None
    saved = (p_arr, keep, dropout_p, scale, blocked, const_mask, len(inputs) == 1, bounds)
    node = record_op(out, parents, _sdpa_vjp, saved)
    if not out.flags.c_contiguous:
        # record_op takes a fresh output out of order for a layout of downslope's own (a convolution's,
        # contiguous in torch) and notes it so; this one is PyTorch's layout too: its strides are kept
        forget_layout_note(out)
    return node


# Host float dtypes of the fast path at the top of scaled_dot_product_attention.
_HOST_FLOATS = (_F32, np.dtype(np.float64))
# The causal masks (True above the diagonal: the future keys) of host attention by (L, S), read-only
# (the ops only read them: as ``where=`` masks, and in the backward), up to this many elements each:
# rebuilding one costs more than the rest of a small attention call.
_CAUSAL_MASKS: dict[tuple[int, int], np.ndarray] = {}
_CAUSAL_CACHE_MAX = 1 << 20


def _causal_future(length: int, width: int) -> np.ndarray:
    """The host (L, S) causal mask, True where key j > query i (top-left aligned); never written."""
    mask = _CAUSAL_MASKS.get((length, width))
    if mask is None:
        mask = np.triu(np.ones((length, width), dtype=bool), k=1)  # host: the caller checks
        mask.flags.writeable = False
        if length * width <= _CAUSAL_CACHE_MAX and len(_CAUSAL_MASKS) < 256:
            _CAUSAL_MASKS[(length, width)] = mask
    return mask


# Causal attention from this many keys on skips the products' masked blocks: the scores, P @ V and
# the four backward products are computed block row by block row (_CAUSAL_BLOCK rows each), each
# block only over the keys its rows can see, which cuts the GEMMs' work to (n + 1) / 2n of the
# full products for n blocks (PyTorch's flash kernel skips the same blocks). Below it the full
# products win: the extra calls cost more than the masked work saved.
_CAUSAL_MIN = 256
_CAUSAL_BLOCK = 128


def _causal_bounds(length: int, width: int) -> tuple[int, ...] | None:
    """Block boundaries (0, B, 2B, ..., L) of the rows of causal (L, S) scores, or None where the
    full products are cheaper. Row i sees keys j <= i (top-left aligned), so the rows [b_i, b_i+1)
    need the keys [0, min(b_i+1, S)) and the keys [b_i, b_i+1) are seen by the rows [b_i, L)."""
    if length < _CAUSAL_MIN or width < _CAUSAL_MIN:
        return None
    return tuple(range(0, length, _CAUSAL_BLOCK)) + (length,)


def _causal_forward(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, bounds: tuple[int, ...], out: np.ndarray | None
) -> np.ndarray:
    """With ``out`` None: the causal scores ``q @ k^T`` (keys past each block's last row left
    unset: the softmax masks them); else ``out`` = P @ v with P in ``q``'s place, ``k`` unused."""
    width = k.shape[-2] if out is None else q.shape[-1]
    if out is None:
        result = workspace.lend(q.shape[:-1] + (width,), q.dtype, like=q)
        kt = np.swapaxes(k, -1, -2)
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        c = min(r1, width)
        if out is None:
            gemm.matmul(q[..., r0:r1, :], kt[..., :c], result[..., r0:r1, :c])
        else:
            _product(q[..., r0:r1, :c], v[..., :c, :], out[..., r0:r1, :])
    return result if out is None else out


def _prepare_mask(attn_mask: Any, query: Tensor, q: Tensor, group: int) -> tuple[str | None, Tensor | None]:
    """('bool' | 'float' | None, the mask as a Tensor, reshaped for grouped heads)."""
    if attn_mask is None:
        return None, None
    mask = attn_mask if isinstance(attn_mask, Tensor) else wrap_array(array_like(attn_mask, query.array))
    kind = mask.array.dtype.kind
    if kind == "b":
        mask_kind = "bool"
    elif kind == "f":
        mask_kind = "float"
        if mask.array.dtype != query.array.dtype:
            mask = ops.astype(mask, query.array.dtype)
    else:
        raise ArgumentTypeError(
            f"scaled_dot_product_attention: attn_mask must be boolean or floating point, got dtype {mask.array.dtype}"
        )
    if group > 1 and mask.ndim >= 3:
        # Broadcast the head dim to the query's heads, then split it like the query's.
        full = mask.shape[:-3] + (query.shape[-3],) + mask.shape[-2:]
        try:
            mask = ops.broadcast_to(mask, full)
        except ShapeError:
            raise ShapeError(
                f"scaled_dot_product_attention: attn_mask of shape {tuple(mask.shape)} does not fit {query.shape[-3]} heads"
            ) from None
        mask = ops.reshape(mask, mask.shape[:-3] + (q.shape[-4], group) + mask.shape[-2:])
    return mask_kind, mask


def _attention_forward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    float_mask: np.ndarray | None,
    blocked: np.ndarray | None,
    score_shape: tuple[int, ...],
    scale: float,
    dropout_p: float,
    is_causal: bool = False,
    bool_mask: bool = False,
    bounds: tuple[int, ...] | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(P, keep mask or None, output): the probabilities are computed in place in one buffer.
    ``blocked`` (True where a key is masked out) holds the causal mask when ``is_causal`` and a
    boolean attn_mask's when ``bool_mask``. ``bounds``: causal attention without masks or dropout
    over same-shaped q, k, v, computed by blocks (:func:`_causal_bounds`). ``out``: where to write
    the output (None: a new array in order)."""
    dtype = q.dtype
    s = _scores(q, k, score_shape) if bounds is None else _causal_forward(q, k, v, bounds, None)
    done = _compiled_softmax(s, float_mask, blocked if bool_mask else None, scale, is_causal)
    if not done:
        if done is not None:  # a row's max was +inf, which the compiled pass leaves to NumPy: again
            s = _scores(q, k, score_shape) if bounds is None else _causal_forward(q, k, v, bounds, None)
        if bounds is not None:  # the keys no block computed hold old memory: finite before scaling
            for r0, r1 in zip(bounds[:-1], bounds[1:]):
                s[..., r0:r1, r1:] = 0
        _softmax_in_place(s, float_mask, blocked, scale)
    if bounds is not None:  # P is exactly 0 past each row's last key: those blocks are skipped
        if out is None:
            out = namespace_of(q).empty(q.shape[:-1] + v.shape[-1:], dtype=dtype)
        return s, None, _causal_forward(s, k, v, bounds, out)
    keep = None
    if dropout_p > 0:
        keep = backend.random_like(score_shape, q) >= np.float32(dropout_p)  # drawn on q's device
        pd = s * keep
        pd *= scalar(1.0 / (1.0 - dropout_p), dtype)
        out = _product(pd, v, out)
    else:
        out = _product(s, v, out)
    return s, keep, out


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``a @ b`` (into ``out`` when given). An ``out`` laid out as a (B, L, H, D) query is a (B, H)
    stack whose matrices no single stride steps through, which oneDNN's GEMM does not take (NumPy's
    matmul does, up to 1.5x slower than into an array in order). Where oneDNN pays (matrices of
    gemm.MIN_MULTIPLY_ADDS or more) it is filled one leading index at a time instead, each part a
    stack of matrices one stride apart (H of them, rows H * D apart) that oneDNN writes in place;
    small products stay one NumPy call (a Python loop over B small products costs more)."""
    if out is None:
        return gemm.matmul(a, b)
    if _one_stride_stack(out) or a.shape[-2] * a.shape[-1] * b.shape[-1] < gemm.MIN_MULTIPLY_ADDS:
        return gemm.matmul(a, b, out)
    batch = out.shape[:-2]
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    for i in range(out.shape[0]):
        _product(a[i], b[i], out[i])
    return out


def _one_stride_stack(a: np.ndarray) -> bool:
    """Whether the matrices of ``a`` (its dims but the last two) are one stride apart."""
    dims = [d for d in range(a.ndim - 2) if a.shape[d] > 1]
    return all(a.strides[d] == a.strides[e] * a.shape[e] for d, e in zip(dims, dims[1:]))


def _scores(q: np.ndarray, k: np.ndarray, score_shape: tuple[int, ...]) -> np.ndarray:
    """``q @ k^T`` as an array of the scores' shape that the caller owns."""
    if (
        math.prod(score_shape) * q.itemsize >= workspace.LEND_MIN_BYTES
        and q.shape[:-2] == k.shape[:-2] == score_shape[:-2]
    ):
        # lent memory (it outlives this call as P): a fresh (..., L, S) array of a few MB or more
        # costs a page fault per 4 KiB page at each step, as much as the product itself at k = 32
        return gemm.matmul(q, np.swapaxes(k, -1, -2), workspace.lend(score_shape, q.dtype, like=q))
    s = gemm.matmul(q, np.swapaxes(k, -1, -2))
    if s.shape != score_shape:
        s = np.broadcast_to(s, score_shape).copy()  # a mask with more batch dims than q and k
    return s


# The fewest scores whose softmax runs compiled. The kernel is 2 to 4x NumPy's eight passes at every
# size, but below this it saves under ~20 us a call (1 x 1 x 8 x 8 scores: 5 us against 22 us;
# 4 x 4 x 16 x 16: 11 against 29), while importing numba and loading the kernel costs a process about
# 2 s once (this kernels module imports more of numba than the core softmax's): at 4096 scores (a
# 4-head, 32-token context) that pause came in the middle of a small model's generation and never
# paid back; from 16384 it takes ~60,000 calls. The same gate as the core softmax's
# (ops.reductions.JIT_SOFTMAX_MIN_SIZE).
JIT_SCORES_MIN_SIZE = 16384


def _compiled_softmax(
    s: np.ndarray, float_mask: np.ndarray | None, blocked: np.ndarray | None, scale: float, is_causal: bool
) -> bool | None:
    """The probabilities in place by the compiled row pass (``_jit_attention``) where it applies
    (numba, host float32/float64 scores): the scale and the causal mask in the same pass as the
    softmax, the masked upper triangle only zeroed; the masks of ``attn_mask`` (``float_mask``
    added, ``blocked`` True where masked out) are applied before it, in NumPy.
    True when done; None when it did not run (``s`` as it was); False when it met a row whose max
    is +inf (``s`` partly done: to be computed again)."""
    if not s.size or s.size < JIT_SCORES_MIN_SIZE or not s.flags.c_contiguous:
        return None
    compiled = jit_gate.kernels("downslope.nn._jit_attention", s, float_mask, blocked)
    if compiled is None:
        return None
    if float_mask is not None or blocked is not None:
        # The attn_mask in NumPy first (with the causal part too, where ``blocked`` holds it: the
        # compiled pass skips those keys anyway), then the pass with a scale of 1.
        s *= scalar(scale, s.dtype)
        if float_mask is not None:
            s += float_mask
        if blocked is not None:
            np.copyto(s, scalar(-np.inf, s.dtype), where=blocked)
        scale = 1.0
    return bool(compiled.softmax_rows(s, scale, is_causal))  # host: numba path, a Python flag


def _softmax_in_place(s: np.ndarray, float_mask: np.ndarray | None, blocked: np.ndarray | None, scale: float) -> None:
    """The probabilities in place in NumPy calls (any namespace): scale, masks, the softmax of each
    row (a row masked out entirely gives zeros)."""
    dtype = s.dtype
    s *= scalar(scale, dtype)
    if float_mask is not None:
        s += float_mask
    if blocked is not None:
        np.copyto(s, scalar(-np.inf, dtype), where=blocked)
    m = s.max(axis=-1, keepdims=True)
    # A row masked out entirely: every score is -inf (its probabilities become 0 below). copyto, not m[mask] = 0:
    # a boolean mask makes a GPU wait for the device.
    np.copyto(m, scalar(0, dtype), where=~np.isfinite(m))
    s -= m
    np.exp(s, out=s)
    z = s.sum(axis=-1, keepdims=True)
    np.copyto(z, scalar(1, dtype), where=z == 0)
    s /= z


def _sdpa_vjp(g, y, args, saved, needs, xp):
    packed = saved[6]
    n_in = 1 if packed else 3
    mask_arg = args[n_in] if len(args) > n_in else None
    need_mask = mask_arg is not None and needs[n_in]
    need_q, need_k, need_v = (needs[0],) * 3 if packed else needs[:3]
    if xp.differentiable:
        q, k, v = (args[0][0], args[0][1], args[0][2]) if packed else args[:3]
        gq, gk, gv, gm = _sdpa_grads_differentiable(
            g, q, k, v, mask_arg, saved, (need_q, need_k, need_v, need_mask), xp
        )
        grads: tuple[Any, ...] = (ops.stack([gq, gk, gv]),) if packed else (gq, gk, gv)
        return grads + (() if mask_arg is None else (gm,))
    q, k, v = (args[0][0], args[0][1], args[0][2]) if packed else args[:3]
    if g.dtype == _HALF:
        return _sdpa_grads_half(g, q, k, v, mask_arg, saved, (need_q, need_k, need_v, need_mask), xp, packed)
    # For a packed input the three gradients are written straight into one array of its shape.
    buf = namespace_of(g).empty(args[0].shape, g.dtype) if packed else None
    gq, gk, gv, gm = _sdpa_grads(g, y, q, k, v, mask_arg, saved, (need_q, need_k, need_v, need_mask), xp, buf)
    grads = (buf,) if packed else (gq, gk, gv)
    return grads + (() if mask_arg is None else (gm,))


# the output's row sums are a shortcut (rowsum(g * out)): without it (None after an in-place change of the
# output, which torch's rule allows) they come from P, as for float16
_sdpa_vjp.reads_output = "optional"  # type: ignore[attr-defined]


def _sdpa_grads_half(g, q, k, v, mask_arg, saved, needs, xp, packed):
    """float16: the rule in float32 (P was kept in float32), each gradient rounded to float16 once."""
    up = [None if a is None else a.astype(_F32) for a in (g, q, k, v)]
    grads = _sdpa_grads(up[0], None, up[1], up[2], up[3], mask_arg, saved, needs, xp, None)
    gq, gk, gv, gm = (None if a is None else a.astype(_HALF) for a in grads)
    if packed:
        return (namespace_of(g).stack([gq, gk, gv]),) + (() if mask_arg is None else (gm,))
    return (gq, gk, gv) + (() if mask_arg is None else (gm,))


def _sdpa_grads(g, y, q, k, v, mask_arg, saved, needs, xp, buf):
    """NumPy rule: dV = Pd^T g; dS = P * (dP - rowsum(g * out)), dP = (g v^T) * keep; dQ = dS k * scale,
    dK = dS^T q * scale (see the module docstring). ``buf`` (3, ...) receives dQ, dK, dV when given.
    ``y`` None (float16 input, whose output was rounded): the row sums are rowsum(dP * P) in P's float32,
    as the softmax's own rule; g . out with ``out`` rounded to float16 would not cancel dP where P is
    nearly one-hot."""
    p, keep, dropout_p, scale = saved[:4]
    need_q, need_k, need_v, need_mask = needs
    dtype = p.dtype
    if saved[7] is not None and y is not None:
        return _causal_grads(g, y, q, k, v, p, scale, needs[:3], saved[7], buf)
    gq = gk = gv = gm = None
    keep_scale = None if keep is None else scalar(1.0 / (1.0 - dropout_p), dtype)
    if need_v:
        if keep is None:
            pd = p
        else:
            pd = p * keep
            pd *= keep_scale
        if buf is not None:
            gv = gemm.matmul(np.swapaxes(pd, -1, -2), g, buf[2])
        else:
            gv = xp.sum_to(gemm.matmul(np.swapaxes(pd, -1, -2), g), v.shape)
        del pd
    if not (need_q or need_k or need_mask):
        return gq, gk, gv, gm
    pooled = p.nbytes >= workspace.LEND_MIN_BYTES and g.shape[:-2] == v.shape[:-2] == p.shape[:-2]
    if pooled:
        # a pooled temporary (returned below): a fresh one costs a page fault per 4 KiB page each step
        ds_ = gemm.matmul(g, np.swapaxes(v, -1, -2), workspace.take(p.shape, dtype, like=p))
    else:
        ds_ = gemm.matmul(g, np.swapaxes(v, -1, -2))
        if ds_.shape != p.shape:
            ds_ = np.broadcast_to(ds_, p.shape).copy()
    if keep is not None:
        ds_ *= keep
        ds_ *= keep_scale
    if y is None:
        ds_ -= (ds_ * p).sum(axis=-1, keepdims=True)
    else:
        ds_ -= (g * y).sum(axis=-1, keepdims=True)
    ds_ *= p
    if need_mask:
        gm = xp.sum_to(ds_, mask_arg.shape)
        if gm is ds_:
            gm = ds_.copy()  # ds_ is scaled in place below
    ds_ *= scalar(scale, dtype)
    if buf is not None:
        gq = gemm.matmul(ds_, k, buf[0])
        gk = gemm.matmul(np.swapaxes(ds_, -1, -2), q, buf[1])
    else:
        if need_q:
            gq = xp.sum_to(gemm.matmul(ds_, k), q.shape)
        if need_k:
            gk = xp.sum_to(gemm.matmul(np.swapaxes(ds_, -1, -2), q), k.shape)
    if pooled:
        workspace.give(ds_)
    return gq, gk, gv, gm


def _causal_grads(g, y, q, k, v, p, scale, needs, bounds, buf):
    """:func:`_sdpa_grads` for causal attention computed by blocks (no mask, no dropout, q, k and v of
    one batch shape): each product over the blocks of keys that its rows see, as the forward.
    Entries of dS past a block's keys are never written nor read."""
    need_q, need_k, need_v = needs
    length, width = p.shape[-2:]
    dtype = p.dtype
    pairs = list(zip(bounds[:-1], bounds[1:]))
    gq, gk, gv = (None, None, None) if buf is None else (buf[0], buf[1], buf[2])

    def keys_grad(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        """``a^T @ b`` over the key blocks: the keys [c0, c1) are seen by the rows [c0, L)."""
        out = namespace_of(a).empty(a.shape[:-2] + (width, b.shape[-1]), dtype=dtype) if out is None else out
        for c0, c1 in pairs:
            if c0 >= width:  # S < L: the rows past the last key see all keys, already covered
                break
            c1 = min(c1, width)
            gemm.matmul(np.swapaxes(a[..., c0:, c0:c1], -1, -2), b[..., c0:, :], out[..., c0:c1, :])
        out[..., length:, :] = 0  # keys past the last query (S > L): seen by no row
        return out

    if need_v:
        gv = keys_grad(p, g, gv)
    if not (need_q or need_k):
        return gq, gk, gv, None
    rows = (g * y).sum(axis=-1, keepdims=True)
    ds_ = workspace.take(p.shape, dtype, like=p)
    gq = namespace_of(q).empty(q.shape, dtype=dtype) if gq is None and need_q else gq
    vt = np.swapaxes(v, -1, -2)
    factor = scalar(scale, dtype)
    for r0, r1 in pairs:
        c = min(r1, width)
        block = ds_[..., r0:r1, :c]
        gemm.matmul(g[..., r0:r1, :], vt[..., :c], block)
        block -= rows[..., r0:r1, :]
        block *= p[..., r0:r1, :c]
        block *= factor
        if gq is not None:
            gemm.matmul(block, k[..., :c, :], gq[..., r0:r1, :])
    if need_k:
        gk = keys_grad(ds_, q, gk)
    workspace.give(ds_)
    return gq, gk, gv, None


def _sdpa_grads_differentiable(g, q, k, v, mask_arg, saved, needs, xp):
    """The same rule from differentiable ops, P recomputed from q and k (for create_graph)."""
    _, keep, dropout_p, scale, blocked, const_mask = saved[:6]
    need_q, need_k, need_v, need_mask = needs
    if q.array.dtype == _HALF:  # in float32 as the forward (const_mask is float32 already), rounded once
        g, q, k, v = (xp.astype(a, _F32) for a in (g, q, k, v))
        mask_arg = None if mask_arg is None else xp.astype(mask_arg, _F32)
        grads = _sdpa_grads_differentiable(g, q, k, v, mask_arg, saved, needs, xp)
        return tuple(None if a is None else xp.astype(a, _HALF) for a in grads)
    s = ops.matmul(q, xp.swap_last(k)) * scale
    if mask_arg is not None:
        s = s + mask_arg
    elif const_mask is not None:
        s = s + const_mask
    if blocked is not None:
        s = ops.where(blocked, -np.inf, s)
    p = _safe_softmax(s)
    dtype = xp.data(p).dtype
    pd = p if keep is None else p * (keep * (1.0 / (1.0 - dropout_p))).astype(dtype)
    gv = xp.sum_to(xp.swap_last(pd) @ g, v.shape) if need_v else None
    dp = g @ xp.swap_last(v)
    if keep is not None:
        dp = dp * (keep * (1.0 / (1.0 - dropout_p))).astype(dtype)
    ds_ = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    gq = xp.sum_to((ds_ @ k) * scale, q.shape) if need_q else None
    gk = xp.sum_to((xp.swap_last(ds_) @ q) * scale, k.shape) if need_k else None
    gm = xp.sum_to(ds_, mask_arg.shape) if need_mask else None
    return gq, gk, gv, gm


def _safe_softmax(s: Tensor) -> Tensor:
    """Softmax over the last dim whose fully masked rows (all -inf) are zeros, from differentiable ops."""
    dead = np.isneginf(s.array).all(axis=-1, keepdims=True)  # masked unconditionally: asking would sync
    s = ops.where(dead, 0.0, s)
    return ops.where(dead, 0.0, ops.softmax(s, -1))


# ---------------------------------------------------------------------- masks for the modules
def _canonical_mask(mask: Any, name: str, dtype: np.dtype, like: Tensor | None = None) -> Tensor | None:
    """A module's mask as an additive float tensor: boolean True (masked out) becomes -inf, False 0;
    float masks pass unchanged (PyTorch's rule for MultiheadAttention and the Transformer layers).
    A mask given as host data (a list, a NumPy array) is placed on ``like``'s device."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = wrap_array(array_like(mask, like.array) if like is not None else array_of(mask))
    t = mask
    kind = t.array.dtype.kind
    if kind == "b":
        # ops.where rather than np.where on the arrays: the ONNX exporter's trace follows the mask then
        xp = namespace_of(t.array)
        return ops.where(t, wrap_array(xp.full((), -np.inf, dtype=dtype)), wrap_array(xp.zeros((), dtype=dtype)))
    if kind != "f":
        raise ArgumentTypeError(
            f"{name}: only boolean and floating-point masks are supported, got dtype {t.array.dtype}"
        )
    return t if t.array.dtype == dtype else ops.astype(t, dtype)


def _pad_last(mask: Tensor | None) -> Tensor | None:
    """One more key column that takes part (0 in an additive mask): for bias_k/bias_v and add_zero_attn."""
    if mask is None:
        return None
    return ops.pad(mask, (0, 1))


# ---------------------------------------------------------------------- the module
class MultiheadAttention(Module):
    """Multi-head attention with PyTorch's parameters, masks and numbers.

    ``out = concat_h(attention(q W_q^h, k W_k^h, v W_v^h)) W_o``. Inputs are (L, N, E) query and
    (S, N, kdim) / (S, N, vdim) key and value, or (N, L, E) with ``batch_first=True``, or unbatched
    (L, E). ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N*num_heads, L, S): boolean
    True means *masked out*, float masks are added to the scores. Returns ``(output, weights)``;
    weights (N, L, S) averaged over heads (or (N, num_heads, L, S)), None when ``need_weights`` is
    False, which is the fast path (one fused attention op).

    Parameters carry PyTorch's names, so state dicts move both ways: ``in_proj_weight``
    (3E, E) or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when kdim/vdim differ from E,
    ``in_proj_bias`` (3E,), ``bias_k``/``bias_v`` (1, 1, E), ``out_proj.weight``/``out_proj.bias``.
    Initialization as PyTorch: Xavier-uniform projections, zero biases, Xavier-normal bias_k/bias_v.

    Example:
        >>> import downslope as ds
        >>> mha = ds.nn.MultiheadAttention(16, 4, batch_first=True)
        >>> x = ds.randn(2, 5, 16)
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        (downslope.Size([2, 5, 16]), downslope.Size([2, 5, 5]))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for what, n in (("embed_dim", embed_dim), ("num_heads", num_heads), ("kdim", kdim), ("vdim", vdim)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0):
                raise ArgumentError(f"MultiheadAttention: {what} must be a positive integer, got {n!r}")
        if embed_dim % num_heads:
            raise ArgumentAssertionError(  # torch asserts it
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, _REALS) or not 0.0 <= dropout < 1.0:
            raise ArgumentError(f"MultiheadAttention: dropout must be a probability in [0, 1), got {dropout!r}")
        self.embed_dim = int(embed_dim)
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)  # host: a Python number
        self.batch_first = bool(batch_first)  # host: a Python number
        self.head_dim = self.embed_dim // self.num_heads
        self.add_zero_attn = bool(add_zero_attn)  # host: a Python number
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        e = self.embed_dim
        if not self._qkv_same_embed_dim:
            self.q_proj_weight: Parameter | None = Parameter(empty((e, e), dtype=dt))
            self.k_proj_weight: Parameter | None = Parameter(empty((e, self.kdim), dtype=dt))
            self.v_proj_weight: Parameter | None = Parameter(empty((e, self.vdim), dtype=dt))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight: Parameter | None = Parameter(empty((3 * e, e), dtype=dt))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias: Parameter | None = Parameter(empty((3 * e,), dtype=dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(e, e, bias=bias, dtype=dt)  # PyTorch's class
        if add_bias_kv:
            self.bias_k: Parameter | None = Parameter(empty((1, 1, e), dtype=dt))
            self.bias_v: Parameter | None = Parameter(empty((1, 1, e), dtype=dt))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)  # type: ignore[arg-type]
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)  # type: ignore[arg-type]
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)  # type: ignore[arg-type]
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    # no extra_repr: PyTorch's MultiheadAttention prints only its out_proj child

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        dtype = query.array.dtype
        self_attention = query is key and key is value
        kv_shared = key is value
        # Internally batch first: (N, L, E).
        if not batched:
            q_in, k_in, v_in = (ops.unsqueeze(t, 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = _as_mask_tensor(key_padding_mask)
                key_padding_mask = ops.unsqueeze(key_padding_mask, 0)
        elif not self.batch_first:
            q_in, k_in, v_in = (ops.transpose(t, 0, 1) for t in (query, key, value))
        else:
            q_in, k_in, v_in = query, key, value
        n, tgt_len, src_len = q_in.shape[0], q_in.shape[1], k_in.shape[1]

        kpm = _canonical_mask(key_padding_mask, "MultiheadAttention key_padding_mask", dtype, query)
        mask, use_causal = self._checked_attn_mask(
            attn_mask, kpm, need_weights, is_causal, dtype, query, (n, tgt_len, src_len)
        )

        dropout_p = self.dropout if self.training else 0.0
        packed = (
            self_attention
            and not need_weights
            and self._qkv_same_embed_dim
            and self.bias_k is None
            and not self.add_zero_attn
        )
        if packed:
            # Self-attention's hot path (the Transformer layers): one GEMM for q, k and v, split into
            # heads by a reshape and a transpose, and a fused node that takes the packed result whole.
            from .functional import linear

            proj = linear(q_in, self.in_proj_weight, self.in_proj_bias)  # type: ignore[arg-type]
            qkv = ops.permute(ops.reshape(proj, (n, tgt_len, 3, h, d)), (2, 0, 3, 1, 4))  # (3, N, H, L, D)
            mask = self._merge_padding(mask, kpm, n, tgt_len)
            attn = _packed_self_attention(qkv, mask, dropout_p, use_causal)
            weights: Tensor | None = None
        else:
            attn, weights = self._attention(
                q_in, k_in, v_in, mask, kpm, self_attention, kv_shared, need_weights, average_attn_weights,
                use_causal, dropout_p,
            )  # fmt: skip
        out = ops.reshape(ops.permute(attn, (0, 2, 1, 3)), (n, tgt_len, e))
        out = self.out_proj(out)
        if not batched:
            out = ops.squeeze(out, 0)
            if weights is not None:
                weights = ops.squeeze(weights, 0)
        elif not self.batch_first:
            out = ops.transpose(out, 0, 1)
        return out, weights

    def merge_masks(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, query: Tensor
    ) -> tuple[Tensor | None, int | None]:
        """torch's ``MultiheadAttention.merge_masks``: the masks and their kind (1: the key padding mask
        alone; 2: an ``attn_mask`` as ``(batch, heads, seq, seq)``, with the padding added in when given;
        ``None, None`` without masks). ``query`` is ``(batch, seq, embed_dim)``."""
        mask_type: int | None = None
        merged_mask: Tensor | None = None
        if key_padding_mask is not None:
            mask_type, merged_mask = 1, key_padding_mask
        if attn_mask is not None:
            batch_size, seq_len, _ = query.shape
            mask_type = 2
            if attn_mask.dim() == 3:
                merged_mask = attn_mask.view(batch_size, -1, seq_len, seq_len)
            else:
                merged_mask = attn_mask.view(1, 1, seq_len, seq_len).expand(batch_size, self.num_heads, -1, -1)
            if key_padding_mask is not None:
                padding = key_padding_mask.view(batch_size, 1, 1, seq_len).expand(-1, self.num_heads, -1, -1)
                merged_mask = merged_mask + padding  # bool + bool is "or", as torch's
        return merged_mask, mask_type

    def _checked_attn_mask(
        self,
        attn_mask: Tensor | None,
        kpm: Tensor | None,
        need_weights: bool,
        is_causal: bool,
        dtype: np.dtype,
        query: Tensor,
        sizes: tuple[int, int, int],
    ) -> tuple[Tensor | None, bool]:
        """The checked attention mask as (L, S) or (N, H, L, S), and whether the fused op applies causality.

        ``sizes`` is (N, L, S). ``is_causal`` alone is refused (PyTorch's hint needs its mask too).
        """
        n, tgt_len, src_len = sizes
        h = self.num_heads
        if is_causal and attn_mask is None:
            raise ArgumentError(
                "MultiheadAttention: is_causal=True is a hint that attn_mask is causal and needs that mask; "
                "make one with nn.Transformer.generate_square_subsequent_mask(L)"
            )
        use_causal = False
        mask: Tensor | None = None
        if is_causal and kpm is None and not need_weights:
            use_causal = True  # the fused op applies the causal mask itself (as PyTorch's SDPA hint)
        else:
            mask = _canonical_mask(attn_mask, "MultiheadAttention attn_mask", dtype, query)
        if mask is not None:
            if mask.ndim == 2:
                if mask.shape != (tgt_len, src_len):
                    raise ShapeError(
                        f"MultiheadAttention: the 2-D attn_mask has shape {tuple(mask.shape)}, expected (L, S) = "
                        f"{(tgt_len, src_len)}"
                    )
            elif mask.shape != (n * h, tgt_len, src_len):
                raise ShapeError(
                    f"MultiheadAttention: the 3-D attn_mask has shape {tuple(mask.shape)}, expected (N*num_heads, L, S) = "
                    f"{(n * h, tgt_len, src_len)}"
                )
            else:
                mask = ops.reshape(mask, (n, h, tgt_len, src_len))
        return mask, use_causal

    def _merge_padding(self, mask: Tensor | None, kpm: Tensor | None, n: int, s_len: int) -> Tensor | None:
        """The attention mask plus the key padding mask, broadcast as (N, 1, 1, S)."""
        if kpm is None:
            return mask
        if kpm.shape != (n, s_len):
            extra = int(self.add_zero_attn) + int(self.bias_k is not None)
            raise ShapeError(
                f"MultiheadAttention: key_padding_mask has shape {kpm.shape[:1] + (kpm.shape[1] - extra,)}, "
                f"expected (N, S) = {(n, s_len - extra)}"
            )
        kpm4 = ops.reshape(kpm, (n, 1, 1, s_len))
        return kpm4 if mask is None else mask + kpm4

    def _attention(
        self,
        q_in: Tensor,
        k_in: Tensor,
        v_in: Tensor,
        mask: Tensor | None,
        kpm: Tensor | None,
        self_attention: bool,
        kv_shared: bool,
        need_weights: bool,
        average_attn_weights: bool,
        use_causal: bool,
        dropout_p: float,
    ) -> tuple[Tensor, Tensor | None]:
        """Projections, bias_k/bias_v, heads, zero attention and attention: (N, H, L, D) and the weights."""
        n, tgt_len = q_in.shape[0], q_in.shape[1]
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        q, k, v = self._in_projection(q_in, k_in, v_in, self_attention, kv_shared)
        if self.bias_k is not None and self.bias_v is not None:
            k = ops.cat([k, ops.broadcast_to(self.bias_k, (n, 1, e))], dim=1)
            v = ops.cat([v, ops.broadcast_to(self.bias_v, (n, 1, e))], dim=1)
            mask, kpm = _pad_last(mask), _pad_last(kpm)
        # (N, L, E) -> (N, H, L, D)
        q = ops.permute(ops.reshape(q, (n, tgt_len, h, d)), (0, 2, 1, 3))
        k = ops.permute(ops.reshape(k, (n, k.shape[1], h, d)), (0, 2, 1, 3))
        v = ops.permute(ops.reshape(v, (n, v.shape[1], h, d)), (0, 2, 1, 3))
        if self.add_zero_attn:
            zeros = wrap_array(namespace_of(q.array).zeros((n, h, 1, d), dtype=q.array.dtype))
            k = ops.cat([k, zeros], dim=2)
            v = ops.cat([v, zeros], dim=2)
            mask, kpm = _pad_last(mask), _pad_last(kpm)
        mask = self._merge_padding(mask, kpm, n, k.shape[2])
        if not need_weights:
            return scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal=use_causal), None
        # The weights are returned as part of the graph, so this path is built from basic ops.
        scores = ops.matmul(q * math.sqrt(1.0 / d), ops.transpose(k, -1, -2))
        if mask is not None:
            scores = scores + mask
        probs = ops.softmax(scores, -1)
        if dropout_p > 0:
            from .functional import dropout

            probs = dropout(probs, dropout_p)
        weights = ops.mean(probs, dim=1) if average_attn_weights else probs
        return ops.matmul(probs, v), weights

    def _in_projection(
        self, q_in: Tensor, k_in: Tensor, v_in: Tensor, self_attention: bool, kv_shared: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The query, key and value projections (N, *, E), as PyTorch groups them: one GEMM for
        self-attention, two when key is value, three otherwise."""
        from .functional import linear

        e = self.embed_dim
        b = self.in_proj_bias
        if not self._qkv_same_embed_dim:
            bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
            return (
                linear(q_in, self.q_proj_weight, bq),  # type: ignore[arg-type]
                linear(k_in, self.k_proj_weight, bk),  # type: ignore[arg-type]
                linear(v_in, self.v_proj_weight, bv),  # type: ignore[arg-type]
            )
        w = self.in_proj_weight
        assert w is not None
        if self_attention:
            proj = linear(q_in, w, b)
            return proj[..., :e], proj[..., e : 2 * e], proj[..., 2 * e :]
        if kv_shared:
            q = linear(q_in, w[:e], None if b is None else b[:e])
            kv = linear(k_in, w[e:], None if b is None else b[e:])
            return q, kv[..., :e], kv[..., e:]
        return (
            linear(q_in, w[:e], None if b is None else b[:e]),
            linear(k_in, w[e : 2 * e], None if b is None else b[e : 2 * e]),
            linear(v_in, w[2 * e :], None if b is None else b[2 * e :]),
        )

    def _check_shapes(self, query: Any, key: Any, value: Any, key_padding_mask: Any, attn_mask: Any) -> bool:
        """True for batched (3-D) input, False for unbatched (2-D); errors name what was expected."""
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise ArgumentTypeError(f"MultiheadAttention: {name} must be a Tensor, got {type(t).__name__}")
        kpm_dim = None if key_padding_mask is None else np.ndim(array_of(key_padding_mask))
        mask_dim = None if attn_mask is None else np.ndim(array_of(attn_mask))
        if query.ndim == 3:
            batched = True
            if key.ndim != 3 or value.ndim != 3:
                raise ShapeError(
                    f"MultiheadAttention: for batched (3-D) query, key and value must be 3-D too; got key "
                    f"{tuple(key.shape)} and value {tuple(value.shape)}"
                )
            if kpm_dim is not None and kpm_dim != 2:
                raise ShapeError(
                    f"MultiheadAttention: for batched input, key_padding_mask must be 2-D (N, S), got {kpm_dim}-D"
                )
        elif query.ndim == 2:
            batched = False
            if key.ndim != 2 or value.ndim != 2:
                raise ShapeError(
                    f"MultiheadAttention: for unbatched (2-D) query, key and value must be 2-D too; got key "
                    f"{tuple(key.shape)} and value {tuple(value.shape)}"
                )
            if kpm_dim is not None and kpm_dim != 1:
                raise ShapeError(
                    f"MultiheadAttention: for unbatched input, key_padding_mask must be 1-D (S,), got {kpm_dim}-D"
                )
        else:
            raise ShapeError(
                f"MultiheadAttention: query must be 2-D (unbatched) or 3-D (batched), got shape {tuple(query.shape)}"
            )
        if mask_dim is not None and mask_dim not in (2, 3):
            raise ShapeError(f"MultiheadAttention: attn_mask must be 2-D or 3-D, got {mask_dim}-D")
        if query.shape[-1] != self.embed_dim:
            raise ShapeError(
                f"MultiheadAttention(embed_dim={self.embed_dim}): query has {query.shape[-1]} features (shape {tuple(query.shape)})"
            )
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(
                f"MultiheadAttention(kdim={self.kdim}, vdim={self.vdim}): got key {tuple(key.shape)} and value {tuple(value.shape)}"
            )
        seq_key, seq_value = key.shape[:-1], value.shape[:-1]
        if seq_key != seq_value:
            raise ShapeError(
                f"MultiheadAttention: key {tuple(key.shape)} and value {tuple(value.shape)} differ in sequence/batch dims"
            )
        batch_axis = 0 if self.batch_first else 1
        if batched and query.shape[batch_axis] != key.shape[batch_axis]:
            raise ShapeError(
                f"MultiheadAttention(batch_first={self.batch_first}): query {tuple(query.shape)} and key {tuple(key.shape)} "
                "have different batch sizes"
            )
        return batched


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """PyTorch's functional multi-head attention: :class:`MultiheadAttention`'s forward with its
    weights passed in. Inputs are sequence-first ``(L, N, E)`` (or unbatched ``(L, E)``); returns
    the output and, with ``need_weights``, the attention weights (averaged over heads unless
    ``average_attn_weights=False``). ``static_k`` / ``static_v`` are not supported.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> mha = ds.nn.MultiheadAttention(4, 2)
        >>> x = ds.randn(3, 2, 4)
        >>> out, w = F.multi_head_attention_forward(x, x, x, 4, 2, mha.in_proj_weight, mha.in_proj_bias, None,
        ...     None, False, 0.0, mha.out_proj.weight, mha.out_proj.bias)
        >>> out.shape, w.shape
        (downslope.Size([3, 2, 4]), downslope.Size([2, 3, 3]))
    """
    from .functional import linear

    where = "multi_head_attention_forward"
    if static_k is not None or static_v is not None:
        raise ArgumentError(f"{where}: static_k and static_v are not supported")
    if not isinstance(query, Tensor):
        raise ArgumentTypeError(f"{where}: query must be a Tensor, got {type(query).__name__}")
    if query.shape[-1] != embed_dim_to_check:
        raise ShapeError(
            f"{where}: was expecting embedding dimension of {embed_dim_to_check}, but got {query.shape[-1]}"
        )
    if embed_dim_to_check % num_heads:
        raise ArgumentAssertionError(f"{where}: embed_dim {embed_dim_to_check} not divisible by num_heads {num_heads}")
    if (bias_k is None) != (bias_v is None):
        raise ArgumentError(f"{where}: bias_k and bias_v must both be given or both be None")
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ArgumentError(
                f"{where}: use_separate_proj_weight=True needs q_proj_weight, k_proj_weight and v_proj_weight"
            )
    elif in_proj_weight is None:
        raise ArgumentError(f"{where}: in_proj_weight is None (pass it, or use_separate_proj_weight=True)")
    # A MultiheadAttention whose weights are the given tensors (plain attributes, so nothing is copied
    # or registered): the module's forward then does the checks, the projections and the attention.
    mha = MultiheadAttention.__new__(MultiheadAttention)
    Module.__init__(mha)
    e = int(embed_dim_to_check)
    fields = {
        "embed_dim": e,
        "num_heads": int(num_heads),
        "head_dim": e // int(num_heads),
        "kdim": key.shape[-1],
        "vdim": value.shape[-1],
        "_qkv_same_embed_dim": not use_separate_proj_weight,
        "dropout": float(dropout_p),  # host: a Python number
        "batch_first": False,
        "add_zero_attn": bool(add_zero_attn),  # host: a Python flag
        "training": bool(training),  # host: a Python flag
        "in_proj_weight": in_proj_weight,
        "in_proj_bias": in_proj_bias,
        "q_proj_weight": q_proj_weight,
        "k_proj_weight": k_proj_weight,
        "v_proj_weight": v_proj_weight,
        "bias_k": bias_k,
        "bias_v": bias_v,
        "out_proj": lambda x: linear(x, out_proj_weight, out_proj_bias),
    }
    for name, v in fields.items():
        object.__setattr__(mha, name, v)
    return mha.forward(
        query,
        key,
        value,
        key_padding_mask=key_padding_mask,
        need_weights=need_weights,
        attn_mask=attn_mask,
        average_attn_weights=average_attn_weights,
        is_causal=is_causal,
    )


def _as_mask_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else wrap_array(array_of(x))


# ---------------------------------------------------------------------- torch.nn.attention's backend choice
@contextlib.contextmanager
def sdpa_kernel(backends: SDPBackend | list[SDPBackend], set_priority: bool = False) -> Iterator[dict[str, Any]]:
    """``torch.nn.attention.sdpa_kernel``: within the block, only ``backends`` (one :class:`SDPBackend` or a
    list) are enabled for :func:`scaled_dot_product_attention`, as ``ds.backends.cuda``'s ``*_sdp_enabled()``
    flags say; the flags are restored on leaving. downslope has one attention kernel (the fused op of this
    module, on the CPU and on CuPy), so the choice, and ``set_priority``, change nothing it computes.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.attention import SDPBackend, sdpa_kernel
        >>> with sdpa_kernel(SDPBackend.MATH):
        ...     ds.backends.cuda.flash_sdp_enabled(), ds.backends.cuda.math_sdp_enabled()
        (False, True)
        >>> ds.backends.cuda.flash_sdp_enabled()
        True
    """
    chosen = [backends] if isinstance(backends, SDPBackend) else backends
    if not isinstance(chosen, list) or not all(isinstance(b, SDPBackend) for b in chosen):
        raise ArgumentTypeError(
            "sdpa_kernel: expected an SDPBackend or a list of SDPBackend members, "
            f"got {type(backends).__name__} {backends!r}"
        )
    before = set_sdp_backends({b: b in chosen for b in SDPBackend})
    try:
        yield {}
    finally:
        set_sdp_backends(before)
