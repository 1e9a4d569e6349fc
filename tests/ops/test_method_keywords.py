"""Tensor methods take torch's ``other=`` keyword for their operand, as the top-level functions do."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

FLOAT_OPS = [
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "fmax", "fmin", "maximum", "minimum", "atan2",
    "arctan2", "hypot", "copysign", "logaddexp", "logaddexp2", "xlogy", "nextafter", "igamma", "igammac", "eq",
    "lt", "ge", "logical_xor", "vdot", "inner", "kron", "true_divide", "subtract", "multiply", "divide",
]  # fmt: skip
INT_OPS = ["gcd", "lcm", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"]


@pytest.mark.parametrize("name", FLOAT_OPS + INT_OPS)
@pytest.mark.parametrize("in_place", [False, True])
def test_a_methods_operand_can_be_named_other_as_in_torch(name: str, in_place: bool) -> None:
    x, y = ([1.5, 2.0, 3.0], [0.5, 2.5, 3.0]) if name in FLOAT_OPS else ([4, 6, 9], [6, 4, 1])
    method = name + "_" if in_place else name
    if not hasattr(torch.Tensor, method) or (in_place and name in ("vdot", "inner", "kron", "eq", "lt", "ge")):
        pytest.skip("torch has no such in-place method")
    ours = getattr(ds.tensor(x), method)(other=ds.tensor(y))
    theirs = getattr(torch.tensor(x), method)(other=torch.tensor(y))
    np.testing.assert_allclose(np.asarray(ours.tolist(), float), np.asarray(theirs.tolist(), float), rtol=1e-6)


def test_other_with_alpha_and_a_number_and_the_errors_of_two_spellings() -> None:
    x = ds.tensor([1.0, 2.0])
    assert x.sub(other=ds.tensor([1.0, 1.0]), alpha=2).tolist() == [-1.0, 0.0]
    assert x.mul(other=2).tolist() == [2.0, 4.0]
    assert x.atan2(other=1.0).shape == (2,)
    with pytest.raises(TypeError, match="multiple values"):
        x.atan2(x, other=x)
