"""Update rules as small composable gradient transformations (in the manner of Optax).

A :class:`GradientTransformation` is a pair of functions over FLAT arrays (one contiguous vector
holding every parameter of a group, see ``optimizer.py``)::

    init(params) -> state                                  # state: dict of flat arrays
    update(grads, state, params, ctx) -> (updates, state)

``update`` turns gradients into the updates that are *added* to the parameters
(``params += updates``), so the last transform of a descent chain is ``scale_by_lr``, which
multiplies by ``-lr``. To stay fast, transforms work in place: ``grads`` is a private buffer that a
transform may overwrite and return as ``updates``, and state arrays are mutated in place.
``ctx`` (:class:`StepContext`) carries what a pure function of the gradients cannot know: the
per-parameter step count (1 on the first update, as in PyTorch), the number of updates applied so
far (``count``, what a schedule is a function of) and the parameter group's hyperparameters.

Hyperparameters may be plain numbers, a schedule (a function of ``count``) or ``from_group("lr")``
(read from the optimizer's param group at every step, so that lr schedulers and momentum cycling
can change them mid-run).

Example:
    >>> import numpy as np
    >>> from downslope.optim import transforms as T
    >>> adam = T.chain(T.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), T.scale_by_lr(0.1))
    >>> params = np.array([1.0, -2.0], dtype=np.float32)
    >>> state = adam.init(params)
    >>> updates, state = adam.update(np.array([0.5, -0.5], np.float32), state, params, T.StepContext({}, 1, 0))
    >>> updates.round(6)  # Adam's first step moves each coordinate by lr against its gradient's sign
    array([-0.1,  0.1], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ArgumentTypeError, StateDictError

State = Any  # a dict of flat arrays, or a tuple of those for a chain
Schedule = Callable[[int], float]


# ---------------------------------------------------------------------- plumbing
class StepContext:
    """What a transform may read besides gradients, state and parameters.

    Attributes:
        group: the param group's hyperparameters (``{'lr': ..., 'betas': ...}``).
        step: the step count of each parameter after this update (1 on the first update). An
            ``int`` when every parameter being updated has taken the same number of steps (the
            usual case); otherwise a float array with one entry per element of ``grads``.
        count: how many updates this set of parameters had received before this one (Optax's
            ``count``; a schedule is evaluated at it).
    """

    __slots__ = ("group", "step", "count", "_scratch")

    def __init__(self, group: dict[str, Any], step: Any, count: int) -> None:
        self.group = group
        self.step = step
        self.count = count
        self._scratch: dict[tuple[int, int, str], np.ndarray] = {}

    def scratch(self, like: np.ndarray, slot: int = 0) -> np.ndarray:
        """A reusable temporary array shaped like ``like`` (contents undefined)."""
        key = (slot, like.size, like.dtype.str)
        buf = self._scratch.get(key)
        if buf is None:
            buf = np.empty_like(like)
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
        v = v.item()
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
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, ctx)
            new_states.append(s)
        return grads, tuple(new_states)

    return GradientTransformation(init, update)


def _zeros_if_missing(state: dict[str, np.ndarray], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    buf = state.get(key)
    if buf is None:
        buf = np.full_like(like, fill)
        state[key] = buf
    return buf


def _is_scalar_step(step: Any) -> bool:
    return isinstance(step, (int, np.integer))


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
    g = np.array(grads, dtype=np.float64 if not isinstance(grads, np.ndarray) else grads.dtype)
    p = np.zeros_like(g) if params is None else np.asarray(params, dtype=g.dtype)
    updates, _ = transform.update(g, transform.init(p), p, StepContext(group or {}, step, step - 1))
    return updates


# ---------------------------------------------------------------------- simple transforms
def scale(factor: Any) -> GradientTransformation:
    """Multiply the updates by ``factor`` (a number, schedule or ``from_group``).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale(2.0), [1.0, -2.0])
        array([ 2., -4.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        f = hyper(factor, ctx)
        if f != 1:
            g *= f
        return g, state

    return GradientTransformation(_no_state, update)


def scale_by_lr(lr: Any = from_group("lr")) -> GradientTransformation:
    """The descent step: ``updates = -lr * updates``.

    ``lr`` is a float, a schedule (a pure function of the update count, Optax style) or, by default,
    ``from_group("lr")``: the live learning rate of the param group, which lr schedulers change.

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_lr(0.1), [1.0, -2.0])
        array([-0.1,  0.2])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        g *= -hyper(lr, ctx)
        return g, state

    return GradientTransformation(_no_state, update)


def negate_if(flag: Any) -> GradientTransformation:
    """Flip the gradient's sign when ``flag`` is true (PyTorch's ``maximize``).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.negate_if(True), [1.0, -2.0])
        array([-1.,  2.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        if hyper(flag, ctx):
            np.negative(g, out=g)
        return g, state

    return GradientTransformation(_no_state, update)


def add_decayed_weights(weight_decay: Any) -> GradientTransformation:
    """``updates += weight_decay * params``.

    Before the moments it is L2 regularisation (PyTorch's ``weight_decay`` in SGD/Adam); after them
    and before ``scale_by_lr`` it is decoupled weight decay (AdamW: ``p -= lr * wd * p``).

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.add_decayed_weights(0.5), [1.0, -2.0], params=[2.0, 2.0])
        array([ 2., -1.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        wd = hyper(weight_decay, ctx)
        if wd != 0:
            tmp = ctx.scratch(g, 1)
            np.multiply(params, wd, out=tmp)
            g += tmp
        return g, state

    return GradientTransformation(_no_state, update)


def clip(max_delta: Any) -> GradientTransformation:
    """Clip every coordinate of the updates into ``[-max_delta, max_delta]``.

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.clip(1.5), [1.0, -2.0])
        array([ 1. , -1.5])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        m = hyper(max_delta, ctx)
        np.clip(g, -m, m, out=g)
        return g, state

    return GradientTransformation(_no_state, update)


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
    """Rescale the updates so their L2 norm is at most ``max_norm`` (PyTorch's coefficient
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1).
    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.clip_by_global_norm(1.0), [3.0, 4.0]).round(6)
        array([0.6, 0.8])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        m = hyper(max_norm, ctx)
        norm = float(np.sqrt(np.dot(g, g)))
        coef = m / (norm + 1e-6)
        if coef < 1.0:
            g *= coef
        return g, state

    return GradientTransformation(_no_state, update)


# ---------------------------------------------------------------------- momentum
def trace(momentum: Any, dampening: Any = 0.0, nesterov: Any = False) -> GradientTransformation:
    """Heavy-ball momentum, PyTorch's SGD form::

        buf = g                               (first step)
        buf = momentum * buf + (1 - dampening) * g
        update = g + momentum * buf  if nesterov else  buf

    No buffer is kept while ``momentum`` is 0 (it may be switched on later by a scheduler).

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.trace(0.9, nesterov=True), [1.0, -2.0])  # first step: g + 0.9 * g
        array([ 1.9, -3.8])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        mu = hyper(momentum, ctx)
        if mu == 0:
            return g, state
        damp = hyper(dampening, ctx)
        buf = state.get("momentum_buffer")
        step = ctx.step
        if buf is None:
            buf = g.copy()
            state["momentum_buffer"] = buf
        elif _is_scalar_step(step) and step == 1:
            buf[...] = g
        else:
            tmp = ctx.scratch(g, 1)
            np.multiply(g, 1 - damp, out=tmp)
            buf *= mu
            buf += tmp
            if not _is_scalar_step(step):  # parameters on their first step start from g
                first = step == 1
                buf[first] = g[first]
        if hyper(nesterov, ctx):
            tmp = ctx.scratch(g, 1)
            np.multiply(buf, mu, out=tmp)
            g += tmp
        else:
            g[...] = buf
        return g, state

    return GradientTransformation(_no_state, update)


