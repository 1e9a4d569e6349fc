"""Adaptive per-coordinate scalings: Adam, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, Lion."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import backend
from ...devices import to_host
from ...errors import StateError
from .base import (
    GradientTransformation,
    State,
    StepContext,
    _opmath,
    _round_as,
    _zeros_if_missing,
    from_group,
    hyper,
    is_one_step,
    per_step,
    per_step_op,
)


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

    init = _zero_moments

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        tmp = ctx.scratch(g, 1)
        _update_moments_(m, v, g, beta1, beta2, tmp)
        if hyper(amsgrad, ctx):
            vmax = _zeros_if_missing(state, "max_exp_avg_sq", v)
            np.maximum(vmax, v, out=vmax)
            np.sqrt(vmax, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        # the bias corrections in Python floats, once per step count (PyTorch's once per parameter)
        if v.dtype == np.float16:  # PyTorch's float16 steps: its denominator rounded where it rounds it
            per_step_op(ctx, np.divide, tmp, lambda t: (1 - beta2**t) ** 0.5, tmp, _COEFF, np.float32)
            _round_as(tmp, v)
            tmp += np.float32(e)
            _round_as(tmp, v)
            np.divide(m, tmp, out=g)
            per_step_op(ctx, np.multiply, g, lambda t: 1 / (1 - beta1**t), g, _COEFF + 1, np.float32)
            return g, state
        # (m / bc1) / (sqrt(v) / bc2_sqrt + eps) rearranged as (bc2_sqrt / bc1) * m / (sqrt(v) + eps * bc2_sqrt):
        # the same number, one pass over the buffers fewer (the step is memory-bound on large models).
        per_step_op(ctx, np.add, tmp, lambda t: e * (1 - beta2**t) ** 0.5, tmp, _COEFF)
        np.divide(m, tmp, out=g)
        per_step_op(ctx, np.multiply, g, lambda t: (1 - beta2**t) ** 0.5 / (1 - beta1**t), g, _COEFF + 1)
        return g, state

    return GradientTransformation(init, update)


#: the first scratch slot of the per-step coefficient arrays (per_step), clear of the rules' own temporaries
_COEFF = 10


def _torch_scalar_type(dtype: np.dtype) -> type:
    """The type PyTorch rounds ASGD's eta and mu to, given ``dtype``, that of the buffer holding them.

    PyTorch keeps them as 0-d tensors of its scalar dtype, float32 unless the default dtype is float64
    (``_get_scalar_dtype``), whatever the parameters' dtype: :func:`scale_by_asgd` makes its buffers in
    that dtype, and a float32/float64 buffer keeps the dtype it was made with, as a torch tensor does
    when the default dtype changes later. A buffer of another dtype (a float16 one written through
    ``opt.state``) rounds to the scalar dtype."""
    if dtype == np.float32 or dtype == np.float64:
        return dtype.type
    return _torch_optimizer_scalar_type()


def _zero_moments(params: np.ndarray) -> dict[str, np.ndarray]:
    """Adam's two moving averages (of the gradient and of its square), zero before the first step."""
    return {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}


def _update_moments_(m: np.ndarray, v: np.ndarray, g: np.ndarray, beta1: float, beta2: float, tmp: np.ndarray) -> None:
    """One step of Adam's moving averages in place (Adam, NAdam and RAdam): ``m`` of the gradient
    with weight ``beta1``, ``v`` of its square with weight ``beta2``."""
    _lerp_(m, g, 1 - beta1, tmp)
    _ema_of_square_(v, g, beta2, tmp)


def _ema_of_square_(acc: np.ndarray, g: np.ndarray, decay: float, tmp: np.ndarray) -> None:
    """acc = decay * acc + (1 - decay) * g**2: the moving average of squared gradients that Adam,
    RMSprop, Adadelta, NAdam and RAdam share (``tmp`` is scratch of g's shape)."""
    np.multiply(g, g, out=tmp)  # a float16 state's gradient comes as float32 (chain): no overflow
    tmp *= 1 - decay
    acc *= _opmath(acc, decay)
    acc += tmp


