"""Ops built on slicing that cut, pad, flip, roll, repeat and split tensors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import keep_shape_index
from ..backend import index_value, namespace_of
from ..devices import like, to_host
from ..errors import ArgumentTypeError, DTypeError, InvalidValueError, OutOfRangeError, ShapeError, StateError
from ..tensor import Tensor, _alias, _forget_conv_buffer, _root_buffer, _version_counter, record_op, wrap_array
from .arithmetic import sub
from .indexing import _getitem_vjp, getitem, index_put
from .operands import (
    _builtin_all,
    _builtin_any,
    _builtin_max,
    _builtin_sum,
    _dim,
    _index_array,
    _lift,
    _norm_axes,
)
from .pointwise import _clone_vjp, astype, clone, link_input
from .shape import meshgrid, permute, reshape, stack, transpose

_NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x: Any, pad: Sequence[Any], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with PyTorch's ``pad`` (last dim first: ``(left, right, top, bottom, ...)``) or NumPy's
    ``pad_width`` (a pair per dim). Modes: constant, reflect, replicate, circular. A negative pad
    crops that side, as in torch (constant and circular crop first and then pad; reflect and
    replicate map each output position onto the whole input).

    >>> import downslope as ds
    >>> ds.ops.pad(ds.tensor([1.0, 2.0, 3.0, 4.0]), (-1, 2))
    tensor([2., 3., 4., 0., 0.])
    """
    x = _lift(x)
    pad = list(pad)  # read twice below
    widths = _pad_widths(pad, x.ndim)
    if mode == "constant":
        if _builtin_any(b < 0 or a < 0 for b, a in widths):
            x = getitem(x, _crop(x.shape, widths))
            widths = [(max(b, 0), max(a, 0)) for b, a in widths]
        out = np.pad(x.array, widths, mode="constant", constant_values=value)
        return record_op(out, (x,), _pad_vjp, widths)
    if mode not in _NUMPY_PAD_MODES:
        raise InvalidValueError(f"pad: unknown mode {mode!r}; expected one of constant, {', '.join(_NUMPY_PAD_MODES)}")
    if value:  # torch's check: the copying modes have no fill value to use
        raise InvalidValueError(f'pad: padding mode "{mode}" doesn\'t take in value argument, got value={value!r}')
    numpy_style = _builtin_all(isinstance(p, (tuple, list)) for p in pad) if pad else False
    _check_pad_sizes(x.shape, widths, mode, x.ndim if numpy_style else len(pad) // 2)
    if _builtin_all(b >= 0 and a >= 0 for b, a in widths):
        # the interior copied once and each border filled from slices of the output, dim after dim (as
        # np.pad does): a gather through an index costs 30-80 times as much
        return record_op(_copy_pad(x.array, widths, mode), (x,), copy_pad_vjp, (widths, mode))
    # Negative pads (a crop): an integer-array index into x, its gradient (repeats summed) from getitem.
    # The index is built from Python ints on the host; getitem copies it to x's device.
    axes_index = [_pad_index(n, before, after, mode) for n, (before, after) in zip(x.shape, widths)]
    return getitem(x, np.ix_(*axes_index))


def _along(ndim: int, d: int, part: slice, region: tuple[slice, ...]) -> tuple[slice, ...]:
    """``region`` with ``part`` taken along dim ``d``."""
    return region[:d] + (part,) + region[d + 1 :]


#: Borders of the last dim at most this wide are copied a column at a time (see _copy_pad).
_NARROW_BORDER = 8


def _border_sources(n: int, b: int, e: int, mode: str) -> list[tuple[int, int]]:
    """(output position, the position in the padded output it copies) for each border element of a dim
    of size ``n`` padded by ``b`` before and ``e`` after: every source lies in the interior."""
    if mode == "reflect":
        return [(i, 2 * b - i) for i in range(b)] + [(b + n + j, b + n - 2 - j) for j in range(e)]
    if mode == "replicate":
        return [(i, b) for i in range(b)] + [(b + n + j, b + n - 1) for j in range(e)]
    return [(i, n + i) for i in range(b)] + [(b + n + j, b + j) for j in range(e)]


def _copy_pad(a: Any, widths: list[tuple[int, int]], mode: str) -> Any:
    """reflect / replicate / circular padding of the array ``a`` by non-negative ``widths``. Dim ``d``'s
    borders are filled over the dims before it already padded and the dims after it not yet (their
    interior), so corners come out as torch's."""
    xp = namespace_of(a)
    shape = tuple(n + b + e for n, (b, e) in zip(a.shape, widths))
    out = xp.empty(shape, dtype=a.dtype)
    interior = tuple(slice(b, b + n) for n, (b, _) in zip(a.shape, widths))
    out[interior] = a
    region = interior
    for d, (n, (b, e)) in enumerate(zip(a.shape, widths)):
        region = _along(a.ndim, d, slice(None), region)  # this dim and the ones before it: full
        if not (b or e):
            continue
        nd = a.ndim
        if d == nd - 1 and _builtin_max(b, e) <= _NARROW_BORDER:
            # narrow borders of the last dim: a column at a time (a copy per row of a few elements each
            # costs numpy's loop overhead per row: 3 columns of 16x64x32 rows took 0.5 ms so, 0.1 ms this way)
            for i, source in _border_sources(n, b, e, mode):
                out[_along(nd, d, slice(i, i + 1), region)] = out[_along(nd, d, slice(source, source + 1), region)]
            continue
        if mode == "reflect":  # about the first and last elements, which are not repeated
            if b:
                out[_along(nd, d, slice(0, b), region)] = xp.flip(
                    out[_along(nd, d, slice(b + 1, 2 * b + 1), region)], axis=d
                )
            if e:
                source = out[_along(nd, d, slice(b + n - 1 - e, b + n - 1), region)]
                out[_along(nd, d, slice(b + n, b + n + e), region)] = xp.flip(source, axis=d)
        elif mode == "replicate":
            if b:
                out[_along(nd, d, slice(0, b), region)] = out[_along(nd, d, slice(b, b + 1), region)]
            if e:
                out[_along(nd, d, slice(b + n, b + n + e), region)] = out[
                    _along(nd, d, slice(b + n - 1, b + n), region)
                ]
        else:  # circular: the other end's elements, wrapped once
            if b:
                out[_along(nd, d, slice(0, b), region)] = out[_along(nd, d, slice(n, n + b), region)]
            if e:
                out[_along(nd, d, slice(b + n, b + n + e), region)] = out[_along(nd, d, slice(b, b + e), region)]
    return out


def _fold_pad(g: Any, widths: list[tuple[int, int]], mode: str) -> Any:
    """The adjoint of :func:`_copy_pad`: each border's gradient added onto the elements it copied, the
    dims undone last first (dim ``d``'s borders span the dims before it padded), each step dropping one
    dim's borders."""
    xp = namespace_of(g)
    for d in reversed(range(g.ndim)):
        b, e = widths[d]
        if not (b or e):
            continue
        n = g.shape[d] - b - e
        full = (slice(None),) * g.ndim

        def at(part: slice, d: int = d, full: tuple[slice, ...] = full) -> tuple[slice, ...]:
            return _along(len(full), d, part, full)

        inner = xp.empty(g.shape[:d] + (n,) + g.shape[d + 1 :], dtype=g.dtype)  # the borders are added into it
        inner[...] = g[at(slice(b, b + n))]
        if d == g.ndim - 1 and _builtin_max(b, e) <= _NARROW_BORDER:  # a column at a time, as _copy_pad
            for i, source in _border_sources(n, b, e, mode):
                inner[at(slice(source - b, source - b + 1))] += g[at(slice(i, i + 1))]
        elif mode == "reflect":
            if b:
                inner[at(slice(1, b + 1))] += xp.flip(g[at(slice(0, b))], axis=d)
            if e:
                inner[at(slice(n - 1 - e, n - 1))] += xp.flip(g[at(slice(b + n, b + n + e))], axis=d)
        elif mode == "replicate":
            if b:
                inner[at(slice(0, 1))] += xp.sum(g[at(slice(0, b))], axis=d, keepdims=True)
            if e:
                inner[at(slice(n - 1, n))] += xp.sum(g[at(slice(b + n, b + n + e))], axis=d, keepdims=True)
        else:
            if b:
                inner[at(slice(n - b, n))] += g[at(slice(0, b))]
            if e:
                inner[at(slice(0, e))] += g[at(slice(b + n, b + n + e))]
        g = inner
    return g


def copy_pad_vjp(g, y, args, saved, needs, xp):
    widths, mode = saved
    if isinstance(g, Tensor):  # create_graph: the fold recorded, its own gradient the padding again
        folded = record_op(_fold_pad(g.array, widths, mode), (g,), _fold_pad_vjp, saved)
        # torch's reflect and replicate backward nodes keep the input (a zero derivative), so its
        # ancestors get zeros after a double backward; circular padding is a composite there (no link)
        return (folded if mode == "circular" else link_input(folded, args[0]),)
    return (_fold_pad(g, widths, mode),)


def _fold_pad_vjp(g, y, args, saved, needs, xp):
    widths, mode = saved
    if isinstance(g, Tensor):
        return (record_op(_copy_pad(g.array, widths, mode), (g,), copy_pad_vjp, saved),)
    return (_copy_pad(g, widths, mode),)


copy_pad_vjp.reads_inputs = False  # type: ignore[attr-defined]
copy_pad_vjp.reads_output = False  # type: ignore[attr-defined]
_fold_pad_vjp.reads_inputs = False  # type: ignore[attr-defined]
_fold_pad_vjp.reads_output = False  # type: ignore[attr-defined]


def _crop(shape: tuple[int, ...], widths: list[tuple[int, int]]) -> tuple[slice, ...]:
    """The slices that negative pads cut away (torch narrows the input first, and refuses a crop past its size)."""
    for d, (n, (before, after)) in enumerate(zip(shape, widths)):
        if n - max(-before, 0) - max(-after, 0) < 0:
            raise InvalidValueError(
                f"pad: padding ({before}, {after}) at dimension {d} crops more than its size {n} (input shape {tuple(shape)})"
            )
    return tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(shape, widths))