# ---------------------------------------------------------------------- adaptive rules
def scale_by_adam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, amsgrad: Any = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015), with AMSGrad's running maximum of ``v`` when ``amsgrad``::

        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        update = (m / (1 - b1**t)) / (sqrt(v) / sqrt(1 - b2**t) + eps)

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_adam(), [1.0, -2.0]).round(6)  # bias-corrected: g / |g|
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        tmp = ctx.scratch(g, 1)
        _lerp_(m, g, 1 - beta1, tmp)
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v *= beta2
        v += tmp
        t = ctx.step
        bc1 = 1 - beta1**t
        bc2_sqrt = (1 - beta2**t) ** 0.5
        if hyper(amsgrad, ctx):
            vmax = _zeros_if_missing(state, "max_exp_avg_sq", v)
            np.maximum(vmax, v, out=vmax)
            np.sqrt(vmax, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        # (m / bc1) / (sqrt(v) / bc2_sqrt + eps) rearranged as (bc2_sqrt / bc1) * m / (sqrt(v) + eps * bc2_sqrt):
        # the same number, one pass over the buffers fewer (the step is memory-bound on large models).
        tmp += e * bc2_sqrt
        np.divide(m, tmp, out=g)
        g *= bc2_sqrt / bc1
        return g, state

    return GradientTransformation(init, update)


def _lerp_(acc: np.ndarray, g: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """acc += weight * (g - acc), PyTorch's ``lerp_`` (an exponential moving average)."""
    np.subtract(g, acc, out=tmp)
    tmp *= weight
    acc += tmp


def scale_by_rms(alpha: Any = 0.99, eps: Any = 1e-8, centered: Any = False) -> GradientTransformation:
    """RMSprop (Hinton, 2012), PyTorch's form; ``centered`` divides by an estimate of the variance::

        v = alpha * v + (1 - alpha) * g**2
        avg = sqrt(v - mean_g**2) if centered else sqrt(v)      (mean_g = EMA of g)
        update = g / (avg + eps)

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_rms(alpha=0.99), [1.0, -2.0]).round(4)  # g / (0.1 |g|)
        array([ 10., -10.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"square_avg": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        a, e = hyper(alpha, ctx), hyper(eps, ctx)
        v = state["square_avg"]
        tmp = ctx.scratch(g, 1)
        np.multiply(g, g, out=tmp)
        tmp *= 1 - a
        v *= a
        v += tmp
        if hyper(centered, ctx):
            mean_g = _zeros_if_missing(state, "grad_avg", v)
            _lerp_(mean_g, g, 1 - a, tmp)
            np.multiply(mean_g, mean_g, out=tmp)
            np.subtract(v, tmp, out=tmp)
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        tmp += e
        g /= tmp
        return g, state

    return GradientTransformation(init, update)


def scale_by_adagrad(
    lr_decay: Any = 0.0, initial_accumulator_value: Any = 0.0, eps: Any = 1e-10
) -> GradientTransformation:
    """Adagrad (Duchi et al., 2011), PyTorch's form::

        sum += g**2
        update = g / (sqrt(sum) + eps) / (1 + (t - 1) * lr_decay)

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_adagrad(), [1.0, -2.0]).round(6)
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"sum": np.full_like(params, initial_accumulator_value)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        decay, e = hyper(lr_decay, ctx), hyper(eps, ctx)
        acc = state["sum"]
        tmp = ctx.scratch(g, 1)
        np.multiply(g, g, out=tmp)
        acc += tmp
        np.sqrt(acc, out=tmp)
        tmp += e
        g /= tmp
        if decay != 0:
            g /= 1 + (ctx.step - 1) * decay
        return g, state

    return GradientTransformation(init, update)


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> GradientTransformation:
    """Adadelta (Zeiler, 2012)::

        v = rho * v + (1 - rho) * g**2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta**2
        update = delta

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_adadelta(), [1.0, -2.0]).round(4)  # tiny first steps
        array([ 0.0032, -0.0032])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"square_avg": np.zeros_like(params), "acc_delta": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        r, e = hyper(rho, ctx), hyper(eps, ctx)
        v, u = state["square_avg"], state["acc_delta"]
        tmp = ctx.scratch(g, 1)
        np.multiply(g, g, out=tmp)
        tmp *= 1 - r
        v *= r
        v += tmp
        std = ctx.scratch(g, 2)
        np.add(v, e, out=std)
        np.sqrt(std, out=std)
        np.add(u, e, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp /= std
        g *= tmp  # g is now delta
        np.multiply(g, g, out=tmp)
        tmp *= 1 - r
        u *= r
        u += tmp
        return g, state

    return GradientTransformation(init, update)


def scale_by_rprop(
    lr: Any = from_group("lr"), etas: Any = (0.5, 1.2), step_sizes: Any = (1e-6, 50.0)
) -> GradientTransformation:
    """Rprop (Riedmiller and Braun, 1993), PyTorch's form: every coordinate has its own step size,
    started at ``lr``, multiplied by eta+ while its gradient keeps its sign and by eta- when the
    sign flips (then that step is skipped and the gradient forgotten), kept within ``step_sizes``::

        s = clamp(s * (eta+ if g * g_prev > 0 else eta- if g * g_prev < 0 else 1), min, max)
        g = 0 where the sign flipped;  update = -sign(g) * s;  g_prev = g

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_rprop(0.1), [3.0, -0.5])  # the first step: lr in each coordinate
        array([-0.1,  0.1])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"prev": np.zeros_like(params), "step_size": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        (eta_minus, eta_plus), (low, high) = hyper(etas, ctx), hyper(step_sizes, ctx)
        prev, size = state["prev"], state["step_size"]
        first = ctx.step == 1
        if _is_scalar_step(ctx.step):
            if first:
                size.fill(hyper(lr, ctx))
        else:
            size[first] = hyper(lr, ctx)
        agreement = np.sign(g * prev)
        factor = np.where(agreement > 0, eta_plus, np.where(agreement < 0, eta_minus, 1.0)).astype(g.dtype)
        size *= factor
        np.clip(size, low, high, out=size)
        g[agreement < 0] = 0
        prev[...] = g
        np.sign(g, out=g)
        g *= size
        np.negative(g, out=g)
        return g, state

    return GradientTransformation(init, update)


