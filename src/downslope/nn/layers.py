"""Basic layers: Linear, Dropout and Embedding.

Default initialization matches PyTorch, so a model built here starts from the same distribution
as the same model built there:

* ``Linear(in, out)``: weight and bias both ~ U(-1/sqrt(in), 1/sqrt(in)). (PyTorch writes this as
  ``kaiming_uniform_(weight, a=sqrt(5))``, whose bound gain * sqrt(3 / fan_in) with
  gain = sqrt(2 / (1 + 5)) is exactly 1/sqrt(in).) The bias is *not* zero: PyTorch's default.
* ``Embedding(n, d)``: weight ~ N(0, 1); the ``padding_idx`` row is zero.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NoReturn, TypeVar

import numpy as np

from .. import backend, jit_gate, ops
from .. import workspace as _workspace
from ..backend import namespace_of
from ..devices import device_of, to_device, to_host
from ..errors import (
    ArgumentAssertionError,
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    InvalidValueError,
    OutOfRangeError,
    ShapeError,
)
from ..graph import is_grad_enabled
from ..row_grads import RowGrad
from ..tensor import Tensor, empty, record_op, wrap_array
from . import _jit, init
from . import functional as F
from ._arrays import array_like, array_of, is_host
from .module import Module, Parameter

__all__ = ["Linear", "Dropout", "Embedding"]


def _positive_int(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ArgumentError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _size_int(value: Any, what: str, owner: str) -> int:
    """A size that may be 0, as torch allows for Linear (an empty weight; AdaptiveLogSoftmaxWithLoss's
    tail projections are ``Linear(n, 0)`` for a small n)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(f"{owner}: {what} must be a non-negative integer, got {value!r}")
    if value < 0:  # torch: a RuntimeError (a tensor of negative dimension)
        raise InvalidValueError(f"{owner}: {what} must be a non-negative integer, got {value!r}")
    return int(value)


