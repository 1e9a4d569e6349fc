"""Filling a float tensor with a number past its dtype's range, as torch: masked_fill and index_fill
refuse it (in place or not), ``t[i] = v`` writes inf silently into float16 and refuses it for float32."""

from __future__ import annotations

import warnings

import pytest
import torch

import downslope as ds


@pytest.mark.parametrize(
    "fill",
    [
        lambda lib, t: t.masked_fill(lib.tensor([True, False, False]), 1e10),
        lambda lib, t: t.index_fill(0, lib.tensor([0]), 1e10),
        lambda lib, t: lib.masked_fill(t, lib.tensor([True, False, False]), 1e10),
    ],
)
def test_out_of_place_fills_refuse_overflow_as_torch(fill) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="cannot be converted"):
        fill(torch, torch.zeros(3, dtype=torch.float16))
    with pytest.raises(RuntimeError, match="cannot be converted"):
        fill(ds, ds.zeros(3, dtype=ds.float16))
    # within range, inf and float64 pass
    assert fill(ds, ds.zeros(3)).tolist()[0] == 1e10
    big = ds.zeros(3, dtype=ds.float32).masked_fill(ds.tensor([True, False, False]), float("inf"))
    assert big.tolist()[0] == float("inf")
    assert ds.zeros(3, dtype=ds.float64).masked_fill(ds.tensor([True, False, False]), 1e300).tolist()[0] == 1e300
    with pytest.raises(RuntimeError, match="float32"):
        ds.zeros(3).masked_fill(ds.tensor([True, False, False]), 1e300)


def test_setitem_overflow_as_torch() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warning
        t = ds.zeros(3, dtype=ds.float16)
        t[0] = 1e10
        t[1] = -100000
        t[2] = 0.5
        assert t.tolist() == [float("inf"), float("-inf"), 0.5]
        u = ds.zeros(2)
        u[0] = 1e30
        assert u.tolist()[0] == pytest.approx(1e30)
    with pytest.raises(RuntimeError, match="cannot be converted to float32"):
        ds.zeros(2)[0] = 1e300
    with pytest.raises(RuntimeError, match="cannot be converted"):
        torch.zeros(2)[0] = 1e300
