"""nn.init's random fills refuse integer and boolean tensors, as torch's kernels do (the samples would
be truncated into them silently)."""

from __future__ import annotations

import pytest
import torch

import downslope as ds


@pytest.mark.parametrize(
    "name",
    [
        "uniform_",
        "normal_",
        "trunc_normal_",
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
    ],  # fmt: skip
)
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_random_fills_of_integer_tensors_raise_torchs_not_implemented(name: str, dtype: str) -> None:
    # (torch's trunc_normal_ of uint8 fails earlier, on its negative uniform bound)
    with pytest.raises((NotImplementedError, RuntimeError)) as theirs:
        getattr(torch.nn.init, name)(torch.zeros(3, 4, dtype=getattr(torch, dtype)))
    with pytest.raises(NotImplementedError) as ours:
        getattr(ds.nn.init, name)(ds.zeros(3, 4, dtype=getattr(ds, dtype)))
    if isinstance(theirs.value, NotImplementedError):
        assert str(theirs.value) in str(ours.value)


def test_constant_fills_of_integer_tensors_still_work() -> None:
    assert ds.nn.init.ones_(ds.zeros(2, dtype=ds.int64)).tolist() == [1, 1]
    assert ds.nn.init.zeros_(ds.ones(2, dtype=ds.int64)).tolist() == [0, 0]
