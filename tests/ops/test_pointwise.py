"""Pointwise ops (downslope.ops.pointwise) against PyTorch: result dtypes of mixed categories."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("bounds", [(1.5, 3.5), (1, 3.5), (1.5, None), (None, 0.5), (1, 3), (np.float64(1.5), None)])
@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
def test_clamp_of_an_integer_tensor_with_number_bounds_promotes_like_torch(bounds, dtype):
    data = [5, 2, 0] if dtype != "bool" else [True, False, True]
    lo, hi = bounds
    if dtype == "bool" and isinstance(lo, int) and isinstance(hi, int):
        pytest.skip("torch refuses an integer clamp of bool")
    ref = torch.clamp(torch.tensor(data, dtype=getattr(torch, dtype)), lo, hi)
    got = ds.clamp(ds.tensor(data, dtype=getattr(ds, dtype)), lo, hi)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    got = ds.tensor(data, dtype=getattr(ds, dtype)).clip(lo, hi)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")


def test_where_refuses_a_non_boolean_condition_tensor_as_torch() -> None:
    torch = pytest.importorskip("torch")
    cond = np.array([0.5, 0.0, -2.0], np.float32)
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor(cond), torch.ones(3), torch.zeros(3))
    with pytest.raises(ds.errors.ArgumentTypeError, match="where: expected a boolean condition, got dtype float32"):
        ds.where(ds.tensor(cond), ds.ones(3), ds.zeros(3))  # was "nonzero is true"
    with pytest.raises(ds.errors.ArgumentTypeError, match="where"):
        ds.where(None, ds.ones(3), ds.zeros(3))
    np.testing.assert_array_equal(ds.where(ds.tensor(cond) > 0, 1.0, 0.0).numpy(), [1.0, 0.0, 0.0])
    # internal callers pass arrays (NumPy masks): those are still read as truth values
    np.testing.assert_array_equal(ds.where(cond > 0, ds.ones(3), ds.zeros(3)).numpy(), [1.0, 0.0, 0.0])
