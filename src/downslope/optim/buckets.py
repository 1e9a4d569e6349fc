"""Flat buffers: the parameters of one group and one dtype copied into one contiguous array.

Each parameter's ``.data`` is re-pointed to a view of the buffer, so the model sees every update
without copies; a step gathers the gradients with one ``np.concatenate`` and runs the group's
transform over the whole buffer (or over the gathered subset of parameters that have a gradient).

The buffer lives on the parameters' device (it is made with their array namespace), and follows
them when the model moves (``model.to("cuda")`` after the optimizer was built). The per-parameter
step counts are host bookkeeping (a few integers), never read back from the device.
"""

from __future__ import annotations

import copy
import itertools
import sys
import weakref
from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import device_of, is_array, to_device, to_host
from ..errors import DeviceError, StateError
from ..tensor import Tensor
from .transforms import GradientTransformation, StepContext


def state_slots(state: Any) -> list[dict[str, np.ndarray]]:
    """The dicts of arrays inside a transform state (a chain's state is a tuple of them)."""
    if isinstance(state, dict):
        return [state]
    if isinstance(state, tuple):
        return [d for s in state for d in state_slots(s)]
    return []


def _gather_state(state: Any, idx: np.ndarray, size: int) -> Any:
    if isinstance(state, dict):
        return {k: (v[idx] if is_array(v) and v.shape == (size,) else v) for k, v in state.items()}
    if isinstance(state, tuple):
        return tuple(_gather_state(s, idx, size) for s in state)
    return state


def _scatter_state(full: Any, sub: Any, idx: np.ndarray, like: np.ndarray, made: list[str]) -> Any:
    """``full`` with the elements ``idx`` of ``sub`` written in; the keys of buffers made at this step
    (while only the elements ``idx`` had a gradient) are appended to ``made``."""
    if isinstance(full, dict) and isinstance(sub, dict):
        for k, v in sub.items():
            if is_array(v) and v.shape == idx.shape:
                target = full.get(k)
                if target is None:
                    target = np.zeros_like(like)
                    full[k] = target
                    made.append(k)
                target[idx] = v
            else:
                full[k] = v
        if "momentum_started" in full and "momentum_started" not in sub:  # an older state's flags: see trace
            full["momentum_started"][idx] = 1  # these elements' buffers are made, the others' still to come
        return full
    if isinstance(full, tuple) and isinstance(sub, tuple):
        return tuple(_scatter_state(f, s, idx, like, made) for f, s in zip(full, sub))
    return sub


def _map_arrays(state: Any, fn: Any) -> Any:
    """``state`` (dicts and tuples of arrays and scalars) with ``fn`` applied to every array."""
    if isinstance(state, dict):
        return {k: (fn(v) if is_array(v) else _map_arrays(v, fn)) for k, v in state.items()}
    if isinstance(state, tuple):
        return tuple(_map_arrays(s, fn) for s in state)
    return state


def _remember(flat: Any) -> None:
    try:
        _FLAT_BUFFERS[id(flat)] = flat
    except TypeError:  # an array type that takes no weak reference: its views are then counted as shared
        pass


def _on(like: Any, host: np.ndarray) -> Any:
    """The host array ``host`` on ``like``'s device (the per-element step counts of an uneven step)."""
    return host if type(like) is np.ndarray else to_device(host, device_of(like))


def _step_runs(steps: np.ndarray, sizes: list[int]) -> tuple[int | None, tuple[tuple[int, int, int], ...] | None]:
    """The step counts of parameters laid end to end (``steps``, host, one per parameter of ``sizes``
    elements) for a StepContext: ``(count, None)`` when every non-empty parameter has the same one, else
    ``(None, runs)`` with one ``(start, stop, count)`` per run of neighbours sharing a count. Empty
    parameters hold no element, so their counts are left out."""
    runs: list[list[int]] = []
    start = 0
    for t, n in zip(steps.tolist(), sizes):  # host: one count per parameter
        if n == 0:
            continue
        if runs and runs[-1][2] == int(t):
            runs[-1][1] = start + n
        else:
            runs.append([start, start + n, int(t)])
        start += n
    if len(runs) <= 1:
        return (runs[0][2] if runs else int(steps[0])), None
    return None, tuple((a, b, t) for a, b, t in runs)


