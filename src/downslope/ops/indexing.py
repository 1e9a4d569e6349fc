"""Reading and writing at indices: getitem, index_put, gather and scatter, masks, take; also the
sets of view rules that the in-place checks consult.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import jit_gate
from ..backend import namespace_of
from ..devices import is_array, like, to_host
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    InvalidValueError,
    OutOfRangeError,
    ShapeError,
    ShapeIndexError,
)
from ..graph import ArrayRules, _mode, _scatter_array
from ..tensor import Tensor, _alias, _conv_buffers, _over_conv_buffer, record_op, wrap_array
from .arithmetic import mul
from .operands import _builtin_any, _checked_scalar, _dim, _index_array, _lift
from .pointwise import astype, clone, where
from .shape import _broadcast_to_vjp, _permute_vjp, _reshape_vjp, broadcast_to, reshape


def _open_grid(idx: Any, dim: int) -> tuple[Any, ...]:
    """The advanced index that picks ``idx`` along ``dim`` and keeps every other position: open
    (broadcasting) ranges over idx's other axes, in idx's namespace."""
    if type(idx) is np.ndarray:
        grids: list[Any] = list(np.indices(idx.shape, sparse=True))
    else:
        xp = namespace_of(idx)
        n = idx.ndim
        grids = [xp.arange(s).reshape((1,) * i + (s,) + (1,) * (n - i - 1)) for i, s in enumerate(idx.shape)]
    grids[dim] = idx
    return tuple(grids)


def _flat_index(grid: tuple[Any, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The C-order positions in an array of ``shape`` that an open (broadcasting) grid of non-negative
    index arrays, one per dim, picks: one flat index, the form NumPy's ``ufunc.at`` runs fast (a tuple
    of index arrays is 5-10x slower), visiting the elements in the same order."""
    lin = np.empty(np.broadcast_shapes(*(g.shape for g in grid)), np.int64)  # host: host grids only come here
    steps = [math.prod(shape[i + 1 :]) for i in range(len(shape))]  # the strides of a C-order shape
    for i, (g, step) in enumerate(zip(grid, steps)):
        if i == 0:  # written in place, one pass each: the other grids are mostly small ranges
            np.multiply(g, step, out=lin, dtype=np.int64)
        else:
            np.add(lin, g if step == 1 else np.multiply(g, step, dtype=np.int64), out=lin, dtype=np.int64)
    return lin.reshape(-1)


# the fewest elements written for which the flat index pays for its making (~10 us)
_FLAT_AT_MIN = 1024


def _flat_index_if_worth(out: Any, full: tuple[Any, ...], written: int) -> np.ndarray | None:
    """``_flat_index(full, out.shape)`` where it pays: host arrays, ``written`` >= ``_FLAT_AT_MIN``;
    never for the row form (``_rows_at`` makes its own)."""
    if type(out) is not np.ndarray or written < _FLAT_AT_MIN or (len(full) == 1 and out.ndim > 1):
        return None
    return _flat_index(full, out.shape)


def _at(ufunc: Any, out: Any, full: tuple[Any, ...], values: Any, lin: Any) -> None:
    """``ufunc.at(out, full, values)``; through the flat index ``lin`` (``_flat_index``: host arrays,
    ``out`` C-contiguous) when given, with the same result. ``full`` may be the row form ``(rows,)``
    (``_expanded_rows``: one 1-D index of out's first dim, whole rows written): ``_rows_at``."""
    if lin is None and len(full) == 1 and out.ndim > 1 and type(out) is np.ndarray and full[0].ndim == 1:
        _rows_at(ufunc, out, full[0], values)
        return
    if lin is None or not out.flags.c_contiguous:  # a copy's flat view would take the writes
        ufunc.at(out, full, values)
    else:
        shape = np.broadcast_shapes(*(g.shape for g in full))
        ufunc.at(out.reshape(-1), lin, np.broadcast_to(values, shape).reshape(-1))


_JIT_SCATTER = "downslope.ops._jit_scatter"
_ROW_KERNELS = {
    np.add: "add_rows",
    np.multiply: "multiply_rows",
    np.maximum: "maximum_rows",
    np.minimum: "minimum_rows",
}
_ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# the fewest elements written for which a row scatter runs compiled: below it NumPy's flat path takes
# a few tens of microseconds, and a process that scatters nothing larger never imports numba (~0.5 s)
_JIT_ROWS_MIN = 8192


def _rows_at(ufunc: Any, out: np.ndarray, rows: np.ndarray, values: Any) -> None:
    """``ufunc.at(out, (rows,), values)`` for a 1-D host index of out's first dim (out.ndim > 1):
    compiled (``ops._jit_scatter``: the same operations in the same order, 15x NumPy's flat path on a
    graph network's messages) where it applies, else through one flat index (NumPy's ``ufunc.at`` on a
    row index runs 4x slower than on the flat one)."""
    shape = (rows.shape[0],) + out.shape[1:]
    size = math.prod(shape)
    name = _ROW_KERNELS.get(ufunc)
    if name is not None and size >= _JIT_ROWS_MIN and out.dtype in _ROW_DTYPES and out.flags.c_contiguous:
        v = np.broadcast_to(values, shape)
        kernels = jit_gate.kernels(_JIT_SCATTER, out, rows) if v.dtype == out.dtype else None
        if kernels is not None:  # (values as 2-D rows: a copy only where they are a broadcast or strided)
            getattr(kernels, name)(out.reshape(out.shape[0], -1), rows, v.reshape(shape[0], -1))
            return
        if v.dtype == out.dtype and rows.size and 0 <= rows.min() and rows.max() < out.shape[0]:
            rows, values = _rows_in_rounds(ufunc, out, rows, v)
            if not rows.size:
                return
    others: tuple[Any, ...] = np.indices(out.shape[1:], sparse=True)  # open ranges over the other dims
    grid = (rows.reshape((-1,) + (1,) * (out.ndim - 1)), *(g[None] for g in others))
    size = math.prod((rows.shape[0],) + out.shape[1:])
    _at(ufunc, out, grid, values, _flat_index(grid, out.shape) if size >= _FLAT_AT_MIN else None)


# A row met more often than this is left to ufunc.at by _rows_in_rounds (a hub of a power-law graph
# would otherwise cost one round per occurrence)
_ROUNDS_MAX = 32


def _rows_in_rounds(ufunc: Any, out: np.ndarray, rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, Any]:
    """``ufunc.at(out, (rows,), values)`` without numba, for the rows met at most _ROUNDS_MAX times
    (``rows`` non-negative; ``values`` rows.shape + out.shape[1:], out's dtype): round k applies every
    row's k-th value at once, as whole-row fancy indexing (no duplicate within a round), so each
    element of ``out`` takes its values one by one in the order of ``rows``, as ufunc.at does: the
    same results bit for bit. Returns the rows and values left (those of more frequent rows) for
    ufunc.at. On a graph network's gradient (50,000 rows into 10,000 of 64 features, float32) 1.6x
    faster than the flat ufunc.at: the grouping is one stable sort (a radix sort on 16-bit keys)."""
    key = rows.astype(np.uint16) if out.shape[0] <= 65536 else rows  # host: the rows are a host index
    order = np.argsort(key, kind="stable")
    ordered = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))  # host: as above
    sizes = np.diff(starts, append=rows.shape[0])
    frequent = sizes > _ROUNDS_MAX
    left: tuple[np.ndarray, Any] = (rows[:0], values[:0])
    if frequent.any():
        # their elements, in their own order, for ufunc.at (rows are independent of each other)
        mine = np.empty(rows.shape[0], bool)  # host: per element of rows, in its order
        mine[order] = np.repeat(~frequent, sizes)
        left = (rows[~mine], values[~mine])
        starts, sizes = starts[~frequent], sizes[~frequent]
    targets = ordered[starts]
    while starts.size:
        out[targets] = ufunc(out[targets], values[order[starts]])
        more = sizes > 1
        starts, sizes, targets = starts[more] + 1, sizes[more] - 1, targets[more]
    return left


def _expanded_rows(idx: Any, x: Tensor, d: int) -> np.ndarray | None:
    """The rows (a 1-D copy) when a scatter index along dim 0 writes whole rows of x: x's shape after
    dim 0 and one value across each row, as ``dst[:, None].expand_as(messages)`` gives (seen from its
    zero strides without reading it; a materialised index is compared); else None. Host arrays only."""
    if d or idx.ndim < 2 or type(idx) is not np.ndarray or type(x.array) is not np.ndarray:
        return None
    if idx.shape[1:] != x.shape[1:] or not idx.size:
        return None
    first = idx[(slice(None),) + (0,) * (idx.ndim - 1)]
    if not _builtin_any(idx.strides[1:]):  # an expanded view: every row one value
        return first.copy()
    if not (idx[(slice(None),) + (-1,) * (idx.ndim - 1)] == first).all():  # (most other indices stop here)
        return None
    if not (idx == first.reshape((-1,) + (1,) * (idx.ndim - 1))).all():
        return None
    return first.copy()


