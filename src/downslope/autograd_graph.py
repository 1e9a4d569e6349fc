"""``torch.autograd.graph``: the graph's nodes as objects (``tensor.grad_fn``) and saved-tensor hooks.

A recorded op is its output tensor here (there is no node object per op: see ``tensor.py``), so the
node objects PyTorch code walks (``y.grad_fn.next_functions``, ``.name()``, ``.register_hook``) are
made when ``grad_fn`` is read, and kept in a weak cache so that ``y.grad_fn is y.grad_fn``, as in
PyTorch. Hooks and ``metadata`` live in a :class:`downslope.graph.NodeState` on the output tensor,
so they outlast the node object. Nothing here runs on the forward or backward path unless a hook is
registered or a :class:`saved_tensors_hooks` context is active.

What counts as saved (what ``pack_hook`` sees): the inputs whose values the op's rule reads to
compute its gradient (``reads_inputs``, e.g. both factors of ``a * b`` when both want a gradient)
and its output when the rule reads it (``exp``, ``tanh``, ``sigmoid``). The graph keeps its inputs
alive anyway, so the hooks change what backward computes with, not the memory held.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd import (
    RemovableHandle,
    _function_vjp,
    _reads_input,
    _reads_output,
    _released_vjp,
    _tensor_api,
    _unpack_vjp,
)
from .errors import ArgumentTypeError, StateError
from .graph import NodeState, _inplace_clock, _mode, node_name

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "Node",
    "SavedTensor",
    "allow_mutation_on_saved_tensors",
    "disable_saved_tensors_hooks",
    "increment_version",
    "register_multi_grad_hook",
    "save_on_cpu",
    "saved_tensors_hooks",
]

_hook_keys = itertools.count()


def _state(t: Tensor) -> NodeState:
    """The NodeState of the op that made ``t`` (of the leaf ``t``), made on first use."""
    state: NodeState | None = getattr(t, "_fn", None)
    if state is None or state.seq != t._seq:
        state = NodeState(t._seq)
        t._fn = state
    return state


def _add_hook(hooks: dict[int, Any], fn: Callable[..., Any], what: str) -> RemovableHandle:
    if not callable(fn):
        raise ArgumentTypeError(f"{what}: expected a callable hook, got {type(fn).__name__}")
    key = next(_hook_keys)
    hooks[key] = fn
    _inplace_clock.hooks += 1  # backward looks for node state only while some hook is registered
    return RemovableHandle(hooks, key)


class Node:
    """``torch.autograd.graph.Node``: what ``tensor.grad_fn`` is, one step of the backward graph.

    ``name()`` is PyTorch's name for the op's backward (``MulBackward0``); ``next_functions`` holds,
    per input, ``(node, 0)``: the input's own ``grad_fn``, an :class:`AccumulateGrad` for a leaf that
    requires grad, ``None`` for a constant. ``register_prehook(fn)``: ``fn(grad_outputs)`` runs before
    the op's gradient rule and may return replacement ``grad_outputs``; ``register_hook(fn)``:
    ``fn(grad_inputs, grad_outputs)`` runs after it and may return replacement ``grad_inputs``.

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.grad_fn.name(), y.grad_fn.next_functions[0][0].name()
        ('SumBackward0', 'MulBackward0')
        >>> isinstance(y.grad_fn, ds.autograd.graph.Node)
        True
    """

    __slots__ = ("__weakref__",)

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        raise NotImplementedError

    @property
    def metadata(self) -> dict[Any, Any]:
        raise NotImplementedError

    def register_hook(self, fn: Callable[..., Any]) -> RemovableHandle:
        raise NotImplementedError

    def register_prehook(self, fn: Callable[..., Any]) -> RemovableHandle:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"


def _edge(p: Tensor) -> tuple[Node | None, int]:
    if not p.requires_grad:
        return (None, 0)
    if p._vjp is None:
        return (accumulate_grad_of(p), 0)
    return (grad_fn_of(p), 0)


class _OpNode(Node):
    """The node of a recorded op (one subclass per name, so ``type(node).__name__`` is the name)."""

    __slots__ = ("_tensor", "_seq", "_inputs")

    def __init__(self, t: Tensor) -> None:
        self._tensor = t  # the op's output: it holds the rule, the inputs and what the rule saved
        self._seq = t._seq
        self._inputs = t._parents  # the edges outlast a backward pass that frees the node, as in PyTorch

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        t = self._tensor
        parents = t._parents if t._seq == self._seq and t._parents else self._inputs
        return tuple(_edge(p) for p in parents)

    @property
    def metadata(self) -> dict[Any, Any]:
        state = _state(self._tensor)
        if state.metadata is None:
            state.metadata = {}
        return state.metadata

    def register_hook(self, fn: Callable[..., Any]) -> RemovableHandle:
        return _add_hook(_state(self._tensor).hooks, fn, "register_hook")

    def register_prehook(self, fn: Callable[..., Any]) -> RemovableHandle:
        return _add_hook(_state(self._tensor).pre_hooks, fn, "register_prehook")

    def _saved_input(self, i: int, attr: str) -> Any:
        t = self._tensor
        rule = t._vjp
        if rule is _released_vjp:
            _released_vjp()
        reads = getattr(rule, "reads_inputs", True)
        if reads is False or i >= len(t._parents) or (isinstance(reads, tuple) and i not in reads):
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{attr}' (its rule reads no input {i})"
            )
        if not _reads_input(rule, i, t._needs):
            return None  # PyTorch's node has the attribute but saved nothing for this call
        return _unpacked(t, i, t._parents[i])

    @property
    def _saved_self(self) -> Any:
        return self._saved_input(0, "_saved_self")

    @property
    def _saved_other(self) -> Any:
        return self._saved_input(1, "_saved_other")

    @property
    def _saved_result(self) -> Any:
        t = self._tensor
        if t._vjp is _released_vjp:
            _released_vjp()
        if not _reads_output(t._vjp):
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '_saved_result' (its rule does not read its output)"
            )
        # a tensor of the output's values, not the output itself (PyTorch's is a new tensor too)
        return _unpacked(t, -1, _tensor_api()[1](t.array))

    @property
    def _saved_exponent(self) -> Any:
        """pow's exponent: the number for ``x ** 2.5`` (PowBackward0), the tensor otherwise."""
        t = self._tensor
        if not type(self).__name__.startswith("PowBackward"):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '_saved_exponent'")
        if t._vjp is _released_vjp:
            _released_vjp()
        if len(t._parents) < 2:  # square(): pow with the exponent 2
            return 2
        if type(self).__name__ == "PowBackward0":  # a number exponent: torch keeps the Python number
            saved = t._saved
            if type(saved) is int or type(saved) is float:
                return saved
            return _tensor_api()[0].item(t._parents[1])
        return _unpacked(t, 1, t._parents[1])

    @property
    def _raw_saved_self(self) -> SavedTensor:
        if self._tensor._vjp is not _released_vjp:  # (freed: its register_hooks raises, as torch's)
            self._saved_input(0, "_raw_saved_self")  # raises as _saved_self where nothing is saved
        return SavedTensor(self._tensor, 0)

    @property
    def _raw_saved_other(self) -> SavedTensor:
        if self._tensor._vjp is not _released_vjp:
            self._saved_input(1, "_raw_saved_other")
        return SavedTensor(self._tensor, 1)

    @property
    def _raw_saved_exponent(self) -> SavedTensor:
        if not type(self).__name__.startswith("PowBackward") or type(self).__name__ == "PowBackward0":
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '_raw_saved_exponent'")
        return SavedTensor(self._tensor, 1)

    @property
    def _raw_saved_result(self) -> SavedTensor:
        t = self._tensor
        if t._vjp is not _released_vjp and not _reads_output(t._vjp):
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '_raw_saved_result' (its rule does not read its output)"
            )
        return SavedTensor(t, -1)


