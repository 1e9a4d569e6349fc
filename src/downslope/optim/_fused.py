"""The one-pass step of SGD, Adam, NAdam, RMSprop, Adagrad and Adadelta on large parameters: when it applies, and its scalars.

A step normally gathers every gradient into the bucket's flat gradient buffer and runs the
group's chain of transforms over it, a few whole-buffer NumPy passes each (see ``buckets.py``):
the fastest way for many small parameters, where the per-call overhead of a loop over parameters
would dominate. On large parameters the step is memory-bound instead, and those extra passes
(the gather, the scale by ``-lr``, the add into the parameters) cost more than PyTorch's whole
step. There the compiled kernels of ``_jit_updates`` run instead, once per parameter, reading its
own ``.grad`` and writing the parameter and its state slices in one pass, with PyTorch's
arithmetic in PyTorch's order.

They apply when numba is there (``jit_gate``), the bucket is a flat buffer of host arrays whose
parameters average at least :data:`MIN_MEAN_SIZE` elements, every parameter has a gradient of its
own dtype and shape (their step counts may differ: each takes its own scalars), no clipping option is set,
the hyperparameters are plain numbers and the optimizer's chain is the class's own. Anything else
takes the transforms path, with the same results up to rounding.

Example:
    >>> import numpy as np
    >>> import downslope as ds
    >>> w = ds.zeros(1 << 16, requires_grad=True)
    >>> opt = ds.optim.SGD([w], lr=0.5)
    >>> w.grad = ds.ones(1 << 16)
    >>> opt.step()
    >>> float(w[0])
    -0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import jit_gate
from .buckets import FlatBucket

#: the fewest elements per parameter, on average over a bucket, for the per-parameter kernels to
#: beat the whole-buffer passes: a kernel call costs one to three microseconds, the passes it saves
#: about a nanosecond per element (measured on 20 parameters: even at 1k elements, 0.9x at 4k
#: for SGD with momentum, 0.5x for Adam, 0.25-0.4x from 64k)
MIN_MEAN_SIZE = 1 << 12
#: the fewest elements in a bucket for the kernels (numba's import and their cache load cost a process
#: 0.4-1 s): below this an Adam step saves under 65 us with them (a 784-64-10 MLP's 50,890 parameters
#: 29 vs 79 us; 4 x 16,384: 31 vs 93 us; one thread, float32, shared two-core AMD EPYC, medians), so a
#: small model's run would not repay the start. Below it the transforms path runs even when a larger
#: bucket has loaded the kernels: their Adam, NAdam, RMSprop and Adadelta steps round differently from
#: the transforms' (by an ulp), and the path a step takes must depend on the step alone, not on what
#: ran earlier in the process, for a seeded run to repeat its results bit for bit.
MIN_TOTAL_SIZE = 1 << 16

_KERNELS = "downslope.optim._jit_updates"

Step = Callable[[], None]


def _number(value: Any) -> float | None:
    """A hyperparameter as a Python float, or None when it is not a plain real number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


def _grads(b: FlatBucket) -> list[np.ndarray] | None:
    """Each parameter's gradient as a flat host array, when the bucket can take a one-pass step (the
    kernels take each parameter's scalars, so its parameters' step counts may differ)."""
    if type(b) is not FlatBucket or b.flat.size < MIN_MEAN_SIZE * len(b.params):
        return None
    if b.flat.size < MIN_TOTAL_SIZE:
        return None
    if not b.uniform or b.watched:  # after a missed step, a load or a user's write: are they even?
        b.uniform = bool((b.steps == b.steps[0]).all())  # host: step counts are host integers
    flat = b.flat
    if type(flat) is not np.ndarray:
        return None
    grads = []
    for p, shape in zip(b.params, b.shapes):
        g = p.grad
        if g is None:
            return None
        a = g.array
        if type(a) is not np.ndarray or a.dtype != b.dtype or a.shape != shape or np.may_share_memory(a, flat):
            return None  # the gather reports a wrong shape, casts a dtype, copies what overlaps
        grads.append(a.reshape(-1))
    return grads


def _state_array(slot: dict[str, Any], key: str, b: FlatBucket) -> np.ndarray | None:
    a = slot.get(key)
    if type(a) is not np.ndarray or a.shape != b.flat.shape or not a.flags.c_contiguous:
        return None
    return a


def _slices(b: FlatBucket) -> list[slice]:
    return [slice(start, stop) for start, stop in zip(b.offsets, b.offsets[1:])]


def _finish(b: FlatBucket) -> None:
    """The bookkeeping of ``FlatBucket.apply`` for a step every parameter took (``uniform`` is unchanged:
    every count moves by one)."""
    b.started[:] = True
    b.steps += 1
    b.count += 1


