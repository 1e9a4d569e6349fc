"""ds.is_complex / Tensor.is_complex: False for every dtype (downslope has no complex dtypes), as torch
answers for its real dtypes; optimizers copied from PyTorch ask it of each parameter."""

from __future__ import annotations

import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "bool"])
def test_is_complex_matches_torch_for_real_dtypes(dtype: str) -> None:
    ours, ref = ds.ones(2, dtype=getattr(ds, dtype)), torch.ones(2, dtype=getattr(torch, dtype))
    assert ds.is_complex(ours) is torch.is_complex(ref) is False
    assert ours.is_complex() is ref.is_complex() is False


def test_is_complex_refuses_a_non_tensor_as_torch() -> None:
    with pytest.raises(TypeError):
        torch.is_complex(1.0)
    with pytest.raises(ArgumentTypeError, match="is_complex: expected a Tensor, got float"):
        ds.is_complex(1.0)
