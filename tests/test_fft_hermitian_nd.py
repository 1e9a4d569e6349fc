"""torch.fft's n-dimensional Hermitian transforms (hfft2, ihfft2, hfftn, ihfftn) against torch: values and
gradients for every norm, sizes and dims, in single and double precision; and dir(ds.fft) is torch's names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

from ._complex_helpers import real_loss as _loss
from ._complex_helpers import to_numpy as _numpy

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(11)
_TOL = {64: {"rtol": 1e-10, "atol": 1e-12}, 32: {"rtol": 3e-5, "atol": 3e-5}}


def _real(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape)


def _complex(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape) + 1j * _RNG.standard_normal(shape)


_CASES: dict[str, tuple[Callable[..., Any], Callable[[], np.ndarray]]] = {
    "hfft2": (lambda L, t, norm: L.fft.hfft2(t, norm=norm), lambda: _complex(2, 4, 3)),
    "hfft2_s": (lambda L, t, norm: L.fft.hfft2(t, s=(3, 5), norm=norm), lambda: _complex(4, 3)),
    "hfft2_dims": (lambda L, t, norm: L.fft.hfft2(t, dim=(0, 2), norm=norm), lambda: _complex(3, 2, 4)),
    "hfftn": (lambda L, t, norm: L.fft.hfftn(t, norm=norm), lambda: _complex(3, 4, 3)),
    "hfftn_s_dim": (lambda L, t, norm: L.fft.hfftn(t, s=(6, 4), dim=(-1, 0), norm=norm), lambda: _complex(3, 2, 4)),
    "hfftn_real_input": (lambda L, t, norm: L.fft.hfftn(t, dim=(1, 2), norm=norm), lambda: _real(2, 3, 4)),
    "ihfft2": (lambda L, t, norm: L.fft.ihfft2(t, norm=norm), lambda: _real(2, 4, 6)),
    "ihfft2_s": (lambda L, t, norm: L.fft.ihfft2(t, s=(3, 5), norm=norm), lambda: _real(4, 6)),
    "ihfftn": (lambda L, t, norm: L.fft.ihfftn(t, norm=norm), lambda: _real(3, 4, 5)),
    "ihfftn_s_dim": (lambda L, t, norm: L.fft.ihfftn(t, s=(4, 7), dim=(2, 0), norm=norm), lambda: _real(3, 2, 6)),
}


@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("norm", [None, "backward", "ortho", "forward"])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_hermitian_transforms_match_torch(case: str, norm: str | None, bits: int) -> None:
    fn, make = _CASES[case]
    data = make()
    complex_in = data.dtype.kind == "c"
    name = f"complex{2 * bits}" if complex_in else f"float{bits}"
    ours = ds.tensor(data, dtype=getattr(ds, name), requires_grad=True)
    theirs = torch.tensor(data, dtype=getattr(torch, name), requires_grad=True)
    y, ref = fn(ds, ours, norm), fn(torch, theirs, norm)
    assert tuple(y.shape) == tuple(ref.shape)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), **_TOL[bits])
    weight = _complex(*ref.shape)
    _loss(ds, y, weight).backward()
    _loss(torch, ref, weight).backward()
    assert ours.grad.dtype == ours.dtype
    np.testing.assert_allclose(_numpy(ours.grad), _numpy(theirs.grad), **_TOL[bits])


def test_dir_lists_torch_fft_names_only() -> None:
    import torch.fft

    ours = set(dir(ds.fft))
    torchs = {n for n in dir(torch.fft) if not n.startswith("_")}
    assert not {n for n in ours if n.startswith("_") or n in ("np", "Any", "Tensor", "backend")}
    assert {"hfft2", "ihfft2", "hfftn", "ihfftn"} <= ours
    # stft/istft live here and are torch's top-level names (ds.stft); every other name is torch.fft's
    assert ours - {"stft", "istft"} <= torchs
