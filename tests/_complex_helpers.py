"""What the complex-number tests share (ops, nn, linalg, fft against torch): complex test values, a
tensor of either library as a NumPy array, and the real losses whose gradients reach every element.

Imported relatively (``from .._complex_helpers import values``): tests run with --import-mode=importlib,
as tests/train imports its _scripted helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def values(seed: int, *shape: int) -> np.ndarray:
    """Standard normal complex128 values of ``shape`` (both parts drawn from one seeded generator)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def to_numpy(t: Any) -> np.ndarray:
    """A downslope or torch tensor's values (torch's lazy conjugate resolved first)."""
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return t.detach().numpy()


def real_loss(lib: Any, y: Any, weight: np.ndarray) -> Any:
    """A real loss whose gradient differs per element: Re(sum(y * w)), w in y's dtype (its real part for a
    real y)."""
    dtype = getattr(lib, str(y.dtype).replace("torch.", ""))
    if y.is_complex():
        return lib.real(y * lib.tensor(weight, dtype=dtype)).sum()
    return (y * lib.tensor(weight.real, dtype=dtype)).sum()


def weighted_loss(out: Any, seed: int) -> Any:
    """A real loss reading both parts of every output, weighted by :func:`values` of ``seed`` (real weights
    for a real output), in the output's library."""
    lib = torch if isinstance(out, torch.Tensor) else ds
    if not out.is_complex():
        w = lib.tensor(values(seed, *tuple(out.shape)).real, dtype=out.dtype)
        return (out * w).sum()
    w = lib.tensor(values(seed, *tuple(out.shape)), dtype=out.dtype)
    return (out * w).real.sum()
