"""Variable-length sequences for the recurrent layers (PyTorch's ``torch.nn.utils.rnn``).

A batch of sequences of different lengths is padded to one tensor; a :class:`PackedSequence`
holds the steps packed back to back, as PyTorch does: ``data`` (the first step of every sequence,
longest sequences first, then the second step of those that have one, ...) and ``batch_sizes``
(how many sequences run at each step), so RNN, LSTM and GRU stop updating each sequence's state
after its last element (and their reverse direction starts at it). It is PyTorch's named tuple
``(data, batch_sizes, sorted_indices, unsorted_indices)``: code that works on ``packed.data`` and
rebuilds the batch with ``PackedSequence(f(packed.data), packed.batch_sizes, ...)`` runs unchanged.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
    >>> batch = pad_sequence([ds.ones(3, 2), ds.ones(1, 2)], batch_first=True)
    >>> packed = pack_padded_sequence(batch, [3, 1], batch_first=True)
    >>> out, h = nn.GRU(2, 4, batch_first=True)(packed)
    >>> padded, lengths = pad_packed_sequence(out, batch_first=True)
    >>> padded.shape, lengths.tolist()
    (downslope.Size([2, 3, 4]), [3, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ... import backend, ops
from ...devices import to_host
from ...errors import ArgumentError, ArgumentTypeError, InvalidValueError, ShapeError
from ...tensor import Tensor, wrap_array
from .._arrays import array_like, array_of, is_host

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence", "invert_permutation"]  # fmt: skip


class _PackedFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedFields):
    """PyTorch's packed batch: the named tuple ``(data, batch_sizes, sorted_indices, unsorted_indices)``.

    ``data`` (total steps, *) holds the steps of all sequences back to back, time step by time
    step, longest sequences first; ``batch_sizes`` (a 1-D int64 CPU tensor) says how many sequences
    run at each step. ``sorted_indices`` (the batch order longest first) and ``unsorted_indices``
    (its inverse) are set when the batch was packed with ``enforce_sorted=False``, and None
    otherwise; ``unsorted_indices`` is computed from ``sorted_indices`` when not given. As in
    PyTorch it is usually built by :func:`pack_padded_sequence` or :func:`pack_sequence`, or rebuilt
    from a packed batch's own ``batch_sizes`` (and indices) after working on its ``data``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import PackedSequence, pack_sequence
        >>> p = pack_sequence([ds.tensor([1, 2, 3]), ds.tensor([4, 5])])
        >>> p.data.tolist(), p.batch_sizes.tolist()
        ([1, 4, 2, 5, 3], [2, 2, 1])
        >>> q = PackedSequence(p.data * 10, p.batch_sizes)
        >>> q.data.tolist(), isinstance(q, tuple)
        ([10, 40, 20, 50, 30], True)
    """

    def __new__(
        cls,
        data: Any,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> PackedSequence:
        if batch_sizes is None:  # PyTorch also takes PackedSequence((data, batch_sizes), sorted_indices)
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise ArgumentTypeError(
                    "PackedSequence: expected (data, batch_sizes[, sorted_indices, unsorted_indices]) or "
                    f"((data, batch_sizes), sorted_indices), got only {type(data).__name__}"
                )
            data, batch_sizes = data
        _check_fields(data, batch_sizes, sorted_indices)
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data: Tensor) -> PackedSequence:
        """This batch with ``data`` in place of its own (itself when unchanged); the indices follow the
        data's device, ``batch_sizes`` stays on the host, as in PyTorch."""
        if data is self.data:
            return self
        moved = [None if t is None else t.to(data.device) for t in (self.sorted_indices, self.unsorted_indices)]
        return type(self)(data, self.batch_sizes, moved[0], moved[1])

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(*args, **kwargs)`` (a dtype and/or a device, as :meth:`Tensor.to`); the indices
        follow to the device, ``batch_sizes`` stays on the host. Itself when nothing changes.

        Example:
            >>> import downslope as ds
            >>> from downslope.nn.utils.rnn import pack_sequence
            >>> pack_sequence([ds.ones(2), ds.ones(1)]).to(ds.float64).data.dtype
            dtype('float64')
        """
        return self._with_data(self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        """The batch in host memory (itself when it is already there)."""
        return self._with_data(self.data.cpu())

    def cuda(self, device: Any = None, non_blocking: bool = False) -> PackedSequence:
        """The batch on a CUDA GPU (CuPy), as :meth:`Tensor.cuda`: a clear error without one."""
        return self._with_data(self.data.cuda(device, non_blocking))

    def pin_memory(self) -> PackedSequence:
        """Itself, as :meth:`Tensor.pin_memory`."""
        return self._with_data(self.data.pin_memory())

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a CUDA GPU."""
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        """Whether ``data`` is in pinned memory (never, as :meth:`Tensor.is_pinned`)."""
        return self.data.is_pinned()

    # The dtype conversions apply to ``data`` only (PyTorch's): the sizes and indices stay int64.
    def double(self) -> PackedSequence:
        return self.to(dtype=backend.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=backend.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=backend.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=backend.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=backend.int32)

    def short(self) -> PackedSequence:
        return self.to(dtype=np.int16)

    def char(self) -> PackedSequence:
        return self.to(dtype=np.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=np.uint8)


