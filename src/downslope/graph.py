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
import threading
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
    ``"others"``) and ``reads_output`` (a bool, or ``"optional"``: read while unchanged, None passed
    for it after an in-place change, the rule then recomputing from its inputs) so that backward's
    in-place checks know what it reads.

    Example:
        >>> def square_vjp(g, y, args, saved, needs, xp):
        ...     return (g * 2 * args[0],)
        >>> rule: VJPRule = square_vjp
    """

    def __call__(
        self, g: Any, y: Any, args: tuple[Any, ...], saved: Any, needs: tuple[bool, ...], xp: RuleNamespace, /
    ) -> Sequence[Any]: ...


class _GradMode(threading.local):
    """Per thread, as torch's: a no_grad block in one thread (an evaluation thread, a data thread)
    leaves recording on in the others, and a new thread starts with recording on. (No __slots__:
    slots would live in the one shared object, not per thread.)"""

    def __init__(self) -> None:
        self.enabled = True
        self.inference = False  # inside inference_mode(True) (is_inference_mode_enabled)
        # the grad mode is_grad_enabled reports inside inference_mode(True), where nothing records whatever it
        # says (enable_grad and set_grad_enabled(True) set it there, as torch's do)
        self.inference_grad = False
        # (pack, unpack) pairs of the active ``autograd.graph.saved_tensors_hooks`` contexts, innermost
        # last; record_op calls the innermost pack hook only while this is non-empty
        self.saved_hooks: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = []


_mode = _GradMode()
# how many inference_mode(True) blocks are open, in all threads: the tensor constructors' cheap test, made
# before the per-thread one (inference tensors are made only inside such a block)
inference_active = [0]
_inference_count_lock = threading.Lock()  # (+= on a list item is no atomic step between threads)


def reads_inputs_when_recorded(i: int, needs: Any) -> bool:
    """A rule's ``reads_inputs`` for rules that compute from values the forward kept (as torch saves a
    result or a factorization) and read their inputs only under create_graph, where the gradient must be a
    differentiable function of them: an in-place write into an input after the op stops backward there
    only (backward runs with grad mode set to create_graph)."""
    return _mode.enabled


# Anomaly mode (autograd.set_detect_anomaly), process-wide as torch's: while on, backward checks every
# gradient for NaN and record_op keeps each node's forward stack (the traceback its error shows)
anomaly_mode = [False]


def note_forward_stack(t: Any) -> None:
    """Keep where the op that made ``t`` was called (anomaly mode: torch's "Traceback of forward call")."""
    import traceback

    t._forward_stack = traceback.extract_stack()[:-2]  # without record_op and this function


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
        self._prev_inference_grad = _mode.inference_grad
        _mode.enabled = False
        _mode.inference_grad = False

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev
        _mode.inference_grad = self._prev_inference_grad

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
        self._prev_inference = _mode.inference
        self._prev_inference_grad = _mode.inference_grad
        _mode.inference = self.mode
        if self.mode:
            _mode.enabled = False
            _mode.inference_grad = False
            with _inference_count_lock:
                inference_active[0] += 1

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev
        _mode.inference = self._prev_inference
        _mode.inference_grad = self._prev_inference_grad
        if self.mode:
            with _inference_count_lock:
                inference_active[0] -= 1

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        mode = self.mode
        return _decorated(fn, lambda: inference_mode(mode))


def is_inference_mode_enabled() -> bool:
    """``torch.is_inference_mode_enabled``: whether code runs inside ``inference_mode()`` (``no_grad``
    alone does not count; an inner ``inference_mode(False)`` turns it off), per thread.

    Example:
        >>> import downslope as ds
        >>> with ds.inference_mode():
        ...     ds.is_inference_mode_enabled()
        True
        >>> with ds.no_grad():
        ...     ds.is_inference_mode_enabled()
        False
    """
    return _mode.inference


class enable_grad(no_grad):
    """Context manager that turns gradient recording back on (e.g. inside ``no_grad``). Inside
    ``inference_mode()`` it records nothing, as in PyTorch, where the results made there are
    inference tensors that never require grad; ``is_grad_enabled()`` says True there, as torch's."""

    def __enter__(self) -> None:
        self._prev = _mode.enabled
        self._prev_inference_grad = _mode.inference_grad
        if _mode.inference:
            _mode.inference_grad = True
        else:
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
        self._prev_inference_grad = _mode.inference_grad
        self.enabled = bool(enabled)  # host: a Python flag
        if _mode.inference:  # inside inference_mode(): the mode reported, nothing recorded (as torch)
            _mode.inference_grad = self.enabled
        else:
            _mode.enabled = self.enabled

    def __enter__(self) -> None:
        pass  # already switched in __init__

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev
        _mode.inference_grad = self._prev_inference_grad

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        # used as a decorator: undo the switch made at construction
        _mode.enabled = self._prev
        _mode.inference_grad = self._prev_inference_grad
        enabled = self.enabled
        return _decorated(fn, lambda: set_grad_enabled(enabled))


def is_grad_enabled() -> bool:
    """Whether ops record now (what the library's own code asks). ``torch.is_grad_enabled`` is
    :func:`grad_mode_enabled`, which differs inside ``inference_mode()`` only."""
    return _mode.enabled


def grad_mode_enabled() -> bool:
    """``torch.is_grad_enabled``: whether the grad mode is on; inside ``inference_mode()``, where nothing
    records, what ``enable_grad`` or ``set_grad_enabled`` set there (False unless one did), as torch's."""
    return _mode.inference_grad if _mode.inference else _mode.enabled


# ---------------------------------------------------------------------- rule namespaces
def _sum_to_array(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to the shape of the input it came from."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if not axes:
        out = g
    elif g.dtype == np.float16:  # summed in float32 and rounded once, as torch does (float16 sums stall at 2048)
        out = g.sum(axis=axes, keepdims=True, dtype=np.float32).astype(np.float16)
    else:
        out = g.sum(axis=axes, keepdims=True)
    if lead:
        out = out.reshape(out.shape[lead:])
    return out


def _sigmoid_array(d: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-d) on an array: PyTorch's formula, in four passes and without a select.

    Relative precision holds on the negative side (e^-d is large there and 1 + e^-d keeps it;
    (1 + tanh(d/2)) / 2 cancelled to 0 in float32 near d = -17, so log(sigmoid(d)) became -inf).
    Where e^-d overflows (d below -88.7 in float32, -709 in float64) the result is 0, as torch's.
    No ``where``: a data-dependent mask costs NumPy a mispredicted branch per element (about 20x the
    arithmetic on random signs). float16 is computed in float32 and rounded once, as torch does.
    """
    if d.dtype.kind != "f":  # integers and bools: the float type np.exp would give
        d = d.astype(np.result_type(d.dtype, np.float16))
    if d.dtype == np.float16:
        return _sigmoid_array(d.astype(np.float32)).astype(np.float16)
    out = np.negative(d, out=np.empty_like(d))  # out=: an array even for 0-d input (not a NumPy scalar)
    with np.errstate(over="ignore"):  # e^-d = inf gives the limit 0 below
        np.exp(out, out=out)
    out += 1  # the Python numbers take d's dtype
    return np.divide(1, out, out=out)


def _scatter_array(shape: tuple[int, ...], index: Any, advanced: bool, g: np.ndarray) -> np.ndarray:
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices add up). Large host arrays
    come from the workspace's pool (an RNN's output indexed at its last step scatters into an array
    of every step's size on each backward pass: fresh pages each time, page faults included)."""
    out = workspace.lend_zeros(shape, g.dtype, like=g)
    if advanced:
        if type(g) is np.ndarray and g.size >= 1024:  # ops' _FLAT_AT_MIN: where a flat index pays
            # one flat index into ufunc.at, NumPy's fast path (5x a tuple's speed), adding in the
            # same order, so the same sums; imported here: ops imports this module
            from .ops.indexing import _at, _flat_index, _rows_at, _scatter_grid

            if type(index) is np.ndarray and index.ndim > 1 and index.dtype.kind in "iu":
                # an embedding's (batch, seq) index picks rows: the same rows, in the same order, flat
                g = g.reshape((-1,) + g.shape[index.ndim :])
                index = index.reshape(-1)
            rows = _whole_rows(index, len(shape))
            if rows is not None and rows.size and rows.min() >= 0 and g.shape == rows.shape + tuple(shape[1:]):
                # x[idx] / index_select(0, idx), the graph network's gather: rows added whole, compiled where
                # it can be (a flat index of every element and np.add.at took 2x torch's whole step)
                _rows_at(np.add, out, rows, g)
                return out
            grid = _scatter_grid(index, tuple(shape))
            if grid is not None:
                _at(np.add, out, grid, g, _flat_index(grid, out.shape))
                return out
        np.add.at(out, index, g)
    else:
        out[index] = g
    return out


def _whole_rows(index: Any, ndim: int) -> np.ndarray | None:
    """The 1-D integer index of dim 0 when ``index`` (of an array of ``ndim`` > 1 dims) picks whole rows
    (``idx`` or ``(idx, :, ...)``); else None."""
    items = index if isinstance(index, tuple) else (index,)
    if ndim < 2 or not items or len(items) > ndim:
        return None
    rows = items[0]
    if type(rows) is not np.ndarray or rows.ndim != 1 or rows.dtype.kind not in "iu":
        return None
    if any(not (type(item) is slice and item == slice(None)) for item in items[1:]):
        return None
    return rows


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
        if tuple(g.shape) == tuple(shape):
            # nothing was broadcast: no node (a Hessian of a small MLP recorded ~130 of these no-ops). The
            # caller's gradient passes through shared, as ArrayRules.sum_to does; the engine never writes
            # into a gradient in place under create_graph and copies one before it becomes a .grad
            return g
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


# ---------------------------------------------------------------------- node names and per-node state
class NodeState:
    """What a recorded op carries beyond its rule, made only when something asks for it (kept in the
    output tensor's ``_fn`` slot): hooks registered on its ``grad_fn`` node, the node's ``metadata``
    dict, and the values ``saved_tensors_hooks`` packed for it. ``seq`` is the op's creation number;
    a tensor that an in-place op rebased has a new one, so its old state no longer applies.

    Example:
        >>> NodeState(7).seq
        7
    """

    __slots__ = ("seq", "pre_hooks", "hooks", "metadata", "packed")

    def __init__(self, seq: float) -> None:
        self.seq = seq
        self.pre_hooks: dict[int, Any] = {}
        self.hooks: dict[int, Any] = {}
        self.metadata: dict[Any, Any] | None = None
        # (input index, or -1 for the output; unpack hook; what the pack hook returned), or None
        self.packed: list[tuple[int, Callable[[Any], Any], Any]] | None = None


# PyTorch's names for the nodes of the ops whose rule is named differently here (the rule's name in
# CamelCase plus "Backward0" otherwise: _tanh_vjp -> TanhBackward0).
_TORCH_NODE_NAMES = {
    "astype": "ToCopyBackward0",
    "avg_pool2d": "AvgPool2DBackward0",
    "avg_pool3d": "AvgPool3DBackward0",
    "batch_norm": "NativeBatchNormBackward0",
    "batch_norm_channels": "NativeBatchNormBackward0",
    "bce": "BinaryCrossEntropyBackward0",
    "broadcast_to": "ExpandBackward0",
    "cholesky": "LinalgCholeskyExBackward0",
    "clip": "ClampBackward1",
    "concatenate": "CatBackward0",
    "conv2d": "ConvolutionBackward0",
    "conv3d": "ConvolutionBackward0",
    "conv_transpose3d": "ConvolutionBackward0",
    "cross_entropy": "NllLossBackward0",
    "cross_entropy_plain": "NllLossBackward0",
    "depthwise": "ConvolutionBackward0",
    "det": "LinalgDetBackward0",
    "eigvalsh": "LinalgEighBackward0",
    "getitem": "IndexBackward0",
    "inv": "LinalgInvExBackward0",
    "layer_norm": "NativeLayerNormBackward0",
    "linear": "AddmmBackward0",
    "log1p": "Log1PBackward0",
    "matmul": "MmBackward0",
    "max_pool2d": "MaxPool2DWithIndicesBackward0",
    "max_pool3d": "MaxPool3DWithIndicesBackward0",
    "max_pool_2x2": "MaxPool2DWithIndicesBackward0",
    "mse": "MseLossBackward0",
    "pad": "ConstantPadNdBackward0",
    "permute": "PermuteBackward0",
    "prelu": "PreluKernelBackward0",
    "qr": "LinalgQrBackward0",
    "reshape": "ViewBackward0",
    "rrelu": "RreluWithNoiseBackward0",
    "rsub": "RsubBackward1",
    "slogdet": "LinalgSlogdetBackward0",
    "solve": "LinalgSolveExBackward0",
    "square": "PowBackward0",
    "sum_to": "SumBackward1",
    "svd": "LinalgSvdBackward0",
    "times_number": "MulBackward1",
    "to_device": "ToCopyBackward0",
    "vector_norm": "LinalgVectorNormBackward0",
    "weight_norm": "WeightNormInterfaceBackward0",
    "winograd": "ConvolutionBackward0",
}
_MATMUL_NAMES = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0", (3, 3): "BmmBackward0"}


def _rule_stem(rule: Any) -> str:
    name: str = getattr(rule, "__name__", "op").strip("_")
    return name[: -len("_vjp")] if name.endswith("_vjp") else name


def rule_name(rule: Any) -> str:
    """The node name PyTorch gives the op whose VJP rule is ``rule`` (``MulBackward0``), for messages.

    Example:
        >>> def _concatenate_vjp(g, y, args, saved, needs, xp): ...
        >>> rule_name(_concatenate_vjp)
        'CatBackward0'
    """
    stem = _rule_stem(rule)
    known = _TORCH_NODE_NAMES.get(stem)
    if known is not None:
        return known
    return "".join(part.capitalize() for part in stem.split("_")) + "Backward0"


def node_name(t: Tensor) -> str:
    """The name of ``t.grad_fn``: :func:`rule_name`, refined with what the op recorded where PyTorch
    names the variants apart (select, slice or index; mm, mv, dot or bmm; sum over all or some dims...).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, 3, requires_grad=True)
        >>> node_name(x[0]), node_name(x[:, 1:]), node_name(x.sum(1)), node_name(x.t())
        ('SelectBackward0', 'SliceBackward0', 'SumBackward1', 'TBackward0')
    """
    rule, saved, parents = t._vjp, t._saved, t._parents
    if getattr(rule, "__name__", "") == "_released_vjp":  # after backward the original rule is kept in _saved
        rule, saved = saved, None
    stem = _rule_stem(rule)
    if stem == "function" and isinstance(saved, tuple):  # a custom autograd.Function: PyTorch's "<Class>Backward"
        return f"{saved[0].__name__}Backward"
    if stem == "unpack" and parents and parents[0]._vjp is not None:  # one output of a multi-output Function
        return node_name(parents[0])
    if stem == "getitem" and isinstance(saved, tuple) and not saved[1]:
        index = saved[0] if isinstance(saved[0], tuple) else (saved[0],)
        return "SelectBackward0" if any(isinstance(i, (int, np.integer)) for i in index) else "SliceBackward0"
    if stem == "matmul" and len(parents) == 2:
        return _MATMUL_NAMES.get((parents[0].array.ndim, parents[1].array.ndim), "MatmulBackward0")
    if stem == "linear":
        return "AddmmBackward0" if len(parents) == 3 else "MmBackward0"
    if stem in ("sum", "mean"):
        return f"{stem.capitalize()}Backward{0 if t.array.ndim == 0 else 1}"
    if stem == "pow" and len(parents) == 2:  # x ** 2 (a constant 0-d exponent), x ** y, 2 ** x: PyTorch's 0, 1, 2
        base, exponent = parents
        if not base.requires_grad:
            return "PowBackward2"
        return "PowBackward0" if exponent.array.ndim == 0 and not exponent.requires_grad else "PowBackward1"
    if stem == "permute" and isinstance(saved, tuple) and len(saved) == 2:
        return "TBackward0"
    if stem == "permute" and isinstance(saved, tuple):
        moved = [i for i, a in enumerate(saved) if a != i]
        return "TransposeBackward0" if len(moved) == 2 else "PermuteBackward0"
    if stem in ("extreme", "full_extreme") and parents and isinstance(saved, tuple):
        return _extreme_name(t, parents[0], saved)
    return rule_name(rule)


def _extreme_name(t: Tensor, x: Tensor, saved: tuple[Any, ...]) -> str:
    """max / min (all elements) or amax / amin (some dims): one rule serves all four, so look at the values."""
    kept_shape, _keep, axes = saved
    arr = x.array
    from .devices import to_host  # only this refinement needs it: graph.py keeps its imports at the top minimal

    matches_max = (t.array.reshape(kept_shape) == arr.max(axis=axes, keepdims=True)).all()
    # name() reads the values once, to tell max from min (an explicit copy: a device refuses bool())
    is_max = arr.size == 0 or bool(to_host(matches_max))  # host: see above
    whole = t.array.ndim == 0
    if whole:
        return "MaxBackward1" if is_max else "MinBackward1"
    return "AmaxBackward0" if is_max else "AminBackward0"
