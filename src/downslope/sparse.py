"""Sparse COO tensors (torch.sparse_coo_tensor, torch.sparse): what graph code written for torch uses.

A :class:`SparseCOOTensor` is a ``(sparse_dim, nnz)`` int64 index array, a values :class:`~downslope.Tensor`
``(nnz, *dense_dims)`` and a size. The values Tensor carries the graph: every differentiable sparse op is a
recorded op on the values, so gradients reach a values tensor the user made (learned edge weights) as a
dense ``(nnz,)`` tensor, and a leaf sparse tensor's ``.grad`` is a sparse tensor of its pattern, as torch's.

It is its own type, not a Tensor subclass (``isinstance(S, downslope.Tensor)`` is False, torch says True):
a subclass would inherit hundreds of dense ops that would compute on the wrong data; here anything without
a sparse rule (``F.relu(S)``, ``S + dense``, ``S[0]``, ``np.asarray(S)``) raises :class:`SparseLayoutError`,
which names the op, lists what sparse tensors support and says to call ``.to_dense()`` first.

The product ``S @ D`` (torch.sparse.mm, torch.spmm, torch.mm, torch.matmul) is a segment sum over rows: the
nonzeros in row order (a coalesced tensor is), a compiled loop with numba (``DOWNSLOPE_JIT=0`` or device
arrays: NumPy's ``add.reduceat``; the kernels are ``_jit_sparse``). The row order and its transpose (for the
gradient ``S^T @ G``) are cached on the tensor, so an adjacency matrix reused every step sorts once. ``D @ S`` is
``(S^T @ D^T)^T`` on the same product; ``S1 @ S2`` is sparse (the pairs of nonzeros that meet, summed by
coalesce). As in torch, ``D + S`` and ``D - S`` are dense, ``S * D`` and ``torch.sum(S, dim)`` sparse, and
``S + D`` is refused; ds.add/sub/mul take the same operands (ops.arithmetic hands a sparse one over), and
``D += S``, ``D.add_(S, alpha=...)``, ``D.mul_(S)`` write torch's dense result into D.

Example:
    >>> import downslope as ds
    >>> S = ds.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3))
    >>> (S @ ds.ones(3, 1)).flatten().tolist()
    [3.0, 9.0]
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend, jit_gate
from ._unsupported import UnsupportedNameError
from .devices import like, to_host
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    OutOfRangeError,
    ShapeError,
    StateError,
    UnimplementedError,
)
from .tensor import Tensor, record_op, tensor, wrap_array

__all__ = [
    "SparseCOOTensor",
    "SparseLayoutError",
    "layout",
    "strided",
    "sparse_coo",
    "sparse_coo_tensor",
    "FloatTensor",
    "DoubleTensor",
    "LongTensor",
    "mm",
    "spmm",
    "addmm",
    "sum",
    "softmax",
    "log_softmax",
    "is_sparse",
]

_sum = builtins.sum


class layout:
    """torch.layout: how a tensor stores its values (``downslope.strided`` dense, ``downslope.sparse_coo``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self) -> str:  # the one object of its name survives pickling and copies
        return self.name


strided = layout("strided")
sparse_coo = layout("sparse_coo")

SUPPORTED = (
    "@ / mm / matmul / spmm / sparse.mm / sparse.addmm with a dense or sparse operand, bmm of a 3-D sparse and "
    "a 3-D dense tensor, index_select(dim, index), to_dense(), coalesce(), "
    "t() / transpose(), * and / by a number, * a dense tensor (on the pattern), pow(), negation, "
    "+ another sparse tensor of the same size, dense + sparse and dense - sparse (dense results; add, sub, +=, "
    "-=, add_, sub_ too), dense * sparse (mul, mul_: a dense result in place), "
    "sum() / sparse.sum, sparse.softmax, sparse.log_softmax, float() / double() / to(dtype), detach(), clone(), requires_grad_(), "
    "indices() / values() / _indices() / _values() / _nnz()"
)


class SparseLayoutError(ArgumentTypeError, NotImplementedError):
    """An op given a sparse COO tensor that has no sparse rule in downslope. A TypeError (torch's error for
    ``S.numpy()``) and a NotImplementedError (torch's for an op with no sparse kernel)."""


def _refusal(op: str) -> str:
    return (
        f"{op}: got a sparse COO tensor, which this op does not take; sparse COO tensors support {SUPPORTED}. "
        "Call .to_dense() first to use the dense op"
    )


_OPERATORS = {
    "__add__": "+",
    "__radd__": "+",
    "__sub__": "-",
    "__rsub__": "-",
    "__mul__": "*",
    "__rmul__": "*",
    "__truediv__": "/",
    "__rtruediv__": "/",
    "__matmul__": "@",
    "__rmatmul__": "@",
    "__pow__": "**",
}
_PASSING = frozenset({"wrapper", "inner", "wrapped", "forward"})  # decorators' frames: name what they wrap


