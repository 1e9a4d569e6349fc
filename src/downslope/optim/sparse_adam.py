"""SparseAdam: PyTorch's lazy Adam for embedding tables, over downslope's dense gradients.

PyTorch's ``SparseAdam`` takes the sparse gradients ``nn.Embedding(sparse=True)`` produces and
updates, in each step, only the rows the batch looked up: their moments and their values, with the
bias corrections of the parameter's step count; every other row and its moments stay as they were
(Adam would decay the moments of every row and move rows no longer looked up).

downslope has no sparse tensors. An ``nn.Embedding(sparse=True)`` gradient is held as the rows
looked up and their values (``row_grads.RowGrad``) until something reads it as a dense tensor:
while it is, this SparseAdam coalesces them (as PyTorch's does) and updates exactly those rows,
never reading the table-sized gradient. It also takes dense gradients (PyTorch's refuses them)
and then updates the rows ``nn.Embedding(sparse=True)``'s backward noted as looked up
(``weight.grad_rows``, gathered until the gradient is cleared), together with the rows (slices
along dim 0; elements of a vector) whose gradient has a non-zero entry. Either way a row looked
up whose gradient is exactly zero (its loss contributions cancelled) still has its moments
decayed and moves, as in PyTorch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import no_grad
from ..backend import namespace_of
from ..errors import ArgumentError
from ..tensor import mark_written
from .optimizer import OptimizerOptions, _is_number, check_betas
from .per_param import PerParameterOptimizer
from .row_updates import adam_rows_kernel, rows_apart

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
    adam_rows(param, rows, grad[rows], state, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def adam_rows(
    param: Any, rows: Any, g: Any, state: dict[str, Any], *, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    """SparseAdam's update of the rows ``rows`` (distinct indices) of ``param`` whose gradient rows
    are ``g``, in place (see :func:`sparse_adam_update`).

    Example:
        >>> import numpy as np
        >>> p = np.ones((3, 2), np.float32)
        >>> state = {"step": 1, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        >>> adam_rows(p, np.array([1]), np.array([[1, -1]], np.float32), state, lr=0.1, beta1=0.9,
        ...           beta2=0.999, eps=1e-8)
        >>> p[1].round(6)
        array([0.9, 1.1], dtype=float32)
    """
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    t = state["step"]
    step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    kernel = adam_rows_kernel(param, rows, g, exp_avg, exp_avg_sq)
    if kernel is not None:  # one pass over the rows (NumPy's path gathers and scatters each array)
        kind = param.dtype.type
        kernel(param, exp_avg, exp_avg_sq, rows, np.ascontiguousarray(g), kind(1 - beta1), kind(1 - beta2), kind(eps),
               kind(step_size))  # fmt: skip
        return
    m_old, v_old = exp_avg[rows], exp_avg_sq[rows]
    m_step = (g - m_old) * (1 - beta1)
    v_step = (g * g - v_old) * (1 - beta2)
    exp_avg[rows] = m_old + m_step
    exp_avg_sq[rows] = v_old + v_step
    xp = namespace_of(param)
    param[rows] = param[rows] + -step_size * ((m_step + m_old) / (xp.sqrt(v_step + v_old) + eps))


class SparseAdam(PerParameterOptimizer):
    """Lazy Adam for embedding tables: each step updates only the rows that received a gradient.

    PyTorch's defaults: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``maximize=False``.
    The rows updated are those ``nn.Embedding(sparse=True)`` looked up since the gradient was last
    cleared (read from the gradient held as rows, without scanning the table) and, for a dense
    gradient, any row with a non-zero gradient (see the module docstring). State per
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
        clipping = self.clip_value is not None or self.clip_norm is not None or self.error_if_nonfinite
        if closure is not None or clipping:  # the gradients come later, or clipping reads them all: dense
            return self._dense_step(closure)
        # gradients still held as rows (Embedding(sparse=True)): Adam on those rows, as PyTorch's on its
        # sparse gradient, without the table-sized scan; the other parameters take the dense step
        with rows_apart(self.param_groups, lambda group: True) as apart:
            self._dense_step(None)
        with no_grad():
            for gi, pi, p, note in apart:
                group, state = self.param_groups[gi], self._per_param[gi][pi]
                rows, values = note.coalesced()
                self._start(p.array, state, group)
                beta1, beta2 = group["betas"]
                adam_rows(p.array, rows, -values if group["maximize"] else values, state, lr=group["lr"],
                          beta1=beta1, beta2=beta2, eps=group["eps"])  # fmt: skip
        mark_written([p for _, _, p, _ in apart])
        return None

    def _dense_step(self, closure: Any) -> Any:
        # _update sees the parameters' arrays: it finds each one's tensor (and its note) here
        self._tensors = {id(p.array): p for group in self.param_groups for p in group["params"]}
        try:
            return super().step(closure)
        finally:
            self._tensors = {}

    def _start(self, param: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Make the state the parameter lacks (all of it at its first step), then count the step."""
        self._fill_state(param, state)
        state["step"] += 1

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
        self._start(param, state, group)
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
