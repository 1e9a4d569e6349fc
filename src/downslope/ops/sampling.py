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
        if replacement:
            out.append(rng.choice(row.size, size=num_samples, replace=True, p=row / total))
        elif num_samples > row.size:
            raise InvalidValueError(
                f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                f"(asked for {num_samples} from a row of {row.size})"
            )
        else:
            out.append(draw_without_replacement(rng, row, num_samples))
    result = np.asarray(out, np.int64)  # host: drawn on the host, copied to the probabilities' device below
    result = result.reshape(p.shape[:-1] + (num_samples,)) if p.ndim > 1 else result.reshape(num_samples)
    return wrap_array(like(result, probs_array))


def draw_without_replacement(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices of ``weights`` (host, non-negative, ``k <= weights.size``): the ones with
    non-zero weight first, drawn by weight, then, as torch does when they run out, zero-weight
    indices in uniform random order (torch returns them rather than raising)."""
    nonzero = np.flatnonzero(weights)
    if k <= nonzero.size:
        return rng.choice(weights.size, size=k, replace=False, p=weights / weights.sum())
    first = rng.choice(nonzero, size=nonzero.size, replace=False, p=weights[nonzero] / weights[nonzero].sum())
    rest = rng.permutation(np.flatnonzero(weights == 0))[: k - nonzero.size]
    return np.concatenate([first, rest])
