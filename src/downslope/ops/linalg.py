"""Products: matmul and its torch variants (mm, bmm, mv, dot, outer, addmm...), einsum, diagonals,
triangles and cross products.
"""

from __future__ import annotations

import builtins
import functools
import math
import os
import sys
import warnings
from typing import Any

import numpy as np

from .. import backend, gemm
from ..autograd import keep_shape_index
from ..backend import as_array, namespace_of
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, ShapeError
from ..graph import ArrayRules, _mode, reads_inputs_when_recorded
from ..tensor import Tensor, _repeats_nothing_of_overlap, _version_counter, record_op, wrap_array
from .arithmetic import add, mul
from .indexing import _getitem_vjp, index_put, select
from .operands import _builtin_max, _builtin_sum, _dim, _lift, _pair, result_dtype, result_dtype_by_rank
from .pointwise import astype, clone, where
from .promotion import promote_types
from .rearrange import _scatter_src, _strided_view, pad
from .reductions import sum
from .shape import _common_dtype, concatenate, permute, reshape, stack, transpose


def _check_kinds(a: Any, b: Any, name: str) -> None:
    """Refuse two tensors of different dtypes, as torch's products do (float64 @ float32 included):
    _pair would promote one silently, hiding a float32 operand's lost precision in a float64 program."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        da, db = a.array.dtype, b.array.dtype
        if da is not db and da != db:
            raise DTypeError(
                f"{name}: expected both operands to have the same dtype, got {da} and {db}; cast one side to "
                f"the other's dtype (e.g. b.to(a.dtype))"
            )


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading dims broadcast."""
    if not isinstance(a, Tensor) and hasattr(a, "_sparse_product"):  # a sparse COO left operand (ds.sparse)
        return a._sparse_product(b, "matmul")
    _check_kinds(a, b, "matmul")
    try:  # free until it raises: a sparse right operand refuses to be lifted, and is handed over here
        a, b = _pair(a, b)
    except TypeError:
        if hasattr(b, "_sparse_rproduct"):  # dense @ sparse (ds.sparse): a dense result
            return b._sparse_rproduct(a, "matmul")
        raise
    ad, bd = a.array, b.array
    if ad.ndim == 0 or bd.ndim == 0:
        raise ShapeError(
            f"matmul: both operands need at least one dimension, got shapes {tuple(ad.shape)} and {tuple(bd.shape)}"
        )
    k_left = ad.shape[-1]
    k_right = bd.shape[-2] if bd.ndim > 1 else bd.shape[0]
    if k_left != k_right:
        raise ShapeError(
            f"matmul: shapes {tuple(ad.shape)} and {tuple(bd.shape)} are not aligned: the left operand's last dim ({k_left}) "
            f"must equal the right operand's {'second-to-last' if bd.ndim > 1 else 'only'} dim ({k_right})"
        )
    try:
        out = gemm.matmul(ad, bd)
    except ValueError:
        raise ShapeError(
            f"matmul: batch dimensions of shapes {tuple(ad.shape)} and {tuple(bd.shape)} do not broadcast"
        ) from None
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
    if x.ndim < 2:  # NumPy's np.tril would broadcast a vector to a matrix
        raise ShapeError(f"tril: input tensor must have at least 2 dimensions, got shape {tuple(x.shape)}")
    return _triangle(x, _band(x, diagonal, lower=True))