def _check_fields(data: Any, batch_sizes: Any, sorted_indices: Any) -> None:
    """Refuse fields that cannot describe a packed batch, with what was expected (PyTorch checks only
    the device of ``batch_sizes`` here and fails later, or reads past the data)."""
    if not isinstance(data, Tensor) or data.ndim < 1:
        shown = f"a {data.ndim}-d Tensor" if isinstance(data, Tensor) else type(data).__name__
        raise ArgumentTypeError(f"PackedSequence: data must be a Tensor of shape (total steps, *), got {shown}")
    if not isinstance(batch_sizes, Tensor):
        raise ArgumentTypeError(
            f"PackedSequence: batch_sizes must be a 1-D int64 CPU tensor (a packed batch's own batch_sizes), "
            f"got {type(batch_sizes).__name__}; a padded batch and its lengths go to pack_padded_sequence"
        )
    if not is_host(batch_sizes.array):
        raise ArgumentError(
            "batch_sizes should always be on CPU. Instances of PackedSequence should never be created manually. "
            "They should be instantiated by functions like pack_sequence and pack_padded_sequences in nn.utils.rnn."
        )
    if batch_sizes.ndim != 1 or batch_sizes.dtype != np.int64:
        raise ArgumentTypeError(
            f"PackedSequence: batch_sizes must be a 1-D int64 CPU tensor, got a {batch_sizes.ndim}-d "
            f"{batch_sizes.dtype} tensor"
        )
    sizes = batch_sizes.array
    if sizes.size and (sizes.min() < 1 or np.any(np.diff(sizes) > 0)):  # host: batch_sizes is a CPU tensor
        shown = sizes.tolist()  # host: batch_sizes is a CPU tensor
        raise ArgumentError(f"PackedSequence: batch_sizes must be positive and non-increasing, got {shown}")
    if int(sizes.sum()) != data.shape[0]:
        raise ShapeError(
            f"PackedSequence: batch_sizes add up to {int(sizes.sum())} steps, but data has {data.shape[0]} "
            f"(shape {tuple(data.shape)}); a padded batch and its lengths go to pack_padded_sequence"
        )
    if sorted_indices is not None:
        batch = int(sizes[0]) if sizes.size else 0
        if not isinstance(sorted_indices, Tensor) or sorted_indices.shape != (batch,):
            shown = (
                str(tuple(sorted_indices.shape))
                if isinstance(sorted_indices, Tensor)
                else type(sorted_indices).__name__
            )
            raise ShapeError(
                f"PackedSequence: sorted_indices must be a 1-D tensor of the {batch} batch positions, got {shown}"
            )


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of ``permutation`` (a 1-D tensor of indices), or None for None: what turns a
    :class:`PackedSequence`'s ``sorted_indices`` into its ``unsorted_indices``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import invert_permutation
        >>> invert_permutation(ds.tensor([2, 0, 1])).tolist()
        [1, 2, 0]
    """
    if permutation is None:
        return None
    if not isinstance(permutation, Tensor) or permutation.ndim != 1 or permutation.array.dtype.kind not in "iu":
        shown = getattr(permutation, "shape", type(permutation).__name__)
        raise ArgumentTypeError(f"invert_permutation: expected a 1-D tensor of integer indices, got {shown}")
    return _invert_permutation(permutation)


def _invert_permutation(permutation: Tensor) -> Tensor:
    """The inverse permutation, on ``permutation``'s device."""
    return ops.argsort(permutation, stable=True)