class SavedTensor:
    """``torch._C._autograd.SavedTensor``: one value a node saved for its gradient (``grad_fn._raw_saved_self``).
    ``register_hooks(pack_hook, unpack_hook)`` packs it now and makes backward (and ``grad_fn._saved_*``)
    read ``unpack_hook(packed)`` instead, as a :class:`saved_tensors_hooks` context does for every value."""

    __slots__ = ("_tensor", "_seq", "_index")

    def __init__(self, t: Tensor, index: int) -> None:
        self._tensor = t  # the node's output, which holds its inputs and rule
        self._seq = t._seq
        self._index = index  # the input's position, or -1 for the output

    def _original(self) -> Any:
        t = self._tensor
        if t._vjp is _released_vjp or t._seq != self._seq:
            return None
        return t if self._index < 0 else t._parents[self._index]

    def unpack(self) -> Any:
        """The saved value as backward reads it (through the unpack hook, if any)."""
        original = self._original()
        if original is None:
            _released_vjp()
        return _unpacked(self._tensor, self._index, original)

    def register_hooks(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]) -> None:
        if not callable(pack_hook) or not callable(unpack_hook):
            raise ArgumentTypeError(  # torch: a TypeError from its argument parsing
                f"register_hooks(): expected two callables (pack_hook, unpack_hook), got "
                f"{type(pack_hook).__name__} and {type(unpack_hook).__name__}"
            )
        original = self._original()
        if original is None:
            raise StateError(
                "Calling register_hooks on a saved tensor after it has been freed. Saved intermediate values of "
                "the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if "
                "you need to backward through the graph a second time or if you need to access saved variables "
                "after calling backward."
            )
        t = self._tensor
        state = _state(t)
        if any(index == self._index for index, _, _ in state.packed or ()):
            raise StateError(
                "Calling register_hooks on a saved tensor whose hooks have already been set. Hint: only one pair "
                "of hooks is allowed at a time."
            )
        entry = (self._index, unpack_hook, pack_hook(original))
        if state.packed:
            state.packed.append(entry)
        else:
            state.packed = [entry]
            _inplace_clock.hooks += 1  # backward looks up the state; undone when backward frees the node


