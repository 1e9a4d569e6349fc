"""The total gradient norm over parameters of different dtypes (mixed precision: float16 with float32,
float32 with float64, complex with real), against torch: torch stacks the per-tensor norms, so the
total takes their promoted dtype whichever parameter comes first, and clipping uses that total."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_MIXES = [
    ("float16", "float32"),
    ("float32", "float16"),
    ("float32", "float64"),
    ("float64", "float32"),
    ("float16", "float64"),
    ("complex64", "float64"),
    ("float16", "complex64"),
]
_NORMS = [2.0, 1.0, 3.0, math.inf, -math.inf, 0.0]


def _params(lib: Any, dtypes: tuple[str, ...], big: float) -> list[Any]:
    """One parameter per dtype, the last with a gradient of norm ``big`` (past float16's range when large)."""
    rng = np.random.default_rng(0)
    params = []
    for i, name in enumerate(dtypes):
        grad = rng.standard_normal(3) + (1j * rng.standard_normal(3) if name.startswith("complex") else 0)
        if i == len(dtypes) - 1:
            grad = grad / np.linalg.norm(grad) * big
        p = lib.nn.Parameter(lib.zeros(3, dtype=getattr(lib, name)))
        p.grad = lib.tensor(grad, dtype=getattr(lib, name))
        params.append(p)
    return params


def _dtype_name(t: Any) -> str:
    return str(t.dtype).replace("torch.", "")


@pytest.mark.parametrize("dtypes", _MIXES)
@pytest.mark.parametrize("norm_type", _NORMS)
@pytest.mark.parametrize("foreach", [None, True, False])
def test_get_total_norm_takes_the_promoted_dtype_as_torch(dtypes: tuple[str, str], norm_type: float, foreach) -> None:
    big = 1e5 if "float16" in dtypes[:-1] else 3.0  # a float16 first must not make a large total inf
    ours = ds.nn.utils.get_total_norm([p.grad for p in _params(ds, dtypes, big)], norm_type=norm_type, foreach=foreach)
    theirs = torch.nn.utils.get_total_norm([p.grad for p in _params(torch, dtypes, big)], norm_type=norm_type)
    assert _dtype_name(ours) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-3)


@pytest.mark.parametrize("dtypes", _MIXES)
@pytest.mark.parametrize("norm_type", _NORMS)
@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_over_mixed_dtypes_clips_as_torch(dtypes: tuple[str, str], norm_type: float, foreach) -> None:
    big = 1e5 if "float16" in dtypes[:-1] else 3.0
    ps, qs = _params(ds, dtypes, big), _params(torch, dtypes, big)
    ours = ds.nn.utils.clip_grad_norm_(ps, max_norm=1.0, norm_type=norm_type, foreach=foreach)
    theirs = torch.nn.utils.clip_grad_norm_(qs, max_norm=1.0, norm_type=norm_type)
    assert _dtype_name(ours) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-3)
    for p, q in zip(ps, qs, strict=True):
        assert _dtype_name(p.grad) == _dtype_name(q.grad)
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=2e-3, atol=1e-7)
