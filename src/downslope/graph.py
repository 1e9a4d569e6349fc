"""Recording the graph: grad mode, the in-place clock, and the contract every VJP rule follows.

This module imports neither ``tensor`` nor ``ops`` when it is imported, so both (and ``autograd``,
the backward walk) can import it at the top. ``TensorRules`` reaches the ops only when a rule runs
under ``create_graph=True``.

The op contract. An op computes its output array and records it with
``downslope.tensor.record_op(array, parents, rule, saved)``. The rule is a :class:`VJPRule`:
``rule(g, y, args, saved, needs, xp)`` returns one gradient per parent (``None`` where ``needs[i]``
is False). In the normal backward ``g``, ``y`` and ``args`` are NumPy arrays and ``xp`` is
:class:`ArrayRules`; under ``create_graph=True`` they are Tensors and ``xp`` is :class:`TensorRules`,
so the same rule is recorded and can be differentiated again. A rule written with operators,
``.sum``/``.reshape``/``.T``/indexing and the ``xp.*`` helpers works in both modes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import workspace

if TYPE_CHECKING:
    from .tensor import Tensor


class VJPRule(Protocol):
    """An op's vector-Jacobian product: its output gradient turned into its inputs' gradients.

    ``g``: the gradient of the op's output (same shape as ``y``); ``y``: the op's output;
    ``args``: the op's inputs (the ``parents`` given to ``record_op``); ``saved``: what the op kept
    for its rule; ``needs``: per input, whether it wants a gradient; ``xp``: the rule namespace
    (:class:`ArrayRules` or :class:`TensorRules`). Returns one entry per input, ``None`` where
    none is needed. A rule may carry ``reads_inputs`` (True, False, a tuple of indices or
    ``"others"``) and ``reads_output`` (bool) so that backward's in-place checks know what it reads.

    Example:
        >>> def square_vjp(g, y, args, saved, needs, xp):
        ...     return (g * 2 * args[0],)
        >>> rule: VJPRule = square_vjp
    """

    def __call__(
        self, g: Any, y: Any, args: tuple[Any, ...], saved: Any, needs: tuple[bool, ...], xp: RuleNamespace, /
    ) -> Sequence[Any]: ...


class _GradMode:
    __slots__ = ("enabled",)

    def __init__(self) -> None:
        self.enabled = True


_mode = _GradMode()


class _InplaceClock:
    """The creation number (see ``Tensor._seq``) of the latest in-place write, 0 if there was none.

    Backward checks a node's inputs for in-place changes only when this is later than the node,
    so graphs that no in-place op touched cost one comparison per node.
    """

    __slots__ = ("last", "rebased", "hooks", "taints")

    def __init__(self) -> None:
        self.last = 0
        self.rebased = 0  # the same for the latest in-place op that was recorded (a rebase, see tensor.py)
        self.hooks = 0  # how many gradient hooks are registered (Tensor.register_hook); 0 skips the lookup
        # [version counter, seq, seq cleared or None]: storage that a recorded in-place op wrote while tensors
        # outside the graph (a buffer, its views) share it; they show values whose gradient they do not carry
        self.taints: list[list[Any]] = []


_inplace_clock = _InplaceClock()


def _decorated(fn: Callable[..., Any], mode: Callable[[], Any]) -> Callable[..., Any]:
    """``fn`` run inside the grad mode ``mode()`` makes. A generator function gets the mode around each
    of its steps (and only those: the caller's code between them keeps its own mode), as PyTorch's
    decorators do; a plain ``with`` around the call would end before the generator's body runs."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with mode():
                steps = fn(*args, **kwargs)
            sent = None
            while True:
                try:
                    with mode():
                        value = steps.send(sent)
                except StopIteration as stop:
                    return stop.value
                sent = yield value

        return generator

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mode():
            return fn(*args, **kwargs)

    return wrapper


class no_grad:
    """Context manager (and decorator) that turns gradient recording off.

    Example:
        >>> import downslope as ds
        >>> w = ds.ones(2, requires_grad=True)
        >>> with ds.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        # `@ds.no_grad` without parentheses (torch allows it too) decorates fn directly.
        if fn is not None:
            return cls()(fn)
        return super().__new__(cls)

    def __enter__(self) -> None:
        self._prev = _mode.enabled
        _mode.enabled = False

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return _decorated(fn, self.__class__)


class inference_mode(no_grad):
    """``torch.inference_mode(mode=True)``: recording off, as :class:`no_grad` (there are no separate
    inference tensors here); ``inference_mode(False)`` leaves the grad mode as it is.

    Example:
        >>> import downslope as ds
        >>> with ds.inference_mode():
        ...     ds.is_grad_enabled()
        False
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # @ds.inference_mode without parentheses
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: Any = True) -> None:
        self.mode = bool(mode)  # host: a Python flag

    def __enter__(self) -> None:
        self._prev = _mode.enabled
        if self.mode:
            _mode.enabled = False

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        mode = self.mode
        return _decorated(fn, lambda: inference_mode(mode))


class enable_grad(no_grad):
    """Context manager that turns gradient recording back on (e.g. inside ``no_grad``)."""

    def __enter__(self) -> None:
        self._prev = _mode.enabled
        _mode.enabled = True


class set_grad_enabled:
    """Turn gradient recording on or off: a plain call switches the mode (like torch), and as a
    context manager (or decorator) the previous mode comes back at the end.

    Example:
        >>> import downslope as ds
        >>> with ds.set_grad_enabled(False):
        ...     ds.is_grad_enabled()
        False
        >>> ds.is_grad_enabled()
        True
    """

    def __init__(self, enabled: bool) -> None:
        self._prev = _mode.enabled
        self.enabled = bool(enabled)  # host: a Python flag
        _mode.enabled = self.enabled

    def __enter__(self) -> None:
        pass  # already switched in __init__

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        _mode.enabled = self._prev  # used as a decorator: undo the switch made at construction
        enabled = self.enabled
        return _decorated(fn, lambda: set_grad_enabled(enabled))