def _pick(a: Any, full: tuple[Any, ...], lin: Any) -> Any:
    """``a[full]`` (an open grid over all of a's dims), through the flat index ``lin`` when given."""
    if lin is None:
        return a[full]
    return np.take(a, lin).reshape(np.broadcast_shapes(*(g.shape for g in full)))


def _index_range(idx: Any) -> tuple[int, int]:
    """The smallest and largest value of a non-empty index array, as Python ints. A bounds check must
    read values: on a device that is one copy of two numbers to the host (PyTorch asserts on the device)."""
    if type(idx) is np.ndarray:
        if 0 in idx.strides and idx.ndim > 1:  # a broadcast view (an expanded index): its own values only
            idx = idx[tuple(0 if step == 0 else slice(None) for step in idx.strides)]
        return int(idx.min()), int(idx.max())
    lo_hi = to_host(namespace_of(idx).stack([idx.min(), idx.max()]))
    return int(lo_hi[0]), int(lo_hi[1])


def _take_along(x: Tensor, idx: Any, dim: int) -> Tensor:
    """``x`` picked at ``idx`` along ``dim`` (idx has x's ndim); the gradient is scattered back."""
    full = _open_grid(like(idx, x.array), dim)
    return record_op(x.array[full], (x,), _getitem_vjp, (full, True))


_BYTE_INDEX_WARNING = "indexing with dtype uint8 is now deprecated, please use a dtype bool instead."
_SEQUENCE_INDEX_WARNING = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in pytorch 2.9; "
    "use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as tensor index, "
    "x[torch.tensor(seq)], which will result either in an error or a different result"
)
# Items that make a short index list a tuple of per-dim indices: torch's test is "a tensor, a Python
# sequence, a slice, None or Ellipsis" (NumPy scalars are not sequences; arrays of any device are).
_SEQUENCE_ITEM_TYPES = (Tensor, list, tuple, range, str, bytes, slice)


def sequence_index(index: list[Any], stacklevel: int = 3) -> Any:
    """A list index as torch reads it (NumPy's old heuristic): a list of fewer than 32 items that holds a
    tensor, an array, a sequence, a slice, None or Ellipsis is a tuple of per-dim indices, so
    ``x[[rows, cols]]`` is ``x[rows, cols]`` (with torch's deprecation warning); any other list (ints,
    bools, or 32 items and more) stays one index along dim 0."""
    if len(index) < 32:
        for item in index:
            if isinstance(item, _SEQUENCE_ITEM_TYPES) or item is None or item is Ellipsis or is_array(item):
                warnings.warn(_SEQUENCE_INDEX_WARNING, UserWarning, stacklevel=stacklevel)
                return tuple(index)
    return index


def _list_index_array(items: Any, index: Any) -> np.ndarray:
    """A list (or tuple, range) used as one index as torch makes it: all bools a mask, otherwise int64 (an
    empty list is an empty integer index; floats are truncated toward zero, as torch's conversion does)."""
    arr = np.asarray(items)  # host: the caller's index list is host data
    if arr.dtype.kind == "f":
        if not (np.abs(arr) < 2.0**63).all():  # host: the list's own values (NaN fails the test too)
            raise OutOfRangeError(
                f"an index list's values must convert to int64 without overflow, got {items!r} in index {index!r}"
            )
        arr = arr.astype(np.int64)
    return arr