def _calling_op() -> str:
    """The downslope op the user called, to name in a refusal: the outermost downslope frame that is not a
    decorator's wrapper nor a private helper (an operator by its symbol, a constructor by its class)."""
    frames = []
    frame: Any = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("downslope") and frame.f_globals["__name__"] != __name__:
            frames.append(frame)
        elif frames:
            break
        frame = frame.f_back
    for frame in reversed(frames):  # outermost first
        name = frame.f_code.co_name
        if name in _OPERATORS:
            return _OPERATORS[name]
        if name in ("__init__", "__new__", "__call__"):
            owner = frame.f_locals.get("self", frame.f_locals.get("cls"))
            return getattr(owner, "__name__", type(owner).__name__)
        if name not in _PASSING and not name.startswith(("_", "<")):
            return name
    return "numpy.asarray / numpy.array" if not frames else "this op"


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a sparse COO tensor."""
    return isinstance(x, SparseCOOTensor)


# ---------------------------------------------------------------------------------------------- kernels
_JIT_SPARSE = "downslope._jit_sparse"


def _kernels(*arrays: Any) -> Any:
    """The compiled kernels (``_jit_sparse``), or None for the NumPy path: the gate's switches and dtype checks,
    numba imported and the kernels compiled on the first call that can use them."""
    return jit_gate.kernels(_JIT_SPARSE, *arrays)


class _Order:
    """The nonzeros of a 2-D sparse tensor grouped by one of its index rows (``by``: 0 rows, 1 columns):
    ``perm`` (positions in that order, stable), ``indptr`` (each group's start), ``other`` (the other index of
    each, in that order), ``groups``/``starts`` (the non-empty groups and where each starts: NumPy's
    reduceat path)."""

    __slots__ = ("perm", "indptr", "other", "keys", "groups", "starts")

    def __init__(self, indices: Any, size: int, by: int, sorted_already: bool) -> None:
        xp = backend.namespace_of(indices)
        key = indices[by]
        nnz = key.shape[0]
        if sorted_already:
            self.perm = xp.arange(nnz, dtype=np.int64)
            self.keys = key
        else:
            self.perm = xp.argsort(key, kind="stable").astype(np.int64, copy=False)
            self.keys = key[self.perm]
        self.other = indices[1 - by][self.perm]
        counts = xp.bincount(key, minlength=size)
        self.indptr = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(counts)]).astype(np.int64, copy=False)
        # which groups hold nonzeros: a size read from the data, once per tensor (cached with the order)
        self.groups = xp.nonzero(counts)[0]
        self.starts = self.indptr[self.groups]


def _segment_mm(order: _Order, vals: Any, d: Any, rows: int) -> Any:
    """``out[r] = sum of vals[k] * d[other[k]]`` over the nonzeros k of group r: (rows, f) from (n, f)."""
    xp = backend.namespace_of(d)
    dtype = np.result_type(vals.dtype, d.dtype)
    out = xp.zeros((rows, d.shape[1]), dtype=dtype)
    if order.perm.shape[0] == 0:
        return out
    kernels = _kernels(vals, d, order.perm)
    if kernels is not None and vals.dtype == d.dtype:
        d = np.ascontiguousarray(d)  # host: numba's kernel runs on host arrays only (the gate checked)
        kernels.csr_mm(order.indptr, order.other, order.perm, vals, d, out)
        return out
    # (f, nnz) products, features first: NumPy's reduceat sums runs along the last axis several times faster
    # than down the first (0.85 s against 6.3 s for 1M nonzeros x 64 features)
    contrib = xp.take(xp.ascontiguousarray(d.T), order.other, axis=1)
    contrib *= vals[order.perm]
    out[order.groups] = np.add.reduceat(contrib, order.starts, axis=1).T
    return out


def _sddmm(indices: Any, g: Any, d: Any) -> Any:
    """Per nonzero k: ``<g[row[k]], d[col[k]]>`` (the gradient of S's values in S @ D)."""
    rows, cols = indices[0], indices[1]
    kernels = _kernels(g, d, rows)
    if kernels is not None and g.dtype == d.dtype:
        out = np.empty(rows.shape[0], dtype=g.dtype)  # host: the kernel path holds host arrays only
        kernels.sddmm(rows, cols, np.ascontiguousarray(g), np.ascontiguousarray(d), out)
        return out
    return (g[rows] * d[cols]).sum(axis=1)


# ---------------------------------------------------------------------------------------------- the tensor
def _refuse_operator(op: str) -> Any:
    def refuse(self: Any, *other: Any) -> Any:
        raise SparseLayoutError(_refusal(f"the {op} operator"))

    return refuse


class SparseCOOTensor:
    """A sparse COO tensor (torch.sparse_coo_tensor's result). Make one with :func:`sparse_coo_tensor`,
    ``torch.sparse.FloatTensor(i, v, size)`` or ``dense.to_sparse()``."""

    __slots__ = ("_idx", "_vals", "_size", "_coalesced", "_rows", "_cols", "__weakref__")
    __array_priority__ = 1000  # NumPy defers its operators to ours (which refuse), never iterating S

    def __init__(self, indices: Any, values: Tensor, size: tuple[int, ...], coalesced: bool) -> None:
        self._idx = indices
        self._vals = values
        self._size = size
        self._coalesced = coalesced
        self._rows: _Order | None = None
        self._cols: _Order | None = None

    # ------------------------------------------------------------------ inspection
    @property
    def is_sparse(self) -> bool:
        return True

    @property
    def is_sparse_csr(self) -> bool:
        return False

    @property
    def layout(self) -> layout:
        return sparse_coo

    @property
    def shape(self) -> Any:
        return backend.Size(self._size)

    def size(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        return self._size[self._dim(dim)]

    def dim(self) -> int:
        return len(self._size)

    ndim = property(dim)

    def __len__(self) -> int:
        if not self._size:
            raise SparseLayoutError("len() of a 0-d sparse tensor")
        return self._size[0]

    def sparse_dim(self) -> int:
        return int(self._idx.shape[0])

    def dense_dim(self) -> int:
        return len(self._size) - self.sparse_dim()

    @property
    def dtype(self) -> Any:
        return self._vals.dtype

    @property
    def device(self) -> Any:
        return self._vals.device

    @property
    def is_cuda(self) -> bool:
        return self._vals.is_cuda

    @property
    def requires_grad(self) -> bool:
        return self._vals.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    @property
    def is_leaf(self) -> bool:
        return self._vals.is_leaf

    @property
    def grad_fn(self) -> Any:
        return self._vals.grad_fn

    @property
    def grad(self) -> SparseCOOTensor | None:
        """A leaf's gradient: a sparse tensor of its (coalesced) pattern, as torch's."""
        g = self._vals.grad
        if g is None:
            return None
        # torch marks the gradient uncoalesced (its indices are the coalesced pattern all the same)
        if self._coalesced or self._nnz() == 0:
            return SparseCOOTensor(self._idx, g.detach(), self._size, False)
        # every copy of a duplicate index got the gradient of that one entry of the dense tensor: keep one
        order, starts, _, idx = _coalescing(self._idx, self._size)
        return SparseCOOTensor(idx, wrap_array(g.array[order[starts]]), self._size, False)

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            raise SparseLayoutError("setting a sparse tensor's .grad: only None (clearing it) is supported")
        self._vals.grad = None

    def _nnz(self) -> int:
        return int(self._idx.shape[1])

    def _indices(self) -> Tensor:
        return wrap_array(self._idx)

    def _values(self) -> Tensor:
        return self._vals

    def indices(self) -> Tensor:
        self._need_coalesced("indices")
        return wrap_array(self._idx)

    def values(self) -> Tensor:
        self._need_coalesced("values")
        return self._vals

    def _need_coalesced(self, what: str) -> None:
        if not self._coalesced:
            raise StateError(
                f"{what}(): cannot get {what} on an uncoalesced sparse tensor (duplicate or unsorted indices "
                f"may be present); call .coalesce() first, or ._{what}() for the stored {what} as they are"
            )

    def is_coalesced(self) -> bool:
        return self._coalesced

    def __repr__(self) -> str:
        # torch's layout: the indices and the values on lines of their own, then size, nnz, dtype and layout
        indices = repr(wrap_array(self._idx))[len("tensor(") : -1].replace("\n", "\n" + " " * 15)
        values = Tensor.__repr__(wrap_array(self._vals.array))[len("tensor(") : -1]
        values = values.split(", dtype=")[0].replace("\n", "\n" + " " * 14)
        extras = [f"size={tuple(self._size)}", f"nnz={self._nnz()}"]
        if self._vals.dtype not in (backend.get_default_dtype(), backend.int64):
            extras.append(f"dtype={self._vals.dtype}")
        extras.append("layout=torch.sparse_coo")
        if self.requires_grad:
            node = self._vals.grad_fn
            extras.append("requires_grad=True" if node is None else f"grad_fn=<{node.name()}>")
        return f"tensor(indices=tensor({indices}),\n       values=tensor({values}),\n       {', '.join(extras)})"

    # ------------------------------------------------------------------ conversions
    def to_dense(self, dtype: Any = None, *, masked_grad: bool = True) -> Tensor:
        """The dense tensor (duplicates summed), differentiable with respect to the values."""
        vals = self._vals if dtype is None else self._vals.to(dtype)
        return record_op(_scatter_dense(self._idx, vals.array, self._size), (vals,), _to_dense_vjp, saved=self._idx)

    def coalesce(self) -> SparseCOOTensor:
        """Duplicates summed, indices sorted lexicographically (itself when already coalesced)."""
        if self._coalesced:
            return self
        if self._nnz() == 0:
            return SparseCOOTensor(self._idx, self._vals, self._size, True)
        order, starts, inverse, idx = _coalescing(self._idx, self._size)
        vals = np.add.reduceat(self._vals.array[order], starts, axis=0)
        values = record_op(vals, (self._vals,), _gather_vjp, saved=inverse)
        return SparseCOOTensor(idx, values, self._size, True)

    def to(self, *args: Any, **kwargs: Any) -> SparseCOOTensor:
        values = self._vals.to(*args, **kwargs)
        if values is self._vals:
            return self
        idx = self._idx
        if type(values.array) is not type(idx):
            from .devices import to_device

            idx = to_device(idx, values.device)
        return self._with(values, idx=idx)

    def float(self) -> SparseCOOTensor:
        return self.to(backend.float32)

    def double(self) -> SparseCOOTensor:
        return self.to(backend.float64)

    def half(self) -> SparseCOOTensor:
        return self.to(np.dtype(np.float16))

    def long(self) -> SparseCOOTensor:
        return self.to(backend.int64)

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return "torch.sparse." + {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(
                str(self.dtype), "Tensor"
            )
        return self.to(dtype)

    def cpu(self) -> SparseCOOTensor:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> SparseCOOTensor:
        return self.to("cuda" if device is None else device)

    def detach(self) -> SparseCOOTensor:
        return self._with(self._vals.detach(), keep_orders=True)

    def clone(self) -> SparseCOOTensor:
        return self._with(self._vals.clone(), keep_orders=True)

    def requires_grad_(self, requires_grad: bool = True) -> SparseCOOTensor:
        self._vals.requires_grad_(requires_grad)
        return self

    def _with(self, values: Tensor, idx: Any = None, keep_orders: bool = False) -> SparseCOOTensor:
        out = SparseCOOTensor(self._idx if idx is None else idx, values, self._size, self._coalesced)
        if keep_orders:
            out._rows, out._cols = self._rows, self._cols
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise SparseLayoutError(_refusal(f"{_calling_op()} (a conversion to a NumPy array)"))

    def numpy(self, *, force: bool = False) -> Any:
        raise SparseLayoutError(_refusal("numpy() (can't convert a sparse layout tensor to numpy)"))

    def tolist(self) -> Any:
        raise SparseLayoutError(_refusal("tolist()"))

    def item(self) -> Any:
        raise SparseLayoutError(_refusal("item()"))

    # ------------------------------------------------------------------ shape
    def _dim(self, dim: int) -> int:
        n = len(self._size)
        if not -n <= dim < n:
            raise OutOfRangeError(
                f"sparse tensor: dim {dim} out of range for a {n}-D tensor (expected [{-n}, {n - 1}])"
            )
        return dim % n

    def transpose(self, dim0: int, dim1: int) -> SparseCOOTensor:
        """Swap two sparse dims (torch's transpose of a COO tensor; the result is uncoalesced)."""
        a, b = self._dim(dim0), self._dim(dim1)
        if a == b:
            return self
        if a >= self.sparse_dim() or b >= self.sparse_dim():
            raise SparseLayoutError(_refusal("transpose() of a dense dim of a hybrid tensor"))
        order = list(range(self.sparse_dim()))
        order[a], order[b] = order[b], order[a]
        size = list(self._size)
        size[a], size[b] = size[b], size[a]
        out = SparseCOOTensor(self._idx[order], self._vals, tuple(size), False)
        if self.sparse_dim() == 2:  # the two orders trade places: the product's caches carry over
            out._rows, out._cols = self._cols, self._rows
        return out

    def t(self) -> SparseCOOTensor:
        if self.sparse_dim() != 2 or self.dense_dim() != 0:
            raise ShapeError(f"t(): expects a 2-D sparse tensor with no dense dims, got size {tuple(self._size)}")
        return self.transpose(0, 1)

    @property
    def T(self) -> SparseCOOTensor:
        return self.t()

    # ------------------------------------------------------------------ arithmetic
    def _scalar(self, other: Any, op: str) -> Any:
        if isinstance(other, (builtins.int, builtins.float)) and not isinstance(other, bool):
            return other
        if isinstance(other, Tensor) and other.ndim == 0:
            return other
        raise SparseLayoutError(_refusal(f"{op} of a sparse tensor and {type(other).__name__}"))

    def __mul__(self, other: Any) -> SparseCOOTensor:
        if isinstance(other, Tensor) and other.ndim:
            out: SparseCOOTensor = _times_dense(self, other)
            return out
        return self._with(self._vals * self._scalar(other, "*"), keep_orders=True)

    __rmul__ = __mul__

    def pow(self, exponent: Any) -> SparseCOOTensor:
        """Each stored value to ``exponent`` (torch coalesces first: a duplicate's parts are summed, then raised);
        absent entries stay absent, so a negative exponent does not make them inf."""
        c = self.coalesce()
        return c._with(c._vals ** self._scalar(exponent, "pow"), keep_orders=True)

    def __pow__(self, exponent: Any) -> SparseCOOTensor:
        return self.pow(exponent)

    def mul(self, other: Any) -> SparseCOOTensor:
        return self * other

    def __truediv__(self, other: Any) -> SparseCOOTensor:
        return self._with(self._vals / self._scalar(other, "/"), keep_orders=True)

    def div(self, other: Any) -> SparseCOOTensor:
        return self / other

    def __neg__(self) -> SparseCOOTensor:
        return self._with(-self._vals, keep_orders=True)

    def neg(self) -> SparseCOOTensor:
        return -self

    def __add__(self, other: Any) -> SparseCOOTensor:
        if not isinstance(other, SparseCOOTensor):
            if isinstance(other, Tensor):  # torch's refusal too: only add(dense, sparse) exists
                raise SparseLayoutError(
                    _refusal("add(sparse, dense) (torch has no sparse + dense either; write dense + sparse)")
                )
            raise SparseLayoutError(_refusal(f"+ of a sparse tensor and {type(other).__name__}"))
        if other._size != self._size or other.sparse_dim() != self.sparse_dim():
            raise ShapeError(
                f"add: sparse tensors of sizes {tuple(self._size)} and {tuple(other._size)} (sparse dims "
                f"{self.sparse_dim()}, {other.sparse_dim()}) cannot be added; expected the same size"
            )
        if other.dtype != self.dtype:
            raise DTypeError(f"add: sparse tensors of dtypes {self.dtype} and {other.dtype}; cast one first")
        if other._idx is self._idx:  # one pattern (S + S, S + 2 * S): torch adds the values in place of it
            return self._with(self._vals + other._vals, keep_orders=True)
        from .ops import concatenate

        xp = backend.namespace_of(self._idx)
        out = SparseCOOTensor(
            xp.concatenate([self._idx, other._idx], axis=1),
            concatenate([self._vals, other._vals], 0),
            self._size,
            False,
        )
        # torch coalesces the sum of two coalesced tensors
        return out.coalesce() if self._coalesced and other._coalesced else out

    def add(self, other: Any, *, alpha: Any = 1) -> SparseCOOTensor:
        return self + (other if alpha == 1 else other * alpha)

    def __sub__(self, other: Any) -> SparseCOOTensor:
        if not isinstance(other, SparseCOOTensor):
            if isinstance(other, Tensor):
                raise SparseLayoutError(
                    _refusal("sub(sparse, dense) (torch has no sparse - dense either; write -(dense - sparse))")
                )
            raise SparseLayoutError(_refusal(f"- of a sparse tensor and {type(other).__name__}"))
        return self + (-other)

    def sub(self, other: Any) -> SparseCOOTensor:
        return self - other

    def __radd__(self, other: Any) -> Any:
        raise SparseLayoutError(_refusal(f"+ of {type(other).__name__} and a sparse tensor"))

    def __rsub__(self, other: Any) -> Any:
        raise SparseLayoutError(_refusal(f"- of {type(other).__name__} and a sparse tensor"))

    def __rtruediv__(self, other: Any) -> Any:
        raise SparseLayoutError(_refusal(f"/ of {type(other).__name__} by a sparse tensor"))

    def __matmul__(self, other: Any) -> Tensor:
        return _product(self, other, "matmul")

    def __rmatmul__(self, other: Any) -> Tensor:
        return _dense_product(other, self, "matmul")

    def mm(self, other: Any) -> Tensor:
        return _product(self, other, "mm")

    def matmul(self, other: Any) -> Tensor:
        return _product(self, other, "matmul")

    def mv(self, other: Any) -> Tensor:
        return _product(self, other, "mv")

    def bmm(self, other: Any) -> Tensor:
        """torch's ``S.bmm(D)``: a batch of sparse matrices (3 sparse dims) times a dense batch: dense."""
        return _batched_product(self, other, "bmm")

    def index_select(self, dim: int, index: Any) -> SparseCOOTensor:
        """torch's ``S.index_select(dim, index)``: a sparse tensor of the slices ``index`` along ``dim``."""
        return _index_select(self, dim, index)

    def _sparse_index_select(self, dim: int, index: Any) -> SparseCOOTensor:
        """ops.indexing's index_select hands a sparse input here (ops never import this module)."""
        return _index_select(self, dim, index)

    def _sparse_product(self, other: Any, name: str) -> Any:
        """ops.linalg's mm/matmul/mv/bmm hand a sparse left operand here (ops never import this module)."""
        if name == "bmm":
            return _batched_product(self, other, name)
        return _product(self, other, name)

    def _sparse_rproduct(self, other: Any, name: str) -> Tensor:
        """ops.linalg's mm/matmul hand ``dense @ sparse`` here (a dense left operand, this the right one)."""
        return _dense_product(other, self, name)

    def _sparse_binary(self, name: str, other: Any, reflected: bool) -> Any:
        """ops.arithmetic's add/sub/mul hand an operation with a sparse operand here (ops never import this
        module): ``self (name) other``, or ``other (name) self`` when ``reflected``. Operators are not used for
        a dense operand: Tensor's would hand the operation back to ops."""
        if not reflected:
            return {"add": self.__add__, "sub": self.__sub__, "mul": self.__mul__}[name](other)
        if name == "mul":  # torch's mul(dense, S) is S * dense: a sparse result on S's pattern
            return self.__mul__(other)
        if isinstance(other, Tensor):  # torch's add/sub(dense, S): a dense result
            return _dense_plus(other, self, 1 if name == "add" else -1)
        raise SparseLayoutError(_refusal(f"{name} of {type(other).__name__} and a sparse tensor"))

    def _sparse_sum(self, dim: Any, keepdim: bool, dtype: Any) -> Any:
        """ops.reductions' sum hands a sparse input here: ``torch.sum(S, dim)`` is torch.sparse.sum's rule."""
        return self.sum(dim, bool(keepdim), dtype)

    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
        """torch's ``S.sum(dim)``: as :func:`sum` (sparse while a sparse dim is left); ``keepdim`` keeps each
        summed dim with size 1 (a kept sparse dim is index 0, and torch then marks the result uncoalesced)."""
        out = sum(self, dim, dtype=dtype)
        if not keepdim or dim is None:
            return out
        dims = sorted({self._dim(d) for d in (dim if isinstance(dim, (list, tuple)) else (dim,))})
        if isinstance(out, Tensor):  # no sparse dim left: a dense result
            return out.reshape(tuple(1 if d in dims else n for d, n in enumerate(self._size)))
        if self.dense_dim():
            raise SparseLayoutError(_refusal("sum(keepdim=True) of a hybrid sparse tensor leaving a sparse dim"))
        xp = backend.namespace_of(out._idx)
        kept = iter(range(out.sparse_dim()))
        rows = [xp.zeros(out._nnz(), dtype=np.int64) if d in dims else out._idx[next(kept)] for d in range(self.dim())]
        size = tuple(1 if d in dims else n for d, n in enumerate(self._size))
        return SparseCOOTensor(xp.stack(rows), out._vals, size, False)

    def __getitem__(self, index: Any) -> Any:
        raise SparseLayoutError(_refusal("indexing (S[...])"))

    def __setitem__(self, index: Any, value: Any) -> None:
        raise SparseLayoutError(_refusal("index assignment (S[...] = v)"))

    def __iter__(self) -> Any:
        raise SparseLayoutError(_refusal("iteration"))

    def __bool__(self) -> bool:
        raise SparseLayoutError(_refusal("bool()"))

    def __float__(self) -> builtins.float:
        raise SparseLayoutError(_refusal("float()"))

    def __int__(self) -> builtins.int:
        raise SparseLayoutError(_refusal("int()"))

    # comparisons and the remaining operators: no sparse rule (identity-based == would mislead)
    __eq__ = _refuse_operator("==")
    __ne__ = _refuse_operator("!=")
    __lt__, __le__, __gt__, __ge__ = (_refuse_operator(op) for op in ("<", "<=", ">", ">="))
    __rpow__ = _refuse_operator("**")
    __mod__ = __rmod__ = _refuse_operator("%")
    __floordiv__ = __rfloordiv__ = _refuse_operator("//")
    __and__, __or__, __xor__, __invert__, __abs__ = (_refuse_operator(op) for op in ("&", "|", "^", "~", "abs()"))
    __hash__ = object.__hash__  # stays hashable (Module attribute bookkeeping, dict keys by identity)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # NumPy's and Python's protocol probes: plain "not there"
            raise AttributeError(name)
        if hasattr(Tensor, name):
            raise UnsupportedNameError(_refusal(f"{name}"), name=name, obj=self)
        raise AttributeError(f"'SparseCOOTensor' object has no attribute {name!r}")


def _coalescing(indices: Any, size: Sequence[int]) -> tuple[Any, Any, Any, Any]:
    """How to coalesce: ``order`` (positions sorted by index, stable), ``starts`` (where each distinct index
    begins in that order), ``inverse`` (each nonzero's place in the result) and the result's indices."""
    xp = backend.namespace_of(indices)
    lin = _linear(indices, size)
    order = xp.argsort(lin, kind="stable")
    sl = lin[order]
    first = xp.concatenate([xp.ones(1, dtype=bool), sl[1:] != sl[:-1]])
    starts = xp.nonzero(first)[0]  # the new nnz: a size read from the data
    inverse = xp.empty(order.shape[0], dtype=np.int64)
    inverse[order] = xp.cumsum(first) - 1
    return order, starts, inverse, indices[:, order[starts]]


def _linear(indices: Any, size: Sequence[int]) -> Any:
    """Each nonzero's position in the sparse dims, row-major (coalesce's sort key)."""
    lin = indices[0].astype(np.int64, copy=True)
    for d in range(1, indices.shape[0]):
        lin *= size[d]
        lin += indices[d]
    return lin


def _scatter_dense(indices: Any, vals: Any, size: tuple[int, ...]) -> Any:
    out = backend.namespace_of(vals).zeros(size, dtype=vals.dtype)
    np.add.at(out, tuple(indices), vals)
    return out


def _to_dense_vjp(g, y, args, saved, needs, xp):
    return (g[tuple(xp.constant(i) for i in saved)] if xp.differentiable else g[tuple(saved)],)


_to_dense_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _gather_vjp(g, y, args, saved, needs, xp):
    return (g[xp.constant(saved)] if xp.differentiable else g[saved],)


_gather_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _identity_vjp(g, y, args, saved, needs, xp):
    return (g,)


_identity_vjp.reads_inputs = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- construction
def _index_array(indices: Any) -> Any:
    if isinstance(indices, Tensor):
        idx = indices.array
    elif isinstance(indices, SparseCOOTensor):
        raise SparseLayoutError(_refusal("sparse_coo_tensor() with sparse indices"))
    else:
        idx = tensor(indices).array
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"sparse_coo_tensor(): indices must be an int64 tensor, got dtype {idx.dtype}")
    if idx.ndim != 2:
        if idx.ndim == 1 and idx.shape[0] == 0:
            idx = idx.reshape(1, 0)
        else:
            raise ShapeError(
                f"sparse_coo_tensor(): indices must be a (sparse_dim, nnz) 2-D tensor, got shape {tuple(idx.shape)}"
            )
    return idx.astype(np.int64, copy=False)


def sparse_coo_tensor(
    indices: Any,
    values: Any,
    size: Any = None,
    *,
    dtype: Any = None,
    device: Any = None,
    pin_memory: bool = False,
    requires_grad: bool = False,
    check_invariants: Any = None,
    is_coalesced: bool | None = None,
) -> SparseCOOTensor:
    """torch.sparse_coo_tensor: ``indices`` (sparse_dim, nnz) int64, ``values`` (nnz, *dense_dims); the size
    is the largest index + 1 per sparse dim when omitted. Values that require grad stay in the graph (their
    gradient arrives as a dense (nnz, ...) tensor); ``requires_grad=True`` makes the sparse tensor a leaf."""
    if isinstance(values, Tensor):
        vals = values if dtype is None else values.to(dtype)
    elif isinstance(values, SparseCOOTensor):
        raise SparseLayoutError(_refusal("sparse_coo_tensor() with sparse values"))
    else:
        vals = tensor(values, dtype=dtype)
    if device is not None:
        vals = vals.to(device)
    idx = _index_array(indices)
    if type(idx) is not type(vals.array):
        from .devices import to_device

        idx = to_device(idx, vals.device)
    sparse_dim, nnz = idx.shape
    if vals.ndim == 0 or vals.shape[0] != nnz:
        raise ShapeError(
            f"sparse_coo_tensor(): values must be (nnz, *dense_dims) with nnz = {nnz} (indices' second dim), "
            f"got values of shape {tuple(vals.shape)}"
        )
    if size is None:
        if nnz == 0:
            upper = [0] * sparse_dim
        else:
            upper = [int(m) + 1 for m in to_host(idx.max(axis=1))]  # host: the size is read from the indices
        shape = (*upper, *vals.shape[1:])
    else:
        shape = tuple(int(s) for s in size)
        if len(shape) != sparse_dim + vals.ndim - 1:
            raise ShapeError(
                f"sparse_coo_tensor(): size {tuple(shape)} has {len(shape)} dims, but indices give {sparse_dim} sparse and "
                f"values {vals.ndim - 1} dense dims ({sparse_dim + vals.ndim - 1} in all)"
            )
        if tuple(vals.shape[1:]) != shape[sparse_dim:]:
            raise ShapeError(
                f"sparse_coo_tensor(): values' dense dims {tuple(vals.shape[1:])} differ from size's "
                f"{shape[sparse_dim:]}"
            )
        if nnz and type(idx) is np.ndarray:  # a host check: on a device it would wait for the data
            low, high = idx.min(axis=1), idx.max(axis=1)
            for d in range(sparse_dim):
                if low[d] < 0 or high[d] >= shape[d]:
                    bad = low[d] if low[d] < 0 else high[d]
                    raise OutOfRangeError(
                        f"sparse_coo_tensor(): size is inconsistent with indices: for dim {d}, size is {shape[d]} "
                        f"but found index {bad}"
                    )
    if requires_grad:
        vals = vals.detach().requires_grad_(True)
    elif vals.requires_grad:
        # a node of its own, so the sparse tensor is not the user's leaf (its .grad stays on the values)
        vals = record_op(vals.array, (vals,), _identity_vjp)
    coalesced = bool(is_coalesced) if is_coalesced is not None else nnz <= 1
    return SparseCOOTensor(idx, vals, shape, coalesced)


def _legacy(dtype: Any, name: str) -> Any:
    def make(*args: Any, device: Any = None) -> SparseCOOTensor:
        if len(args) == 3:
            return sparse_coo_tensor(args[0], args[1], args[2], dtype=dtype, device=device)
        if len(args) == 2:
            return sparse_coo_tensor(args[0], args[1], dtype=dtype, device=device)
        raise ArgumentTypeError(f"torch.sparse.{name}(): expected (indices, values) or (indices, values, size)")

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"torch.sparse.{name}(indices, values, size): the legacy constructor (values as {dtype})."
    return make


FloatTensor = _legacy(np.dtype(np.float32), "FloatTensor")
DoubleTensor = _legacy(np.dtype(np.float64), "DoubleTensor")
LongTensor = _legacy(np.dtype(np.int64), "LongTensor")


def from_dense(x: Tensor, sparse_dim: int | None = None) -> SparseCOOTensor:
    """``x.to_sparse(sparse_dim)``: the nonzeros of x (rows of its first ``sparse_dim`` dims that hold any
    nonzero), coalesced; differentiable with respect to x."""
    n = x.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 < n <= x.ndim if x.ndim else n != 0:
        raise ArgumentError(f"to_sparse(): sparse_dim must be in [1, {x.ndim}] for a {x.ndim}-D tensor, got {n}")
    xp = backend.namespace_of(x.array)
    mask = x.array != 0
    if n < x.ndim:
        mask = mask.any(axis=tuple(range(n, x.ndim)))
    idx = xp.stack(xp.nonzero(mask)).astype(np.int64) if x.ndim else xp.zeros((0, 1), dtype=np.int64)
    values = x[tuple(wrap_array(i) for i in idx)] if x.ndim else x.reshape(1)
    return SparseCOOTensor(idx, values, tuple(x.shape), True)


# ---------------------------------------------------------------------------------------------- products
def _product(s: SparseCOOTensor, d: Any, name: str) -> Any:
    """S @ d: a dense Tensor for a dense d, a sparse tensor for a sparse one."""
    if not isinstance(s, SparseCOOTensor):
        raise SparseLayoutError(f"{name}: expected a sparse COO tensor as the first operand, got {type(s).__name__}")
    if isinstance(d, SparseCOOTensor):
        return _sparse_sparse(s, d, name)
    if not isinstance(d, Tensor):
        d = tensor(d)
    if s.sparse_dim() != 2 or s.dense_dim() != 0:
        raise ShapeError(f"{name}: expected a 2-D sparse tensor with no dense dims, got size {tuple(s._size)}")
    vector = d.ndim == 1
    if d.ndim not in (1, 2) or (vector and name == "mm") or (not vector and name == "mv"):
        want = {"mm": "a 2-D", "mv": "a 1-D"}.get(name, "a 1-D or 2-D")
        raise ShapeError(f"{name}: expected {want} dense right operand, got shape {tuple(d.shape)}")
    if d.shape[0] != s._size[1]:
        raise ShapeError(
            f"{name}: sparse {tuple(s._size)} @ dense {tuple(d.shape)}: the sparse tensor's {s._size[1]} columns "
            f"must equal the dense operand's first dim ({d.shape[0]})"
        )
    if d.dtype != s.dtype:
        raise DTypeError(
            f"{name}: expected both operands to have the same dtype, got {s.dtype} (sparse) and {d.dtype} (dense); "
            "cast one side to the other's dtype"
        )
    d2 = d.array[:, None] if vector else d.array
    out = _segment_mm(s._row_order(), s._vals.array, d2, s._size[0])
    return record_op(out[:, 0] if vector else out, (s._vals, d), _spmm_vjp, saved=s)


def _row_order(self: SparseCOOTensor) -> _Order:
    if self._rows is None:
        self._rows = _Order(self._idx, self._size[0], 0, self._coalesced)
    return self._rows


def _col_order(self: SparseCOOTensor) -> _Order:
    if self._cols is None:
        self._cols = _Order(self._idx, self._size[1], 1, False)
    return self._cols


SparseCOOTensor._row_order = _row_order  # type: ignore[attr-defined]
SparseCOOTensor._col_order = _col_order  # type: ignore[attr-defined]


def _spmm_vjp(g, y, args, saved, needs, xp):
    vals, d = args
    s: SparseCOOTensor = saved
    if xp.differentiable:  # create_graph: the same products as recorded ops
        rows, cols = wrap_array(s._idx[0]), wrap_array(s._idx[1])
        g2 = g.reshape(-1, 1) if d.ndim == 1 else g
        d2 = d.reshape(-1, 1) if d.ndim == 1 else d
        gv = (g2[rows] * d2[cols]).sum(1) if needs[0] else None
        gd = None
        if needs[1]:
            st = SparseCOOTensor(s._idx[::-1], vals, (s._size[1], s._size[0]), False)
            st._rows = s._cols
            gd = _product(st, g, "matmul")
        return gv, gd
    vector = d.ndim == 1
    g2 = g[:, None] if vector else g
    d2 = d[:, None] if vector else d
    gv = _sddmm(s._idx, g2, d2) if needs[0] else None
    gd = None
    if needs[1]:
        gd = _segment_mm(s._col_order(), vals, g2, s._size[1])
        gd = gd[:, 0] if vector else gd
    return gv, gd


_spmm_vjp.reads_inputs = True  # type: ignore[attr-defined]


def _sparse_sparse(a: SparseCOOTensor, b: SparseCOOTensor, name: str) -> SparseCOOTensor:
    """sparse @ sparse: a coalesced sparse tensor of the product's structural pattern (torch's: an entry for
    every (i, k) some a[i, j] * b[j, k] reaches, explicit zeros kept). Each pair of nonzeros that meet is one
    recorded product of values, summed by coalesce, so gradients reach both values tensors as torch's do."""
    if name == "mv":
        raise SparseLayoutError(_refusal("mv with a sparse vector"))
    for which, x in (("first", a), ("second", b)):
        if x.sparse_dim() != 2 or x.dense_dim() != 0:
            raise ShapeError(
                f"{name}: sparse @ sparse expects 2-D sparse tensors with no dense dims, got size "
                f"{tuple(x._size)} as the {which} operand"
            )
    if a._size[1] != b._size[0]:
        raise ShapeError(
            f"{name}: sparse {tuple(a._size)} @ sparse {tuple(b._size)}: the first operand's {a._size[1]} columns "
            f"must equal the second operand's {b._size[0]} rows"
        )
    if a.dtype != b.dtype:
        raise DTypeError(
            f"{name}: expected both sparse operands to have the same dtype, got {a.dtype} and {b.dtype}; cast one "
            "side to the other's dtype"
        )
    xp = backend.namespace_of(a._idx)
    order = b._row_order()  # b's nonzeros grouped by row: each nonzero a[i, j] meets b's row j
    rows_a, cols_a = a._idx[0], a._idx[1]
    begin = order.indptr[cols_a]
    counts = order.indptr[cols_a + 1] - begin
    ends = xp.cumsum(counts)
    # host: the number of products sizes the arrays below (one read per product)
    pairs = int(to_host(ends[-1:]).sum())
    k = xp.arange(pairs, dtype=np.int64)
    # pair k belongs to a's nonzero `left` (searchsorted, not repeat: CuPy's repeat takes host counts only); its
    # place in b's row order is that row's start plus its rank among the pairs of that nonzero
    left = xp.searchsorted(ends, k, side="right").astype(np.int64, copy=False)
    at = begin[left] + (k - (ends - counts)[left])
    right = order.perm[at]
    idx = xp.stack([rows_a[left], order.other[at]]).astype(np.int64, copy=False)
    vals = a._vals[wrap_array(left)] * b._vals[wrap_array(right)]
    return SparseCOOTensor(idx, vals, (a._size[0], b._size[1]), False).coalesce()


def _batched_product(s: SparseCOOTensor, d: Any, name: str) -> Tensor:
    """torch.bmm(S, D): S of size (b, n, m) with 3 sparse dims, D dense (b, m, p); a dense (b, n, p) result.
    The batch is one block-diagonal (b * n, b * m) product on the segment-sum kernel, so the gradients (to
    S's values and to D) are that product's; a coalesced S stays in row order, so nothing is sorted."""
    if not isinstance(s, SparseCOOTensor):
        raise SparseLayoutError(f"{name}: expected a sparse COO tensor as the first operand, got {type(s).__name__}")
    if isinstance(d, SparseCOOTensor):
        raise UnimplementedError(
            f"{name}: the second operand must be dense (torch's bmm_sparse: Tensor 'mat2' must be dense), got a "
            f"sparse tensor of size {tuple(d._size)}; call .to_dense() on it"
        )
    if not isinstance(d, Tensor):
        d = tensor(d)
    if s.sparse_dim() != 3 or s.dense_dim() != 0:
        raise ShapeError(
            f"{name}: expected a sparse tensor with 3 sparse dims and no dense dims (a batch of sparse matrices), "
            f"got size {tuple(s._size)} with {s.sparse_dim()} sparse and {s.dense_dim()} dense dims"
        )
    b, n, m = s._size
    if d.ndim != 3 or d.shape[0] != b or d.shape[1] != m:
        raise ShapeError(
            f"{name}: sparse {tuple(s._size)} @ dense {tuple(d.shape)}: expected a 3-D dense operand of shape "
            f"({b}, {m}, p) (the same batch size, rows equal to the sparse matrices' {m} columns)"
        )
    if d.dtype != s.dtype:
        raise DTypeError(
            f"{name}: expected both operands to have the same dtype, got {s.dtype} (sparse) and {d.dtype} (dense); "
            "cast one side to the other's dtype"
        )
    p = d.shape[2]
    batch, rows, cols = s._idx[0], s._idx[1], s._idx[2]
    xp = backend.namespace_of(s._idx)
    flat = SparseCOOTensor(xp.stack([batch * n + rows, batch * m + cols]), s._vals, (b * n, b * m), s._coalesced)
    return _product(flat, d.reshape(b * m, p), "mm").reshape(b, n, p)


def _index_select(s: SparseCOOTensor, dim: int, index: Any) -> SparseCOOTensor:
    """torch's index_select of a sparse tensor: the nonzeros whose index along ``dim`` is ``index[p]`` become
    nonzeros at ``p`` (in ``index``'s order, each in the order S holds them; uncoalesced, as torch's). The new
    values are a recorded gather of S's values, so gradients reach them (torch's backward refuses here). Along
    a dense dim the values are selected."""
    d = s._dim(dim)
    if isinstance(index, SparseCOOTensor) or not isinstance(index, Tensor):
        raise OutOfRangeError(
            f"index_select(): argument index must be 1-D strided (non-sparse) long-tensor, got {type(index).__name__}"
        )
    idx = index.array
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise OutOfRangeError(
            "index_select(): argument index must be 1-D strided (non-sparse) long-tensor, got a tensor of shape "
            f"{tuple(idx.shape)} and dtype {idx.dtype}"
        )
    xp = backend.namespace_of(s._idx)
    idx = like(idx, s._idx).astype(np.int64, copy=False)  # on S's device
    length = s._size[d]
    if idx.shape[0]:
        # host: two numbers, for the range check torch makes
        lo, hi = (builtins.int(v) for v in to_host(xp.stack([idx.min(), idx.max()])))
        if hi >= length or lo < -length:
            bad = hi if hi >= length else lo
            raise OutOfRangeError(
                f"index_select(): index contains {bad} that is out of range for tensor of size "
                f"{list(s._size)} at dimension {d}"
            )
        idx = xp.where(idx < 0, idx + length, idx)
    size = s._size[:d] + (builtins.int(idx.shape[0]),) + s._size[d + 1 :]
    sd = s.sparse_dim()
    if d >= sd:  # a dense dim: every nonzero keeps its place, its values are selected
        return SparseCOOTensor(s._idx, s._vals.index_select(d - sd + 1, wrap_array(idx)), size, s._nnz() <= 1)
    key = s._idx[d]
    order = xp.argsort(key, kind="stable")
    ordered = key[order]
    begin = xp.searchsorted(ordered, idx, side="left")
    counts = xp.searchsorted(ordered, idx, side="right") - begin
    ends = xp.cumsum(counts)
    # host: the number of selected nonzeros sizes the arrays below
    total = builtins.int(to_host(ends[-1:]).sum()) if idx.shape[0] else 0
    k = xp.arange(total, dtype=np.int64)
    # selected nonzero k comes from index position `at` (searchsorted, not repeat: CuPy's repeat takes host
    # counts only) and is that position's k-th match in S's order
    at = xp.searchsorted(ends, k, side="right").astype(np.int64, copy=False)
    picked = order[begin[at] + (k - (ends - counts)[at])]
    new_idx = s._idx[:, picked].copy()
    new_idx[d] = at
    return SparseCOOTensor(new_idx, s._vals[wrap_array(picked)], size, total <= 1)


def _dense_product(a: Any, s: SparseCOOTensor, name: str) -> Tensor:
    """dense @ sparse (torch.mm(dense, S), dense @ S): a dense result, computed as ``(S^T @ a^T)^T`` on the
    segment-sum product (S's two orders are cached on S, so a matrix reused each step sorts once)."""
    if not isinstance(a, Tensor):
        a = tensor(a)
    if s.sparse_dim() != 2 or s.dense_dim() != 0:
        raise ShapeError(f"{name}: expected a 2-D sparse tensor with no dense dims, got size {tuple(s._size)}")
    if a.ndim == 0 or (name != "matmul" and a.ndim != 2):
        want = "a 2-D" if name != "matmul" else "an at least 1-D"
        raise ShapeError(f"{name}: expected {want} dense left operand, got shape {tuple(a.shape)}")
    if a.shape[-1] != s._size[0]:
        raise ShapeError(
            f"{name}: dense {tuple(a.shape)} @ sparse {tuple(s._size)}: the dense operand's last dim "
            f"({a.shape[-1]}) must equal the sparse tensor's {s._size[0]} rows"
        )
    if a.dtype != s.dtype:
        raise DTypeError(
            f"{name}: expected both operands to have the same dtype, got {a.dtype} (dense) and {s.dtype} (sparse); "
            "cast one side to the other's dtype"
        )
    s._row_order(), s._col_order()  # cached on S: the transpose below borrows them
    st = s.t()
    if a.ndim == 1:
        return _product(st, a, "matmul")
    a2 = a.reshape(-1, a.shape[-1]) if a.ndim > 2 else a
    out = _product(st, a2.t(), "matmul").t()
    return out.reshape(*a.shape[:-1], s._size[1]) if a.ndim > 2 else out


def _times_dense(s: SparseCOOTensor, d: Tensor) -> Any:
    """S * dense (torch: a sparse result of S's pattern, each stored value times the dense entry at its index;
    the dense tensor broadcasts to S's size, not beyond it). Differentiable with respect to both. Typed Any:
    Tensor's ``*`` returns it, keeping its Tensor annotation (torch's, where a sparse tensor is a Tensor)."""
    try:
        shape = np.broadcast_shapes(tuple(d.shape), s._size)
    except ValueError:
        shape = None
    if shape != s._size:
        raise ShapeError(
            f"mul: sparse {tuple(s._size)} * dense {tuple(d.shape)}: the dense tensor must broadcast to the sparse "
            "tensor's size"
        )
    if tuple(d.shape) != s._size:
        d = d.expand(*s._size)
    picked = d[tuple(wrap_array(i) for i in s._idx)]  # (nnz, *dense_dims): the entries on S's pattern
    return s._with(s._vals * picked, keep_orders=True)


def _dense_plus(d: Tensor, s: SparseCOOTensor, alpha: Any = 1) -> Tensor:
    """``d + alpha * S`` (torch's add(dense, sparse)): a dense tensor of the two dtypes' promotion (a float
    side wins, as torch's), S's values scattered into a copy of d; gradients reach d and S's values."""
    if tuple(d.shape) != s._size:
        raise ShapeError(
            f"add: dense {tuple(d.shape)} + sparse {tuple(s._size)}: expected the same size (dense-sparse "
            "addition does not broadcast, as in torch)"
        )
    da, dv = d.array.dtype, s.dtype
    if (da.kind == "f") != (dv.kind == "f"):
        dtype = da if da.kind == "f" else dv
    else:
        dtype = np.result_type(da, dv)
    dense = d if da == dtype else d.to(dtype)
    vals = s._vals if dv == dtype else s._vals.to(dtype)
    if not (isinstance(alpha, builtins.int) and alpha == 1):
        vals = vals * alpha
    out = dense.array.copy()
    where = tuple(s._idx)
    if s._coalesced:  # no index twice: a plain fancy-index add
        out[where] += vals.array
    else:
        np.add.at(out, where, vals.array)
    return record_op(out, (dense, vals), _dense_plus_vjp, saved=s._idx)


def _dense_plus_vjp(g, y, args, saved, needs, xp):
    gv = None
    if needs[1]:
        gv = g[tuple(xp.constant(i) for i in saved)] if xp.differentiable else g[tuple(saved)]
    return (g if needs[0] else None, gv)


_dense_plus_vjp.reads_inputs = False  # type: ignore[attr-defined]


def mm(mat1: Any, mat2: Any, reduce: str = "sum") -> Any:
    """torch.sparse.mm: sparse @ dense (dense), dense @ sparse (dense), sparse @ sparse (sparse) or dense @ dense,
    differentiable with respect to both operands."""
    if reduce != "sum":
        raise ArgumentError(f"sparse.mm: reduce={reduce!r} is not supported; only 'sum'")
    return _either(mat1, mat2, "sparse.mm")


def spmm(mat1: Any, mat2: Any) -> Any:
    """torch.spmm: as :func:`mm` (torch.spmm of two dense tensors is torch.mm)."""
    return _either(mat1, mat2, "spmm")


def _either(mat1: Any, mat2: Any, name: str) -> Any:
    if isinstance(mat1, SparseCOOTensor):
        return _product(mat1, mat2, name)
    if isinstance(mat2, SparseCOOTensor):
        return _dense_product(mat1, mat2, name)
    from .ops import mm as dense_mm  # ops import this module's callers only: imported when used

    return dense_mm(mat1, mat2)


def layout_factory(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A factory called with ``layout=sparse_coo``: zeros and empty make torch's empty sparse tensor of the size
    (nnz 0, coalesced; dtype, device and requires_grad as asked); the others refuse, as torch's do. Typed Any:
    the factories that return it keep their Tensor annotation."""
    name = getattr(fn, "__name__", "factory")
    if name not in ("zeros", "empty"):
        raise SparseLayoutError(
            f"{name}(..., layout=downslope.sparse_coo): only zeros and empty make a sparse tensor (an empty one), "
            f"as in torch; make the dense tensor and call .to_sparse()"
        )
    rest = {k: v for k, v in kwargs.items() if k not in ("layout", "pin_memory", "memory_format", "non_blocking")}
    size = rest.pop("size", None)
    if size is None:
        size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    shape = tuple(int(n) for n in size)
    vals = fn(0, **rest)  # (nnz = 0,) values with the factory's dtype, device and requires_grad
    idx = backend.namespace_of(vals.array).zeros((len(shape), 0), dtype=np.int64)
    return SparseCOOTensor(idx, vals, shape, True)


def addmm(mat: Any, mat1: Any, mat2: Any, *, beta: Any = 1.0, alpha: Any = 1.0) -> Tensor:
    """torch.sparse.addmm: ``beta * mat + alpha * (mat1 @ mat2)`` with mat1 sparse."""
    product = _product(mat1, mat2, "sparse.addmm")
    if not isinstance(mat, Tensor):
        mat = tensor(mat)
    return mat * beta + product * alpha if beta != 1 or alpha != 1 else mat + product


# ---------------------------------------------------------------------------------------------- reductions
def sum(input: Any, dim: Any = None, dtype: Any = None) -> Any:  # noqa: A001  (torch.sparse.sum)
    """torch.sparse.sum: every value summed (a dense 0-d tensor) or over ``dim``: a sparse tensor while some
    sparse dim is left, else dense."""
    if not isinstance(input, SparseCOOTensor):
        raise SparseLayoutError(f"sparse.sum: expected a sparse COO tensor, got {type(input).__name__}")
    s = input if dtype is None else input.to(dtype)
    if dim is None:
        return s._vals.sum()
    dims = sorted({s._dim(d) for d in (dim if isinstance(dim, (list, tuple)) else (dim,))})
    sd = s.sparse_dim()
    sparse_gone = [d for d in dims if d < sd]
    dense_gone = [d - sd + 1 for d in dims if d >= sd]
    vals = s._vals.sum(dim=tuple(dense_gone)) if dense_gone else s._vals
    if len(sparse_gone) == sd:
        return vals.sum(0)
    keep = [d for d in range(sd) if d not in sparse_gone]
    size = tuple(s._size[d] for d in keep) + tuple(n for i, n in enumerate(s._size[sd:], start=sd) if i not in dims)
    return SparseCOOTensor(s._idx[keep], vals, size, False).coalesce()


def _softmax_groups(input: Any, dim: int, dtype: Any, fn: str) -> tuple[SparseCOOTensor, Any, int, Any, Any]:
    """(the coalesced input, each stored entry's group along ``dim``, the number of groups, the values
    less their group's largest, those shifted values' exponentials summed per group)."""
    if not isinstance(input, SparseCOOTensor):
        raise SparseLayoutError(f"{fn}: expected a sparse COO tensor, got {type(input).__name__}")
    s = (input if dtype is None else input.to(dtype)).coalesce()
    d = s._dim(dim)
    if d >= s.sparse_dim():
        raise SparseLayoutError(_refusal(f"{fn} over a dense dim"))
    xp = backend.namespace_of(s._idx)
    keep = [i for i in range(s.sparse_dim()) if i != d]
    if keep:
        lin = _linear(s._idx[keep], [s._size[i] for i in keep])
        distinct, group = xp.unique(lin, return_inverse=True)
        groups = distinct.shape[0]
    else:
        group = xp.zeros(s._nnz(), dtype=np.int64)
        groups = 1
    group = group.reshape(-1)
    v = s._vals.array
    top = xp.full((groups, *v.shape[1:]), -np.inf, dtype=v.dtype)
    np.maximum.at(top, group, v)
    shifted = v - top[group]
    total = xp.zeros((groups, *v.shape[1:]), dtype=v.dtype)
    np.add.at(total, group, xp.exp(shifted))
    return s, group, groups, shifted, total


def softmax(input: Any, dim: int, dtype: Any = None) -> SparseCOOTensor:
    """torch.sparse.softmax: softmax along ``dim`` over the stored entries only (absent ones count as -inf);
    the result has the coalesced input's pattern."""
    s, group, groups, shifted, total = _softmax_groups(input, dim, dtype, "sparse.softmax")
    out = backend.namespace_of(shifted).exp(shifted) / total[group]
    values = record_op(out, (s._vals,), _softmax_vjp, saved=(group, groups))
    return s._with(values)


def log_softmax(input: Any, dim: int, dtype: Any = None) -> SparseCOOTensor:
    """torch.sparse.log_softmax: log_softmax along ``dim`` over the stored entries only (absent ones count
    as -inf); the result has the coalesced input's pattern.

    Example:
        >>> import downslope as ds
        >>> s = ds.sparse_coo_tensor([[0, 0], [0, 2]], [1.0, 1.0], (1, 3))
        >>> ds.sparse.log_softmax(s, 1).values()
        tensor([-0.6931, -0.6931])
    """
    s, group, groups, shifted, total = _softmax_groups(input, dim, dtype, "sparse.log_softmax")
    out = shifted - backend.namespace_of(total).log(total)[group]
    values = record_op(out, (s._vals,), _log_softmax_vjp, saved=(group, groups))
    return s._with(values)


def _log_softmax_vjp(g, y, args, saved, needs, xp):
    # d/dx of x - log sum exp x within each group: g - softmax * (the group's sum of g)
    group, groups = saved
    if xp.differentiable:
        idx = wrap_array(group)
        zeros = wrap_array(backend.namespace_of(group).zeros((groups, *g.shape[1:]), dtype=g.dtype))
        from .ops import index_add

        sums = index_add(zeros, 0, idx, g)
        return (g - y.exp() * sums[idx],)
    sums = backend.namespace_of(g).zeros((groups, *g.shape[1:]), dtype=g.dtype)
    np.add.at(sums, group, g)
    return (g - backend.namespace_of(y).exp(y) * sums[group],)


_log_softmax_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _softmax_vjp(g, y, args, saved, needs, xp):
    group, groups = saved
    gy = g * y
    if xp.differentiable:
        idx = wrap_array(group)
        zeros = wrap_array(backend.namespace_of(group).zeros((groups, *gy.shape[1:]), dtype=gy.dtype))
        from .ops import index_add

        sums = index_add(zeros, 0, idx, gy)
        return (gy - y * sums[idx],)
    sums = backend.namespace_of(gy).zeros((groups, *gy.shape[1:]), dtype=gy.dtype)
    np.add.at(sums, group, gy)
    return (gy - y * sums[group],)


_softmax_vjp.reads_inputs = False  # type: ignore[attr-defined]
