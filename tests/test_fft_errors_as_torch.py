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


def _frequency_outcome(lib, name: str, n, d, **kwargs):  # type: ignore[no-untyped-def]
    try:
        out = getattr(lib.fft, name)(n, d, **kwargs)
    except Exception as error:  # noqa: BLE001  (the class is what is compared)
        return type(error)
    return out.detach().numpy()


@pytest.mark.parametrize("name", ["fftfreq", "rfftfreq"])
@pytest.mark.parametrize("n", [-5, -4, -3, -2, -1, 0, 1, 2, 7, 97])
@pytest.mark.parametrize("d", [1.0, 1 / 3, 0.0, -2.5])
@pytest.mark.parametrize("double", [False, True])
def test_frequencies_match_torch_bit_for_bit_for_any_n_and_d(name: str, n: int, d: float, double: bool) -> None:
    """torch's results: fftfreq of a negative n refuses; rfftfreq's count is n / 2 + 1 truncated (so
    rfftfreq(-1) is [-0.], -2 and -3 give [], -4 and below refuse); d = 0 gives NaN and infinities."""
    ours = _frequency_outcome(ds, name, n, d, dtype=ds.float64 if double else None)
    theirs = _frequency_outcome(torch, name, n, d, dtype=torch.float64 if double else None)
    if isinstance(theirs, type):
        assert isinstance(ours, type) and issubclass(theirs, RuntimeError) and issubclass(ours, RuntimeError)
        return
    assert not isinstance(ours, type), f"{name}({n}, {d}) raised {ours}, torch gives {theirs}"
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))  # -0. where torch has it


@pytest.mark.parametrize("name", ["fftfreq", "rfftfreq"])
def test_frequency_arguments_as_torch(name: str) -> None:
    ours, theirs = getattr(ds.fft, name), getattr(torch.fft, name)
    np.testing.assert_array_equal(ours(6, d=ds.tensor(0.5)).numpy(), theirs(6, d=torch.tensor(0.5)).numpy())
    np.testing.assert_array_equal(ours(ds.tensor(6)).numpy(), theirs(torch.tensor(6)).numpy())
    got, want = ours(4, requires_grad=True, device="cpu"), theirs(4, requires_grad=True, device="cpu")
    assert got.requires_grad and want.requires_grad and got.is_leaf and want.is_leaf
    with pytest.raises(RuntimeError, match=f"{name} requires a floating point or complex dtype"):
        ours(4, dtype=ds.int64)
    with pytest.raises(RuntimeError, match=f"{name} requires a floating point or complex dtype"):
        theirs(4, dtype=torch.int64)
    for lib in (ds, torch):  # a 1-element 1-d spacing and a float count are refused as TypeErrors
        with pytest.raises(TypeError, match="argument 'd' must be float"):
            getattr(lib.fft, name)(4, d=lib.tensor([0.5]))
        with pytest.raises(TypeError, match=r"argument 'n' \(position 1\) must be int, not float"):
            getattr(lib.fft, name)(4.0)
    with pytest.raises(RuntimeError, match=r"Trying to create tensor with negative dimension -1: \[-1\]"):
        ds.fft.fftfreq(-1) if name == "fftfreq" else ds.fft.rfftfreq(-4)