def _pad_index(n: int, before: int, after: int, mode: str) -> Any:
    """Which input position each output position along one dim copies (torch's, negative pads too)."""
    if mode == "circular":  # crop, then wrap the cropped run around
        start, kept = max(-before, 0), n - max(-before, 0) - max(-after, 0)
        return start + (np.arange(n + before + after) - max(before, 0)) % _builtin_max(kept, 1)  # host: from shapes
    at = np.arange(n + before + after) - before  # host: from shapes
    if mode == "replicate":
        return np.clip(at, 0, n - 1)
    return np.where(at < 0, -at, np.where(at > n - 1, 2 * (n - 1) - at, at))  # reflect: once, about each end


def _check_pad_sizes(shape: tuple[int, ...], widths: list[tuple[int, int]], mode: str, covered: int) -> None:
    """torch's limits of the copying modes (NumPy would reflect or wrap more than once, silently):
    reflect pads less than the dim's size, circular at most the size left after cropping, replicate
    needs a non-empty dim; reflect and replicate never leave a negative size, and leave at least one
    element in one of the ``covered`` (last) dims the pad names: a crop to size 0 of some of them
    gives an empty result, as torch's."""
    for d, (n, (before, after)) in enumerate(zip(shape, widths)):
        if not (before or after):
            continue
        if mode == "reflect" and (before >= n or after >= n):
            raise InvalidValueError(
                f"pad: reflect padding size should be less than the corresponding input dimension, "
                f"but got padding ({before}, {after}) at dimension {d} of input shape {tuple(shape)}"
            )
        kept = n - max(-before, 0) - max(-after, 0)
        if mode == "circular" and n + before + after < 0:
            raise InvalidValueError(
                f"pad: padding ({before}, {after}) at dimension {d} of input shape {tuple(shape)} leaves a negative size"
            )
        if mode == "circular" and n + before + after > 0 and (before > kept or after > kept):
            raise InvalidValueError(
                f"pad: circular padding ({before}, {after}) at dimension {d} of input shape {tuple(shape)} "
                f"wraps around more than once (at most the {kept} elements left after cropping)"
            )
        if mode == "replicate" and n == 0:
            raise InvalidValueError(f"pad: cannot replicate-pad dimension {d} of size 0 (input shape {tuple(shape)})")
        if mode in ("reflect", "replicate") and n + before + after < 0:
            raise InvalidValueError(
                f"pad: input (size {n} at dimension {d}) is too small for padding ({before}, {after}): "
                f"the output size would be {n + before + after}"
            )
    sizes = [n + before + after for n, (before, after) in zip(shape, widths)][len(shape) - covered :]
    if mode in ("reflect", "replicate") and sizes and _builtin_all(size < 1 for size in sizes):
        raise InvalidValueError(
            f"pad: input of shape {tuple(shape)} is too small for {mode} padding {widths[len(shape) - covered :]} of "
            f"its last {covered} dimension(s): every one of them would be empty (output sizes {tuple(sizes)})"
        )


