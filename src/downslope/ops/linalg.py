"""Products: matmul and its torch variants (mm, bmm, mv, dot, outer, addmm...), einsum, diagonals,
triangles and cross products.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from .. import gemm
from ..backend import as_array, namespace_of
from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor, _version_counter, record_op, wrap_array
from .arithmetic import add, mul
from .indexing import _getitem_vjp, index_put, select
from .operands import _builtin_max, _dim, _lift, _pair
from .pointwise import astype, where
from .reductions import sum
from .shape import reshape, stack, transpose


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading dims broadcast."""
    a, b = _pair(a, b)
    ad, bd = a.array, b.array
    if ad.ndim == 0 or bd.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least one dimension, got shapes {ad.shape} and {bd.shape}")
    k_left = ad.shape[-1]
    k_right = bd.shape[-2] if bd.ndim > 1 else bd.shape[0]
    if k_left != k_right:
        raise ShapeError(
            f"matmul: shapes {ad.shape} and {bd.shape} are not aligned: the left operand's last dim ({k_left}) "
            f"must equal the right operand's {'second-to-last' if bd.ndim > 1 else 'only'} dim ({k_right})"
        )
    try:
        out = gemm.matmul(ad, bd)
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of shapes {ad.shape} and {bd.shape} do not broadcast") from None
    return record_op(out, (a, b), _matmul_vjp)


def _matmul_vjp(g, y, args, saved, needs, xp):
    a, b = args
    ga = gb = None
    if a.ndim == 2 and b.ndim == 2:  # the common case, without the general reshaping
        return (gemm.matmul(g, b.T) if needs[0] else None, gemm.matmul(a.T, g) if needs[1] else None)
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if needs[0] else None, g * a if needs[1] else None)
    if a.ndim == 1:  # (k) @ (..., k, n) -> (..., n)
        g2 = xp.expand_dims(g, -2)
        if needs[0]:
            ga = xp.reshape(xp.sum_to(g2 @ xp.swap_last(b), (1, a.shape[0])), a.shape)
        if needs[1]:
            gb = xp.sum_to(xp.expand_dims(a, -1) * g2, b.shape)
        return ga, gb
    if b.ndim == 1:  # (..., m, k) @ (k) -> (..., m)
        g2 = xp.expand_dims(g, -1)
        if needs[0]:
            ga = xp.sum_to(g2 * b, a.shape)
        if needs[1]:
            gb = xp.reshape(xp.sum_to(xp.swap_last(a) @ g2, (b.shape[0], 1)), b.shape)
        return ga, gb
    if needs[0]:
        ga = xp.sum_to(gemm.matmul(g, xp.swap_last(b)), a.shape)
    if needs[1]:
        gb = xp.sum_to(gemm.matmul(xp.swap_last(a), g), b.shape)
    return ga, gb


_matmul_vjp.reads_inputs = "others"  # type: ignore[attr-defined]


