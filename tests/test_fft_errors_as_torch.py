"""torch.fft's refusals are RuntimeErrors: downslope's are too (a ported ``except RuntimeError:``
catches them), and fftfreq / rfftfreq of 0 points give torch's results."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_CASES = {
    "fft n=0": lambda L: L.fft.fft(L.ones(4), n=0),
    "fft bad norm": lambda L: L.fft.fft(L.ones(4), norm="bogus"),
    "fftn duplicate dims": lambda L: L.fft.fftn(L.ones(3, 4), dim=(0, 0)),
    "fft of an empty tensor": lambda L: L.fft.fft(L.ones(0)),
    "rfft of an empty tensor": lambda L: L.fft.rfft(L.ones(0)),
    "fftn of an empty tensor": lambda L: L.fft.fftn(L.ones(3, 0)),
    "ihfft of an empty tensor": lambda L: L.fft.ihfft(L.ones(0)),
    "fftfreq(-1)": lambda L: L.fft.fftfreq(-1),
    "irfft to 0 points": lambda L: L.fft.irfft(L.ones(1, dtype=L.complex64)),
    "hfft to 0 points": lambda L: L.fft.hfft(L.ones(1, dtype=L.complex64)),
    "irfftn to 0 points": lambda L: L.fft.irfftn(L.ones(2, 1, dtype=L.complex64)),
    "hfftn to 0 points": lambda L: L.fft.hfftn(L.ones(2, 1, dtype=L.complex64)),
    "istft with a window failing NOLA": lambda L: L.istft(
        L.stft(L.ones(64), 16, hop_length=16, window=L.hann_window(16), return_complex=True),
        16,
        hop_length=16,
        window=L.hann_window(16),
    ),
}


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
@pytest.mark.parametrize("case", list(_CASES))
def test_fft_refusal_is_a_runtime_error(lib, case: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        _CASES[case](lib)


def test_fft_of_an_empty_tensor_names_the_op() -> None:
    with pytest.raises(ValueError, match=r"^fft: Invalid number of data points \(0\)"):
        ds.fft.fft(ds.ones(0))
    with pytest.raises(ValueError, match=r"^rfft2: Invalid number of data points \(0\)"):
        ds.fft.rfft2(ds.ones(0, 3), s=(-1, 2))


def test_fft_of_an_empty_tensor_padded_by_n_is_zeros_as_torch() -> None:
    np.testing.assert_array_equal(ds.fft.fft(ds.ones(0), n=4).numpy(), torch.fft.fft(torch.ones(0), n=4).numpy())


@pytest.mark.parametrize("d", [1.0, 2.5])
def test_frequencies_of_zero_points_match_torch(d: float) -> None:
    for name in ("fftfreq", "rfftfreq"):
        for dtype, tdtype in ((None, None), (ds.float64, torch.float64)):
            got = getattr(ds.fft, name)(0, d, dtype=dtype)
            want = getattr(torch.fft, name)(0, d, dtype=tdtype)
            assert tuple(got.shape) == tuple(want.shape)
            assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
            np.testing.assert_array_equal(got.numpy(), want.numpy())  # [] and [nan]