def scale_by_asgd(
    lr: Any = from_group("lr"), lambd: Any = 1e-4, alpha: Any = 0.75, t0: Any = 1e6
) -> GradientTransformation:
    """Averaged SGD (Polyak and Juditsky, 1992), PyTorch's form: a decaying step size ``eta`` and a
    running average ``ax`` of the parameters (kept in the state; it does not change the updates)::

        update = -eta * (g + lambd * p)
        ax += (p_new - ax) * mu
        eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_asgd(0.1, lambd=0.0), [1.0, -2.0])
        array([-0.1,  0.2])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"eta": np.zeros_like(params), "mu": np.ones_like(params), "ax": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        rate, decay, power, start = hyper(lr, ctx), hyper(lambd, ctx), hyper(alpha, ctx), hyper(t0, ctx)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        if _is_scalar_step(ctx.step):
            if ctx.step == 1:
                eta.fill(rate)
        else:
            eta[ctx.step == 1] = rate
        tmp = ctx.scratch(g, 1)
        np.multiply(params, decay, out=tmp)
        g += tmp
        g *= eta
        np.negative(g, out=g)  # g is now the update
        np.add(params, g, out=tmp)  # the new parameters
        tmp -= ax
        tmp *= mu
        ax += tmp
        step = np.asarray(ctx.step, dtype=np.float64)
        eta[...] = rate / (1 + decay * rate * step) ** power
        mu[...] = 1.0 / np.maximum(1.0, step - start)
        return g, state

    return GradientTransformation(init, update)


def scale_by_adamax(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> GradientTransformation:
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2015, section 7)::

        m = b1 * m + (1 - b1) * g
        u = max(b2 * u, |g| + eps)
        update = m / u / (1 - b1**t)

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_adamax(), [1.0, -2.0]).round(6)
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"exp_avg": np.zeros_like(params), "exp_inf": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx)
        m, u = state["exp_avg"], state["exp_inf"]
        tmp = ctx.scratch(g, 1)
        _lerp_(m, g, 1 - beta1, tmp)
        np.abs(g, out=tmp)
        tmp += e
        u *= beta2
        np.maximum(u, tmp, out=u)
        np.divide(m, u, out=g)
        g /= 1 - beta1**ctx.step
        return g, state

    return GradientTransformation(init, update)


def scale_by_nadam(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, momentum_decay: Any = 4e-3
) -> GradientTransformation:
    """NAdam (Dozat, 2016), PyTorch's form with the momentum schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2
        denom = sqrt(v / (1 - b2**t)) + eps
        update = (1 - mu_t) / (1 - prod(mu_1..mu_t)) * g / denom
               + mu_{t+1} / (1 - prod(mu_1..mu_{t+1})) * m / denom

    ``mu_product`` (the running product) is kept per element so that parameters that skip steps
    keep their own product, like PyTorch's per-parameter state.

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> np.sign(T.update_once(T.scale_by_nadam(), [1.0, -2.0]))
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "exp_avg": np.zeros_like(params),
            "exp_avg_sq": np.zeros_like(params),
            "mu_product": np.ones_like(params),
        }

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e, psi = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx), hyper(momentum_decay, ctx)
        m, v, mu_prod = state["exp_avg"], state["exp_avg_sq"], state["mu_product"]
        t = ctx.step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * psi)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi)))
        mu_prod *= mu
        tmp = ctx.scratch(g, 1)
        _lerp_(m, g, 1 - beta1, tmp)
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v *= beta2
        v += tmp
        denom = ctx.scratch(g, 2)
        np.divide(v, 1 - beta2**t, out=denom)
        np.sqrt(denom, out=denom)
        denom += e
        # coefficient arrays (one value per parameter, repeated over its elements)
        c_grad = ctx.scratch(g, 3)
        np.subtract(1.0, mu_prod, out=c_grad)
        np.divide(1.0 - mu, c_grad, out=c_grad)
        np.multiply(mu_prod, mu_next, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.divide(mu_next, tmp, out=tmp)  # c_m
        tmp *= m
        g *= c_grad
        g += tmp
        g /= denom
        return g, state

    return GradientTransformation(init, update)


def scale_by_radam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> GradientTransformation:
    """RAdam (Liu et al., 2020): Adam whose adaptive term is switched on, and rectified, only once
    the variance of the adaptive learning rate is tractable (``rho_t > 5``)::

        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2**t / (1 - b2**t)
        m_hat = m / (1 - b1**t)
        update = m_hat * r_t * sqrt(1 - b2**t) / (sqrt(v) + eps)   if rho_t > 5
                 m_hat                                              otherwise
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_radam(), [1.0, -2.0])  # step 1: plain (bias-corrected) momentum
        array([ 1., -2.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        tmp = ctx.scratch(g, 1)
        _lerp_(m, g, 1 - beta1, tmp)
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v *= beta2
        v += tmp
        t = ctx.step
        bc1 = 1 - beta1**t
        bc2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2**t) / bc2
        np.divide(m, bc1, out=g)
        if _is_scalar_step(t):
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                np.sqrt(v, out=tmp)
                tmp += e
                np.divide(bc2**0.5, tmp, out=tmp)
                g *= tmp
                g *= rect
            return g, state
        ok = rho_t > 5.0
        safe_rho = np.where(ok, rho_t, 5.0)  # rect is only defined where rho_t > 5
        rect = np.sqrt((safe_rho - 4) * (safe_rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe_rho))
        np.sqrt(v, out=tmp)
        tmp += e
        np.divide(np.sqrt(bc2), tmp, out=tmp)
        tmp *= rect
        g *= np.where(ok, tmp, 1.0).astype(g.dtype, copy=False)
        return g, state

    return GradientTransformation(init, update)


def scale_by_lion(b1: Any = 0.9, b2: Any = 0.99) -> GradientTransformation:
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms")::

        update = sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_lion(), [0.3, -2.0])
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        return {"exp_avg": np.zeros_like(params)}

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2 = hyper(b1, ctx), hyper(b2, ctx)
        m = state["exp_avg"]
        tmp = ctx.scratch(g, 1)
        np.multiply(m, beta1, out=tmp)
        c = ctx.scratch(g, 2)
        np.multiply(g, 1 - beta1, out=c)
        c += tmp
        # m <- b2 m + (1 - b2) g, computed before g is overwritten by the sign
        np.multiply(g, 1 - beta2, out=tmp)
        m *= beta2
        m += tmp
        np.sign(c, out=g)
        return g, state

    return GradientTransformation(init, update)


def identity() -> GradientTransformation:
    """Leave the updates unchanged (a placeholder in a chain).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.identity(), [1.0, -2.0])
        array([ 1., -2.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        return g, state

    return GradientTransformation(_no_state, update)
