"""linspace with complex bounds or a complex dtype, as torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES = [
    ((0, 1 + 1j, 3), {}),
    ((0.1, 1 + 1j, 7), {"dtype": "complex128"}),
    ((-2 + 0.5j, 3 - 1j, 10), {}),
    ((-2 + 0.5j, 3 - 1j, 11), {"dtype": "complex64"}),
    ((0, 1, 5), {"dtype": "complex64"}),
    ((1j, 1j, 1), {}),
    ((0, 1j, 0), {}),
]


def _kw(m: Any, kwargs: dict[str, str]) -> dict[str, Any]:
    return {k: getattr(m, v) for k, v in kwargs.items()}


@pytest.mark.parametrize(("args", "kwargs"), CASES)
def test_linspace_complex_matches_torch(args: tuple[Any, ...], kwargs: dict[str, str]) -> None:
    ref = torch.linspace(*args, **_kw(torch, kwargs)).numpy()
    ours = ds.linspace(*args, **_kw(ds, kwargs)).numpy()
    assert ours.dtype == ref.dtype
    eps = np.finfo(ref.dtype).eps
    np.testing.assert_allclose(ours, ref, rtol=2 * eps, atol=4 * eps)


def test_linspace_complex_bounds_into_real_dtype_refused() -> None:
    with pytest.raises(RuntimeError, match="can't be safely cast"):
        torch.linspace(0, 1 + 1j, 3, dtype=torch.float32)
    with pytest.raises(ds.errors.DTypeError, match="can't be safely cast"):
        ds.linspace(0, 1 + 1j, 3, dtype=ds.float32)
