"""Ops built on slicing that cut, pad, flip, roll, repeat and split tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError
from ..tensor import Tensor, record_op, wrap_array
from .arithmetic import sub
from .indexing import getitem
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
from .shape import reshape

_NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x: Any, pad: Sequence[Any], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with PyTorch's ``pad`` (last dim first: ``(left, right, top, bottom, ...)``) or NumPy's
    ``pad_width`` (a pair per dim). Modes: constant, reflect, replicate, circular."""
    x = _lift(x)
    widths = _pad_widths(pad, x.ndim)
    if mode == "constant":
        out = np.pad(x.array, widths, mode="constant", constant_values=value)
        return record_op(out, (x,), _pad_vjp, widths)
    if mode not in _NUMPY_PAD_MODES:
        raise ArgumentError(f"pad: unknown mode {mode!r}; expected one of constant, {', '.join(_NUMPY_PAD_MODES)}")
    _check_pad_sizes(x.shape, widths, mode)
    # The other modes copy input elements, so they are an integer-array index into x and get
    # their gradient (repeats summed) from getitem.
    # The index is built from Python ints on the host; getitem copies it to x's device.
    axes_index = [np.pad(np.arange(n), w, mode=_NUMPY_PAD_MODES[mode]) for n, w in zip(x.shape, widths)]  # type: ignore[call-overload]  # host: from shapes
    return getitem(x, np.ix_(*axes_index))


def _check_pad_sizes(shape: tuple[int, ...], widths: list[tuple[int, int]], mode: str) -> None:
    """torch's limits of the copying modes (NumPy would reflect or wrap more than once, silently):
    reflect pads less than the dim's size, circular at most its size, replicate needs a non-empty dim."""
    for d, (n, (before, after)) in enumerate(zip(shape, widths)):
        if not (before or after):
            continue
        if mode == "reflect" and (before >= n or after >= n):
            raise ArgumentError(
                f"pad: reflect padding size should be less than the corresponding input dimension, "
                f"but got padding ({before}, {after}) at dimension {d} of input shape {shape}"
            )
        if mode == "circular" and (before > n or after > n):
            raise ArgumentError(
                f"pad: circular padding ({before}, {after}) at dimension {d} of input shape {shape} "
                "wraps around more than once (at most the dimension's size)"
            )
        if mode == "replicate" and n == 0:
            raise ArgumentError(f"pad: cannot replicate-pad dimension {d} of size 0 (input shape {shape})")


def _pad_widths(pad: Sequence[Any], ndim: int) -> list[tuple[int, int]]:
    pad = list(pad)
    if pad and _builtin_all(isinstance(p, (tuple, list)) for p in pad):
        if len(pad) != ndim:
            raise ArgumentError(
                f"pad: NumPy-style pad_width needs one (before, after) pair per dim ({ndim}), got {len(pad)}"
            )
        widths = [(int(b), int(a)) for b, a in pad]
    else:
        if len(pad) % 2 or len(pad) // 2 > ndim:
            raise ArgumentError(
                f"pad: expected an even number of PyTorch-style pads (at most {2 * ndim}), got {len(pad)}"
            )
        widths = [(0, 0)] * ndim
        for i in range(len(pad) // 2):
            widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if _builtin_any(b < 0 or a < 0 for b, a in widths):
        raise ArgumentError(f"pad: negative padding is not supported, got {widths}")
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
    return getitem(x, index)


def repeat(x: Any, *sizes: Any) -> Tensor:
    """Tile ``x`` (torch's ``Tensor.repeat``): ``sizes`` repeats per dim, extra leading dims allowed."""
    x = _lift(x)
    reps = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)) else sizes
    if len(reps) < x.ndim:
        raise ArgumentError(
            f"repeat: the number of repeats ({len(reps)}) can not be smaller than the number of dims ({x.ndim})"
        )
    lead = len(reps) - x.ndim
    x = reshape(x, (1,) * lead + x.shape)
    grids = np.ix_(*[np.tile(np.arange(n), int(r)) for n, r in zip(x.shape, reps)])  # host: from shapes (see pad)
    return getitem(x, grids)