def repoint_aliases(p: Tensor, old: Any, new: Any) -> None:
    """Point the live aliases of ``p`` (its ``.data``, ``detach()`` and views, taken before an optimizer
    moved it) from ``old`` to the same place in ``new``, so they keep following the parameter, as
    PyTorch's aliases share its storage. ``old`` and ``new`` are C-contiguous arrays of one shape
    and dtype, so an alias's byte offset and strides in one are its offset and strides in the other.
    Host arrays only (a model moved to a device after its aliases were taken gets new storage in
    PyTorch too)."""
    aliases = getattr(p, "__dict__", {}).get("_aliases")
    if not aliases or type(old) is not np.ndarray or type(new) is not np.ndarray or not old.flags.c_contiguous:
        return
    start = old.__array_interface__["data"][0]
    flat = new.reshape(-1)
    for alias in list(aliases):
        a = alias.array
        if a is old:
            alias.array = new
        elif type(a) is np.ndarray and a.size and a.dtype == old.dtype and np.may_share_memory(a, old):
            offset = (a.__array_interface__["data"][0] - start) // a.itemsize
            alias.array = np.lib.stride_tricks.as_strided(flat[offset:], shape=a.shape, strides=a.strides)


class FlatBucket:
    """Parameters of one group and one dtype, stored in one flat buffer, with their state."""

    #: whether ``opt.state`` has handed out views of the step counts: a user may then write them in
    #: place at any time, so each step compares them again instead of trusting ``uniform``
    watched: bool = False

    def __init__(self, params: list[Tensor], transform: GradientTransformation) -> None:
        self.params = params
        self.shapes = [p.array.shape for p in params]
        self.sizes = [int(p.array.size) for p in params]
        self.offsets = [0, *itertools.accumulate(self.sizes)]
        self.dtype = params[0].array.dtype
        where = {str(device_of(p.array)) for p in params}
        if len(where) > 1:
            raise DeviceError(
                f"optimizer: the parameters of a group live on different devices ({', '.join(sorted(where))}); "
                "move the whole model with model.to(device) first"
            )
        self.flat = namespace_of(params[0].array).empty(self.offsets[-1], self.dtype)
        _remember(self.flat)
        self.views: list[np.ndarray] = []
        for p, start, stop in zip(params, self.offsets[:-1], self.offsets[1:]):
            self.flat[start:stop] = p.array.reshape(-1)
            view = self.flat[start:stop].reshape(p.array.shape)
            repoint_aliases(p, p.array, view)
            p.array = view
            self.views.append(view)
        self.grad = np.empty_like(self.flat)
        self.state = transform.init(self.flat)
        # float32 as PyTorch's state["step"]: opt.state hands out views of them, so a user's in-place
        # write (state["step"].zero_()) is what the next step reads
        self.steps = np.zeros(len(params), np.float32)  # host: per-parameter step counts (bookkeeping)
        # host: whether each parameter has state (it took a step, was given state, or loaded some):
        # PyTorch shows a parameter in ``opt.state`` only then, and makes its buffers at that step
        self.started = np.zeros(len(params), bool)  # host: bookkeeping, as the step counts
        self.uniform = True  # every parameter has taken the same number of steps (the usual case)
        self.count = 0
        self.scratch: dict[Any, np.ndarray] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> FlatBucket:
        # A plain deep copy would copy the buffer and each parameter's view of it separately, leaving
        # the copied parameters outside the copied buffer: the copy's steps would update nothing
        # they read. The copy's parameters become views of the copy's buffer instead.
        new = FlatBucket.__new__(FlatBucket)
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            if name not in ("flat", "views", "params"):
                setattr(new, name, copy.deepcopy(value, memo))
        new.flat = self.flat.copy()
        _remember(new.flat)
        new.views = [
            new.flat[start:stop].reshape(shape)
            for start, stop, shape in zip(self.offsets, self.offsets[1:], self.shapes)
        ]
        new.params = copy.deepcopy(self.params, memo)
        for p, view in zip(new.params, new.views):
            if p.array.shape == view.shape and p.array.dtype == view.dtype and type(p.array) is type(view):
                view[...] = p.array  # the copied parameter's values (it may have been replaced since the last step)
                p.array = view
        return new

    # Python's pickle: the buffer travels without the parameters' values (they travel in the
    # parameters themselves, which a pickle of the model shares) and is made again from them on
    # load, the parameters re-pointed to its views as at construction. The state arrays travel as
    # they are. Deep copies keep ``__deepcopy__``; a shallow copy shares everything, as it did.
    _REMADE = ("flat", "views", "grad", "scratch")

    def __copy__(self) -> FlatBucket:
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._REMADE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.flat = namespace_of(self.params[0].array).zeros(self.offsets[-1], self.dtype)
        _remember(self.flat)
        self.views = []
        for p, start, stop, shape in zip(self.params, self.offsets, self.offsets[1:], self.shapes):
            view = self.flat[start:stop].reshape(shape)
            self.views.append(view)
            if p.array.shape == shape and p.array.dtype == self.dtype and type(p.array) is type(view):
                view[...] = p.array
                p.array = view
            # else: the parameter was replaced by one of another shape or dtype; the next step's sync() says so
        self.grad = np.empty_like(self.flat)
        self.scratch = {}

    def sync(self) -> None:
        """Copy back any parameter whose ``.data`` was replaced (not written in place) since the last step."""
        first = self.params[0].array
        if (
            first is not self.views[0]
            and type(first) is not type(self.flat)
            and device_of(first) != device_of(self.flat)
        ):
            self.move(first)  # the model moved to another device (model.to) after the optimizer was built
        for i, (p, view) in enumerate(zip(self.params, self.views)):
            if p.array is not view:
                new = p.array
                if new.dtype != view.dtype:
                    raise StateError(
                        f"optimizer: parameter {i} of a group changed dtype from {view.dtype} to {new.dtype} after the "
                        "optimizer was built; convert the model before building the optimizer"
                    )
                if new.shape != view.shape:
                    raise StateError(
                        f"optimizer: parameter {i} of a group changed shape from {tuple(view.shape)} to {tuple(new.shape)} after the "
                        "optimizer was built; build a new optimizer for the new parameters"
                    )
                view[...] = new
                p.array = view

    def move(self, like: Any) -> None:
        """Move the buffer, its state and its views to the device of the array ``like`` (the model moved)."""
        target = device_of(like)
        self.flat = to_device(self.flat, target)
        _remember(self.flat)
        self.grad = np.empty_like(self.flat)
        self.state = _map_arrays(self.state, lambda a: to_device(a, target))
        self.scratch = {}
        self.views = [
            self.flat[start:stop].reshape(shape)
            for start, stop, shape in zip(self.offsets, self.offsets[1:], self.shapes)
        ]

    def gather_grads(self) -> tuple[np.ndarray | None, list[int] | None]:
        """The flat gradient (all parameters, or only those with a gradient, listed in the second item)."""
        grads = []
        missing = False
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                missing = True
                continue
            if g.array.shape != self.shapes[i]:
                raise StateError(
                    f"optimizer: parameter {i} has shape {self.shapes[i]} but its .grad has shape {g.array.shape}"
                )
            grads.append(g.array.reshape(-1))
        if not missing:
            np.concatenate(grads, out=self.grad, casting="same_kind")
            return self.grad, None
        if not grads:
            return None, None
        present = [i for i, p in enumerate(self.params) if p.grad is not None]
        return np.concatenate(grads).astype(self.dtype, copy=False), present

    def element_index(self, present: list[int]) -> np.ndarray:
        # host: an index array, copied to the device by the indexing (only when some parameter has no gradient)
        return np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in present])  # host: see above

    def _first(self, present: list[int] | None) -> Any:
        """StepContext.first for the parameters stepped: a bool, or one per element when some start."""
        started = self.started if present is None else self.started[present]
        if started.all():
            return False
        if not started.any():
            return True
        sizes = self.sizes if present is None else [self.sizes[i] for i in present]
        return _on(self.flat, np.repeat(~started, sizes))

    def apply(
        self, transform: GradientTransformation, group: dict[str, Any], g: np.ndarray, present: list[int] | None
    ) -> None:
        first = self._first(present)
        if present is None:
            self.started[:] = True
            self.steps += 1
            if not self.uniform or self.watched:  # after a missed step or a user's write: are they even?
                self.uniform = bool((self.steps == self.steps[0]).all())  # host: steps are host integers
            step, runs = (int(self.steps[0]), None) if self.uniform else _step_runs(self.steps, self.sizes)
            ctx = StepContext(group, step, self.count, first, runs, self.flat, self.sizes)
            ctx.keep_scratch(self.scratch)
            updates, self.state = transform.update(g, self.state, self.flat, ctx)
            self.flat += updates
        else:
            idx = self.element_index(present)
            self.started[present] = True
            self.steps[present] += 1
            self.uniform = False
            sizes = [self.sizes[i] for i in present]
            step, runs = _step_runs(self.steps[present], sizes)
            ctx = StepContext(group, step, self.count, first, runs, self.flat, sizes)
            sub_params = self.flat[idx]
            sub_state = _gather_state(self.state, idx, self.flat.size)
            updates, sub_state = transform.update(g, sub_state, sub_params, ctx)
            self.flat[idx] = sub_params + updates
            made: list[str] = []
            self.state = _scatter_state(self.state, sub_state, idx, self.flat, made)
            if "momentum_buffer" in made:
                self._momentum_made_without(present)
        self.count += 1

    def _momentum_made_without(self, present: list[int]) -> None:
        """SGD's momentum buffer was made at a step where only the parameters ``present`` had a gradient
        (momentum switched on by a schedule, a frozen layer): in PyTorch the others have no buffer yet,
        and start theirs from their gradient at their next step, undampened. Such a parameter is marked
        as one without state (PyTorch keeps none for it: SGD keeps nothing but the buffer), so its next
        step is a first one for the buffer (StepContext.first), and the state holds PyTorch's keys only.
        A parameter that never stepped already is one; RMSprop keeps other state, and its undampened
        momentum started from zeros is its gradient anyway."""
        size = self.flat.shape
        kept = [k for slot in state_slots(self.state) for k, v in slot.items() if is_array(v) and v.shape == size]
        if kept == ["momentum_buffer"]:
            absent = np.ones(len(self.params), bool)  # host: bookkeeping, as the step counts
            absent[present] = False
            self.started[absent] = False