def triu(x: Any, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (the rest set to 0)."""
    x = _lift(x)
    if x.ndim < 2:  # NumPy's np.triu would broadcast a vector to a matrix
        raise ShapeError(f"triu: input tensor must have at least 2 dimensions, got shape {tuple(x.shape)}")
    return _triangle(x, _band(x, diagonal, lower=False))


def _band(x: Tensor, diagonal: int, lower: bool) -> Any:
    """The (rows, cols) mask of the elements on or below (``lower``) or on or above diagonal ``diagonal``."""
    xp = namespace_of(x.array)
    rows, cols = x.shape[-2:]
    diagonal = int(diagonal)  # host: a Python int
    if type(x.array) is np.ndarray and rows and cols:
        # mask[i, j] depends on j - i only: a strided view of one row of rows + cols - 1 flags (row i
        # starts i flags earlier), no (rows, cols) comparison (which costs more than the masked copy)
        offsets = np.arange(1 - rows, cols)  # host: from shapes; offsets[k] = j - i for k = j - i + rows - 1
        flags = offsets <= diagonal if lower else offsets >= diagonal
        step = flags.strides[0]
        return np.lib.stride_tricks.as_strided(flags[rows - 1 :], (rows, cols), (-step, step), writeable=False)
    edge = (xp.arange(rows) + diagonal)[:, None]  # j <= i + diagonal (or >=), compared by broadcasting
    return xp.arange(cols)[None, :] <= edge if lower else xp.arange(cols)[None, :] >= edge


def _triangle(x: Tensor, keep: Any) -> Tensor:
    """``x`` where ``keep`` (broadcast over the leading dims), 0 elsewhere: a masked copy into zeros
    (4x faster than a select), NaN and inf outside the triangle zeroed as in torch."""
    out = namespace_of(x.array).zeros(x.shape, dtype=x.array.dtype)  # contiguous, as torch's (not x's order)
    np.copyto(out, x.array, where=keep)
    return keep_shape_index(record_op(out, (x,), _triangle_vjp, keep))  # the mask: from shapes, kept as torch


def _triangle_vjp(g, y, args, saved, needs, xp):
    return (xp.where(saved, g, 0.0),)


_triangle_vjp.reads_inputs = False  # type: ignore[attr-defined]
_triangle_vjp.reads_output = False  # type: ignore[attr-defined]


def mm(a: Any, b: Any) -> Tensor:
    """Matrix product of two 2-D tensors (torch.mm: no broadcasting, no vectors)."""
    if not isinstance(a, Tensor) and hasattr(a, "_sparse_product"):  # a sparse COO left operand (ds.sparse)
        return a._sparse_product(b, "mm")
    _check_kinds(a, b, "mm")
    try:
        a, b = _pair(a, b)
    except TypeError:
        if hasattr(b, "_sparse_rproduct"):  # dense @ sparse (ds.sparse)
            return b._sparse_rproduct(a, "mm")
        raise
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expected two 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def bmm(a: Any, b: Any) -> Tensor:
    """Batched matrix product of two 3-D tensors with the same batch size (torch.bmm)."""
    if not isinstance(a, Tensor) and hasattr(a, "_sparse_product"):  # a batched sparse COO left operand
        return a._sparse_product(b, "bmm")
    _check_kinds(a, b, "bmm")
    a, b = _pair(a, b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(
            f"bmm: expected 3-D tensors with the same batch size, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return matmul(a, b)


def mv(a: Any, v: Any) -> Tensor:
    """Matrix-vector product (torch.mv)."""
    if not isinstance(a, Tensor) and hasattr(a, "_sparse_product"):  # a sparse COO left operand (ds.sparse)
        return a._sparse_product(v, "mv")
    _check_kinds(a, v, "mv")
    a, v = _pair(a, v)
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D and a 1-D tensor, got shapes {tuple(a.shape)} and {tuple(v.shape)}")
    return matmul(a, v)


def dot(a: Any, b: Any) -> Tensor:
    """Inner product of two 1-D tensors (torch.dot)."""
    _check_kinds(a, b, "dot")
    a, b = _pair(a, b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expected two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def outer(a: Any, b: Any) -> Tensor:
    """Outer product of two 1-D tensors."""
    a, b = _pair(a, b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def einsum(equation: Any, *operands: Any) -> Tensor:
    """Einstein summation (torch.einsum / np.einsum), e.g. ``einsum("bij,bjk->bik", a, b)``, or in the
    sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` (ints 0-51 for indices, ``...`` as Ellipsis).

    The gradient of each operand is again an einsum (of the output gradient with the other operands).
    ``...`` stands for the leading dims an operand has beyond its named ones (the same dims in every
    operand, aligned from the right; a size-1 dim broadcasts against a larger one, as in torch). An
    index repeated within one operand (``'ii->i'``, ``'ii'``) takes its diagonal, with gradients.

    Example:
        >>> import downslope as ds
        >>> ds.einsum("i,i->", ds.tensor([1.0, 2.0]), ds.tensor([3.0, 4.0]))
        tensor(11.)
    """
    if not isinstance(equation, str):
        equation, operands = _sublist_equation((equation, *operands))
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
    if len(set(out)) != len(out):
        raise ArgumentError(f"einsum: {equation!r}: an output index appears more than once ({out!r})")
    for k, (sub, t) in enumerate(zip(subs, ts)):
        if len(sub) != t.ndim:
            raise ShapeError(
                f"einsum: operand {k} has {t.ndim} dims (shape {tuple(t.shape)}) but {sub!r} names {len(sub)}"
            )
        if len(set(sub)) != len(sub):
            subs[k], ts[k] = _einsum_diagonal(sub, t, k)
    kinds = {t.array.dtype for t in ts}
    if len(kinds) > 1:
        _einsum_mixed_contraction(subs, ts, out, equation)
        # torch multiplies einsum's operands as tensors of equal standing (a 0-d one too, once unsqueezed):
        # promote_types over all of them, so int64 with float32 is float32 (NumPy's rule says float64)
        common = result_dtype(ts)
        ts = [t if t.array.dtype == common else astype(t, common) for t in ts]
    arrays = [t.array for t in ts]
    try:
        arr = _contract(subs, out, arrays, ArrayRules)
    except ValueError as exc:  # checked only now: small einsums pay nothing for the message
        _einsum_sizes(subs, [t.shape for t in ts], out, equation)
        raise ShapeError(f"einsum {equation!r}: {exc} (shapes {[tuple(t.shape) for t in ts]})") from None
    return record_op(as_array(arr), tuple(ts), _einsum_vjp, (subs, out))


def _einsum_mixed_contraction(subs: list[str], ts: list[Tensor], out: str, equation: str) -> None:
    """Refuse operands of different dtypes where torch does: torch contracts the operands left to right,
    and a pair that sums an index they share (a product, not a broadcast multiply) must have one dtype;
    elementwise and outer steps promote."""
    sub, dtype = subs[0], ts[0].array.dtype
    sizes = dict(zip(sub, ts[0].shape))
    for k in range(1, len(ts)):
        sub_k, dtype_k = subs[k], ts[k].array.dtype
        sizes_k = dict(zip(sub_k, ts[k].shape))
        later = "".join(subs[k + 1 :]) + out
        summed = [c for c in sub if c in sub_k and c not in later and sizes[c] != 1 and sizes_k[c] != 1]
        if summed and dtype != dtype_k:
            raise DTypeError(
                f"einsum {equation!r}: operand {k} ({dtype_k}) is contracted over {''.join(summed)!r} with "
                f"operand{'s before it' if k > 1 else ' 0'} ({dtype}); torch needs one dtype there: cast the "
                f"operands to one dtype (e.g. b.to(a.dtype))"
            )
        dtype = promote_types(dtype, dtype_k)  # torch's rule, as the result's dtype (see einsum)
        for c, n in sizes_k.items():
            if sizes.get(c, 1) == 1:
                sizes[c] = n
        sub = "".join(c for c in sizes if c in later)


def _einsum_sizes(subs: list[str], shapes: list[tuple[int, ...]], out: str, equation: str) -> dict[str, int]:
    """Each subscript's size, checked across the operands as torch does (a size-1 dim broadcasts), so a
    mismatch names the subscript, both sizes and the operand rather than NumPy's remapped shapes."""
    sizes: dict[str, int] = {}
    for k, (sub, shape) in enumerate(zip(subs, shapes)):
        for c, n in zip(sub, shape):
            seen = sizes.get(c)
            if seen is None or seen == 1:
                sizes[c] = n
            elif n != seen and n != 1:
                named = f"subscript {c}" if c in equation else "a dim under '...'"
                raise ShapeError(
                    f"einsum {equation!r}: {named} has size {n} for operand {k} (shape {tuple(shape)}) which does not "
                    f"broadcast with previously seen size {seen}"
                )
    for c in out:
        if c not in sizes:
            raise ShapeError(f"einsum {equation!r}: output subscript {c} appears in no operand")
    return sizes


#: Two-operand contractions with fewer multiply-adds than this stay on one np.einsum call: below it the
#: permutes, reshapes and the product's dispatch cost more than einsum's own loop (measured with one
#: thread, float32: 'ij,jk->ik' breaks even near 32x32x32, 2.5x faster at 64; 'bij,bjk->bik' at 4x24x24x24
#: already 1.9x faster). The product of the operands' sizes bounds the multiply-adds from above, so
#: small einsums are told apart in one step.
_EINSUM_MIN_PRODUCT = 32768


def _contract_pair(sa: str, sb: str, out: str, a: Any, b: Any, xp: Any) -> Any:
    """``einsum(f"{sa},{sb}->{out}", a, b)`` as one batched product on the project's GEMM (BLAS or
    oneDNN; np.einsum alone never reaches either for two operands): indices only one operand has and the
    output lacks are summed first, then the batch, kept and contracted dims are permuted and flattened
    into (batch, M, K) @ (batch, K, N). Arrays (``xp`` ArrayRules) or Tensors (TensorRules, recorded
    under create_graph); small products, products without a contracted index (elementwise or outer:
    no GEMM to gain) and size-1 broadcasts stay on einsum."""
    data_a, data_b = xp.data(a), xp.data(b)
    if data_a.size * data_b.size < _EINSUM_MIN_PRODUCT:
        return xp.einsum(f"{sa},{sb}->{out}", a, b)
    if xp is ArrayRules:
        product = _outer_compiled(sa, sb, out, data_a, data_b)
        if product is not None:
            return product
    sizes = dict(zip(sb, data_b.shape))
    sizes.update(zip(sa, data_a.shape))
    shared = [c for c in sa if c in sb]
    contracted = [c for c in shared if c not in out]
    dtype = data_a.dtype
    if (
        not contracted
        or math.prod(sizes.values()) < _EINSUM_MIN_PRODUCT
        or dtype.kind not in "fc"
        or data_b.dtype != dtype
        or any(a.shape[sa.index(c)] != b.shape[sb.index(c)] for c in shared)
    ):
        return xp.einsum(f"{sa},{sb}->{out}", a, b)
    kept = [c for c in out if c not in shared]
    if kept and kept[0] in sb:  # the output starts with b's dims: b @ a gives it without a transpose
        sa, sb, a, b = sb, sa, b, a
    a, sa = _sum_alone(a, sa, sb + out)
    b, sb = _sum_alone(b, sb, sa + out)
    batch = [c for c in out if c in sa and c in sb]
    left = [c for c in out if c in sa and c not in sb]
    right = [c for c in out if c in sb and c not in sa]
    n_batch = math.prod(sizes[c] for c in batch)
    m, n = math.prod(sizes[c] for c in left), math.prod(sizes[c] for c in right)
    k = math.prod(sizes[c] for c in contracted)
    a3 = _arranged(a, sa, batch + left + contracted, (n_batch, m, k) if batch else (m, k), xp)
    b3 = _arranged(b, sb, batch + contracted + right, (n_batch, k, n) if batch else (k, n), xp)
    product = gemm.matmul(a3, b3)
    order = batch + left + right
    shape = tuple(sizes[c] for c in order)
    if tuple(product.shape) != shape:
        product = xp.reshape(product, shape)
    if order != list(out):
        product = xp.permute(product, tuple(order.index(c) for c in out))
    return product


#: Outer products (einsum ``'i,j->ij'``, ``'bi,bj->bij'``) with at least this many output elements take the
#: compiled kernel (1.5-2x faster than np.einsum from 256 x 256); below it np.einsum's loop costs a few us.
_JIT_OUTER_MIN_SIZE = 32768


def _outer_compiled(sa: str, sb: str, out: str, a: Any, b: Any) -> Any:
    """``einsum(f"{sa},{sb}->{out}", a, b)`` of host float32/float64 arrays of one dtype through
    ``_jit_special.outer_rows`` where it is a batch of outer products, ``out`` = P + X + Y for
    ``sa`` = P + X and ``sb`` = P + Y (P the shared leading indices, of equal sizes; nothing summed);
    else None. The same single products as einsum's, in one pass over the output."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype != b.dtype or a.dtype.kind != "f":
        return None
    shared = len(sa) - len(set(sa) - set(sb))
    if out != sa + sb[shared:] or sa[:shared] != sb[:shared] or a.shape[:shared] != b.shape[:shared]:
        return None
    batch = math.prod(a.shape[:shared])
    rows, cols = math.prod(a.shape[shared:]), math.prod(b.shape[shared:])
    if batch * rows * cols < _JIT_OUTER_MIN_SIZE:
        return None
    from .. import jit_gate

    kernels = jit_gate.kernels("downslope.ops._jit_special", a, b)
    if kernels is None:
        return None
    product = np.empty((batch, rows, cols), a.dtype)  # host: a is a host array
    a2 = np.ascontiguousarray(a.reshape(batch, rows))  # host: as above
    b2 = np.ascontiguousarray(b.reshape(batch, cols))  # host: b is a host array
    kernels.outer_rows(a2, b2, product)
    return product.reshape(a.shape + b.shape[shared:])


#: Einsums of three or more operands whose loop over every index takes fewer steps than this stay on one
#: np.einsum call (measured with one thread, float32: 'ij,jk,kl->il' breaks even near n = 8, 4096
#: steps, and 'bi,ij,bj->b' near 8192; above it the pairs win, 3.5x at n = 12 and 2000x at n = 96).
_EINSUM_LOOP_MAX = 8192


def _contract(terms: list[str], out: str, operands: list[Any], xp: Any) -> Any:
    """``einsum(",".join(terms) + "->" + out, *operands)`` one pair at a time, in the order NumPy's greedy
    path search picks (cached per equation and shapes), each pair on :func:`_contract_pair`'s GEMM: one
    einsum call over three or more operands runs NumPy's unoptimized loop over every index at once (a
    chain of n x n matrices costs n^4 where the pairs cost n^3). Arrays (ArrayRules) or Tensors
    (TensorRules, recorded under create_graph)."""
    if len(operands) == 1:
        return xp.einsum(f"{terms[0]}->{out}", operands[0])
    if len(operands) == 2:
        return _contract_pair(terms[0], terms[1], out, operands[0], operands[1], xp)
    shapes = tuple(tuple(xp.data(x).shape) for x in operands)
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for c, n in zip(term, shape):
            sizes[c] = builtins.max(sizes.get(c, 1), n)  # a size-1 dim broadcasts against a larger one
    if math.prod(sizes.values()) < _EINSUM_LOOP_MAX:  # the whole loop is cheaper than the path and the pairs
        return xp.einsum(",".join(terms) + "->" + out, *operands)
    terms, operands = list(terms), list(operands)
    for pair in _einsum_pairs(",".join(terms) + "->" + out, shapes):
        picked = [terms[k] for k in pair]
        arrays = [operands[k] for k in pair]
        for k in sorted(pair, reverse=True):
            del terms[k], operands[k]
        if terms:  # keep the indices a later operand or the output still needs, in first-seen order
            wanted = set("".join(terms) + out)
            kept = "".join(dict.fromkeys(c for c in "".join(picked) if c in wanted))
        else:
            kept = out
        if len(arrays) == 2:
            result = _contract_pair(picked[0], picked[1], kept, arrays[0], arrays[1], xp)
        else:
            result = xp.einsum(",".join(picked) + "->" + kept, *arrays)
        terms.append(kept)
        operands.append(result)
    (result,) = operands
    if terms[0] != out:  # the path left a lone operand: its indices to the output's order (and sums)
        result = xp.einsum(f"{terms[0]}->{out}", result)
    return result


@functools.lru_cache(maxsize=512)
def _einsum_pairs(equation: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """NumPy's greedy contraction order for ``equation`` over operands of ``shapes``: the positions to
    contract at each step (taken out of the list, their result appended), as ``np.einsum_path`` gives.
    The search reads only the shapes, so stand-ins of no memory (broadcast 0-d views) take the arrays' place."""
    stand_ins = [np.broadcast_to(np.empty((), np.float32), shape) for shape in shapes]  # host: shapes only
    path, _ = np.einsum_path(equation, *stand_ins, optimize="greedy")
    return tuple(tuple(int(k) for k in step) for step in path[1:])


def _sum_alone(x: Any, sub: str, others: str) -> tuple[Any, str]:
    """``x`` summed over the indices in ``sub`` that ``others`` lacks, and its remaining subscripts."""
    alone = tuple(i for i, c in enumerate(sub) if c not in others)
    if not alone:
        return x, sub
    return x.sum(axis=alone), "".join(c for c in sub if c in others)


def _arranged(x: Any, sub: str, order: list[str], shape: tuple[int, ...], xp: Any) -> Any:
    """``x`` with its dims permuted into ``order`` and flattened to ``shape`` (views where they can be)."""
    axes = tuple(sub.index(c) for c in order)
    if axes != tuple(range(len(axes))):
        x = xp.permute(x, axes)
    return x if tuple(x.shape) == shape else xp.reshape(x, shape)


def _sublist_equation(args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """torch.einsum's sublist form (operand, indices, operand, indices, ..., [output indices]) as an
    equation and its operands: 0-25 are 'A'-'Z', 26-51 'a'-'z' (so alphabetical order is the ints'),
    Ellipsis is '...'."""

    def letters(sublist: Any) -> str:
        if not isinstance(sublist, (list, tuple)):
            raise ArgumentTypeError(f"einsum: expected a list of subscripts after each operand, got {sublist!r}")
        out = []
        for n in sublist:
            if n is Ellipsis:
                out.append("...")
            elif isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 0 <= n < 52:
                out.append(chr(ord("A") + n) if n < 26 else chr(ord("a") + n - 26))
            else:
                raise ArgumentError(
                    f"einsum: subscript {n!r} in a subscript list is not within the valid range [0, 52)"
                )
        return "".join(out)

    operands = args[0::2] if len(args) % 2 == 0 else args[:-1:2]
    equation = ",".join(letters(sub) for sub in args[1::2][: len(operands)])
    if len(args) % 2 == 1:
        equation += "->" + letters(args[-1])
    return equation, tuple(operands)


def _einsum_diagonal(sub: str, t: Tensor, k: int) -> tuple[str, Tensor]:
    """Operand ``t`` with each index repeated in ``sub`` reduced to its diagonal (a recorded view, so
    the gradient lands on the diagonal), and the subscripts of the result."""
    while len(set(sub)) != len(sub):
        c = next(c for c in sub if sub.count(c) > 1)
        d1 = sub.index(c)
        d2 = sub.index(c, d1 + 1)
        if t.shape[d1] != t.shape[d2]:
            raise ShapeError(
                f"einsum: subscript {c} is repeated for operand {k} but the sizes don't match, "
                f"{t.shape[d1]} != {t.shape[d2]}"
            )
        t = diagonal(t, 0, d1, d2)  # the two dims go, their diagonal becomes the last
        sub = "".join(ch for i, ch in enumerate(sub) if i not in (d1, d2)) + c
    return sub, t


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
        grad = _contract(terms, sub, operands, xp)
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
    # a view hanging from the memory's owner (as_strided's is read-only under a read-only corner, and would
    # pass for an op's own buffer): writable where it repeats no element, as torch (the diagonal of
    # overlapping windows); kept read-only where elements repeat or the memory is so deliberately
    view = _strided_view(
        corner, corner.shape[:-2] + (n,), corner.strides[:-2] + (corner.strides[-2] + corner.strides[-1],)
    )
    owner = view.base if isinstance(view.base, np.ndarray) else corner  # as_strided's stand-in: stay read-only
    if not getattr(corner.flags, "writeable", True) and not _repeats_nothing_of_overlap(view, corner, owner):
        view.flags.writeable = False
    index, _ = _diagonal_index(xp, x.shape, offset, d1, d2)
    result = keep_shape_index(record_op(view, (x,), _getitem_vjp, (index, True)))  # from shapes, kept as torch
    result._vc = _version_counter(x)  # a write through either is seen by the other
    return result


def _diagonal_index(xp: Any, shape: tuple[int, ...], offset: int, d1: int, d2: int) -> tuple[tuple[Any, ...], int]:
    """The integer index (one array per dim) of the elements on the (d1, d2) diagonal at ``offset`` of
    a tensor of ``shape``, and the diagonal's length. The arrays broadcast to the diagonal's shape:
    the other dims in order, then the diagonal (what :func:`diagonal` returns)."""
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    n = _builtin_max(0, builtins.min(shape[d1] - start_r, shape[d2] - start_c))
    others = [k for k in range(len(shape)) if k not in (d1, d2)]
    out_ndim = len(others) + 1
    index: list[Any] = [None] * len(shape)
    for position, k in enumerate(others):
        view = [1] * out_ndim
        view[position] = shape[k]
        index[k] = xp.arange(shape[k]).reshape(view)
    diag = xp.arange(n).reshape((1,) * (out_ndim - 1) + (n,))
    index[d1], index[d2] = diag + start_r, diag + start_c
    return tuple(index), n


def diag(x: Any, diagonal_: int = 0) -> Tensor:
    """A 1-D tensor becomes a square matrix with it on a diagonal; a matrix gives its diagonal."""
    x = _lift(x)
    if x.ndim == 2:
        return diagonal(x, diagonal_)
    if x.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] + builtins.abs(diagonal_)
    xp = namespace_of(x.array)
    i = xp.arange(x.shape[0])
    r, c = (i, i + diagonal_) if diagonal_ >= 0 else (i - diagonal_, i)
    return keep_shape_index(index_put(wrap_array(xp.zeros((n, n), x.array.dtype)), (r, c), x))


def trace(x: Any) -> Tensor:
    """Sum of the main diagonal of a matrix (torch.trace: 2-D only).

    Example:
        >>> import downslope as ds
        >>> ds.trace(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor(5.)
    """
    x = _lift(x)
    if x.ndim != 2:
        raise ShapeError(f"trace: expected a matrix, got a tensor with {x.ndim} dims (shape {tuple(x.shape)})")
    return sum(diagonal(x))


def cross(a: Any, b: Any, dim: Any = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (the first dim of size 3 by default)."""
    a, b = _pair(a, b)
    if dim is None:
        dim = next((i for i, s in enumerate(a.shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dimension of size 3 in shape {tuple(a.shape)}")
    d = _dim(dim, a.ndim, "cross")
    if a.ndim != b.ndim or a.ndim == 0 or a.shape[d] != 3 or b.shape[d] != 3:
        raise ShapeError(
            f"cross: expected inputs with the same number of dims and size 3 along dim {dim}, "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a0, a1, a2 = (select(a, d, i) for i in range(3))
    b0, b1, b2 = (select(b, d, i) for i in range(3))
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def inner(a: Any, b: Any) -> Tensor:
    """Sum over the last dims of a and b (torch.inner)."""
    if not (isinstance(a, Tensor) and a.ndim == 0 or isinstance(b, Tensor) and b.ndim == 0):
        _check_kinds(a, b, "inner")  # a 0-d operand is a scaling, which torch promotes
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if b.ndim == 1:
        return matmul(a, b)
    if a.ndim == 1:
        return matmul(b, a)  # shape b.shape[:-1]
    if b.ndim == 2:
        return matmul(a, transpose(b, -1, -2))
    # torch: every pair of rows, shape a.shape[:-1] + b.shape[:-1] (not matmul's batching)
    return tensordot(a, b, ([-1], [-1]))


def vdot(a: Any, b: Any) -> Tensor:
    """The dot product with ``a`` conjugated first (NumPy's and torch's vdot): ``dot`` for real tensors."""
    if isinstance(a, Tensor) and a.array.dtype.kind == "c":
        a = a.conj()  # type: ignore[attr-defined]  # installed on Tensor by ops/complex.py
    return dot(a, b)


ger = outer


def _scaled(t: Tensor, factor: Any) -> Tensor:
    """``factor * t``; a factor of exactly 0 gives zeros that ignore ``t``'s values (a NaN or inf in
    ``t`` does not propagate, as BLAS and torch treat beta = 0) yet keep ``t`` in the graph with a
    zero gradient, as torch's."""
    if not isinstance(factor, Tensor) and factor == 0:
        zero = wrap_array(np.zeros_like(t.array, shape=()))  # host: dispatches on the array's type
        return where(False, t, zero)
    return mul(t, factor) if isinstance(factor, Tensor) or factor != 1 else t


def _fused(name: str, x: Any, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    """``beta * x + alpha * product``, shaped like the product (``x`` broadcasts to it, as in torch)."""
    if name != "addr":  # torch's addr promotes; the matrix products refuse an input tensor of another dtype
        _check_kinds(x, product, f"{name} (input and product)")
    x = _lift(x)
    shape = tuple(product.shape)
    try:
        fits = np.broadcast_shapes(tuple(x.shape), shape) == shape  # host: shapes are tuples
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{name}: input of shape {tuple(x.shape)} does not broadcast to the product's shape {shape}")
    if product.array.dtype.kind in "iu":
        beta, alpha = _integral_factor(name, "beta", beta), _integral_factor(name, "alpha", alpha)
    return add(_scaled(x, beta), _scaled(product, alpha))


def _integral_factor(name: str, which: str, factor: Any) -> Any:
    """torch's factor for integer products: a float is truncated toward 0 (the result stays integer);
    addr refuses it."""
    if isinstance(factor, Tensor) or not isinstance(factor, (float, np.floating)):
        return factor
    if name == "addr":
        raise DTypeError(
            f"addr: for integral input tensors, argument {which} must not be a floating point number, got {factor}"
        )
    return int(factor)


# torch's names for the two operands of each fused product, as its signatures (and warnings) spell them.
_PRODUCT_OPERANDS = {
    "addmm": ("mat1", "mat2"),
    "addmv": ("mat", "vec"),
    "addr": ("vec1", "vec2"),
    "baddbmm": ("batch1", "batch2"),
    "addbmm": ("batch1", "batch2"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating))


def _outside_the_package() -> int:
    """The stacklevel of the first frame outside downslope (a warning then points at the caller's line,
    however many wrappers, ``out=`` or methods, the call went through)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def legacy_product_arguments(
    name: str, first: Any, second: Any, third: Any, rest: tuple[Any, ...], beta: Any, alpha: Any
) -> tuple[Any, Any, Any, Any, Any]:
    """``(input, operand1, operand2, beta, alpha)`` of a fused product called in one of torch's deprecated
    positional forms, with torch's warning: as a function ``name(beta, input, [alpha,] a, b)``, as a
    method ``input.name(beta, [alpha,] a, b)`` (``first`` is then the tensor itself). Still common in
    copied code: ``dist.addmm_(1, -2, x, y.t())`` computes ``dist - 2 * x @ y.t()``."""
    base = name.rstrip("_")
    o1, o2 = _PRODUCT_OPERANDS[base]
    current = f"Tensor {o1}, Tensor {o2}, *, Number beta = 1, Number alpha = 1"
    news = [current]
    found: tuple[str, Any, Any, Any, Any, Any] | None = None  # (old signature, input, beta, alpha, a, b)
    if _is_number(first):  # the function: name(beta, input, [alpha,] a, b) (torch.addmv_ too, without out=)
        out = "" if name.endswith("_") else ", Tensor out = None"
        if len(rest) == 2 and isinstance(second, Tensor) and _is_number(third):
            old = f"Number beta, Tensor input, Number alpha, Tensor {o1}, Tensor {o2}{out and ', *' + out}"
            found = (old, second, first, third, rest[0], rest[1])
        elif len(rest) == 1 and isinstance(second, Tensor) and isinstance(third, Tensor):
            old = f"Number beta, Tensor input, Tensor {o1}, Tensor {o2}{out and ', *' + out}"
            found = (old, second, first, None, third, rest[0])
        news = [f"Tensor input, {current}{out}"]
        if out and base in ("addmm", "baddbmm"):  # torch lists its out_dtype overload too
            news.append(
                f"Tensor input, Tensor {o1}, Tensor {o2}, torch.dtype out_dtype, *, Number beta = 1, "
                "Number alpha = 1, Tensor out = None"
            )
    elif len(rest) == 2 and _is_number(second) and _is_number(third):  # the method: input.name(beta, alpha, a, b)
        found = (f"Number beta, Number alpha, Tensor {o1}, Tensor {o2}", first, second, third, rest[0], rest[1])
    elif len(rest) == 1 and _is_number(second):  # the method: input.name(beta, a, b)
        found = (f"Number beta, Tensor {o1}, Tensor {o2}", first, second, None, third, rest[0])
    if found is None:
        kinds = ", ".join(type(v).__name__ for v in (first, second, third, *rest))
        raise ArgumentTypeError(
            f"{name}() received an invalid combination of arguments - got ({kinds}); expected "
            f"{base}(Tensor input, {current}) (as a method: input.{name}({current})); torch's deprecated "
            f"{base}(Number beta, Tensor input, [Number alpha,] Tensor {o1}, Tensor {o2}) is taken too"
        )
    old, x, given_beta, given_alpha, a, b = found
    for kind, keyword in (("beta", beta), ("alpha", alpha if given_alpha is not None else 1)):
        if isinstance(keyword, Tensor) or keyword != 1:
            raise ArgumentError(
                f"{name}: {kind} given both positionally (the deprecated {name}({old}) form) and as "
                f"{kind}={keyword!r}; pass {name}(..., {o1}, {o2}, *, beta=..., alpha=...) only"
            )
    signatures = "".join(f"\n\t{name}({new})" for new in news)
    warnings.warn(
        f"This overload of {name} is deprecated:\n\t{name}({old})\nConsider using one of the following "
        f"signatures instead:{signatures}",
        UserWarning,
        stacklevel=_outside_the_package(),
    )
    return x, a, b, given_beta, alpha if given_alpha is None else given_alpha


def addmm(x: Any, m1: Any, m2: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * x + alpha * (m1 @ m2)`` (torch.addmm). With ``beta=0`` the input is ignored (a NaN or
    inf in it does not propagate; its gradient is zeros), with ``alpha=0`` the product, as BLAS does.

    Example:
        >>> import downslope as ds
        >>> ds.addmm(ds.full((2, 2), float("nan")), ds.ones(2, 3), ds.ones(3, 2), beta=0)
        tensor([[3., 3.],
                [3., 3.]])
    """
    if legacy:  # torch's deprecated positional beta/alpha forms
        x, m1, m2, beta, alpha = legacy_product_arguments("addmm", x, m1, m2, legacy, beta, alpha)
    return _fused("addmm", x, mm(m1, m2), beta, alpha)


def addmv(x: Any, m: Any, v: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * x + alpha * (m @ v)`` (torch.addmv); beta or alpha 0 drops its term, as :func:`addmm`.

    Example:
        >>> import downslope as ds
        >>> ds.addmv(ds.ones(2), ds.ones(2, 3), ds.ones(3), alpha=2)
        tensor([7., 7.])
    """
    if legacy:  # torch's deprecated positional beta/alpha forms
        x, m, v, beta, alpha = legacy_product_arguments("addmv", x, m, v, legacy, beta, alpha)
    return _fused("addmv", x, mv(m, v), beta, alpha)


def baddbmm(x: Any, b1: Any, b2: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * x + alpha * bmm(b1, b2)`` (torch.baddbmm); beta or alpha 0 drops its term, as :func:`addmm`.

    Example:
        >>> import downslope as ds
        >>> ds.baddbmm(ds.zeros(2, 1, 1), ds.ones(2, 1, 3), ds.ones(2, 3, 1)).flatten()
        tensor([3., 3.])
    """
    if legacy:  # torch's deprecated positional beta/alpha forms
        x, b1, b2, beta, alpha = legacy_product_arguments("baddbmm", x, b1, b2, legacy, beta, alpha)
    return _fused("baddbmm", x, bmm(b1, b2), beta, alpha)


def addbmm(x: Any, b1: Any, b2: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * x + alpha * sum(bmm(b1, b2), 0)`` (torch.addbmm); beta or alpha 0 drops its term, as
    :func:`addmm`.

    Example:
        >>> import downslope as ds
        >>> ds.addbmm(ds.zeros(1, 1), ds.ones(2, 1, 3), ds.ones(2, 3, 1))
        tensor([[6.]])
    """
    if legacy:  # torch's deprecated positional beta/alpha forms
        x, b1, b2, beta, alpha = legacy_product_arguments("addbmm", x, b1, b2, legacy, beta, alpha)
    products = bmm(b1, b2)
    # summed in the products' dtype: torch's addbmm keeps int32 (sum alone would widen it to int64)
    return _fused("addbmm", x, sum(products, 0, dtype=products.dtype), beta, alpha)


def addr(x: Any, v1: Any, v2: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``beta * x + alpha * outer(v1, v2)`` (torch.addr); beta or alpha 0 drops its term, as :func:`addmm`.

    Example:
        >>> import downslope as ds
        >>> ds.addr(ds.full((2, 2), float("inf")), ds.ones(2), ds.ones(2), beta=0)
        tensor([[1., 1.],
                [1., 1.]])
    """
    if legacy:  # torch's deprecated positional beta/alpha forms
        x, v1, v2, beta, alpha = legacy_product_arguments("addr", x, v1, v2, legacy, beta, alpha)
    return _fused("addr", x, outer(v1, v2), beta, alpha)


def kron(a: Any, b: Any) -> Tensor:
    """The Kronecker product: block ``(i, j, ...)`` of the result is ``a[i, j, ...] * b`` (torch.kron).
    The operand with fewer dims gets leading 1s; each result dim is the product of the two sizes.

    Example:
        >>> import downslope as ds
        >>> ds.kron(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 10.0]))
        tensor([ 1., 10.,  2., 20.])
    """
    a, b = _lift(a), _lift(b)
    nd = _builtin_max(a.ndim, b.ndim)
    sa, sb = (1,) * (nd - a.ndim) + a.shape, (1,) * (nd - b.ndim) + b.shape
    a, b = _common_dtype([a, b])
    if nd and a.array.dtype.kind == "f" and a.array.size and b.array.size:
        # each operand's gradient reads the other's values as they were: kept here (torch's reshape of the
        # operands is an unsafe view that a later write into them does not stop; copies of the operands
        # cost a fraction of the product's size)
        recording = _mode.enabled and (a.requires_grad or b.requires_grad)
        kept_a = a.array.copy() if recording and b.requires_grad else None
        kept_b = b.array.copy() if recording and a.requires_grad else None
        return record_op(_kron_array(a.array, b.array, sa, sb), (a, b), _kron_vjp, (sa, sb, kept_a, kept_b))
    # Interleaved dims (a0, 1, a1, 1, ...) times (1, b0, 1, b1, ...), then each pair merged: the
    # product and its gradients are those of a broadcast multiply (complex, integer and bool
    # operands, 0-d and empty ones).
    return reshape(mul(reshape(a, _interleave(sa, 0)), reshape(b, _interleave(sb, 1))), _kron_shape(sa, sb))


def _interleave(shape: tuple[int, ...], at: int) -> tuple[int, ...]:
    """``shape`` with a 1 after (at=0) or before (at=1) each size."""
    return tuple(v for s in shape for v in ((s, 1) if at == 0 else (1, s)))


def _kron_shape(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(p * q for p, q in zip(sa, sb))


# Below this many elements in b's last dim the product runs over rows of a's last dim repeated and
# b's tiled (rows of a_last * b_last elements) instead of the broadcast multiply's rows of b_last:
# NumPy's loop pays per row, 4x at 32x32 (32768 rows of 32 against 1024 rows of 1024).
_KRON_SHORT_ROW = 128


def _kron_array(a: Any, b: Any, sa: tuple[int, ...], sb: tuple[int, ...]) -> Any:
    """kron of two arrays of one real float dtype and ``nd`` >= 1 dims (``sa``, ``sb``: their shapes
    with leading 1s up to ``nd``), written once into its own buffer."""
    xp = namespace_of(a)
    a, b = xp.reshape(a, sa), xp.reshape(b, sb)
    compiled = _kron_compiled(a, b)
    if compiled is not None:
        return compiled
    last = sb[-1]
    if last < _KRON_SHORT_ROW and math.prod(sa[:-1]) >= 4:
        # out[..., k * last + l] = a[..., k] * b[..., l]: a's last dim repeated, b tiled along it
        # (b's tiled copy is the output's size over prod(sa[:-1]), the 4 above bounds it)
        wide_a = xp.repeat(a, last, axis=-1)
        wide_b = xp.tile(b, (1,) * (len(sb) - 1) + (sa[-1],))
        out = xp.empty(_pairs(sa[:-1], sb[:-1]) + (sa[-1] * last,), dtype=a.dtype)
        xp.multiply(
            xp.reshape(wide_a, _interleave(sa[:-1], 0) + (-1,)),
            xp.reshape(wide_b, _interleave(sb[:-1], 1) + (-1,)),
            out=out,
        )
    else:
        out = xp.empty(_pairs(sa, sb), dtype=a.dtype)
        xp.multiply(xp.reshape(a, _interleave(sa, 0)), xp.reshape(b, _interleave(sb, 1)), out=out)
    return xp.reshape(out, _kron_shape(sa, sb))


# From this many output elements a 1-d or 2-d kron of host float arrays runs the compiled kernel
# (one pass, 0.85x torch's time at 32x32 where NumPy's broadcast multiply takes 2.4x); below it the
# first call's numba import (0.5-2 s a process) is not earned back.
_JIT_KRON_MIN_SIZE = 4096


def _kron_compiled(a: Any, b: Any) -> Any:
    """kron of host float32/float64 arrays of one dtype and at most 2 dims each (already of one
    ndim) through ``_jit_special.kron_rows``, or None where that does not apply."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim > 2 or a.size * b.size < _JIT_KRON_MIN_SIZE:
        return None
    from .. import jit_gate

    kernels = jit_gate.kernels("downslope.ops._jit_special", a, b)
    if kernels is None:
        return None
    a2 = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))  # host: a is a host array
    b2 = np.ascontiguousarray(b.reshape(-1, b.shape[-1]))  # host: b is a host array
    out = np.empty((a2.shape[0] * b2.shape[0], a2.shape[1] * b2.shape[1]), a.dtype)  # host: a is a host array
    kernels.kron_rows(a2, b2, out)
    return out.reshape(tuple(p * q for p, q in zip(a.shape, b.shape)))


def _pairs(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """(a0, b0, a1, b1, ...): kron's result with each dim split into a's part and b's."""
    return tuple(v for p, q in zip(sa, sb) for v in (p, q))


def _kron_vjp(g, y, args, saved, needs, xp):
    # g split as (a0, b0, ..., a_last, b_last): a's gradient sums g * b over b's dims, b's g * a over
    # a's; each as a batched matrix-vector product over the last pair (no transposed copy of g, which
    # an einsum or a tensordot makes) and a sum over the other pairs' b (or a) dims.
    sa, sb, kept_a, kept_b = saved
    a, b = args
    if not xp.differentiable:  # (under create_graph the operands themselves, recorded)
        a, b = (a if kept_a is None else kept_a), (b if kept_b is None else kept_b)
    nd = len(sa)
    g = xp.reshape(g, _pairs(sa, sb))
    product: Any = matmul if xp.differentiable else namespace_of(g).matmul
    total: Any = sum if xp.differentiable else _array_total
    ga = gb = None
    if needs[0]:
        column = xp.reshape(b, _interleave(sb[:-1], 1) + (sb[-1], 1))
        ga = xp.reshape(total(product(g, column), tuple(range(1, 2 * nd - 2, 2)) + (2 * nd - 1,)), a.shape)
    if needs[1]:
        row = xp.reshape(a, _interleave(sa[:-1], 0) + (1, sa[-1]))
        gb = xp.reshape(total(product(row, g), tuple(range(0, 2 * nd - 2, 2)) + (2 * nd - 2,)), b.shape)
    return ga, gb


_kron_vjp.reads_output = False  # type: ignore[attr-defined]
_kron_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]


def _array_total(a: Any, axes: tuple[int, ...]) -> Any:
    return a.sum(axis=axes)


def tensordot(a: Any, b: Any, dims: Any = 2) -> Tensor:
    """Sum of products over the dims ``dims`` pairs up (torch.tensordot): an int ``n`` contracts the
    last ``n`` dims of ``a`` with the first ``n`` of ``b``; a pair of lists ``([da...], [db...])``
    names them. The result has ``a``'s remaining dims, then ``b``'s. Both need the same dtype.

    Example:
        >>> import downslope as ds
        >>> ds.tensordot(ds.ones(2, 3), ds.ones(3, 4), dims=1).shape
        downslope.Size([2, 4])
    """
    a, b = _lift(a), _lift(b)
    if a.array.dtype != b.array.dtype:
        raise DTypeError(
            f"tensordot: both inputs should have the same dtype, got {a.array.dtype} and {b.array.dtype}; cast "
            "one side to the other's dtype (e.g. b.to(a.dtype))"
        )
    dims_a, dims_b = _tensordot_dims(dims, a.ndim, b.ndim)
    for da, db in zip(dims_a, dims_b):
        sa, sb = a.shape[da], b.shape[db]
        if sa == sb:
            continue
        # torch sums a size-1 contracted dim's partner first (it broadcasts against it)
        if sa == 1:
            b = sum(b, db, keepdim=True)
        elif sb == 1:
            a = sum(a, da, keepdim=True)
        else:
            raise ShapeError(
                f"tensordot: contracted dimensions need to match, but first has size {sa} in dim {da} and "
                f"second has size {sb} in dim {db} (shapes {tuple(a.shape)} and {tuple(b.shape)})"
            )
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    k = int(np.prod([a.shape[d] for d in dims_a]))  # host: Python ints
    m = int(np.prod([a.shape[d] for d in free_a]))  # host: Python ints
    n = int(np.prod([b.shape[d] for d in free_b]))  # host: Python ints
    left = reshape(permute(a, free_a + dims_a), (m, k))
    right = reshape(permute(b, dims_b + free_b), (k, n))
    out_shape = tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b)
    return reshape(matmul(left, right), out_shape)


def _tensordot_dims(dims: Any, ndim_a: int, ndim_b: int) -> tuple[list[int], list[int]]:
    """tensordot's ``dims`` (an int, a pair of dim lists, or a tensor of either) as two lists of
    non-negative dims, checked."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()  # host: the dims fix the result's shape
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        count = int(dims)
        if count < 0:
            raise ArgumentError(f"tensordot: expects dims >= 0, but got dims={count}")
        if count > builtins.min(ndim_a, ndim_b):
            raise ArgumentError(
                f"tensordot: expects dims <= the dims of both inputs ({ndim_a} and {ndim_b}), but got dims={count}"
            )
        return list(range(ndim_a - count, ndim_a)), list(range(count))
    if not isinstance(dims, (list, tuple)) or len(dims) != 2:
        raise ArgumentTypeError(f"tensordot: dims must be an int or a pair of lists of dims, got {dims!r}")
    lists = [[d] if isinstance(d, (int, np.integer)) else list(d) for d in dims]
    if len(lists[0]) != len(lists[1]):
        raise ArgumentError(f"tensordot: both dimension lists should have same length, got {lists[0]} and {lists[1]}")
    out = []
    for names, ndim in zip(lists, (ndim_a, ndim_b)):
        normed = [_dim(int(d), ndim, "tensordot") for d in names]
        if len(set(normed)) != len(normed):
            raise ArgumentError(f"tensordot: a dim appears multiple times in the list of dims {names}")
        out.append(normed)
    return out[0], out[1]


def chain_matmul(*matrices: Any) -> Tensor:
    """The product of a chain of 2-D tensors (torch.chain_matmul, deprecated there in favour of
    ``linalg.multi_dot``; it warns the same way). All need the same dtype.

    Example:
        >>> import warnings, downslope as ds
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds.chain_matmul(ds.ones(2, 3), ds.ones(3, 4), ds.ones(4, 1)).shape
        downslope.Size([2, 1])
    """
    warnings.warn(
        "ds.chain_matmul is deprecated, as torch.chain_matmul is: use ds.linalg.multi_dot, which takes a list "
        "of two or more tensors rather than several arguments",
        UserWarning,
        stacklevel=2,
    )
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise ArgumentError("chain_matmul: expected one or more matrices, got none")
    ms = [_lift(m) for m in matrices]
    for i, m in enumerate(ms):
        if m.ndim != 2:
            raise ShapeError(f"chain_matmul: tensor {i} has {m.ndim} dims (shape {tuple(m.shape)}), expected 2")
        if m.array.dtype != ms[0].array.dtype:
            raise ArgumentTypeError(
                f"chain_matmul: all tensors must have the same dtype, but tensor 0 is {ms[0].array.dtype} "
                f"and tensor {i} is {m.array.dtype}"
            )
        if i and ms[i - 1].shape[1] != m.shape[0]:
            raise ShapeError(
                f"chain_matmul: tensors {i - 1} and {i} with shapes {tuple(ms[i - 1].shape)} and {tuple(m.shape)} "
                "cannot be multiplied"
            )
    if len(ms) == 1:
        return clone(ms[0])
    out = ms[0]
    for m in ms[1:]:
        out = matmul(out, m)
    return out


def block_diag(*tensors: Any) -> Tensor:
    """The tensors as blocks along the diagonal of a matrix of zeros (torch.block_diag): a 0-d tensor
    is a 1x1 block, a 1-D one a row; the dtype is the tensors' promoted one.

    Example:
        >>> import downslope as ds
        >>> ds.block_diag(ds.tensor([[1.0]]), ds.tensor([2.0, 3.0]))
        tensor([[1., 0., 0.],
                [0., 2., 3.]])
    """
    if not tensors:
        return wrap_array(np.zeros((1, 0), dtype=backend.get_default_dtype()))  # host: a factory's result
    mats = []
    lifted = [_lift(t) for t in tensors]
    dtype = result_dtype_by_rank(lifted)  # a 0-d block joins as a scalar does in torch's promotion
    for i, t in enumerate(lifted):
        if t.ndim > 2:
            raise ShapeError(
                f"block_diag: input tensors must have 2 or fewer dimensions. Input {i} has {t.ndim} dimensions "
                f"(shape {tuple(t.shape)})"
            )
        mats.append(reshape(t, (1, -1)) if t.ndim < 2 else t)
    mats = [m if m.array.dtype == dtype else astype(m, dtype) for m in mats]
    total = _builtin_sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        rows.append(pad(m, [(0, 0), (left, total - left - m.shape[1])]))
        left += m.shape[1]
    return concatenate(rows, 0)


def diag_embed(x: Any, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """A tensor whose (dim1, dim2) planes have ``x``'s last dim on their diagonal at ``offset``, zeros
    elsewhere (torch.diag_embed); ``x``'s other dims fill the result's remaining dims in order. The
    result has one more dim than ``x``, and dim1, dim2 count in it.

    Example:
        >>> import downslope as ds
        >>> ds.diag_embed(ds.tensor([1.0, 2.0]))
        tensor([[1., 0.],
                [0., 2.]])
    """
    x = _lift(x)
    nd = x.ndim + 1
    d1, d2 = _dim(dim1, nd, "diag_embed"), _dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise InvalidValueError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    size = x.shape[-1] + builtins.abs(offset)
    batch = iter(x.shape[:-1])
    shape = tuple(size if k in (d1, d2) else next(batch) for k in range(nd))
    xp = namespace_of(x.array)
    index, _ = _diagonal_index(xp, shape, offset, d1, d2)
    return keep_shape_index(index_put(wrap_array(xp.zeros(shape, dtype=x.array.dtype)), index, x))


def diagflat(x: Any, offset: int = 0) -> Tensor:
    """A square matrix with the flattened ``x`` on its diagonal at ``offset`` (torch.diagflat).

    Example:
        >>> import downslope as ds
        >>> ds.diagflat(ds.tensor([[1.0, 2.0]]))
        tensor([[1., 0.],
                [0., 2.]])
    """
    return diag(reshape(_lift(x), (-1,)), offset)


def diagonal_scatter(x: Any, src: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """A copy of ``x`` with its (dim1, dim2) diagonal at ``offset`` replaced by ``src``, which must have
    the shape of ``x.diagonal(offset, dim1, dim2)`` (torch.diagonal_scatter). ``src`` takes ``x``'s dtype.

    Example:
        >>> import downslope as ds
        >>> ds.diagonal_scatter(ds.zeros(2, 2), ds.tensor([1.0, 2.0]))
        tensor([[1., 0.],
                [0., 2.]])
    """
    x, src = _lift(x), _lift(src)
    d1, d2 = _dim(dim1, x.ndim, "diagonal_scatter"), _dim(dim2, x.ndim, "diagonal_scatter")
    if d1 == d2:
        raise ArgumentError(f"diagonal_scatter: diagonal dimensions cannot be identical {dim1}, {dim2}")
    index, n = _diagonal_index(namespace_of(x.array), x.shape, offset, d1, d2)
    expected = tuple(s for k, s in enumerate(x.shape) if k not in (d1, d2)) + (n,)
    return keep_shape_index(index_put(x, index, _scatter_src(x, src, expected, "diagonal_scatter")))
