"""The base of the optimizers whose rule needs each parameter's own shape: Adafactor (moments
factored over a matrix's rows and columns), Muon (a matrix orthogonalised as a whole) and
SparseAdam (rows updated lazily).

These keep no flat buffers (``buckets.py``): each parameter with a gradient is updated in place by
the subclass's ``_update(group, param, grad, state)``, and its state is a dict of arrays shaped as
PyTorch shapes them (``row_var`` of shape ``(..., m, 1)``, for instance), so ``state_dict()`` has
PyTorch's keys and layout and a PyTorch optimizer's saved state loads. Everything else (param
groups, ``add_param_group``, ``zero_grad``, lr given as a tensor, the clipping options) is the
:class:`~downslope.optim.Optimizer` base's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import enable_grad, no_grad
from ..backend import namespace_of
from ..devices import device_of, is_array, to_device, to_host
from ..errors import ArgumentError, ShapeError, StateError
from ..tensor import Tensor, mark_written, wrap_array
from . import transforms as T
from .buckets import FlatBucket, floating_state_value
from .optimizer import (
    _OTHER_OPTIMIZERS_STATE,
    Optimizer,
    OptimizerOptions,
    _cast_state,
    _clone_state,
    _count,
    _host_value,
    _jsonable,
    _restore_like,
    _set_count,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


def torch_lerp(start: Any, end: Any, weight: float) -> Any:
    """``start + weight * (end - start)`` rounded as PyTorch's ``lerp`` rounds it: PyTorch uses
    ``end - (end - start) * (1 - weight)`` once ``weight >= 0.5``, with the weight in the arrays'
    dtype, and a run that is to follow PyTorch's step for step must round the same way.

    Example:
        >>> import numpy as np
        >>> torch_lerp(np.zeros(2, np.float32), np.array([1.0, 2.0], np.float32), 0.25)
        array([0.25, 0.5 ], dtype=float32)
    """
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (1 - w)


def rms(x: Any) -> float:
    """The root mean square of the array ``x`` as a Python float (read to the host: the step
    branches on it, as PyTorch's Adafactor does with ``.item()``).

    Example:
        >>> import numpy as np
        >>> rms(np.array([3.0, 4.0, 0.0, 0.0]))
        2.5
    """
    xp = namespace_of(x)
    total = to_host(xp.sum(x * x))  # host: one number per parameter, read as PyTorch reads it
    return float(np.sqrt(total)) / float(np.sqrt(x.size))  # host: see above


def _one_state_each(params: list[Tensor], states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``states`` with every listing of a parameter holding its first listing's dict: a parameter
    listed twice in a group (PyTorch warns) has one state, updated once per listing, as in PyTorch."""
    first: dict[int, dict[str, Any]] = {}
    return [first.setdefault(id(p), s) for p, s in zip(params, states)]


class PerParameterOptimizer(Optimizer):
    """Base class of optimizers updating each parameter in place with a rule of its shape.

    A subclass gives ``_update(group, param, grad, state)`` (``param`` is the parameter's array, to
    update in place; ``grad`` its gradient, in the parameter's dtype, not to be written into;
    ``state`` the parameter's dict, empty before its first step) and ``_state_shapes(param)``
    (the keys of a full state and their shapes, ``None`` for a number) so that a saved state is
    checked as it loads.

    Example:
        >>> import downslope as ds
        >>> w = ds.ones(2, 3, requires_grad=True)
        >>> opt = ds.optim.Adafactor([w])
        >>> (w * w).sum().backward(); opt.step()
        >>> sorted(opt.state_dict()["state"][0])
        ['col_var', 'row_var', 'step']
    """

    # PyTorch keeps Adafactor's step count as a float32 0-d tensor and SparseAdam's as an int
    _step_as_tensor = False
    #: every state key a parameter of some shape keeps (``opt.state[p][key] = v`` sets the state)
    _own_keys: frozenset[str] = frozenset()

    def __init__(self, params: Any, defaults: dict[str, Any], **options: Unpack[OptimizerOptions]) -> None:
        self._per_param: list[list[dict[str, Any]]] = []  # per group, per parameter: its state
        super().__init__(params, defaults, transform=T.identity(), **options)

    # -------------------------------------------------------------- for subclasses
    def _update(self, group: dict[str, Any], param: Any, grad: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _state_shapes(self, param: Any) -> dict[str, tuple[int, ...] | None]:
        raise NotImplementedError

    def _fill_state(self, param: Any, state: dict[str, Any]) -> None:
        """Make the state a parameter lacks (all of it at its first step; what a user's partial state
        left out): step counts 0, buffers zeros, as PyTorch makes them."""
        shapes = self._state_shapes(param)
        if len(state) == len(shapes):
            return
        xp = namespace_of(param)
        for key, shape in shapes.items():
            if key not in state:
                state[key] = 0 if shape is None else xp.zeros(shape, param.dtype)

    # -------------------------------------------------------------- groups and stepping
    def _make_buckets(self, params: list[Tensor], shared: set[int]) -> list[FlatBucket]:
        return []  # the parameters stay where they are: each is updated in place

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        params = self.param_groups[-1]["params"]
        self._per_param.append(_one_state_each(params, [{} for _ in params]))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if a closure is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = []
        for group, states in zip(self.param_groups, self._per_param):
            for i, (p, state) in enumerate(zip(group["params"], states)):
                if p.grad is None:
                    continue
                g = p.grad.array
                if g.shape != p.array.shape:
                    raise StateError(
                        f"{type(self).__name__}: parameter {i} has shape {p.array.shape} but its .grad has shape "
                        f"{tuple(g.shape)}"
                    )
                work.append((group, p, g, state))
        if work and (self.clip_value is not None or self.clip_norm is not None or self.error_if_nonfinite):
            grads = [g.astype(p.array.dtype, copy=True) for _, p, g, _ in work]  # clipping must not touch .grad
            self._clip(grads)
            work = [(group, p, g, state) for (group, p, _, state), g in zip(work, grads)]
        with no_grad():
            for group, p, g, state in work:
                self._fill_state(p.array, state)
                held: Any = state.get("step")
                if not is_array(held):
                    self._update(group, p.array, g.astype(p.array.dtype, copy=False), state)
                    continue
                # opt.state handed out the count as a 0-d array (see _entry_view): the update reads the
                # number it holds, a user's write included, and its new count goes back into it
                state["step"] = float(to_host(held))  # host: a step count the optimizer keeps on the host
                try:
                    self._update(group, p.array, g.astype(p.array.dtype, copy=False), state)
                finally:
                    held[...] = state["step"]
                    state["step"] = held
        # in-place writes, as PyTorch's p.add_(...): a graph that saved the old values refuses them
        mark_written([p for _, p, _, _ in work])
        return loss

    # -------------------------------------------------------------- state
    # ``opt.state`` is the base class's view (``_OptimizerState`` of ``_ParamState`` entries), reached
    # through the hooks below: each parameter stands as a one-parameter "bucket" (a ``_Slot``) whose
    # state is its dict in ``_per_param``. So assignments reach the state the next step uses, and any
    # other key is stored beside it (``_user_state``), saved and loaded, as in the other optimizers.
    @property
    def state(self) -> Any:
        """Each parameter's state, as ``torch.optim.Optimizer.state``: a parameter appears once it has
        state. Arrays show as Tensors sharing the optimizer's own (writing into one changes the next
        step), the step count as PyTorch keeps it. ``opt.state[p][key] = value`` sets the optimizer's
        own key (shape and dtype checked) or stores any other key (saved by :meth:`state_dict`);
        ``opt.state[p] = {}``, ``del opt.state[p]``, ``opt.state.clear()`` or
        ``opt.state = defaultdict(dict)`` start the parameter(s) afresh.

        Example:
            >>> import downslope as ds
            >>> w = ds.ones(2, 3, requires_grad=True)
            >>> opt = ds.optim.Adafactor([w])
            >>> (w * w).sum().backward(); opt.step()
            >>> opt.state[w]["row_var"] = ds.zeros(2, 1); opt.state[w]["note"] = "kept"
            >>> opt.state[w]["row_var"].tolist(), opt.state_dict()["state"][0]["note"]
            ([[0.0], [0.0]], 'kept')
        """
        return Optimizer.state.fget(self)  # type: ignore[attr-defined]

    @state.setter
    def state(self, value: Any) -> None:
        if "_per_param" in self.__dict__ and isinstance(value, Mapping):
            for key in value:
                self._where(key)  # refused before anything changes
            self._per_param = [_one_state_each(g["params"], [{} for _ in g["params"]]) for g in self.param_groups]
        Optimizer.state.fset(self, value)  # type: ignore[attr-defined]

    def _rebuild_groups(self) -> None:
        # the states follow their parameters (PyTorch keys state by parameter): read by the groups'
        # parameters as they were when the states were last placed
        before: dict[int, dict[str, Any]] = {}
        for (_, listed), states in zip(self.__dict__.get("_held", ()), self._per_param):
            for p, state in zip(listed, states):
                before.setdefault(id(p), state)
        super()._rebuild_groups()
        self._per_param = [
            _one_state_each(g["params"], [before.get(id(p), {}) for p in g["params"]]) for g in self.param_groups
        ]

    def _positions(self) -> list[tuple[int, Any, int]]:
        if "_per_param" not in self.__dict__:
            return []
        if self._groups_edited():
            self._rebuild_groups()
        return [
            (gi, _Slot(self, gi, j, p), 0) for gi, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])
        ]

    def _entry_view(self, gi: int, b: Any, j: int, names: dict[str, tuple[int, str]]) -> dict[str, Any]:
        state = self._per_param[gi][b.j]
        if self._step_as_tensor and "step" in state and not is_array(state["step"]):
            # PyTorch's count is a live float32 tensor: handed out as the array the next step reads
            state["step"] = np.array(state["step"], np.float32)  # host: a count kept on the host
        return {k: self._as_torch_value(k, v, copy=False) for k, v in state.items()}

    def _builtin_key(self, gi: int, key: Any) -> bool:
        return isinstance(key, str) and key in self._own_keys

    def _set_state_entry(self, gi: int, b: Any, j: int, key: Any, value: Any) -> None:
        """``opt.state[p][key] = value`` for a key of the optimizer's own: the step count, or an array
        of the shape this parameter's state has, copied in the parameter's dtype and device."""
        name = type(self).__name__
        param = b.params[0].array
        shapes = self._state_shapes(param)
        if key not in shapes:
            raise StateError(
                f"{name}: a parameter of shape {tuple(param.shape)} keeps no state {key!r}; its state is {sorted(shapes)}"
            )
        state = self._per_param[gi][b.j]
        shape = shapes[key]
        if shape is None:
            state[key] = _set_count(name, key, value)
            return
        value = floating_state_value(name, key, value, param.dtype)
        if tuple(value.shape) != shape:
            raise StateError(f"{name}: state {key!r} must have shape {shape}, got {tuple(value.shape)}")
        state[key] = to_device(value, device_of(param)).astype(param.dtype, copy=True)

    def _reset_state(self, b: Any, j: int) -> None:
        self._per_param[b.gi][b.j] = {}

    def _as_torch_value(self, key: str, value: Any, copy: bool) -> Any:
        """A state value as PyTorch holds it: arrays as Tensors (host copies when ``copy``), the step
        count as a float32 0-d Tensor where PyTorch's optimizer keeps it so, else the number."""
        if is_array(value):
            return wrap_array(to_host(value).copy() if copy else value)
        if key == "step" and self._step_as_tensor:
            return wrap_array(np.array(value, dtype=np.float32))  # host: a count the optimizer keeps on the host
        return value

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's two keys (``state`` by parameter position, with Tensors holding host copies in
        PyTorch's shapes and the step count as PyTorch keeps it; ``param_groups`` with ``params`` as
        positions), plus ``optimizer`` and ``options``."""
        state: dict[int, dict[str, Any]] = {}
        groups = []
        pos = 0
        for group, states in zip(self.param_groups, self._per_param):
            for p, s in zip(group["params"], states):
                extra = self._user_state.get(p)
                if s or extra is not None:
                    state[pos] = {k: self._as_torch_value(k, v, copy=True) for k, v in s.items()}
                if extra is not None:  # a user's keys, beside the optimizer's own
                    state[pos].update({k: _clone_state(v) for k, v in extra.items()})
                pos += 1
            saved = {k: _jsonable(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(pos - len(states), pos))
            groups.append(saved)
        return {
            "state": state,
            "param_groups": groups,
            "optimizer": type(self).__name__,
            "options": {
                "clip_norm": self.clip_norm,
                "clip_value": self.clip_value,
                "error_if_nonfinite": self.error_if_nonfinite,
            },
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (or by PyTorch's optimizer of the same name, its
        tensors given as arrays) into an optimizer built over the same parameters in the same order."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ArgumentError(
                f"{name}.load_state_dict: expected a dict from state_dict() with 'state' and 'param_groups'"
            )
        saved_groups = self._check_saved_groups(state_dict, name)
        positions = [(gi, j, p) for gi, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])]
        fresh: list[list[dict[str, Any]]] = [[{} for _ in g["params"]] for g in self.param_groups]
        user_state: dict[Tensor, dict[Any, Any]] = {}
        for key, entry in state_dict["state"].items():
            pos = int(key)
            if not 0 <= pos < len(positions) or not isinstance(entry, Mapping):
                raise ArgumentError(
                    f"{name}.load_state_dict: saved state entry {key!r} is not a dict for one of the "
                    f"{len(positions)} parameters"
                )
            gi, j, p = positions[pos]
            shapes = self._state_shapes(p.array)
            fresh[gi][j] = self._load_entry(pos, p.array, dict(entry))
            rest = {k: v for k, v in entry.items() if k not in shapes}
            if rest or not fresh[gi][j]:
                user_state[p] = {k: _cast_state(p, v, k) for k, v in rest.items()}
        # checked in full before anything changes
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = _restore_like(v, group.get(k), k)
        options = state_dict.get("options", {})
        self.clip_norm = options.get("clip_norm", self.clip_norm)
        self.clip_value = options.get("clip_value", self.clip_value)
        self.error_if_nonfinite = options.get("error_if_nonfinite", self.error_if_nonfinite)
        self._per_param = [_one_state_each(g["params"], states) for g, states in zip(self.param_groups, fresh)]
        self._user_state = user_state

    def _load_entry(self, pos: int, param: Any, entry: dict[str, Any]) -> dict[str, Any]:
        """One parameter's saved state, checked against the keys and shapes this optimizer keeps,
        as arrays on the parameter's device in its dtype (copies: the saved dict stays apart)."""
        name = type(self).__name__
        shapes = self._state_shapes(param)
        foreign = sorted(k for k in set(entry) - set(shapes) if k in _OTHER_OPTIMIZERS_STATE)
        if foreign:  # a user's key is stored; another optimizer's buffers (or another shape's) mean a mix-up
            raise ArgumentError(
                f"{name}.load_state_dict: parameter {pos} (shape {tuple(param.shape)}) keeps state {sorted(shapes)}, "
                f"the saved entry has {sorted(entry)}; was it saved by a different optimizer or for another model?"
            )
        out: dict[str, Any] = {}
        for k, shape in shapes.items():
            if k not in entry:
                continue  # made afresh at the next step (a state given in part)
            v = _host_value(entry[k])
            if shape is None:  # a count (PyTorch saves Adafactor's as a float tensor)
                out[k] = _count(v)
                continue
            arr = to_host(v) if is_array(v) else np.asarray(v)  # host: saved arrays are host data
            if arr.shape != shape:
                raise ShapeError(
                    f"{name}.load_state_dict: state {k!r} of parameter {pos} has shape {tuple(arr.shape)}, expected {shape}"
                )
            out[k] = to_device(arr.astype(param.dtype, copy=True), device_of(param))
        return out


class _Slot:
    """Parameter ``j`` of group ``gi`` as the base class's state view sees a bucket: one parameter,
    "started" while its state dict is not empty."""

    __slots__ = ("opt", "gi", "j", "params")

    def __init__(self, opt: PerParameterOptimizer, gi: int, j: int, param: Tensor) -> None:
        self.opt, self.gi, self.j, self.params = opt, gi, j, [param]

    @property
    def started(self) -> tuple[bool]:
        return (bool(self.opt._per_param[self.gi][self.j]),)