class InPlaceBucket(FlatBucket):
    """One parameter whose memory is shared (weight tying by ``.data``, a parameter that is a view of
    another, an array someone else holds): it is updated where it is, as PyTorch updates it.

    The bucket keeps a flat copy for the transform: at each step it reads the parameter's current
    values (an earlier parameter of the same storage may have just moved them), runs the transform
    and writes the result back into the parameter's own array, so every sharer sees it."""

    def __init__(self, params: list[Tensor], transform: GradientTransformation) -> None:
        p = params[0]
        self.params = params
        self.shapes = [p.array.shape]
        self.sizes = [int(p.array.size)]
        self.offsets = [0, self.sizes[0]]
        self.dtype = p.array.dtype
        self.flat = namespace_of(p.array).empty(self.sizes[0], self.dtype)
        self.views = [self.flat.reshape(p.array.shape)]
        self.views[0][...] = p.array
        self.grad = np.empty_like(self.flat)
        self.state = transform.init(self.flat)
        self.steps = np.zeros(1, np.float32)  # host: the step count (bookkeeping), see FlatBucket
        self.started = np.zeros(1, bool)  # host: see FlatBucket
        self.uniform = True
        self.count = 0
        self.scratch = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> InPlaceBucket:
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
        new.views = [new.flat.reshape(new.shapes[0])]
        return new

    def __setstate__(self, state: dict[str, Any]) -> None:
        # the parameter's memory stays its own: the buffer is the transform's copy of its values
        self.__dict__.update(state)
        p = self.params[0]
        self.flat = namespace_of(p.array).zeros(self.sizes[0], self.dtype)
        self.views = [self.flat.reshape(self.shapes[0])]
        if p.array.shape == self.shapes[0] and p.array.dtype == self.dtype:
            self.views[0][...] = p.array
        self.grad = np.empty_like(self.flat)
        self.scratch = {}

    def sync(self) -> None:
        """Check the parameter's array (it stays the caller's: nothing to copy back)."""
        new = self.params[0].array
        view = self.views[0]
        if type(new) is not type(view) or device_of(new) != device_of(view):
            self.move(new)
            view = self.views[0]
        if new.dtype != view.dtype or new.shape != view.shape:
            raise StateError(
                f"optimizer: a parameter changed from {view.dtype} {tuple(view.shape)} to {new.dtype} {tuple(new.shape)} after the "
                "optimizer was built; build a new optimizer for the new parameters"
            )

    def apply(
        self, transform: GradientTransformation, group: dict[str, Any], g: np.ndarray, present: list[int] | None
    ) -> None:
        p = self.params[0]
        self.views[0][...] = p.array
        super().apply(transform, group, g, present)
        p.array[...] = self.views[0]


