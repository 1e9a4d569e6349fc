"""Variable-length sequences for the recurrent layers (PyTorch's ``torch.nn.utils.rnn``).

A batch of sequences of different lengths is padded to one tensor; a :class:`PackedSequence`
remembers the true lengths so that RNN, LSTM and GRU stop updating each sequence's state after its
last element (and their reverse direction starts at it). Unlike PyTorch, which stores the steps
packed back to back, a PackedSequence here keeps the padded, time-major tensor and the lengths;
``data`` and ``batch_sizes`` give PyTorch's packed layout when asked for.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
    >>> batch = pad_sequence([ds.ones(3, 2), ds.ones(1, 2)], batch_first=True)
    >>> packed = pack_padded_sequence(batch, [3, 1], batch_first=True)
    >>> out, h = nn.GRU(2, 4, batch_first=True)(packed)
    >>> padded, lengths = pad_packed_sequence(out, batch_first=True)
    >>> padded.shape, lengths.tolist()
    ((2, 3, 4), [3, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import ops
from ...devices import to_host
from ...errors import ArgumentError, ArgumentTypeError, ShapeError
from ...tensor import Tensor
from .._arrays import array_like, array_of

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence"]  # fmt: skip


class PackedSequence:
    """Sequences of different lengths: ``padded`` (L, N, *) time-major and ``lengths`` (N,) in batch order.

    ``data`` and ``batch_sizes`` are PyTorch's packed layout (longest sequences first). As in
    PyTorch, ``sorted_indices`` (the batch order longest first) and ``unsorted_indices`` (its inverse)
    are set when the batch was packed with ``enforce_sorted=False``, and None otherwise; the layers'
    outputs and final states come back in the batch's own order either way. The lengths live on the
    host, as in PyTorch (they decide how many steps run); the padded values stay on their device.
    """

    def __init__(self, padded: Tensor, lengths: np.ndarray, enforce_sorted: bool = True) -> None:
        self.padded = padded
        self.lengths = to_host(lengths).astype(np.int64)
        self.sorted_indices: Tensor | None = None
        self.unsorted_indices: Tensor | None = None
        if not enforce_sorted:
            order = np.argsort(-self.lengths, kind="stable")  # host: from the host lengths
            self.sorted_indices = Tensor(order.astype(np.int64))
            self.unsorted_indices = Tensor(np.argsort(order).astype(np.int64))

    @property
    def batch_sizes(self) -> Tensor:
        """How many sequences are still running at each time step."""
        steps = np.arange(self.padded.shape[0])  # host: with the host lengths (a CPU tensor, as in PyTorch)
        return Tensor((self.lengths[None, :] > steps[:, None]).sum(axis=1).astype(np.int64))

    @property
    def data(self) -> Tensor:
        """The steps of all sequences packed back to back, time step by time step, longest first."""
        order = np.argsort(-self.lengths, kind="stable")
        times, rows = [], []
        for t in range(self.padded.shape[0]):
            running = order[self.lengths[order] > t]
            times += [t] * len(running)
            rows += running.tolist()  # host: the lengths are host data
        index = np.array([times, rows], dtype=np.int64).reshape(2, -1)  # host: from the host lengths
        index = array_like(index, self.padded.array)  # moved to the values' device once
        return self.padded[index[0], index[1]]

    def step_mask(self, dtype: Any) -> np.ndarray:
        """(L, N, 1) with 1 where a sequence has an element at that step, on the padded values' device."""
        steps = np.arange(self.padded.shape[0])  # host: with the host lengths, then moved once
        return array_like((steps[:, None] < self.lengths[None, :]).astype(dtype)[..., None], self.padded.array)

    def __iter__(self) -> Any:
        # PyTorch's PackedSequence is a namedtuple (data, batch_sizes, sorted_indices, unsorted_indices).
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __repr__(self) -> str:
        return f"PackedSequence(lengths={self.lengths.tolist()}, padded shape {self.padded.shape})"  # host: lengths


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
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        extra = longest - s.shape[0]
        widths = [0, 0] * (s.ndim - 1) + ([0, extra] if padding_side == "right" else [extra, 0])
        rows.append(ops.pad(s, tuple(widths), value=padding_value) if extra else s)
    return ops.stack(rows, 0 if batch_first else 1)


def pack_padded_sequence(
    input: Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Mark the padded batch ``input`` (L, N, *) (or (N, L, *)) with the true ``lengths``.

    ``enforce_sorted`` (PyTorch's default) requires the lengths in decreasing order.
    """
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ArgumentTypeError("pack_padded_sequence: expected a padded Tensor with a time and a batch dim")
    x = ops.transpose(input, 0, 1) if batch_first else input
    n = _lengths(lengths, x.shape[1])
    if n.size and (n.min() < 1 or n.max() > x.shape[0]):
        shown = n.tolist()  # host: host lengths
        raise ArgumentError(f"pack_padded_sequence: lengths must lie in [1, {x.shape[0]}], got {shown}")
    if enforce_sorted and np.any(np.diff(n) > 0):
        shown = n.tolist()  # host: host lengths
        raise ArgumentError(
            f"pack_padded_sequence: lengths {shown} are not sorted in decreasing order; sort the batch "
            "or pass enforce_sorted=False"
        )
    return PackedSequence(x, n, enforce_sorted)


def pad_packed_sequence(
    sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0, total_length: int | None = None
) -> tuple[Tensor, Tensor]:
    """The padded tensor and the lengths (an int64 tensor) of a :class:`PackedSequence`."""
    if not isinstance(sequence, PackedSequence):
        raise ArgumentTypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    x = sequence.padded[: int(sequence.lengths.max())]
    mask = sequence.step_mask(x.dtype)[: x.shape[0]]  # (L, N, 1): one trailing dim for the features
    mask = mask.reshape(mask.shape[:2] + (1,) * (x.ndim - 2))  # sequences of plain values are (L, N)
    x = x * mask + (1.0 - mask) * padding_value if padding_value else x * mask
    if total_length is not None:
        if total_length < x.shape[0]:
            raise ArgumentError(f"pad_packed_sequence: total_length {total_length} is below the longest {x.shape[0]}")
        widths = [0, 0] * (x.ndim - 1) + [0, total_length - x.shape[0]]
        x = ops.pad(x, tuple(widths), value=padding_value)
    if batch_first:
        x = ops.transpose(x, 0, 1)
    return x, Tensor(sequence.lengths.copy())


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (pad, then mark their lengths)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of :func:`pack_sequence`: the list of (L_i, *) tensors.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils.rnn import pack_sequence, unpack_sequence
        >>> [t.shape for t in unpack_sequence(pack_sequence([ds.ones(3, 2), ds.ones(1, 2)]))]
        [(3, 2), (1, 2)]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[i, : int(n)] for i, n in enumerate(lengths.tolist())]  # host: the lengths are a host tensor


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """The inverse of :func:`pad_sequence`: a list of (L_i, *) tensors."""
    x = padded_sequences if batch_first else ops.transpose(padded_sequences, 0, 1)
    n = _lengths(lengths, x.shape[0])
    return [x[i, : int(n[i])] for i in range(x.shape[0])]
