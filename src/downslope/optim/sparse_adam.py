"""SparseAdam: PyTorch's lazy Adam for embedding tables, over downslope's dense gradients.

PyTorch's ``SparseAdam`` takes the sparse gradients ``nn.Embedding(sparse=True)`` produces and
updates, in each step, only the rows the batch looked up: their moments and their values, with the
bias corrections of the parameter's step count; every other row and its moments stay as they were
(Adam would decay the moments of every row and move rows no longer looked up).

downslope has no sparse tensors: an embedding's gradient is a dense table with zeros in the rows
not looked up. So this SparseAdam takes dense gradients (PyTorch's refuses them) and updates the
rows ``nn.Embedding(sparse=True)``'s backward noted as looked up (``weight.grad_rows``, gathered
until the gradient is cleared), together with the rows (slices along dim 0; elements of a vector)
whose gradient has a non-zero entry. So a row looked up whose gradient is exactly zero (its loss
contributions cancelled) still has its moments decayed and moves, as in PyTorch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import namespace_of
from ..errors import ArgumentError
from .optimizer import OptimizerOptions, _is_number, check_betas
from .per_param import PerParameterOptimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack


def touched_rows(grad: Any) -> Any:
    """A boolean mask over ``grad``'s first dim: the slices holding a non-zero (or NaN) entry.

    Example:
        >>> import numpy as np
        >>> touched_rows(np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        array([False,  True, False])
    """
    if type(grad) is np.ndarray and grad.ndim > 1 and grad.dtype.kind == "f" and grad.flags.c_contiguous:
        # one pass over the bits, half the time of comparing to zero and reducing the booleans (the scan
        # reads the whole table each step): a slice is touched when some entry has a bit other than the
        # sign bit set (-0.0 counts as zero, NaN as non-zero, as with grad != 0)
        bits = grad.reshape(grad.shape[0], math.prod(grad.shape[1:])).view(f"u{grad.dtype.itemsize}")
        return (np.bitwise_or.reduce(bits, axis=1) << 1) != 0
    nonzero = grad != 0
    return nonzero.any(axis=tuple(range(1, grad.ndim))) if grad.ndim > 1 else nonzero


def looked_up_rows(param: Any) -> Any:
    """The rows ``nn.Embedding(sparse=True)``'s backward noted on ``param`` (a boolean mask over its
    first dim), or None when there is no note for its current gradient.

    Example:
        >>> import downslope as ds
        >>> emb = ds.nn.Embedding(3, 2, sparse=True)
        >>> emb(ds.tensor([2])).sum().backward()
        >>> looked_up_rows(emb.weight).tolist()
        [False, False, True]
    """
    note = getattr(param, "__dict__", {}).get("grad_rows")
    grad = param.grad
    if note is None or grad is None:
        return None
    if note.grad is not None and note.grad is not grad:
        return None  # a note of a gradient since replaced
    note.grad = grad
    return note.mask(param)


def sparse_adam_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    rows: Any = None,
) -> None:
    """One SparseAdam step of ``param`` in place: Adam on the rows ``touched_rows(grad)`` selects
    (and those of the boolean mask ``rows``: the rows looked up), with bias corrections of the
    parameter's step count ``state["step"]`` (already counted)::

        m[r] <- m[r] + (1 - b1) (g[r] - m[r]);   v[r] <- v[r] + (1 - b2) (g[r]^2 - v[r])
        p[r] <- p[r] - lr sqrt(1 - b2^t) / (1 - b1^t) * m[r] / (sqrt(v[r]) + eps)

    Example:
        >>> import numpy as np
        >>> p = np.ones((3, 2), np.float32)
        >>> state = {"step": 1, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        >>> sparse_adam_update(p, np.array([[0, 0], [1, -1], [0, 0]], np.float32), state, lr=0.1, beta1=0.9,
        ...                    beta2=0.999, eps=1e-8)
        >>> p.round(6)   # row 1 moves by lr against its gradient's sign, the others not at all
        array([[1. , 1. ],
               [0.9, 1.1],
               [1. , 1. ]], dtype=float32)
    """
    rows = touched_rows(grad) if rows is None else touched_rows(grad) | rows
    if type(rows) is np.ndarray:  # host: the rows' numbers once, not the mask's scan at each of the six uses
        rows = np.flatnonzero(rows)
    g = grad[rows]
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    m_old, v_old = exp_avg[rows], exp_avg_sq[rows]
    m_step = (g - m_old) * (1 - beta1)
    v_step = (g * g - v_old) * (1 - beta2)
    exp_avg[rows] = m_old + m_step
    exp_avg_sq[rows] = v_old + v_step
    t = state["step"]
    step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    xp = namespace_of(param)
    param[rows] = param[rows] + -step_size * ((m_step + m_old) / (xp.sqrt(v_step + v_old) + eps))


class SparseAdam(PerParameterOptimizer):
    """Lazy Adam for embedding tables: each step updates only the rows that received a gradient.

    PyTorch's defaults: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``maximize=False``.
    Unlike PyTorch's it takes downslope's dense gradients: the rows updated are those
    ``nn.Embedding(sparse=True)`` looked up since the gradient was last cleared, and any row with a
    non-zero gradient (see the module docstring). State per
    parameter: ``step`` (counted at every step the parameter has a gradient, as PyTorch's),
    ``exp_avg`` and ``exp_avg_sq`` shaped like the parameter.

    Example:
        >>> import downslope as ds
        >>> emb = ds.nn.Embedding(4, 2, sparse=True)
        >>> opt = ds.optim.SparseAdam(emb.parameters(), lr=0.1)
        >>> before = emb.weight.detach().numpy().copy()
        >>> emb(ds.tensor([1, 3])).sum().backward(); opt.step()
        >>> (emb.weight.detach().numpy() != before).any(axis=1).tolist()
        [False, True, False, True]
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas) if isinstance(betas, list) else betas,
            "eps": eps,
            "maximize": maximize,
        }
        self._tensors: dict[int, Any] = {}
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps"):  # PyTorch's SparseAdam refuses zero for both
            value = group[key]
            if not _is_number(value) or not value > 0 or not math.isfinite(value):
                raise ArgumentError(f"SparseAdam: invalid {key}={value!r}; expected a finite number > 0")
        check_betas("SparseAdam", group["betas"])

    def step(self, closure: Any = None) -> Any:
        """Update every parameter that has a gradient (the rows looked up or with a non-zero gradient)."""
        # _update sees the parameters' arrays: it finds each one's tensor (and its note) here
        self._tensors = {id(p.array): p for group in self.param_groups for p in group["params"]}
        try:
            return super().step(closure)
        finally:
            self._tensors = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients and the notes of the rows looked up that went with them."""
        for group in self.param_groups:
            for p in group["params"]:
                getattr(p, "__dict__", {}).pop("grad_rows", None)
        super().zero_grad(set_to_none)

    _own_keys = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def _state_shapes(self, param: Any) -> dict[str, tuple[int, ...] | None]:
        shape = tuple(param.shape)
        return {"step": None, "exp_avg": shape, "exp_avg_sq": shape}

    def _update(self, group: dict[str, Any], param: Any, grad: Any, state: dict[str, Any]) -> None:
        if not state:
            xp = namespace_of(param)
            state.update(step=0, exp_avg=xp.zeros_like(param), exp_avg_sq=xp.zeros_like(param))
        state["step"] += 1
        beta1, beta2 = group["betas"]
        tensor = getattr(self, "_tensors", {}).get(id(param))
        sparse_adam_update(
            param,
            -grad if group["maximize"] else grad,
            state,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            rows=None if tensor is None else looked_up_rows(tensor),
        )