class RepeatedBucket(InPlaceBucket):
    """A parameter listed ``repeats`` times in its group (tied weights collected twice): PyTorch warns
    and its loop over the group updates the parameter once per listing, each time from the same
    gradient and on the one state (step counts included), so the update is applied that many times."""

    def __init__(self, params: list[Tensor], transform: GradientTransformation, repeats: int) -> None:
        super().__init__(params, transform)
        self.repeats = repeats

    def apply(
        self, transform: GradientTransformation, group: dict[str, Any], g: np.ndarray, present: list[int] | None
    ) -> None:
        fresh = not self.started.any()
        for _ in range(self.repeats - 1):
            super().apply(transform, group, g.copy(), present)  # the transforms may scale g in place
            if fresh and self._keeps_only_momentum():
                # PyTorch's SGD makes its momentum buffer inside the step, from the gradient, for each
                # listing that found none when the step began: every repeat of a first step starts afresh
                self.started[:] = False
        super().apply(transform, group, g, present)

    def _keeps_only_momentum(self) -> bool:
        size = self.flat.shape
        kept = [k for slot in state_slots(self.state) for k, v in slot.items() if is_array(v) and v.shape == size]
        return kept == ["momentum_buffer"]


def shared_parameters(params: list[Tensor], fixed: int = 0) -> set[int]:
    """The ids of the parameters in ``params[fixed:]`` whose memory overlaps another parameter's, or
    something outside the optimizer (a view of it, or the array held elsewhere); the first ``fixed``
    are only compared against.

    A parameter that views another optimizer's flat buffer (a second optimizer over a model) shares
    with that optimizer only, which re-reads its parameters: it is not counted."""
    shared: set[int] = set()
    by_root: dict[int, list[tuple[int, Tensor]]] = {}
    for i, p in enumerate(params):
        # first, before any local name holds it: the parameter's own slot and getrefcount's argument
        refs = sys.getrefcount(p.array)
        a = p.array
        root: Any = a
        while getattr(root, "base", None) is not None:
            root = root.base
        by_root.setdefault(id(root), []).append((i, p))
        if i < fixed:
            continue
        if type(a) is not np.ndarray:  # a device array: a view of memory no optimizer moved is shared
            if getattr(a, "base", None) is not None and id(root) not in _FLAT_BUFFERS:
                shared.add(id(p))
            continue
        if a.base is None:
            # beyond those two, only its live aliases (moved along with it) may hold it
            aliases = getattr(p, "__dict__", {}).get("_aliases") or ()
            known = 2 + sum(1 for t in list(aliases) if t.array is a or getattr(t.array, "base", None) is a)
            if refs > known:
                shared.add(id(p))
        elif id(root) not in _FLAT_BUFFERS:
            shared.add(id(p))
    for members in by_root.values():
        if len(members) < 2:
            continue
        spans = []
        on_device: list[tuple[int, Tensor]] = []
        for i, p in members:
            a = p.array
            if type(a) is np.ndarray:
                lo, hi = _byte_bounds(a)
                spans.append((lo, hi, i, p))
                continue
            # a device array: its namespace's bounds check, against the others of its memory
            xp = namespace_of(a)
            for k, q in on_device:
                if (i >= fixed or k >= fixed) and xp.may_share_memory(a, q.array):
                    shared.update(id(x) for n, x in ((i, p), (k, q)) if n >= fixed)
            on_device.append((i, p))
        spans.sort(key=lambda t: (t[0], t[1]))
        reach, holder = -1, None
        for lo, hi, i, p in spans:
            if lo < reach and holder is not None:
                for k, q in ((i, p), holder):
                    if k >= fixed:
                        shared.add(id(q))
            if hi > reach:
                reach, holder = hi, (i, p)
    return shared


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # NumPy < 2
        byte_bounds = np.byte_bounds  # type: ignore[attr-defined]
    lo, hi = byte_bounds(a)
    return int(lo), int(hi)


