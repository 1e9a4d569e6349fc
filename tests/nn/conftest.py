"""Fixtures shared by the convolution and resampling test files."""

from __future__ import annotations

import numpy as np
import pytest

from downslope import jit_gate
from downslope.nn import _jit


@pytest.fixture(params=["numpy", "jit"])
def kernels(request, monkeypatch):
    """Every test runs on the NumPy kernels and again on the compiled ones at every size (when numba is
    installed): the "jit" run opens the layers' size gates, below which calls take NumPy."""
    if request.param == "numpy":
        with _jit.disabled():
            yield request.param
        return
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    from downslope.nn import _conv_kernels, normalization, pooling

    for module, gate in (
        (_conv_kernels, "JIT_CONV_MIN_MACS"),
        (_conv_kernels, "JIT_BIAS_GRADIENT_MIN_SIZE"),
        (normalization, "JIT_BATCH_NORM_MIN_SIZE"),
        (normalization, "JIT_LAYER_NORM_MIN_SIZE"),
        (pooling, "JIT_POOL_MIN_SIZE"),
    ):
        monkeypatch.setattr(module, gate, 0)
    yield request.param


@pytest.fixture(params=["numpy", "jit"])
def resample_path(request):
    """The resampling tests (grid_sample, interpolate, adaptive max pooling) on the NumPy formulation
    and again on the compiled kernels of nn/_jit_resample.py (when numba is installed)."""
    if request.param == "numpy":
        with jit_gate.disabled():
            yield request.param
        return
    if jit_gate.kernels("downslope.nn._jit_resample", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    yield request.param
