"""Muon (Jordan et al., 2024) as PyTorch's ``torch.optim.Muon`` has it: momentum SGD on 2-d
parameters whose step is the momentum orthogonalised by a Newton-Schulz iteration.

PyTorch runs the iteration in bfloat16 (Keller Jordan's reference does too). NumPy has no
bfloat16, so the iteration here rounds every intermediate to bfloat16's 8 significant bits, at the
points where PyTorch's bfloat16 tensors are rounded, and keeps them in float32: the steps agree
with PyTorch's, bar a rare bfloat16 rounding tie that a different float32 summation order in a
matrix product breaks the other way.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..backend import namespace_of
from ..errors import ArgumentError, ShapeError
from .optimizer import OptimizerOptions, _is_number, check_nonnegative
from .per_param import PerParameterOptimizer, torch_lerp

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Keller Jordan's quintic coefficients and step count (PyTorch's defaults).
DEFAULT_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
DEFAULT_NS_STEPS = 5
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def round_to_bfloat16(x: Any) -> Any:
    """``x`` rounded to the nearest bfloat16 (ties to even), as a float32 array: float32 keeps the
    top 16 bits of its pattern.

    Example:
        >>> import numpy as np
        >>> round_to_bfloat16(np.array([1.0, 1.00390625, 1.01171875, 3.14159], np.float32))
        array([1.      , 1.      , 1.015625, 3.140625], dtype=float32)
    """
    xp = namespace_of(x)
    bits = x.astype(xp.float32).view(xp.uint32)  # a copy: the bits are rounded in place next
    bits += 0x7FFF + ((bits >> 16) & 1)
    bits &= 0xFFFF0000
    return bits.view(xp.float32)


def zeropower_via_newtonschulz(
    grad: Any,
    ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
    ns_steps: int = DEFAULT_NS_STEPS,
    eps: float = 1e-7,
) -> Any:
    """An approximately orthogonal matrix with ``grad``'s singular vectors (``U S' V^T``, ``S'`` near
    1): ``ns_steps`` of the quintic ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, from
    ``X = G / ||G||_F``, in bfloat16 precision as PyTorch computes it (see the module docstring).
    A tall matrix is iterated on its transpose. Returns float32.

    Example:
        >>> import numpy as np
        >>> o = zeropower_via_newtonschulz(np.array([[3.0, 0.0], [0.0, 0.5]], np.float32))
        >>> bool(0.6 < o[0, 0] < 1.3 and 0.6 < o[1, 1] < 1.3 and o[0, 1] == 0)
        True
    """
    if ns_steps >= 100:
        raise ArgumentError(
            f"Muon: ns_steps={ns_steps} is too many; the number of steps must be less than 100 for computational "
            "efficiency"
        )
    if len(grad.shape) != 2:
        raise ShapeError(f"Muon: the Newton-Schulz iteration needs a 2-D matrix, got shape {tuple(grad.shape)}")
    if len(ns_coefficients) != 3:
        raise ArgumentError(f"Muon: ns_coefficients must be 3 numbers (a, b, c), got {ns_coefficients!r}")
    xp = namespace_of(grad)
    bf16 = round_to_bfloat16
    a, b, c = ns_coefficients
    tall = grad.shape[0] > grad.shape[1]
    # bfloat16 values, held in float64 between roundings: PyTorch's float32 accumulation then lands
    # on the same bfloat16 number as this nearly exact one (far more often than a float32 sum in another order)
    x = bf16(grad.T if tall else grad).astype(xp.float64)
    norm = bf16(xp.sqrt(xp.sum(x * x)))
    x = bf16(x / xp.maximum(norm, bf16(xp.full((), eps)))).astype(xp.float64)  # spectral norm at most 1
    for _ in range(ns_steps):
        gram = bf16(x @ x.T).astype(xp.float64)
        poly = bf16(b * gram + c * (gram @ gram)).astype(xp.float64)
        x = bf16(a * x + poly @ x).astype(xp.float64)
    x = x.astype(xp.float32)
    return x.T if tall else x


def adjust_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """Muon's learning rate for a ``shape[0] x shape[1]`` matrix: ``lr * sqrt(max(1, A/B))`` for
    ``"original"`` (or None, Keller Jordan's), ``lr * 0.2 * sqrt(max(A, B))`` for
    ``"match_rms_adamw"`` (Moonshot's, so that AdamW's lr and weight decay carry over).

    Example:
        >>> adjust_lr(0.02, None, (8, 2)), adjust_lr(0.02, "match_rms_adamw", (8, 2))
        (0.04, 0.011313708498984762)
    """
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(PerParameterOptimizer):
    """Muon: momentum on the gradient, orthogonalised by Newton-Schulz, with decoupled weight decay::

        B <- mu B + (1 - mu) g      (PyTorch's lerp form);   D = lerp(g, B, mu) if nesterov else B
        p <- p (1 - lr wd) - adjust_lr(lr, shape) NS(D)

    For 2-d parameters only (hidden layers' weights): give biases, embeddings and the output layer
    to AdamW. PyTorch's defaults: ``lr=1e-3``, ``weight_decay=0.1``, ``momentum=0.95``,
    ``nesterov=True``, ``ns_coefficients=(3.4445, -4.775, 2.0315)``, ``eps=1e-7``, ``ns_steps=5``,
    ``adjust_lr_fn=None`` ("original"). State per parameter: ``momentum_buffer`` (no step count, as
    PyTorch's). The Newton-Schulz iteration is computed in bfloat16 precision, as PyTorch's.

    Example:
        >>> import downslope as ds
        >>> w = ds.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
        >>> opt = ds.optim.Muon([w], lr=0.1, weight_decay=0.0)
        >>> (w * w).sum().backward(); opt.step()
        >>> bool((w.detach().numpy().diagonal() < 1).all())
        True
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": tuple(ns_coefficients) if isinstance(ns_coefficients, list) else ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "momentum", "weight_decay", "eps"):
            check_nonnegative("Muon", key, group[key])
        if group["adjust_lr_fn"] not in ADJUST_LR_FNS:
            raise ArgumentError(
                f"Muon: adjust_lr_fn={group['adjust_lr_fn']!r} is not supported; expected None, 'original' or "
                "'match_rms_adamw'"
            )
        coefficients = group["ns_coefficients"]
        if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
            raise ArgumentError(f"Muon: ns_coefficients must be 3 numbers (a, b, c), got {coefficients!r}")
        steps = group["ns_steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps < 100:
            raise ArgumentError(f"Muon: invalid ns_steps={steps!r}; expected an integer in [0, 100)")
        if not all(_is_number(v) for v in coefficients):
            raise ArgumentError(f"Muon: ns_coefficients must be 3 numbers (a, b, c), got {coefficients!r}")
        for i, p in enumerate(group["params"]):
            if p.ndim != 2:
                raise ShapeError(
                    f"Muon only supports 2D parameters whereas parameter {i} of the group has shape {tuple(p.shape)}; "
                    "give biases, embeddings and other non-2D parameters to another optimizer such as AdamW"
                )

    _own_keys = frozenset({"momentum_buffer"})

    def _state_shapes(self, param: Any) -> dict[str, tuple[int, ...] | None]:
        return {"momentum_buffer": tuple(param.shape)}

    def _update(self, group: dict[str, Any], param: Any, grad: Any, state: dict[str, Any]) -> None:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = namespace_of(param).zeros_like(param)
        buf, mu, lr = state["momentum_buffer"], group["momentum"], group["lr"]
        buf[...] = torch_lerp(buf, grad, 1 - mu)
        direction = torch_lerp(grad, buf, mu) if group["nesterov"] else buf
        ortho = zeropower_via_newtonschulz(direction, group["ns_coefficients"], group["ns_steps"], group["eps"])
        param *= 1 - lr * group["weight_decay"]
        param -= adjust_lr(lr, group["adjust_lr_fn"], param.shape) * ortho.astype(param.dtype, copy=False)
