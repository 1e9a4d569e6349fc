"""Tensor: an array, its gradient, and the operation that produced it.

A tensor made by an op while gradients are being recorded keeps its parents (the input tensors),
its vector-Jacobian product rule (``_vjp``) and whatever that rule needs (``_saved``). The tensor
itself is the graph node, so there is no separate node object to allocate per op.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import backend
from .autograd import _mode
from .autograd import backward as _backward
from .errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError, StateError

Shape = tuple[int, ...]


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = (
        "array",
        "grad",
        "requires_grad",
        "_parents",
        "_vjp",
        "_saved",
        "_needs",
        "_retains_grad",
        "_seq",
        "__weakref__",
    )

    # NumPy defers to our reflected operators (ndarray * Tensor -> Tensor.__rmul__) instead of
    # converting the tensor to an array and silently dropping the gradient.
    __array_ufunc__ = None

    array: np.ndarray  # the values; ``.data`` is PyTorch's view of them as a graph-free Tensor
    grad: Tensor | None
    requires_grad: bool

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.array = _to_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._parents: tuple[Tensor, ...] = ()
        self._vjp: Callable[..., Any] | None = None
        self._saved: Any = None
        self._needs: tuple[bool, ...] | None = None
        self._retains_grad = False
        self._seq = 0  # leaves sort before every recorded op (see _node)
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    @property
    def data(self) -> Tensor:
        """The same storage as a Tensor outside the graph (PyTorch's ``.data``).

        Writing into it (``p.data.add_(...)``, ``p.data[0] = 1``) changes this tensor's values, and
        ``p.data = other`` replaces them; neither is seen by autograd. ``.array`` is the NumPy array.
        """
        return _wrap(self.array)

    @data.setter
    def data(self, value: Any) -> None:
        new = value.array if isinstance(value, Tensor) else np.asarray(value)
        if new.dtype.kind not in "fiub":
            raise ArgumentTypeError(f".data = ...: expected numbers or booleans, got dtype {new.dtype}")
        self.array = new

    @property
    def shape(self) -> Shape:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape (PyTorch's ``size()``), or the length of one dimension."""
        if dim is None:
            return self.array.shape
        return self.array.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor: it has no length (shape ()); use .numel() or .item()")
        return len(self.array)

    def __iter__(self) -> Iterator[Tensor]:
        # Without this, Python iterates via __getitem__ until IndexError: a 0-d tensor would give [].
        if self.array.ndim == 0:
            raise ArgumentTypeError(
                "iteration over a 0-d tensor: it has no elements to iterate (shape ()); use .item()"
            )
        return (self[i] for i in range(len(self.array)))

    @property
    def is_leaf(self) -> bool:
        return self._vjp is None

    @property
    def grad_fn(self) -> str | None:
        """The name of the backward rule that made this tensor (None for leaves)."""
        if self._vjp is None:
            return None
        return _rule_name(self._vjp)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not backend.is_floating(self.array.dtype):
            raise ArgumentTypeError(
                f"only floating-point tensors can require gradients; this tensor is {self.array.dtype}"
            )
        if not requires_grad and self._vjp is not None:
            raise StateError("requires_grad_(False) is only allowed on leaf tensors; use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise StateError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, like PyTorch)."""
        return _wrap(self.array)

    def item(self) -> Any:
        if self.array.size != 1:
            raise ShapeError(
                f"item(): only one-element tensors can be converted to Python scalars; shape is {self.shape}"
            )
        return self.array.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.array

    def tolist(self) -> Any:
        return self.array.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy:  # np.array(t) asks for a copy; handing out self.array would let it write into the tensor
            return np.array(self.array, dtype=dtype, copy=True)
        return self.array if dtype is None else self.array.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise StateError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(self.array)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        body = np.array2string(self.array, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.array.dtype != backend.get_default_dtype() and not (self.array.dtype == backend.int64):
            extras.append(f"dtype={self.array.dtype}")
        if self._vjp is not None:
            extras.append(f"grad_fn=<{self.grad_fn}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ------------------------------------------------------------------ autograd
    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool = False,
        create_graph: bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (reverse mode).

        ``gradient`` is the upstream gradient (required unless self is a scalar). The graph is
        freed afterwards unless ``retain_graph``; ``create_graph`` makes the gradients
        differentiable (for Hessian-vector products).
        """
        _backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------------ conversions
    def astype(self, dtype: Any) -> Tensor:
        return _ops.astype(self, dtype)

    def to(self, dtype: Any = None, device: Any = None) -> Tensor:
        """Cast to ``dtype``. Devices: downslope runs on the CPU, so ``"cpu"`` is accepted (and
        ignored) to keep ported PyTorch code working; any other device is refused."""
        for target in (dtype, device):
            if isinstance(target, str) and target.split(":")[0] in ("cpu", "cuda", "mps"):
                if target.split(":")[0] != "cpu":
                    raise StateError(f"to({target!r}): downslope runs on the CPU only")
                if target is dtype:
                    dtype = None
        return self if dtype is None else _ops.astype(self, dtype)

    def float(self) -> Tensor:
        return _ops.astype(self, backend.float32)

    def double(self) -> Tensor:
        return _ops.astype(self, backend.float64)

    def long(self) -> Tensor:
        return _ops.astype(self, backend.int64)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # Comparisons give boolean tensors outside the graph (they have no gradient).
    def __lt__(self, other: Any) -> Tensor:
        return _wrap(self.array < _data_of(other))

    def __le__(self, other: Any) -> Tensor:
        return _wrap(self.array <= _data_of(other))

    def __gt__(self, other: Any) -> Tensor:
        return _wrap(self.array > _data_of(other))

    def __ge__(self, other: Any) -> Tensor:
        return _wrap(self.array >= _data_of(other))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _wrap(self.array == _data_of(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _wrap(self.array != _data_of(other))

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if _mode.enabled and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            raise StateError(
                "in-place assignment into a tensor that takes part in gradient recording would corrupt the graph; "
                "wrap it in `with ds.no_grad():` or build a new tensor (e.g. ds.where)"
            )
        try:
            self.array[_ops._normalize_index(index, keep_masks=True)] = _data_of(value)
        except (IndexError, ValueError) as exc:
            value_shape = getattr(value, "shape", ())
            kind = OutOfRangeError if isinstance(exc, IndexError) else ShapeError
            raise kind(
                f"cannot assign a value of shape {value_shape} at index {index!r} of a tensor of shape {self.shape}: {exc}"
            ) from None

    # ------------------------------------------------------------------ elementwise
    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def sin(self) -> Tensor:
        return _ops.sin(self)

    def cos(self) -> Tensor:
        return _ops.cos(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return _ops.clip(self, min, max)

    clamp = clip

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    amax = max
    amin = min

    # torch's positional order: var(dim, unbiased, keepdim); x.var(1, False) is the biased variance
    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        return _functional.var(self, dim, unbiased, keepdim, **kwargs)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        return _functional.std(self, dim, unbiased, keepdim, **kwargs)

    def logsumexp(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        return _ops.logsumexp(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def softmax(self, dim: int = -1) -> Tensor:
        return _ops.softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        return _ops.log_softmax(self, dim)

    def argmax(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
        a = _ops._pick_axis(dim, axis)
        return _wrap(np.argmax(self.array, axis=a, keepdims=keepdim if a is not None else False))

    def argmin(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
        a = _ops._pick_axis(dim, axis)
        return _wrap(np.argmin(self.array, axis=a, keepdims=keepdim if a is not None else False))

    # ------------------------------------------------------------------ shapes
    def reshape(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    view = reshape

    def transpose(self, *dims: int) -> Tensor:
        """Swap two dimensions (PyTorch's ``transpose(dim0, dim1)``); no argument reverses all."""
        if len(dims) == 0:
            return _ops.permute(self, tuple(reversed(range(self.ndim))))
        if len(dims) != 2:
            raise ArgumentTypeError(
                f"transpose expects two dims to swap (PyTorch semantics); got {dims}; use permute for more"
            )
        return _ops.transpose(self, dims[0], dims[1])

    def permute(self, *dims: Any) -> Tensor:
        return _ops.permute(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)

    @property
    def T(self) -> Tensor:
        return _ops.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        return _ops.transpose(self, -2, -1)

    def squeeze(self, dim: Any = None) -> Tensor:
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _ops.unsqueeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def expand(self, *shape: Any) -> Tensor:
        return _ops.broadcast_to(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def gather(self, dim: int, index: Any) -> Tensor:
        return _ops.gather(self, dim, index)


# ---------------------------------------------------------------------- construction helpers
def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn user data into an array with the library's dtype policy.

    Floating input becomes the default dtype (float32) unless ``dtype`` says otherwise: NumPy and
    scikit-learn hand out float64, and silently training in float64 would be twice as slow.
    Integers stay int64 (class indices), booleans stay bool. Strings and objects are refused.
    """
    if isinstance(data, Tensor):
        arr = data.array
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise ArgumentTypeError(f"cannot make a tensor from {type(data).__name__}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise ArgumentTypeError(
            f"cannot make a tensor from data of dtype {arr.dtype} ({type(data).__name__}); "
            "expected numbers or booleans (ragged lists and strings are not tensors)"
        )
    if dtype is not None:
        target = backend.as_dtype(dtype)
    elif arr.dtype.kind == "f":
        target = backend.get_default_dtype()
    elif arr.dtype.kind in "iu":
        target = backend.int64
    else:
        target = arr.dtype
    if arr.dtype != target:
        arr = arr.astype(target)
    elif isinstance(data, (Tensor, np.ndarray)):
        arr = arr.copy()  # ds.tensor copies, like torch.tensor; use ds.from_numpy to share
    return arr


def _wrap(arr: np.ndarray) -> Tensor:
    """A constant (leaf, no grad) tensor around an existing array, without checks or copies."""
    t = Tensor.__new__(Tensor)
    t.array = arr
    t.grad = None
    t.requires_grad = False
    t._parents = ()
    t._vjp = None
    t._saved = None
    t._needs = None
    t._retains_grad = False
    t._seq = 0
    return t


# Recorded ops are numbered in creation order. An op's inputs exist before it does, so sorting a
# graph's nodes by this number is a topological order: backward needs no depth-first search.
_op_counter = itertools.count(1)


def _node(arr: np.ndarray, parents: tuple[Tensor, ...], vjp: Callable[..., Any], saved: Any = None) -> Tensor:
    """The output of an op: records the graph when grad mode is on and an input requires grad."""
    t = Tensor.__new__(Tensor)
    t.array = arr
    t.grad = None
    t._saved = saved
    t._retains_grad = False
    if _mode.enabled:
        needs = tuple(p.requires_grad for p in parents)
        if True in needs:
            t.requires_grad = True
            t._parents = parents
            t._vjp = vjp
            t._needs = needs
            t._seq = next(_op_counter)
            return t
    t._seq = 0
    t.requires_grad = False
    t._parents = ()
    t._vjp = None
    t._needs = None
    t._saved = None
    return t


def _data_of(x: Any) -> Any:
    return x.array if isinstance(x, Tensor) else x


def _rule_name(vjp: Callable[..., Any]) -> str:
    name = getattr(vjp, "__name__", "Op").strip("_")
    if name.endswith("_vjp"):
        name = name[: -len("_vjp")]
    return "".join(part.capitalize() for part in name.split("_")) + "Backward"


# ---------------------------------------------------------------------- public factories
def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a tensor from a list, a scalar, an array or another tensor (data is copied).

    Floating data becomes float32 unless ``dtype`` is given (e.g. ``dtype=ds.float64``).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([[1, 2], [3, 4]], dtype="float32").shape
        (2, 2)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """Wrap an array without copying it (its dtype is kept)."""
    if not isinstance(array, np.ndarray):
        raise ArgumentTypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise ArgumentTypeError(f"from_numpy: unsupported dtype {array.dtype}")
    t = _wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """Return ``data`` itself when it is already a tensor (of the asked dtype), else a new tensor."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == backend.as_dtype(dtype)):
        return data
    return Tensor(data, dtype=dtype)


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ArgumentError(f"expected a shape of non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def _float_dtype(dtype: Any) -> np.dtype:
    return backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)


def _random_dtype(dtype: Any, name: str) -> np.dtype:
    resolved = _float_dtype(dtype)
    if resolved.kind != "f":  # casting the samples would silently truncate them to integers
        raise ArgumentTypeError(f"{name}: expected a floating dtype, got {resolved}")
    return resolved


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, e.g. ``ds.zeros(2, 3)``."""
    return from_numpy(np.zeros(_shape_arg(shape), _float_dtype(dtype)), requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, e.g. ``ds.ones(2, 3)``."""
    return from_numpy(np.ones(_shape_arg(shape), _float_dtype(dtype)), requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value, as in torch.full
    (``ds.full((2,), 3)`` is int64, ``ds.full((2,), 0.5)`` float32).

    Example:
        >>> import downslope as ds
        >>> ds.full((2, 2), 0.5)
        tensor([[0.5, 0.5],
                [0.5, 0.5]])
    """
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = backend.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = backend.int64
    return from_numpy(np.full(_shape_arg((shape,)), fill_value, _float_dtype(dtype)), requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return from_numpy(np.zeros_like(_data_of(t)), requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return from_numpy(np.ones_like(_data_of(t)), requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the library's seeded generator."""
    arr = backend.rng().standard_normal(_shape_arg(shape), dtype=np.float64).astype(_random_dtype(dtype, "randn"))
    return from_numpy(arr, requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) from the library's seeded generator."""
    arr = backend.rng().random(_shape_arg(shape), dtype=np.float64).astype(_random_dtype(dtype, "rand"))
    return from_numpy(arr, requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values in [start, end); integers unless a float is involved or asked for."""
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if dtype is not None:
        arr = arr.astype(backend.as_dtype(dtype))
    elif arr.dtype.kind == "f":
        arr = arr.astype(backend.get_default_dtype())
    else:
        arr = arr.astype(backend.int64)
    return from_numpy(arr)


from . import functional as _functional  # noqa: E402  (the ops need Tensor defined first)
from . import ops as _ops  # noqa: E402