def _normalize_index(index: Any, keep_masks: bool = False, on: Any = None) -> Any:
    """Tensors become arrays, lists become integer arrays, boolean masks become integer indices
    (unless ``keep_masks``: applied as masks, NumPy checks that their shape fits). With ``on`` (the
    indexed array), index arrays move to its device, so the index saved for backward lives there."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    ellipses = 0
    advanced = empty_mask = False  # what decides whether torch's reading of an Ellipsis can differ
    for item in items:
        if type(item) is slice:
            if item.step is not None and not item.step:  # NumPy's own error would be a raw ValueError
                raise ArgumentError(f"slice step must be greater than zero, got step 0 in index {index!r}")
            out.append(item)
            continue
        if type(item) is int or item is None or item is Ellipsis:  # basic: the common case
            out.append(item)
            ellipses += item is Ellipsis
            continue
        if type(item) is np.ndarray and item.ndim == 0 and item.dtype.kind in "iu" and item.dtype != np.uint8:
            # a 0-d integer array (np.argmax's result) indexes like an int (a view), as a 0-d tensor does
            out.append(int(item))  # host: a host array's value
            continue
        if isinstance(item, Tensor):
            arr = item.array
            if arr.ndim == 0 and arr.dtype.kind in "iu" and type(arr) is np.ndarray and arr.dtype != np.uint8:
                # a 0-d integer tensor indexes like an int (a view), as in torch; on a device it stays an
                # index array (reading it would make the host wait for the device)
                out.append(int(arr))  # host: a host array's value
                continue
            # A copy: the index is saved for the backward pass, and an in-place change of the caller's
            # tensor before it (torch refuses one) must not move the gradient elsewhere.
            item = arr.copy()
        elif isinstance(item, (list, tuple, range)):  # a sequence inside the index: an index tensor, as in torch
            item = _list_index_array(item, index)
        if not is_array(item):
            if isinstance(item, (str, bytes)):  # torch: a TypeError (NumPy's IndexError otherwise)
                raise ArgumentTypeError(
                    "only integers, slices (`:`), ellipsis (`...`), None and integer or boolean tensors are valid "
                    f"indices, got {type(item).__name__} {item!r} in index {index!r}"
                )
            out.append(item)
            advanced = advanced or type(item) is bool
            continue
        if on is not None and type(item) is not type(on):
            item = like(item, on)
        if item.dtype == np.uint8:  # torch's legacy byte mask: a mask, not indices (a 0-d one without warning)
            if item.ndim:
                warnings.warn(_BYTE_INDEX_WARNING, UserWarning, stacklevel=3)
            item = item != 0
        # (a 0-d mask is left to NumPy's own rule: it adds a dim of length 1 or 0, as in torch)
        if item.dtype == np.bool_ and not keep_masks and item.ndim:
            out.extend(np.nonzero(item))
            advanced = True
            continue
        if item.dtype.kind not in "iub":
            raise OutOfRangeError(f"tensors used as indices must be integer or boolean, got {item.dtype}")
        out.append(item)
        advanced = True
        empty_mask = empty_mask or (item.dtype == np.bool_ and item.ndim > 0 and item.size == 0)
    if on is not None and (ellipses > 1 or (ellipses and advanced) or empty_mask):
        out = _torch_ellipses(out, on.shape, index)
    return tuple(out) if isinstance(index, tuple) or len(out) != 1 else out[0]


def _dims_taken(item: Any) -> int:
    """How many dims of the indexed array one normalized index item consumes (an Ellipsis: none here)."""
    if item is None or item is Ellipsis or type(item) is bool or isinstance(item, np.bool_):
        return 0
    if is_array(item) and item.dtype == np.bool_:
        return item.ndim  # a mask covers one dim per axis; a 0-d one adds a dim instead
    return 1


def _torch_ellipses(items: list[Any], shape: tuple[int, ...], index: Any) -> list[Any]:
    """Normalized index items with each Ellipsis spelled out as torch reads it, and empty masks checked.

    torch's Ellipsis always stands for ``ndim - (dims the other items take)`` full slices, so an
    Ellipsis that spans no dim does not separate two advanced indices (``x[:, i, ..., i]`` on 3 dims
    is ``x[:, i, i]``: the indexed dims stay in place), where NumPy counts it as a separator and moves
    them to the front. Several Ellipses are allowed there, each spanning that many dims.
    """
    ndim = len(shape)
    taken = 0
    ellipses = 0
    advanced = False
    for item in items:
        if item is Ellipsis:
            ellipses += 1
        else:
            taken += _dims_taken(item)
            advanced = advanced or type(item) is bool or is_array(item)
    spare = max(ndim - taken, 0)
    if ellipses > 1 or (ellipses == 1 and spare == 0 and advanced):
        spelled: list[Any] = []
        for item in items:
            if item is Ellipsis:
                spelled.extend([slice(None)] * spare)
            else:
                spelled.append(item)
        # later Ellipses spell slices past the last dim (torch never applies them): dropped from the end
        extra = taken + spare * ellipses - ndim
        while extra > 0 and spelled and type(spelled[-1]) is slice and spelled[-1] == slice(None):
            spelled.pop()
            extra -= 1
        items = spelled
    if advanced:
        _check_empty_masks(items, shape, spare, index)
    return items


def _check_empty_masks(items: list[Any], shape: tuple[int, ...], spare: int, index: Any) -> None:
    """Refuses an empty bool mask whose shape differs from the dims it covers, as torch does (NumPy reads
    an empty mask as an empty integer index and takes it at any length). ``spare``: the dims an Ellipsis
    spans."""
    dim = 0
    for item in items:
        if item is Ellipsis:
            dim += spare
            continue
        if is_array(item) and item.dtype == np.bool_ and item.ndim and item.size == 0:
            for axis, size in enumerate(item.shape):
                if dim + axis < len(shape) and size != shape[dim + axis]:
                    raise OutOfRangeError(
                        f"The shape of the mask {list(item.shape)} at index {axis} does not match the shape of "
                        f"the indexed tensor {list(shape[dim : dim + item.ndim])} at index {dim + axis} (index {index!r})"
                    )
        dim += _dims_taken(item)


def _is_advanced(index: Any) -> bool:
    for i in index if isinstance(index, tuple) else (index,):
        if type(i) is not slice and type(i) is not int and is_array(i):
            return True
    return False


def _is_select(item: Any) -> bool:
    """An integer that selects (removes) one dim: a Python or NumPy int, or a 0-d integer index array."""
    if type(item) is bool:
        return False
    if isinstance(item, (int, np.integer)):
        return True
    return is_array(item) and item.ndim == 0 and item.dtype.kind in "iu"


def _split_selects(idx: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """A normalized index that mixes integers with advanced indices, as two indices applied one after the
    other: the integer selects first, then the rest; None for any other index.

    PyTorch applies an integer as a select before the advanced indices, NumPy counts it as one of them:
    ``x[0, :, idx]`` has the indexed dim last in torch but first in NumPy (which moves the dims of
    advanced indices separated by a slice to the front).
    """
    if type(idx) is not tuple:
        return None
    has_select = has_advanced = False
    for item in idx:  # (the common kinds first, by exact type: this runs on every indexing)
        kind = type(item)
        if kind is int:
            has_select = True
        elif kind is slice or item is None or item is Ellipsis:
            continue
        elif kind is np.ndarray:
            if item.ndim == 0 and item.dtype.kind in "iu":
                has_select = True
            else:
                has_advanced = True
        elif _is_select(item):
            has_select = True
        elif kind is bool or is_array(item):
            has_advanced = True
    if not (has_select and has_advanced):
        return None
    first: list[Any] = []
    rest: list[Any] = []
    for item in idx:
        if _is_select(item):
            first.append(item)
            continue
        rest.append(item)
        if item is None or type(item) is bool:
            continue  # consumes no dim of x
        if item is Ellipsis:
            first.append(Ellipsis)
        elif is_array(item) and item.dtype == np.bool_:
            first.extend([slice(None)] * item.ndim)  # a mask consumes one dim per axis
        else:
            first.append(slice(None))
    return tuple(first), tuple(rest)


def getitem(x: Any, index: Any) -> Tensor:
    """Basic and integer-array indexing; the gradient is scattered back (repeats add up)."""
    kind = type(index)
    if (kind is int or kind is slice) and isinstance(x, Tensor) and not x._requires_grad:
        # t[i] / t[a:b] on a tensor outside the graph (a Dataset's __getitem__, a loop over rows): what
        # the general path below gives for such an index (a view sharing x's version counter, nothing
        # recorded), without its normalising and checks (half of t[i]'s cost); errors take that path
        if kind is int or index.step is None or index.step:
            try:
                out = x.array[index]
            except IndexError:
                out = None
            if out is not None:
                if isinstance(out, np.generic):  # one element: NumPy's scalar copy; the 0-d view instead
                    out = x.array[index, ...]
                return _alias(wrap_array(out), x)
    if (kind is Tensor or kind is tuple) and isinstance(x, Tensor) and type(x.array) is np.ndarray:
        masked = _host_mask_getitem(x, index)
        if masked is not None:
            return masked
    if kind is list:
        index = sequence_index(index, stacklevel=4)  # the caller of Tensor.__getitem__
    x = _lift(x)
    idx = _normalize_index(index, keep_masks=True, on=x.array)
    split = _split_selects(idx)
    if split is not None:  # x[0, :, idx]: the integer selects first, as in torch
        return getitem(getitem(x, split[0]), split[1])
    try:
        # Masks are applied as masks so that NumPy checks their shape: their nonzero() form (used by
        # the backward) would silently accept a mask of the wrong length.
        out = x.array[idx]
    except IndexError as exc:
        raise OutOfRangeError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {exc}") from None
    advanced = _is_advanced(idx)
    if advanced and _builtin_any(is_array(i) and i.dtype == np.bool_ for i in _index_items(idx)):
        idx = _normalize_index(idx, on=x.array)  # idx, not index: a byte mask warned once already
    # Basic indexing gives a view that shares memory (and the version counter) with x, as in PyTorch.
    if isinstance(out, np.generic):  # NumPy gives one element as a scalar (a copy); device namespaces a 0-d view
        if not advanced:  # with a trailing Ellipsis NumPy gives the 0-d view: x[0].fill_(7) reaches x
            out = x.array[(*idx, Ellipsis) if isinstance(idx, tuple) else (idx, Ellipsis)]
        else:
            out = np.asarray(out)  # host: a NumPy scalar is already on the host (inlined: indexing is hot)
    elif advanced and out.ndim > 1 and not out.flags.c_contiguous and not _from_conv(x.array):
        # torch's gathers are contiguous (x[:, idx], index_select, repeat_interleave); NumPy lays an index in
        # the middle out first, or follows x's order, and a reshape of that would copy where torch's views
        out = namespace_of(out).ascontiguousarray(out)
    result = record_op(out, (x,), _getitem_vjp, (idx, advanced))
    return result if advanced else _alias(result, x)


def _host_mask_getitem(x: Tensor, index: Any) -> Tensor | None:
    """``x[mask]`` and ``x[i, j, mask]`` (integers, then one boolean mask over the dims that follow) for
    a host tensor and a host mask of fitting shape: what :func:`getitem` gives, without its general
    normalising (most of the cost at small sizes). NumPy reads these indices as torch does (the
    integers sit next to the mask, so no dims move). None for any other index, or one that does not
    fit (getitem's general path raises its error)."""
    if type(index) is tuple:
        if not index:
            return None
        selects, mask = index[:-1], index[-1]
        for item in selects:
            if type(item) is not int:
                return None
    else:
        selects, mask = (), index
    if type(mask) is Tensor:
        mask = mask.array
    if type(mask) is not np.ndarray or mask.dtype != np.bool_ or not mask.ndim:
        return None
    a = x.array
    start = len(selects)
    if a.ndim < start + mask.ndim or a.shape[start : start + mask.ndim] != mask.shape:
        return None
    for i, item in zip(range(start), selects):
        if not -a.shape[i] <= item < a.shape[i]:
            return None
    out = a[(*selects, mask)]
    if out.ndim > 1 and not out.flags.c_contiguous and not _from_conv(a):
        out = np.ascontiguousarray(out)  # host: as getitem's gathers, contiguous
    saved = None
    if x._requires_grad and _mode.enabled:
        # the index saved for backward: the mask's positions now (a later write into the mask must not
        # move the gradient), as getitem's normalised index
        idx = (*selects, *np.nonzero(mask))
        saved = (idx if len(idx) > 1 else idx[0], True)
    return record_op(out, (x,), _getitem_vjp, saved)


def _from_conv(a: Any) -> bool:
    """Whether ``a`` lies over a convolution's channel-major output, whose layout the ops after it keep."""
    return len(_conv_buffers) > 0 and _over_conv_buffer(a)  # a dict of noted buffers (host bookkeeping)


def _index_items(idx: Any) -> tuple[Any, ...]:
    return idx if isinstance(idx, tuple) else (idx,)


def _getitem_vjp(g, y, args, saved, needs, xp):
    idx, advanced = saved
    return (xp.scatter(args[0].shape, idx, advanced, g),)


def _scatter_grid(index: Any, shape: tuple[int, ...]) -> tuple[Any, ...] | None:
    """The index of a host getitem as an open grid of non-negative integer arrays, one per dim, for the
    two forms the ops make (full slices and one 1-D index: index_select; an index array per dim:
    gather, sort, topk), or None."""
    items = index if isinstance(index, tuple) else (index,)
    arrays = [i for i, item in enumerate(items) if type(item) is np.ndarray]
    if not arrays or any(items[i].dtype.kind not in "iu" for i in arrays):
        return None
    if len(arrays) == len(items) == len(shape):
        grid = items
    elif len(arrays) == 1 and items[arrays[0]].ndim == 1 and len(items) <= len(shape):
        d = arrays[0]
        if any(not (type(item) is slice and item == slice(None)) for i, item in enumerate(items) if i != d):
            return None
        sizes = shape[:d] + items[d].shape + shape[d + 1 :]
        grid = tuple(
            items[d].reshape((1,) * d + (-1,) + (1,) * (len(shape) - d - 1)) if i == d else g
            for i, g in enumerate(np.indices(sizes, sparse=True))
        )
    else:
        return None
    if any(g.size and g.min() < 0 for g in grid):  # a negative index counts from the end: NumPy's own path
        return None
    return grid


def scatter_into_zeros(shape: tuple[int, ...], index: Any, advanced: bool, g: Tensor) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the adjoint of indexing)."""

    g = _lift(g)
    return record_op(_scatter_array(tuple(shape), index, advanced, g.array), (g,), _scatter_add_vjp, (index,))


def _scatter_add_vjp(g, y, args, saved, needs, xp):
    return (g[saved[0]],)


def gather(x: Any, dim: int, index: Any, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j] = x[i][index[i][j]]`` for dim=1 (torch.gather): pick along one axis.
    ``sparse_grad`` is accepted; the gradient is dense either way (there are no sparse tensors here).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, ds.tensor([[1], [0]]), sparse_grad=False)
        tensor([[2.],
                [3.]])
    """
    if not isinstance(sparse_grad, (bool, np.bool_)):
        raise ArgumentTypeError(f"gather: sparse_grad must be a bool, got {sparse_grad!r}")
    x = _lift(x)
    idx = _index_array(index)
    flat = _one_element_dims(x, idx, None)
    if flat is not None:
        return reshape(gather(flat[0], dim, flat[1]), idx.shape)
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"gather: index must hold integers, got {idx.dtype}")
    if idx.ndim != x.ndim:
        if idx.size == 0:  # torch: an empty index of any dims picks nothing (a zero-size view, zero gradient)
            _dim(dim, x.ndim, "gather")
            return reshape(getitem(reshape(x, (-1,)), slice(0, 0)), idx.shape)
        _dim(dim, x.ndim, "gather")  # a dim out of range is torch's first complaint (an IndexError)
        raise ShapeError(
            f"gather: index has {idx.ndim} dims but the input has {x.ndim} (shapes {tuple(idx.shape)} and {tuple(x.shape)})"
        )
    dim = _dim(dim, x.ndim, "gather")
    lo, hi = _index_range(idx) if idx.size else (0, -1)  # nothing to check: any dim size, even 0, fits
    if lo < 0 or hi >= x.shape[dim]:  # NumPy would wrap -1 around silently
        raise OutOfRangeError(
            f"gather: index values must lie in [0, {x.shape[dim]}) for input of shape {tuple(x.shape)} along dim {dim}; "
            f"got values from {lo} to {hi}"
        )
    full = _open_grid(like(idx, x.array), dim)
    try:
        out = _gathered_flat(x.array, full, dim)
        if out is None:
            out = x.array[full]
    except IndexError as exc:
        raise OutOfRangeError(
            f"gather: index out of range for input of shape {tuple(x.shape)} along dim {dim}: {exc}"
        ) from None
    return record_op(out, (x,), _getitem_vjp, (full, True))