def sgd_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass SGD (and GD) step of bucket ``b``, or None when it does not apply."""
    grads = _grads(b)
    if grads is None:
        return None
    lr, wd = _number(group.get("lr")), _number(group.get("weight_decay", 0.0))
    mu, damp = _number(group.get("momentum", 0.0)), _number(group.get("dampening", 0.0))
    if lr is None or wd is None or mu is None or damp is None:
        return None
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None:
        return None
    if b.started.any() and not b.started.all():
        return None  # some parameters start their buffers, some not
    maximize, nesterov = bool(group.get("maximize", False)), bool(group.get("nesterov", False))
    dt = b.dtype.type
    neg_lr, decay = dt(-lr), dt(wd)
    views = [b.flat[s] for s in _slices(b)]
    if mu == 0:

        def plain() -> None:
            for p, g in zip(views, grads):
                k.sgd_(p, g, neg_lr, decay, maximize)
            _finish(b)

        return plain
    if not isinstance(b.state, tuple) or len(b.state) < 3 or not isinstance(b.state[2], dict):
        return None
    slot = b.state[2]  # trace's state in the chain (negate_if, weight decay, trace, scale_by_lr)
    if "momentum_started" in slot:
        return None  # the buffer was made while some parameters had no gradient
    first = not b.started.any()
    if "momentum_buffer" not in slot:
        first = True  # trace makes the buffer from the gradient, whatever the step count
    buf = _state_array(slot, "momentum_buffer", b) if "momentum_buffer" in slot else np.empty_like(b.flat)
    if buf is None:
        return None
    momentum, keep = dt(mu), dt(1 - damp)

    def heavy_ball() -> None:
        slot["momentum_buffer"] = buf
        for s, p, g in zip(_slices(b), views, grads):
            k.sgd_momentum_(p, g, buf[s], neg_lr, decay, momentum, keep, nesterov, first, maximize)
        _finish(b)

    return heavy_ball


def adam_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass Adam (and AdamW) step of bucket ``b``, or None when it does not apply."""
    grads = _grads(b)
    if grads is None:
        return None
    lr, wd, eps = _number(group.get("lr")), _number(group.get("weight_decay", 0.0)), _number(group.get("eps"))
    betas = group.get("betas")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        return None
    beta1, beta2 = _number(betas[0]), _number(betas[1])
    if lr is None or wd is None or eps is None or beta1 is None or beta2 is None:
        return None
    if not isinstance(b.state, tuple) or len(b.state) < 3 or not isinstance(b.state[2], dict):
        return None
    slot = b.state[2]  # scale_by_adam's state in the chain (negate_if, weight decay, adam, ...)
    m, v = _state_array(slot, "exp_avg", b), _state_array(slot, "exp_avg_sq", b)
    if m is None or v is None:
        return None
    amsgrad = bool(group.get("amsgrad", False))
    vmax = v[:0]  # read only with amsgrad
    if amsgrad:
        if "max_exp_avg_sq" in slot:
            found = _state_array(slot, "max_exp_avg_sq", b)
            if found is None:
                return None
            vmax = found
        else:
            vmax = np.zeros_like(b.flat)
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None:
        return None
    decoupled = bool(group.get("decoupled_weight_decay", False))
    maximize = bool(group.get("maximize", False))
    dt = b.dtype.type
    # PyTorch's scalars, computed in Python floats once per parameter (each has its own step count, which
    # differ once some parameter missed a step), then rounded once to the parameters' dtype
    per_count: dict[int, tuple[Any, Any]] = {}
    scalars = []
    for count in b.steps.tolist():  # host: one step count per parameter
        step = int(count) + 1
        if step not in per_count:
            bc1, bc2 = 1 - beta1**step, 1 - beta2**step
            per_count[step] = (dt(-(lr / bc1)), dt(bc2**0.5))
        scalars.append(per_count[step])
    l2 = dt(0.0 if decoupled else wd)
    shrink = dt(1 - lr * wd if decoupled and wd != 0 else 1.0)
    w1, b2, w2 = dt(1 - beta1), dt(beta2), dt(1 - beta2)
    e = dt(eps)

    def adam() -> None:
        if amsgrad:
            slot["max_exp_avg_sq"] = vmax
        for s, g, (neg_step, bc2_sqrt) in zip(_slices(b), grads, scalars):
            top = vmax[s] if amsgrad else vmax
            k.adam_(b.flat[s], g, m[s], v[s], top, maximize, l2, shrink, w1, b2, w2, neg_step, bc2_sqrt, e, amsgrad)
        _finish(b)

    return adam


