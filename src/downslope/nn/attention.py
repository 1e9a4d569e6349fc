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

Masks follow PyTorch: in ``scaled_dot_product_attention`` a boolean mask says which keys *take
part* (True) and a float mask is added to the scores; in ``MultiheadAttention`` and the
Transformer layers a boolean mask says which positions are *masked out* (True), as there.
A query row whose keys are all masked out attends to nothing and gives zeros (PyTorch's
"safe softmax" in its fused kernels); the ``need_weights=True`` path of ``MultiheadAttention``
returns NaN for such rows, as PyTorch's does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, _node, _wrap
from . import init
from .layers import Linear
from .module import Module, Parameter

__all__ = ["scaled_dot_product_attention", "MultiheadAttention"]


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
    ``is_causal`` masks key j > query i (top-left aligned, as PyTorch); it cannot be combined with
    ``attn_mask``. ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention probabilities
    with the library's seeded generator; like PyTorch's function it applies whenever ``dropout_p >
    0`` (pass 0 in evaluation). ``enable_gqa``: key/value may have fewer heads (dim -3) than the
    query; query head h uses key/value head h // (Hq / Hk).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> q = k = v = ds.randn(2, 4, 5, 8)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 4, 5, 8)
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(
                f"scaled_dot_product_attention: {name} must be a Tensor, got {type(t).__name__}"
            )
        if t.ndim < 2:
            raise ShapeError(f"scaled_dot_product_attention: {name} needs shape (..., seq, features), got {t.shape}")
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
            f"scaled_dot_product_attention: query's last dim ({query.shape}) must equal key's ({key.shape})"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: key {key.shape} and value {value.shape} need the same sequence "
            "length (dim -2)"
        )
    if is_causal and attn_mask is not None:
        raise ArgumentError(
            "scaled_dot_product_attention: give either attn_mask or is_causal=True, not both "
            "(PyTorch raises here too); fold the causal part into the mask instead"
        )
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ArgumentError(f"scaled_dot_product_attention: dropout_p must be a number in [0, 1), got {dropout_p!r}")
    group = 1
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ShapeError(
                f"scaled_dot_product_attention(enable_gqa=True): the query's heads ({hq}, shape {query.shape}) must "
                f"be a multiple of the key's and value's ({hk} and {value.shape[-3]})"
            )
        group = hq // hk
    e = query.shape[-1]
    scale = 1.0 / math.sqrt(e) if scale is None else float(scale)

    q, k, v = query, key, value
    if group > 1:  # (..., Hk*G, L, E) -> (..., Hk, G, L, E); key/value (..., Hk, 1, S, E) broadcast over G
        q = ops.reshape(q, q.shape[:-3] + (q.shape[-3] // group, group) + q.shape[-2:])
        k = ops.reshape(k, k.shape[:-2] + (1,) + k.shape[-2:])
        v = ops.reshape(v, v.shape[:-2] + (1,) + v.shape[-2:])

    mask_kind, mask = _prepare_mask(attn_mask, query, q, group)
    L, S = q.shape[-2], k.shape[-2]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    score_shape = batch + (L, S)
    if mask is not None:
        try:
            score_shape = np.broadcast_shapes(score_shape, mask.shape)
        except ValueError:
            raise ShapeError(
                f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does not broadcast to the "
                f"scores' shape {score_shape} (..., L, S)"
            ) from None
    if score_shape[-2:] != (L, S):
        raise ShapeError(
            f"scaled_dot_product_attention: attn_mask of shape {mask.shape if mask is not None else None} "  # type: ignore[union-attr]
            f"would change the scores' (L, S) = {(L, S)}"
        )

    blocked = None
    if mask_kind == "bool":
        blocked = ~mask.array  # type: ignore[union-attr]
    elif is_causal:
        blocked = np.triu(np.ones((L, S), dtype=bool), k=1)
    p_arr, keep, out = _attention_forward(
        q.array, k.array, v.array, mask.array if mask_kind == "float" else None, blocked,  # type: ignore[union-attr]
        score_shape, scale, float(dropout_p),
    )  # fmt: skip
    parents: tuple[Tensor, ...] = (q, k, v)
    if mask_kind == "float" and mask is not None and mask.requires_grad:
        parents += (mask,)
    const_mask = mask.array if mask_kind == "float" and len(parents) == 3 else None  # type: ignore[union-attr]
    saved = (p_arr, keep, float(dropout_p), scale, blocked, const_mask)
    result = _node(out, parents, _sdpa_vjp, saved)
    if group > 1:
        result = ops.reshape(result, query.shape[:-1] + (value.shape[-1],))
    return result


def _prepare_mask(attn_mask: Any, query: Tensor, q: Tensor, group: int) -> tuple[str | None, Tensor | None]:
    """('bool' | 'float' | None, the mask as a Tensor, reshaped for grouped heads)."""
    if attn_mask is None:
        return None, None
    mask = attn_mask if isinstance(attn_mask, Tensor) else _wrap(np.asarray(attn_mask))
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
                f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does not fit {query.shape[-3]} heads"
            ) from None
        mask = ops.reshape(mask, mask.shape[:-3] + (q.shape[-4], group) + mask.shape[-2:])
    elif group > 1 and mask.ndim == 2:
        pass  # (L, S) broadcasts as it is
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
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(P, keep mask or None, output): the probabilities are computed in place in one buffer."""
    dtype = q.dtype
    s = np.matmul(q, np.swapaxes(k, -1, -2))
    if s.shape != score_shape:
        s = np.array(np.broadcast_to(s, score_shape))  # a mask with more batch dims than q and k
    s *= np.asarray(scale, dtype)
    if float_mask is not None:
        s += float_mask
    if blocked is not None:
        np.copyto(s, np.asarray(-np.inf, dtype), where=blocked)
    m = s.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0  # a row masked out entirely: every score is -inf (its probabilities become 0 below)
    s -= m
    np.exp(s, out=s)
    z = s.sum(axis=-1, keepdims=True)
    z[z == 0] = 1
    s /= z
    keep = None
    if dropout_p > 0:
        keep = backend.rng().random(score_shape, dtype=np.float32) >= np.float32(dropout_p)
        pd = s * keep
        pd *= np.asarray(1.0 / (1.0 - dropout_p), dtype)
        out = np.matmul(pd, v)
    else:
        out = np.matmul(s, v)
    return s, keep, out


def _sdpa_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        return _sdpa_vjp_differentiable(g, args, saved, needs, xp)
    p, keep, dropout_p, scale = saved[:4]
    q, k, v = args[0], args[1], args[2]
    dtype = p.dtype
    gq = gk = gv = gm = None
    keep_scale = None if keep is None else np.asarray(1.0 / (1.0 - dropout_p), dtype)
    if needs[2]:
        if keep is None:
            gv = np.matmul(np.swapaxes(p, -1, -2), g)
        else:
            pd = p * keep
            pd *= keep_scale
            gv = np.matmul(np.swapaxes(pd, -1, -2), g)
            del pd
        gv = xp.sum_to(gv, v.shape)
    if not (needs[0] or needs[1] or (len(args) > 3 and needs[3])):
        return gq, gk, gv, *(() if len(args) == 3 else (None,))
    # dS = P * (dP - rowsum(P * dP)), with rowsum(P * dP) = rowsum(g * out) (see the module docstring)
    ds_ = np.matmul(g, np.swapaxes(v, -1, -2))
    if ds_.shape != p.shape:
        ds_ = np.array(np.broadcast_to(ds_, p.shape))
    if keep is not None:
        ds_ *= keep
        ds_ *= keep_scale
    ds_ -= (g * y).sum(axis=-1, keepdims=True)
    ds_ *= p
    if len(args) > 3 and needs[3]:
        gm = xp.sum_to(ds_, args[3].shape)
    ds_ *= np.asarray(scale, dtype)
    if needs[0]:
        gq = xp.sum_to(np.matmul(ds_, k), q.shape)
    if needs[1]:
        gk = xp.sum_to(np.matmul(np.swapaxes(ds_, -1, -2), q), k.shape)
    if len(args) > 3:
        return gq, gk, gv, gm
    return gq, gk, gv


def _sdpa_vjp_differentiable(g, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    """The same rule from differentiable ops, P recomputed from q and k (for create_graph)."""
    _, keep, dropout_p, scale, blocked, const_mask = saved
    q, k, v = args[0], args[1], args[2]
    s = ops.matmul(q, xp.swap_last(k)) * scale
    if len(args) > 3:
        s = s + args[3]
    elif const_mask is not None:
        s = s + const_mask
    if blocked is not None:
        s = ops.where(blocked, -np.inf, s)
    p = _safe_softmax(s)
    pd = p if keep is None else p * (keep * (1.0 / (1.0 - dropout_p))).astype(xp.data(p).dtype)
    gv = xp.sum_to(xp.swap_last(pd) @ g, v.shape) if needs[2] else None
    dp = g @ xp.swap_last(v)
    if keep is not None:
        dp = dp * (keep * (1.0 / (1.0 - dropout_p))).astype(xp.data(p).dtype)
    ds_ = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    gq = xp.sum_to((ds_ @ k) * scale, q.shape) if needs[0] else None
    gk = xp.sum_to((xp.swap_last(ds_) @ q) * scale, k.shape) if needs[1] else None
    if len(args) > 3:
        return gq, gk, gv, (xp.sum_to(ds_, args[3].shape) if needs[3] else None)
    return gq, gk, gv


def _safe_softmax(s: Tensor) -> Tensor:
    """Softmax over the last dim whose fully masked rows (all -inf) are zeros, from differentiable ops."""
    dead = np.isneginf(s.array).all(axis=-1, keepdims=True)
    if dead.any():
        s = ops.where(dead, 0.0, s)
        return ops.where(dead, 0.0, ops.softmax(s, -1))
    return ops.softmax(s, -1)