def _gathered_flat(a: Any, grid: tuple[Any, ...], dim: int) -> Any:
    """``a[grid]`` for a C-contiguous host array and gather's in-range open grid, by one flat ``np.take``
    (NumPy's indexing with a tuple of index arrays is about 3x slower); None where that path does not apply."""
    if type(a) is not np.ndarray or not a.flags.c_contiguous or a.ndim == 0 or a.itemsize == 0:  # host: only
        return None  # host arrays have a flat memory order to take from
    steps = [stride // a.itemsize for stride in a.strides]
    offsets = [positions * steps[axis] for axis, positions in enumerate(grid) if axis != dim and steps[axis]]
    # int64 products: a narrow index (uint8) times a stride would wrap around in its own dtype
    along = grid[dim] if steps[dim] == 1 else np.multiply(grid[dim], steps[dim], dtype=np.int64)  # host: host only
    if not offsets:
        return np.take(a.reshape(-1), along)  # host: host arrays only come here
    lin = np.add(along, offsets[0], dtype=np.int64)  # host: a new array, so any further adds run in place
    for offset in offsets[1:]:
        np.add(lin, offset, out=lin)  # host: host arrays only come here
    return np.take(a.reshape(-1), lin)  # host: host arrays only come here


def index_put(x: Any, index: Any, value: Any, *, in_place: bool = False) -> Tensor:
    """A copy of ``x`` with ``value`` assigned at ``index`` (the recorded form of ``x[index] = value``):
    the overwritten elements get no gradient, ``value`` gets the gradient of the elements it fills.

    ``in_place``: write into ``x``'s own array and record that (no copy of all of ``x``): for a recorded
    ``t[index] = value``, whose history keeps ``x`` only for its shape (the rule reads no values of it)."""
    if type(index) is list:
        index = sequence_index(index)
    x = _lift(x)
    value = _lift(value, x)
    if value.array.dtype.kind == "c" and x.array.dtype.kind != "c":  # torch's cast (t[i] = z): the real part,
        from .complex import to_real  # with its warning, not NumPy's (which the warnings filters decide on)

        value = to_real(value, x.array.dtype)
    idx = _normalize_index(index, keep_masks=True, on=x.array)
    split = _split_selects(idx)
    if split is not None:  # x[0, :, idx] = v: the integer selects first, as in torch (see getitem)
        return index_put(x, split[0], index_put(getitem(x, split[0]), split[1], value), in_place=in_place)
    out = x.array if in_place else x.array.copy()
    try:
        out[idx] = value.array
    except IndexError as exc:
        raise OutOfRangeError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {exc}") from None
    except (ValueError, TypeError) as exc:
        fitted = drop_leading_ones(value.array)
        try:
            if fitted is None:
                raise exc
            out[idx] = fitted  # the rule sums the gradient back to the value's shape, leading 1s included
        except ValueError as again:
            raise ShapeError(
                f"cannot assign a value of shape {tuple(value.shape)} at index {index!r} of a tensor of shape {tuple(x.shape)} "
                f"(indexed shape {_indexed_shape(x.array, idx)}): {again}"
            ) from None
        except TypeError as again:
            if getattr(value.array, "ndim", 0) < 2:
                raise
            raise ShapeError(  # NumPy's word for a mask given a value of 2 dims or more
                f"cannot assign a value of shape {tuple(value.shape)} at index {index!r} of a tensor of shape {tuple(x.shape)} "
                f"(indexed shape {_indexed_shape(x.array, idx)}): {again}"
            ) from None
    return record_op(out, (x, value), _index_put_vjp, idx)


def drop_leading_ones(a: Any) -> Any:
    """``a`` without its leading size-1 dims (a view), or None when it has none: torch drops them
    from an assigned value before broadcasting it to the indexed shape (``t[i] = v`` with ``v`` of
    shape (1, 1) into one element), where NumPy refuses them for one element or a boolean mask."""
    shape = getattr(a, "shape", None)
    if not shape or shape[0] != 1:
        return None
    k = 0
    while k < len(shape) and shape[k] == 1:
        k += 1
    return a.reshape(shape[k:])


def _indexed_shape(a: Any, idx: Any) -> tuple[int, ...] | str:
    """The shape ``a[idx]`` has (for a message), or '?' when the index itself is invalid."""
    try:
        return tuple(a[idx].shape)
    except (IndexError, ValueError, TypeError):
        return "?"


def _index_put_vjp(g, y, args, saved, needs, xp):
    x, v = args
    gx = gv = None
    if needs[0]:
        if xp is ArrayRules:  # arrays: g once, zeroed where the values went (no mask of the whole shape)
            gx = g.copy()
            gx[saved] = 0
        else:
            written = namespace_of(xp.data(g)).zeros(x.shape, dtype=bool)
            written[saved] = True
            gx = xp.where(written, 0.0, g)  # the Python 0.0 takes g's dtype
    if needs[1]:
        gi = g[saved]
        if gi.ndim < v.ndim:  # NumPy lets a value with extra leading 1s fill a smaller slot
            gi = xp.reshape(gi, (1,) * (v.ndim - gi.ndim) + tuple(gi.shape))
        gv = xp.sum_to(gi, v.shape)
    return gx, gv


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_getitem_vjp, _scatter_add_vjp, _index_put_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


# Rules of ops whose output shares the input's storage (an in-place write through it would
# change the input behind its history's back).
_VIEW_RULES = frozenset((_reshape_vjp, _permute_vjp, _broadcast_to_vjp, _getitem_vjp))


def _slice_index(op: str, index: Any, x: Tensor, d: int, *, negative_ok: bool = False) -> Any:
    """The index of an ``index_*`` op as a flat integer array on x's device, checked as torch checks
    it: integer, at most 1-d, every value in [0, size) of dim ``d`` (``negative_ok``: [-size, size))."""
    idx = _index_array(index)
    if idx.dtype != np.int64 and idx.dtype != np.int32:
        if idx.size:
            raise ArgumentTypeError(f"{op}: the index must be an int32 or int64 tensor, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)  # an empty list arrives as float64
    if idx.ndim > 1:
        raise OutOfRangeError(f"{op}: the index must be a vector (0-d or 1-d), got shape {tuple(idx.shape)}")
    idx = like(idx, x.array).reshape(-1)
    size = x.shape[d] if x.ndim else 1
    if idx.size:
        lo, hi = _index_range(idx)
        if hi >= size or lo < (-size if negative_ok else 0):
            bad = hi if hi >= size else lo
            raise OutOfRangeError(
                f"{op}: index {bad} is out of bounds for dim {d} of size {size} (shape {tuple(x.shape)})"
            )
    return idx


def _check_source(op: str, x: Tensor, d: int, n: int, src: Tensor) -> None:
    """torch's rule for the source of index_add / index_copy / index_reduce: x's dtype, and x's shape
    with ``n`` (the number of indices) along ``d``; no broadcasting."""
    want = x.shape[:d] + (n,) + x.shape[d + 1 :] if x.ndim else ()
    if x.ndim == 0 and not (n == 1 and src.numel() == 1):  # torch: an IndexError or a RuntimeError, by case
        raise ShapeIndexError(
            f"{op}: a 0-d x has one slice along dim 0: it takes one index and a one-element source, got {n} "
            f"index(es) and a source of shape {tuple(src.shape)}"
        )
    if src.shape != want:
        raise ShapeError(
            f"{op}: source must have shape {tuple(want)} (x's shape {tuple(x.shape)} with {n} index(es) along dim {d}), "
            f"got {tuple(src.shape)}"
        )
    if src.dtype != x.dtype:
        raise ArgumentTypeError(f"{op}: source must have x's dtype {x.dtype}, got {src.dtype}")


_WRITABLE_VIEW_RULES = frozenset((_reshape_vjp, _permute_vjp, _getitem_vjp))  # broadcast views are read-only


def index_select(x: Any, dim: int, index: Any) -> Tensor:
    """The slices ``index`` along ``dim`` (repeats allowed; their gradients add up)."""
    if not isinstance(x, Tensor) and hasattr(x, "_sparse_index_select"):  # a sparse COO input (ds.sparse)
        return x._sparse_index_select(dim, index)
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_select")
    idx = _slice_index("index_select", index, x, d)
    if x.ndim == 0:  # a 0-d tensor has one slice, as in torch
        if idx.size != 1:
            raise ShapeError(f"index_select: a 0-d tensor takes exactly one index, got {idx.size}")
        return reshape(getitem(reshape(x, (1,)), idx), ())
    if d and type(x.array) is np.ndarray and not _from_conv(x.array):
        # np.take gives torch's C order in one pass (x[:, idx] lays the index first, then is copied)
        key = _normalize_index((slice(None),) * d + (idx,), keep_masks=True, on=x.array)
        out = np.take(x.array, idx, axis=d)  # host: checked above
        return record_op(out, (x,), _getitem_vjp, (key, True))
    return getitem(x, (slice(None),) * d + (idx,))


def masked_fill(x: Any, mask: Any, value: Any) -> Tensor:
    """``x`` with ``value`` where ``mask`` is true (out of place)."""
    x = _lift(x)
    _check_mask(mask, "masked_fill")
    if x.array.dtype.kind in "iuf":  # torch's checked conversion (-1 is 255 in uint8, 300 refused, 1e10 no float16)
        value = _checked_scalar(value, x.array.dtype, "masked_fill")
        _check_tensor_value(value, x.array.dtype, "masked_fill")
    value = _lift(value, x)
    _refuse_complex_into_real("masked_fill", x, value)
    if value.array.dtype != x.array.dtype:  # the result keeps x's dtype (torch: int.masked_fill(m, 2.5) is int)
        value = astype(value, x.array.dtype)
    return where(mask, value, x)


def _check_tensor_value(value: Any, dtype: Any, op: str) -> None:
    """A 0-d tensor value of masked_fill/index_fill converted as a number is (torch reads it as one,
    with its checked conversion: -1.37 or 300 into uint8 is refused, where a cast would wrap it);
    device values are left unchecked (reading one would wait)."""
    if isinstance(value, Tensor) and value.ndim == 0 and type(value.array) is np.ndarray:
        if value.array.dtype.kind in "iuf":
            _checked_scalar(value.array.item(), dtype, op)  # host: one value of a host array


def _refuse_complex_into_real(op: str, x: Tensor, value: Tensor) -> None:
    """Refuse a complex value written into a real tensor where torch refuses it (a cast would drop the
    imaginary part), instead of leaving it to NumPy's ComplexWarning and the warnings filters."""
    if value.array.dtype.kind == "c" and x.array.dtype.kind != "c":
        raise InvalidValueError(
            f"{op}: value cannot be converted to type {x.array.dtype} without overflow (a complex value of dtype "
            f"{value.array.dtype} into a {x.array.dtype} tensor); make the tensor complex first"
        )


def _check_mask(mask: Any, op: str) -> None:
    """Refuse a tensor mask that is not boolean (torch does: a float mask would be read as "nonzero"),
    and None or strings. Arrays and host data (internal masks, lists of bools) pass: only the dtype
    is looked at, never the values."""
    if isinstance(mask, Tensor):
        if mask.array.dtype != np.bool_:
            raise ArgumentTypeError(f"{op}: expected a boolean mask, got {mask.array.dtype}")
    elif (
        mask is None or isinstance(mask, (str, bytes)) or not (is_array(mask) or isinstance(mask, (list, tuple, bool)))
    ):
        raise ArgumentTypeError(f"{op}: expected a boolean mask tensor, got {type(mask).__name__}")


def _one_element_dims(x: Tensor, index: Any, src: Any) -> tuple[Tensor, Any, Any] | None:
    """torch's rule for gather/scatter: a 0-d tensor counts as 1-d with one element (its dims are
    ``max(ndim, 1)``), so a 0-d index goes with a 1-d (or 0-d) tensor and vice versa. Returns x,
    index and src made 1-d when that case applies, else None (the ops' own checks then apply)."""
    idx = _index_array(index)
    if not (x.ndim == 0 or idx.ndim == 0) or max(x.ndim, 1) != max(idx.ndim, 1):
        return None
    if isinstance(src, Tensor) and src.ndim == 0:
        src = reshape(src, (1,))
    return reshape(x, (-1,)), idx.reshape(-1), src


def _writes_nothing(x: Tensor, dim: int, index: Any, op: str) -> bool:
    """torch's rule for scatter with an empty index of other dims than ``x``: nothing is written (its
    dims and src's shape are not checked; the dim and the index dtype are)."""
    idx = _index_array(index)
    if idx.size or idx.ndim == x.ndim:
        return False
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{op}: index must hold integers, got {idx.dtype}")
    _dim(dim, x.ndim, op)
    return True


def _scatter_index(x: Tensor, dim: int, index: Any, op: str, rows: bool = False) -> tuple[Any, tuple[int, ...]]:
    """The full advanced index that ``scatter``/``gather`` along ``dim`` address (checked to lie inside x);
    with ``rows``, the row form ``(rows,)`` where the index writes whole rows (``_expanded_rows``)."""
    idx = _index_array(index)
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{op}: index must hold integers, got {idx.dtype}")
    if idx.ndim != x.ndim:
        _dim(dim, x.ndim, op)  # a dim out of range is torch's first complaint (an IndexError)
        raise ShapeError(
            f"{op}: index has {idx.ndim} dims but the tensor has {x.ndim} (shapes {tuple(idx.shape)}, {tuple(x.shape)})"
        )
    d = _dim(dim, x.ndim, op)
    lo, hi = _index_range(idx) if idx.size else (0, -1)  # nothing to check: any dim size, even 0, fits
    if lo < 0 or hi >= x.shape[d]:
        raise OutOfRangeError(f"{op}: index values must lie in [0, {x.shape[d]}) along dim {d}; got {lo}..{hi}")
    whole_rows = _expanded_rows(idx, x, d) if rows else None
    if whole_rows is not None:
        return (whole_rows,), idx.shape
    return _open_grid(like(idx, x.array), d), idx.shape


def _scatter_source(src: Any, shape: tuple[int, ...], like: Tensor) -> Tensor:
    value = _lift(src, like)
    _refuse_complex_into_real("scatter", like, value)
    if isinstance(src, Tensor) and value.ndim:  # torch's rules; NumPy would broadcast a smaller src
        if value.ndim != len(shape) or any(v < n for v, n in zip(value.shape, shape)):
            raise ShapeError(f"scatter: src of shape {tuple(value.shape)} must cover the index's shape {tuple(shape)}")
    if isinstance(src, Tensor) and value.dtype != like.dtype:  # a 0-d src too; torch's is a RuntimeError
        raise DTypeError(f"scatter: src must have the tensor's dtype {like.dtype}, got {value.dtype}")
    if value.ndim and value.shape != shape:  # torch reads only the part of src that the index covers
        value = getitem(value, tuple(slice(0, n) for n in shape))
    return value


def scatter(x: Any, dim: int, index: Any, src: Any = None, *, value: Any = None, reduce: Any = None) -> Tensor:
    """A copy of ``x`` with ``src`` (or ``value``) written at ``index`` along ``dim`` (torch.scatter):
    ``out[i][index[i][j]] = src[i][j]`` for dim=1. One-hot: ``zeros(n, C).scatter(1, y[:, None], 1.0)``.

    Example:
        >>> import downslope as ds
        >>> ds.zeros(5).scatter(0, ds.tensor(2), value=1.0)
        tensor([0., 0., 1., 0., 0.])
    """
    x = _lift(x)
    flat = _one_element_dims(x, index, src)
    if flat is not None:
        return reshape(scatter(flat[0], dim, flat[1], flat[2], value=value, reduce=reduce), x.shape)
    if reduce is not None:  # PyTorch's older form of scatter_reduce
        if reduce not in ("add", "multiply"):
            raise ArgumentError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        source = value if src is None else src
        if not isinstance(source, Tensor) or source.ndim == 0:  # a number: one per index entry
            idx = _index_array(index)
            # host: a 0-d value tensor is one number the caller gave (torch reads it the same way)
            value = source.item() if isinstance(source, Tensor) else source  # host: see above
            filled = namespace_of(idx).full(idx.shape, value)
            _refuse_complex_into_real("scatter", x, wrap_array(filled))
            source = wrap_array(filled.astype(x.array.dtype))
        return scatter_reduce(x, dim, index, source, "sum" if reduce == "add" else "prod")
    x = _lift(x)
    if _writes_nothing(x, dim, index, "scatter"):
        return clone(x)  # a copy, as torch's
    full, shape = _scatter_index(x, dim, index, "scatter")
    source = value if src is None else src
    if x.array.dtype.kind in "iuf":  # a number as torch converts it: -2.0 or 300 into uint8 refused, -1 is 255
        source = _checked_scalar(source, x.array.dtype, "scatter")
    return index_put(x, full, _scatter_source(source, shape, x))


def scatter_add(x: Any, dim: int, index: Any, src: Any) -> Tensor:
    """A copy of ``x`` with ``src`` added at ``index`` along ``dim`` (repeated indices add up)."""
    x = _lift(x)
    flat = _one_element_dims(x, index, src)
    if flat is not None:
        return reshape(scatter_add(flat[0], dim, flat[1], flat[2]), x.shape)
    if _writes_nothing(x, dim, index, "scatter_add"):
        return clone(x)  # a copy, as torch's
    full, shape = _scatter_index(x, dim, index, "scatter_add", rows=True)
    value = _scatter_source(src, shape, x)
    out = x.array.copy()
    _at(np.add, out, full, value.array, _flat_index_if_worth(out, full, math.prod(shape)))
    return record_op(out, (x, value), _scatter_add_into_vjp, full)


def _scatter_add_into_vjp(g, y, args, saved, needs, xp):
    x, v = args
    return (g if needs[0] else None, xp.sum_to(g[saved], v.shape) if needs[1] else None)


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
# torch's scatter_reduce also takes torch_scatter's names 'max' and 'min' (not index_reduce); its
# backward refuses them, which the rule below matches
_ALIASES = {"max": "amax", "min": "amin"}


def scatter_reduce(x: Any, dim: int, index: Any, src: Any, reduce: str, *, include_self: bool = True) -> Tensor:
    """A copy of ``x`` with ``src`` reduced into it at ``index`` along ``dim`` (torch.scatter_reduce):
    ``reduce`` is 'sum', 'prod', 'mean', 'amax' or 'amin' ('max' and 'min' as aliases, as in torch);
    with ``include_self=False`` the values of ``x`` at the written positions do not take part.
    Gradients follow PyTorch's (ties of amax/amin share the gradient evenly), double backward too.

    Example:
        >>> import downslope as ds
        >>> ds.zeros(3).scatter_reduce(0, ds.tensor([0, 0, 2]), ds.tensor([1.0, 5.0, 2.0]), "amax", include_self=False)
        tensor([5., 0., 2.])
    """
    if reduce not in _REDUCTIONS and reduce not in _ALIASES:
        raise ArgumentError(
            f"scatter_reduce: reduce must be one of {', '.join(_REDUCTIONS)} (or max, min), got {reduce!r}"
        )
    x = _lift(x)
    flat = _one_element_dims(x, index, src)
    if flat is not None:
        return reshape(scatter_reduce(flat[0], dim, flat[1], flat[2], reduce, include_self=include_self), x.shape)
    if reduce == "mean" and x.dtype == np.bool_:
        raise DTypeError("scatter_reduce: reduce='mean' is not implemented for bool tensors (as in torch)")
    if _writes_nothing(x, dim, index, "scatter_reduce"):
        return clone(x)  # a copy, as torch's
    full, shape = _scatter_index(x, dim, index, "scatter_reduce", rows=True)
    return _scatter_reduce_grid(x, full, shape, _scatter_source(src, shape, x), reduce, include_self)


def _scatter_reduce_grid(
    x: Tensor, full: tuple[Any, ...], shape: Any, value: Tensor, reduce: str, include_self: bool
) -> Tensor:
    """scatter_reduce at the checked index ``full`` (``_scatter_index``: an open grid of ``shape``, or
    the row form), ``value`` of that shape or 0-d; also what its rule calls under create_graph (prod's
    products of the others). Saves the counts per position (a column per row in the row form)."""
    xp = namespace_of(x.array)
    v = xp.broadcast_to(value.array, shape)
    out = x.array.copy()
    lin = _flat_index_if_worth(out, full, math.prod(shape))
    if len(full) == 1 and x.ndim > 1:
        # the row form: one count per row, kept as a column (it broadcasts as the full counts would);
        # the written rows are set through a row mask (a full one costs a pass over all of x)
        counts = np.bincount(full[0], minlength=x.shape[0]).astype(np.int64, copy=False)
        written = counts > 0
        counts = counts.reshape((-1,) + (1,) * (x.ndim - 1))
    else:
        if lin is None:
            counts = xp.zeros(x.shape, dtype=np.int64)
            np.add.at(counts, full, 1)
        else:
            counts = np.bincount(lin, minlength=out.size).reshape(x.shape).astype(np.int64, copy=False)
        written = counts > 0
    op = _ALIASES.get(reduce, reduce)
    if op in ("sum", "mean"):
        if not include_self:
            out[written] = 0
        _at(np.add, out, full, v, lin)
        if op == "mean":
            divisor = xp.maximum(counts + (1 if include_self else 0), 1)
            if out.dtype.kind in "iu":  # integers: torch floors the mean (-7 / 2 gives -4, not -3)
                mean = out // divisor.astype(out.dtype)
            else:
                mean = out / divisor.astype(out.dtype)
            out = xp.where(counts > 0, mean, out).astype(x.array.dtype, copy=False)
    elif op == "prod":
        if not include_self:
            out[written] = 1
        _at(np.multiply, out, full, v, lin)
    else:
        ufunc = np.maximum if op == "amax" else np.minimum
        if not include_self:  # the identity of the reduction in x's dtype (no infinity in an integer)
            out[written] = _extreme(out.dtype, lowest=op == "amax")
        with np.errstate(invalid="ignore"):  # a NaN member makes the result NaN, as in torch (no warning)
            _at(ufunc, out, full, v, lin)
    return record_op(out, (x, value), _scatter_reduce_vjp, (full, reduce, include_self, counts, shape, lin))


def _extreme(dtype: Any, lowest: bool) -> Any:
    """The lowest (or highest) value of ``dtype``: -inf / inf for floating types, the integer limits."""
    if dtype.kind == "b":
        return not lowest
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if lowest else info.max
    return -np.inf if lowest else np.inf


def _scatter_reduce_vjp(g, y, args, saved, needs, xp):
    full, reduce, include_self, counts, shape, lin = saved
    if reduce in _ALIASES:
        raise ArgumentError(
            f"scatter_reduce: its gradient expects reduce to be one of 'sum', 'prod', 'mean', 'amax', 'amin' "
            f"but the forward was given {reduce!r} (torch's backward refuses the alias too; use {_ALIASES[reduce]!r})"
        )
    if xp.differentiable:
        return _scatter_reduce_recorded(g, y, args, saved, needs, xp)
    x, value = args
    ns = namespace_of(x)
    v = ns.broadcast_to(value, shape)
    written = counts > 0
    if reduce == "sum":
        gx, gv = (g if include_self else ns.where(written, 0, g).astype(g.dtype)), _pick(g, full, lin)
    elif reduce == "mean":
        scaled = g / ns.maximum(counts + (1 if include_self else 0), 1).astype(g.dtype)
        gx, gv = ns.where(written, scaled if include_self else 0, g).astype(g.dtype), _pick(scaled, full, lin)
    elif reduce == "prod":
        # Per position, the product of the group's nonzero members and its count of zeros: the
        # product of the others is then exact where zeros are (no division by them).
        start = x if include_self else ns.where(written, 1, x).astype(x.dtype)
        product = ns.where(start == 0, 1, start).astype(x.dtype)
        zeros = ((start == 0) & (written | include_self)).astype(np.int64)
        _at(np.multiply, product, full, ns.where(v == 0, 1, v).astype(x.dtype), lin)
        _at(np.add, zeros, full, (v == 0).astype(np.int64), lin)

        def others(own: Any, zeros_at: Any, product_at: Any) -> Any:
            with np.errstate(divide="ignore", invalid="ignore"):
                fine = product_at / ns.where(own == 0, 1, own)
            return ns.where(own == 0, ns.where(zeros_at == 1, product_at, 0), ns.where(zeros_at > 0, 0, fine))

        gx = g * others(x, zeros, product) if include_self else ns.where(written, 0, g).astype(g.dtype)
        gv = _pick(g, full, lin) * others(v, _pick(zeros, full, lin), _pick(product, full, lin))
    else:  # amax, amin: the gradient is shared evenly among the members equal to the result
        # (PyTorch counts x's value among the ties even with include_self=False, then gives x none)
        self_hit = x == y
        ties = self_hit.astype(g.dtype)
        hit = v == _pick(y, full, lin)
        _at(np.add, ties, full, hit.astype(g.dtype), lin)
        share = g / ns.maximum(ties, 1)
        gx = ns.where(written, share * self_hit if include_self else 0, g).astype(g.dtype)
        gv = _pick(share, full, lin) * hit
    return (gx if needs[0] else None, xp.sum_to(gv.astype(g.dtype), value.shape) if needs[1] else None)


_scatter_reduce_vjp.reads_inputs = True  # type: ignore[attr-defined]


def _scatter_reduce_recorded(g: Tensor, y: Tensor, args: Any, saved: Any, needs: Any, xp: Any) -> tuple[Any, Any]:
    """``_scatter_reduce_vjp`` under create_graph, with recorded ops (torch's scatter_reduce_backward):
    sum, mean, amax and amin are linear in ``g`` with constant masks and counts; prod is the product of
    the other members of each group, written so that its own derivatives are exact at zeros too."""
    full, reduce, include_self, counts, shape, lin = saved
    x, value = args
    xa, ya = xp.data(x), xp.data(y)
    ns = namespace_of(xa)
    va = ns.broadcast_to(xp.data(value), shape)
    written = counts > 0
    if reduce == "sum":
        gx, gv = g, g[full]
    elif reduce == "mean":
        scaled = g / xp.constant(ns.maximum(counts + (1 if include_self else 0), 1).astype(g.dtype))
        gx, gv = scaled, scaled[full]
    elif reduce == "prod":
        others_x, others_v = _prod_others_recorded(x, broadcast_to(value, shape), y, saved, xp)
        gx, gv = (g * others_x if include_self else g), g[full] * others_v
    else:  # amax, amin: the masks of the members equal to the result and their counts are constants
        self_hit = xa == ya
        ties = self_hit.astype(g.dtype)
        hit = va == _pick(ya, full, lin)
        _at(np.add, ties, full, hit.astype(g.dtype), lin)
        share = g / xp.constant(ns.maximum(ties, 1))
        gx, gv = share * xp.constant(self_hit.astype(g.dtype)), share[full] * xp.constant(hit.astype(g.dtype))
    grad_x = xp.where(written, gx if include_self else 0.0, g) if needs[0] else None
    return grad_x, (xp.sum_to(gv, tuple(value.shape)) if needs[1] else None)


def _prod_others_recorded(x: Tensor, v: Tensor, y: Tensor, saved: Any, xp: Any) -> tuple[Tensor | None, Tensor]:
    """Per member of each scatter-prod group (x where ``include_self``, each element of ``v``), the
    product of the group's other members, as recorded ops. A nonzero member's is ``y / member`` (exact:
    y is the product as a function of every member). A zero member's, with ``z`` zeros in its group: the
    product ``Q`` of the nonzero members (z = 1), ``Q`` times the other zero (z = 2: the group's sum of
    zeros minus its own, so its derivative in the other zero is Q), else 0 (its first derivatives vanish
    too: three zeros). Exact to second order everywhere (torch refuses double backward at z >= 2).
    x's is None without ``include_self`` (x is no member; y / x would be 0 / 0 where x is 0)."""
    full, _, include_self, _, shape, lin = saved
    xa, va = xp.data(x), xp.data(v)
    x_zero = (xa == 0) & include_self
    v_zero = va == 0
    zeros = x_zero.astype(np.int64)
    _at(np.add, zeros, full, v_zero.astype(np.int64), lin)
    # zeros replaced by (constant) ones: the product of the nonzero members; only zeros: their sum
    nonzero = _scatter_reduce_grid(where(x_zero, 1.0, x), full, shape, where(v_zero, 1.0, v), "prod", include_self)
    zero_sum = _scatter_reduce_grid(where(x_zero, x, 0.0), full, shape, where(v_zero, v, 0.0), "sum", include_self)

    def others(
        own: Tensor, own_zero: Any, zeros_at: Any, product_at: Tensor, zero_sum_at: Tensor, y_at: Tensor
    ) -> Tensor:
        at_zero = where(zeros_at == 1, product_at, where(zeros_at == 2, product_at * (zero_sum_at - own), 0.0))
        return where(own_zero, at_zero, y_at / where(own_zero, 1.0, own))

    gx = others(x, x_zero, zeros, nonzero, zero_sum, y) if include_self else None
    gv = others(v, v_zero, _pick(zeros, full, lin), nonzero[full], zero_sum[full], y[full])
    return gx, gv


def index_reduce(x: Any, dim: int, index: Any, source: Any, reduce: str, *, include_self: bool = True) -> Tensor:
    """A copy of ``x`` with the slices of ``source`` reduced into the slices ``index`` along ``dim``
    (torch.index_reduce: ``reduce`` is 'prod', 'mean', 'amax' or 'amin').

    Example:
        >>> import downslope as ds
        >>> ds.ones(2, 2).index_reduce(0, ds.tensor([1, 1]), ds.tensor([[2.0, 3.0], [4.0, 5.0]]), "prod")
        tensor([[ 1.,  1.],
                [ 8., 15.]])
    """
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ArgumentError(f"index_reduce: reduce must be 'prod', 'mean', 'amax' or 'amin', got {reduce!r}")
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_reduce")
    src = _lift(source, x)
    idx = _slice_index("index_reduce", index, x, d)
    _check_source("index_reduce", x, d, idx.shape[0], src)
    if x.ndim == 0:
        flat = index_reduce(reshape(x, (1,)), 0, idx, reshape(src, (1,)), reduce, include_self=include_self)
        return reshape(flat, ())
    view = [1] * x.ndim
    view[d] = idx.shape[0]
    full_index = namespace_of(idx).broadcast_to(idx.reshape(view), src.shape)
    return scatter_reduce(x, d, full_index, src, reduce, include_self=include_self)


def index_fill(x: Any, dim: int, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with the slices ``index`` along ``dim`` set to ``value``."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_fill")
    if x.ndim == 0:  # torch: a 0-d tensor is one slice along dim 0
        return reshape(index_fill(reshape(x, (1,)), 0, index, value), ())
    idx = _slice_index("index_fill", index, x, d, negative_ok=True)
    if x.array.dtype.kind in "iuf":  # torch's checked conversion (-1 is 255 in uint8, 300 refused, 1e10 no float16)
        value = _checked_scalar(value, x.array.dtype, "index_fill")
        _check_tensor_value(value, x.array.dtype, "index_fill")
    _refuse_complex_into_real("index_fill", x, _lift(value, x))
    if isinstance(value, Tensor) and value.requires_grad:
        # each filled slice counts once: a repeated index must not repeat value's gradient (as in torch)
        idx = namespace_of(idx).unique(idx)
    return index_put(x, (slice(None),) * d + (idx,), value)


_scatter_add_into_vjp.reads_inputs = False  # type: ignore[attr-defined]


def take(x: Any, index: Any) -> Tensor:
    """Elements of the flattened tensor at ``index`` (the result has index's shape)."""
    return getitem(reshape(x, (-1,)), _index_array(index))


def take_along_dim(x: Any, indices: Any, dim: Any = None) -> Tensor:
    """``x`` picked at ``indices`` along ``dim`` (torch.take_along_dim; like gather with broadcasting)."""
    x = _lift(x)
    idx = _index_array(indices)
    if dim is None:
        return take(x, idx.reshape(-1))
    d = _dim(dim, x.ndim, "take_along_dim")
    if idx.ndim != x.ndim:
        raise ShapeError(f"take_along_dim: indices must have the input's {x.ndim} dims, got shape {tuple(idx.shape)}")
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"take_along_dim: indices must hold integers, got {idx.dtype}")
    # Checked on the host only: on a device the check would wait for the GPU in every loss that picks
    # by target (nll_loss), and PyTorch itself checks there with a device-side assert
    if idx.size and type(idx) is np.ndarray:
        lo, hi = _index_range(idx)
        if lo < -x.shape[d] or hi >= x.shape[d]:
            raise OutOfRangeError(
                f"take_along_dim: index {hi if hi >= x.shape[d] else lo} is out of bounds for dim {d} of size {x.shape[d]}"
            )
    try:
        shape = list(
            np.broadcast_shapes(
                tuple(1 if i == d else s for i, s in enumerate(x.shape)),
                tuple(1 if i == d else s for i, s in enumerate(idx.shape)),
            )
        )
    except ValueError:
        raise ShapeError(
            f"take_along_dim: input of shape {tuple(x.shape)} and indices of shape {tuple(idx.shape)} do not broadcast "
            f"outside dim {d}"
        ) from None
    idx = np.broadcast_to(idx, shape[:d] + [idx.shape[d]] + shape[d + 1 :])
    x = broadcast_to(x, shape[:d] + [x.shape[d]] + shape[d + 1 :])
    return _take_along(x, idx, d)


def nonzero(x: Any, as_tuple: bool = False) -> Any:
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or a tuple of index tensors."""
    x_array = _lift(x).array
    if x_array.ndim == 0:  # torch reads a 0-d tensor as one element with no axes to index
        hits = np.nonzero(x_array.reshape(1))[0]
        if as_tuple:
            return (wrap_array(hits.astype(np.int64)),)
        return wrap_array(namespace_of(x_array).zeros((hits.shape[0], 0), np.int64))
    idx = np.nonzero(x_array)
    if as_tuple:
        return tuple(wrap_array(i.astype(np.int64)) for i in idx)
    # (ndim, n) in order, handed out transposed: torch's (n, ndim) result has strides (1, n)
    return wrap_array(np.stack(idx, axis=0).astype(np.int64).T)


def argwhere(x: Any) -> Tensor:
    return nonzero(x)


def select(x: Any, dim: int, index: int) -> Tensor:
    """The slice ``index`` along ``dim`` (that dim removed)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "select")
    return getitem(x, (slice(None),) * d + (int(index),))