# id -> flat buffer of every live FlatBucket: a parameter viewing one was moved there by an optimizer
_FLAT_BUFFERS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


# ---------------------------------------------------------------------- writing one parameter's state
# States PyTorch keeps as one number per parameter (ASGD's eta and mu, NAdam's mu_product): a
# 0-d value is accepted for them and fills the parameter's slice.
_PER_PARAMETER_NUMBERS = frozenset({"eta", "mu", "mu_product"})


def _slot_write(b: FlatBucket, slot: dict[str, Any], key: str, j: int, value: Any) -> None:
    """Write ``value`` (an array: the parameter's shape, or 0-d) as parameter ``j``'s part of ``slot[key]``."""
    arr = slot[key]
    start, stop = b.offsets[j], b.offsets[j + 1]
    if arr.shape == b.flat.shape:
        arr[start:stop] = value.reshape(-1) if value.ndim else value
        return
    if arr.ndim == 0:  # one number shared by the bucket's parameters
        if len(b.params) == 1:
            arr[...] = value
            return
        if bool(to_host((arr == value).all())):  # host: one number compared, on a rare state write
            return
        slot[key] = arr = np.zeros_like(b.flat, dtype=arr.dtype) + arr  # now they differ: one number per element
        arr[start:stop] = value.reshape(-1) if value.ndim else value
        return
    raise StateError(
        f"optimizer: state {key!r} of shape {tuple(arr.shape)} is not per-element; it can't be set per parameter"
    )