def _layout(batch_sizes: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host arrays: the time step and the (sorted) batch position of every row of ``data``, and the
    sorted lengths (longest first)."""
    sizes = batch_sizes.array.astype(np.int64)  # host: batch_sizes is a CPU tensor
    steps = np.arange(sizes.shape[0])  # host: from the host batch_sizes
    times = np.repeat(steps, sizes)  # host: from the host batch_sizes
    rows = np.arange(times.shape[0]) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # host: from batch_sizes
    batch = int(sizes[0]) if sizes.size else 0
    lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)  # host: from the host batch_sizes
    return times, rows, lengths.astype(np.int64)


def _padded_from_packed(
    data: Tensor, batch_sizes: Tensor, total_length: int | None = None, padding_value: Any = 0.0
) -> Tensor:
    """(T, B, *) time-major, in the sorted batch order: ``data``'s rows in place, ``padding_value``
    elsewhere (differentiable in ``data``)."""
    times, rows, lengths = _layout(batch_sizes)
    steps = batch_sizes.shape[0] if total_length is None else total_length
    batch = lengths.shape[0]
    # Every (t, b) reads one row of data with one padding row appended; absent steps read that row.
    index = np.full((steps, batch), data.shape[0], dtype=np.int64)  # host: from the host batch_sizes
    index[times, rows] = np.arange(data.shape[0])  # host: from the host batch_sizes
    widths = [0, 0] * (data.ndim - 1) + [0, 1]
    extended = ops.pad(data, tuple(widths), value=padding_value)
    return extended[array_like(index, data.array)]


def _packed_from_padded(padded: Tensor, batch_sizes: Tensor) -> Tensor:
    """The rows of ``data`` read from the time-major, sorted (T, B, *) ``padded``."""
    times, rows, _ = _layout(batch_sizes)
    index = array_like(np.stack([times, rows]), padded.array)  # moved to the values' device once
    return padded[index[0], index[1]]


def _lengths(lengths: Any, batch: int) -> np.ndarray:
    arr = to_host(array_of(lengths))  # host: lengths are host data (a CPU tensor in PyTorch)
    if arr.ndim != 1 or arr.shape[0] != batch or arr.dtype.kind not in "iuf":
        shown = arr.tolist()  # host: read on the host above
        raise ShapeError(f"pack_padded_sequence: expected {batch} lengths (one per sequence), got {shown}")
    return arr.astype(np.int64)


def pad_sequence(
    sequences: Sequence[Tensor], batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"
) -> Tensor:
    """Stack tensors of shape (L_i, *) into (L_max, N, *) (or (N, L_max, *)), padding with ``padding_value``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pad_sequence
        >>> pad_sequence([ds.tensor([1, 2, 3]), ds.tensor([4])], batch_first=True)
        tensor([[1, 2, 3],
                [4, 0, 0]])
    """
    if not sequences or not all(isinstance(s, Tensor) for s in sequences):
        raise ArgumentTypeError("pad_sequence: expected a non-empty list of Tensors")
    if padding_side not in ("right", "left"):
        raise ArgumentError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    _check_trailing_dims(sequences)
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        extra = longest - s.shape[0]
        widths = [0, 0] * (s.ndim - 1) + ([0, extra] if padding_side == "right" else [extra, 0])
        rows.append(ops.pad(s, tuple(widths), value=padding_value) if extra else s)
    return ops.stack(rows, 0 if batch_first else 1)


def _check_trailing_dims(sequences: Sequence[Tensor]) -> None:
    """Refuse sequences whose dims after the first differ, before any padding (stacking the padded
    tensors would report padded shapes under stack's name)."""
    first = sequences[0]
    for i, s in enumerate(sequences):
        if s.ndim == 0:
            raise ShapeError(f"pad_sequence: sequence {i} is a 0-d tensor; each sequence needs a time dim first")
        if s.shape[1:] == first.shape[1:]:
            continue
        if s.ndim != first.ndim:
            raise ShapeError(
                f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, sequence 0 has shape {tuple(first.shape)}: "
                f"all sequences need the same number of dims ({first.ndim}) and the same sizes after the first"
            )
        dim = next(d for d in range(1, s.ndim) if s.shape[d] != first.shape[d])
        raise ShapeError(
            f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, sequence 0 has shape {tuple(first.shape)}: "
            f"the size of tensor a ({first.shape[dim]}) must match the size of tensor b ({s.shape[dim]}) at "
            f"non-singleton dimension {dim} (all sizes after the first must agree)"
        )


def pack_padded_sequence(
    input: Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack the padded batch ``input`` (L, N, *) (or (N, L, *)) of sequences of the given ``lengths``.

    ``enforce_sorted`` (PyTorch's default) requires the lengths in decreasing order; with False the
    batch is sorted longest first (equal lengths in torch's order, see ``ops.sort``) and the order kept
    in ``sorted_indices``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pack_padded_sequence
        >>> p = pack_padded_sequence(ds.tensor([[1, 2, 0], [3, 4, 5]]), [2, 3], batch_first=True,
        ...                          enforce_sorted=False)
        >>> p.data.tolist(), p.batch_sizes.tolist(), p.sorted_indices.tolist()
        ([3, 1, 4, 2, 5], [2, 2, 1], [1, 0])
    """
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ArgumentTypeError("pack_padded_sequence: expected a padded Tensor with a time and a batch dim")
    x = ops.transpose(input, 0, 1) if batch_first else input
    n = _lengths(lengths, x.shape[1])
    if n.size and (n.min() < 1 or n.max() > x.shape[0]):
        shown = n.tolist()  # host: host lengths
        raise InvalidValueError(f"pack_padded_sequence: lengths must lie in [1, {x.shape[0]}], got {shown}")
    sorted_indices = None
    if enforce_sorted:
        if np.any(np.diff(n) > 0):  # host: host lengths
            shown = n.tolist()  # host: host lengths
            raise InvalidValueError(
                f"pack_padded_sequence: lengths {shown} are not sorted in decreasing order; sort the batch "
                "or pass enforce_sorted=False"
            )
    else:
        # torch's sort(lengths, descending=True): equal lengths in its CPU order (index order for up to
        # 16 sequences, libstdc++'s std::sort order past that), which ops.argsort reproduces
        order = ops.argsort(wrap_array(n), descending=True).array  # host: from the host lengths
        n = n[order]
        sorted_indices = wrap_array(array_like(order.astype(np.int64), x.array))  # on the input's device
        x = x[:, sorted_indices.array]
    steps = np.arange(int(n.max()) if n.size else 0)  # host: from the host lengths
    batch_sizes = wrap_array((n[None, :] > steps[:, None]).sum(axis=1).astype(np.int64))  # host: a CPU tensor
    return PackedSequence(_packed_from_padded(x, batch_sizes), batch_sizes, sorted_indices)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The padded tensor (L, N, *) (or (N, L, *)) and the lengths (an int64 CPU tensor) of a
    :class:`PackedSequence`, in the batch's own order (as before ``enforce_sorted=False`` sorted it).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pack_sequence, pad_packed_sequence
        >>> padded, lengths = pad_packed_sequence(pack_sequence([ds.tensor([1, 2]), ds.tensor([3])]))
        >>> padded.tolist(), lengths.tolist()
        ([[1, 3], [2, 0]], [2, 1])
    """
    if not isinstance(sequence, PackedSequence):
        raise ArgumentTypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    longest = sequence.batch_sizes.shape[0]
    if total_length is not None and total_length < longest:
        raise ArgumentError(
            "Expected total_length to be at least the length of the longest sequence in input, but got "
            f"total_length={total_length} and max sequence length being {longest}"
        )
    x = _padded_from_packed(sequence.data, sequence.batch_sizes, total_length, padding_value)
    _, _, lengths = _layout(sequence.batch_sizes)
    if sequence.unsorted_indices is not None:
        unsorted = sequence.unsorted_indices
        x = x[:, array_like(unsorted, x.array)]
        lengths = lengths[to_host(unsorted.array)]  # host: the lengths are a CPU tensor, as in PyTorch
    if batch_first:
        x = ops.transpose(x, 0, 1)
    return x, wrap_array(lengths)  # host int64 lengths, a CPU tensor as in PyTorch


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (pad them, then :func:`pack_padded_sequence`).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pack_sequence
        >>> pack_sequence([ds.tensor([1]), ds.tensor([2, 3])], enforce_sorted=False).data.tolist()
        [2, 1, 3]
    """
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of :func:`pack_sequence`: the list of (L_i, *) tensors.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pack_sequence, unpack_sequence
        >>> [t.shape for t in unpack_sequence(pack_sequence([ds.ones(3, 2), ds.ones(1, 2)]))]
        [downslope.Size([3, 2]), downslope.Size([1, 2])]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[i, : int(n)] for i, n in enumerate(lengths.tolist())]  # host: a CPU tensor


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """The inverse of :func:`pad_sequence`: a list of (L_i, *) tensors."""
    x = padded_sequences if batch_first else ops.transpose(padded_sequences, 0, 1)
    n = _lengths(lengths, x.shape[0])
    return [x[i, : int(n[i])] for i in range(x.shape[0])]