def _pad_widths(pad: Sequence[Any], ndim: int) -> list[tuple[int, int]]:
    pad = list(pad)
    if pad and _builtin_all(isinstance(p, (tuple, list)) for p in pad):
        if len(pad) != ndim:
            raise InvalidValueError(
                f"pad: NumPy-style pad_width needs one (before, after) pair per dim ({ndim}), got {len(pad)}"
            )
        widths = [(int(b), int(a)) for b, a in pad]
    else:
        if len(pad) % 2 or len(pad) // 2 > ndim:
            raise InvalidValueError(
                f"pad: expected an even number of PyTorch-style pads (at most {2 * ndim}), got {len(pad)}"
            )
        widths = [(0, 0)] * ndim
        for i in range(len(pad) // 2):
            widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return widths


def _pad_vjp(g, y, args, saved, needs, xp):
    return (g[tuple(slice(b, b + n) for (b, _), n in zip(saved, args[0].shape))],)


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_pad_vjp,):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


def flip(x: Any, dims: Any) -> Tensor:
    """Reverse the order along ``dims``."""
    x = _lift(x)
    axes = _norm_axes(dims, x.ndim, empty_is_all=False)
    index = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))
    view = getitem(x, index)
    # a copy, as torch's (writing into the result leaves x alone), laid out in x's order as there
    return record_op(view.array.copy(order="K"), (view,), _clone_vjp)


def repeat(x: Any, *sizes: Any) -> Tensor:
    """Tile ``x`` (torch's ``Tensor.repeat``): ``sizes`` repeats per dim, extra leading dims allowed."""
    x = _lift(x)
    reps = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)) else sizes
    if len(reps) < x.ndim:
        raise InvalidValueError(
            f"repeat: the number of repeats ({len(reps)}) can not be smaller than the number of dims ({x.ndim})"
        )
    if not reps:  # a 0-d tensor repeated by (): a copy, as torch (an empty index would give a view)
        return clone(x)
    lead = len(reps) - x.ndim
    x = reshape(x, (1,) * lead + x.shape)
    grids = np.ix_(*[np.tile(np.arange(n), int(r)) for n, r in zip(x.shape, reps)])  # host: from shapes (see pad)
    return keep_shape_index(getitem(x, grids))  # the grid: from shapes, kept as torch (which saves no tensor)