def tril(x: Any, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (the rest set to 0)."""
    x = _lift(x)
    keep = np.tril(namespace_of(x.array).ones(x.shape[-2:], dtype=bool), diagonal)
    return where(keep, x, wrap_array(np.zeros_like(x.array, shape=())))


def triu(x: Any, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (the rest set to 0)."""
    x = _lift(x)
    keep = np.triu(namespace_of(x.array).ones(x.shape[-2:], dtype=bool), diagonal)
    return where(keep, x, wrap_array(np.zeros_like(x.array, shape=())))


def mm(a: Any, b: Any) -> Tensor:
    """Matrix product of two 2-D tensors (torch.mm: no broadcasting, no vectors)."""
    a, b = _pair(a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expected two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a: Any, b: Any) -> Tensor:
    """Batched matrix product of two 3-D tensors with the same batch size (torch.bmm)."""
    a, b = _pair(a, b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected 3-D tensors with the same batch size, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def mv(a: Any, v: Any) -> Tensor:
    """Matrix-vector product (torch.mv)."""
    a, v = _pair(a, v)
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D and a 1-D tensor, got shapes {a.shape} and {v.shape}")
    return matmul(a, v)


def dot(a: Any, b: Any) -> Tensor:
    """Inner product of two 1-D tensors (torch.dot)."""
    a, b = _pair(a, b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expected two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def outer(a: Any, b: Any) -> Tensor:
    """Outer product of two 1-D tensors."""
    a, b = _pair(a, b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation (torch.einsum / np.einsum), e.g. ``einsum("bij,bjk->bik", a, b)``.

    The gradient of each operand is again an einsum (of the output gradient with the other operands).
    ``...`` stands for the leading dims an operand has beyond its named ones (the same dims in every
    operand, aligned from the right; a size-1 dim broadcasts against a larger one, as in torch). Not
    supported: an index repeated within one operand (a diagonal).

    Example:
        >>> import downslope as ds
        >>> ds.einsum("i,i->", ds.tensor([1.0, 2.0]), ds.tensor([3.0, 4.0]))
        tensor(11.)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_lift(o) for o in operands]
    eq = equation.replace(" ", "")
    if "..." in eq:
        eq = _name_ellipsis(eq, [t.ndim for t in ts], equation)
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if not arrow:  # implicit output: the indices that appear once, in alphabetical order
        out = "".join(sorted(c for c in set(lhs) if c != "," and lhs.count(c) == 1))
    if len(subs) != len(ts):
        raise ArgumentError(f"einsum: {equation!r} names {len(subs)} operand(s) but {len(ts)} were given")
    for k, (sub, t) in enumerate(zip(subs, ts)):
        if len(sub) != t.ndim:
            raise ShapeError(f"einsum: operand {k} has {t.ndim} dims (shape {t.shape}) but {sub!r} names {len(sub)}")
        if len(set(sub)) != len(sub):
            raise ArgumentError(f"einsum: an index repeated within one operand ({sub!r}, a diagonal) is not supported")
    kinds = {t.array.dtype for t in ts}
    if len(kinds) > 1:
        common = np.result_type(*kinds)
        ts = [t if t.array.dtype == common else astype(t, common) for t in ts]
    try:
        arr = np.einsum(f"{lhs}->{out}", *[t.array for t in ts], optimize=len(ts) > 2)
    except ValueError as exc:
        raise ShapeError(f"einsum {equation!r}: {exc} (shapes {[t.shape for t in ts]})") from None
    return record_op(as_array(arr), tuple(ts), _einsum_vjp, (subs, out))


def _name_ellipsis(eq: str, ndims: list[int], equation: str) -> str:
    """``eq`` with each ``...`` replaced by letters it does not use, one per dim it stands for (aligned
    from the right across operands); an implicit output puts them first, as NumPy and PyTorch do."""
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(ndims):
        raise ArgumentError(f"einsum: {equation!r} names {len(subs)} operand(s) but {len(ndims)} were given")
    counts = [nd - (len(sub) - 3) if "..." in sub else 0 for sub, nd in zip(subs, ndims)]
    if any(c < 0 for c in counts):
        raise ShapeError(f"einsum: {equation!r} names more dims than an operand has ({ndims})")
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in eq]
    width = max(counts)
    if width > len(free):
        raise ArgumentError(f"einsum: {equation!r}: too many dims under '...'")
    letters = "".join(free[:width])
    named = [sub.replace("...", letters[width - c :]) for sub, c in zip(subs, counts)]
    if arrow:
        if "..." in out and not any("..." in sub for sub in subs):
            raise ArgumentError(f"einsum: {equation!r}: '...' in the output but in no operand")
        return ",".join(named) + "->" + out.replace("...", letters)
    singles = "".join(sorted(c for c in set(lhs.replace("...", "")) if c != "," and lhs.count(c) == 1))
    return ",".join(named) + "->" + letters + singles


def _einsum_vjp(g, y, args, saved, needs, xp):
    subs, out = saved
    grads: list[Any] = []
    for i, sub in enumerate(subs):
        if not needs[i]:
            grads.append(None)
            continue
        terms, operands = [out], [g]
        for j, (s, a) in enumerate(zip(subs, args)):
            if j != i:
                terms.append(s)
                operands.append(a)
        seen = set("".join(terms))
        missing = "".join(c for c in sub if c not in seen)
        if missing:  # indices summed within operand i alone: its gradient is constant along them
            sizes = tuple(args[i].shape[sub.index(c)] for c in missing)
            terms.append(missing)
            ones = namespace_of(xp.data(g)).ones(sizes, dtype=xp.data(g).dtype)
            operands.append(xp.constant(ones))
        spec = ",".join(terms) + "->" + sub
        grad = xp.einsum(spec, *operands)
        shape = tuple(args[i].shape)
        if tuple(grad.shape) != shape:  # a size-1 dim broadcast against a larger one under '...'
            summed = tuple(1 if n == 1 else m for m, n in zip(grad.shape, shape))
            if summed != tuple(grad.shape):  # operand i's size-1 dim met a larger one: sum over it
                grad = xp.sum_to(grad, summed)
            if summed != shape:  # operand i's dim met a size-1 one: the gradient is constant along it
                grad = xp.broadcast_to(grad, shape)
        grads.append(grad)
    return tuple(grads)


_einsum_vjp.reads_inputs = "others"  # type: ignore[attr-defined]


def diagonal(x: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes, as the last dim: a view sharing ``x``'s memory, as in
    PyTorch (``x.diagonal().fill_(0)`` writes into ``x``).

    It is recorded as the index of every element it picks (one index array per dim of ``x``, shaped
    like the result), so its gradient, and an in-place write through it while ``x`` is in a graph,
    take the paths of ``x[index]``; the forward values are a strided view instead of that copy."""
    x = _lift(x)
    d1, d2 = _dim(dim1, x.ndim, "diagonal"), _dim(dim2, x.ndim, "diagonal")
    if d1 == d2:
        raise ArgumentError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    xp = namespace_of(x.array)
    moved = xp.moveaxis(x.array, (d1, d2), (-2, -1))  # a view
    rows, cols = moved.shape[-2], moved.shape[-1]
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    n = _builtin_max(0, builtins.min(rows - start_r, cols - start_c))
    corner = moved[..., start_r:, start_c:] if n else moved[..., :0, :0]
    view = xp.lib.stride_tricks.as_strided(
        corner, shape=corner.shape[:-2] + (n,), strides=corner.strides[:-2] + (corner.strides[-2] + corner.strides[-1],)
    )
    others = [k for k in range(x.ndim) if k not in (d1, d2)]
    out_ndim = len(others) + 1
    index: list[Any] = [None] * x.ndim
    for position, k in enumerate(others):
        shape = [1] * out_ndim
        shape[position] = x.shape[k]
        index[k] = xp.arange(x.shape[k]).reshape(shape)
    diag = xp.arange(n).reshape((1,) * (out_ndim - 1) + (n,))
    index[d1], index[d2] = diag + start_r, diag + start_c
    result = record_op(view, (x,), _getitem_vjp, (tuple(index), True))
    result._vc = _version_counter(x)  # a write through either is seen by the other
    return result


def diag(x: Any, diagonal_: int = 0) -> Tensor:
    """A 1-D tensor becomes a square matrix with it on a diagonal; a matrix gives its diagonal."""
    x = _lift(x)
    if x.ndim == 2:
        return diagonal(x, diagonal_)
    if x.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {x.shape}")
    n = x.shape[0] + builtins.abs(diagonal_)
    xp = namespace_of(x.array)
    i = xp.arange(x.shape[0])
    r, c = (i, i + diagonal_) if diagonal_ >= 0 else (i - diagonal_, i)
    return index_put(wrap_array(xp.zeros((n, n), x.array.dtype)), (r, c), x)


def trace(x: Any) -> Tensor:
    """Sum of the main diagonal of a matrix."""
    return sum(diagonal(x))


def cross(a: Any, b: Any, dim: Any = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (the first dim of size 3 by default)."""
    a, b = _pair(a, b)
    if dim is None:
        dim = next((i for i, s in enumerate(a.shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dimension of size 3 in shape {a.shape}")
    d = _dim(dim, a.ndim, "cross")
    if a.ndim != b.ndim or a.ndim == 0 or a.shape[d] != 3 or b.shape[d] != 3:
        raise ShapeError(
            f"cross: expected inputs with the same number of dims and size 3 along dim {dim}, "
            f"got shapes {a.shape} and {b.shape}"
        )
    a0, a1, a2 = (select(a, d, i) for i in range(3))
    b0, b1, b2 = (select(b, d, i) for i in range(3))
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def inner(a: Any, b: Any) -> Tensor:
    """Sum over the last dims of a and b (torch.inner)."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return matmul(a, b) if b.ndim == 1 else matmul(a, transpose(b, -1, -2) if b.ndim > 1 else b)


def vdot(a: Any, b: Any) -> Tensor:
    return dot(a, b)


ger = outer


def addmm(x: Any, m1: Any, m2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * x + alpha * (m1 @ m2)."""
    return add(mul(x, beta) if beta != 1 else x, mul(mm(m1, m2), alpha) if alpha != 1 else mm(m1, m2))


def addmv(x: Any, m: Any, v: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(mv(m, v), alpha) if alpha != 1 else mv(m, v))


def baddbmm(x: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(bmm(b1, b2), alpha) if alpha != 1 else bmm(b1, b2))


def addbmm(x: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    prods = sum(bmm(b1, b2), 0)
    return add(mul(x, beta) if beta != 1 else x, mul(prods, alpha) if alpha != 1 else prods)


def addr(x: Any, v1: Any, v2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(outer(v1, v2), alpha) if alpha != 1 else outer(v1, v2))
