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
    totals = rows.sum(axis=1)
    if (totals <= 0).any():
        raise InvalidValueError(
            "multinomial: invalid multinomial distribution (sum of probabilities <= 0): a row sums to "
            f"{totals[totals <= 0][0]}"
        )
    if not replacement and num_samples > rows.shape[1]:
        raise InvalidValueError(
            f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
            f"(asked for {num_samples} from a row of {rows.shape[1]})"
        )
    rng = backend.rng()
    drawn = _draw_with_replacement(rng, rows, num_samples) if replacement else _draw_distinct(rng, rows, num_samples)
    result = drawn.astype(np.int64)  # host: drawn on the host, copied to the probabilities' device below
    result = result.reshape(p.shape[:-1] + (num_samples,)) if p.ndim > 1 else result.reshape(num_samples)
    return wrap_array(like(result, probs_array))


def _draw_with_replacement(rng: np.random.Generator, rows: np.ndarray, k: int) -> np.ndarray:
    """``k`` draws from each row at once: one uniform number per draw, looked up in the rows' cumulative
    sums laid end to end (row r's shifted by r), so a batch of rows costs one searchsorted, not a loop."""
    # host arrays throughout: draws come from the host generator (see multinomial)
    n_rows, n = rows.shape
    cdf = np.cumsum(rows, axis=1)
    cdf /= cdf[:, -1:]  # the last entry exactly 1.0, so a draw never leaves its row
    offsets = np.arange(n_rows, dtype=np.float64)[:, None]  # host: row shifts of host sums
    u = rng.random((n_rows, k))
    # side="right" skips zero-probability entries: their cumulative sum equals the one before
    flat = np.searchsorted((cdf + offsets).ravel(), (u + offsets).ravel(), side="right")
    rows_at = np.arange(n_rows)[:, None]  # host: row numbers of host draws
    drawn = np.minimum(flat.reshape(n_rows, k) - rows_at * n, n - 1)
    # r + u can round up to r + 1 (and shifted sums lose low bits in late rows): those rare draws are
    # looked up again in their own row, where u < 1.0 == the last sum keeps them inside it
    for r, j in zip(*np.nonzero(rows[rows_at, drawn] == 0), strict=True):
        drawn[r, j] = np.searchsorted(cdf[r], u[r, j], side="right")
    return drawn


def _draw_distinct(rng: np.random.Generator, rows: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices per row, drawn in order by weight (successive sampling without replacement,
    as torch's multinomial): each index gets the key E/w with E ~ Exponential(1) and the k smallest keys
    win (Efraimidis and Spirakis). Zero-weight indices have key inf and come last, in random order, as
    torch returns them when the non-zero ones run out."""
    with np.errstate(divide="ignore"):
        keys = rng.standard_exponential(rows.shape) / rows
    if k < rows.shape[1] and k <= np.count_nonzero(rows, axis=1).min():  # the k smallest keys are finite
        smallest = np.argpartition(keys, k - 1, axis=-1)[:, :k]
        return np.take_along_axis(smallest, np.argsort(np.take_along_axis(keys, smallest, -1), -1), -1)
    return np.lexsort((rng.random(rows.shape), keys), axis=-1)[:, :k]  # the zero weights' inf keys: random order


def draw_without_replacement(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices of the 1-D host ``weights`` (non-negative, ``k <= weights.size``): the
    non-zero ones first, drawn by weight, then the zero-weight ones in random order (as torch)."""
    return _draw_distinct(rng, weights[None, :].astype(np.float64), k)[0]
