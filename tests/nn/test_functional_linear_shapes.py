"""F.linear's shapes beyond (out, in) weights and (out,) biases, as torch takes them: a vector of
weights (x @ w, the last dim dropped) and biases that broadcast to the output; other shapes refused."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")

CASES = [
    ((4, 3), (3,), None),
    ((3,), (3,), None),
    ((2, 4, 3), (3,), None),
    ((4, 3), (5, 3), ()),
    ((4, 3), (5, 3), (1,)),
    ((4, 3), (5, 3), (4, 5)),
    ((4, 3), (5, 3), (4, 1)),
    ((2, 4, 3), (5, 3), (4, 5)),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "b_shape"), CASES)
def test_linear_shapes_match_torch(x_shape, w_shape, b_shape) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape)] + (
        [] if b_shape is None else [rng.standard_normal(b_shape)]
    )
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.linear(*ours)
    ty = torch.nn.functional.linear(*theirs)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    cot = rng.standard_normal(tuple(ty.shape))
    (y * ds.tensor(cot, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(cot)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_refuses_what_torch_refuses() -> None:
    with pytest.raises(ShapeError, match="weight must be 2-D"):
        F.linear(ds.ones(4, 3), ds.ones(3), ds.ones(1))  # torch: a vector of weights takes no bias
    with pytest.raises(ShapeError, match="does not broadcast"):
        F.linear(ds.ones(4, 3), ds.ones(5, 3), ds.ones(3, 5))
    with pytest.raises(ShapeError):
        F.linear(ds.ones(4, 2), ds.ones(3))
