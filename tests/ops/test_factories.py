"""Factories (downslope.ops.factories) against PyTorch: the deprecated ``range`` with an integer dtype."""

from __future__ import annotations

import warnings

import pytest

import downslope as ds
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "bounds",
    [(0.5, -1, -1), (0.5, 3, 1), (-0.5, 2, 1), (-2.5, 2, 1.2), (0, 5, 2), (5, 0, -2), (-7, 7, 3), (1, 1, 1),
     (0.7, 3.2, 1.9), (1.5, -2, -1.5), (0.3, -0.5, -1)],
)  # fmt: skip
@pytest.mark.parametrize("dtype", ["int64", "int32", "float32", "float64"])
def test_range_casts_bounds_to_an_integer_dtype_first_as_torch(bounds, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = ds.range(*bounds, dtype=getattr(ds, dtype))
        theirs = torch.range(*bounds, dtype=getattr(torch, dtype))
    assert ours.tolist() == pytest.approx(theirs.tolist()) and str(ours.dtype) == dtype


def test_range_refuses_steps_that_vanish_and_bounds_against_the_step():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # torch divides by the zero that 0.5 becomes (a crash there): here a one-line error
        with pytest.raises(ArgumentError, match="step must be nonzero"):
            ds.range(0, 3, 0.5, dtype=ds.int64)
        for m, error in ((ds, ArgumentError), (torch, RuntimeError)):
            with pytest.raises(error, match="inconsistent with step sign"):
                m.range(0.5, -0.3, 1, dtype=m.int64)  # checked before the cast
