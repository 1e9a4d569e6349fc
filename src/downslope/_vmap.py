"""Batched tensors for :func:`downslope.func.vmap`: the function runs once on the whole batch.

A :class:`BatchedTensor` stands for one element of a batch inside the vmapped function: its shape,
``ndim`` and dtype are an element's, while it carries the whole batch as a plain tensor (``value``)
whose dim 0 is the batch. Operations on it follow batching rules (as functorch's): pointwise ops
broadcast the element shapes and keep the batch in front, dims given to reductions and shape ops
are moved past the batch, ``linear``/``conv2d`` fold the batch into a matrix product's batch or a
convolution's groups, losses reduce each element's values. Every rule is made of ordinary recorded
ops on ``value``, so gradients flow through them, and the ``grad``/``jacrev`` transforms of
``func.py`` differentiate per element (see ``func._prepare``).

An operation without a rule never sees a wrong value: reading a BatchedTensor's ``array`` (what
every op does to compute) raises :class:`NoRule`, and so does anything that would need the values
of one element (``.item()``, ``bool()``, data-dependent control flow). A function of the rule tables
whose rule raises it runs per element alone (``_loop_rule``: the op on each element's slices, the
results stacked), as torch's fallback does, so the vmapped function still runs once; elsewhere, or
when that op draws random numbers or its results differ in shape, vmap runs the whole function once
per element instead (its loop), so results do not depend on which path ran.

Module-level functions (``F.linear``, ``ds.matmul``, the losses...) and the two layers whose forward
reads arrays directly (``nn.Linear``, the convolutions) get their rules by being replaced, while a
batched call runs, with dispatchers that call the rule when an argument is batched and the original
otherwise (another thread sees the original behaviour). The rules are written in terms of the
originals.
"""

# BatchedTensor stands in for a Tensor with rules of its own: its methods take the arguments the rules
# support (narrower than Tensor's; anything else makes vmap loop)
# mypy: disable-error-code="override, misc"
from __future__ import annotations

import builtins
import functools
import importlib
import operator
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .errors import ArgumentTypeError, StateError
from .tensor import Tensor

__all__ = ["BatchedTensor", "NoRule", "Refused", "installed", "batch_size_now", "unwrap"]


class NoRule(Exception):
    """An operation met a batched tensor it has no batching rule for (vmap then loops)."""


class Refused(StateError):
    """An operation torch's vmap refuses, refused with torch's error (the loop would give another
    result, so vmap does not fall back to it)."""


def _no_rule(what: str) -> NoRule:
    return NoRule(f"vmap: no batching rule for {what}")


# The batch sizes of the batched calls running now, innermost last (per thread).
_state = threading.local()


def _sizes() -> list[int]:
    sizes = getattr(_state, "sizes", None)
    if sizes is None:
        sizes = _state.sizes = []
    return sizes


def batch_size_now() -> int | None:
    """The batch size of the innermost batched vmap call running in this thread, or None."""
    sizes = _sizes()
    return sizes[-1] if sizes else None