def _lerp_(acc: np.ndarray, g: np.ndarray, weight: Any, tmp: np.ndarray) -> None:
    """``acc = lerp(acc, g, weight)`` in place (an exponential moving average), in PyTorch's two forms:
    ``acc + w * (g - acc)`` for ``|w| < 0.5``, else ``g - (g - acc) * (1 - w)``. The second is exact at
    ``w = 1`` (Adam with ``beta1 = 0`` keeps the gradient itself, where ``acc + (g - acc)`` loses a small
    gradient that follows a large one) and closer for any large weight. ``1 - w`` is taken in the
    arithmetic's dtype, as PyTorch's ``w - 1``, so the compiled kernels (``_jit_updates``) give the same
    bits. ``tmp`` is scratch of ``g``'s shape and dtype."""
    if np.ndim(weight) == 0 and abs(weight) >= 0.5:
        dt = tmp.dtype.type
        # 1 - w in the arithmetic's dtype (exact there: Sterbenz), as the Python number it is, which
        # NumPy casts back to the arrays' dtype without rounding
        c = (dt(1) - dt(weight)).item()  # host: a hyperparameter
        if acc.dtype == tmp.dtype:
            # in place, no scratch: (acc - g) * c + g is g - (g - acc) * c to the bit (a negation is exact)
            acc -= g
            acc *= c
            acc += g
        else:  # a float16 state whose gradient comes as float32: the arithmetic in float32, stored once
            np.subtract(g, acc, out=tmp)
            tmp *= c
            np.subtract(g, tmp, out=acc)
        return
    np.subtract(g, acc, out=tmp)
    if np.ndim(weight) == 0:
        tmp *= weight
        acc += tmp
        return
    # one weight per element (a schedule read per element): each element takes its own form
    xp = backend.namespace_of(tmp)
    w = xp.asarray(weight, dtype=tmp.dtype)
    small = abs(w) < 0.5
    tmp *= xp.where(small, w, 1 - w)
    acc[...] = xp.where(small, acc + tmp, g - tmp)


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
        _ema_of_square_(v, g, a, tmp)
        if hyper(centered, ctx):
            mean_g = _zeros_if_missing(state, "grad_avg", v)
            _lerp_(mean_g, g, 1 - a, tmp)
            np.multiply(mean_g, mean_g, out=tmp, dtype=tmp.dtype)  # float16 state: the product in float32
            # torch's fused addcmul never rounds the product, so v = inf minus an overflowing mean_g**2
            # stays inf (the step is then 0); capped, the subtraction gives inf too instead of inf - inf
            np.minimum(tmp, np.finfo(tmp.dtype).max, out=tmp)
            np.subtract(v, tmp, out=tmp)
            _round_as(tmp, v)
            np.sqrt(tmp, out=tmp)
            _round_as(tmp, v)
        else:
            np.sqrt(v, out=tmp)
        tmp += e
        _round_as(tmp, v)
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
        _round_as(tmp, acc)
        g /= tmp
        if decay != 0:
            per_step_op(ctx, np.divide, g, lambda t: 1 + (t - 1) * decay, g, _COEFF)
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
        _ema_of_square_(v, g, r, tmp)
        std = ctx.scratch(g, 2)
        # float16 states: each step rounded where PyTorch's float16 ops round it (no-ops otherwise)
        np.add(v, _opmath(v, e), out=std)
        _round_as(std, v)
        np.sqrt(std, out=std)
        _round_as(std, v)
        np.add(u, _opmath(u, e), out=tmp)
        _round_as(tmp, u)
        np.sqrt(tmp, out=tmp)
        _round_as(tmp, u)
        tmp /= std
        _round_as(tmp, u)
        g *= tmp  # g is now delta
        _round_as(g, u)
        _ema_of_square_(u, g, r, tmp)
        return g, state

    return GradientTransformation(init, update)