class _FunctionNode(_OpNode):
    """The node of a custom autograd.Function: in torch it is the ctx itself, so what forward set on
    ctx (``y.grad_fn.k``), ``saved_tensors`` and ``needs_input_grad`` read through it; Node's own
    names (name(), next_functions, register_hook, metadata...) come first."""

    __slots__ = ()

    def __getattr__(self, attr: str) -> Any:
        # only names Node does not define reach here; its slots are set in __init__
        ctx = _function_ctx(self._tensor) if not attr.startswith("__") and attr not in _OpNode.__slots__ else None
        if ctx is not None:
            try:
                return getattr(ctx, attr)
            except AttributeError:
                pass
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}' (nor has its Function's ctx)")


def _function_ctx(t: Tensor) -> Any:
    """The ctx of the custom Function that made ``t`` (its one output, or one of several), else None."""
    rule = t._vjp
    if rule is _unpack_vjp and t._parents:
        t = t._parents[0]
        rule = t._vjp
    return t._saved[1] if rule is _function_vjp else None


def _unpacked(t: Tensor, i: int, default: Any) -> Any:
    """What backward reads for saved value ``i`` (-1: the output): the unpack hook's result if a
    saved_tensors_hooks context packed it."""
    state = getattr(t, "_fn", None)
    if state is not None and state.seq == t._seq and state.packed:
        for index, unpack, value in state.packed:
            if index == i:
                return unpack(value)
    return default


_node_classes: dict[tuple[str, type[_OpNode]], type[_OpNode]] = {}
_op_nodes: weakref.WeakValueDictionary[int, _OpNode] = weakref.WeakValueDictionary()


def grad_fn_of(t: Tensor) -> _OpNode | None:
    """``t.grad_fn``: the node of the op that made ``t`` (None for a leaf and for a tensor made
    without recording), the same object while it is alive.

    Example:
        >>> import downslope as ds
        >>> y = ds.ones(2, requires_grad=True).exp()
        >>> grad_fn_of(y) is y.grad_fn, repr(y.grad_fn).startswith("<ExpBackward0 object at 0x")
        (True, True)
    """
    if t._vjp is None:
        return None
    node = _op_nodes.get(id(t))
    if node is not None and node._tensor is t and node._seq == t._seq:
        return node
    name = node_name(t)
    base = _FunctionNode if _function_ctx(t) is not None else _OpNode
    cls = _node_classes.get((name, base))
    if cls is None:
        cls = _node_classes[name, base] = type(name, (base,), {"__slots__": (), "__module__": __name__})
    node = cls(t)
    _op_nodes[id(t)] = node
    return node


class AccumulateGrad(Node):
    """The node that adds a leaf's gradient into its ``.grad`` (``variable`` is the leaf); it appears
    in ``next_functions`` where an op used a leaf that requires grad. ``register_prehook(fn)`` runs
    ``fn((grad,))`` before the gradient is added (it may return a replacement); ``register_hook(fn)``
    runs ``fn((), (grad,))`` after.

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, requires_grad=True)
        >>> acc = (x * 2).grad_fn.next_functions[0][0]
        >>> acc.name(), acc.variable is x
        ('torch::autograd::AccumulateGrad', True)
    """

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"  # PyTorch's (C++) name, which code compares against

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        return ()

    @property
    def metadata(self) -> dict[Any, Any]:
        state = _state(self.variable)
        if state.metadata is None:
            state.metadata = {}
        return state.metadata

    def register_hook(self, fn: Callable[..., Any]) -> RemovableHandle:
        return _add_hook(_state(self.variable).hooks, fn, "register_hook")

    def register_prehook(self, fn: Callable[..., Any]) -> RemovableHandle:
        return _add_hook(_state(self.variable).pre_hooks, fn, "register_prehook")


