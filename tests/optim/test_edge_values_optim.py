"""Optimizer steps after non-finite or overflowing gradients, against torch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

INF, NAN = math.inf, math.nan


def _run(m: Any, make: Any, start: list[float], grads: list[list[float]], dtype: Any = None) -> list[list[float]]:
    p = m.nn.Parameter(m.tensor(start, dtype=dtype if dtype is not None else m.float32))
    opt = make(m, p)
    seen = []
    for g in grads:
        p.grad = m.tensor(g, dtype=p.dtype)
        opt.step()
        seen.append(p.detach().numpy().astype(np.float64).tolist())
    return seen


CASES = [
    # torch's sign(NaN) is 0: that coordinate does not move (NumPy's sign is NaN: NaN for good)
    ("Rprop NaN gradient", lambda m, p: m.optim.Rprop([p], lr=0.1), [1.0, 0.5], [[NAN, 1.0], [1.0, 1.0], [1.0, 1.0]]),
    # torch's fused addcmul keeps inf - (1e28)**2 at inf, so the step is 0
    (
        "RMSprop centered 1e30",
        lambda m, p: m.optim.RMSprop([p], lr=0.1, centered=True),
        [0.5, 0.5],
        [[1e30, 1.0], [0.1, 1.0]],
    ),
    (
        "RMSprop centered momentum 1e30",
        lambda m, p: m.optim.RMSprop([p], lr=0.1, centered=True, momentum=0.5),
        [0.5, 0.5],
        [[1e30, 1.0], [0.1, 1.0]],
    ),
    # torch shrinks the parameter first (p *= 1 - lambd * eta): -inf stays -inf on the next step
    ("ASGD inf gradient", lambda m, p: m.optim.ASGD([p], lr=0.1), [0.5, 0.5], [[INF, 1.0], [0.1, 1.0]]),
    (
        "AdamW decoupled decay after -inf",
        lambda m, p: m.optim.AdamW([p], lr=0.1, weight_decay=0.1),
        [0.5, 0.5],
        [[INF, 1.0], [0.1, 1.0]],
    ),
]


@pytest.mark.parametrize("name,make,start,grads", CASES, ids=[c[0] for c in CASES])
def test_steps_after_non_finite_gradients_match_torch(
    name: str, make: Any, start: list[float], grads: list[list[float]]
) -> None:
    # torch's default on the CPU, the single-tensor loop (its foreach ASGD gives NaN here instead)
    expected = _run(torch, make, start, grads)
    actual = _run(ds, make, start, grads)
    np.testing.assert_allclose(actual, expected, rtol=2e-6, equal_nan=True)


def test_adamw_float16_step_to_minus_inf_stays_minus_inf_as_torch() -> None:
    # v underflows to 0 in float16 and eps too: the step is -inf; torch's decay p *= 1 - lr * wd keeps
    # -inf on the next step, where an added decay term made inf - inf
    grads = [[1e-4, 1.0], [1e-4, 1.0]]

    def make(m: Any, p: Any) -> Any:
        return m.optim.AdamW([p], lr=1e-3)

    expected = _run(torch, make, [1.0, 1.0], grads, torch.float16)
    actual = _run(ds, make, [1.0, 1.0], grads, ds.float16)
    np.testing.assert_array_equal(actual, expected)