def scale_by_rprop(
    lr: Any = from_group("lr"),  # noqa: B008 - an immutable marker
    etas: Any = (0.5, 1.2),
    step_sizes: Any = (1e-6, 50.0),
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
        first = ctx.first
        if isinstance(first, (bool, np.bool_)):
            if first:
                size.fill(hyper(lr, ctx))
        else:
            np.copyto(size, hyper(lr, ctx), where=first)  # not size[first] = ...: a mask would wait for a GPU
        agreement = np.sign(g * prev)
        factor = np.where(agreement > 0, eta_plus, np.where(agreement < 0, eta_minus, 1.0)).astype(g.dtype)
        size *= factor
        np.clip(size, low, high, out=size)
        np.copyto(g, 0, where=agreement < 0)  # not g[mask] = 0: a boolean mask makes a GPU synchronise
        prev[...] = g
        np.sign(g, out=g)
        np.copyto(g, 0, where=g != g)  # torch's sign: a NaN gradient gives no direction, so no step
        g *= size
        np.negative(g, out=g)
        return g, state

    return GradientTransformation(init, update)


def scale_by_asgd(
    lr: Any = from_group("lr"),  # noqa: B008 - an immutable marker
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
) -> GradientTransformation:
    """Averaged SGD (Polyak and Juditsky, 1992), PyTorch's form: a decaying step size ``eta`` and a
    running average ``ax`` of the parameters (kept in the state; it does not change the updates)::

        p *= 1 - lambd * eta                   (in place, before the update: PyTorch's order)
        update = -eta * g
        ax += (p + update - ax) * mu
        eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)

    The decay shrinks ``params`` in place rather than entering the update, as PyTorch's
    ``p.mul_(1 - lambd * eta)`` does: an infinite parameter then stays infinite, where an update added to
    it could give inf - inf. A transform placed after this one sees only ``-eta * g``.

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_asgd(0.1, lambd=0.0), [1.0, -2.0])
        array([-0.1,  0.2])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        # eta and mu in PyTorch's scalar dtype (float32 for float16 parameters too), ax in the parameters'
        scalar = _torch_optimizer_scalar_type()
        return {
            "eta": np.zeros_like(params, dtype=scalar),
            "mu": np.ones_like(params, dtype=scalar),
            "ax": np.zeros_like(params),
        }

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        rate, decay, power, start = hyper(lr, ctx), hyper(lambd, ctx), hyper(alpha, ctx), hyper(t0, ctx)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        scalar = _torch_scalar_type(eta.dtype)
        if isinstance(ctx.first, (bool, np.bool_)):
            if ctx.first:
                eta.fill(scalar(rate))
        else:
            np.copyto(eta, scalar(rate), where=ctx.first)
        tmp = ctx.scratch(g, 1)
        # float16 parameters: g comes in float32 (chain) and each step below is PyTorch's float16 kernel,
        # computed in float32 and rounded to float16 where it stores (_round_as: no-ops otherwise)
        half = params.dtype == np.float16
        eta_value, mu_value = _one_value(eta, g, ctx), _one_value(mu, g, ctx)
        if eta_value is not None and mu_value is not None:
            # one eta and one mu for every element (the usual case: PyTorch's per-parameter numbers all
            # alike): scalar arithmetic, PyTorch's, in as few passes over the buffers as its step
            if decay != 0:
                # PyTorch's order: shrink first (an infinite p stays infinite), by 1 - lambd * eta in the
                # parameters' arithmetic (float32 for float16 ones)
                params *= _opmath(params, 1 - decay * eta_value)
            # PyTorch's p.add_(g, alpha=-eta) reads alpha in the parameters' dtype (float16 too)
            g *= float(np.float16(-eta_value)) if half else -eta_value  # host: a Python number; g is the update
            if mu_value == 1:
                np.add(params, g, out=ax)  # PyTorch's ax.copy_(p) while mu is 1 (until t0 steps)
            else:
                _average_into(ax, params, g, mu_value, tmp)
        else:
            if decay != 0:
                # PyTorch's order: p *= 1 - lambd * eta, then p -= eta * g (an infinite p stays infinite);
                # 1 - lambd * eta in float64 (PyTorch's Python floats), rounded once to the arithmetic's dtype
                np.subtract(1, np.multiply(eta, decay, dtype=np.float64), out=tmp)
                params *= tmp
            if half:  # alpha=-eta at its float16 value, as above
                np.copyto(tmp, eta.astype(np.float16))
                g *= tmp
            else:
                g *= eta
            np.negative(g, out=g)  # g is now the update
            _average_into(ax, params, g, mu, tmp)
            # PyTorch's ax.copy_(p) for the parameters whose mu is still 1 (until t0 steps), as above:
            # ax + (p - ax) * 1 can round differently from p
            np.add(params, g, out=tmp)
            np.copyto(ax, tmp, where=mu == 1)

        # the next eta and mu in Python floats once per step count (PyTorch's per parameter), rounded to
        # PyTorch's scalar dtype, then stored
        def next_eta_of(t: Any) -> float:
            return float(scalar(rate / (1 + decay * rate * t) ** power))  # host: Python numbers, rounded as torch's

        def next_mu_of(t: Any) -> float:
            return float(scalar(1.0 / max(1.0, t - start)))  # host: Python numbers, rounded as torch's

        eta[...] = per_step(ctx, next_eta_of, eta, _COEFF)
        next_mu = per_step(ctx, next_mu_of, mu, _COEFF + 1)
        if not (isinstance(next_mu, float) and next_mu == mu_value):  # mu stays 1 for t0 steps: no rewrite
            mu[...] = next_mu
        return g, state

    return GradientTransformation(init, update)


def _average_into(ax: np.ndarray, params: np.ndarray, update: np.ndarray, mu: Any, tmp: np.ndarray) -> None:
    """ASGD's running average, PyTorch's ``ax.add_(p.sub(ax).mul_(mu))`` with ``p = params + update``
    (the new parameters): each product and difference rounded to float16 where ``params`` is float16,
    as PyTorch's float16 kernels store them (``tmp`` is float32 scratch there)."""
    np.add(params, update, out=tmp)  # the new parameters
    _round_as(tmp, params)
    tmp -= ax
    _round_as(tmp, params)
    tmp *= mu
    _round_as(tmp, params)
    ax += tmp


def _one_value(per_element: np.ndarray, g: np.ndarray, ctx: StepContext) -> float | None:
    """The one value every element of ``per_element`` holds, as a Python float (ASGD's eta or mu: one number
    per parameter, kept per element), or None when they differ, are empty, or either of ``per_element`` and
    ``g`` is not float32/float64 (eta's dtype is PyTorch's scalar dtype, which need not be g's).
    Every element of a parameter holds its parameter's number (ASGD writes whole parameters, and spreads a
    number written through ``opt.state`` from the first element), so the parameters' first elements tell."""
    if per_element.size == 0 or not (_float32_or_64(per_element.dtype) and _float32_or_64(g.dtype)):
        return None
    if type(per_element) is not np.ndarray:  # a device array: reading it would make the host wait every step
        return None
    if ctx.sizes is None or len(ctx.sizes) > _FEW_PARAMETERS:
        low, high = float(per_element.min()), float(per_element.max())  # host: two numbers, read per step
        return low if low == high else None
    starts, at = [], 0
    for n in ctx.sizes:
        if n:
            starts.append(at)
        at += n
    firsts = to_host(per_element[starts]).tolist()  # host: one number per parameter, read per step
    return firsts[0] if all(v == firsts[0] for v in firsts) else None


def _float32_or_64(dtype: np.dtype) -> bool:
    return dtype == np.float32 or dtype == np.float64


#: above this many parameters, _one_value compares the whole buffer (two reductions) rather than gathering
#: each parameter's first element in Python
_FEW_PARAMETERS = 256


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
        u *= _opmath(u, beta2)
        np.maximum(u, tmp, out=u)
        np.divide(m, u, out=g)
        per_step_op(ctx, np.divide, g, lambda t: 1 - beta1**t, g, _COEFF)
        return g, state

    return GradientTransformation(init, update)


def scale_by_nadam(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, momentum_decay: Any = 4e-3, shared_product: bool = False
) -> GradientTransformation:
    """NAdam (Dozat, 2016), PyTorch's form with the momentum schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2
        denom = sqrt(v / (1 - b2**t)) + eps
        update = (1 - mu_t) / (1 - prod(mu_1..mu_t)) * g / denom
               + mu_{t+1} / (1 - prod(mu_1..mu_{t+1})) * m / denom

    ``mu_product`` (the running product) is kept per element so that parameters that skip steps
    keep their own product, like PyTorch's per-parameter state. With ``shared_product=True`` it
    starts as one number (a 0-d array) for all the elements, as PyTorch keeps one per parameter:
    the caller promises to replace it by a per-element array before elements take different steps
    (:class:`~downslope.optim.NAdam` does, when some parameter of a buffer misses a step).

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> np.sign(T.update_once(T.scale_by_nadam(), [1.0, -2.0]))
        array([ 1., -1.])
    """

    def init(params: np.ndarray) -> dict[str, np.ndarray]:
        # PyTorch keeps the product in its optimizer scalar dtype whatever the parameters' (float32 for
        # float16 parameters too): in float16 it would lose the digits the bias corrections divide by
        scalar = _torch_optimizer_scalar_type()
        return {
            "exp_avg": np.zeros_like(params),
            "exp_avg_sq": np.zeros_like(params),
            "mu_product": np.ones_like(params, dtype=scalar, shape=() if shared_product else params.shape),
        }

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        hypers = (hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx), hyper(momentum_decay, ctx))
        # coefficient arrays (one value per parameter, repeated over its elements), in the updates' dtype
        # where it is wider than the product's (float64 parameters: PyTorch's coefficients are Python floats)
        work = np.promote_types(state["mu_product"].dtype, g.dtype)
        m, mu_prod, _, _, denom, tmp = _nadam_moments(g, state, ctx, *hypers, coefficients=False)
        product = mu_prod.astype(work, copy=False)
        beta1, psi = hypers[0], hypers[3]

        def mu_next(t: Any) -> Any:
            return _nadam_mu(beta1, psi, t + 1)

        if mu_prod.ndim == 0 and is_one_step(ctx) and g.dtype.itemsize >= 4 and type(mu_prod) is np.ndarray:
            # one product and one count (every parameter stepping): the two coefficients are Python floats,
            # as PyTorch's, and the update takes four passes rather than filling arrays with them (on the
            # host only: reading a device's product would make the host wait every step)
            t, value = ctx.step, float(to_host(mu_prod))  # host: one number, PyTorch's _get_value(mu_product)
            c_grad_value = (1.0 - _nadam_mu(beta1, psi, t)) / (1.0 - value)
            c_m_value = mu_next(t) / (1.0 - value * mu_next(t))
            g *= c_grad_value
            np.multiply(m, c_m_value, out=tmp)
            g += tmp
            g /= denom
            return g, state

        # 1 - mu_t and mu_{t+1} in Python floats once per step count, entering the arithmetic as the
        # one-count step's Python floats do
        kind = None
        c_grad = ctx.scratch(g, 3)
        np.subtract(1.0, product, out=c_grad)
        per_step_op(ctx, _divide_into, c_grad, lambda t: 1.0 - _nadam_mu(beta1, psi, t), c_grad, _COEFF + 3, kind)
        per_step_op(ctx, np.multiply, product, mu_next, tmp, _COEFF + 1, kind)
        np.subtract(1.0, tmp, out=tmp)
        per_step_op(ctx, _divide_into, tmp, mu_next, tmp, _COEFF + 5, kind)  # c_m
        tmp *= m
        g *= c_grad
        g += tmp
        g /= denom
        return g, state

    return GradientTransformation(init, update)