def nadam_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass NAdam (and NAdamW) step of bucket ``b``, or None when it does not apply.

    The running product ``mu_product`` is PyTorch's one number per parameter, multiplied in its own dtype
    (float32 unless the default dtype is float64): the bucket's one 0-d product while every parameter has
    the same step count, else the per-element array that holds each parameter's number over its elements
    (NAdam.step spreads it so once counts differ), read at the parameter's first element and written back."""
    grads = _grads(b)
    if grads is None or b.dtype not in (np.float32, np.float64):
        return None
    lr, wd, eps = _number(group.get("lr")), _number(group.get("weight_decay", 0.0)), _number(group.get("eps"))
    psi, betas = _number(group.get("momentum_decay")), group.get("betas")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        return None
    beta1, beta2 = _number(betas[0]), _number(betas[1])
    if lr is None or wd is None or eps is None or psi is None or beta1 is None or beta2 is None:
        return None
    if not isinstance(b.state, tuple) or len(b.state) < 3 or not isinstance(b.state[2], dict):
        return None
    slot = b.state[2]  # scale_by_nadam's state in the chain (negate_if, weight decay, nadam, ...)
    m, v, product = _state_array(slot, "exp_avg", b), _state_array(slot, "exp_avg_sq", b), slot.get("mu_product")
    if m is None or v is None or type(product) is not np.ndarray or product.dtype.kind != "f":
        return None
    counts = b.steps.tolist()  # host: one step count per parameter
    shared = product.ndim == 0
    if shared and any(c != counts[0] for c in counts):
        return None  # one product cannot serve different counts (NAdam.step spreads it first)
    if not shared and _state_array(slot, "mu_product", b) is None:
        return None
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None:
        return None
    decoupled = bool(group.get("decoupled_weight_decay", False))
    maximize = bool(group.get("maximize", False))
    dt, kind = b.dtype.type, product.dtype.type

    def mu_at(step: int) -> float:
        return beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))  # PyTorch's momentum schedule, Python floats

    def scalars(step: int, before: Any) -> tuple[Any, Any, Any, Any]:
        """(the new product, bc2, c_grad, c_m) of a parameter at ``step`` whose product was ``before``,
        in PyTorch's arithmetic: the product multiplied in its dtype, the rest in Python floats."""
        mu, mu_next = mu_at(step), mu_at(step + 1)
        after = kind(before * kind(mu))
        value = float(after)  # PyTorch's _get_value(mu_product)
        c_grad = -lr * (1.0 - mu) / (1.0 - value)
        c_m = (-lr * mu_next) / (1.0 - value * mu_next)
        return after, dt(1 - beta2**step), dt(c_grad), dt(c_m)

    l2 = dt(0.0 if decoupled else wd)
    shrink = dt(1 - lr * wd if decoupled and wd != 0 else 1.0)
    w1, b2, w2, e = dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(eps)

    def nadam() -> None:
        if shared:
            after, bc2, c_grad, c_m = scalars(int(counts[0]) + 1, product[()])
            for s, g in zip(_slices(b), grads):
                k.nadam_(b.flat[s], g, m[s], v[s], maximize, l2, shrink, w1, b2, w2, bc2, e, c_grad, c_m)
            product[()] = after
        else:
            for s, g, count in zip(_slices(b), grads, counts):
                if s.stop == s.start:
                    continue  # an empty parameter: its product is rebuilt from its step count (NAdam._product_of)
                after, bc2, c_grad, c_m = scalars(int(count) + 1, product[s.start])
                k.nadam_(b.flat[s], g, m[s], v[s], maximize, l2, shrink, w1, b2, w2, bc2, e, c_grad, c_m)
                product[s] = after
        _finish(b)

    return nadam


def _chain_slot(b: FlatBucket, index: int) -> dict[str, Any] | None:
    """The state of transform ``index`` in the bucket's chain, or None when it is not a plain dict."""
    if not isinstance(b.state, tuple) or len(b.state) <= index or not isinstance(b.state[index], dict):
        return None
    return b.state[index]