_accumulators: weakref.WeakValueDictionary[int, AccumulateGrad] = weakref.WeakValueDictionary()


def accumulate_grad_of(leaf: Tensor) -> AccumulateGrad:
    """The :class:`AccumulateGrad` node of a leaf that requires grad (one per leaf while it is alive)."""
    node = _accumulators.get(id(leaf))
    if node is None or node.variable is not leaf:
        node = _accumulators[id(leaf)] = AccumulateGrad(leaf)
    return node


# ---------------------------------------------------------------------- saved tensors hooks
_disabled: list[str] = []  # messages of the active disable_saved_tensors_hooks contexts, innermost last


def pack_saved(t: Tensor) -> None:
    """Run the active pack hook on what the op that made ``t`` saved (record_op calls this only while
    a :class:`saved_tensors_hooks` context is active)."""
    pack, unpack = _mode.saved_hooks[-1]
    rule, needs = t._vjp, t._needs
    packed: list[tuple[int, Callable[[Any], Any], Any]] = []
    previous = _mode.saved_hooks
    _mode.saved_hooks = []  # ops inside a hook are not themselves packed (PyTorch disables them too)
    try:
        for i, p in enumerate(t._parents):
            if _reads_input(rule, i, needs):
                packed.append((i, unpack, pack(p)))
        if _reads_output(rule):
            packed.append((-1, unpack, pack(t)))
    finally:
        _mode.saved_hooks = previous
    if packed:
        state = _state(t)
        state.packed = packed
        _inplace_clock.hooks += 1  # backward looks up the state; undone when backward frees the node


class saved_tensors_hooks:  # noqa: N801  (torch's name)
    """``torch.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook)``: while active, each value
    an op saves for its gradient is passed to ``pack_hook(tensor)`` and what it returns is kept;
    backward calls ``unpack_hook(packed)`` each time it reads the value and computes with the tensor
    it returns (which must have the saved tensor's shape).

    Example:
        >>> import downslope as ds
        >>> a = ds.ones(3, requires_grad=True)
        >>> seen = []
        >>> with ds.autograd.graph.saved_tensors_hooks(lambda t: seen.append("pack") or t, lambda t: t):
        ...     y = a * a
        >>> seen
        ['pack', 'pack']
    """

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]) -> None:
        if not callable(pack_hook) or not callable(unpack_hook):
            raise ArgumentTypeError(
                f"saved_tensors_hooks: expected two callables (pack_hook, unpack_hook), got "
                f"{type(pack_hook).__name__} and {type(unpack_hook).__name__}"
            )
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self) -> saved_tensors_hooks:
        if _disabled:
            raise StateError(_disabled[-1])
        _mode.saved_hooks = [*_mode.saved_hooks, (self.pack_hook, self.unpack_hook)]
        return self

    def __exit__(self, *exc: object) -> None:
        _mode.saved_hooks = _mode.saved_hooks[:-1]


class save_on_cpu(saved_tensors_hooks):  # noqa: N801  (torch's name)
    """``torch.autograd.graph.save_on_cpu(pin_memory=False, device_type="cuda")``: saved values are
    moved to host memory and back to their device when backward reads them (on the CPU they stay
    where they are; ``pin_memory`` is accepted and has no effect here).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, requires_grad=True)
        >>> with ds.autograd.graph.save_on_cpu():
        ...     y = (x * x).sum()
        >>> y.backward(); x.grad
        tensor([2., 2.])
    """

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(t: Tensor) -> tuple[Any, Tensor]:
            return (t.device, t.detach().cpu())

        def unpack(packed: tuple[Any, Tensor]) -> Tensor:
            device, host = packed
            return host.to(device)

        super().__init__(pack, unpack)