def split(x: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ArgumentError(f"split: split_size must be positive, got {size}")
        bounds = list(range(0, n, size)) + [n]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if _builtin_sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} add up to {_builtin_sum(sizes)}, but dim {d} has size {n}")
        bounds = [0] + list(np.cumsum(sizes))
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (slice(int(a), int(b)),)) for a, b in zip(bounds[:-1], bounds[1:]))


def chunk(x: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``chunks`` pieces of equal size along ``dim`` (the last may be smaller, as in torch)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "chunk")
    if chunks <= 0:
        raise ArgumentError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[d]
    return split(x, _builtin_max(1, -(-n // chunks)), d)


def narrow(x: Any, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements from ``start`` along ``dim`` (a view)."""
    x = _lift(x)
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
    return tuple(getitem(x, (slice(None),) * d + (i,)) for i in range(x.shape[d]))


def tile(x: Any, dims: Any) -> Tensor:
    return _lift(x).tile(dims)


def roll(x: Any, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements along ``dims`` (wrapping around); without dims the flattened tensor is rolled."""
    x = _lift(x)
    if dims is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    index: list[Any] = [slice(None)] * x.ndim
    for s_, d_ in zip(shifts, dims):
        d = _dim(d_, x.ndim, "roll")
        index[d] = (np.arange(x.shape[d]) - int(s_)) % _builtin_max(x.shape[d], 1)  # host: from shapes (see pad)
    grids = [np.arange(n) if isinstance(i, slice) else i for i, n in zip(index, x.shape)]  # host: from shapes
    return getitem(x, np.ix_(*grids))


def diff(x: Any, n: int = 1, dim: int = -1, prepend: Any = None, append: Any = None) -> Tensor:
    """Differences of neighbours along ``dim`` (n times); ``prepend``/``append`` are joined to ``x``
    along ``dim`` first (torch.diff)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "diff")
    if prepend is not None or append is not None:
        from .shape import concatenate

        parts = [p for p in (prepend, x, append) if p is not None]
        x = concatenate([_lift(p, x) for p in parts], axis=d)
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
    d = _dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = [0] + list(np.cumsum(sizes))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:]))


def hsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    x = _lift(x)
    return tensor_split(x, sections, 1 if x.ndim > 1 else 0)


def vsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    return tensor_split(x, sections, 0)


def dsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    return tensor_split(x, sections, 2)


def repeat_interleave(x: Any, repeats: Any = None, dim: Any = None, *, output_size: Any = None) -> Tensor:
    """Each element (or slice along ``dim``) repeated ``repeats`` times in a row. With ``x`` alone (a 1-d
    integer tensor of counts), index i repeated x[i] times, in x's dtype (torch.repeat_interleave(repeats)).
    ``output_size``, when given, must be the length of the result (torch uses it to skip a sync)."""
    if repeats is None:
        return _repeat_indices(_lift(x), output_size)
    x = _lift(x)
    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    d = _dim(dim, x.ndim, "repeat_interleave")
    # The counts fix the result's shape, a host matter: one copy from a device (torch syncs here too).
    reps = to_host(_index_array(repeats))
    idx = np.repeat(np.arange(x.shape[d]), reps)  # host: built from host counts; getitem moves it to x's device
    _check_output_size(idx.shape[0], output_size)
    return getitem(x, (slice(None),) * d + (idx,))


def _repeat_indices(counts: Tensor, output_size: Any) -> Tensor:
    """torch.repeat_interleave(repeats): 0, 1, ... repeated counts[0], counts[1], ... times."""
    if counts.ndim != 1:
        raise ShapeError(f"repeat_interleave only accept 1D vector as repeat (got a {counts.ndim}-d tensor)")
    if counts.array.dtype.kind not in "iu":
        raise ArgumentTypeError(f"repeat_interleave: the repeats must be integers, got {counts.array.dtype}")
    reps = to_host(counts.array)  # the counts fix the result's shape: one copy from a device, as torch syncs
    if reps.size and int(reps.min()) < 0:
        raise ArgumentError("repeats can not be negative")
    out = np.repeat(np.arange(reps.shape[0], dtype=reps.dtype), reps)  # host: built from host counts
    _check_output_size(out.shape[0], output_size)
    return wrap_array(like(out, counts.array))


def _check_output_size(n: int, output_size: Any) -> None:
    if output_size is not None and int(output_size) != n:
        raise ArgumentError(f"repeat_interleave: output_size={output_size} but the result has {n} elements")