def _torch_optimizer_scalar_type() -> type:
    """The dtype PyTorch keeps NAdam's ``mu_product`` in, whatever the parameters' dtype (its
    ``_get_scalar_dtype``): float64 when the default dtype is float64, float32 otherwise."""
    return np.float64 if backend.get_default_dtype() == np.float64 else np.float32


def _nadam_mu(beta1: float, psi: float, t: Any) -> Any:
    """NAdam's momentum coefficient at step ``t`` (PyTorch's, in Python floats)."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (t * psi)))


def _nadam_moments(
    g: np.ndarray,
    state: State,
    ctx: StepContext,
    beta1: float,
    beta2: float,
    e: float,
    psi: float,
    coefficients: bool = True,
) -> tuple[np.ndarray, np.ndarray, Any, Any, np.ndarray, np.ndarray]:
    """NAdam's state update: the running product and the two moments in place, and the denominator
    ``sqrt(v / (1 - b2**t)) + eps`` rounded where PyTorch's float16 ops store. Returns ``(m, mu_product,
    mu_t, mu_{t+1}, denom, tmp)``; ``tmp`` is scratch of ``g``'s shape. ``mu_t`` and ``mu_{t+1}`` are Python
    floats when every element has one step count, else float64 arrays (None without ``coefficients``)."""
    m, v, mu_prod = state["exp_avg"], state["exp_avg_sq"], state["mu_product"]
    if mu_prod.ndim == 0 and not is_one_step(ctx):
        raise StateError(
            "scale_by_nadam(shared_product=True): the elements have taken different numbers of steps, "
            "so one mu_product cannot serve them all; give the state a per-element mu_product first"
        )
    # the momentum schedule and bias correction in float64, as PyTorch's Python floats
    mu = mu_next = None
    if coefficients:
        mu = per_step(ctx, lambda step: _nadam_mu(beta1, psi, step), g, _COEFF, np.float64)
        mu_next = per_step(ctx, lambda step: _nadam_mu(beta1, psi, step + 1), g, _COEFF + 1, np.float64)
    # mu rounded to the product's dtype before the multiply, as PyTorch's mu_product *= mu
    per_step_op(ctx, np.multiply, mu_prod, lambda step: _nadam_mu(beta1, psi, step), mu_prod, _COEFF + 4, mu_prod.dtype)
    tmp = ctx.scratch(g, 1)
    _update_moments_(m, v, g, beta1, beta2, tmp)
    denom = ctx.scratch(g, 2)
    # the bias correction in Python floats (float32 for a float16 state: PyTorch's opmath)
    opmath = np.float32 if v.dtype == np.float16 else None
    per_step_op(ctx, np.divide, v, lambda step: 1 - beta2**step, denom, _COEFF + 2, opmath)
    _round_as(denom, v)
    np.sqrt(denom, out=denom)
    _round_as(denom, v)
    denom += e
    _round_as(denom, v)
    return m, mu_prod, mu, mu_next, denom, tmp


def nadam_float16_update(
    g: np.ndarray,
    state: State,
    params: np.ndarray,
    ctx: StepContext,
    *,
    lr: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> np.ndarray:
    """NAdam's whole step on float16 parameters, rounded where PyTorch's float16 kernels round, so that
    the parameters are PyTorch's to the bit: the decoupled decay ``p *= 1 - lr * wd`` is stored before the
    step, and the step is two stored additions ``p += c1 * g / denom`` then ``p += c2 * m / denom``, whose
    coefficients PyTorch computes in float64 from the float32 ``mu_product`` and hands to its kernel as
    float32. ``state`` is :func:`scale_by_nadam`'s (updated in place); ``g`` is the float16 gradient
    (``params``' dtype). Returns the float32 update that takes ``params`` to the new float16 values."""
    beta1, beta2 = hyper(from_group("betas", 0), ctx), hyper(from_group("betas", 1), ctx)
    e, psi = hyper(from_group("eps"), ctx), hyper(from_group("momentum_decay"), ctx)
    grad = g.astype(np.float32)  # float16 values, the arithmetic in float32 (PyTorch's opmath)
    if maximize:
        np.negative(grad, out=grad)
    new = params.astype(np.float32)
    if weight_decay != 0:
        if decoupled_weight_decay:
            new *= np.float32(1 - lr * weight_decay)  # PyTorch's param.mul_: the factor in float32
            _round_as(new, params)
        else:
            # PyTorch's grad.add(param, alpha=wd): alpha rounded to float16, the sum stored in float16
            grad += params * _opmath(params, float(np.float16(weight_decay)))  # host: a hyperparameter
            _round_as(grad, params)
    m, mu_prod, mu, mu_next, denom, tmp = _nadam_moments(grad, state, ctx, beta1, beta2, e, psi)
    product = mu_prod.astype(np.float64)
    c_grad = (-lr * (1.0 - mu) / (1.0 - product)).astype(np.float32)
    c_m = ((-lr * mu_next) / (1.0 - product * mu_next)).astype(np.float32)
    # PyTorch's float16 addcdiv: p + (value * t1) / t2 in float32, stored in float16; twice
    np.multiply(grad, c_grad, out=tmp)
    tmp /= denom
    new += tmp
    _round_as(new, params)
    np.multiply(m, c_m, out=tmp)
    tmp /= denom
    new += tmp
    _round_as(new, params)
    new -= params  # the difference of two float16 numbers: exact in float32 for any that one step moves
    return new


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

    init = _zero_moments

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        beta1, beta2, e = hyper(b1, ctx), hyper(b2, ctx), hyper(eps, ctx)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        tmp = ctx.scratch(g, 1)
        _update_moments_(m, v, g, beta1, beta2, tmp)
        rho_inf = 2 / (1 - beta2) - 1

        def rho(t: Any) -> Any:
            return rho_inf - 2 * t * (beta2**t) / (1 - beta2**t)

        def rect_of(t: Any) -> float:  # the rectification, 1.0 while rho_t <= 5 (no adaptive term then)
            rho_t = rho(t)
            if not rho_t > 5.0:
                return 1.0
            return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5

        if not is_one_step(ctx) and ctx.segments is not None:
            # one step count per run of parameters: each run's scalars in Python floats, as the one-count
            # step computes them (PyTorch: once per parameter), spread over its elements
            f32 = np.float32 if m.dtype == np.float16 else None
            per_step_op(ctx, np.divide, m, lambda t: 1 - beta1**t, g, _COEFF, f32)
            _round_as(g, m)
            unrectified = [(a, b) for a, b, t in ctx.segments if not rho(t) > 5.0]
            if len(unrectified) == len(ctx.segments):
                return g, state
            np.sqrt(v, out=tmp)
            tmp += e
            _round_as(tmp, v)
            per_step_op(ctx, _divide_into, tmp, lambda t: (1 - beta2**t) ** 0.5, tmp, _COEFF + 1)
            for a, b in unrectified:
                tmp[a:b] = 1.0  # those runs keep the bias-corrected momentum
            g *= tmp
            per_step_op(ctx, np.multiply, g, rect_of, g, _COEFF + 2)
            return g, state
        t = ctx.step if is_one_step(ctx) else ctx.step.astype(np.float64)  # a caller's per-element counts
        bc1 = 1 - beta1**t
        bc2 = 1 - beta2**t
        rho_t = rho(t)
        np.divide(m, _opmath(m, bc1), out=g)
        _round_as(g, m)
        if is_one_step(ctx):
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                np.sqrt(v, out=tmp)
                tmp += e
                _round_as(tmp, v)
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


def _divide_into(x: np.ndarray, value: Any, out: np.ndarray) -> None:
    """``out = value / x`` (the numerator a step-count scalar, for :func:`per_step_op`)."""
    np.divide(value, x, out=out)


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
