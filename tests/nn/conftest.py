"""Fixtures shared by the convolution test files."""

from __future__ import annotations

import pytest

from downslope.nn import _jit


@pytest.fixture(params=["numpy", "jit"])
def kernels(request):
    """Every test runs on the NumPy kernels and again on the compiled ones (when numba is installed)."""
    if request.param == "numpy":
        with _jit.disabled():
            yield request.param
        return
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    yield request.param
