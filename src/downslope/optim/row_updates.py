"""The optimizers' path for gradients held as rows + values (``Embedding(sparse=True)``).

A step that reads such a gradient as a dense array makes a table of zeros and scans all of it; as
PyTorch's optimizers touch only the rows of a sparse gradient, ``SparseAdam``, plain ``SGD`` and
``Adagrad`` take those parameters apart (:func:`rows_apart`), update the rows from the coalesced values, and
run their usual step on the other parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import jit_gate
from ..row_grads import RowGrad, rows_of

_KERNELS = "downslope.optim._jit_updates"


@contextmanager
def rows_apart(groups: list[dict[str, Any]], wanted: Any) -> Iterator[list[tuple[int, int, Any, RowGrad]]]:
    """Yield (group index, index in group, parameter, rows) for each parameter of a group that
    ``wanted(group)`` accepts whose gradient is still rows + values; their ``.grad`` reads as None
    inside the block (so the optimizer's usual step skips them) and is put back at its end."""
    apart = []
    for gi, group in enumerate(groups):
        if not wanted(group):
            continue
        for pi, p in enumerate(group["params"]):
            note = rows_of(p._grad)
            if note is not None:
                apart.append((gi, pi, p, note))
    held = [p._grad for _, _, p, _ in apart]
    for _, _, p, _ in apart:
        p._grad = None  # the slot: None needs none of the setter's checks
    try:
        yield apart
    finally:
        for (_, _, p, _), grad in zip(apart, held):
            p._grad = grad


def add_rows(param: Any, note: RowGrad, alpha: float) -> None:
    """``param += alpha * gradient`` for the gradient ``note`` held as rows (plain SGD: only the rows
    looked up move), as PyTorch's ``p.add_(sparse_grad, alpha=alpha)``.

    Example:
        >>> import numpy as np
        >>> p = np.zeros((3, 1), np.float32)
        >>> add_rows(p, RowGrad((3, 1), np.float32, [np.array([2, 2])], [np.ones((2, 1), np.float32)]), -0.5)
        >>> p.ravel().tolist()
        [0.0, 0.0, -1.0]
    """
    kernels = jit_gate.kernels(_KERNELS, param, *note.rows, *note.values) if param.ndim == 2 else None
    if kernels is not None:
        for r, v in zip(note.rows, note.values):  # in order, repeats and all: no sort to make the rows distinct
            kernels.add_rows_(param, r, np.ascontiguousarray(v, dtype=param.dtype), param.dtype.type(alpha))
        return
    rows, values = note.coalesced()
    param[rows] += (values * alpha).astype(param.dtype, copy=False)


def adam_rows_kernel(param: Any, rows: Any, g: Any, *arrays: Any) -> Any:
    """The compiled SparseAdam row update for these host arrays (a 2-D table), or None."""
    if param.ndim != 2 or g.dtype != param.dtype:
        return None
    kernels = jit_gate.kernels(_KERNELS, param, rows, g, *arrays)
    return None if kernels is None else kernels.adam_rows_