def index_add(x: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
    """A copy of ``x`` with the slices of ``source`` added at ``index`` along ``dim`` (repeats add up)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_add")
    idx = _slice_index("index_add", index, x, d)
    src = _lift(source, x)
    _check_source("index_add", x, d, idx.shape[0], src)
    if x.ndim == 0:  # one slice: x's only element
        return reshape(index_add(reshape(x, (1,)), 0, idx, reshape(src, (1,)), alpha=alpha), ())
    if alpha != 1:
        src = mul(src, alpha)
    full: Any = (slice(None),) * d + (idx,)
    out = x.array.copy()
    if d == 0 and x.ndim > 1 and type(out) is np.ndarray and type(idx) is np.ndarray:  # whole rows
        _rows_at(np.add, out, idx, src.array)
        return record_op(out, (x, src), _scatter_add_into_vjp, full)
    grid = _scatter_grid(full, x.shape) if type(out) is np.ndarray and src.array.size >= _FLAT_AT_MIN else None
    if grid is not None:  # one flat index: NumPy's fast path, the same sums
        _at(np.add, out, grid, src.array, _flat_index(grid, x.shape))
    else:
        np.add.at(out, full, src.array)
    return record_op(out, (x, src), _scatter_add_into_vjp, full)


def index_copy(x: Any, dim: int, index: Any, source: Any) -> Tensor:
    """A copy of ``x`` with the slices of ``source`` written at ``index`` along ``dim``."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_copy")
    idx = _slice_index("index_copy", index, x, d)
    src = _lift(source, x)
    _check_source("index_copy", x, d, idx.shape[0], src)
    if x.ndim == 0:
        return reshape(index_copy(reshape(x, (1,)), 0, idx, reshape(src, (1,))), ())
    return index_put(x, (slice(None),) * d + (idx,), src)