def split(x: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    x = _lift(x)
    if x.ndim == 0:
        raise ShapeError("split expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    one_size = index_value(split_size_or_sections)  # a 0-d integer tensor too, as torch reads it
    if one_size is not None:
        size = one_size
        if size < 0 or (size == 0 and n > 0):  # torch: 0 only for an empty dim
            raise InvalidValueError(f"split: split_size must be positive, got {size} for dim {d} of size {n}")
        bounds = list(range(0, n, size)) + [n] if n else [0, 0]  # an empty dim: one empty piece, as torch
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if _builtin_sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} add up to {_builtin_sum(sizes)}, but dim {d} has size {n}")
        bounds = [0] + list(np.cumsum(sizes))
    lead = (slice(None),) * d
    if not x._requires_grad:
        # outside the graph: the views alone, as getitem gives them for such a tensor (a view sharing x's
        # version counter, nothing recorded), without its index normalising per piece
        pieces = tuple(
            _alias(wrap_array(x.array[lead + (slice(int(a), int(b)),)]), x) for a, b in zip(bounds[:-1], bounds[1:])
        )
        return _multi_output_views(pieces, "Split" if one_size is not None else "SplitWithSizes")
    pieces = tuple(getitem(x, lead + (slice(int(a), int(b)),)) for a, b in zip(bounds[:-1], bounds[1:]))
    return _multi_output_views(pieces, "Split" if one_size is not None else "SplitWithSizes")


def _multi_output_views(pieces: tuple[Tensor, ...], op: str) -> tuple[Tensor, ...]:
    """``pieces`` marked as the outputs of one multi-view op (split, chunk, unbind) when recorded (the
    input requires grad): torch refuses an in-place op on them, or on a view of one, since its history
    would have to rewrite the other outputs' too (checked in tensor._inplace_on_view)."""
    for i, piece in enumerate(pieces):
        if piece._vjp is not None:  # a Tensor takes attributes (its __dict__), as torch tensors do
            setattr(piece, "_multi_view", f"Output {i} of {op}")  # noqa: B010
    return pieces


def chunk(x: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``chunks`` pieces of equal size along ``dim`` (the last may be smaller, as in torch)."""
    x = _lift(x)
    if x.ndim == 0:
        raise ShapeError("chunk expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim, "chunk")
    index = index_value(chunks)  # a 0-d integer tensor too, as torch reads it through __index__
    chunks = chunks if index is None else index
    if chunks <= 0:
        raise InvalidValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[d]
    if n == 0:  # torch: `chunks` empty pieces
        return split(x, [0] * int(chunks), d)
    return split(x, _builtin_max(1, -(-n // chunks)), d)


def narrow(x: Any, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements from ``start`` along ``dim`` (a view)."""
    x = _lift(x)
    if x.ndim == 0:
        raise ShapeError("narrow() cannot be applied to a 0-dim tensor")
    d = _dim(dim, x.ndim, "narrow")
    start = int(to_host(start.array) if isinstance(start, Tensor) else start)  # host: a start fixes the view
    n = x.shape[d]
    if start < 0:
        start += n
    if not (0 <= start and length >= 0 and start + length <= n):
        raise OutOfRangeError(f"narrow: start {start} + length {length} exceeds dimension {d} of size {n}")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def unbind(x: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, with that dim removed."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "unbind")
    if d == 0:  # a bare int index: getitem's fast path (a 1-tuple goes through its general one)
        return _multi_output_views(tuple(getitem(x, i) for i in range(x.shape[0])), "Unbind")
    return _multi_output_views(tuple(getitem(x, (slice(None),) * d + (i,)) for i in range(x.shape[d])), "Unbind")


def tile(x: Any, dims: Any) -> Tensor:
    return _lift(x).tile(dims)


def roll(x: Any, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements along ``dims`` (wrapping around); without dims the flattened tensor is rolled."""
    x = _lift(x)
    if dims is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    # a shift or dim may be a 0-d integer tensor, as torch reads it through __index__
    shifts = (shifts,) if index_value(shifts) is not None else tuple(shifts)
    dims = (dims,) if index_value(dims) is not None else tuple(dims)
    if len(shifts) != len(dims):
        raise ShapeError(
            f"roll: shifts and dims must align, got {len(shifts)} shifts {shifts} and {len(dims)} dims {dims}"
        )
    total = [0] * x.ndim  # a dim named twice is rolled by the sum of its shifts, as torch does
    for s_, d_ in zip(shifts, dims):
        total[_dim(d_, x.ndim, "roll")] += int(s_)
    # host: shifts and sizes are Python ints; a shift by a multiple of the size is none
    total = [s_ % n if n else 0 for s_, n in zip(total, x.shape)]
    return record_op(_rolled(x.array, total), (x,), _roll_vjp, tuple(total))


def _rolled(a: Any, shifts: Sequence[int]) -> Any:
    """``a`` rolled by ``shifts[d]`` (in [0, size)) along each dim d: two slice copies per rolled dim
    (a gather through an index grid is 15-25x slower), always a new array as torch's roll."""
    out = a
    for d, s_ in enumerate(shifts):
        if s_:
            src, out = out, namespace_of(a).empty(out.shape, dtype=out.dtype)  # contiguous, as torch's
            lead = (slice(None),) * d
            n = src.shape[d]
            out[lead + (slice(s_, None),)] = src[lead + (slice(0, n - s_),)]
            out[lead + (slice(0, s_),)] = src[lead + (slice(n - s_, None),)]
    return a.copy() if out is a else out


def _roll_vjp(g, y, args, saved, needs, xp):
    # the gradient rolled back: -s along each dim (as a shift in [0, size))
    back = [(n - s_) % n if n else 0 for s_, n in zip(saved, g.shape)]  # host: Python ints
    if xp.differentiable:
        dims = [d for d, s_ in enumerate(back) if s_]
        return (roll(g, [back[d] for d in dims], dims) if dims else g,)
    return (_rolled(g, back),)


_roll_vjp.reads_inputs = False  # type: ignore[attr-defined]
_roll_vjp.reads_output = False  # type: ignore[attr-defined]


def diff(x: Any, n: int = 1, dim: int = -1, prepend: Any = None, append: Any = None) -> Tensor:
    """Differences of neighbours along ``dim`` (n times); ``prepend``/``append`` are joined to ``x``
    along ``dim`` first (torch.diff)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "diff")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidValueError(f"diff: the order n must be a non-negative int, got {n!r}")
    if prepend is not None or append is not None:
        from .shape import concatenate

        parts = [p for p in (prepend, x, append) if p is not None]
        joined = concatenate([_lift(p, x) for p in parts], axis=d)  # also checks their shapes, as torch
        if n == 0:  # torch returns a copy of the input: prepend and append are not joined
            return clone(x)
        x = joined
    if n == 0:
        return clone(x)  # a copy, as torch's: writing to it leaves x as it was
    lead = (slice(None),) * d
    for _ in range(n):
        later, earlier = getitem(x, lead + (slice(1, None),)), getitem(x, lead + (slice(None, -1),))
        if x.array.dtype == np.bool_:  # torch: booleans differ by XOR (NumPy has no bool subtraction)
            x = wrap_array(namespace_of(later.array).logical_xor(later.array, earlier.array))
        else:
            x = sub(later, earlier)
    return x


def tensor_split(x: Any, indices_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into n nearly equal parts (the first ones one longer), or at the given indices."""
    x = _lift(x)
    if x.ndim == 0:
        raise ShapeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = _dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    if isinstance(indices_or_sections, Tensor) and indices_or_sections.ndim == 0:
        # torch: a 0-d integer tensor is the number of sections, a 1-d one the indices
        if indices_or_sections.array.dtype.kind not in "iu":
            raise ArgumentTypeError(
                f"tensor_split: a tensor of sections or indices must be integer (int64), got {indices_or_sections.dtype}"
            )
        indices_or_sections = int(to_host(indices_or_sections.array))  # host: the count fixes the pieces
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise InvalidValueError(f"tensor_split: the number of sections must be positive, got {k}")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = [0] + list(np.cumsum(sizes))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:]))


def hsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 1 (dim 0 of a 1-D tensor) into ``sections`` equal parts, or at the given indices."""
    x = _lift(x)
    return _directional_split("hsplit", x, sections, 1 if x.ndim > 1 else 0, 1)


def vsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 0 (of a tensor of 2 or more dims) into ``sections`` equal parts, or at the indices."""
    return _directional_split("vsplit", _lift(x), sections, 0, 2)


def dsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    """Split along dim 2 (of a tensor of 3 or more dims) into ``sections`` equal parts, or at the indices."""
    return _directional_split("dsplit", _lift(x), sections, 2, 3)


def _directional_split(name: str, x: Tensor, sections: Any, dim: int, min_ndim: int) -> tuple[Tensor, ...]:
    """hsplit/vsplit/dsplit as torch's: a number of sections must divide the dim's size (tensor_split's
    uneven pieces are refused), and the tensor needs ``min_ndim`` dims."""
    if x.ndim < min_ndim:
        raise ShapeError(
            f"{name} requires a tensor with at least {min_ndim} dimension{'s' if min_ndim > 1 else ''}, "
            f"but got a tensor with {x.ndim} dimensions"
        )
    count = sections
    if isinstance(count, Tensor) and count.ndim == 0 and count.array.dtype.kind in "iu":
        count = int(to_host(count.array))  # host: the count fixes the pieces
    if isinstance(count, (int, np.integer)) and not isinstance(count, bool) and count >= 0:
        size = x.shape[dim]
        if count == 0 or size % int(count):
            raise ShapeError(
                f"{name}: attempted to split along dimension {dim}, but the size of the dimension {size} "
                f"is not divisible by the split_size {int(count)}"
            )
    return tensor_split(x, sections, dim)


def repeat_interleave(x: Any, repeats: Any = None, dim: Any = None, *, output_size: Any = None) -> Tensor:
    """Each element (or slice along ``dim``) repeated ``repeats`` times in a row. With ``x`` alone (a 1-d
    integer tensor of counts), index i repeated x[i] times, in x's dtype (torch.repeat_interleave(repeats)).
    ``output_size``, when given, must be the length of the result (torch uses it to skip a sync).
    ``repeats`` is a number or one count per slice (a 1-element tensor counts for all).

    Example:
        >>> import downslope as ds
        >>> ds.repeat_interleave(ds.tensor([1, 2]), ds.tensor([1, 3]))
        tensor([1, 2, 2, 2])
    """
    if repeats is None:
        return _repeat_indices(_lift(x), output_size)
    x = _lift(x)
    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    d = _dim(dim, x.ndim, "repeat_interleave")
    # The counts fix the result's shape, a host matter: one copy from a device (torch syncs here too).
    reps = to_host(_index_array(repeats))
    _check_repeats(reps, x, d)
    idx = np.repeat(np.arange(x.shape[d]), reps)  # host: built from host counts; getitem moves it to x's device
    _check_output_size(idx.shape[0], output_size)
    out = getitem(x, (slice(None),) * d + (idx,))
    # a number of repeats: the index comes from shapes, kept as torch (which expands, saving no tensor);
    # counts in a tensor are data, freed after a backward as torch frees its index_select's index
    return keep_shape_index(out) if type(repeats) is int or isinstance(repeats, np.integer) else out


def _check_repeats(reps: Any, x: Tensor, d: int) -> None:
    """torch's checks of repeat_interleave's counts (host data), each naming what was given."""
    if reps.ndim > 1:
        raise ShapeError(
            f"repeat_interleave: repeats must be a number or a 0-d or 1-d tensor, got shape {tuple(reps.shape)}"
        )
    if reps.dtype.kind not in "iu":
        raise ArgumentTypeError(f"repeat_interleave: repeats must be integers, got {reps.dtype}")
    if reps.size and int(reps.min()) < 0:
        raise InvalidValueError(f"repeat_interleave: repeats can not be negative, got {int(reps.min())}")
    if reps.ndim == 1 and reps.shape[0] not in (1, x.shape[d]):
        raise ShapeError(
            f"repeat_interleave: repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{reps.shape[0]} and input.size({d}) = {x.shape[d]} (input of shape {tuple(x.shape)})"
        )


def _repeat_indices(counts: Tensor, output_size: Any) -> Tensor:
    """torch.repeat_interleave(repeats): 0, 1, ... repeated counts[0], counts[1], ... times."""
    if counts.ndim != 1:
        raise ShapeError(f"repeat_interleave only accept 1D vector as repeat (got a {counts.ndim}-d tensor)")
    if counts.array.dtype.kind not in "iu":
        raise ArgumentTypeError(f"repeat_interleave: the repeats must be integers, got {counts.array.dtype}")
    reps = to_host(counts.array)  # the counts fix the result's shape: one copy from a device, as torch syncs
    if reps.size and int(reps.min()) < 0:
        raise InvalidValueError(f"repeat_interleave: repeats can not be negative, got {int(reps.min())}")
    out = np.repeat(np.arange(reps.shape[0], dtype=reps.dtype), reps)  # host: built from host counts
    _check_output_size(out.shape[0], output_size)
    return wrap_array(like(out, counts.array))


def _check_output_size(n: int, output_size: Any) -> None:
    if output_size is not None and int(output_size) != n:
        raise InvalidValueError(f"repeat_interleave: output_size={output_size} but the result has {n} elements")


def rot90(x: Any, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first dim towards the second
    (torch.rot90; a negative ``k`` turns the other way).

    Example:
        >>> import downslope as ds
        >>> ds.rot90(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor([[2., 4.],
                [1., 3.]])
    """
    x = _lift(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ArgumentTypeError(f"rot90: k must be an int, got {type(k).__name__} ({k!r})")
    dims = tuple(dims)
    if len(dims) != 2:
        raise InvalidValueError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise ShapeError(f"rot90: expected total dims >= 2, but got total dims = {x.ndim} (shape {tuple(x.shape)})")
    d0, d1 = _dim(dims[0], x.ndim, "rot90"), _dim(dims[1], x.ndim, "rot90")
    if d0 == d1:
        raise InvalidValueError(
            f"rot90: expected rotation dims to be different, but got dim0 = {dims[0]} and dim1 = {dims[1]}"
        )
    turns = int(k) % 4
    # flip copies, so the result is never a view of x (as in torch)
    if turns == 1:
        return transpose(flip(x, (d1,)), d0, d1)
    if turns == 2:
        return flip(x, (d0, d1))
    if turns == 3:
        return transpose(flip(x, (d0,)), d0, d1)
    return clone(x)  # contiguous, as torch's


def fliplr(x: Any) -> Tensor:
    """Reverse the order along dim 1 (left/right); ``x`` needs at least 2 dims (torch.fliplr).

    Example:
        >>> import downslope as ds
        >>> ds.fliplr(ds.tensor([[1.0, 2.0]]))
        tensor([[2., 1.]])
    """
    x = _lift(x)
    if x.ndim < 2:
        raise ShapeError(f"fliplr: input must be >= 2-d, got shape {tuple(x.shape)}")
    return flip(x, (1,))


def flipud(x: Any) -> Tensor:
    """Reverse the order along dim 0 (up/down); ``x`` needs at least 1 dim (torch.flipud).

    Example:
        >>> import downslope as ds
        >>> ds.flipud(ds.tensor([1.0, 2.0]))
        tensor([2., 1.])
    """
    x = _lift(x)
    if x.ndim < 1:
        raise ShapeError(f"flipud: input must be >= 1-d, got shape {tuple(x.shape)}")
    return flip(x, (0,))


def unfold(x: Any, dimension: int, size: int, step: int) -> Tensor:
    """The windows of ``size`` elements along ``dimension``, ``step`` apart, as a new last dim
    (``Tensor.unfold``): dim ``dimension`` becomes the number of windows, ``(n - size) // step + 1``.
    A view sharing ``x``'s memory, as in torch (no copy of the windows); the gradient of an element
    sums over the windows it is in.

    Windows that do not overlap (``step >= size``) take in-place writes, which reach ``x`` (recorded as
    writes to ``x[index]`` when ``x`` is in a graph). Overlapping windows are read-only: an in-place
    op on them is refused, since several of the written elements are one element of ``x`` (torch
    writes them in an unspecified order).

    Example:
        >>> import downslope as ds
        >>> ds.arange(5.0).unfold(0, 2, 2)
        tensor([[0., 1.],
                [2., 3.]])
    """
    x = _lift(x)
    size, step = int(size), int(step)
    n = x.shape[_dim(dimension, x.ndim, "unfold")] if x.ndim else 1
    if size < 0:
        raise InvalidValueError(f"unfold: size is {size} but must be >= 0")
    if step <= 0:
        raise InvalidValueError(f"unfold: step is {step} but must be > 0")
    if size > n:
        raise ShapeError(f"unfold: maximum size for tensor at dimension {dimension} is {n} but size is {size}")
    if x.ndim == 0:  # torch: the one element as a window of size 1 (or none)
        return getitem(reshape(x, (1,)), slice(0, size))
    d = _dim(dimension, x.ndim, "unfold")
    count = (n - size) // step + 1
    if step < size and count > 1:
        # Overlapping windows: read-only (CuPy arrays have no such flag), and the gradient a strided sum
        view = _unfold_array(x.array, d, size, step)
        flags = view.flags
        if hasattr(flags, "writeable"):
            flags.writeable = False
        result = _windows_of(x, view, _unfold_vjp, (d, size, step))
        result._vc = _version_counter(x)  # a write to x is seen by the version checks of the view's readers
        return result
    # Disjoint windows: views that in-place ops may write through (into x, recorded when x is in a graph)
    stride = step if count > 1 else size  # one window: any step gives it
    lead = (slice(None),) * d
    if count * stride <= n:
        # the first count * stride elements, split into (count, stride), each cut to size: basic views
        # (slices, a reshape, a permutation), whose gradients are copies into zeros
        part = getitem(x, lead + (slice(0, count * stride),))
        part = reshape(part, x.shape[:d] + (count, stride) + x.shape[d + 1 :])
        part = getitem(part, lead + (slice(None), slice(0, size)))
        return permute(part, tuple(k for k in range(x.ndim + 1) if k != d + 1) + (d + 1,))
    # the last window ends before a whole stride: recorded as x[index] (diagonal's way); the index has one
    # entry per window element, at most x's size
    view = _unfold_array(x.array, d, size, step)
    result = _windows_of(x, view, _getitem_vjp, (_unfold_index(view, x.shape, d, step), True))
    result._vc = _version_counter(x)
    return keep_shape_index(result)  # the index: from shapes, kept as torch (which saves sizes only)


def as_strided(x: Any, size: Sequence[int], stride: Sequence[int], storage_offset: int | None = None) -> Tensor:
    """A view of ``x``'s elements laid out with the given ``size`` and ``stride`` (in elements), as
    ``torch.as_strided`` reads a contiguous tensor: element ``[i, j, ...]`` of the result is element
    ``storage_offset + i*stride[0] + j*stride[1] + ...`` of ``x`` flattened in row-major order
    (``storage_offset``: None or 0 start at ``x``'s first element). The gradient of an element of
    ``x`` sums over every place the view reads it.

    ``x`` must be contiguous (``x.is_contiguous()``): torch reads a non-contiguous tensor's storage,
    the memory under the view, which downslope does not model. The view may read only ``x``'s own
    elements (torch may read past a sliced tensor's end into its storage). A view whose elements
    overlap (sliding windows) is read-only, as unfold's overlapping windows are; others take
    in-place writes, which reach ``x``.

    Example:
        >>> import downslope as ds
        >>> ds.arange(5.0).as_strided((3, 3), (1, 1))
        tensor([[0., 1., 2.],
                [1., 2., 3.],
                [2., 3., 4.]])
    """
    x = _lift(x)
    where = f"as_strided(input of shape {tuple(x.shape)}, size={tuple(size)}, stride={tuple(stride)})"
    try:
        shape = tuple(int(n) for n in size)
        steps = tuple(int(n) for n in stride)
        offset = 0 if storage_offset is None else int(storage_offset)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{where}: size and stride must be sequences of ints, storage_offset an int") from None
    if len(shape) != len(steps):
        raise ShapeError(f"{where}: mismatch in length of strides and shape ({len(steps)} strides, {len(shape)} sizes)")
    if any(n < 0 for n in shape):
        raise InvalidValueError(f"{where}: sizes must be non-negative")
    if any(n < 0 for n in steps):
        raise InvalidValueError(f"{where}: negative strides are not supported")
    if offset < 0:
        raise InvalidValueError(f"{where}: storage_offset must be non-negative, got {offset}")
    if not x.is_contiguous():
        raise StateError(
            f"{where}: the input is not contiguous; torch would read the memory under it (its storage), which "
            "downslope does not model. Call .contiguous() first if its elements in row-major order are what the "
            "strides should index"
        )
    count = x.array.size
    empty = any(n == 0 for n in shape)
    last = offset + sum((n - 1) * st for n, st in zip(shape, steps))
    if not empty and last >= count:
        raise OutOfRangeError(
            f"{where}: the view reads element {last} (storage_offset={offset}) but the input has {count} "
            "elements; downslope's as_strided reads only the input's own elements"
        )
    flat = reshape(x, (-1,))
    xp = namespace_of(x.array)
    positions = xp.lib.stride_tricks.as_strided(
        xp.arange(offset, offset + 1, dtype=np.int64) if empty else xp.arange(count, dtype=np.int64)[offset:],
        shape=shape,
        strides=tuple(st * 8 for st in steps),
    )
    positions = positions.copy()  # the index the gradient scatters through: its own array, not a view of arange
    itemsize = flat.array.itemsize
    copied = empty or not flat.array.flags.c_contiguous
    if not copied:
        view = _strided_view(flat.array[offset:], shape, tuple(st * itemsize for st in steps))
    else:  # a layout of downslope's own (a convolution's channel-major output) or nothing to read: a copy
        view = flat.array[positions]
    # writes into a copy, or into elements that overlap, could not reach x as they would in torch: refused
    if copied or int(xp.unique(positions).size) < positions.size:
        flags: Any = getattr(view, "flags", None)
        if hasattr(flags, "writeable"):
            flags.writeable = False
    result = _windows_of(flat, view, _getitem_vjp, ((positions,), True))
    result._vc = _version_counter(x)
    return keep_shape_index(result)  # the positions: from shapes, kept as torch (which saves the geometry)


def _windows_of(x: Tensor, view: Any, rule: Any, saved: Any) -> Tensor:
    """``record_op`` of ``view``, unfold's windows over ``x``'s memory. A device's strided view has no
    base (CuPy's as_strided), so record_op takes it for a buffer of the op's own in another layout and
    notes it as a convolution's output (contiguous in torch): that note is dropped, the view keeping
    its own strides."""
    result = record_op(view, (x,), rule, saved)
    if type(view) is not np.ndarray and _root_buffer(view) is view:
        _forget_conv_buffer(id(view), None)
    return result


def _unfold_index(view: Any, shape: tuple[int, ...], d: int, step: int) -> tuple[Any, ...]:
    """The integer index (one array per dim of an input of ``shape``) of every element of its unfold
    ``view``, each broadcasting to the view's shape."""
    xp = namespace_of(view)
    ndim = len(shape) + 1
    index = []
    for k, n in enumerate(shape):
        place = [1] * ndim
        if k == d:
            count, size = view.shape[d], view.shape[-1]
            place[d] = count
            starts = (xp.arange(count) * step).reshape(place)
            place[d], place[-1] = 1, size
            index.append(starts + xp.arange(size).reshape(place))
        else:
            place[k] = n
            index.append(xp.arange(n).reshape(place))
    return tuple(index)


def _unfold_array(a: Any, d: int, size: int, step: int) -> Any:
    """The windows of ``a``: a strided view of it (no copy, no index arrays)."""
    count = (a.shape[d] - size) // step + 1
    st = a.strides
    shape = a.shape[:d] + (count,) + a.shape[d + 1 :] + (size,)
    strides = st[:d] + (st[d] * step,) + st[d + 1 :] + (st[d],)
    return _strided_view(a, shape, strides)


def _strided_view(a: Any, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
    """A view of ``a``'s memory with ``shape`` and byte ``strides``, starting at its first element."""
    if type(a) is np.ndarray:
        # A view whose base is the array that owns the memory, as a slice's is: as_strided's hangs from a
        # stand-in object, so the view would pass for an op's own buffer in another layout (record_op
        # would note it as a convolution's output: wrong strides, a reshape laying it out anew).
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        offset = a.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        try:
            return np.ndarray(shape, a.dtype, buffer=root, offset=offset, strides=strides)
        except (TypeError, ValueError, BufferError):  # a buffer that cannot be exported: as_strided's view
            pass
    return namespace_of(a).lib.stride_tricks.as_strided(a, shape=shape, strides=strides)


def _fold_array(g: Any, shape: tuple[int, ...], d: int, size: int, step: int) -> Any:
    """The sum of windows ``g`` (unfold's layout) back into an array of ``shape``: each element gets
    the entries of every window it is in."""
    out = namespace_of(g).zeros(shape, dtype=g.dtype)
    count, lead = g.shape[d], (slice(None),) * d
    if size <= count:  # one strided add per position within a window
        for j in range(size):
            out[lead + (slice(j, j + step * (count - 1) + 1, step),)] += g[..., j]
    else:  # fewer windows than positions: one add per window
        for i in range(count):
            out[lead + (slice(i * step, i * step + size),)] += namespace_of(g).moveaxis(g[lead + (i,)], -1, d)
    return out


def _unfold_vjp(g, y, args, saved, needs, xp):
    d, size, step = saved
    if xp.differentiable:
        return (_fold(g, args[0].shape, d, size, step),)
    return (_fold_array(g, args[0].shape, d, size, step),)


def _fold(g: Tensor, shape: tuple[int, ...], d: int, size: int, step: int) -> Tensor:
    """The recorded form of :func:`_fold_array` (unfold's gradient under create_graph); its own
    gradient is unfold again."""
    return record_op(_fold_array(g.array, shape, d, size, step), (g,), _fold_vjp, (d, size, step))


def _fold_vjp(g, y, args, saved, needs, xp):
    d, size, step = saved
    if xp.differentiable:
        return (unfold(g, d, size, step),)
    return (_unfold_array(g, d, size, step).copy(),)  # a gradient may be summed into in place: no overlaps


for _rule in (_unfold_vjp, _fold_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


def split_with_sizes(x: Any, split_sizes: Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of the listed sizes along ``dim``, which must add up to its size (torch.split_with_sizes).

    Example:
        >>> import downslope as ds
        >>> [p.shape for p in ds.split_with_sizes(ds.zeros(5, 2), [2, 3])]
        [downslope.Size([2, 2]), downslope.Size([3, 2])]
    """
    x = _lift(x)
    if isinstance(split_sizes, (int, np.integer)) or not hasattr(split_sizes, "__iter__"):
        raise ArgumentTypeError(f"split_with_sizes: split_sizes must be a sequence of ints, got {split_sizes!r}")
    if x.ndim == 0:
        raise ShapeError("split_with_sizes: expects at least a 1-dimensional tensor, got a 0-d one")
    sizes = [int(s) for s in split_sizes]
    d = _dim(dim, x.ndim, "split_with_sizes")
    if _builtin_any(s < 0 for s in sizes):
        raise InvalidValueError(f"split_with_sizes: expects split_sizes to have only non-negative entries, got {sizes}")
    if _builtin_sum(sizes) != x.shape[d]:
        raise ShapeError(
            f"split_with_sizes: expects split_sizes to sum exactly to {x.shape[d]} (the input's size at "
            f"dimension {d}), but got split_sizes={sizes}"
        )
    return split(x, sizes, d)


def _scatter_src(x: Tensor, src: Tensor, expected: tuple[int, ...], op: str) -> Tensor:
    """``src`` checked to have exactly the shape of the part of ``x`` it replaces, in ``x``'s dtype (a
    recorded cast, so its gradient comes back in its own dtype)."""
    if src.shape != expected:
        raise ShapeError(
            f"{op}: expected src to have a size equal to the slice of self. src size = {tuple(src.shape)}, "
            f"slice size = {tuple(expected)}"
        )
    return src if src.array.dtype == x.array.dtype else astype(src, x.array.dtype)


def select_scatter(x: Any, src: Any, dim: int, index: int) -> Tensor:
    """A copy of ``x`` with ``x.select(dim, index)`` replaced by ``src`` (of exactly that shape; it
    takes ``x``'s dtype), as torch.select_scatter. Gradients flow to both.

    Example:
        >>> import downslope as ds
        >>> ds.select_scatter(ds.zeros(2, 2), ds.ones(2), 0, 1)
        tensor([[0., 0.],
                [1., 1.]])
    """
    x, src = _lift(x), _lift(src)
    if x.ndim == 0:
        raise OutOfRangeError("select_scatter: select() cannot be applied to a 0-dim tensor")
    d = _dim(dim, x.ndim, "select_scatter")
    n, i = x.shape[d], int(index)
    if not -n <= i < n:
        raise OutOfRangeError(
            f"select_scatter: index {i} out of range for tensor of size {tuple(x.shape)} at dimension {d}"
        )
    expected = x.shape[:d] + x.shape[d + 1 :]
    return index_put(x, (slice(None),) * d + (i % n,), _scatter_src(x, src, expected, "select_scatter"))


def slice_scatter(
    x: Any, src: Any, dim: int = 0, start: int | None = None, end: int | None = None, step: int = 1
) -> Tensor:
    """A copy of ``x`` with the slice ``start:end:step`` along ``dim`` replaced by ``src`` (of exactly
    that slice's shape; it takes ``x``'s dtype), as torch.slice_scatter. Gradients flow to both.

    Example:
        >>> import downslope as ds
        >>> ds.slice_scatter(ds.zeros(4), ds.ones(2), start=1, end=3)
        tensor([0., 1., 1., 0.])
    """
    x, src = _lift(x), _lift(src)
    if x.ndim == 0:
        raise OutOfRangeError("slice_scatter: slice() cannot be applied to a 0-dim tensor")
    d = _dim(dim, x.ndim, "slice_scatter")
    step = int(step)
    if step <= 0:
        raise InvalidValueError(f"slice_scatter: slice step must be positive, got {step}")
    part = slice(None if start is None else int(start), None if end is None else int(end), step)
    count = len(range(*part.indices(x.shape[d])))
    expected = x.shape[:d] + (count,) + x.shape[d + 1 :]
    return index_put(x, (slice(None),) * d + (part,), _scatter_src(x, src, expected, "slice_scatter"))


def cartesian_prod(*tensors: Any) -> Tensor:
    """Every combination of one element from each 1-D tensor, one per row, the last tensor varying
    fastest (torch.cartesian_prod); a single tensor is returned as is. All need the same dtype.

    Example:
        >>> import downslope as ds
        >>> ds.cartesian_prod(ds.tensor([1, 2]), ds.tensor([3, 4]))
        tensor([[1, 3],
                [1, 4],
                [2, 3],
                [2, 4]])
    """
    if not tensors:
        raise InvalidValueError("cartesian_prod: expects a non-empty list of tensors")
    ts = [_lift(t) for t in tensors]
    for t in ts:
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod: expects 1-D vectors, but got shape {tuple(t.shape)}")
        if t.array.dtype != ts[0].array.dtype:  # torch: a RuntimeError, which DTypeError is too
            raise DTypeError(
                f"cartesian_prod: expects all tensors to have the same dtype, got {ts[0].array.dtype} "
                f"and {t.array.dtype}"
            )
    if len(ts) == 1:
        return ts[0]
    return stack([reshape(g, (-1,)) for g in meshgrid(*ts, indexing="ij")], 1)


def combinations(x: Any, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The ``r``-element combinations of a 1-D tensor's elements, one per row, in lexicographic order of
    their positions (torch.combinations, like ``itertools.combinations``; ``with_replacement`` lets an
    element repeat). ``r=0`` gives an empty 1-D tensor. Gradients add up over repeats.

    Example:
        >>> import downslope as ds
        >>> ds.combinations(ds.tensor([1, 2, 3]))
        tensor([[1, 2],
                [1, 3],
                [2, 3]])
    """
    x = _lift(x)
    if x.ndim != 1:
        raise ShapeError(f"combinations: expects a 1-D vector, but got shape {tuple(x.shape)}")
    r = int(r)
    if r < 0:
        raise InvalidValueError(f"combinations: expects a non-negative r, but got {r}")
    if r == 0:
        return getitem(x, np.zeros(0, dtype=np.int64))  # host: an empty index; getitem moves it to x's device
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    # host: positions from the length alone; getitem moves the index to x's device
    index = np.fromiter(itertools.chain.from_iterable(pick(range(x.shape[0]), r)), dtype=np.int64)  # host: see above
    return getitem(x, index.reshape(-1, r))


def msort(x: Any) -> Tensor:
    """``x`` sorted along dim 0 (the values of ``sort(x, dim=0)``), as torch.msort.

    Example:
        >>> import downslope as ds
        >>> ds.msort(ds.tensor([[3.0, 1.0], [1.0, 2.0]]))
        tensor([[1., 1.],
                [3., 2.]])
    """
    from .sorting import sort  # sorting is a sibling with its own imports: loaded when first used

    return sort(x, 0).values