class Linear(Module):
    """``y = x @ weight.T + bias``; input (..., in_features) -> output (..., out_features).

    weight: (out_features, in_features), bias: (out_features,). Both start ~ U(-k, k) with
    k = 1/sqrt(in_features), as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(3, 2)
        >>> layer(ds.randn(5, 3)).shape
        downslope.Size([5, 2])
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in_features = _size_int(in_features, "in_features", "Linear")
        self.out_features = _size_int(out_features, "out_features", "Linear")
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        self.weight = Parameter(empty((self.out_features, self.in_features), dtype=dt))
        if bias:
            self.bias: Parameter | None = Parameter(empty((self.out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw the weights from PyTorch's default distribution (see the module docstring)."""
        if self.weight.numel() == 0:  # torch's init leaves a zero-element tensor as it is, and says so
            warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=2)
        else:
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0  # torch's bound without inputs
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(input, Tensor):
            # The usual call, a (batch, in_features) tensor of the weight's dtype, goes straight to the
            # fused op; every other case gets the full checks and messages below (issue 7: per-op overhead).
            w, b, d = self.weight.array, self.bias, input.array
            if (
                d.ndim == 2
                and d.shape[1] == w.shape[1]
                and d.dtype == w.dtype
                and w.ndim == 2
                and (b is None or b.array.shape == w.shape[:1])
            ):
                return F._linear2d(input, self.weight, b)
            if (
                d.ndim > 2
                and type(d) is np.ndarray  # host: a reshape of a C-contiguous host array is a view
                and d.flags.c_contiguous
                and d.size
                and d.shape[-1] == w.shape[1]
                and d.dtype == w.dtype
                and d.dtype.kind == "f"
                and d.dtype != np.float16
                and w.ndim == 2
                and (b is None or b.array.shape == w.shape[:1])
                and not (
                    is_grad_enabled()
                    and (input.requires_grad or self.weight.requires_grad or (b is not None and b.requires_grad))
                )
            ):
                # (..., in_features) with nothing to record (inference, token by token generation):
                # F.linear's flatten, fused op and unflatten on the arrays alone, with the same GEMM
                # and bias add, so the values are the same, without two reshape nodes and its checks
                return F._linear_nd_no_grad(d, w, b)
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"Linear: expected a Tensor input, got {type(input).__name__}")
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): "
                f"expected input of shape (..., {self.in_features}), got {tuple(input.shape)}"
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability ``p`` while training, scaling the rest by 1/(1-p);
    do nothing in eval mode. Masks come from the library's seeded generator.

    Example:
        >>> import downslope as ds
        >>> drop = ds.nn.Dropout(0.5).eval()
        >>> drop(ds.ones(3))
        tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        F._check_probability(p, type(self).__name__)
        self.p = float(p)  # host: a Python number
        self.inplace = bool(inplace)  # host: a Python number (True: the input is written over, as torch)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class AlphaDropout(Dropout):
    """Dropout for SELU networks (see :func:`F.alpha_dropout`): keeps zero mean and unit variance.

    Example:
        >>> import downslope as ds
        >>> ds.nn.AlphaDropout(0.2).eval()(ds.ones(2))
        tensor([1., 1.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)  # torch's module ignores inplace here


class FeatureAlphaDropout(Dropout):
    """:class:`AlphaDropout` of whole channels."""

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)  # torch's module ignores inplace here


class Dropout1d(Dropout):
    """Zero whole channels of (N, C, L) or (C, L) input with probability ``p`` while training
    (scaling the rest by 1/(1-p)): neighbouring positions of a channel are dropped together.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Dropout1d(0.5).eval()(ds.ones(1, 2, 3)).shape
        downslope.Size([1, 2, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """Zero whole feature maps of (N, C, H, W) input with probability ``p`` while training.
    A 3-D input is read as (N, C, L), as PyTorch does.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Dropout2d(0.25).eval()(ds.ones(1, 2, 3, 3)).shape
        downslope.Size([1, 2, 3, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability ``p`` while training.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Dropout3d(0.25).eval()(ds.ones(2, 2, 2, 2)).shape
        downslope.Size([2, 2, 2, 2])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class Embedding(Module):
    """A lookup table: integer indices of any shape (...) -> vectors (..., embedding_dim).

    weight: (num_embeddings, embedding_dim) ~ N(0, 1). The row ``padding_idx`` (if given) starts
    at zero and never receives a gradient, as in PyTorch. ``max_norm`` renormalizes, in place, each
    looked-up row whose ``norm_type``-norm exceeds it; ``scale_grad_by_freq`` divides each row's
    gradient by how often its index occurs in the batch; ``_weight`` gives the table itself.
    ``sparse=True``: as PyTorch's sparse gradient, the gradient is kept as the rows looked up and
    their values (``row_grads.RowGrad``, no table of zeros) while only lookups add into it, and
    ``optim.SparseAdam``, plain ``optim.SGD`` and ``optim.Adagrad`` update only those rows (a row
    looked up whose gradient is exactly zero included). ``weight.grad`` reads as a dense tensor,
    made when first read; a dense contribution (the weight used elsewhere too) makes it dense. Each backward also
    notes on the weight (``weight.grad_rows``) which rows it looked up, so that SparseAdam still
    updates exactly those once the gradient is dense; clearing the gradient clears the note.

    Example:
        >>> import downslope as ds
        >>> emb = ds.nn.Embedding(10, 4, padding_idx=0)
        >>> emb(ds.tensor([[0, 3], [9, 1]])).shape
        downslope.Size([2, 2, 4])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ArgumentAssertionError(  # torch asserts it
                    f"Embedding: padding_idx {padding_idx} is out of range for num_embeddings={self.num_embeddings}"
                )
            padding_idx = padding_idx % self.num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(empty((self.num_embeddings, self.embedding_dim), dtype=backend.get_default_dtype()))
        if _weight is None:
            self.reset_parameters()
        else:
            _copy_table(self.weight, _weight, "Embedding")
        self.weight.requires_grad_(not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        """torch's helper (subclasses call it after their own initialization): the row ``padding_idx``
        set to zeros, as an in-place write outside the graph."""
        from ..autograd import no_grad

        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose table is a copy of the 2-D ``embeddings``; ``freeze`` stops its training.

        Example:
            >>> import downslope as ds
            >>> emb = ds.nn.Embedding.from_pretrained(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
            >>> emb(ds.tensor([1])), emb.weight.requires_grad
            (tensor([[3., 4.]]), False)
        """
        table, dtype = _pretrained_table(embeddings, "Embedding.from_pretrained")
        emb = cls(table.shape[0], table.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
        return _with_table(emb.to(dtype) if dtype is not None else emb, table, freeze, "Embedding.from_pretrained")

    def forward(self, input: Any) -> Tensor:
        return embedding(
            input, self.weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse
        )

    def extra_repr(self) -> str:
        # PyTorch's Embedding.extra_repr: only the fields away from their defaults
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            text += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            text += ", sparse=True"
        return text


def _check_index_dtype(idx: Any, fn: str) -> None:
    """torch's lookups take int64 or int32 indices only: uint8, int8, int16 (and bool, floats) are refused."""
    if idx.dtype not in (np.int64, np.int32):
        raise DTypeError(
            f"{fn}: expected integer indices of dtype int64 or int32 (torch's Long or Int), got dtype {idx.dtype} "
            "(convert with .long())"
        )


def embedding(
    input: Any,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``; the gradient is scattered back (repeats add)
    and the ``padding_idx`` row gets none. Indices are range-checked on the host only (on a GPU the
    check would wait for the device every step, and PyTorch's CUDA kernel asserts asynchronously).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.layers import embedding
        >>> embedding(ds.tensor([2, 0]), ds.tensor([[0.0], [1.0], [2.0]]))
        tensor([[2.],
                [0.]])
    """
    indices = input  # torch's parameter name (F.embedding(input=...))
    idx = array_like(indices, weight.array)
    _check_index_dtype(idx, "embedding")
    n = weight.shape[0]
    # On the host the rows are gathered by np.take, whose own bounds check refuses the indices past the
    # table (one pass over them fewer than min and max); it wraps negative ones, which are refused first.
    # Measured against the compiled gather (nn._jit_embedding; benchmarks/embedding.py --gate) at 8 to
    # 100K indices of 8 to 512 columns: 1 to 2 us slower per call below a few thousand indices, as fast
    # above, so no lookup pays back the ~2 s that importing numba and loading the kernel add to a
    # process's first call. max_norm renormalises the rows before the gather: its indices are checked
    # in full first.
    take = type(weight.array) is np.ndarray and type(idx) is np.ndarray and max_norm is None
    # The range check reads values: host arrays only (on a device it would wait for the GPU every step).
    if is_host(idx) and idx.size and ((idx.dtype.kind == "i" and idx.min() < 0) or (not take and idx.max() >= n)):
        _refuse_indices(idx, n, "embedding")
    if padding_idx is not None:
        padding_idx = padding_idx % n
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    counts = None
    if scale_grad_by_freq:  # how often each row is looked up in this batch (a scatter: no read-back on a device)
        counts = namespace_of(idx).zeros(n, dtype=weight.array.dtype)
        np.add.at(counts, idx.reshape(-1), 1)
    # sparse=True: the vjp gives rows + values and notes the rows on the weight (the dense path is unchanged)
    sparse_weight = weight if sparse and hasattr(weight, "__dict__") else None
    if take:
        try:
            looked_up = np.take(weight.array, idx, axis=0)  # host: the host lookup (device arrays index below)
        except IndexError:
            _refuse_indices(idx, n, "embedding")
    else:
        looked_up = weight.array[idx]
    return record_op(looked_up, (weight,), _embedding_vjp, (idx, padding_idx, counts, sparse_weight))


#: The fewest looked-up values (indices x columns) for which a process starts EmbeddingBag's compiled
#: kernels (the bag sum straight from the table without a graph, the bags' scatter-add with one):
#: they beat NumPy at every size, but below this by under 35 us a call, while importing numba and
#: loading the kernels costs a process 0.4-1 s. Measured (one thread, float32, shared two-core AMD
#: EPYC, medians; EmbeddingBag(1000, 32, mode="mean"), bags of 10): 80 indices, no graph 6 vs 38 us,
#: forward and backward 95 vs 110 us; 256 indices 7 vs 78 and 74 vs 163 us. Below it NumPy runs even
#: when a larger call has loaded the kernels: the path a call takes depends on the call alone, never
#: on what ran earlier in the process (see ``nn._jit.kernels_at``).
JIT_EMBEDDING_BAG_MIN_SIZE = 4096
_JIT_EMBEDDING = "downslope.nn._jit_embedding"


def _compiled_lookup(table: Any, idx: Any) -> Any:
    """The compiled lookups (``_jit_embedding``) for a host, C-contiguous 2-D float ``table`` and
    non-empty signed integer indices, at least JIT_EMBEDDING_BAG_MIN_SIZE values of them, or None."""
    if not (idx.size and idx.dtype.kind == "i" and table.ndim == 2 and table.dtype.kind == "f"):
        return None
    if not getattr(table, "flags", None) or not table.flags.c_contiguous:
        return None
    if idx.size * table.shape[1] < JIT_EMBEDDING_BAG_MIN_SIZE:
        return None
    return jit_gate.kernels(_JIT_EMBEDDING, table, idx)


def _refuse_indices(idx: Any, n: int, where: str) -> NoReturn:
    """Raise for the indices ``idx`` of which some are out of range for a table of ``n`` rows."""
    low = int(idx.min())  # host: the error path reads the host indices
    bad = low if low < 0 else int(idx.max())  # host: the error path reads the host indices
    raise OutOfRangeError(f"{where}: index {bad} is out of range for a table of {n} rows (valid: 0..{n - 1})")


class LookedUpRows:
    """What ``Embedding(sparse=True)``'s backward notes on its weight as ``weight.grad_rows``: the
    index arrays of the rows looked up (the padding row left out, as PyTorch's sparse gradient
    does), gathered over backward calls until the gradient is cleared, and the gradient tensor
    they were added into (``None`` until known), so that a note outlives no gradient of its own.

    Example:
        >>> import downslope as ds
        >>> emb = ds.nn.Embedding(5, 2, sparse=True)
        >>> emb(ds.tensor([3, 1, 3])).sum().backward()
        >>> emb.weight.grad_rows.mask(emb.weight).tolist()
        [False, True, False, True, False]
    """

    __slots__ = ("indices", "grad")

    def __init__(self) -> None:
        self.indices: list[Any] = []
        self.grad: Tensor | None = None

    def mask(self, weight: Tensor) -> Any:
        """A boolean mask over ``weight``'s rows: True for each row noted."""
        out = namespace_of(weight.array).zeros(weight.array.shape[0], dtype=bool)
        for idx in self.indices:
            out[idx] = True
        return out


def _bind_note(weight: Tensor) -> None:
    """After backward accumulated ``weight.grad``: tie the note to that gradient, so that a later
    backward that finds it cleared (``grad = None``) or replaced starts a new note."""
    note = weight.__dict__.get("grad_rows")
    if note is not None and note.grad is None:
        note.grad = weight._grad


def _note_rows(weight: Tensor, idx: Any, padding_idx: int | None) -> None:
    """Add ``idx``'s rows to ``weight.grad_rows``, first dropping a note whose gradient is gone:
    cleared (None now) or replaced since it was made."""
    current = weight._grad
    note = weight.__dict__.get("grad_rows")
    if note is not None and note.grad is not None and note.grad is not current:
        note = None
    if note is None:
        note = weight.__dict__["grad_rows"] = LookedUpRows()
    if "grad_rows_hook" not in weight.__dict__ and weight.requires_grad and weight.is_leaf:
        weight.__dict__["grad_rows_hook"] = weight.register_post_accumulate_grad_hook(_bind_note)
    if current is not None:
        note.grad = current
    flat = idx.reshape(-1)
    note.indices.append(flat if padding_idx is None else flat[flat != padding_idx])


def _renorm_rows(weight: Tensor, idx: Any, max_norm: float, norm_type: float) -> None:
    """PyTorch's embedding_renorm_: each looked-up row whose norm exceeds ``max_norm`` is scaled, in
    place and without gradient, to ``max_norm`` (times 1 / (1 + 1e-7 / norm), as PyTorch does)."""
    flat = idx.reshape(-1)
    rows = weight.array[flat]
    # compared and divided in float64, as torch reads each norm with .item<double>() (a float32 norm
    # of 0.1 exceeds max_norm=0.1 there)
    norms = _row_norms(rows, norm_type).astype(np.float64)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(rows.dtype)
    from ..autograd import no_grad

    with no_grad():  # duplicates write the same values; the version bump guards graphs that read the table
        weight[wrap_array(flat)] = wrap_array(rows * scale)


def _row_norms(rows: Any, norm_type: float) -> Any:
    """torch.norm's p-norm of each row: the power-sum formula has no root at p=0 and gives 1.0 at
    p=+-inf, so those are torch's limits (the count of nonzeros, the largest and the smallest |x|)."""
    mags = np.abs(rows)
    if norm_type == float("inf"):  # host: a Python number
        return mags.max(axis=-1, keepdims=True)
    if norm_type == -float("inf"):  # host: a Python number
        return mags.min(axis=-1, keepdims=True)
    if norm_type == 0:  # host: a Python number
        return (mags != 0).sum(axis=-1, keepdims=True).astype(rows.dtype)
    with np.errstate(divide="ignore"):  # a zero to a negative power: inf, whose root gives torch's 0 norm
        return (mags**norm_type).sum(axis=-1, keepdims=True) ** (1.0 / norm_type)


# The fewest gradient elements (indices x columns) whose scatter into the table's gradient runs
# compiled (nn._jit_kernels' add_rows). Below it NumPy's scatter takes 20 to 35 us (the kernel 4 to
# 7 us) on tables of 100 to 1,000 rows, and a process that looks up nothing larger never imports numba
# (its import and the kernels' load cost about 2 s once); above it NumPy's grows to 10 to 30 times the
# kernel's (ops.indexing's row scatter draws the same line).
JIT_EMBEDDING_GRAD_MIN_SIZE = 8192


def _embedding_vjp(g, y, args, saved, needs, xp):
    idx, padding_idx, counts, sparse_weight = saved
    if sparse_weight is not None:
        _note_rows(sparse_weight, idx, padding_idx)
        if not xp.differentiable and type(g) is np.ndarray and type(idx) is np.ndarray:
            # PyTorch's sparse gradient: the rows looked up and their values, not a table of zeros
            # (host arrays: a device keeps the dense scatter)
            return (_looked_up_grad(args[0], g, idx, padding_idx, counts),)
    if padding_idx is not None:
        # Zeroing the padding rows' incoming gradient keeps that row fixed (PyTorch's rule).
        g = g * np.expand_dims(idx != padding_idx, -1).astype(xp.data(g).dtype)
    if counts is not None:
        g = g / np.expand_dims(counts[idx], -1)
    jit = None
    if not xp.differentiable and g.size >= JIT_EMBEDDING_GRAD_MIN_SIZE:
        jit = _jit.kernels(g, idx)
    if jit is not None and idx.size and idx.dtype.kind in "iu" and g.dtype.kind == "f":  # the compiled scatter-add
        return (jit.add_rows(_workspace.lend_zeros(args[0].shape, g.dtype, like=g), idx, g),)
    return (xp.scatter(args[0].shape, idx, True, g),)


# The rule reads the table's shape and dtype, never its values (PyTorch saves only the indices), so a
# later max_norm lookup that renormalises rows in place (TransE: ent(h), ent(t)) leaves it valid.
_embedding_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _looked_up_grad(table: Any, g: Any, idx: Any, padding_idx: int | None, counts: Any) -> RowGrad:
    """Embedding(sparse=True)'s gradient as rows + values (row_grads.RowGrad): one value row per
    index, repeats kept (PyTorch's uncoalesced COO), the padding row's entries left out."""
    rows = idx.reshape(-1)
    values = g.reshape(rows.shape[0], *table.shape[1:])
    if counts is not None:
        values = values / np.expand_dims(counts[rows], -1)
    if padding_idx is not None:
        kept = rows != padding_idx
        rows, values = rows[kept], values[kept]
    return RowGrad(table.shape, values.dtype, [rows], [values])


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1 W_k x2 + b_k for ``x1`` (..., in1), ``x2`` (..., in2), ``weight`` (out, in1, in2).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.layers import bilinear
        >>> bilinear(ds.ones(1, 2), ds.ones(1, 3), ds.ones(4, 2, 3)).tolist()
        [[6.0, 6.0, 6.0, 6.0]]
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise ShapeError(
            f"bilinear: inputs {tuple(input1.shape)} and {tuple(input2.shape)} do not fit weight {tuple(weight.shape)} (out, in1, in2)"
        )
    out_f, in1, in2 = weight.shape
    # (..., in1) @ (in1, out * in2) -> (..., out, in2), then the dot product with x2 over in2.
    left = ops.reshape(ops.matmul(input1, ops.reshape(ops.permute(weight, (1, 0, 2)), (in1, out_f * in2))),
                       input1.shape[:-1] + (out_f, in2))  # fmt: skip
    y = ops.sum(left * ops.unsqueeze(input2, -2), -1)
    return y if bias is None else y + bias


class Bilinear(Module):
    """y = x1^T A x2 + b per output feature; weight (out, in1, in2) and bias (out,) ~ U(-1/sqrt(in1), 1/sqrt(in1)).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Bilinear(3, 4, 5)(ds.randn(2, 3), ds.randn(2, 4)).shape
        downslope.Size([2, 5])
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in1_features = _positive_int(in1_features, "in1_features", "Bilinear")
        self.in2_features = _positive_int(in2_features, "in2_features", "Bilinear")
        self.out_features = _positive_int(out_features, "out_features", "Bilinear")
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        self.weight = Parameter(empty((self.out_features, self.in1_features, self.in2_features), dtype=dt))
        if bias:
            self.bias: Parameter | None = Parameter(empty((self.out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's: weight and bias redrawn from U(-1/sqrt(in1), 1/sqrt(in1)), in1 read from the weight's
        shape, in place (the same Parameter objects)."""
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


# ---------------------------------------------------------------------- pixel and channel shuffles
def _positive_factor(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def _at_least_3d(x: Any, where: str) -> None:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{where}: expected a Tensor, got {type(x).__name__}")
    if x.ndim < 3:
        raise ShapeError(f"{where}: expected input with at least 3 dims (..., C, H, W), got shape {tuple(x.shape)}")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(..., C r^2, H, W) -> (..., C, H r, W r): channels become sub-pixel positions.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.layers import pixel_shuffle
        >>> pixel_shuffle(ds.arange(4.0).reshape(1, 4, 1, 1), 2)[0, 0]
        tensor([[0., 1.],
                [2., 3.]])
    """
    r = _positive_factor(upscale_factor, "pixel_shuffle", "upscale_factor")
    _at_least_3d(input, "pixel_shuffle")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"pixel_shuffle: {c} channels are not divisible by upscale_factor^2 = {r * r}")
    lead = list(lead)
    x = ops.reshape(input, (*lead, c // (r * r), r, r, h, w))
    k = len(lead)
    x = ops.permute(x, (*range(k), k, k + 3, k + 1, k + 4, k + 2))
    return ops.reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(..., C, H r, W r) -> (..., C r^2, H, W), the inverse of :func:`pixel_shuffle`."""
    r = _positive_factor(downscale_factor, "pixel_unshuffle", "downscale_factor")
    _at_least_3d(input, "pixel_unshuffle")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ShapeError(f"pixel_unshuffle: height {h} and width {w} must be divisible by {r}")
    lead = list(lead)
    k = len(lead)
    x = ops.reshape(input, (*lead, c, h // r, r, w // r, r))
    x = ops.permute(x, (*range(k), k, k + 2, k + 4, k + 1, k + 3))
    return ops.reshape(x, (*lead, c * r * r, h // r, w // r))


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g * k, ...) -> channels reordered as k groups of g (ShuffleNet's channel shuffle)."""
    groups = _positive_factor(groups, "channel_shuffle", "groups")
    _at_least_3d(input, "channel_shuffle")
    n, c = input.shape[0], input.shape[1]
    if c % groups:
        raise ShapeError(f"channel_shuffle: {c} channels are not divisible by groups={groups}")
    rest = input.shape[2:]
    x = ops.reshape(input, (n, groups, c // groups, *rest))
    return ops.reshape(ops.transpose(x, 1, 2), (n, c, *rest))


class PixelShuffle(Module):
    """See :func:`pixel_shuffle`."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = int(upscale_factor)

    def forward(self, input: Tensor) -> Tensor:
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """See :func:`pixel_unshuffle`."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = int(downscale_factor)

    def forward(self, input: Tensor) -> Tensor:
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """See :func:`channel_shuffle`."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = int(groups)

    def forward(self, input: Tensor) -> Tensor:
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


# ---------------------------------------------------------------------- bags of embeddings
def embedding_bag(
    input: Any,
    weight: Tensor,
    offsets: Any = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sum, mean or max of the embeddings of each bag of indices, without materializing the
    per-bag lists: ``input`` is 2-D (one bag per row) or 1-D with ``offsets`` (bag starts).

    Shapes: out ``(bags, embedding_dim)``; an empty bag gives zeros. ``per_sample_weights`` (same
    shape as ``input``) scales each embedding before a ``sum``. Indices equal to ``padding_idx`` are
    left out of their bag. ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` act as in
    :func:`embedding` (``sparse=True``: the gradient is the rows looked up, for ``optim.SparseAdam``). Each bag
    is one contiguous run of the indices, so the bags reduce in one segmented pass: time and memory
    grow with the number of indices, not with indices times bags.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> table = ds.tensor([[1.0], [2.0], [4.0]])
        >>> F.embedding_bag(ds.tensor([0, 1, 2]), table, ds.tensor([0, 2]), mode="sum")
        tensor([[3.],
                [4.]])
    """
    if mode not in ("sum", "mean", "max"):
        raise ArgumentError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if mode == "max" and scale_grad_by_freq:
        raise ArgumentError("embedding_bag: max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ArgumentError("embedding_bag: max mode does not support sparse weights")
    # The bags' boundaries (offsets) shape the computation, so they are read on the host; the
    # indices and the table stay on their device.
    idx = array_like(input, weight.array)
    _check_index_dtype(idx, "embedding_bag")
    if idx.ndim == 2:
        if offsets is not None:
            raise ArgumentError("embedding_bag: offsets go with 1-D input; a 2-D input is one bag per row")
        bags, length = idx.shape
        starts = np.arange(bags, dtype=np.int64) * length  # host: the bags' boundaries
        idx = idx.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ArgumentError("embedding_bag: a 1-D input needs offsets (the start of each bag)")
        starts = _bag_starts(offsets, idx.size, include_last_offset)
    else:
        raise ShapeError(f"embedding_bag: expected 1-D or 2-D indices, got shape {tuple(idx.shape)}")
    n_rows = weight.shape[0]
    # No graph to record (inference, or a frozen table), sum or mean of the plain rows: each bag is
    # summed straight from the table in one compiled pass that also checks the indices.
    fused = None
    if mode != "max" and per_sample_weights is None and max_norm is None:
        if not (weight.requires_grad and is_grad_enabled()):
            fused = _compiled_lookup(weight.array, idx)
    if fused is None and is_host(idx) and idx.size and (idx.min() < 0 or idx.max() >= n_rows):
        _refuse_indices(idx, n_rows, "embedding_bag")  # values read on the host only
    if padding_idx is not None:
        if not -n_rows <= padding_idx < n_rows:
            raise ArgumentError(
                f"embedding_bag: padding_idx {padding_idx} is out of range for a table of {n_rows} rows"
            )
        padding_idx %= n_rows
    if per_sample_weights is not None:
        if mode != "sum":
            raise ArgumentError(f"embedding_bag: per_sample_weights need mode='sum', got mode={mode!r}")
        if tuple(per_sample_weights.shape) != tuple(array_of(input).shape):
            raise ShapeError(
                f"embedding_bag: per_sample_weights must have the input's shape {tuple(array_of(input).shape)}, "
                f"got {tuple(per_sample_weights.shape)}"
            )
        if per_sample_weights.dtype != weight.dtype:
            raise DTypeError(
                f"embedding_bag: per_sample_weights must have the weight's dtype {weight.dtype}, got {per_sample_weights.dtype}"
            )
    if fused is not None:
        out = np.zeros((starts.size, weight.shape[1]), dtype=weight.array.dtype)  # host: numba path
        pad = -1 if padding_idx is None else padding_idx
        flat = np.ascontiguousarray(idx)  # host: numba path
        if fused.bag_sums(weight.array, flat, starts, pad, mode == "mean", out) >= 0:
            _refuse_indices(idx, n_rows, "embedding_bag")
        return wrap_array(out)
    rows = embedding(idx, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    if per_sample_weights is not None:
        rows = rows * ops.reshape(per_sample_weights, (-1, 1))
    keep = None if padding_idx is None else idx != padding_idx
    return _reduce_bags(rows, starts, keep, mode)


def _bag_starts(offsets: Any, n: int, include_last_offset: bool) -> Any:
    """The host array of bag starts that ``offsets`` gives over ``n`` indices, checked as torch does.
    With ``include_last_offset`` the last offset closes the last bag, and must be ``n`` (torch's
    documented rule; its results for a smaller one disagree between modes, so it is refused)."""
    given = to_host(array_of(offsets))
    if given.ndim != 1:
        raise ShapeError(f"embedding_bag: offsets has to be a 1-D tensor, got shape {tuple(given.shape)}")
    if given.dtype.kind not in "iu":
        raise ArgumentTypeError(f"embedding_bag: expected integer offsets (int64 or int32), got dtype {given.dtype}")
    starts = given.astype(np.int64, copy=False)
    if starts.size:
        if starts[0] != 0:
            raise InvalidValueError(
                f"embedding_bag: offsets[0] has to be 0 (the first bag starts at position 0), got {int(starts[0])}"
            )
        if starts[-1] > n:
            raise InvalidValueError(
                f"embedding_bag: offsets[-1] can not be greater than input's length {n}, got offsets[-1] of {int(starts[-1])}"
            )
        if bool((starts[1:] < starts[:-1]).any()):  # host: the offsets were read on the host above
            shown = starts.tolist()  # host: the offsets were read on the host above
            raise InvalidValueError(f"embedding_bag: offsets must not decrease, got {shown}")
        if include_last_offset and starts[-1] != n:
            raise InvalidValueError(
                f"embedding_bag: with include_last_offset=True the last offset closes the last bag and must equal "
                f"the input's length {n}, got offsets[-1] of {int(starts[-1])}"
            )
    return starts[:-1] if include_last_offset else starts


def _reduce_bags(rows: Tensor, starts: Any, keep: Any, mode: str) -> Tensor:
    """The sum, mean or max of each bag of ``rows`` (n, d); bag b is rows ``starts[b]`` up to the next
    start (the last runs to n). ``keep`` (a bool array over the rows, or None) drops rows from their
    bags. One pass over the rows (a scatter-add by bag for sum and mean, ``maximum.reduceat`` over
    the bags that are not empty for max); empty bags (and bags of dropped rows only) give zeros, as
    in torch."""
    r = rows.array
    xp = namespace_of(r)
    n, d = r.shape
    bags = starts.size
    sizes = np.diff(np.append(starts, n))  # host: the bag sizes come from the offsets
    filled = np.flatnonzero(sizes)  # host: the bags that are not empty
    out = xp.zeros((bags, d), dtype=r.dtype)
    if filled.size == 0:  # nothing to reduce (no indices, or only empty bags)
        return record_op(out, (rows,), _reduce_bags_vjp, ("sum", None, None, None, None, n))
    ne_starts = array_like(starts[filled], r)
    bag_ids = np.arange(filled.size)  # host: from the offsets; array_like moves it to the rows' device
    member_of = array_like(np.repeat(bag_ids, sizes[filled]), r)  # the (filled) bag each row belongs to
    scatter_to = None if filled.size == bags else array_like(filled, r)
    kept_mask = None if keep is None else xp.expand_dims(keep, -1)
    if mode == "max":
        low = float("-inf") if r.dtype.kind == "f" else int(np.iinfo(r.dtype).min)
        src = r if kept_mask is None else xp.where(kept_mask, r, low)
        top = np.maximum.reduceat(src, ne_starts, axis=0)
        # where each maximum came from: the first row that reaches it (torch's choice among ties; a NaN wins)
        hit = (src == top[member_of]) | (src != src)
        first = np.minimum.reduceat(xp.where(hit, xp.arange(n)[:, None], n), ne_starts, axis=0)
        scale = None
        if keep is not None:  # a bag of dropped rows only: zeros, and no gradient
            has = np.add.reduceat(keep.astype(r.dtype), ne_starts, axis=0) > 0
            top = xp.where(has[:, None], top, 0)
            scale = has.astype(r.dtype)
        saved = ("max", first, scale, scatter_to, None, n)
        reduced = top
    else:
        src = r if kept_mask is None else xp.where(kept_mask, r, 0)
        # a scatter-add in index order: each bag sums its rows one after another, as torch's kernel does
        # (so the float32 results agree to the bit; add.reduceat associates differently)
        reduced = xp.zeros((filled.size, d), dtype=r.dtype)
        jit = _jit.kernels_at(src.size, JIT_EMBEDDING_BAG_MIN_SIZE, src, member_of)
        if jit is not None and src.dtype.kind == "f":  # the compiled scatter-add, in the same order
            jit.add_rows(reduced, member_of, src)
        else:
            np.add.at(reduced, member_of, src)
        # each row's factor in its bag: 1, 1 / the bag's size for a mean, 0 for a dropped row
        weight_of = None if keep is None else keep.astype(r.dtype)
        if mode == "mean":
            if keep is None:
                count = array_like(sizes[filled].astype(r.dtype), r)
            else:
                count = xp.maximum(np.add.reduceat(keep.astype(r.dtype), ne_starts, axis=0), 1)
            reduced = reduced / count[:, None]
            inv = (1 / count)[member_of]
            weight_of = inv if weight_of is None else weight_of * inv
        saved = ("sum", member_of, weight_of, scatter_to, None, n)
    if scatter_to is None:
        out = reduced
    else:
        out[scatter_to] = reduced
    return record_op(out, (rows,), _reduce_bags_vjp, saved)


def _reduce_bags_vjp(g, y, args, saved, needs, xp):
    mode, where, scale, scatter_to, _, n = saved
    shape = args[0].shape
    if where is None:  # no row was in a bag
        return (xp.constant(namespace_of(xp.data(g)).zeros(shape, dtype=xp.data(g).dtype)),)
    if scatter_to is not None:
        g = g[scatter_to]
    if mode == "max":
        cols = namespace_of(where).arange(shape[1])[None, :]
        if scale is not None:
            g = g * xp.expand_dims(xp.constant(scale), -1)
        if not xp.differentiable:  # each (row, column) is one bag's maximum at most: an assignment will do
            out = namespace_of(g).zeros(shape, dtype=g.dtype)
            out[where, cols] = g
            return (out,)
        return (xp.scatter(shape, (where, cols), True, g),)
    g_rows = g[where]
    if scale is not None:
        g_rows = g_rows * xp.expand_dims(xp.constant(scale), -1)
    return (g_rows,)


def _copy_table(weight: Parameter, given: Any, owner: str) -> None:
    """Copy the table ``given`` (an array or Tensor of the weight's shape) into ``weight``, on its device."""
    table = array_of(given)
    if table.shape != weight.shape:
        raise ShapeError(f"{owner}: _weight has shape {tuple(table.shape)}, expected {tuple(weight.shape)}")
    weight.array[...] = to_device(table, device_of(weight.array))


def _pretrained_table(embeddings: Any, where: str) -> tuple[Any, Any]:
    """The 2-D table of ``from_pretrained`` and the dtype to build the layer in: a floating Tensor keeps
    its own (a float64 table gives a float64 layer, as in torch); an array gives None, the default
    float32 (as ds.tensor makes it)."""
    table = array_of(embeddings)
    if table.ndim != 2:
        raise ArgumentError(f"{where}: expected a 2-D table, got shape {tuple(table.shape)}")
    return table, (table.dtype if isinstance(embeddings, Tensor) and table.dtype.kind == "f" else None)


_Table = TypeVar("_Table", "Embedding", "EmbeddingBag")


def _with_table(layer: _Table, table: Any, freeze: bool, where: str) -> _Table:
    """``layer`` holding ``table`` (trained unless ``freeze``), moved to the table's device, as in torch."""
    _copy_table(layer.weight, table, where)
    layer.weight.requires_grad_(not freeze)
    return layer._move(device_of(table), where)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (see :func:`F.embedding_bag`), as in the text
    classification tutorial: ``EmbeddingBag(vocab, dim)(tokens, offsets)``. ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` act as in :class:`Embedding` (``sparse=True``: the gradient is
    kept as the rows looked up, so ``optim.SparseAdam`` updates exactly those).

    Example:
        >>> import downslope as ds
        >>> bag = ds.nn.EmbeddingBag(10, 3, mode="mean")
        >>> bag(ds.tensor([1, 2, 4, 5, 4]), ds.tensor([0, 2])).shape
        downslope.Size([2, 3])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Any = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ArgumentError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "EmbeddingBag")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "EmbeddingBag")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ArgumentError(
                    f"EmbeddingBag: padding_idx {padding_idx} is out of range for num_embeddings={self.num_embeddings}"
                )
            padding_idx %= self.num_embeddings
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.mode, self.include_last_offset, self.padding_idx = mode, include_last_offset, padding_idx
        self.weight = Parameter(empty((self.num_embeddings, self.embedding_dim), dtype=backend.get_default_dtype()))
        if _weight is None:
            self.reset_parameters()
        else:  # PyTorch's way in for a given table
            _copy_table(self.weight, _weight, "EmbeddingBag")

    def reset_parameters(self) -> None:
        """PyTorch's: the table redrawn from N(0, 1), the ``padding_idx`` row zero, in place (the same
        Parameter object)."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag over a copy of the 2-D ``embeddings``; ``freeze`` stops its training. A float64
        Tensor keeps its dtype (as in torch), an array becomes float32 (as ``ds.tensor`` makes it).

        Example:
            >>> import downslope as ds
            >>> bag = ds.nn.EmbeddingBag.from_pretrained(ds.tensor([[1.0, 2.0], [3.0, 4.0]]), mode="sum")
            >>> bag(ds.tensor([[0, 1]])), bag.weight.requires_grad
            (tensor([[4., 6.]]), False)
        """
        table, dtype = _pretrained_table(embeddings, "EmbeddingBag.from_pretrained")
        bag = cls(
            table.shape[0], table.shape[1], max_norm, norm_type, scale_grad_by_freq, mode, sparse,
            include_last_offset=include_last_offset, padding_idx=padding_idx,
        )  # fmt: skip
        return _with_table(bag.to(dtype) if dtype is not None else bag, table, freeze, "EmbeddingBag.from_pretrained")

    def forward(self, input: Any, offsets: Any = None, per_sample_weights: Tensor | None = None) -> Tensor:
        return embedding_bag(
            input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.mode,
            self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx,
        )  # fmt: skip

    def extra_repr(self) -> str:
        # PyTorch's EmbeddingBag.extra_repr (every value through repr, mode before padding_idx)
        text = f"{self.num_embeddings!r}, {self.embedding_dim!r}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            text += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        text += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx!r}"
        return text
