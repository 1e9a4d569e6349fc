"""Padding modules with negative widths crop that side, as PyTorch's do: values and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import nn

torch = pytest.importorskip("torch")

KINDS = ["Zero", "Constant", "Reflection", "Replication", "Circular"]
PADDINGS = {
    1: [-1, (-1, 2), (2, -3), (-2, 0)],
    2: [-1, (-1, 2, 0, -2), (2, -3, -1, 1), (0, 0, -2, -1)],
    3: [-1, (-1, 2, 0, -2, 1, -1), (2, -3, -1, 1, -2, 0), (0, -1, 0, 0, -1, -1)],
}


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dims", "padding"), [(d, p) for d, ps in PADDINGS.items() for p in ps], ids=str)
def test_negative_padding_crops_as_torch_in_float64(
    check_op: Any, dims: int, padding: Any, kind: str, batched: bool
) -> None:
    args = (padding, 1.5) if kind == "Constant" else (padding,)
    ours, theirs = getattr(nn, f"{kind}Pad{dims}d")(*args), getattr(torch.nn, f"{kind}Pad{dims}d")(*args)
    shape = (2, 3, 4, 5, 6)[3 - dims + (0 if batched else 1) :]
    x = np.random.default_rng(dims).standard_normal(shape)
    check_op(ours, theirs, [x])


def test_a_crop_to_nothing_is_empty_as_torch() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for kind in ("Zero", "Circular"):
        ours = getattr(nn, f"{kind}Pad1d")((-2, -2))(ds.tensor(x))
        assert ours.shape == tuple(getattr(torch.nn, f"{kind}Pad1d")((-2, -2))(torch.tensor(x)).shape) == (2, 3, 0)


def test_padding_that_is_not_ints_is_refused() -> None:
    with pytest.raises(ValueError, match=r"padding must be one int or 4 of them, got \(1, 2\)"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match="padding must be one int or 2 of them"):
        nn.ReflectionPad1d((1.5, 1))
    assert repr(nn.ZeroPad2d((-1, 0, 2, -2))) == repr(torch.nn.ZeroPad2d((-1, 0, 2, -2)))
