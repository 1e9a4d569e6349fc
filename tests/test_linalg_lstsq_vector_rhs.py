"""linalg.lstsq with a right-hand side one dim short of A, against torch 2.13: B is a (batch of) vector(s)
when it is 1-D or shaped as A without its last dim; another B one dim short is a matrix whose batch torch
broadcasts as ``B.shape[:-1]`` with A's (so A (1, 5, 3) with B (5, 2) solves 5 times). Refusals are
RuntimeErrors in both, and downslope's say which reading of B it made. Rank and singular values are A's
own (A's batch, not the broadcast one), as torch's."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_SHAPES = [
    ((5, 3), (5,)),
    ((2, 5, 3), (2, 5)),
    ((4, 4, 4), (4, 4)),
    ((2, 1, 5, 3), (2, 1, 5)),
    ((5, 5, 3), (5, 1)),
    ((1, 5, 3), (5, 2)),
    ((1, 5, 3), (5, 5)),
    ((2, 1, 5, 3), (1, 5, 1)),
    ((1, 5, 3), (2, 5, 2)),
    ((2, 5, 3), (1, 5, 1)),
    # refused by both
    ((2, 5, 3), (5,)),
    ((2, 5, 3), (5, 1)),
    ((2, 4, 3), (4, 4)),
    ((4, 3), (3,)),
    ((5, 3), (2, 5)),
    ((1, 5, 3), (3, 5)),
    ((3, 1, 5, 3), (2, 5, 1)),
]


@pytest.mark.parametrize("driver", ["gelsy", "gelsd"])
@pytest.mark.parametrize(("a_shape", "b_shape"), _SHAPES)
def test_lstsq_with_b_one_dim_short_answers_as_torch(a_shape, b_shape, driver: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    try:
        want = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="linalg.lstsq: "):
            ds.linalg.lstsq(ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64), driver=driver)
        return
    got = ds.linalg.lstsq(ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64), driver=driver)
    assert got.solution.shape == tuple(want.solution.shape)
    np.testing.assert_allclose(got.solution.numpy(), want.solution.numpy(), rtol=1e-9, atol=1e-10)
    assert got.residuals.shape == tuple(want.residuals.shape)
    np.testing.assert_allclose(got.residuals.numpy(), want.residuals.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(got.rank.numpy(), want.rank.numpy())


def test_a_refused_b_says_how_it_was_read() -> None:
    with pytest.raises(
        RuntimeError,
        match=r"batch dims of A \(2, 5, 3\) and B \(5, 1\) do not broadcast \(\(2,\) and \(5,\).*B.shape\[:-1\]",
    ):
        ds.linalg.lstsq(ds.ones(2, 5, 3), ds.ones(5, 1))
    with pytest.raises(RuntimeError, match=r"A has 4 rows but B's last dim is 3 .*vector right-hand side"):
        ds.linalg.lstsq(ds.ones(4, 3), ds.ones(3))


def test_the_vector_solution_has_the_gradient_of_the_pseudo_inverse() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5))
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True), ds.tensor(b, dtype=ds.float64, requires_grad=True)]
    theirs = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    ds.linalg.lstsq(*ours).solution.pow(2).sum().backward()
    torch.linalg.lstsq(*theirs).solution.pow(2).sum().backward()
    for x, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)
