"""Padding layers against torch.nn: values and input gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from downslope import nn

torch = pytest.importorskip("torch")

CASES = [
    ("ZeroPad1d", (2,), (2, 3, 5)),
    ("ZeroPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)),
    ("ConstantPad1d", ((1, 3), 2.5), (3, 5)),
    ("ConstantPad2d", (1, -1.0), (1, 2, 3, 3)),
    ("ReflectionPad1d", ((2, 1),), (2, 3, 5)),
    ("ReflectionPad2d", (1,), (1, 2, 4, 4)),
    ("ReplicationPad1d", ((3, 0),), (2, 3, 5)),
    ("ReplicationPad2d", ((1, 2, 0, 1),), (1, 2, 4, 4)),
    ("CircularPad1d", ((1, 2),), (2, 3, 5)),
    ("CircularPad2d", (1,), (1, 2, 4, 4)),
]


@pytest.mark.parametrize(("name", "args", "shape"), CASES, ids=[c[0] + str(c[2]) for c in CASES])
def test_padding_layers_match_torch(check_op: Any, name: str, args: tuple, shape: tuple) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    check_op(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), [x])


def test_padding_is_checked() -> None:
    with pytest.raises(ValueError, match=r"padding must be one non-negative int or 4 of them, got \(1, 2\)"):
        nn.ZeroPad2d((1, 2))
