"""Edge values of bernoulli's probabilities and vector_norm over empty dims, against torch."""

from __future__ import annotations

import math
from typing import Any

import pytest

import downslope as ds
from downslope.errors import InvalidValueError, ShapeError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.bernoulli(m.tensor([0.5, 1.5])),
        lambda m: m.bernoulli(m.tensor([-0.5])),
        lambda m: m.bernoulli(m.tensor([math.nan])),
        lambda m: m.bernoulli(m.zeros(2), 1.5),
        lambda m: m.zeros(2).bernoulli_(1.5),
        lambda m: m.zeros(2).bernoulli_(m.tensor([0.5, 2.0])),
    ],
    ids=["tensor 1.5", "tensor -0.5", "tensor NaN", "p=1.5", "bernoulli_ 1.5", "bernoulli_ tensor 2"],
)
def test_bernoulli_refuses_probabilities_outside_0_1_as_torch(call: Any) -> None:
    # a draw against 1.5 is always 1: a silently wrong sample
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(InvalidValueError):
        call(ds)


def test_bernoulli_at_the_ends_of_0_1() -> None:
    assert ds.bernoulli(ds.tensor([0.0, 1.0, 1.0])).tolist() == [0.0, 1.0, 1.0]
    assert ds.zeros(3).bernoulli_(1.0).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "shape,ord_,dim",
    [((2, 0), math.inf, 1), ((2, 0), -math.inf, 1), ((0, 3), math.inf, None), ((0, 3), math.inf, 0), ((2, 0), -1.0, 1)],
)
def test_vector_norm_without_identity_over_an_empty_dim_is_a_runtime_error_as_torch(
    shape: tuple[int, ...], ord_: float, dim: Any
) -> None:
    with pytest.raises(RuntimeError, match="does not have an identity"):
        torch.linalg.vector_norm(torch.ones(*shape), ord_, dim)
    with pytest.raises(ShapeError, match="does not have an identity"):
        ds.linalg.vector_norm(ds.ones(*shape), ord_, dim)


@pytest.mark.parametrize("ord_", [math.inf, -math.inf, -1.0, 2.0])
def test_vector_norm_over_a_non_empty_dim_of_an_empty_tensor_is_empty_as_torch(ord_: float) -> None:
    expected = torch.linalg.vector_norm(torch.ones(0, 3), ord_, 1)
    actual = ds.linalg.vector_norm(ds.ones(0, 3), ord_, 1)
    assert tuple(actual.shape) == tuple(expected.shape) == (0,)
