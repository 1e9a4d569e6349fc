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
    with pytest.raises(ValueError, match=r"padding must be one int or 4 of them, got \(1, 2\)"):
        nn.ZeroPad2d((1, 2))


def test_padding_layers_refuse_what_torch_refuses() -> None:
    torch = pytest.importorskip("torch")
    import downslope as ds

    cases = [
        (nn.ReflectionPad1d(3), torch.nn.ReflectionPad1d(3), (1, 1, 3), "reflect padding size should be less"),
        (nn.CircularPad1d(4), torch.nn.CircularPad1d(4), (1, 1, 3), "wraps around more than once"),
        (nn.ReflectionPad2d(1), torch.nn.ReflectionPad2d(1), (3, 3), "ReflectionPad2d: expected a 3-d"),
        (nn.ReplicationPad2d(1), torch.nn.ReplicationPad2d(1), (3, 3), "ReplicationPad2d: expected a 3-d"),
        (nn.ReplicationPad1d(2), torch.nn.ReplicationPad1d(2), (1, 1, 0), "size 0"),
    ]
    for mine, theirs, shape, message in cases:
        with pytest.raises((RuntimeError, NotImplementedError)):
            theirs(torch.zeros(shape))
        with pytest.raises(ds.DownslopeError, match=message):
            mine(ds.zeros(*shape))
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(3, 4, 3, padding=4, padding_mode="reflect")(torch.randn(1, 3, 3, 3))
    with pytest.raises(ds.errors.ArgumentError, match="reflect padding"):
        nn.Conv2d(3, 4, 3, padding=4, padding_mode="reflect")(ds.randn(1, 3, 3, 3))
    a = np.arange(3, dtype=np.float32).reshape(1, 1, 3)
    np.testing.assert_array_equal(
        nn.CircularPad1d(3)(ds.tensor(a)).numpy(), torch.nn.CircularPad1d(3)(torch.tensor(a)).numpy()
    )
    np.testing.assert_array_equal(
        nn.ReflectionPad1d(2)(ds.tensor(a)).numpy(), torch.nn.ReflectionPad1d(2)(torch.tensor(a)).numpy()
    )