def rmsprop_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass RMSprop step of bucket ``b`` (centered and with momentum too), or None when it
    does not apply."""
    grads = _grads(b)
    if grads is None or b.dtype not in (np.float32, np.float64):
        return None
    lr, wd, eps = _number(group.get("lr")), _number(group.get("weight_decay", 0.0)), _number(group.get("eps"))
    alpha, mu = _number(group.get("alpha")), _number(group.get("momentum", 0.0))
    centered = group.get("centered", False)
    if lr is None or wd is None or eps is None or alpha is None or mu is None or not isinstance(centered, bool):
        return None
    slot = _chain_slot(b, 2)  # scale_by_rms's state in the chain (negate_if, weight decay, rms, trace, lr)
    trace = _chain_slot(b, 3)
    if slot is None or trace is None:
        return None
    v = _state_array(slot, "square_avg", b)
    if v is None:
        return None
    mean_g: np.ndarray | None = v[:0]  # read only when centered
    if centered:
        mean_g = _state_array(slot, "grad_avg", b) if "grad_avg" in slot else np.zeros_like(b.flat)
        if mean_g is None:
            return None
    buf: np.ndarray | None = v[:0]  # read only with momentum
    if mu > 0:
        if "momentum_started" in trace:
            return None  # a buffer made while some parameters had no gradient
        if "momentum_buffer" in trace:
            if not b.started.all():
                return None  # some parameters start their buffers from this step's update
            buf = _state_array(trace, "momentum_buffer", b)
            if buf is None:
                return None
        else:
            # PyTorch's buffer starts at zero: buf * mu + update is then the update itself, which is
            # what the transforms path stores on the first step
            buf = np.zeros_like(b.flat)
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None or mean_g is None or buf is None:
        return None
    maximize = bool(group.get("maximize", False))
    dt = b.dtype.type
    decay, a, w, e, neg_lr, momentum = dt(wd), dt(alpha), dt(1 - alpha), dt(eps), dt(-lr), dt(mu)
    cap = dt(np.finfo(b.dtype).max)

    def rmsprop() -> None:
        if centered:
            slot["grad_avg"] = mean_g
        if mu > 0:
            trace["momentum_buffer"] = buf
        for s, g in zip(_slices(b), grads):
            k.rmsprop_(
                b.flat[s],
                g,
                v[s],
                mean_g[s] if centered else mean_g,
                buf[s] if mu > 0 else buf,
                maximize,
                decay,
                a,
                w,
                e,
                neg_lr,
                momentum,
                cap,
                centered,
            )
        _finish(b)

    return rmsprop


def adagrad_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass Adagrad step of bucket ``b``, or None when it does not apply; each parameter's
    learning rate ``lr / (1 + (t - 1) * lr_decay)`` from its own step count."""
    grads = _grads(b)
    if grads is None or b.dtype not in (np.float32, np.float64):
        return None
    lr, wd, eps = _number(group.get("lr")), _number(group.get("weight_decay", 0.0)), _number(group.get("eps"))
    lr_decay = _number(group.get("lr_decay", 0.0))
    if lr is None or wd is None or eps is None or lr_decay is None:
        return None
    slot = _chain_slot(b, 2)  # scale_by_adagrad's state in the chain (negate_if, weight decay, adagrad, lr)
    if slot is None:
        return None
    acc = _state_array(slot, "sum", b)
    if acc is None:
        return None
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None:
        return None
    maximize = bool(group.get("maximize", False))
    dt = b.dtype.type
    decay, e = dt(wd), dt(eps)
    # PyTorch's clr in Python floats, once per parameter (from its own step count)
    rates = [dt(-(lr / (1 + int(count) * lr_decay))) for count in b.steps.tolist()]  # host: step counts

    def adagrad() -> None:
        for s, g, neg_clr in zip(_slices(b), grads, rates):
            k.adagrad_(b.flat[s], g, acc[s], maximize, decay, e, neg_clr)
        _finish(b)

    return adagrad


def adadelta_step(group: dict[str, Any], b: FlatBucket) -> Step | None:
    """The one-pass Adadelta step of bucket ``b``, or None when it does not apply."""
    grads = _grads(b)
    if grads is None or b.dtype not in (np.float32, np.float64):
        return None
    lr, wd, eps = _number(group.get("lr")), _number(group.get("weight_decay", 0.0)), _number(group.get("eps"))
    rho = _number(group.get("rho"))
    if lr is None or wd is None or eps is None or rho is None:
        return None
    slot = _chain_slot(b, 2)  # scale_by_adadelta's state in the chain (negate_if, weight decay, adadelta, lr)
    if slot is None:
        return None
    v, u = _state_array(slot, "square_avg", b), _state_array(slot, "acc_delta", b)
    if v is None or u is None:
        return None
    k = jit_gate.kernels(_KERNELS, b.flat)
    if k is None:
        return None
    maximize = bool(group.get("maximize", False))
    dt = b.dtype.type
    decay, r, w, e, neg_lr = dt(wd), dt(rho), dt(1 - rho), dt(eps), dt(-lr)

    def adadelta() -> None:
        for s, g in zip(_slices(b), grads):
            k.adadelta_(b.flat[s], g, v[s], u[s], maximize, decay, r, w, e, neg_lr)
        _finish(b)

    return adadelta