class BatchedTensor(Tensor):
    """One element of a batch, as the vmapped function sees it (see the module's docstring)."""

    __slots__ = ("value",)
    value: Any  # the whole batch: a plain Tensor whose dim 0 is the batch

    # An operand on the right of a Tensor operator: Python tries a subclass's reflected method first.
    def __new__(cls, value: Any) -> BatchedTensor:  # noqa: D102
        self = object.__new__(cls)
        self.value = value
        return self

    def __init__(self, value: Any) -> None:  # Tensor's __init__ is not run: no array of its own
        pass

    # --- what an element looks like -----------------------------------------------------------
    @property
    def array(self) -> Any:
        raise _no_rule("an operation reading the values of one element")

    @array.setter
    def array(self, value: Any) -> None:
        raise _no_rule("a write of an element's values")

    @property
    def shape(self) -> Any:
        return tuple(self.value.shape[1:])

    @property
    def ndim(self) -> int:
        return self.value.ndim - 1

    @property
    def dtype(self) -> Any:
        return self.value.dtype

    @property
    def device(self) -> Any:
        return self.value.device

    @property
    def requires_grad(self) -> bool:
        return bool(self.value.requires_grad)

    @property
    def is_leaf(self) -> bool:
        raise _no_rule("is_leaf")

    def dim(self) -> int:
        return self.value.ndim - 1

    def ndimension(self) -> int:
        return self.value.ndim - 1

    def size(self, dim: int | None = None) -> Any:
        shape = self.shape
        if dim is None:
            return self.value.size()[1:]
        return shape[dim]

    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor")
        return int(self.shape[0])

    def __iter__(self) -> Iterator[Any]:
        return iter(self.unbind(0))

    def __repr__(self) -> str:
        return f"BatchedTensor(lvl={len(_sizes())}, bdim=0, value={self.value!r})"

    __hash__ = object.__hash__

    # --- pointwise -----------------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        return _binary(operator.add, self, other)

    def __radd__(self, other: Any) -> Any:
        return _binary(operator.add, other, self)

    def __sub__(self, other: Any) -> Any:
        return _binary(operator.sub, self, other)

    def __rsub__(self, other: Any) -> Any:
        return _binary(operator.sub, other, self)

    def __mul__(self, other: Any) -> Any:
        return _binary(operator.mul, self, other)

    def __rmul__(self, other: Any) -> Any:
        return _binary(operator.mul, other, self)

    def __truediv__(self, other: Any) -> Any:
        return _binary(operator.truediv, self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _binary(operator.truediv, other, self)

    def __pow__(self, other: Any) -> Any:
        return _binary(operator.pow, self, other)

    def __rpow__(self, other: Any) -> Any:
        return _binary(operator.pow, other, self)

    def __lt__(self, other: Any) -> Any:
        return _binary(operator.lt, self, other)

    def __le__(self, other: Any) -> Any:
        return _binary(operator.le, self, other)

    def __gt__(self, other: Any) -> Any:
        return _binary(operator.gt, self, other)

    def __ge__(self, other: Any) -> Any:
        return _binary(operator.ge, self, other)

    def __eq__(self, other: Any) -> Any:
        return _binary(operator.eq, self, other)

    def __ne__(self, other: Any) -> Any:
        return _binary(operator.ne, self, other)

    def __mod__(self, other: Any) -> Any:
        return _binary(operator.mod, self, other)

    def __rmod__(self, other: Any) -> Any:
        return _binary(operator.mod, other, self)

    def __floordiv__(self, other: Any) -> Any:
        return _binary(operator.floordiv, self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        return _binary(operator.floordiv, other, self)

    def __and__(self, other: Any) -> Any:
        return _binary(operator.and_, self, other)

    def __rand__(self, other: Any) -> Any:
        return _binary(operator.and_, other, self)

    def __or__(self, other: Any) -> Any:
        return _binary(operator.or_, self, other)

    def __ror__(self, other: Any) -> Any:
        return _binary(operator.or_, other, self)

    def __xor__(self, other: Any) -> Any:
        return _binary(operator.xor, self, other)

    def __rxor__(self, other: Any) -> Any:
        return _binary(operator.xor, other, self)

    def __invert__(self) -> Any:
        return BatchedTensor(~self.value)

    def __neg__(self) -> Any:
        return BatchedTensor(-self.value)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return BatchedTensor(abs(self.value))

    def __matmul__(self, other: Any) -> Any:
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _matmul(other, self)

    def add(self, other: Any, *, alpha: Any = 1) -> Any:
        return _binary(operator.add, self, other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: Any = 1) -> Any:
        return _binary(operator.sub, self, other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Any:
        return _binary(operator.mul, self, other)

    def div(self, other: Any) -> Any:
        return _binary(operator.truediv, self, other)

    def pow(self, other: Any) -> Any:
        return _binary(operator.pow, self, other)

    def matmul(self, other: Any) -> Any:
        return _matmul(self, other)

    def mm(self, other: Any) -> Any:
        return _matmul(self, other)

    def maximum(self, other: Any) -> Any:
        from .ops.arithmetic import maximum

        return _binary(maximum, self, other)

    def minimum(self, other: Any) -> Any:
        from .ops.arithmetic import minimum

        return _binary(minimum, self, other)

    def where(self, condition: Any, other: Any) -> Any:
        from .ops.pointwise import where

        return _where_rule(where, condition, self, other)

    def clamp(self, min: Any = None, max: Any = None) -> Any:
        if isinstance(min, Tensor) or isinstance(max, Tensor):  # bounds broadcast with the element
            _batch_of(self, min, max)
            n = builtins.max(_logical_ndim(t) for t in (self, min, max))
            bounds = [_aligned(t, n) if isinstance(t, Tensor) else t for t in (min, max)]
            return BatchedTensor(_aligned(self, n).clamp(*bounds))
        return BatchedTensor(self.value.clamp(min, max))

    def new_zeros(self, *args: Any, **kwargs: Any) -> Any:
        return self.value.new_zeros(*args, **kwargs)  # unbatched, as torch's: only dtype and device are taken

    def new_ones(self, *args: Any, **kwargs: Any) -> Any:
        return self.value.new_ones(*args, **kwargs)

    def new_full(self, *args: Any, **kwargs: Any) -> Any:
        return self.value.new_full(*args, **kwargs)

    def new_empty(self, *args: Any, **kwargs: Any) -> Any:
        return self.value.new_empty(*args, **kwargs)

    def new_tensor(self, *args: Any, **kwargs: Any) -> Any:
        return self.value.new_tensor(*args, **kwargs)

    clip = clamp

    def to(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
            raise _no_rule("to(other tensor)")
        return BatchedTensor(self.value.to(*args, **kwargs))

    def type_as(self, other: Any) -> Any:
        return BatchedTensor(self.value.to(other.dtype))

    # --- shapes --------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Any:
        return BatchedTensor(self.value.reshape(len(self.value), *_shape_args(shape)))

    def view(self, *shape: Any) -> Any:
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
            raise _no_rule("view(dtype)")
        return BatchedTensor(self.value.reshape(len(self.value), *_shape_args(shape)))

    def reshape_as(self, other: Any) -> Any:
        return self.reshape(*other.shape)

    view_as = reshape_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Any:
        n = self.ndim
        if n == 0:
            return BatchedTensor(self.value.reshape(len(self.value), 1))
        return BatchedTensor(self.value.flatten(_dim(start_dim, n) + 1, _dim(end_dim, n) + 1))

    def unflatten(self, dim: int, sizes: Any) -> Any:
        return BatchedTensor(self.value.unflatten(_dim(dim, self.ndim) + 1, sizes))

    def unsqueeze(self, dim: int) -> Any:
        return BatchedTensor(self.value.unsqueeze(_dim(dim, self.ndim + 1) + 1))

    def squeeze(self, dim: Any = None) -> Any:
        n = self.ndim
        if dim is None:
            return BatchedTensor(self.value.reshape(len(self.value), *[s for s in self.shape if s != 1]))
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if n == 0:
            return self
        return BatchedTensor(self.value.squeeze(tuple(_dim(d, n) + 1 for d in dims)))

    def permute(self, *dims: Any) -> Any:
        dims = _shape_args(dims)
        n = self.ndim
        return BatchedTensor(self.value.permute(0, *[_dim(d, n) + 1 for d in dims]))

    def transpose(self, dim0: int, dim1: int) -> Any:
        n = self.ndim
        return BatchedTensor(self.value.transpose(_dim(dim0, n) + 1, _dim(dim1, n) + 1))

    def swapaxes(self, dim0: int, dim1: int) -> Any:
        return self.transpose(dim0, dim1)

    def movedim(self, source: int, destination: int) -> Any:
        n = self.ndim
        return BatchedTensor(self.value.movedim(_dim(source, n) + 1, _dim(destination, n) + 1))

    def t(self) -> Any:
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self) -> Any:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Any:
        return self.transpose(-2, -1)

    def expand(self, *sizes: Any) -> Any:
        sizes = _shape_args(sizes)
        pad = len(sizes) - self.ndim
        if pad < 0:
            raise _no_rule("expand to fewer dims")
        value = self.value
        if pad:
            value = value.reshape(len(value), *([1] * pad), *self.shape)
        return BatchedTensor(value.expand(len(value), *sizes))

    def expand_as(self, other: Any) -> Any:
        return self.expand(*other.shape)

    def narrow(self, dim: int, start: Any, length: int) -> Any:
        return BatchedTensor(self.value.narrow(_dim(dim, self.ndim) + 1, start, length))

    def unbind(self, dim: int = 0) -> tuple[Any, ...]:
        return tuple(BatchedTensor(v) for v in self.value.unbind(_dim(dim, self.ndim) + 1))

    def split(self, split_size: Any, dim: int = 0) -> tuple[Any, ...]:
        return tuple(BatchedTensor(v) for v in self.value.split(split_size, _dim(dim, self.ndim) + 1))

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Any, ...]:
        return tuple(BatchedTensor(v) for v in self.value.chunk(chunks, _dim(dim, self.ndim) + 1))

    def __getitem__(self, index: Any) -> Any:
        return _getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise _no_rule("a write into an element")

    # --- reductions and softmax ----------------------------------------------------------------
    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
        return _reduce(self, "sum", dim, keepdim, dtype=dtype)

    def mean(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
        return _reduce(self, "mean", dim, keepdim, dtype=dtype)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Any:
        return _reduce(self, "amax", dim, keepdim)

    def amin(self, dim: Any = None, keepdim: bool = False) -> Any:
        return _reduce(self, "amin", dim, keepdim)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Any:
        return _reduce(self, "logsumexp", dim, keepdim)

    def prod(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
        if isinstance(dim, (tuple, list)):
            raise _no_rule("prod over several dims")
        return _reduce(self, "prod", dim, keepdim, dtype=dtype)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Any:
        if p in ("fro", 2, 2.0) and not keepdim:
            return (self * self).sum(dim).sqrt()
        raise _no_rule(f"norm(p={p!r})")

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return _reduce(self, "amax", None, False)
        if isinstance(dim, Tensor):
            return _binary(_maximum(), self, dim)
        found = self.value.max(_dim(dim, self.ndim) + 1, keepdim)
        return type(found)(BatchedTensor(found[0]), BatchedTensor(found[1]))

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return _reduce(self, "amin", None, False)
        if isinstance(dim, Tensor):
            raise _no_rule("min(other)")
        found = self.value.min(_dim(dim, self.ndim) + 1, keepdim)
        return type(found)(BatchedTensor(found[0]), BatchedTensor(found[1]))

    def argmax(self, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return BatchedTensor(self.value.reshape(len(self.value), -1).argmax(1))
        return BatchedTensor(self.value.argmax(_dim(dim, self.ndim) + 1, keepdim))

    def softmax(self, dim: int, dtype: Any = None) -> Any:
        return BatchedTensor(self.value.softmax(_dim(dim, self.ndim) + 1, dtype=dtype))

    def log_softmax(self, dim: int, dtype: Any = None) -> Any:
        return BatchedTensor(self.value.log_softmax(_dim(dim, self.ndim) + 1, dtype=dtype))

    def cumsum(self, dim: int, dtype: Any = None) -> Any:
        return BatchedTensor(self.value.cumsum(_dim(dim, self.ndim) + 1, dtype=dtype))


def _maximum() -> Callable[..., Any]:
    from .ops.arithmetic import maximum

    return maximum


def _pointwise_method(name: str) -> Callable[..., Any]:
    def method(self: BatchedTensor, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
            raise _no_rule(f"{name} with a tensor argument")
        return BatchedTensor(getattr(self.value, name)(*args, **kwargs))

    method.__name__ = name
    return method


# Methods of one element that act on each value alone (extra arguments are numbers): the batch rides along.
for _name in (
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "abs", "neg", "negative",
    "square", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "sign", "floor", "ceil", "round", "trunc",
    "reciprocal", "erf", "asin", "acos", "atan", "sinh", "cosh", "float", "double", "half", "long", "int",
    "bool", "detach", "clone", "contiguous", "nan_to_num", "logit", "frac", "isnan", "isinf", "isfinite",
    "logical_not", "sgn", "deg2rad", "rad2deg", "erfc", "lgamma", "digamma", "asinh", "acosh", "atanh",
):  # fmt: skip
    setattr(BatchedTensor, _name, _pointwise_method(_name))


def _along_dim_method(name: str) -> Callable[..., Any]:
    def method(self: BatchedTensor, dim: Any, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
            raise _no_rule(f"{name} with a tensor argument")
        return _wrapped(getattr(self.value, name)(_dim(dim, self.ndim) + 1, *args, **kwargs))

    method.__name__ = name
    return method


def _function_method(module: str, name: str) -> Callable[..., Any]:
    """A method that calls its module-level function, whose batching rule is in place while a batched
    call runs (Tensor's method is bound to the op itself, past the rule)."""

    def method(self: BatchedTensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(self, *args, **kwargs)

    method.__name__ = name
    return method


_METHOD_FUNCTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("downslope.ops.rearrange", ("roll",)),
    ("downslope.ops.sorting", ("median", "nanmedian", "mode", "kthvalue")),
    ("downslope.ops.reductions", ("any", "all", "argmin", "nansum", "nanmean", "count_nonzero")),
    ("downslope.ops.linalg", ("diagonal", "trace")),
]
for _module, _names in _METHOD_FUNCTIONS:
    for _name in _names:
        setattr(BatchedTensor, _name, _function_method(_module, _name))


# Methods along one dim bound to their ops directly (not through the ops namespace the rules replace).
for _name in ("cumprod", "cummax", "cummin", "logcumsumexp"):
    setattr(BatchedTensor, _name, _along_dim_method(_name))


def _dim(d: Any, n: int) -> int:
    """``d`` as a dim of an element of ``n`` dims (0-d elements take 0 and -1, as torch)."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise _no_rule(f"dim={d!r}")
    size = max(n, 1)
    if not -size <= d < size:
        raise _no_rule(f"dim={d} out of range for {n} dims")  # the loop raises torch's error
    return int(d) % size


def _shape_args(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _index_parts(index: Any) -> tuple[tuple[Any, ...], list[int]]:
    """An element's index as a tuple, and the positions of its advanced (tensor) indices among the
    parts that are not ints (an int selects first, as torch's indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    advanced = []
    k = 0
    for p in parts:
        if isinstance(p, (Tensor, np.ndarray, list)):
            if (p.dtype if isinstance(p, (Tensor, np.ndarray)) else np.asarray(p).dtype) == np.bool_:
                raise _no_rule("indexing with a boolean mask")  # its result's shape depends on the values
            advanced.append(k)
        elif not (p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))):
            raise _no_rule(f"an index of type {type(p).__name__}")
        if not isinstance(p, (int, np.integer)):
            k += 1
    return parts, advanced


def _getitem(x: Any, index: Any) -> Any:
    """``x[index]`` for one element (``x`` batched, or an unbatched tensor indexed by batched tensors).

    Basic indexing takes the batch dim whole in front. With advanced indices, an ``arange`` over the
    batch joins them as the first advanced index (each element's indices pick from its own slice);
    NumPy's rule then puts the advanced dims right after the batch, which is where the element's own
    result has them unless its advanced indices are adjacent and come after other dims: those are
    moved back in place."""
    from .tensor import arange

    parts, advanced = _index_parts(index)
    batched = any(isinstance(p, BatchedTensor) for p in parts)
    size = _batch_of(x, *parts)
    n = _logical_ndim(x)
    v = _expanded(x, size)
    adjacent = all(b - a == 1 for a, b in zip(advanced, advanced[1:]))
    if not advanced or (not batched and adjacent):
        return BatchedTensor(v[(slice(None), *parts)])
    ranks = [p.ndim if isinstance(p, (Tensor, np.ndarray)) else np.ndim(p) for p in parts if _is_advanced(p)]
    k = max(ranks)
    rows = arange(size, device=v.device).reshape(size, *([1] * k))
    batched_parts = []
    for p in parts:
        if isinstance(p, BatchedTensor):
            pv = p.value
            p = pv.reshape(size, *([1] * (k - p.ndim)), *pv.shape[1:])
        batched_parts.append(p)
    out = v[(rows, *batched_parts)]  # (B, *advanced dims, *the other dims in order)
    if not adjacent or advanced[0] == 0:
        return BatchedTensor(out)
    # the element's advanced dims sit after the dims its parts before them make
    before = [p for p in parts[: _part_position(parts, advanced[0])] if not isinstance(p, (int, np.integer))]
    consumed = sum(1 for p in parts if p is not None and p is not Ellipsis)
    lead = sum(n - consumed if p is Ellipsis else 1 for p in before)
    order = [0, *range(1 + k, 1 + k + lead), *range(1, 1 + k), *range(1 + k + lead, out.ndim)]
    return BatchedTensor(out.permute(*order))


def _is_advanced(p: Any) -> bool:
    return isinstance(p, (Tensor, np.ndarray, list))


def _part_position(parts: tuple[Any, ...], k: int) -> int:
    """The position in ``parts`` of the ``k``-th part that is not an int."""
    seen = -1
    for i, p in enumerate(parts):
        if not isinstance(p, (int, np.integer)):
            seen += 1
            if seen == k:
                return i
    return len(parts)


def _logical_ndim(x: Any) -> int:
    if isinstance(x, BatchedTensor):
        return x.ndim
    if isinstance(x, Tensor):
        return x.ndim
    return 0


def _aligned(x: Any, n: int) -> Any:
    """``x``'s batch value with its element dims right-aligned to ``n`` dims (batch in front); an
    unbatched operand as it is (it broadcasts against the batch from the right)."""
    if isinstance(x, BatchedTensor):
        v = x.value
        k = v.ndim - 1
        if k < n:
            v = v.reshape(len(v), *([1] * (n - k)), *v.shape[1:])
        return v
    if isinstance(x, np.ndarray):
        raise _no_rule("a NumPy operand")
    return x


def _binary(fn: Callable[[Any, Any], Any], x: Any, y: Any) -> Any:
    if isinstance(x, BatchedTensor) and isinstance(y, BatchedTensor) and len(x.value) != len(y.value):
        raise _no_rule("operands of two different batches")
    n = max(_logical_ndim(x), _logical_ndim(y))
    return BatchedTensor(fn(_aligned(x, n), _aligned(y, n)))


def _where_rule(where: Callable[..., Any], condition: Any, x: Any, y: Any) -> Any:
    _batch_of(condition, x, y)
    n = max(_logical_ndim(condition), _logical_ndim(x), _logical_ndim(y))
    return BatchedTensor(where(_aligned(condition, n), _aligned(x, n), _aligned(y, n)))


def _reduce(x: BatchedTensor, name: str, dim: Any, keepdim: bool, **kwargs: Any) -> Any:
    v = x.value
    kwargs = {k: val for k, val in kwargs.items() if val is not None}
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0 and name in ("sum", "mean")):
        if keepdim:
            out = getattr(v.reshape(len(v), -1), name)(1, **kwargs)
            return BatchedTensor(out.reshape(len(v), *([1] * x.ndim)))
        return BatchedTensor(getattr(v.reshape(len(v), -1), name)(1, **kwargs))
    n = x.ndim
    dims = tuple(_dim(d, n) + 1 for d in dim) if isinstance(dim, (tuple, list)) else _dim(dim, n) + 1
    return BatchedTensor(getattr(v, name)(dims, keepdim, **kwargs))


def _matmul(x: Any, y: Any) -> Any:
    """``x @ y`` for one element, with torch's rules for 1-D and stacked operands."""
    from .ops.linalg import matmul

    xb, yb = isinstance(x, BatchedTensor), isinstance(y, BatchedTensor)
    _batch_of(x, y)
    nx, ny = _logical_ndim(x), _logical_ndim(y)
    if nx == 0 or ny == 0:
        raise _no_rule("matmul of a 0-d operand")  # the loop raises torch's error
    if not yb:  # x batched: (B, *xs) @ y
        if ny <= 2 or nx >= 2:
            xv = x.value if nx == 1 else _stack_aligned(x, ny)
            return BatchedTensor(matmul(xv, y))
        # a vector times a stack of matrices: the vector as a row of each element's own
        rows = x.value.reshape(len(x.value), *([1] * (ny - 1)), x.shape[0])
        return BatchedTensor(matmul(rows, y).squeeze(-2))
    if not xb:  # y batched
        if ny == 1:
            if nx == 2:
                return BatchedTensor(matmul(y.value, x.mT))
            if nx == 1:
                return BatchedTensor(matmul(y.value, x))
            # a stack of matrices times a vector: the vector as a column of each element's own
            columns = y.value.reshape(len(y.value), *([1] * (nx - 2)), y.shape[0], 1)
            return BatchedTensor(matmul(x, columns).squeeze(-1))
        return BatchedTensor(matmul(x, _stack_aligned(y, nx)))
    if nx == 1 and ny == 1:
        return BatchedTensor((x.value * y.value).sum(1))
    if nx == 1:
        return BatchedTensor(matmul(x.value.unsqueeze(1), y.value).squeeze(-2))
    if ny == 1:
        return BatchedTensor(matmul(x.value, y.value.unsqueeze(-1)).squeeze(-1))
    n = max(nx, ny)
    return BatchedTensor(matmul(_aligned(x, n), _aligned(y, n)))


def _stack_aligned(x: BatchedTensor, other_ndim: int) -> Any:
    """A batched matrix operand's value with its stack dims padded to the other operand's (the batch in
    front stays a stack dim of its own)."""
    return _aligned(x, max(x.ndim, other_ndim))


def unwrap(x: Any) -> Any:
    """The batch value of a BatchedTensor, else ``x``."""
    return x.value if isinstance(x, BatchedTensor) else x


def _batched_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    for a in (*args, *kwargs.values()):
        if isinstance(a, BatchedTensor):
            return True
        if isinstance(a, (list, tuple)) and any(isinstance(b, BatchedTensor) for b in a):
            return True
    return False


def _expanded(x: Any, size: int) -> Any:
    """A batch value of ``x``: a BatchedTensor's own, an unbatched tensor's repeated over the batch."""
    if isinstance(x, BatchedTensor):
        return x.value
    return x.unsqueeze(0).expand(size, *x.shape)


def _nn(module: str) -> Any:
    """A module of downslope.nn, found by name when a rule runs: the core does not import nn (the arrows
    go one way), but the rules of nn's functions and layers call them."""
    return importlib.import_module("downslope.nn." + module)


def _batch_of(*xs: Any) -> int:
    """The batch size of the batched ones among ``xs`` (all must have the same)."""
    found = None
    for x in xs:
        if isinstance(x, BatchedTensor):
            n = len(x.value)
            if found is not None and n != found:
                raise _no_rule("operands of two different batches")
            found = n
    if found is None:
        raise _no_rule("no batched operand")
    return found


# --- rules of module-level functions ----------------------------------------------------------------
# Each rule takes the original function first, then the call's arguments.


def _unary_rule(orig: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    if not isinstance(x, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with a batched argument other than the first")
    if kwargs.get("inplace") or (args and args[-1] is True and "inplace" in orig.__code__.co_varnames):
        raise _no_rule(f"{orig.__name__}(inplace=True)")
    return BatchedTensor(orig(x.value, *args, **kwargs))


def _binary_rule(orig: Callable[..., Any], x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
    if args or kwargs:
        raise _no_rule(f"{orig.__name__} with extra arguments")
    return _binary(orig, x, y)


def _dim_rule(orig: Callable[..., Any], x: Any, dim: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Ops of one tensor and a dim (softmax, log_softmax, cumsum...)."""
    if not isinstance(x, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with a batched argument other than the first")
    if dim is None:
        n = x.ndim
        if orig.__name__ not in ("softmax", "log_softmax", "softmin"):
            raise _no_rule(f"{orig.__name__}(dim=None)")
        dim = 0 if n in (0, 1, 3) else 1  # torch's implicit softmax dim (it warns)
    return BatchedTensor(orig(x.value, _dim(dim, x.ndim) + 1, *args, **kwargs))


def _reduction_rule(orig: Callable[..., Any], x: Any, dim: Any = None, keepdim: bool = False, **kwargs: Any) -> Any:
    if not isinstance(x, BatchedTensor):
        raise _no_rule(f"{orig.__name__} of an unbatched tensor with batched arguments")
    name = orig.__name__
    if kwargs.get("dtype") is not None and name in ("sum", "mean"):
        return _reduce(x, name, dim, keepdim, dtype=kwargs.pop("dtype"))
    if kwargs:
        raise _no_rule(f"{name} with {sorted(kwargs)}")
    return _reduce(x, name, dim, keepdim)


def _matmul_rule(orig: Callable[..., Any], x: Any, y: Any, **kwargs: Any) -> Any:
    if kwargs:
        raise _no_rule(f"{orig.__name__} with {sorted(kwargs)}")
    if orig.__name__ in ("mm", "dot") and (_logical_ndim(x) != _logical_ndim(y)):
        raise _no_rule(f"{orig.__name__} of operands of different ranks")  # the loop raises torch's error
    return _matmul(x, y)


def _addmm_rule(orig: Callable[..., Any], input: Any, m1: Any, m2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    product = _matmul(m1, m2)
    if alpha != 1:
        product = product * alpha
    return _binary(operator.add, input if beta == 1 else input * beta, product)


def _stack_rule(orig: Callable[..., Any], tensors: Any, dim: int = 0, **kwargs: Any) -> Any:
    if kwargs:
        raise _no_rule(f"stack with {sorted(kwargs)}")
    tensors = list(tensors)
    size = _batch_of(*tensors)
    n = _logical_ndim(tensors[0])
    return BatchedTensor(orig([_expanded(t, size) for t in tensors], _dim(dim, n + 1) + 1))


def _cat_rule(orig: Callable[..., Any], tensors: Any, dim: int = 0, **kwargs: Any) -> Any:
    if kwargs:
        raise _no_rule(f"cat with {sorted(kwargs)}")
    tensors = list(tensors)
    size = _batch_of(*tensors)
    n = _logical_ndim(tensors[0])
    if any(_logical_ndim(t) != n for t in tensors) or n == 0:
        raise _no_rule("cat of tensors of different ranks")
    return BatchedTensor(orig([_expanded(t, size) for t in tensors], _dim(dim, n) + 1))


def _where_fn_rule(orig: Callable[..., Any], condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None or y is None:
        raise _no_rule("where(condition)")
    return _where_rule(orig, condition, x, y)


def _linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """``F.linear`` for one element: the batch folded into the rows, or into a stack of matrix products
    when the weight is batched (an ensemble, or per-sample gradients)."""
    from .ops.linalg import matmul

    linear_ = _nn("functional").linear

    if _logical_ndim(weight) != 2 or _logical_ndim(x) < 1:
        raise _no_rule("linear with a weight that is not a matrix")
    if not isinstance(weight, BatchedTensor):
        if isinstance(bias, BatchedTensor):
            return _binary(operator.add, _linear(x, weight), bias)
        return BatchedTensor(linear_(x.value, weight, bias))
    w = weight.value  # (B, out, in)
    size = _batch_of(x, weight, bias)
    if isinstance(x, BatchedTensor) and _repeated(w):
        out = _per_sample_linear(x.value.reshape(size, -1, x.shape[-1]), w)
        if bias is not None:
            out = out + (bias.value.unsqueeze(1) if isinstance(bias, BatchedTensor) else bias)
        return BatchedTensor(out.reshape(size, *x.shape[:-1], w.shape[1]))
    if isinstance(x, BatchedTensor):
        lead = x.shape[:-1]
        rows = x.value.reshape(size, -1, x.shape[-1])
    else:
        lead = tuple(x.shape[:-1])
        rows = x.reshape(-1, x.shape[-1])
    out = matmul(rows, w.transpose(1, 2))  # (B, rows, out)
    if bias is not None:
        out = out + (bias.value.unsqueeze(1) if isinstance(bias, BatchedTensor) else bias)
    return BatchedTensor(out.reshape(size, *lead, w.shape[1]))


def _repeated(w: Any) -> bool:
    """Whether ``w``'s array is one matrix repeated along dim 0 (an unbatched argument of ``grad``
    inside vmap: a broadcast view), on the host."""
    a = w.array
    return type(a) is np.ndarray and a.ndim == 3 and a.strides[0] == 0 and len(a) > 0


def _per_sample_linear(rows: Any, w: Any) -> Any:
    """``rows @ w.mT`` for rows (B, M, in) and w (B, out, in) holding one matrix B times: the product is
    one GEMM with that matrix, and the gradient with respect to ``w`` is each element's own (B, out, in),
    as per-sample gradients need."""
    from . import gemm
    from .tensor import record_op

    r = rows.array
    size, m, k = r.shape
    w0 = w.array[0]
    out = gemm.matmul(r.reshape(size * m, k), w0.T).reshape(size, m, w0.shape[0])
    return record_op(out, (rows, w), _per_sample_linear_vjp)


def _per_sample_linear_vjp(g: Any, y: Any, args: Any, saved: Any, needs: Any, xp: Any) -> Any:
    rows, w = args
    size, m, k = rows.shape
    n = g.shape[-1]
    gr = gw = None
    if isinstance(g, np.ndarray):
        from . import gemm

        if needs[0]:
            gr = gemm.matmul(g.reshape(size * m, n), w[0]).reshape(size, m, k)
        if needs[1]:
            # each element's outer products: one broadcast product for a single row, else a stack of GEMMs
            gw = g[:, 0, :, None] * rows[:, 0, None, :] if m == 1 else np.matmul(g.transpose(0, 2, 1), rows)
        return gr, gw
    # under create_graph the rule sees tensors: the same products as recorded ops, each element's with
    # its own matrix (differentiable in each element's copy, not the first one's)
    if needs[0]:
        gr = g @ w
    if needs[1]:
        gw = g.transpose(1, 2) @ rows
    return gr, gw


def _linear_rule(orig: Callable[..., Any], input: Any, weight: Any, bias: Any = None) -> Any:
    return _linear(input, weight, bias)


def _linear_forward_rule(orig: Callable[..., Any], module: Any, input: Any) -> Any:
    if not _batched_args((input, module.weight, module.bias), {}):
        return orig(module, input)
    return _linear(input, module.weight, module.bias)


def _conv2d(x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Any:
    """``conv2d`` for one element: an unbatched weight takes the batch as more images; a batched one
    becomes ``B * groups`` groups over the images' channels stacked per batch element (functorch's rule)."""
    conv2d_ = _nn("convolution").conv2d

    n = _logical_ndim(x)
    if n not in (3, 4) or _logical_ndim(weight) != 4:
        raise _no_rule("conv2d of these ranks")
    if isinstance(padding, str):
        raise _no_rule("conv2d with string padding")
    _batch_of(x, weight, bias)
    if not isinstance(weight, BatchedTensor) and not isinstance(bias, BatchedTensor):
        v = x.value
        size = len(v)
        if n == 3:
            return BatchedTensor(conv2d_(v, weight, bias, stride, padding, dilation, groups))
        images = v.reshape(size * v.shape[1], *v.shape[2:])
        out = conv2d_(images, weight, bias, stride, padding, dilation, groups)
        return BatchedTensor(out.reshape(size, v.shape[1], *out.shape[1:]))
    size = _batch_of(x, weight, bias)
    w = _expanded(weight, size)  # (B, Co, Ci/g, kh, kw)
    co = w.shape[1]
    if isinstance(x, BatchedTensor):
        v = x.value if n == 4 else x.value.unsqueeze(1)  # (B, N, C, H, W)
        images = v.transpose(0, 1).reshape(v.shape[1], size * v.shape[2], *v.shape[3:])
    else:
        v = x if n == 4 else x.unsqueeze(0)  # (N, C, H, W)
        images = v.repeat(1, size, 1, 1)
    b = None if bias is None else _expanded(bias, size).reshape(size * co)
    out = conv2d_(images, w.reshape(size * co, *w.shape[2:]), b, stride, padding, dilation, groups * size)
    out = out.reshape(out.shape[0], size, co, *out.shape[2:]).transpose(0, 1)  # (B, N, Co, OH, OW)
    return BatchedTensor(out if n == 4 else out.squeeze(1))


def _conv_rule(conv: Callable[..., Any]) -> Callable[..., Any]:
    """The rule of ``F.conv1d``/``F.conv2d`` (``conv``: ``_conv1d`` or ``_conv2d``), with their defaults."""

    def rule(
        orig: Callable[..., Any],
        input: Any,
        weight: Any,
        bias: Any = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> Any:
        return conv(input, weight, bias, stride, padding, dilation, groups)

    return rule


_conv2d_rule = _conv_rule(_conv2d)


def _conv_forward_rule(orig: Callable[..., Any], module: Any, input: Any, weight: Any, bias: Any) -> Any:
    if not _batched_args((input, weight, bias), {}):
        return orig(module, input, weight, bias)
    spatial = getattr(module, "_spatial", None)
    if spatial not in (1, 2) or module.padding_mode != "zeros" or getattr(module, "_transposed", False):
        raise _no_rule(f"{type(module).__name__} with these options")
    if spatial == 1:
        return _conv1d(input, weight, bias, module.stride, module.padding, module.dilation, module.groups)
    return _conv2d(input, weight, bias, module.stride, module.padding, module.dilation, module.groups)


def _images_rule(orig: Callable[..., Any], input: Any, *args: Any, **kwargs: Any) -> Any:
    """Pooling of (N, C, H, W) or (C, H, W) images: the batch folded into N."""
    if not isinstance(input, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with batched arguments other than the input")
    if kwargs.get("return_indices") or (len(args) >= 6 and args[5]):
        raise _no_rule(f"{orig.__name__}(return_indices=True)")
    v = input.value
    if input.ndim == 3:
        return BatchedTensor(orig(v, *args, **kwargs))
    if input.ndim != 4:
        raise _no_rule(f"{orig.__name__} of a {input.ndim}-d element")
    out = orig(v.reshape(len(v) * v.shape[1], *v.shape[2:]), *args, **kwargs)
    return BatchedTensor(out.reshape(len(v), v.shape[1], *out.shape[1:]))


def _per_row_loss(
    orig: Callable[..., Any], input: Any, target: Any, weight: Any, ignore_index: int, reduction: str, **extra: Any
) -> Any:
    """cross_entropy / nll_loss of one element: its rows' losses computed for the whole batch at once
    (reduction='none'), then reduced per element as torch reduces them."""
    from .ops.pointwise import where

    if isinstance(weight, BatchedTensor) or reduction not in ("mean", "sum", "none"):
        raise _no_rule(f"{orig.__name__} with these arguments")
    size = _batch_of(input, target)
    n = _logical_ndim(input)
    if n not in (1, 2):
        raise _no_rule(f"{orig.__name__} of a {n}-d input")
    x = _expanded(input, size)
    probabilities = isinstance(target, Tensor) and target.dtype.kind == "f"
    if not isinstance(target, Tensor):
        raise _no_rule(f"{orig.__name__} with a target that is not a tensor")
    t = _expanded(target, size)
    classes = x.shape[-1]
    if probabilities:
        if weight is not None or _logical_ndim(target) != n:
            raise _no_rule(f"{orig.__name__} with class probabilities and weights")
        losses = orig(x.reshape(-1, classes), t.reshape(-1, classes), None, reduction="none", **extra)
    else:
        if _logical_ndim(target) != n - 1:
            raise _no_rule(f"{orig.__name__} with a target of another rank")
        if extra.get("label_smoothing") and weight is not None:
            raise _no_rule(f"{orig.__name__} with label smoothing and weights")
        losses = orig(
            x.reshape(-1, classes), t.reshape(-1), weight, ignore_index=ignore_index, reduction="none", **extra
        )
    losses = losses.reshape(size, -1)
    if reduction == "none":
        return BatchedTensor(losses.reshape(size, *x.shape[1:-1]))
    total = losses.sum(1)
    if reduction == "sum":
        return BatchedTensor(total)
    if probabilities:
        return BatchedTensor(total / losses.shape[1])
    flat = t.reshape(size, -1)
    kept = (flat != ignore_index).to(x.dtype)
    if weight is not None:
        safe = where(flat != ignore_index, flat, 0)
        kept = kept * weight[safe]
    return BatchedTensor(total / kept.sum(1))


def _cross_entropy_rule(
    orig: Callable[..., Any],
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    if size_average is not None or reduce is not None:
        raise _no_rule("cross_entropy with size_average/reduce")
    return _per_row_loss(orig, input, target, weight, ignore_index, reduction, label_smoothing=label_smoothing)


def _nll_loss_rule(
    orig: Callable[..., Any],
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
) -> Any:
    if size_average is not None or reduce is not None:
        raise _no_rule("nll_loss with size_average/reduce")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        raise _no_rule("nll_loss with a float target")
    return _per_row_loss(orig, input, target, weight, ignore_index, reduction)


def _mse_loss_rule(
    orig: Callable[..., Any],
    input: Any,
    target: Any,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Any:
    if size_average is not None or reduce is not None or weight is not None:
        raise _no_rule("mse_loss with these arguments")
    if tuple(_shape(input)) != tuple(_shape(target)):
        raise _no_rule("mse_loss of different shapes")  # the loop warns and broadcasts as torch
    diff = _binary(operator.sub, input, target)
    squared = diff.value * diff.value
    if reduction == "none":
        return BatchedTensor(squared)
    flat = squared.reshape(len(squared), -1)
    if reduction == "sum":
        return BatchedTensor(flat.sum(1))
    if reduction == "mean":
        return BatchedTensor(flat.mean(1))
    raise _no_rule(f"mse_loss(reduction={reduction!r})")


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, Tensor) else ()


def _layer_norm_rule(
    orig: Callable[..., Any], input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """``layer_norm`` normalizes an element's trailing dims: the batch in front changes nothing; batched
    weights or biases scale and shift each element's own."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if _logical_ndim(input) < len(shape):
        raise _no_rule("layer_norm of an input with fewer dims than normalized_shape")
    if not isinstance(weight, BatchedTensor) and not isinstance(bias, BatchedTensor):
        return BatchedTensor(orig(input.value, normalized_shape, weight, bias, eps))
    out = orig(unwrap(input), normalized_shape, None, None, eps)
    out = BatchedTensor(out) if isinstance(input, BatchedTensor) else out
    if weight is not None:
        out = _binary(operator.mul, out, weight)
    if bias is not None:
        out = _binary(operator.add, out, bias)
    return out


def _embedding_rule(
    orig: Callable[..., Any], input: Any, weight: Any, padding_idx: Any = None, max_norm: Any = None, *args: Any
) -> Any:
    """``embedding``: batched ids pick rows of one table; with a batched table (an ensemble, or
    per-sample gradients) each element's ids are offset into its own table of the stacked ones."""
    if max_norm is not None:
        raise _no_rule("embedding with max_norm")  # it rewrites the table's rows
    if not isinstance(weight, BatchedTensor):
        return BatchedTensor(orig(input.value, weight, padding_idx, max_norm, *args))
    if padding_idx is not None or any(args[1:]) or weight.ndim != 2:  # (norm_type, scale_grad_by_freq, sparse)
        raise _no_rule("embedding of a batched table with padding_idx, scale_grad_by_freq or sparse")
    from .tensor import arange

    size = _batch_of(input, weight)
    ids = _expanded(input, size)
    rows = weight.shape[0]
    a = ids.array
    if type(a) is np.ndarray and a.size and (a.min() < 0 or a.max() >= rows):  # host: a range check of the ids
        raise _no_rule("embedding with ids out of range")  # per element, the loop raises torch's error
    offsets = (arange(size, device=ids.device) * rows).reshape(size, *([1] * (ids.ndim - 1)))
    table = weight.value.reshape(size * rows, weight.shape[1])
    return BatchedTensor(orig(ids + offsets, table))


_BATCH_NORM_UPDATE = (
    "Batch norm got a batched tensor as input while the running_mean or running_var, which will be updated "
    "in place, were not batched.\nIf you are using a module and do not need eval mode, please set "
    "`track_running_stats` to be False.If you are using a prebuilt module and do not need eval mode, please "
    "see the functorch website for resources on how to patch your module to work with vmap"
)


def _batch_norm_forward_rule(orig: Callable[..., Any], module: Any, input: Any) -> Any:
    """A batch norm layer on one element (N, C, ...). In eval mode with running statistics each value is
    normalized on its own: the batch folded into N. With batch statistics (training mode, or no running
    statistics) each element's channels are normalized over its own N: the batch folded into the channels.
    Running statistics would be updated in place from every element at once: refused before anything
    is updated, with torch's error (``track_running_stats=False`` or
    ``func.replace_all_batch_norm_modules_`` make such a model batchable, as in torch)."""
    stats = (module.running_mean, module.running_var)
    if not _batched_args((input, module.weight, module.bias, *stats), {}):
        return orig(module, input)
    if any(isinstance(t, BatchedTensor) for t in stats) or not isinstance(input, BatchedTensor):
        raise _no_rule(f"{type(module).__name__} with batched running statistics or an unbatched input")
    if input.ndim < 2:
        raise _no_rule(f"{type(module).__name__} of one sample")
    v = input.value
    size = len(v)
    if module.training and module.track_running_stats and module.running_mean is not None:
        raise Refused(_BATCH_NORM_UPDATE)
    if module.training or not module.track_running_stats or module.running_mean is None:
        module._check_input_dim(input)
        channels = v.shape[2]
        images = v.transpose(0, 1).reshape(v.shape[1], size * channels, *v.shape[3:])
        weight, bias = (
            None if t is None else t.value.reshape(size * channels) if isinstance(t, BatchedTensor) else t.repeat(size)
            for t in (module.weight, module.bias)
        )
        out = _nn("normalization").batch_norm(images, None, None, weight, bias, True, 0.0, module.eps)
        return BatchedTensor(out.reshape(v.shape[1], size, *v.shape[2:]).transpose(0, 1))
    if any(isinstance(t, BatchedTensor) for t in (module.weight, module.bias)):
        raise _no_rule(f"{type(module).__name__} with batched parameters")
    if v.ndim < 3:
        raise _no_rule(f"{type(module).__name__} of one sample")
    out = orig(module, v.reshape(len(v) * v.shape[1], *v.shape[2:]))
    return BatchedTensor(out.reshape(v.shape))


def _dropout_rule(
    orig: Callable[..., Any], input: Any, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Any:
    if training and p > 0:
        raise _no_rule("dropout in training (random per element)")
    return input


def _wrapped(result: Any) -> Any:
    """A batch op's result as the element's: a tensor, or a tuple (named or not) of them, batched."""
    if isinstance(result, tuple):
        fields = [BatchedTensor(r) for r in result]
        return type(result)(*fields) if hasattr(result, "_fields") else type(result)(fields)
    return BatchedTensor(result)


def _padded(x: Any, n: int, size: int) -> Any:
    """``x``'s batch value (repeated over the batch when unbatched) with its element dims right-aligned
    to ``n`` dims."""
    v = _expanded(x, size)
    k = v.ndim - 1
    return v.reshape(size, *([1] * (n - k)), *v.shape[1:]) if k < n else v


def _along_dim_rule(orig: Callable[..., Any], x: Any, dim: Any = -1, *args: Any, **kwargs: Any) -> Any:
    """Ops of one tensor along one dim whose other arguments are not tensors (sort, argsort, cumprod,
    logcumsumexp...): the dim moved past the batch; tuples of results batched field by field."""
    if not isinstance(x, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with a batched argument other than the first")
    return _wrapped(orig(x.value, _dim(dim, x.ndim) + 1, *args, **kwargs))


def _topk_rule(orig: Callable[..., Any], x: Any, k: Any, dim: Any = -1, *args: Any, **kwargs: Any) -> Any:
    if not isinstance(x, BatchedTensor) or isinstance(k, Tensor):
        raise _no_rule("topk with a batched k")
    return _wrapped(orig(x.value, k, _dim(dim, x.ndim) + 1, *args, **kwargs))


def _extreme_rule(orig: Callable[..., Any], x: Any, dim: Any = None, keepdim: bool = False, **kwargs: Any) -> Any:
    """``max``/``min`` as functions: over everything, along a dim (values and indices), or of two tensors."""
    if any(v is not None for v in kwargs.values()):
        raise _no_rule(f"{orig.__name__} with {sorted(kwargs)}")
    if isinstance(dim, Tensor):
        from .ops.arithmetic import maximum, minimum

        return _binary(maximum if orig.__name__ == "max" else minimum, x, dim)
    if not isinstance(x, BatchedTensor):
        raise _no_rule(f"{orig.__name__} of an unbatched tensor")
    if dim is None:
        return _reduce(x, "amax" if orig.__name__ == "max" else "amin", None, False)
    return _wrapped(orig(x.value, _dim(dim, x.ndim) + 1, keepdim))


def _gather_rule(orig: Callable[..., Any], x: Any, dim: Any, index: Any, **kwargs: Any) -> Any:
    """``gather``: input and index (same rank, as torch requires) both carry the batch in front."""
    size = _batch_of(x, index)
    n = _logical_ndim(x)
    if n == 0 or _logical_ndim(index) != n:
        raise _no_rule("gather of a 0-d tensor or an index of another rank")  # the loop raises torch's error
    return BatchedTensor(orig(_expanded(x, size), _dim(dim, n) + 1, _expanded(index, size), **kwargs))


def _take_along_dim_rule(orig: Callable[..., Any], x: Any, indices: Any, dim: Any = None) -> Any:
    size = _batch_of(x, indices)
    if dim is None:  # the flattened element
        return BatchedTensor(orig(_expanded(x, size).reshape(size, -1), _expanded(indices, size).reshape(size, -1), 1))
    n = _logical_ndim(x)
    if n == 0 or _logical_ndim(indices) != n:
        raise _no_rule("take_along_dim of a 0-d tensor or indices of another rank")
    return BatchedTensor(orig(_expanded(x, size), _expanded(indices, size), _dim(dim, n) + 1))


def _index_select_rule(orig: Callable[..., Any], x: Any, dim: Any, index: Any) -> Any:
    """``index_select``: an unbatched index picks the same slices of every element; a batched one (each
    element its own 1-D index) becomes a gather with the index spread over the element's other dims."""
    from .ops.indexing import gather

    size = _batch_of(x, index)
    n = _logical_ndim(x)
    if n == 0:
        raise _no_rule("index_select of a 0-d tensor")
    d = _dim(dim, n) + 1
    if not isinstance(index, BatchedTensor):
        return BatchedTensor(orig(x.value, d, index))
    if index.ndim != 1:
        raise _no_rule("index_select with a batched index that is not 1-D")
    v = _expanded(x, size)
    k = index.shape[0]
    shape = [*v.shape[:d], k, *v.shape[d + 1 :]]
    spread = index.value.reshape(size, *([1] * (d - 1)), k, *([1] * (n - d))).expand(*shape)
    return BatchedTensor(gather(v, d, spread))


def _masked_fill_rule(orig: Callable[..., Any], x: Any, mask: Any, value: Any) -> Any:
    """``masked_fill``: a ``where`` over the element (the mask broadcasts to the input's shape)."""
    from .ops.pointwise import where

    size = _batch_of(x, mask, value)
    n = _logical_ndim(x)
    if _logical_ndim(mask) > n or (isinstance(value, Tensor) and value.ndim != 0):
        raise _no_rule("masked_fill with a mask of more dims or a value that is not 0-d")  # torch's error in the loop
    fill = value.to(x.dtype) if isinstance(value, Tensor) else value
    out = where(
        _padded(mask, n, size), _padded(fill, n, size) if isinstance(fill, Tensor) else fill, _padded(x, n, size)
    )
    if tuple(out.shape[1:]) != tuple(_shape(x)):
        out = out.expand(size, *_shape(x))
    return BatchedTensor(out.to(x.dtype))


def _scatter_rule(orig: Callable[..., Any], x: Any, dim: Any, index: Any, src: Any = None, **kwargs: Any) -> Any:
    """``scatter``/``scatter_add`` out of place: input, index and source all carry the batch in front."""
    if any(isinstance(v, Tensor) for v in kwargs.values()):
        raise _no_rule(f"{orig.__name__} with a tensor value")
    size = _batch_of(x, index, src)
    n = _logical_ndim(x)
    if n == 0 or _logical_ndim(index) != n or (isinstance(src, Tensor) and _logical_ndim(src) != n):
        raise _no_rule(f"{orig.__name__} of operands of other ranks")
    source = _expanded(src, size) if isinstance(src, Tensor) else src
    args = () if source is None and orig.__name__ == "scatter" else (source,)
    return BatchedTensor(orig(_expanded(x, size).clone(), _dim(dim, n) + 1, _expanded(index, size), *args, **kwargs))


def _one_hot_rule(orig: Callable[..., Any], input: Any, num_classes: int = -1) -> Any:
    if not isinstance(input, BatchedTensor) or num_classes < 0:
        raise _no_rule("one_hot with num_classes inferred from the values")  # each element could differ
    return BatchedTensor(orig(input.value, num_classes))


def _sdpa_rule(
    orig: Callable[..., Any],
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Any = None,
    enable_gqa: bool = False,
) -> Any:
    """``scaled_dot_product_attention``: its leading dims broadcast, so the batch is one more of them
    (query, key and value right-aligned to one rank, the mask to it too)."""
    if dropout_p:
        raise _no_rule("scaled_dot_product_attention with dropout (random per element)")
    size = _batch_of(query, key, value, attn_mask)
    n = max(_logical_ndim(t) for t in (query, key, value))
    if min(_logical_ndim(t) for t in (query, key, value)) < 2 or _logical_ndim(attn_mask) > n:
        raise _no_rule("scaled_dot_product_attention of these ranks")
    q, k, v = (_padded(t, n, size) for t in (query, key, value))
    mask = _padded(attn_mask, n, size) if isinstance(attn_mask, BatchedTensor) else attn_mask
    out = orig(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    return BatchedTensor(out)


def _group_norm_rule(
    orig: Callable[..., Any], input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """``group_norm`` of an element (N, C, ...): the batch folded into N; batched weights and biases scale
    and shift each element's channels."""
    if not isinstance(input, BatchedTensor) or input.ndim < 2:
        raise _no_rule("group_norm of an unbatched input or an element without channels")
    v = input.value
    folded = v.reshape(len(v) * v.shape[1], *v.shape[2:])
    if not isinstance(weight, BatchedTensor) and not isinstance(bias, BatchedTensor):
        return BatchedTensor(orig(folded, num_groups, weight, bias, eps).reshape(v.shape))
    out: Any = BatchedTensor(orig(folded, num_groups, None, None, eps).reshape(v.shape))
    per_channel = (-1, *([1] * (input.ndim - 2)))
    if weight is not None:
        out = _binary(operator.mul, out, weight.reshape(*per_channel))
    if bias is not None:
        out = _binary(operator.add, out, bias.reshape(*per_channel))
    return out


def _einsum_rule(orig: Callable[..., Any], equation: Any, *operands: Any) -> Any:
    """``einsum``: the batch gets a subscript of its own, in front of each batched operand's and of the
    output's."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or "..." in equation:
        raise _no_rule("einsum with an ellipsis")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise _no_rule("einsum with another number of operands")  # the loop raises torch's error
    if not arrow:  # implicit output: the subscripts seen once, in alphabetical order
        rhs = "".join(sorted(c for c in set(lhs) if c.isalpha() and lhs.count(c) == 1))
    letter = next((c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in eq), None)
    if letter is None:
        raise _no_rule("einsum using every subscript letter")
    _batch_of(*operands)
    terms = [letter + sub if isinstance(t, BatchedTensor) else sub for sub, t in zip(inputs, operands)]
    return BatchedTensor(orig(f"{','.join(terms)}->{letter}{rhs}", *[unwrap(t) for t in operands]))


def _bmm_rule(orig: Callable[..., Any], a: Any, b: Any) -> Any:
    """``bmm`` of elements (b, n, m) @ (b, m, p): the batch folded into bmm's own."""
    size = _batch_of(a, b)
    if _logical_ndim(a) != 3 or _logical_ndim(b) != 3:
        raise _no_rule("bmm of operands that are not 3-D")  # the loop raises torch's error
    av, bv = _expanded(a, size), _expanded(b, size)
    out = orig(av.reshape(-1, *av.shape[2:]), bv.reshape(-1, *bv.shape[2:]))
    return BatchedTensor(out.reshape(size, av.shape[1], *out.shape[1:]))


def _conv1d(x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Any:
    """``conv1d`` for one element: a 2-D convolution of height-1 images (the 2-D rule, batched weights too)."""
    if isinstance(padding, str) or _logical_ndim(weight) != 3 or _logical_ndim(x) not in (2, 3):
        raise _no_rule("conv1d with string padding or of these ranks")

    def one_d(v: Any, height: int) -> tuple[int, int]:
        (only,) = (v,) if isinstance(v, (int, np.integer)) else tuple(v)
        return (height, int(only))

    two_d = one_d(stride, 1), one_d(padding, 0), one_d(dilation, 1)
    out = _conv2d(x.unsqueeze(-2), weight.unsqueeze(-2), bias, *two_d, groups)
    return out.squeeze(-2)


_conv1d_rule = _conv_rule(_conv1d)


def _getitem_method_rule(orig: Callable[..., Any], x: Any, index: Any) -> Any:
    """``Tensor.__getitem__`` of an unbatched tensor: indexed by batched tensors, each element picks its own."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(p, BatchedTensor) for p in parts):
        return orig(x, index)
    return _getitem(x, index)


def _reduce_like_rule(orig: Callable[..., Any], x: Any, dim: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Reductions over one dim, several or all (var, std, any, all, argmin, nansum...) whose other
    arguments are not tensors: dims moved past the batch, ``dim=None`` over the flattened element."""
    if not isinstance(x, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with a batched argument other than the first")
    v = x.value
    if dim is None:
        if kwargs.get("keepdim") or any(a is True for a in args):
            raise _no_rule(f"{orig.__name__}(dim=None, keepdim=True)")
        return _wrapped(orig(v.reshape(len(v), -1), 1, *args, **kwargs))
    n = x.ndim
    dims = tuple(_dim(d, n) + 1 for d in dim) if isinstance(dim, (tuple, list)) else _dim(dim, n) + 1
    return _wrapped(orig(v, dims, *args, **kwargs))


def _with_dim_rule(orig: Callable[..., Any], x: Any, dim: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Ops whose result without a dim is of another kind (median, mode...): the dim form only."""
    if dim is None:
        raise _no_rule(f"{orig.__name__} without a dim")
    return _along_dim_rule(orig, x, dim, *args, **kwargs)


def _last_two_rule(orig: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    """Ops on an element's last two dims (tril, triu): the batch is one more leading dim."""
    if not isinstance(x, BatchedTensor) or x.ndim < 2 or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} of this element")
    return BatchedTensor(orig(x.value, *args, **kwargs))


def _diagonal_rule(orig: Callable[..., Any], x: Any, offset: Any = 0, dim1: Any = 0, dim2: Any = 1) -> Any:
    """``diagonal(x, offset, dim1, dim2)``: the element's dims moved past the batch, one op over the batch
    (the diagonal is the last dim of each element's result, so the batch stays in front)."""
    if not isinstance(x, BatchedTensor) or x.ndim < 2 or isinstance(offset, Tensor) or isinstance(offset, bool):
        raise _no_rule(f"{orig.__name__} of this element")
    d1, d2 = _dim(dim1, x.ndim), _dim(dim2, x.ndim)
    if d1 == d2:
        raise _no_rule("diagonal with dim1 == dim2")  # the loop raises diagonal's error with the given dims
    return BatchedTensor(orig(x.value, int(offset), d1 + 1, d2 + 1))


def _trace_rule(orig: Callable[..., Any], x: Any) -> Any:
    """``trace`` of each element (a matrix): its diagonal summed, as trace does, in one op over the batch
    (per element, a Laplacian as the trace of a Hessian took a Python loop over the batch)."""
    if not isinstance(x, BatchedTensor) or x.ndim != 2:
        raise _no_rule("trace of this element")  # the loop raises trace's own error
    from .ops.linalg import diagonal

    return BatchedTensor(diagonal(x.value, 0, 1, 2).sum(-1))


def _dims_rule(orig: Callable[..., Any], x: Any, dims: Any, *args: Any, **kwargs: Any) -> Any:
    """``flip(x, dims)``: its dims moved past the batch."""
    if not isinstance(x, BatchedTensor) or args or kwargs:
        raise _no_rule(f"{orig.__name__} with these arguments")
    listed = dims if isinstance(dims, (tuple, list)) else (dims,)
    return BatchedTensor(orig(x.value, tuple(_dim(d, x.ndim) + 1 for d in listed)))


def _roll_rule(orig: Callable[..., Any], x: Any, shifts: Any, dims: Any = None) -> Any:
    if not isinstance(x, BatchedTensor) or isinstance(shifts, Tensor):
        raise _no_rule("roll with tensor shifts")
    v = x.value
    if dims is None:  # the flattened element rolled
        return BatchedTensor(orig(v.reshape(len(v), -1), shifts, 1).reshape(v.shape))
    listed = dims if isinstance(dims, (tuple, list)) else (dims,)
    moved = tuple(_dim(d, x.ndim) + 1 for d in listed)
    return BatchedTensor(orig(v, shifts, moved if isinstance(dims, (tuple, list)) else moved[0]))


def _pad_rule(orig: Callable[..., Any], input: Any, pad: Any, mode: str = "constant", value: Any = None) -> Any:
    """``F.pad`` with a constant pads an element's last dims: the batch in front is not padded."""
    if (
        not isinstance(input, BatchedTensor)
        or mode != "constant"
        or isinstance(value, Tensor)
        or len(pad) > 2 * input.ndim
    ):
        raise _no_rule("pad of other modes or of more dims than the element's")
    return BatchedTensor(orig(input.value, pad, mode, value))


def _like_rule(orig: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    """``zeros_like`` and its kind: the element's shape, for each element."""
    if not isinstance(x, BatchedTensor) or any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
        raise _no_rule(f"{orig.__name__} with a tensor fill")
    return BatchedTensor(orig(x.value, *args, **kwargs))


def _pointwise_loss_rule(orig: Callable[..., Any], input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
    """Losses of values side by side (l1, smooth_l1, huber, binary cross-entropy...): each value's loss for the
    whole batch at once (reduction='none'), then reduced per element as torch reduces them."""
    reduction = kwargs.pop("reduction", "mean")
    if args or any(
        isinstance(v, Tensor) or k in ("size_average", "reduce") and v is not None for k, v in kwargs.items()
    ):
        raise _no_rule(f"{orig.__name__} with weights or positional options")
    if tuple(_shape(input)) != tuple(_shape(target)) or reduction not in ("none", "sum", "mean"):
        raise _no_rule(f"{orig.__name__} of different shapes")  # the loop warns or raises as torch
    size = _batch_of(input, target)
    losses = orig(_expanded(input, size), _expanded(target, size), reduction="none", **kwargs)
    if reduction == "none":
        return BatchedTensor(losses)
    flat = losses.reshape(size, -1)
    return BatchedTensor(flat.sum(1) if reduction == "sum" else flat.mean(1))


def _element_args(x: Any, i: int) -> Any:
    """``x`` as element ``i`` of the batch sees it: BatchedTensors (also inside lists and tuples) sliced."""
    if isinstance(x, BatchedTensor):
        return x.value[i]
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(_element_args(a, i) for a in x)
    return x


def _rng_state() -> Any:
    from .backend import rng

    return rng().bit_generator.state


def _loop_rule(orig: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The op run once per batch element and its results stacked: the batching rule of an op that has
    none of its own, so a function that meets it still runs once (only this op loops). An op that draws
    random numbers, or whose results are not tensors of one shape per element, makes the whole function
    loop instead (its draws and results are then the loop's)."""
    from .ops.shape import stack

    operands = [*args, *kwargs.values()]
    size = _batch_of(*operands, *[b for a in operands if isinstance(a, (list, tuple)) for b in a])
    start = _rng_state()
    results = [
        orig(*_element_args(args, i), **{k: _element_args(v, i) for k, v in kwargs.items()}) for i in range(size)
    ]
    if _rng_state() != start:
        raise _no_rule(f"{orig.__name__} drawing random numbers per element")
    first = results[0]
    try:
        if isinstance(first, Tensor):
            return BatchedTensor(stack(results))
        if isinstance(first, tuple) and first and all(isinstance(r, Tensor) for r in first):
            fields = [BatchedTensor(stack([r[k] for r in results])) for k in range(len(first))]
            return type(first)(*fields) if hasattr(first, "_fields") else type(first)(fields)
    except Exception as error:  # noqa: BLE001 - elements of different shapes: the whole function loops
        raise _no_rule(f"{orig.__name__} with results of different shapes per element") from error
    raise _no_rule(f"{orig.__name__} returning {type(first).__name__}")


# (module, name) -> rule; a name missing from its module (an optional part) is skipped.
_FUNCTION_RULES: list[tuple[str, str, Callable[..., Any]]] = [
    ("downslope.nn.functional", "linear", _linear_rule),
    ("downslope.nn.convolution", "conv2d", _conv2d_rule),
    ("downslope.nn.losses.classification", "cross_entropy", _cross_entropy_rule),
    ("downslope.nn.losses.classification", "nll_loss", _nll_loss_rule),
    ("downslope.nn.losses.regression", "mse_loss", _mse_loss_rule),
    ("downslope.nn.pooling", "max_pool2d", _images_rule),
    ("downslope.nn.pooling", "avg_pool2d", _images_rule),
    ("downslope.nn.pooling", "adaptive_avg_pool2d", _images_rule),
    ("downslope.nn.functional", "dropout", _dropout_rule),
    ("downslope.nn.normalization", "layer_norm", _layer_norm_rule),
    ("downslope.nn.layers", "embedding", _embedding_rule),
    ("downslope.ops.linalg", "matmul", _matmul_rule),
    ("downslope.ops.linalg", "mm", _matmul_rule),
    ("downslope.ops.linalg", "dot", _matmul_rule),
    ("downslope.ops.linalg", "addmm", _addmm_rule),
    ("downslope.ops.shape", "stack", _stack_rule),
    ("downslope.ops.shape", "cat", _cat_rule),
    ("downslope.ops.shape", "concatenate", _cat_rule),
    ("downslope.ops.pointwise", "where", _where_fn_rule),
    ("downslope.ops.arithmetic", "maximum", _binary_rule),
    ("downslope.ops.arithmetic", "minimum", _binary_rule),
    ("downslope.ops.arithmetic", "add", _binary_rule),
    ("downslope.ops.arithmetic", "sub", _binary_rule),
    ("downslope.ops.arithmetic", "mul", _binary_rule),
    ("downslope.ops.arithmetic", "div", _binary_rule),
]
_FUNCTION_RULES += [
    ("downslope.ops.sorting", "sort", _along_dim_rule),
    ("downslope.ops.sorting", "argsort", _along_dim_rule),
    ("downslope.ops.sorting", "topk", _topk_rule),
    ("downslope.ops.reductions", "max", _extreme_rule),
    ("downslope.ops.reductions", "min", _extreme_rule),
    ("downslope.ops.scans", "cumsum", _along_dim_rule),
    ("downslope.ops.scans", "cumprod", _along_dim_rule),
    ("downslope.ops.scans", "logcumsumexp", _along_dim_rule),
    ("downslope.ops.scans", "cummax", _along_dim_rule),
    ("downslope.ops.scans", "cummin", _along_dim_rule),
    ("downslope.ops.indexing", "gather", _gather_rule),
    ("downslope.ops.indexing", "take_along_dim", _take_along_dim_rule),
    ("downslope.ops.indexing", "index_select", _index_select_rule),
    ("downslope.ops.indexing", "masked_fill", _masked_fill_rule),
    ("downslope.ops.indexing", "scatter", _scatter_rule),
    ("downslope.ops.indexing", "scatter_add", _scatter_rule),
    ("downslope.nn.functional", "one_hot", _one_hot_rule),
    ("downslope.nn.attention", "scaled_dot_product_attention", _sdpa_rule),
    ("downslope.nn.normalization", "group_norm", _group_norm_rule),
    ("downslope.nn.convolution", "conv1d", _conv1d_rule),
    ("downslope.ops.linalg", "einsum", _einsum_rule),
    ("downslope.ops.linalg", "bmm", _bmm_rule),
]
# (module, names, rule): functions of one module sharing a rule
_SHARED_RULES: list[tuple[str, tuple[str, ...], Callable[..., Any]]] = [
    ("downslope.functional", ("var", "std"), _reduce_like_rule),
    (
        "downslope.ops.reductions",
        ("var_mean", "std_mean", "any", "all", "argmin", "nansum", "nanmean"),
        _reduce_like_rule,
    ),
    ("downslope.ops.reductions", ("count_nonzero",), _reduce_like_rule),
    ("downslope.ops.sorting", ("median", "nanmedian", "mode"), _with_dim_rule),
    ("downslope.ops.arithmetic", ("atan2", "pow", "fmod", "remainder", "hypot", "logaddexp", "copysign"), _binary_rule),
    ("downslope.ops.arithmetic", ("xlogy", "floor_divide"), _binary_rule),
    ("downslope.ops.linalg", ("tril", "triu"), _last_two_rule),
    ("downslope.ops.rearrange", ("flip",), _dims_rule),
    ("downslope.ops.rearrange", ("roll",), _roll_rule),
    ("downslope.nn.functional", ("pad",), _pad_rule),
    ("downslope.tensor", ("zeros_like", "ones_like", "full_like", "empty_like"), _like_rule),
    ("downslope.nn.losses.regression", ("l1_loss", "smooth_l1_loss", "huber_loss"), _pointwise_loss_rule),
    (
        "downslope.nn.losses.classification",
        ("binary_cross_entropy", "binary_cross_entropy_with_logits"),
        _pointwise_loss_rule,
    ),
    # no batching rule of their own: each runs per element alone (the function still runs once)
    ("downslope.nn.functional", ("normalize", "cosine_similarity", "pairwise_distance", "unfold"), _loop_rule),
    ("downslope.nn.upsampling", ("interpolate",), _loop_rule),
    ("downslope.ops.rearrange", ("diff", "repeat", "repeat_interleave"), _loop_rule),
    ("downslope.ops.linalg", ("outer", "cross", "kron"), _loop_rule),
    ("downslope.ops.linalg", ("diagonal",), _diagonal_rule),
    ("downslope.ops.linalg", ("trace",), _trace_rule),
    ("downslope.ops.sorting", ("kthvalue",), _loop_rule),
    ("downslope.functional", ("lerp", "addcmul", "addcdiv", "cdist"), _loop_rule),
    (
        "downslope.linalg",
        ("norm", "vector_norm", "matrix_norm", "det", "inv", "solve", "cholesky", "slogdet"),
        _loop_rule,
    ),
]
for _module, _names, _rule in _SHARED_RULES:
    _FUNCTION_RULES += [(_module, _name, _rule) for _name in _names]
for _name in ("sum", "mean", "amax", "amin", "logsumexp"):
    _FUNCTION_RULES.append(("downslope.ops.reductions", _name, _reduction_rule))
for _name in ("softmax", "log_softmax"):
    _FUNCTION_RULES.append(("downslope.nn.functional", _name, _dim_rule))
    _FUNCTION_RULES.append(("downslope.ops.reductions", _name, _dim_rule))
for _name in (
    "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "neg", "square", "sin", "cos", "tan", "tanh",
    "sigmoid", "relu", "erf", "sign", "reciprocal", "asinh", "atan",
):  # fmt: skip
    _FUNCTION_RULES.append(("downslope.ops.pointwise", _name, _unary_rule))
for _name in ("relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "elu", "leaky_relu", "relu6", "mish", "hardtanh"):
    _FUNCTION_RULES.append(("downslope.nn.functional", _name, _unary_rule))


def _as_method(name: str) -> Callable[..., Any]:
    """The rule of a function that is one of an element's methods (``ds.flatten(x, 1)``: ``x.flatten(1)``)."""

    def rule(orig: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(x, BatchedTensor) or _batched_args(args, kwargs):
            raise _no_rule(f"{orig.__name__} with a batched argument other than the first")
        return getattr(x, name)(*args, **kwargs)

    return rule


for _name in (
    "flatten", "reshape", "unsqueeze", "squeeze", "permute", "transpose", "movedim", "unflatten", "narrow",
    "unbind", "split", "chunk", "t", "swapaxes", "public_flatten",
):  # fmt: skip
    _FUNCTION_RULES.append(("downslope.ops.shape", _name, _as_method(_name.replace("public_", ""))))
for _name in ("argmax", "prod"):
    _FUNCTION_RULES.append(("downslope.ops.reductions", _name, _as_method(_name)))

# (module, class, method) -> rule: forwards that read arrays directly for speed
_METHOD_RULES: list[tuple[str, str, str, Callable[..., Any]]] = [
    ("downslope.nn.layers", "Linear", "forward", _linear_forward_rule),
    ("downslope.nn.convolution", "_ConvNd", "_conv_forward", _conv_forward_rule),
    ("downslope.nn.normalization", "_BatchNorm", "forward", _batch_norm_forward_rule),
    ("downslope.tensor", "Tensor", "__getitem__", _getitem_method_rule),
]


def _function_dispatcher(orig: Callable[..., Any], rule: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        if _batched_args(args, kwargs):
            if kwargs.get("out") is not None:
                raise _no_rule(f"{orig.__name__}(out=...)")
            kwargs.pop("out", None)
            try:
                return rule(orig, *args, **kwargs)
            except NoRule:
                if rule is _loop_rule:
                    raise
                # this op alone runs per element (as torch's fallback for an op without a batching
                # rule): the rest of the function stays batched and runs once
                return _loop_rule(orig, *args, **kwargs)
        return orig(*args, **kwargs)

    dispatch.__vmap_original__ = orig  # type: ignore[attr-defined]
    return dispatch


def _method_dispatcher(orig: Callable[..., Any], rule: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def dispatch(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return orig(self, *args, **kwargs) if not _batched_args(args, kwargs) else _refuse(orig)
        return rule(orig, self, *args)

    dispatch.__vmap_original__ = orig  # type: ignore[attr-defined]
    return dispatch


def _refusing_apply(apply: Callable[..., Any]) -> Any:
    @functools.wraps(apply)
    def dispatch(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if _batched_args(args, kwargs):
            raise _no_rule(f"the custom autograd.Function {cls.__name__}")
        return apply(cls, *args, **kwargs)

    return classmethod(dispatch)


def _unfused(fused: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fused)
    def dispatch(first: Any, second: Any, x: Any) -> Any:
        return None if isinstance(x, BatchedTensor) else fused(first, second, x)

    return dispatch


def _refuse(orig: Callable[..., Any]) -> Any:
    raise _no_rule(f"{orig.__qualname__} with keyword arguments")


# Where each ruled function is bound (module dicts and names), found once per set of loaded modules.
_bindings: dict[str, Any] = {"modules": -1, "sites": []}
_lock = threading.Lock()
_depth = [0]
_saved: list[tuple[Any, Any, Any]] = []


def _sites() -> list[tuple[dict[str, Any], str, Any, Callable[..., Any]]]:
    """(namespace, name, original, dispatcher) for every binding of a ruled function in downslope's
    loaded modules (``ds.matmul`` and ``ops.linalg.matmul`` are the same function under two names)."""
    loaded = len(sys.modules)
    if _bindings["modules"] == loaded:
        return _bindings["sites"]
    ours = {name for name in list(sys.modules) if name == "downslope" or name.startswith("downslope.")}
    if ours == _bindings.get("names"):  # other libraries' imports: nothing new to scan
        _bindings["modules"] = loaded
        return _bindings["sites"]
    targets: dict[int, tuple[Any, Callable[..., Any]]] = {}
    for module_name, name, rule in _FUNCTION_RULES:
        module = importlib.import_module(module_name)
        orig = module.__dict__.get(name)
        orig = getattr(orig, "__vmap_original__", orig)
        if callable(orig):
            targets[id(orig)] = (orig, rule)
    sites = []
    for mname, module in list(sys.modules.items()):
        if not (mname == "downslope" or mname.startswith("downslope.")) or module is None:
            continue
        namespace = getattr(module, "__dict__", None)
        if namespace is None:
            continue
        for name, value in list(namespace.items()):
            if not callable(value) or isinstance(value, type):
                continue
            value = getattr(value, "__vmap_original__", value)
            hit = targets.get(id(value))
            inner = value
            for _ in range(3):  # a public wrapper of a ruled op (ds.exp wraps ops.pointwise.exp): the same rule
                if hit is not None:
                    break
                inner = getattr(inner, "__wrapped__", None)
                if inner is None:
                    break
                hit = targets.get(id(inner))
            if hit is not None:
                sites.append((namespace, name, value, _dispatchers((value, hit[1]))))
    _bindings["modules"], _bindings["sites"] = len(sys.modules), sites
    _bindings["names"] = {name for name in list(sys.modules) if name == "downslope" or name.startswith("downslope.")}
    return sites


_made: dict[int, Callable[..., Any]] = {}


def _dispatchers(hit: tuple[Any, Callable[..., Any]]) -> Callable[..., Any]:
    orig, rule = hit
    found = _made.get(id(orig))
    if found is None:
        found = _made[id(orig)] = _function_dispatcher(orig, rule)
    return found


class installed:
    """Context manager: the rules are in place (the dispatchers replace the ruled functions) and a
    batched call of batch ``size`` is running in this thread."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> installed:
        with _lock:
            if _depth[0] == 0:
                for namespace, name, orig, dispatch in _sites():
                    if namespace.get(name) is orig:
                        namespace[name] = dispatch
                # Sequential's fused layer pairs: with a batched input both layers run, each by its rule
                FUSED_PAIRS = _nn("module.containers").FUSED_PAIRS
                for key, fused in list(FUSED_PAIRS.items()):
                    _saved.append((FUSED_PAIRS, key, fused))
                    dict.__setitem__(FUSED_PAIRS, key, _unfused(fused))
                # a custom autograd.Function's forward sees one element in torch (or its vmap rule runs):
                # it runs per element in the loop, refused here before it starts
                from .autograd import Function

                _saved.append((Function, "apply", Function.__dict__["apply"]))
                Function.apply = _refusing_apply(Function.__dict__["apply"].__func__)  # type: ignore[method-assign]
                for module_name, cls_name, method, rule in _METHOD_RULES:
                    cls = getattr(importlib.import_module(module_name), cls_name)
                    orig = cls.__dict__[method]
                    _saved.append((cls, method, orig))
                    setattr(cls, method, _method_dispatcher(orig, rule))
            _depth[0] += 1
        _sizes().append(self.size)
        return self

    def __exit__(self, *exc: Any) -> None:
        _sizes().pop()
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                for namespace, name, orig, dispatch in _bindings["sites"]:
                    if namespace.get(name) is dispatch:
                        namespace[name] = orig
                while _saved:
                    owner, key, orig = _saved.pop()
                    if isinstance(owner, dict):
                        dict.__setitem__(owner, key, orig)
                    else:
                        setattr(owner, key, orig)
