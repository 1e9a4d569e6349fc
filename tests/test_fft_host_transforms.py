"""downslope.fft on host arrays runs scipy.fft when SciPy is installed (numpy.fft otherwise): float32
in single precision as torch computes it, float64 as before. Values and gradients against torch in
both dtypes, every norm mode, n/s padding and cropping and dims; the accuracy against the float64
transform no worse than torch's; numpy.fft as the fallback; SciPy imported on the first transform,
not with downslope."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.fft as ds_fft

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(11)
_NORMS = [None, "backward", "ortho", "forward"]

# name -> (the call on a library namespace, a tensor and a norm; the input's shape; complex input)
_CASES: dict[str, tuple[Callable[[Any, Any, Any], Any], tuple[int, ...], bool]] = {
    "rfft": (lambda L, t, norm: L.fft.rfft(t, norm=norm), (6, 4, 64), False),
    "rfft_pad_n": (lambda L, t, norm: L.fft.rfft(t, n=80, norm=norm), (6, 4, 64), False),
    "rfft_crop_n_dim0": (lambda L, t, norm: L.fft.rfft(t, n=5, dim=0, norm=norm), (6, 4, 64), False),
    "irfft": (lambda L, t, norm: L.fft.irfft(t, norm=norm), (6, 4, 33), True),
    "irfft_odd_n": (lambda L, t, norm: L.fft.irfft(t, n=63, norm=norm), (6, 4, 33), True),
    "irfft_pad_n_dim1": (lambda L, t, norm: L.fft.irfft(t, n=12, dim=1, norm=norm), (6, 4, 33), True),
    "fft": (lambda L, t, norm: L.fft.fft(t, norm=norm), (6, 4, 50), True),
    "ifft_of_real_n": (lambda L, t, norm: L.fft.ifft(t, n=40, norm=norm), (6, 4, 50), False),
    "fft2": (lambda L, t, norm: L.fft.fft2(t, norm=norm), (3, 16, 24), True),
    "rfftn_s": (lambda L, t, norm: L.fft.rfftn(t, s=(10, 30), norm=norm), (3, 16, 24), False),
    "irfftn_dims": (lambda L, t, norm: L.fft.irfftn(t, s=(8, 20), dim=(0, 2), norm=norm), (3, 16, 11), True),
    "hfft": (lambda L, t, norm: L.fft.hfft(t, n=30, norm=norm), (5, 16), True),
    "ihfft": (lambda L, t, norm: L.fft.ihfft(t, norm=norm), (5, 30), False),
}


def _data(shape: tuple[int, ...], complex_input: bool) -> np.ndarray:
    x = _RNG.standard_normal(shape)
    return x + 1j * _RNG.standard_normal(shape) if complex_input else x


def _as_numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return t.detach().numpy()


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("case", sorted(_CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_gradients_match_torch(case: str, norm: Any, dtype: str) -> None:
    fn, shape, complex_input = _CASES[case]
    data = _data(shape, complex_input)
    name = ("complex64" if dtype == "float32" else "complex128") if complex_input else dtype
    ours = ds.tensor(data.astype(name), dtype=getattr(ds, name), requires_grad=True)
    theirs = torch.tensor(data.astype(name), requires_grad=True)
    y, ref = fn(ds, ours, norm), fn(torch, theirs, norm)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    # float32: a few single-precision roundings of the largest value (torch and SciPy sum in other orders)
    rtol, atol_scale = (1e-10, 1e-12) if dtype == "float64" else (2e-5, 2e-6)
    scale = float(np.abs(_as_numpy(ref)).max())
    np.testing.assert_allclose(_as_numpy(y), _as_numpy(ref), rtol=rtol, atol=atol_scale * scale)
    weight = _data(tuple(ref.shape), True)
    w_name = "complex128" if dtype == "float64" else "complex64"
    w_ours = ds.tensor(weight.astype(w_name), dtype=getattr(ds, w_name))
    w_theirs = torch.tensor(weight.astype(w_name))
    ds.real(y * w_ours).sum().backward() if y.is_complex() else (y * ds.real(w_ours)).sum().backward()
    torch.real(ref * w_theirs).sum().backward() if ref.is_complex() else (ref * torch.real(w_theirs)).sum().backward()
    assert ours.grad.dtype == ours.dtype
    g_ref = _as_numpy(theirs.grad)
    np.testing.assert_allclose(_as_numpy(ours.grad), g_ref, rtol=rtol, atol=atol_scale * float(np.abs(g_ref).max()))


@pytest.mark.host_only
@pytest.mark.parametrize("case", sorted(_CASES))
def test_float32_is_as_accurate_as_torchs(case: str) -> None:
    """Against the same transform in float64: the float32 error at most 1.5x torch's own (plus an ulp of
    the largest value), so computing in single precision loses nothing torch keeps."""
    fn, shape, complex_input = _CASES[case]
    data = _data(shape, complex_input).astype("complex64" if complex_input else "float32")
    exact = _as_numpy(fn(torch, torch.tensor(data.astype("complex128" if complex_input else "float64")), None))
    ulp = np.finfo(np.float32).eps * float(np.abs(exact).max())
    ours = np.abs(_as_numpy(fn(ds, ds.from_numpy(data), None)) - exact).max()
    theirs = np.abs(_as_numpy(fn(torch, torch.tensor(data), None)) - exact).max()
    assert ours <= 1.5 * theirs + ulp, (ours, theirs)


@pytest.mark.host_only
def test_host_transforms_run_scipy_not_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("scipy.fft")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy.fft ran although SciPy is installed")

    for name in ("fftn", "ifftn", "rfftn", "irfftn"):
        monkeypatch.setattr(np.fft, name, refuse)
    x = _data((4, 32), False).astype(np.float32)
    t = ds.tensor(x, requires_grad=True)
    y = ds.fft.irfft(ds.fft.rfft(t) * 2, n=32) + ds.fft.ifft(ds.fft.fft(t)).real
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), 3 * x, rtol=1e-5, atol=1e-5)


@pytest.mark.host_only
@pytest.mark.parametrize("case", sorted(_CASES))
def test_numpy_fft_serves_without_scipy(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    fn, shape, complex_input = _CASES[case]
    data = _data(shape, complex_input)
    with_default = _as_numpy(fn(ds, ds.from_numpy(data), "ortho"))
    monkeypatch.setattr(ds_fft, "_HOST_FFT", [np.fft])
    ours = ds.from_numpy(data).requires_grad_()
    y = fn(ds, ours, "ortho")
    np.testing.assert_allclose(_as_numpy(y), with_default, rtol=1e-12, atol=1e-12)
    theirs = torch.tensor(data, requires_grad=True)
    (y.abs() ** 2).sum().backward()
    (fn(torch, theirs, "ortho").abs() ** 2).sum().backward()
    np.testing.assert_allclose(_as_numpy(ours.grad), _as_numpy(theirs.grad), rtol=1e-9, atol=1e-11)


def test_import_downslope_leaves_scipy_unimported() -> None:
    code = "import sys, downslope; print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
