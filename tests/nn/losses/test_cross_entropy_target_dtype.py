"""Class-index targets of an integer dtype other than int64 and uint8 are refused, as torch 2.13 refuses
them ("expected target dtype to be Long or Byte, but got Int", a RuntimeError)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CALLS = {
    "cross_entropy": lambda lib, t: lib.nn.functional.cross_entropy(lib.ones(2, 3), t),
    "cross_entropy_smoothed": lambda lib, t: lib.nn.functional.cross_entropy(lib.ones(2, 3), t, label_smoothing=0.1),
    "cross_entropy_weighted": lambda lib, t: lib.nn.functional.cross_entropy(lib.ones(2, 3), t, weight=lib.ones(3)),
    "nll_loss": lambda lib, t: lib.nn.functional.nll_loss(lib.ones(2, 3), t),
    "CrossEntropyLoss": lambda lib, t: lib.nn.CrossEntropyLoss()(lib.ones(2, 3), t),
    "linear_cross_entropy": lambda lib, t: lib.nn.functional.linear_cross_entropy(lib.ones(2, 4), lib.ones(3, 4), t),
}


@pytest.mark.parametrize("call", list(CALLS), ids=str)
@pytest.mark.parametrize("dtype", ["int32", "int16", "int8"])
def test_narrow_integer_targets_refused_as_torch(call: str, dtype: str) -> None:
    values = np.array([0, 2], dtype=dtype)
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but got") as theirs:
        CALLS[call](torch, torch.from_numpy(values))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but got") as ours:
        CALLS[call](ds, ds.from_numpy(values))
    assert str(theirs.value).split()[-1] in str(ours.value)  # torch's kind name (Int, Short, Char)


@pytest.mark.parametrize("dtype", ["int64", "uint8"])
def test_long_and_byte_targets_accepted_as_torch(dtype: str) -> None:
    values = np.array([0, 2], dtype=dtype)
    for call in CALLS.values():
        theirs = call(torch, torch.from_numpy(values))
        ours = call(ds, ds.from_numpy(values))
        assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