def is_grad_enabled() -> bool:
    return _mode.enabled


# ---------------------------------------------------------------------- rule namespaces
def _sum_to_array(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to the shape of the input it came from."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    if lead:
        out = out.reshape(out.shape[lead:])
    return out


def _sigmoid_array(d: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-d) on an array, stably: e^-|d| never overflows, and e^d / (1 + e^d) on the
    negative side keeps full relative precision there ((1 + tanh(d/2)) / 2 cancels to 0 in float32
    near d = -17, so log(sigmoid(d)) became -inf)."""
    e = np.exp(-np.abs(d))
    return np.where(d >= 0, 1, e) / (1 + e)  # the Python 1 takes d's dtype


def _scatter_array(shape: tuple[int, ...], index: Any, advanced: bool, g: np.ndarray) -> np.ndarray:
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices add up). Large host arrays
    come from the workspace's pool (an RNN's output indexed at its last step scatters into an array
    of every step's size on each backward pass: fresh pages each time, page faults included)."""
    out = workspace.lend_zeros(shape, g.dtype, like=g)
    if advanced:
        np.add.at(out, index, g)
    else:
        out[index] = g
    return out


class ArrayRules:
    """What VJP rules call in the fast mode: plain NumPy on arrays."""

    differentiable = False
    data = staticmethod(lambda x: x)
    sum_to = staticmethod(_sum_to_array)
    broadcast_to = staticmethod(np.broadcast_to)
    reshape = staticmethod(np.reshape)
    permute = staticmethod(np.transpose)
    swap_last = staticmethod(lambda x: np.swapaxes(x, -1, -2))
    expand_dims = staticmethod(np.expand_dims)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    sign = staticmethod(np.sign)
    sigmoid = staticmethod(_sigmoid_array)
    cumsum = staticmethod(lambda x, dim: np.cumsum(x, axis=dim))
    einsum = staticmethod(np.einsum)
    constant = staticmethod(lambda x: x)
    where = staticmethod(np.where)
    scatter = staticmethod(_scatter_array)
    astype = staticmethod(lambda x, dtype: x.astype(dtype, copy=False))


class TensorRules:
    """What VJP rules call under ``create_graph=True``: differentiable tensor ops."""

    differentiable = True

    @staticmethod
    def data(x: Tensor) -> np.ndarray:
        return x.array

    @staticmethod
    def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
        return _ops().sum_to(g, shape)

    @staticmethod
    def broadcast_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
        return _ops().broadcast_to(g, shape)

    @staticmethod
    def reshape(g: Tensor, shape: tuple[int, ...]) -> Tensor:
        return _ops().reshape(g, shape)

    @staticmethod
    def permute(g: Tensor, axes: Sequence[int]) -> Tensor:
        return _ops().permute(g, axes)

    @staticmethod
    def swap_last(g: Tensor) -> Tensor:
        return _ops().transpose(g, -1, -2)

    @staticmethod
    def expand_dims(g: Tensor, axis: int) -> Tensor:
        return _ops().unsqueeze(g, axis)

    @staticmethod
    def exp(x: Tensor) -> Tensor:
        return _ops().exp(x)

    @staticmethod
    def log(x: Tensor) -> Tensor:
        return _ops().log(x)

    @staticmethod
    def sqrt(x: Tensor) -> Tensor:
        return _ops().sqrt(x)

    @staticmethod
    def sin(x: Tensor) -> Tensor:
        return _ops().sin(x)

    @staticmethod
    def cos(x: Tensor) -> Tensor:
        return _ops().cos(x)

    @staticmethod
    def sinh(x: Tensor) -> Tensor:
        return _ops().sinh(x)

    @staticmethod
    def cosh(x: Tensor) -> Tensor:
        return _ops().cosh(x)

    @staticmethod
    def sign(x: Tensor) -> Tensor:
        return _ops().sign(x)

    @staticmethod
    def sigmoid(x: Tensor) -> Tensor:
        return _ops().sigmoid(x)

    @staticmethod
    def cumsum(x: Tensor, dim: int) -> Tensor:
        return _ops().cumsum(x, dim)

    @staticmethod
    def einsum(spec: str, *operands: Tensor) -> Tensor:
        return _ops().einsum(spec, *operands)

    @staticmethod
    def constant(x: np.ndarray) -> Tensor:
        """An array as a constant operand of a recorded op (a leaf tensor without grad)."""
        return _wrap_array()(x)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Tensor:
        return _ops().where(cond, a, b)

    @staticmethod
    def scatter(shape: tuple[int, ...], index: Any, advanced: bool, g: Tensor) -> Tensor:
        return _ops().scatter_into_zeros(shape, index, advanced, g)

    @staticmethod
    def astype(x: Tensor, dtype: Any) -> Tensor:
        return _ops().astype(x, dtype)


@functools.cache
def _ops() -> Any:
    """The ops module, imported when a rule first runs under create_graph (ops imports this module)."""
    from . import ops

    return ops


@functools.cache
def _wrap_array() -> Any:
    """tensor.wrap_array, imported when first needed (tensor imports this module)."""
    from .tensor import wrap_array

    return wrap_array


RuleNamespace = type[ArrayRules] | type[TensorRules]
"""What a rule receives as ``xp``: ``ArrayRules`` in the normal backward, ``TensorRules`` under create_graph."""
