"""Loss arguments PyTorch refuses with RuntimeError: downslope's errors are RuntimeErrors too (an
``except RuntimeError:`` written against torch catches them), and stay the ValueError / TypeError they
were (downslope code that catches those keeps working)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_X = np.random.default_rng(0).standard_normal((4, 3))
_Y = np.array([0, 2, 1, 2])

_CASES: list[tuple[str, Callable[[Any], Any], type]] = [
    (
        "cross_entropy_loss_label_smoothing_above_one",
        lambda L: L.nn.CrossEntropyLoss(label_smoothing=1.5)(L.tensor(_X, dtype=L.float32), L.tensor(_Y)),
        ValueError,
    ),
    (
        "functional_cross_entropy_label_smoothing_above_one",
        lambda L: L.nn.functional.cross_entropy(L.tensor(_X, dtype=L.float32), L.tensor(_Y), label_smoothing=1.5),
        ValueError,
    ),
    (
        "nll_loss_float_class_indices",
        lambda L: L.nn.NLLLoss()(L.tensor(_X, dtype=L.float32), L.tensor(_Y, dtype=L.float32)),
        TypeError,
    ),
    (
        "huber_loss_negative_delta",
        lambda L: L.nn.HuberLoss(delta=-1.0)(L.tensor(_X, dtype=L.float32), L.tensor(_X, dtype=L.float32)),
        ValueError,
    ),
    (
        "smooth_l1_loss_negative_beta",
        lambda L: L.nn.SmoothL1Loss(beta=-1.0)(L.tensor(_X, dtype=L.float32), L.tensor(_X, dtype=L.float32)),
        ValueError,
    ),
]


@pytest.mark.parametrize(("name", "call", "kept"), _CASES, ids=[c[0] for c in _CASES])
def test_raises_runtime_error_as_torch_and_keeps_its_class(name: str, call: Callable[[Any], Any], kept: type) -> None:
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(RuntimeError) as caught:
        call(ds)
    assert isinstance(caught.value, kept), type(caught.value).__mro__
    assert isinstance(caught.value, ds.errors.DownslopeError)
