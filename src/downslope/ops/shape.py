"""Ops that change a tensor's shape without changing its values: reshape, permute, squeeze, broadcast,
concatenate and stack, and their VJP rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import as_array, index_value, namespace_of
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, OutOfRangeError, ShapeError
from ..graph import _sum_to_array
from ..tensor import (
    Tensor,
    _alias,
    _conv_buffers,
    _conv_layout,
    _is_noted_output,
    _over_conv_buffer,
    _root_buffer,
    record_op,
    relayout_if_unshared,
    relayout_shared,
    wrap_array,
)
from .operands import _builtin_all, _builtin_any, _builtin_max, _builtin_sum, _dim, _lift, _norm_axes, result_dtype
from .pointwise import astype, clone


def reshape(x: Any, shape: Any) -> Tensor:
    x = _lift(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        out = x.array.reshape(shape)
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.array.size} elements) into {shape}"
        ) from None
    if (
        _conv_buffers
        and out.size > 1
        and not x.array.flags.c_contiguous
        and _over_conv_buffer(x.array)
        and _root_buffer(out) is not _root_buffer(x.array)  # a copy
    ):
        # x lies over a convolution's output (or an op's output noted so: a stack of them), contiguous
        # in PyTorch (so reshape gives a view there) but channel-major here: the output is laid out in
        # order (in place when x is all of it and nothing else shares it, else under every tensor over
        # it), so that this is a view too; when that cannot be done, a copy (see Tensor.view)
        whole = _conv_layout(x.array) or _is_noted_output(x.array)
        if relayout_if_unshared(x) if whole else (torch_views(x, out.shape) and relayout_shared(x)):
            out = x.array.reshape(shape)
        elif whole:
            return record_op(out, (x,), _reshape_vjp)
    return _alias(record_op(out, (x,), _reshape_vjp), x)


def _reshape_vjp(g, y, args, saved, needs, xp):
    return (xp.reshape(g, args[0].shape),)


# An op's output noted by tensor.note_conv_layout (a convolution's, batch norm's...) is laid out
# otherwise here (channel-major) than in PyTorch (contiguous). Where a user's reshape of a view of it
# gives a view or a copy follows PyTorch's strides for that view, worked out below, so that an in-place
# op on the result changes the output exactly where it would in PyTorch.


def _torch_strides(a: Any) -> tuple[int, ...] | None:
    """The strides, in elements, that PyTorch's tensor has where downslope's is ``a``, a view of a noted
    output's buffer; None when ``a`` lies in no such buffer or its steps cannot be told."""
    root = _root_buffer(a)
    entry = _conv_buffers.get(id(root)) if _conv_buffers else None
    if entry is None or entry[0]() is not root or root.size != entry[1] or len(entry) < 4:
        return None
    shape, item = entry[2], a.itemsize
    # PyTorch's tensor is the (N, C, ...) output, contiguous; here it lies over (C, N, ...) memory, the
    # trailing dims in order (the noted array itself may be a permutation of those: a layer's own
    # layout of H and W). So memory offsets count in three digits, slowest first: (memory step,
    # count, PyTorch's step) for C, N and the trailing dims as one.
    n, c = shape[0] if shape else 0, shape[1] if len(shape) > 1 else 0
    rest = root.size // (n * c) if n * c else 0
    if len(shape) < 3 or entry[3][1] // item != n * rest or entry[3][0] // item != rest:
        return None  # not laid out channel-major
    digits = [dg for dg in ((n * rest, c, rest), (rest, n, c * rest), (1, rest, 1)) if dg[1] > 1]
    offset = (Tensor.data_ptr(wrap_array(a)) - Tensor.data_ptr(wrap_array(root))) // item
    reach = []
    for mem, _count, _ in digits:
        reach.append(offset // mem)
        offset %= mem
    out = []
    for size, st in zip(a.shape, a.strides):
        st //= item
        if size == 1 or st == 0:
            out.append(st)
            continue
        j = next((j for j, dg in enumerate(digits) if st >= dg[0] and st % dg[0] == 0), None)
        if j is None:
            return None
        reach[j] += st // digits[j][0] * (size - 1)
        out.append(st // digits[j][0] * digits[j][2])
    if _builtin_any(r >= dg[1] for r, dg in zip(reach, digits)):
        return None  # a step that carries into the next digit: no single PyTorch stride
    return tuple(out)


def _views(shape: Sequence[int], strides: Sequence[int], new: Sequence[int]) -> bool:
    """Whether a tensor of ``shape`` and ``strides`` can be viewed as ``new`` (PyTorch's computeStride)."""
    if not shape or 0 in shape:
        return True
    view_d, base, tensor_numel, view_numel = len(new) - 1, strides[-1], 1, 1
    for d in reversed(range(len(shape))):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return False
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return view_d == -1


def torch_views(x: Tensor, shape: Sequence[int]) -> bool | None:
    """Whether PyTorch's ``x.view(shape)`` exists, for ``x`` in a noted output's buffer (see above);
    None when that cannot be told (``x`` lies in no such buffer).

    Example:
        >>> import downslope as ds
        >>> torch_views(ds.zeros(2, 3), (6,)) is None
        True
    """
    strides = _torch_strides(x.array)
    return None if strides is None else _views(x.shape, strides, tuple(shape))


def copy_where_torch_copies(x: Tensor, out: Tensor) -> Tensor:
    """``out``, a reshape of ``x``, or a copy of it where PyTorch's reshape copies and downslope's memory
    allowed a view (through which an in-place op would change a convolution's output, as it would not
    in PyTorch): a detection head's ``conv(x).permute(0, 2, 3, 1).reshape(-1, C)``. The user's names
    (``ds.reshape``, ``ds.flatten``, ``ds.ravel`` and the Tensor methods) take this; the library's own
    kernels reshape through :func:`reshape`, which keeps the view.

    Example:
        >>> import downslope as ds
        >>> x = ds.zeros(2, 3)
        >>> copy_where_torch_copies(x, ds.ops.reshape(x, (6,))).fill_(1.0).sum().item(), x.sum().item()
        (6.0, 6.0)
    """
    a = x.array
    if out.array.size < 2 or id(_root_buffer(a)) not in _conv_buffers or _conv_layout(a):
        return out
    if out.array.base is None or _root_buffer(out.array) is not _root_buffer(a):
        return out  # already a copy
    if torch_views(x, out.shape) is False:
        return clone(out)
    return out


def public_reshape(input: Any, shape: Any) -> Tensor:
    """``input`` in another shape: a view where PyTorch's is one, else a copy (``torch.reshape``).

    Example:
        >>> import downslope as ds
        >>> ds.reshape(ds.arange(6.0), (2, 3))
        tensor([[0., 1., 2.],
                [3., 4., 5.]])
    """
    x = _lift(input)
    return copy_where_torch_copies(x, reshape(x, shape))


def public_flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dims ``start_dim`` to ``end_dim`` of ``input`` as one, a view where PyTorch's is one, else a
    copy (``torch.flatten``).

    Example:
        >>> import downslope as ds
        >>> ds.flatten(ds.zeros(2, 3, 4), 1).shape
        downslope.Size([2, 12])
    """
    x = _lift(input)
    return copy_where_torch_copies(x, flatten(x, start_dim, end_dim))


def public_ravel(input: Any) -> Tensor:
    """``input`` as one dim, a view where PyTorch's is one, else a copy (``torch.ravel``).

    Example:
        >>> import downslope as ds
        >>> ds.ravel(ds.zeros(2, 3)).shape
        downslope.Size([6])
    """
    x = _lift(input)
    return copy_where_torch_copies(x, ravel(x))


def permute(x: Any, dims: Sequence[int]) -> Tensor:
    """Reorder dimensions: output dim i is input dim ``dims[i]``."""
    x = _lift(x)
    dims = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ArgumentError(f"permute: {dims} is not a permutation of the {x.ndim} dims of shape {tuple(x.shape)}")
    inverse = [0] * len(dims)  # the permutation back, in Python (np.argsort of a tuple costs 5 us here)
    for i, d in enumerate(dims):
        inverse[d] = i
    return _alias(record_op(x.array.transpose(dims), (x,), _permute_vjp, tuple(inverse)), x)


def _permute_vjp(g, y, args, saved, needs, xp):
    return (xp.permute(g, saved),)


def transpose(x: Any, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (PyTorch's transpose)."""
    if x.__class__ is Tensor and dim0.__class__ is int and dim1.__class__ is int:
        # the usual call (a tensor, two int dims in range): the swap is its own inverse, so the
        # permutation and the one back are the same tuple; what permute would check holds already
        n = x.array.ndim
        if -n <= dim0 < n and -n <= dim1 < n:
            order = list(range(n))
            order[dim0], order[dim1] = order[dim1], order[dim0]
            swap = tuple(order)
            return _alias(record_op(x.array.transpose(swap), (x,), _permute_vjp, swap), x)
    x = _lift(x)
    dims = list(range(x.ndim))
    dim0, dim1 = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    if x.ndim == 0:  # dims 0 and -1 name the 0-d tensor's one (virtual) dim: torch returns it as is (a view)
        return permute(x, ())
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, dims)


def squeeze(x: Any, dim: Any = None) -> Tensor:
    x = _lift(x)
    if dim is None:
        shape = tuple(s for s in x.array.shape if s != 1)
    else:
        axes = _norm_axes(dim, x.ndim, empty_is_all=False)
        shape = tuple(s for i, s in enumerate(x.array.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Any, dim: int) -> Tensor:
    x = _lift(x)
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise OutOfRangeError(f"unsqueeze: dim {dim} out of range for a tensor with {x.ndim} dims")
    dim = dim % (x.ndim + 1)
    shape = x.array.shape  # a plain tuple: this runs on every unsqueeze
    return reshape(x, shape[:dim] + (1,) + shape[dim:])


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    x = _lift(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise InvalidValueError(  # torch: a RuntimeError
            f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor of shape {tuple(x.shape)}"
        )
    shape = x.array.shape  # a plain tuple: this runs on every flatten
    return reshape(x, shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :])


def broadcast_to(x: Any, shape: Any) -> Tensor:
    x = _lift(x)
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if _builtin_any(
        s == -1 for s in shape[: _builtin_max(lead, 0)]
    ):  # x.shape[negative] would silently pick a wrong dim
        raise ShapeError(
            f"broadcast_to: -1 (keep the size) is not allowed in a new leading dim; got {shape} for {tuple(x.shape)}"
        )
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    try:
        out = np.broadcast_to(x.array, shape)
    except ValueError:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to {shape}") from None
    if out.size == x.array.size and out.size:
        # nothing repeats (the same shape, or new dims of size 1): a plain view that in-place ops write
        # through, as torch's expand; NumPy's broadcast views are read-only whatever they repeat
        out = x.array.reshape(shape)
    return _alias(record_op(out, (x,), _broadcast_to_vjp), x)


def _broadcast_to_vjp(g, y, args, saved, needs, xp):
    return (xp.sum_to(g, args[0].shape),)


def sum_to(x: Any, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting)."""

    x = _lift(x)
    return record_op(as_array(_sum_to_array(x.array, tuple(shape))), (x,), _sum_to_vjp)


def _sum_to_vjp(g, y, args, saved, needs, xp):
    return (xp.broadcast_to(g, args[0].shape),)


def _common_dtype(ts: list[Tensor]) -> list[Tensor]:
    """The tensors in PyTorch's result dtype (:func:`result_dtype`), cast with a recorded op so that each
    gradient comes back in its own tensor's dtype."""
    dtype = result_dtype(ts)
    return [t if t.array.dtype == dtype else astype(t, dtype) for t in ts]


def concatenate(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (``ds.cat``)."""
    if isinstance(tensors, Tensor) or len(tensors) == 0:
        raise ArgumentTypeError("concatenate: expected a non-empty sequence of tensors")
    a = axis if dim is None else dim
    ts = [_lift(t) for t in tensors]
    first = ts[0].array.dtype
    for t in ts:  # one native dtype (a generation loop's token ids): nothing to promote
        if t.array.dtype != first or not first.isnative:
            ts = _common_dtype(ts)
            break
    legacy = [t.shape == (0,) for t in ts]
    if _builtin_any(legacy) and not _builtin_all(legacy):
        return _concatenate_skipping_empty(ts, legacy, a)
    if _builtin_all(legacy):  # only 1-D empty tensors: torch's legacy rule skips them whatever the dim
        a = 0
    a = _dim(a, ts[0].ndim, "concatenate")
    try:
        out = _joined(np.concatenate, ts, a, a)
    except ValueError:
        raise ShapeError(_concatenate_mismatch(ts, a)) from None
    bounds = tuple(itertools.accumulate((t.shape[a] for t in ts), initial=0))  # plain ints: nothing to free
    return record_op(out, tuple(ts), _concatenate_vjp, (a, bounds))


def _joined(join: Any, ts: Sequence[Tensor], axis: int, along: int | None) -> Any:
    """``join`` (np.concatenate along an existing dim ``along``, or np.stack: None) of ``ts``' arrays
    along ``axis``, in C order as torch's cat and stack return it: NumPy keeps another order where its
    inputs share one (transposed, permuted or expanded inputs), so a reshape of the result would copy
    where torch's is a view. Written into a C-order buffer (no second copy); the inputs' order is kept
    for a convolution's channel-major outputs, whose layout the layers after it keep (a U-Net's skip
    join), and for C-ordered inputs (NumPy's result is then in C order already)."""
    arrays = [t.array for t in ts]
    if _builtin_all(arr.flags.c_contiguous for arr in arrays) or (
        _conv_buffers and _builtin_any(_over_conv_buffer(arr) for arr in arrays)
    ):
        return join(arrays, axis=axis)
    first = arrays[0]
    if first.ndim == 0 or _builtin_any(arr.ndim != first.ndim or arr.dtype != first.dtype for arr in arrays):
        return join(arrays, axis=axis)  # NumPy's own error (or promotion) for these
    shape = list(first.shape)
    if along is None:
        shape.insert(axis, len(arrays))
    else:
        shape[along] = _builtin_sum(arr.shape[along] for arr in arrays)
    out = namespace_of(first).empty(tuple(shape), dtype=first.dtype)
    return join(arrays, axis=axis, out=out)


def _concatenate_mismatch(ts: list[Tensor], a: int) -> str:
    """Why NumPy refused to join ``ts``: a zero-dimensional tensor (as torch says), or the shapes."""
    for i, t in enumerate(ts):
        if t.ndim == 0:
            return (
                f"concatenate: zero-dimensional tensor (at position {i}) cannot be concatenated; "
                "use ds.stack, or give each a dimension first (t.view(1) / t.reshape(1))"
            )
    return f"concatenate: shapes {[tuple(t.shape) for t in ts]} do not match except along axis {a}"


def _concatenate_vjp(g, y, args, saved, needs, xp):
    a, bounds = saved
    lead = (slice(None),) * a
    return tuple(g[lead + (slice(bounds[i], bounds[i + 1]),)] if needs[i] else None for i in range(len(args)))


def _concatenate_skipping_empty(ts: list[Tensor], legacy: list[bool], a: int) -> Tensor:
    """torch.cat's rule for legacy empty tensors: a 1-d tensor of size 0 joins tensors of any shape by
    being left out (its dtype still takes part in the result's, and its gradient is empty)."""
    kept = [t for t, skip in zip(ts, legacy) if not skip]
    a = _dim(a, kept[0].ndim, "concatenate")
    try:
        out = np.concatenate([t.array for t in kept], axis=a)
    except ValueError:
        raise ShapeError(_concatenate_mismatch(kept, a)) from None
    sizes = [0 if skip else t.shape[a] for t, skip in zip(ts, legacy)]
    bounds = tuple(itertools.accumulate(sizes, initial=0))
    return record_op(out, tuple(ts), _concatenate_skipping_vjp, (a, bounds, tuple(legacy)))


def _concatenate_skipping_vjp(g, y, args, saved, needs, xp):
    a, bounds, legacy = saved
    lead = (slice(None),) * a
    empty = xp.reshape(g, (-1,))[:0]  # a skipped empty's gradient: its shape (0,)
    return tuple(
        None if not needs[i] else empty if legacy[i] else g[lead + (slice(bounds[i], bounds[i + 1]),)]
        for i in range(len(args))
    )


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    if isinstance(tensors, Tensor) or len(tensors) == 0:
        raise ArgumentTypeError("stack: expected a non-empty sequence of tensors")
    a = axis if dim is None else dim
    ts = _common_dtype([_lift(t) for t in tensors])
    if len({t.shape for t in ts}) != 1:
        raise ShapeError(f"stack: all tensors need the same shape, got {[tuple(t.shape) for t in ts]}")
    a = _dim(a, ts[0].ndim + 1, "stack")
    out = _joined(np.stack, ts, a, None)
    return record_op(out, tuple(ts), _stack_vjp, a)


def _stack_vjp(g, y, args, saved, needs, xp):
    lead = (slice(None),) * saved
    return tuple(g[lead + (i,)] if needs[i] else None for i in range(len(args)))


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_reshape_vjp, _permute_vjp, _broadcast_to_vjp, _sum_to_vjp, _concatenate_vjp, _stack_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]
_concatenate_skipping_vjp.reads_inputs = False  # type: ignore[attr-defined]


def t(x: Any) -> Tensor:
    """Transpose a tensor of at most 2 dims (torch.t)."""
    x = _lift(x)
    if x.ndim > 2:
        raise ShapeError(
            f"t() expects a tensor with <= 2 dimensions, but got shape {tuple(x.shape)}; use transpose(d0, d1)"
        )
    return permute(x, tuple(reversed(range(x.ndim))))


def hstack(tensors: Sequence[Any]) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    ts = [atleast_1d(t) for t in tensors]  # 0-d tensors join as 1-element rows, as torch
    return concatenate(ts, 0 if ts and ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Any]) -> Tensor:
    """Join along dim 0 (1-D tensors become rows)."""
    return concatenate([atleast_2d(t) for t in tensors], 0)  # 0-d and 1-D tensors become rows, as torch


concat = concatenate


def movedim(x: Any, source: Any, destination: Any) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (the others keep their order)."""
    x = _lift(x)
    # one dim may be a 0-d integer tensor, as torch reads it through __index__
    src = [source] if index_value(source) is not None else list(source)
    dst = [destination] if index_value(destination) is not None else list(destination)
    if len(src) != len(dst):
        raise ArgumentError(f"movedim: {len(src)} source dim(s) but {len(dst)} destination(s)")
    moved = [_dim(int(s_), x.ndim, "movedim") for s_ in src]
    placed = [_dim(int(d_), x.ndim, "movedim") for d_ in dst]
    if x.ndim == 0:  # movedim(0, 0) (or -1) on a 0-d tensor: the tensor itself, as in torch
        return permute(x, ())
    target = [-1] * x.ndim
    for s_, d_ in zip(moved, placed):
        target[d_] = s_
    rest = iter([d for d in range(x.ndim) if d not in moved])
    return permute(x, [t_ if t_ >= 0 else next(rest) for t_ in target])


moveaxis = movedim


def swapaxes(x: Any, axis0: int, axis1: int) -> Tensor:
    return transpose(x, axis0, axis1)


swapdims = swapaxes


def ravel(x: Any) -> Tensor:
    return reshape(x, (-1,))


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids (``indexing='ij'`` by default, as torch; 'xy' swaps the first two)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [reshape(_lift(t), (-1,)) for t in tensors]
    if indexing not in ("ij", "xy"):
        raise ArgumentError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for i, t in enumerate(ts):
        if t.array.dtype != ts[0].array.dtype:  # torch: a RuntimeError, which DTypeError is too
            raise DTypeError(
                f"meshgrid: expects all tensors to have the same dtype, got {ts[0].array.dtype} for tensor 0 "
                f"and {t.array.dtype} for tensor {i}"
            )
    shape = [t.shape[0] for t in ts]
    if indexing == "xy" and len(ts) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for k, t in enumerate(ts):
        axis = (1 - k if k < 2 else k) if indexing == "xy" and len(ts) >= 2 else k
        view = [1] * len(ts)
        view[axis] = t.shape[0]
        out.append(broadcast_to(reshape(t, view), shape))
    return tuple(out)


def broadcast_tensors(*tensors: Any) -> tuple[Tensor, ...]:
    ts = [_lift(t) for t in tensors]
    shape = np.broadcast_shapes(*(t.shape for t in ts))
    return tuple(broadcast_to(t, shape) for t in ts)


def _atleast(name: str, ndim: int, tensors: tuple[Any, ...]) -> Any:
    """torch's call forms of ``atleast_Nd``: one tensor gives a tensor; several tensors, or one list
    or tuple of them, give a tuple (``()`` for none). A tensor with ``ndim`` dims or more is returned
    itself; the others gain size-1 dims as torch places them. A bare argument that is not a tensor (a
    number, an array) is made into one, as the other ops do; inside a list, only tensors (as torch)."""
    if len(tensors) == 1 and not isinstance(tensors[0], (list, tuple)):
        return _at_least(_lift(tensors[0]), ndim)
    items = tuple(tensors[0]) if len(tensors) == 1 else tensors
    for i, t_ in enumerate(items):
        if not isinstance(t_, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor as element {i}, but got {type(t_).__name__}")
    return tuple(_at_least(t_, ndim) for t_ in items)


def _at_least(x: Tensor, ndim: int) -> Tensor:
    if x.ndim >= ndim:
        return x
    if ndim == 3 and x.ndim >= 1:  # torch: (N,) -> (1, N, 1) and (M, N) -> (M, N, 1)
        return reshape(x, ((1,) if x.ndim == 1 else ()) + x.shape + (1,))
    return reshape(x, (1,) * (ndim - x.ndim) + x.shape)


def atleast_1d(*tensors: Any) -> Any:
    """``tensors`` with at least one dim: a 0-d tensor becomes shape (1,) (torch.atleast_1d).

    Example:
        >>> import downslope as ds
        >>> ds.atleast_1d(ds.tensor(3.0))
        tensor([3.])
    """
    return _atleast("atleast_1d", 1, tensors)


def atleast_2d(*tensors: Any) -> Any:
    """``tensors`` with at least two dims: () becomes (1, 1), (N,) becomes (1, N) (torch.atleast_2d).

    Example:
        >>> import downslope as ds
        >>> ds.atleast_2d(ds.tensor([1.0, 2.0])).shape
        downslope.Size([1, 2])
    """
    return _atleast("atleast_2d", 2, tensors)


def atleast_3d(*tensors: Any) -> Any:
    """``tensors`` with at least three dims (torch.atleast_3d): () becomes (1, 1, 1), (N,) becomes
    (1, N, 1) and (M, N) becomes (M, N, 1); a tensor of 3 dims or more is returned as it is. One tensor
    gives a tensor; several, or a list or tuple of them, give a tuple.

    Example:
        >>> import downslope as ds
        >>> ds.atleast_3d(ds.ones(2, 3)).shape
        downslope.Size([2, 3, 1])
        >>> [t.shape for t in ds.atleast_3d(ds.tensor(1.0), ds.ones(4))]
        [downslope.Size([1, 1, 1]), downslope.Size([1, 4, 1])]
    """
    return _atleast("atleast_3d", 3, tensors)


def column_stack(tensors: Sequence[Any]) -> Tensor:
    return concatenate([reshape(_lift(t), (-1, 1)) if _lift(t).ndim < 2 else t for t in tensors], 1)


def dstack(tensors: Sequence[Any]) -> Tensor:
    ts = [_lift(t) for t in tensors]
    ts = [reshape(t, (1, -1, 1)) if t.ndim < 2 else unsqueeze(t, -1) if t.ndim == 2 else t for t in ts]
    return concatenate(ts, 2)


def unflatten(x: Any, dim: int, sizes: Sequence[int]) -> Tensor:
    x = _lift(x)
    d = _dim(dim, x.ndim, "unflatten")
    sizes = tuple(int(s_) for s_ in sizes)
    if not sizes:
        raise ArgumentError("unflatten: sizes must be non-empty")
    # The -1 is inferred from dim d alone (not the whole tensor), so a zero-size other dim does not
    # make it ambiguous: unflatten(-2, (-1, 1)) of shape (2, 0) is (2, 1, 0), as in torch.
    known = 1
    for s_ in sizes:
        known *= s_ if s_ != -1 else 1
    if sizes.count(-1) == 1 and known > 0 and x.shape[d] % known == 0:
        sizes = tuple(x.shape[d] // known if s_ == -1 else s_ for s_ in sizes)
    if -1 not in sizes and int(np.prod(sizes)) != x.shape[d]:  # host: Python ints
        raise ShapeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} ({x.shape[d]}) "
            "in the input tensor"
        )
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1 :])


def row_stack(tensors: Sequence[Any]) -> Tensor:
    """Join along dim 0, 1-D tensors as rows: torch.row_stack, the same as :func:`vstack`.

    Example:
        >>> import downslope as ds
        >>> ds.row_stack([ds.tensor([1.0, 2.0]), ds.tensor([[3.0, 4.0]])])
        tensor([[1., 2.],
                [3., 4.]])
    """
    return vstack(tensors)


def sum_to_size(x: Any, *size: Any) -> Tensor:
    """``x`` summed down to ``size``, which must broadcast to ``x``'s shape (``Tensor.sum_to_size``).

    Example:
        >>> import downslope as ds
        >>> ds.ones(2, 3).sum_to_size(1, 3)
        tensor([[2., 2., 2.]])
    """
    x = _lift(x)
    shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], (int, np.integer)) else size
    shape = tuple(int(s) for s in shape)
    lead = x.ndim - len(shape)
    if lead < 0 or _builtin_any(s != 1 and s != x.shape[lead + i] for i, s in enumerate(shape)):
        raise ShapeError(f"sum_to_size: size {shape} is not expandable to size {tuple(x.shape)}")
    out = sum_to(x, shape)
    # a sum of bools or integers is int64, as torch's (which sums whenever size is (), even of a 0-d x)
    if (not shape or shape != x.shape) and x.array.dtype.kind in "biu" and out.array.dtype != np.int64:
        out = wrap_array(out.array.astype(np.int64))
    return out