class allow_mutation_on_saved_tensors(saved_tensors_hooks):  # noqa: N801  (torch's name)
    """``torch.autograd.graph.allow_mutation_on_saved_tensors()``: inside it, a tensor saved for backward
    may be modified in place afterwards; backward still uses the value it saved (without the context that
    raises "modified by an inplace operation"). Here every value saved inside is copied when it is saved
    (torch copies it only when it is modified: the gradients are the same, the memory is not).

    Example:
        >>> import downslope as ds
        >>> with ds.autograd.graph.allow_mutation_on_saved_tensors():
        ...     x = ds.tensor([1.0, 2.0], requires_grad=True)
        ...     y = x.clone()
        ...     z = y * y
        ...     _ = y.add_(1)
        ...     z.sum().backward()
        >>> x.grad
        tensor([2., 4.])
    """

    def __init__(self) -> None:
        def pack(t: Tensor) -> Tensor:
            if isinstance(t.array, np.generic):  # host: an immutable NumPy scalar (a constant operand) is shared
                return _tensor_api()[1](t.array)
            return t.detach().clone()

        def unpack(saved: Tensor) -> Tensor:
            return saved

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801  (torch's name)
    """``torch.autograd.graph.disable_saved_tensors_hooks(error_message)``: while active, entering a
    :class:`saved_tensors_hooks` context raises ``error_message`` (as does entering this one while
    such hooks are active).

    Example:
        >>> import downslope as ds
        >>> g = ds.autograd.graph
        >>> with g.disable_saved_tensors_hooks("no hooks here"):
        ...     with g.saved_tensors_hooks(lambda t: t, lambda t: t):
        ...         pass
        Traceback (most recent call last):
        downslope.errors.StateError: no hooks here
    """

    def __init__(self, error_message: str) -> None:
        self.error_message = str(error_message)

    def __enter__(self) -> None:
        if _mode.saved_hooks:
            raise StateError(self.error_message)
        _disabled.append(self.error_message)

    def __exit__(self, *exc: object) -> None:
        _disabled.pop()


# ---------------------------------------------------------------------- multi-tensor hooks
class _MultiHandle:
    def __init__(self, handles: list[RemovableHandle]) -> None:
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def register_multi_grad_hook(tensors: Sequence[Tensor], fn: Callable[..., Any], *, mode: str = "all") -> _MultiHandle:
    """``torch.autograd.graph.register_multi_grad_hook(tensors, fn, mode="all")``: with ``mode="all"``,
    ``fn(grads)`` runs once per backward pass that reaches any of ``tensors``, after their gradients
    are computed, with one entry per tensor (None for a tensor the pass did not reach); with
    ``mode="any"``, ``fn(grad)`` runs on the first gradient computed for any of them.

    Example:
        >>> import downslope as ds
        >>> a, b, c = (ds.ones(2, requires_grad=True) for _ in range(3))
        >>> seen = []
        >>> h = ds.autograd.graph.register_multi_grad_hook((a, b, c), seen.append)
        >>> (a * b).sum().backward()
        >>> [None if g is None else g.tolist() for g in seen[0]]
        [[1.0, 1.0], [1.0, 1.0], None]
    """
    from . import autograd

    if mode not in ("all", "any"):
        raise ArgumentTypeError(f"register_multi_grad_hook: expected mode 'all' or 'any', got {mode!r}")
    tensors = tuple(tensors)
    if not tensors or not all(getattr(t, "requires_grad", False) for t in tensors):
        raise StateError("register_multi_grad_hook: expected a sequence of tensors that all require grad")
    last = [0]  # the backward pass (autograd's pass number) that last called fn or collected a gradient
    grads: list[Any] = [None] * len(tensors)

    def finish() -> None:
        collected = list(grads)
        grads[:] = [None] * len(tensors)
        fn(collected)

    def hook_for(i: int) -> Callable[[Any], None]:
        def hook(g: Any) -> None:
            number = autograd._pass_number[0]
            if mode == "any":
                if last[0] != number:
                    last[0] = number
                    fn(g)
                return
            if last[0] != number:
                last[0] = number
                grads[:] = [None] * len(tensors)
                autograd._pass_end.append(finish)
            grads[i] = g

        return hook

    return _MultiHandle([t.register_hook(hook_for(i)) for i, t in enumerate(tensors)])


def increment_version(tensor: Tensor | Sequence[Tensor]) -> None:
    """Count an in-place write that downslope did not see (a kernel writing into the tensor's memory
    through ``data_ptr`` or a NumPy view): graphs that saved the old values then refuse them at
    backward, as after any recorded in-place op (PyTorch's ``torch.autograd.graph.increment_version``).

    Example:
        >>> import downslope as ds
        >>> x = ds.ones(2, requires_grad=True)
        >>> y = x * 1
        >>> z = (y * y).sum()
        >>> y.detach().numpy()[:] = 5  # a write the graph cannot see
        >>> ds.autograd.graph.increment_version(y)
        >>> z.backward()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        downslope.errors.StateError: one of the variables needed for gradient computation has been modified by an inplace operation...
    """
    from .tensor import Tensor, mark_written

    mark_written([tensor] if isinstance(tensor, Tensor) else list(tensor))