def masked_select(x: Any, mask: Any) -> Tensor:
    """The elements where ``mask`` (broadcast to x's shape) is true, as a 1-D tensor."""
    x = _lift(x)
    m = _mask_array(mask, x, "masked_select")
    if m.shape != x.shape:  # torch broadcasts both ways: the result has the broadcast shape's elements
        shape = _broadcast_mask_shape(m, x, "masked_select")
        x, m = broadcast_to(x, shape), np.broadcast_to(m, shape)
    if m.ndim == 0:  # NumPy has no nonzero of a 0-d array: one element, as torch's 1-d result
        x, m = reshape(x, (1,)), m.reshape(1)
    return getitem(x, np.nonzero(m))


def _broadcast_mask_shape(m: Any, x: Tensor, op: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(m.shape, x.shape))
    except ValueError:
        raise ShapeError(
            f"{op}: mask of shape {tuple(m.shape)} does not broadcast with the tensor's shape {tuple(x.shape)}"
        ) from None


def _mask_array(mask: Any, x: Tensor, op: str) -> Any:
    """A mask (tensor, array or host data) as a boolean array on ``x``'s device."""
    _check_mask(mask, op)
    return like(_index_array(mask), x.array).astype(bool, copy=False)


def masked_scatter(x: Any, mask: Any, source: Any) -> Tensor:
    """``x`` with the elements where ``mask`` is true replaced, in order, by the first ones of ``source``."""
    x = _lift(x)
    m = _mask_array(mask, x, "masked_scatter")
    if m.shape != x.shape:
        if _broadcast_mask_shape(m, x, "masked_scatter") != x.shape:
            raise ShapeError(
                f"masked_scatter: mask of shape {tuple(m.shape)} does not broadcast to the tensor's shape {tuple(x.shape)}"
            )
        m = np.broadcast_to(m, x.shape)
    if x.ndim == 0:  # torch: a 0-d tensor is one element (nonzero has no 0-d form)
        return reshape(masked_scatter(reshape(x, (1,)), m.reshape(1), source), ())
    count = int(to_host(m.sum()))  # the result's length is a host number (one copy from a device)
    src = reshape(_lift(source, x), (-1,))
    _refuse_complex_into_real("masked_scatter", x, src)
    if isinstance(source, Tensor) and source.dtype != x.dtype:  # torch's check: no silent cast of the source
        raise DTypeError(
            f"masked_scatter: expected self and source to have same dtypes but got {x.dtype} and {source.dtype}"
        )
    return index_put(x, np.nonzero(m), getitem(src, slice(0, count)))


