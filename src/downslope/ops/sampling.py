"""Sampling from a tensor of probabilities (multinomial)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..devices import like, to_host
from ..errors import InvalidValueError
from ..tensor import Tensor, wrap_array
from .operands import _lift


def multinomial(probs: Any, num_samples: int, replacement: bool = False, *, generator: Any = None) -> Tensor:
    """Indices drawn from each row's (unnormalised) probabilities, from the library's seeded generator
    (or ``generator``)."""
    if generator is not None:
        from ..generator import as_numpy_generator

        with backend.use_generator(as_numpy_generator(generator, "multinomial")):
            return multinomial(probs, num_samples, replacement)
    # Draws come from the host generator (the same numbers on every device), so the probabilities go to the host.
    probs_array = _lift(probs).array
    p = to_host(probs_array).astype(np.float64)
    rows = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    if (rows < 0).any() or not np.isfinite(rows).all():
        bad = rows[~(np.isfinite(rows) & (rows >= 0))]
        # torch raises RuntimeError here, which InvalidValueError is too
        raise InvalidValueError(
            "multinomial: probability tensor contains either `inf`, `nan` or element < 0 (expected finite, "
            f"non-negative probabilities; got {bad.size} such, the first {bad[0]})"
        )
    rng = backend.rng()
    out = []
    for row in rows:
        total = row.sum()
        if total <= 0:
            raise InvalidValueError(
                f"multinomial: invalid multinomial distribution (sum of probabilities <= 0): a row sums to {total}"
            )
        if not replacement and num_samples > np.count_nonzero(row):
            raise InvalidValueError(f"multinomial: cannot draw {num_samples} samples without replacement from this row")
        out.append(rng.choice(row.size, size=num_samples, replace=replacement, p=row / total))
    result = np.asarray(out, np.int64)  # host: drawn on the host, copied to the probabilities' device below
    result = result.reshape(p.shape[:-1] + (num_samples,)) if p.ndim > 1 else result.reshape(num_samples)
    return wrap_array(like(result, probs_array))
