"""Adafactor (Shazeer & Stern, 2018) as PyTorch's ``torch.optim.Adafactor`` has it.

PyTorch departs from the paper in two ways, kept here so that runs carry over: ``lr`` caps the
relative step size (``rho_t = min(lr, 1/sqrt(t))``) and scales the decoupled weight decay, and
``eps1`` stabilises the variance estimate and the update rather than the squared gradients.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import namespace_of
from ..devices import to_host
from ..errors import ArgumentError
from .optimizer import OptimizerOptions, _is_number
from .per_param import PerParameterOptimizer, rms, torch_lerp

if TYPE_CHECKING:
    from typing_extensions import Unpack


def adafactor_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    *,
    lr: float,
    beta2_decay: float,
    eps1: float,
    eps2: float,
    d: float,
    weight_decay: float,
) -> None:
    """One Adafactor step of ``param`` in place (PyTorch's rule). Matrices and higher (factored over
    the last two dims)::

        beta2_hat = 1 - t^beta2_decay;   rho = min(lr, 1/sqrt(t));   alpha = max(eps2, RMS(p)) * rho
        p <- p * (1 - lr * wd)
        R <- lerp(R, mean_cols(g^2), 1 - beta2_hat);   C <- lerp(C, mean_rows(g^2), 1 - beta2_hat)
        V = R C / max(mean(R), eps1)                 (vectors: V <- lerp(V, g^2, 1 - beta2_hat))
        U = g / sqrt(max(V, eps1^2));   p <- p - alpha / max(1, RMS(U) / d) * U

    Example:
        >>> import numpy as np
        >>> p = np.ones((2, 2), np.float32); state = {"step": 0, "row_var": np.zeros((2, 1), np.float32),
        ...                                           "col_var": np.zeros((1, 2), np.float32)}
        >>> adafactor_update(p, np.ones((2, 2), np.float32), state, lr=0.01, beta2_decay=-0.8, eps1=1e-30,
        ...                  eps2=1e-3, d=1.0, weight_decay=0.0)
        >>> p   # RMS(p) = 1, rho = 0.01, U = 1
        array([[0.99, 0.99],
               [0.99, 0.99]], dtype=float32)
    """
    xp = namespace_of(param)
    state["step"] += 1
    t = state["step"]
    one_minus_beta2 = t**beta2_decay
    rho = min(lr, 1 / math.sqrt(t))
    if param.dtype.itemsize < 4:
        _half_update(param, grad, state, lr, one_minus_beta2, rho, eps1, eps2, d, weight_decay)
        return
    alpha = max(eps2, rms(param)) * rho  # the RMS before weight decay, as PyTorch
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    square = grad * grad
    if grad.ndim > 1:
        row_var, col_var = state["row_var"], state["col_var"]
        row_var[...] = torch_lerp(row_var, square.mean(axis=-1, keepdims=True), one_minus_beta2)
        col_var[...] = torch_lerp(col_var, square.mean(axis=-2, keepdims=True), one_minus_beta2)
        variance = (row_var @ col_var) / xp.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
    else:
        state["variance"][...] = torch_lerp(state["variance"], square, one_minus_beta2)
        variance = state["variance"]
    update = (1 / xp.sqrt(xp.maximum(variance, eps1 * eps1))) * grad
    param -= alpha / max(1.0, rms(update) / d) * update


def _half_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    lr: float,
    one_minus_beta2: float,
    rho: float,
    eps1: float,
    eps2: float,
    d: float,
    weight_decay: float,
) -> None:
    """:func:`adafactor_update`'s step for float16 parameters as torch's float16 kernels take it: each op
    in float32 (torch's opmath), its result rounded once to float16 (rounding every intermediate, as
    float16 arithmetic would, makes g**2 inf for |g| > 256 and moves the states by an ulp); the norms
    are accumulated in float32 and rounded to float16 before torch reads them as numbers."""
    half, f32 = param.dtype, np.float32

    def norm(x: Any, axis: int | None = None) -> Any:  # torch.norm of a float16 tensor: a float16 result
        x32 = x.astype(f32)
        return np.sqrt((x32 * x32).sum(axis=axis, keepdims=axis is not None)).astype(half)

    def lerp_(acc: Any, end: Any) -> None:  # torch's lerp_ formulas, in float32 with a float32 weight
        w, a, e = f32(one_minus_beta2), acc.astype(f32), end.astype(f32)
        acc[...] = (a + w * (e - a) if abs(w) < 0.5 else e - (e - a) * (f32(1) - w)).astype(half)

    # host: the norms are read as PyTorch reads them with .item(), one number each per parameter
    alpha = max(eps2, float(to_host(norm(param))) / param.size**0.5) * rho
    if weight_decay != 0:
        param[...] = (param.astype(f32) * f32(1 - lr * weight_decay)).astype(half)
    if grad.ndim > 1:
        for key, axis in (("row_var", -1), ("col_var", -2)):
            mean = (norm(grad, axis).astype(f32) ** 2).astype(half)  # torch: norm(g, dim).square_().div_(n)
            lerp_(state[key], (mean.astype(f32) / f32(grad.shape[axis])).astype(half))
        row_var, col_var = state["row_var"], state["col_var"]
        variance = (row_var @ col_var) / np.maximum(row_var.mean(axis=-2, keepdims=True), half.type(eps1))
    else:
        lerp_(state["variance"], grad * grad)
        variance = state["variance"]
    clamped = np.maximum(variance, half.type(eps1 * eps1)).astype(f32)
    update = ((1 / np.sqrt(clamped)).astype(half) * grad).astype(half)  # torch: clamp_, rsqrt_, mul_(grad)
    denom = max(1.0, float(to_host(norm(update))) / (update.size**0.5 * d))  # host: as above
    # torch's float16 add_(alpha=) reads alpha at its float16 value, then computes in float32
    param[...] = (param.astype(f32) + f32(half.type(-alpha / denom)) * update.astype(f32)).astype(half)


class Adafactor(PerParameterOptimizer):
    """Adafactor: Adam-like steps with second moments factored into row and column averages for
    parameters of 2 dims or more (over the last two), a relative step size and update clipping.

    PyTorch's defaults and names: ``lr=1e-2`` (the cap on the relative step size, and the weight
    decay's scale), ``beta2_decay=-0.8``, ``eps=(None, 1e-3)`` (``eps1`` None means the dtype's
    machine epsilon), ``d=1.0`` (clipping threshold), ``weight_decay=0.0``. State per parameter:
    ``step`` (a float32 0-d Tensor in ``state_dict()``) and ``row_var`` ``(..., m, 1)`` /
    ``col_var`` ``(..., 1, n)``, or ``variance`` for vectors and scalars, as PyTorch's
    ``state_dict`` has them.

    Example:
        >>> import downslope as ds
        >>> w = ds.ones(2, 3, requires_grad=True)
        >>> opt = ds.optim.Adafactor([w], lr=0.01)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([[0.99, 0.99, 0.99],
                [0.99, 0.99, 0.99]], requires_grad=True)
    """

    _step_as_tensor = True  # state_dict()'s step is a float32 0-d Tensor, as PyTorch's
    _own_keys = frozenset({"step", "row_var", "col_var", "variance"})

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        foreach = options.pop("foreach", None)  # PyTorch keeps it in the groups, between these two
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": tuple(eps) if isinstance(eps, list) else eps,
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        def bad(what: str, value: Any, expected: str) -> ArgumentError:
            return ArgumentError(f"Adafactor: invalid {what}={value!r}; expected {expected}")

        lr, decay, eps, d, wd = group["lr"], group["beta2_decay"], group["eps"], group["d"], group["weight_decay"]
        if not _is_number(lr) or not lr >= 0:
            raise bad("lr", lr, "a number >= 0")
        if not _is_number(decay) or not decay <= 0:
            raise bad("beta2_decay", decay, "a number <= 0")
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise bad("eps", eps, "a pair (eps1 or None, eps2)")
        if eps[0] is not None and (not _is_number(eps[0]) or not eps[0] >= 0):
            raise bad("eps[0]", eps[0], "None or a number >= 0")
        if not _is_number(eps[1]) or not eps[1] >= 0:
            raise bad("eps[1]", eps[1], "a number >= 0")
        if not _is_number(d) or not d >= 1:
            raise bad("d", d, "a clipping threshold >= 1")
        if not _is_number(wd) or not wd >= 0:
            raise bad("weight_decay", wd, "a number >= 0")

    def _state_shapes(self, param: Any) -> dict[str, tuple[int, ...] | None]:
        shape = tuple(param.shape)
        if len(shape) > 1:
            return {"step": None, "row_var": (*shape[:-1], 1), "col_var": (*shape[:-2], 1, shape[-1])}
        return {"step": None, "variance": shape}

    def _update(self, group: dict[str, Any], param: Any, grad: Any, state: dict[str, Any]) -> None:
        if not state:
            xp = namespace_of(param)
            state["step"] = 0
            for key, shape in self._state_shapes(param).items():
                if shape is not None:
                    state[key] = xp.zeros(shape, param.dtype)
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(param.dtype).eps)  # host: a constant of the dtype
        adafactor_update(
            param,
            -grad if group["maximize"] else grad,
            state,
            lr=group["lr"],
            beta2_decay=group["beta2_decay"],
            eps1=eps1,
            eps2=eps2,
            d=group["d"],
            weight_decay=group["weight_decay"],
        )