def put(x: Any, index: Any, source: Any, accumulate: bool = False) -> Tensor:
    """``x`` (seen flat) with ``source`` written (or added) at the flat ``index``."""
    x = _lift(x)
    flat = reshape(x, (-1,))
    idx = _slice_index("put", _index_array(index).reshape(-1), flat, 0, negative_ok=True)
    if isinstance(source, Tensor) and source.dtype != x.dtype:  # torch's check, for put and put_ alike
        raise ArgumentTypeError(
            f"put_(): self and source expected to have the same dtype, but got self.dtype = {x.dtype} and "
            f"source.dtype = {source.dtype}"
        )
    src = reshape(_lift(source, x), (-1,))
    if src.shape != idx.shape:
        raise ShapeError(f"put: source and index must have as many elements, got {src.shape[0]} and {idx.shape[0]}")
    idx = idx % max(flat.shape[0], 1)  # torch wraps a negative flat index
    out = index_add(flat, 0, idx, src) if accumulate else index_put(flat, idx, src)
    return reshape(out, x.shape)


def index_put_op(x: Any, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    """torch's ``index_put``: ``x`` with ``values`` at the tuple of index tensors ``indices``."""
    x = _lift(x)
    for k, item in enumerate(indices):
        if item is None:  # torch takes index tensors only here (None means a new dim in x[...] alone)
            raise ArgumentTypeError(f"index_put: expected a tensor as element {k} of indices, got None")
    idx = tuple(like(_index_array(i), x.array) for i in indices)
    _refuse_complex_into_real("index_put", x, _lift(values, x))
    if not accumulate:
        return index_put(x, idx, values)
    v = _lift(values, x)
    out = x.array.copy()
    grid = _scatter_grid(idx, x.shape) if type(out) is np.ndarray else None
    if grid is not None and any(g.size and g.max() >= n for g, n in zip(grid, x.shape)):
        grid = None  # out of range: NumPy's own path raises
    if grid is None:
        try:
            values_in_place = np.broadcast_to(v.array, out[idx].shape)
        except ValueError:
            raise ShapeError(
                f"index_put: shape mismatch: value tensor of shape {tuple(v.shape)} cannot be broadcast to indexing "
                f"result of shape {tuple(out[idx].shape)}"
            ) from None
        np.add.at(out, idx, values_in_place)
    else:  # index_add's paths (np.add.at on a tuple of index arrays is 5-30x slower), the same sums
        values_at = np.broadcast_to(v.array, np.broadcast_shapes(*(g.shape for g in grid)))
        if len(idx) == 1 and x.ndim > 1 and idx[0].ndim == 1:  # whole rows
            _rows_at(np.add, out, idx[0], values_at)
        else:
            _at(np.add, out, grid, values_at, _flat_index(grid, x.shape))
    return record_op(out, (x, v), _scatter_add_into_vjp, idx)
