"""The plumbing every transform shares: StepContext, from_group/hyper, GradientTransformation,
chain, identity and update_once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ...devices import device_of, to_device, to_host
from ...errors import ArgumentTypeError, StateDictError

State = Any  # a dict of flat arrays, or a tuple of those for a chain
Schedule = Callable[[int], float]


# ---------------------------------------------------------------------- plumbing
class StepContext:
    """What a transform may read besides gradients, state and parameters.

    Attributes:
        group: the param group's hyperparameters (``{'lr': ..., 'betas': ...}``).
        step: the step count of each parameter after this update (1 on the first update). An
            ``int`` when every parameter being updated has taken the same number of steps (the
            usual case); otherwise a float64 array with one entry per element of ``grads``
            (made on first use from ``segments``: :func:`per_step` avoids it).
        segments: ``None`` when ``step`` is one count (or a caller's per-element array); otherwise
            ``(start, stop, count)`` runs over the elements of ``grads``, one per run of parameters
            that share a step count, so a rule computes its bias corrections once per count in
            Python floats, as PyTorch does once per parameter (:func:`per_step`).
        sizes: the element counts of the parameters laid end to end in ``grads`` (None when unknown), so
            a rule can read a per-parameter number kept per element from each parameter's first element.
        count: how many updates this set of parameters had received before this one (Optax's
            ``count``; a schedule is evaluated at it).
        first: whether this is the first update since the state was made or reset (buffers that
            PyTorch creates at a parameter's first step start here). A ``bool``, or a boolean array
            with one entry per element of ``grads`` when only some parameters start. It follows
            ``step == 1`` unless given: setting a parameter's step count back (PyTorch's
            ``opt.state[p]["step"] = 0``) restarts the count, not the buffers.
    """

    __slots__ = ("group", "_step", "count", "first", "_scratch", "segments", "_like", "sizes")

    def __init__(
        self,
        group: dict[str, Any],
        step: Any,
        count: int,
        first: Any = None,
        segments: tuple[tuple[int, int, int], ...] | None = None,
        like: Any = None,
        sizes: list[int] | None = None,
    ) -> None:
        self.group = group
        self.sizes = sizes
        self._step = step
        self.count = count
        self.segments = segments
        self._like = like  # an array on the device the per-element steps go to (made from segments)
        if first is None:
            first = step == 1 if segments is None else self.step == 1
        self.first = first
        self._scratch: dict[tuple[int, int, str], np.ndarray] = {}

    @property
    def step(self) -> Any:
        if self._step is None and self.segments is not None:
            counts = np.array([t for _, _, t in self.segments], np.float64)  # host: one count per run
            lengths = [stop - start for start, stop, _ in self.segments]
            host = np.repeat(counts, lengths)  # host: built once, then moved to the gradients' device
            self._step = (
                host if self._like is None or type(self._like) is np.ndarray else to_device(host, device_of(self._like))
            )
        return self._step

    @step.setter
    def step(self, value: Any) -> None:
        self._step = value
        self.segments = None

    def scratch(self, like: np.ndarray, slot: int = 0, dtype: Any = None) -> np.ndarray:
        """A reusable temporary array shaped like ``like`` (contents undefined), of ``like``'s dtype or ``dtype``."""
        dt = like.dtype if dtype is None else np.dtype(dtype)
        key = (slot, like.size, dt.str)
        buf = self._scratch.get(key)
        if buf is None:
            buf = np.empty_like(like, dtype=dt)
            self._scratch[key] = buf
        return buf

    def keep_scratch(self, store: dict[tuple[int, int, str], np.ndarray]) -> None:
        """Reuse the temporaries of an earlier step (the optimizer keeps one store per buffer)."""
        self._scratch = store


@dataclass(frozen=True)
class from_group:
    """A hyperparameter read from the optimizer's param group at each step.

    ``from_group("lr")`` reads ``group["lr"]``; ``from_group("betas", 0)`` reads ``group["betas"][0]``.
    """

    key: str
    index: int | None = None


def hyper(value: Any, ctx: StepContext) -> Any:
    """Resolve a hyperparameter: a number, ``from_group(...)``, or a schedule of ``ctx.count``."""
    if isinstance(value, from_group):
        try:
            v = ctx.group[value.key]
        except KeyError:
            raise StateDictError(
                f"the transform reads hyperparameter {value.key!r} from the param group, but the group has "
                f"only {sorted(k for k in ctx.group if k != 'params')}; pass it to the optimizer (e.g. "
                f"{value.key}=...)"
            ) from None
        if value.index is not None:
            v = v[value.index]
    elif callable(value):
        v = value(ctx.count)
    else:
        v = value
    # Python scalars keep float32 arrays float32 (NumPy's weak scalar rule); np.float64 would not.
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()  # host: a NumPy scalar hyperparameter, not a device value
    return v


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params, ctx) -> (updates, state)``."""

    init: Callable[[np.ndarray], State]
    update: Callable[[np.ndarray, State, np.ndarray, StepContext], tuple[np.ndarray, State]]


def _no_state(params: np.ndarray) -> dict[str, np.ndarray]:
    return {}


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transforms one after the other; the state is the tuple of their states.

    Example:
        >>> from downslope.optim import transforms as T
        >>> sgd_momentum = T.chain(T.trace(0.9), T.scale_by_lr(0.01))
        >>> len(sgd_momentum.init(np.zeros(3, np.float32)))
        2
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise ArgumentTypeError(f"chain: argument {i} is a {type(t).__name__}, expected a GradientTransformation")

    def init(params: np.ndarray) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(grads: np.ndarray, state: Any, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, Any]:
        if grads.dtype == np.float16:
            # PyTorch steps float16 parameters in float32 arithmetic (its opmath), rounding only what it
            # stores: the updates run in float32 here, the states stay float16 (each write into one
            # rounds once) and the parameters take the float32 update rounded once. In float16, g**2
            # overflows from |g| > 256 and a learning rate under 6e-8 is 0.
            grads = grads.astype(np.float32)
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, ctx)
            new_states.append(s)
        return grads, tuple(new_states)

    return GradientTransformation(init, update)


def _opmath(array: np.ndarray, value: Any) -> Any:
    """``value``, a Python number, as the scalar an in-place update of ``array`` should use: float32 for a
    float16 array (PyTorch's opmath: ``v *= 0.999`` in float16 would first round 0.999 to 0.99902),
    unchanged otherwise (NumPy already computes float32/float64 arrays with a Python number in their own
    dtype)."""
    return np.float32(value) if array.dtype == np.float16 and isinstance(value, float | int) else value


def _round_as(x: np.ndarray, like: np.ndarray) -> None:
    """Round ``x`` (float32 work) in place to float16 where ``like`` is float16: the point where
    PyTorch's float16 op stores its result, for the steps whose later arithmetic reads it."""
    if like.dtype == np.float16 and x.dtype != np.float16:
        with np.errstate(over="ignore"):  # beyond float16's range: inf, as PyTorch stores it
            x[...] = x.astype(np.float16)


def _zeros_if_missing(state: dict[str, np.ndarray], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    buf = state.get(key)
    if buf is None:
        buf = np.full_like(like, fill)
        state[key] = buf
    return buf


def _is_scalar_step(step: Any) -> bool:
    return isinstance(step, (int, np.integer))


def is_one_step(ctx: StepContext) -> bool:
    """Whether every element being updated has taken the same number of steps (``ctx.step`` is one count)."""
    return ctx.segments is None and _is_scalar_step(ctx._step)


def per_step(ctx: StepContext, fn: Callable[[Any], float], like: np.ndarray, slot: int, dtype: Any = None) -> Any:
    """``fn`` of the step count, as PyTorch computes a bias correction: once per parameter, in Python floats.

    A Python float when every element has one count; otherwise an array shaped like ``like`` (in its
    dtype or ``dtype``, the scratch ``slot``) holding each run's value over its elements, each value
    rounded once to that dtype, as the one count's float would be rounded by the arithmetic it enters.
    A caller's per-element ``step`` array is evaluated once per distinct count."""
    dt = like.dtype if dtype is None else np.dtype(dtype)
    if ctx.segments is None:
        t = ctx.step
        if _is_scalar_step(t):
            return fn(t)
        counts, where = np.unique(to_host(t), return_inverse=True)  # host: a few distinct step counts
        values = np.array([fn(float(c)) for c in counts], dt)[where]  # host: one Python power per count
        return (
            to_device(values.reshape(t.shape), device_of(t)) if type(t) is not np.ndarray else values.reshape(t.shape)
        )
    out = ctx.scratch(like, slot, dt)
    if len(ctx.segments) <= _FILL_RUNS:
        for start, stop, t in ctx.segments:
            out[start:stop] = fn(t)
        return out
    known: dict[Any, float] = {}
    for _, _, t in ctx.segments:
        if t not in known:
            known[t] = fn(t)
    values = np.array([known[t] for _, _, t in ctx.segments], dt)  # host: one value per run
    lengths = [stop - start for start, stop, _ in ctx.segments]
    host = np.repeat(values, lengths)  # host: one value per run, spread once, then copied to the device
    out[...] = host if type(out) is np.ndarray else to_device(host, device_of(out))
    return out


def per_step_op(
    ctx: StepContext, op: Any, a: np.ndarray, fn: Callable[[Any], float], out: np.ndarray, slot: int, dtype: Any = None
) -> None:
    """``out = op(a, fn(t))`` with ``fn`` of each element's step count (a bias correction, :func:`per_step`):
    one scalar operation per run of step counts while they are few (no per-element array of the values:
    the arithmetic of the one-count step, on each run's slice), otherwise with :func:`per_step`'s array.
    ``dtype`` rounds each value to that type first (float32 for float16 buffers, PyTorch's opmath)."""
    kind = None if dtype is None else np.dtype(dtype).type
    if ctx.segments is not None and len(ctx.segments) <= _FILL_RUNS:
        for start, stop, t in ctx.segments:
            value = fn(t)
            op(a[start:stop], value if kind is None else kind(value), out=out[start:stop])
        return
    value = per_step(ctx, fn, out if dtype is None else a, slot, dtype)
    if kind is not None and not hasattr(value, "shape"):
        value = kind(value)
    op(a, value, out=out)


#: up to this many runs of step counts, :func:`per_step` fills each run's slice (a memset each);
#: beyond, it spreads the values with one ``np.repeat`` (fewer Python-level calls)
_FILL_RUNS = 16


def update_once(
    transform: GradientTransformation,
    grads: Any,
    params: Any = None,
    *,
    step: int = 1,
    group: dict[str, Any] | None = None,
) -> np.ndarray:
    """The updates a transform makes from ``grads`` on its first call (to see what a rule does).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_lr(0.1), [1.0, -2.0])
        array([-0.1,  0.2])
    """
    # host: a helper to show a rule on Python lists (documentation, not a training step)
    g = np.array(grads, dtype=np.float64 if not isinstance(grads, np.ndarray) else grads.dtype)  # host: see above
    p = np.zeros_like(g) if params is None else np.asarray(params, dtype=g.dtype)  # host: see above
    updates, _ = transform.update(g, transform.init(p), p, StepContext(group or {}, step, step - 1))
    return updates


def identity() -> GradientTransformation:
    """Leave the updates unchanged (a placeholder in a chain).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.identity(), [1.0, -2.0])
        array([ 1., -2.])
    """
    return GradientTransformation(_no_state, _unchanged)


def _unchanged(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
    # a module-level function, not a closure: an optimizer holding identity() can be pickled
    return g, state