def reset_parameter_state(b: FlatBucket, j: int, transform: GradientTransformation) -> None:
    """Give parameter ``j`` of ``b`` the state of a parameter that never took a step (PyTorch's
    ``opt.state[p] = {}``): its slice of every state buffer as ``transform.init`` makes it (zeros
    for a buffer made at the first step, which its step count of 0 makes start afresh)."""
    b.steps[j] = 0
    b.started[j] = False
    b.uniform = False  # recomputed at the next step
    if not b.started.any():  # every parameter of the bucket is fresh: start the whole bucket afresh
        b.state = transform.init(b.flat)
        b.steps[:] = 0
        b.uniform, b.count = True, 0
        return
    start, stop = b.offsets[j], b.offsets[j + 1]
    fresh = state_slots(transform.init(b.flat[start:stop]))
    for si, slot in enumerate(state_slots(b.state)):
        made = fresh[si] if si < len(fresh) else {}
        for key in list(slot):
            value = made.get(key)
            if not is_array(slot[key]):
                if key in made and value != slot[key]:
                    raise StateError(
                        f"optimizer: state {key!r} is one value shared by a bucket of parameters; it can't be reset "
                        "for one parameter (clear the whole state instead)"
                    )
                continue
            if value is None:
                value = np.zeros_like(slot[key], shape=())  # a buffer made at the first step
            _slot_write(b, slot, key, j, value)


def floating_state_value(owner: str, key: Any, value: Any, dtype: Any) -> Any:
    """A state value assigned into ``opt.state[p]`` (a Tensor, array or array-like) as an array, which
    must be floating (``dtype`` is the parameter's, for the message)."""
    if isinstance(value, Tensor):
        value = value.detach().array
    elif not is_array(value):
        value = np.asarray(value)  # host: a user's value, copied into the state once
    if value.dtype.kind != "f":
        raise StateError(
            f"{owner}: state {key!r} must be a floating tensor (the parameter's dtype is {dtype}), got {value.dtype}"
        )
    return value


def write_parameter_state(b: FlatBucket, j: int, slot: dict[str, Any], key: str, value: Any) -> None:
    """Write ``value`` (a Tensor, array or array-like shaped as parameter ``j``) into its part of ``slot[key]``,
    creating the buffer (zeros) if this bucket has none yet; checks shape and dtype."""
    value = floating_state_value("optimizer", key, value, b.dtype)
    shape = b.shapes[j]
    if tuple(value.shape) != tuple(shape) and not (key in _PER_PARAMETER_NUMBERS and value.ndim == 0):
        raise StateError(
            f"optimizer: state {key!r} must have the parameter's shape {tuple(shape)}, got {tuple(value.shape)}"
        )
    value = to_device(value, device_of(b.flat)).astype(b.dtype, copy=False)
    if slot.get(key) is None:
        slot[key] = np.zeros_like(b.flat)
    _slot_write(b, slot, key, j, value)
