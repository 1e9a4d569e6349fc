"""``p.grad = g`` with ``g`` of another dtype: PyTorch raises RuntimeError; downslope's error is a
RuntimeError too, and still the TypeError it was."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_grad_of_another_dtype_raises_runtime_error_as_torch() -> None:
    with pytest.raises(RuntimeError):
        torch.zeros(3, requires_grad=True).grad = torch.ones(3, dtype=torch.float64)
    p = ds.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="float64") as caught:
        p.grad = ds.ones(3, dtype=ds.float64)
    assert isinstance(caught.value, TypeError)  # the class it had before: except TypeError still works
    assert p.grad is None
