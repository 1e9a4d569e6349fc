"""The gradient of an ``Embedding(sparse=True)`` table kept as the rows looked up and their values.

PyTorch's sparse embedding gives a sparse COO gradient, and its optimizers touch only the rows in
it, so a training step costs what the batch looks up, not what the table holds. downslope has no
sparse tensors, so the backward walk keeps such a gradient as a :class:`RowGrad` (row indices and
one value row per index, repeats allowed, as PyTorch's uncoalesced COO) while only lookups add
into it. A leaf's ``.grad`` then holds a :class:`RowGradTensor`: a Tensor whose dense array is
made the first time anything reads it (``p.grad.array``, any op on it, an optimizer without a
rows path), so that user code sees the dense gradient it always saw. ``SparseAdam``, plain
``SGD``, ``Adagrad`` and gradient clipping read the rows and values directly (:func:`rows_of`)
while the array has not been made.

Anything else that adds into the gradient (the weight also used densely: weight tying) turns it
dense at that moment: the walk adds the rows into the dense sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .tensor import Tensor

_new_tuple = tuple.__new__  # Size(...) without its per-item checks: a shape is already ints

__all__ = ["RowGrad", "RowGradTensor", "rows_of", "zero_rows_"]


class RowGrad:
    """A table's gradient as (rows, values) pieces: row ``rows[k][i]`` of the table receives
    ``values[k][i]``; repeated rows add. ``shape`` and ``dtype`` are the dense gradient's.

    Example:
        >>> import numpy as np
        >>> g = RowGrad((3, 2), np.float32, [np.array([2, 0, 2])], [np.ones((3, 2), np.float32)])
        >>> g.dense().tolist()
        [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
    """

    __slots__ = ("shape", "dtype", "rows", "values", "unique")
    # ndarray + RowGrad: NumPy steps aside, so Python calls __radd__ (the weight used elsewhere too)
    __array_ufunc__ = None

    def __init__(self, shape: tuple[int, ...], dtype: Any, rows: list[Any], values: list[Any]) -> None:
        self.shape, self.dtype, self.rows, self.values = tuple(shape), np.dtype(dtype), rows, values
        self.unique = False  # True once coalesced(): one piece, rows sorted and distinct

    def coalesced(self) -> tuple[Any, Any]:
        """(sorted distinct rows, their summed values), as PyTorch's ``coalesce()``. The pieces are
        replaced by that pair, so a second call costs nothing."""
        if self.unique:
            return self.rows[0], self.values[0]
        if not self.rows:  # zeroed in place (zero_grad(set_to_none=False)): no rows
            self.rows, self.values = [np.empty(0, np.int64)], [np.empty((0, *self.shape[1:]), self.dtype)]
            self.unique = True
            return self.rows[0], self.values[0]
        rows = self.rows[0] if len(self.rows) == 1 else np.concatenate(self.rows)
        values = self.values[0] if len(self.values) == 1 else np.concatenate(self.values)
        values = values.astype(self.dtype, copy=False)
        order = np.argsort(rows, kind="stable")  # stable: repeats add in the order they were looked up
        rows = rows[order]
        values = values[order]
        if rows.size > 1:
            first = np.empty(rows.size, bool)
            first[0] = True
            np.not_equal(rows[1:], rows[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            if starts.size < rows.size:
                rows, values = rows[starts], _sum_repeats(values, first, starts)
        self.rows, self.values, self.unique = [rows], [values], True
        return rows, values

    def add_into(self, out: Any) -> None:
        """Add these rows into the dense array ``out`` in place."""
        rows, values = self.coalesced()
        out[rows] += values.astype(out.dtype, copy=False)  # distinct rows: a plain fancy add is exact

    def dense(self) -> Any:
        """The dense gradient (a fresh array)."""
        out = np.zeros(self.shape, self.dtype)
        self.add_into(out)
        return out

    def astype(self, dtype: Any) -> RowGrad:
        """The same rows, their values read as ``dtype`` (cast when coalesced)."""
        return RowGrad(self.shape, dtype, self.rows, self.values)

    def scale_(self, factor: Any) -> None:
        """Multiply the values in place (gradient clipping)."""
        _, values = self.coalesced()
        values *= np.asarray(factor).astype(values.dtype)  # host: a 0-d host array (the rows live on the host)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, RowGrad):
            dtype = np.result_type(self.dtype, other.dtype)
            return RowGrad(self.shape, dtype, self.rows + other.rows, self.values + other.values)
        out = np.array(np.broadcast_to(other, self.shape), dtype=np.result_type(self.dtype, other.dtype))
        self.add_into(out)
        return out

    __radd__ = __add__


def _sum_repeats(values: Any, first: Any, starts: Any) -> Any:
    """The sums of the runs of ``values`` (rows) that begin where ``first`` is True (at ``starts``),
    each run added in order. np.add.reduceat and np.add.at cost microseconds per row; here the
    k-th repeats of all runs are added at once (distinct targets: a plain fancy add), for the
    first few k, and np.add.at (which adds in order) takes the rare longer runs."""
    run = np.cumsum(first) - 1
    rank = np.arange(first.size) - starts[run]
    out = values[starts]
    later = np.flatnonzero(rank)
    for k in range(1, 5):
        at = later[rank[later] == k]
        if at.size == 0:
            return out
        out[run[at]] += values[at]
    rest = later[rank[later] > 4]
    np.add.at(out, run[rest], values[rest])
    return out


_ARRAY = Tensor.__dict__["array"]  # Tensor's slot, read and written under RowGradTensor's property


class RowGradTensor(Tensor):
    """A leaf's ``.grad`` held as a :class:`RowGrad` until something reads its array: then the dense
    gradient is made once and the tensor is an ordinary dense gradient from there on. ``shape``,
    ``dtype`` and ``ndim`` answer without making it."""

    __slots__ = ("_rows",)
    _rows: RowGrad | None

    @property
    def array(self) -> Any:
        note = self._rows
        if note is not None:
            self._rows = None
            _ARRAY.__set__(self, note.dense())
        return _ARRAY.__get__(self, RowGradTensor)

    @array.setter
    def array(self, value: Any) -> None:
        self._rows = None
        _ARRAY.__set__(self, value)

    @property
    def shape(self) -> Any:
        return _new_tuple(backend.Size, self._rows.shape if self._rows is not None else self.array.shape)

    @property
    def dtype(self) -> Any:
        return self._rows.dtype if self._rows is not None else self.array.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


def _row_grad_tensor(note: RowGrad) -> RowGradTensor:
    t = RowGradTensor.__new__(RowGradTensor)
    t._rows = note
    t._grad = None
    t._requires_grad = False
    t._parents = ()
    t._vjp = None
    t._saved = None
    t._needs = None
    t._retains_grad = False
    t._seq = 0
    t._vc = None
    return t


def rows_of(grad: Any) -> RowGrad | None:
    """The rows+values form of the gradient tensor ``grad``, or None once (or unless) it is dense.

    Example:
        >>> import downslope as ds
        >>> emb = ds.nn.Embedding(4, 2, sparse=True)
        >>> emb(ds.tensor([3, 1, 3])).sum().backward()
        >>> rows_of(emb.weight.grad).coalesced()[0].tolist()
        [1, 3]
    """
    return grad._rows if type(grad) is RowGradTensor else None


def zero_rows_(grad: Any) -> bool:
    """``zero_grad(set_to_none=False)`` of a gradient still held as rows: it keeps no row, as
    PyTorch's ``zero_()`` of a sparse gradient (no table of zeros made). False, and nothing done,
    for any other gradient."""
    note = rows_of(grad)
    if note is None or grad.requires_grad:
        return False
    grad._rows = RowGrad(note.shape, note.dtype, [], [])
    return True


def accumulate(node: Tensor, note: RowGrad, wrap: Any) -> None:
    """The backward walk's accumulation of ``note`` into the leaf ``node``'s ``.grad``: kept as rows
    while the gradient is None or rows itself, added into the dense array otherwise."""
    if note.dtype != node.array.dtype:
        note = RowGrad(note.shape, node.array.dtype, note.rows, note.values)
    existing = node._grad
    if existing is None:
        node._grad = _row_grad_tensor(note)
        return
    held = rows_of(existing)
    if held is not None and isinstance(existing, RowGradTensor) and not existing.requires_grad:
        existing._rows = held + note  # gradient accumulation: a second backward's rows join the first's
        return
    if existing.requires_grad or not existing.array.flags.writeable:
        node._grad = wrap(note + existing.array)
    else:
        note.add_into(existing.array)
