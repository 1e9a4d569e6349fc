"""downslope.fft against torch.fft: values, output dtypes and shapes, the n/s/dim/norm arguments, and the
gradients (torch's one-sided rfft/irfft rules included, checked against finite differences too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, DTypeError, OutOfRangeError

from ._complex_helpers import to_numpy as _numpy

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(3)


def _real(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape)


def _complex(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape) + 1j * _RNG.standard_normal(shape)


def _loss(lib: Any, y: Any, weight: np.ndarray) -> Any:
    """Re(sum(y * w)): a real loss whose gradient differs in every element."""
    if y.is_complex():
        w = torch.tensor(weight) if lib is torch else ds.tensor(weight, dtype=ds.complex128)
        return lib.real(y * w).sum()
    w = torch.tensor(weight.real) if lib is torch else ds.tensor(weight.real, dtype=ds.float64)
    return (y * w).sum()


def _check(fn: Callable[[Any, Any], Any], data: np.ndarray) -> None:
    ours = ds.tensor(data, dtype=ds.complex128 if data.dtype.kind == "c" else ds.float64, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    y, ref = fn(ds, ours), fn(torch, theirs)
    assert tuple(y.shape) == tuple(ref.shape)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), rtol=1e-10, atol=1e-12)
    weight = _complex(*ref.shape)
    _loss(ds, y, weight).backward()
    _loss(torch, ref, weight).backward()
    assert ours.grad.dtype == ours.dtype
    np.testing.assert_allclose(_numpy(ours.grad), _numpy(theirs.grad), rtol=1e-10, atol=1e-12)


_NORMS = [None, "backward", "ortho", "forward"]

_CASES: dict[str, tuple[Callable[..., Any], Callable[[], np.ndarray]]] = {
    "fft_real": (lambda L, t, norm: L.fft.fft(t, norm=norm), lambda: _real(3, 8)),
    "fft_complex_n6": (lambda L, t, norm: L.fft.fft(t, n=6, norm=norm), lambda: _complex(3, 5)),
    "fft_dim0_n5": (lambda L, t, norm: L.fft.fft(t, n=5, dim=0, norm=norm), lambda: _complex(3, 5)),
    "ifft_n7": (lambda L, t, norm: L.fft.ifft(t, n=7, norm=norm), lambda: _complex(3, 5)),
    "ifft_real": (lambda L, t, norm: L.fft.ifft(t, norm=norm), lambda: _real(4)),
    "rfft_even": (lambda L, t, norm: L.fft.rfft(t, norm=norm), lambda: _real(3, 8)),
    "rfft_odd": (lambda L, t, norm: L.fft.rfft(t, norm=norm), lambda: _real(3, 7)),
    "rfft_n5": (lambda L, t, norm: L.fft.rfft(t, n=5, norm=norm), lambda: _real(3, 8)),
    "rfft_n12_dim0": (lambda L, t, norm: L.fft.rfft(t, n=12, dim=0, norm=norm), lambda: _real(3, 8)),
    "irfft": (lambda L, t, norm: L.fft.irfft(t, norm=norm), lambda: _complex(3, 5)),
    "irfft_n9": (lambda L, t, norm: L.fft.irfft(t, n=9, norm=norm), lambda: _complex(3, 5)),
    "irfft_n4": (lambda L, t, norm: L.fft.irfft(t, n=4, norm=norm), lambda: _complex(3, 5)),
    "irfft_real_input": (lambda L, t, norm: L.fft.irfft(t, norm=norm), lambda: _real(2, 4)),
    "fft2": (lambda L, t, norm: L.fft.fft2(t, norm=norm), lambda: _complex(2, 3, 5)),
    "ifft2_s": (lambda L, t, norm: L.fft.ifft2(t, s=(4, 4), norm=norm), lambda: _complex(3, 5)),
    "rfft2": (lambda L, t, norm: L.fft.rfft2(t, norm=norm), lambda: _real(2, 4, 6)),
    "rfft2_dims": (lambda L, t, norm: L.fft.rfft2(t, dim=(0, 2), norm=norm), lambda: _real(4, 3, 5)),
    "irfft2": (lambda L, t, norm: L.fft.irfft2(t, norm=norm), lambda: _complex(2, 3, 5)),
    "irfft2_s": (lambda L, t, norm: L.fft.irfft2(t, s=(2, 7), norm=norm), lambda: _complex(3, 5)),
    "fftn_all": (lambda L, t, norm: L.fft.fftn(t, norm=norm), lambda: _real(3, 4, 2)),
    "fftn_s": (lambda L, t, norm: L.fft.fftn(t, s=(5, -1), norm=norm), lambda: _complex(3, 4, 2)),
    "ifftn_dim": (lambda L, t, norm: L.fft.ifftn(t, dim=(0, 2), norm=norm), lambda: _complex(3, 4, 2)),
    "rfftn_s": (lambda L, t, norm: L.fft.rfftn(t, s=(4, 6), norm=norm), lambda: _real(3, 8)),
    "irfftn": (lambda L, t, norm: L.fft.irfftn(t, norm=norm), lambda: _complex(3, 4, 5)),
    "irfftn_s_dim": (lambda L, t, norm: L.fft.irfftn(t, s=(3, 5), dim=(0, 1), norm=norm), lambda: _complex(3, 4, 2)),
    "hfft": (lambda L, t, norm: L.fft.hfft(t, norm=norm), lambda: _complex(3, 5)),
    "hfft_n7": (lambda L, t, norm: L.fft.hfft(t, n=7, norm=norm), lambda: _complex(3, 5)),
    "ihfft": (lambda L, t, norm: L.fft.ihfft(t, norm=norm), lambda: _real(3, 8)),
    "ihfft_n5": (lambda L, t, norm: L.fft.ihfft(t, n=5, norm=norm), lambda: _real(3, 8)),
}


@pytest.mark.parametrize("norm", _NORMS)
@pytest.mark.parametrize("case", sorted(_CASES))
def test_transforms_match_torch(case: str, norm: str | None) -> None:
    fn, data = _CASES[case]
    _check(lambda lib, t: fn(lib, t, norm), data())


@pytest.mark.parametrize(
    "fn",
    [
        lambda L, t: L.fft.fftshift(t),
        lambda L, t: L.fft.ifftshift(t),
        lambda L, t: L.fft.fftshift(t, dim=1),
        lambda L, t: L.fft.ifftshift(t, dim=(0,)),
    ],
)
def test_shifts_match_torch(fn: Callable[[Any, Any], Any]) -> None:
    _check(fn, _complex(3, 5))
    _check(fn, _real(4, 6))


def test_frequencies_match_torch() -> None:
    for n, d in ((5, 1.0), (8, 0.25), (1, 2.0)):
        for name in ("fftfreq", "rfftfreq"):
            ours, ref = getattr(ds.fft, name)(n, d), getattr(torch.fft, name)(n, d)
            assert ours.dtype == ds.float32 and ref.dtype == torch.float32
            np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
    assert ds.fft.fftfreq(4, dtype=ds.float64).dtype == ds.float64


def test_single_precision_in_single_precision_out() -> None:
    x = ds.randn(4, 8)
    assert ds.fft.rfft(x).dtype == ds.complex64 and ds.fft.rfft(x).shape == (4, 5)
    assert ds.fft.fft(x).dtype == ds.complex64
    assert ds.fft.irfft(ds.fft.rfft(x)).dtype == ds.float32 and ds.fft.irfft(ds.fft.rfft(x)).shape == (4, 8)
    assert ds.fft.fft(ds.arange(4)).dtype == ds.complex64  # integers: the default float first, as torch
    np.testing.assert_allclose(ds.fft.irfft(ds.fft.rfft(x), n=8).numpy(), x.numpy(), atol=1e-5)


def test_the_import_forms_of_torch_code_work() -> None:
    import downslope as torch_like
    from downslope import fft

    assert fft is ds.fft is torch_like.fft
    assert fft.rfft(ds.ones(4)).shape == (3,)


def _finite_difference_check(fn: Callable[[Any], Any], data: np.ndarray) -> None:
    """The gradient of Re(sum(fn(z) * w)) against central differences, per real and imaginary part."""
    is_complex = data.dtype.kind == "c"
    dtype = ds.complex128 if is_complex else ds.float64
    probe = fn(ds.tensor(data, dtype=dtype))
    weight = _complex(*probe.shape)

    def loss(v: np.ndarray) -> float:
        return float(_loss(ds, fn(ds.tensor(v, dtype=dtype)), weight).item())

    x = ds.tensor(data, dtype=dtype, requires_grad=True)
    _loss(ds, fn(x), weight).backward()
    h = 1e-6
    want = np.zeros(data.shape, complex if is_complex else float)
    for i in np.ndindex(data.shape):
        e = np.zeros(data.shape, data.dtype)
        e[i] = h
        want[i] = (loss(data + e) - loss(data - e)) / (2 * h)
        if is_complex:
            want[i] += 1j * (loss(data + 1j * e) - loss(data - 1j * e)) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("fn", "data"),
    [
        (lambda t: ds.fft.rfft(t), _real(6)),
        (lambda t: ds.fft.rfft(t, n=5, norm="ortho"), _real(7)),
        (lambda t: ds.fft.irfft(t), _complex(4)),
        (lambda t: ds.fft.irfft(t, n=7, norm="forward"), _complex(4)),
        (lambda t: ds.fft.irfft2(t, s=(3, 4)), _complex(2, 3)),
        (lambda t: ds.fft.hfft(t), _complex(4)),
        (lambda t: ds.fft.fftn(t, s=(3, 2)), _complex(2, 3)),
    ],
    ids=["rfft", "rfft_n_ortho", "irfft", "irfft_n_forward", "irfft2_s", "hfft", "fftn_s"],
)
def test_gradients_agree_with_finite_differences(fn: Callable[[Any], Any], data: np.ndarray) -> None:
    _finite_difference_check(fn, data)


def test_double_backward_matches_torch() -> None:
    data = _real(6)
    x, ref = ds.tensor(data, dtype=ds.float64, requires_grad=True), torch.tensor(data, requires_grad=True)
    (g,) = ds.autograd.grad((ds.fft.rfft(x).abs() ** 3).sum(), x, create_graph=True)
    (want,) = torch.autograd.grad((torch.fft.rfft(ref).abs() ** 3).sum(), ref, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), want.detach().numpy(), rtol=1e-10)
    (gg,) = ds.autograd.grad((g * g).sum(), x)
    (want2,) = torch.autograd.grad((want * want).sum(), ref)
    np.testing.assert_allclose(gg.numpy(), want2.numpy(), rtol=1e-9)


def _spectral_layer(lib: Any, x: Any, w: Any, modes: int) -> Any:
    """A Fourier neural operator's spectral convolution: rfft2 -> complex weight product -> irfft2."""
    x_ft = lib.fft.rfft2(x)
    kept = lib.einsum("bixy,ioxy->boxy", x_ft[:, :, :modes, :modes], w)
    out_ft = lib.zeros(x.shape[0], w.shape[1], x.shape[-2], x.shape[-1] // 2 + 1, dtype=kept.dtype)
    out_ft = lib.cat([lib.cat([kept, out_ft[:, :, :modes, modes:]], 3), out_ft[:, :, modes:]], 2)
    return lib.fft.irfft2(out_ft, s=(x.shape[-2], x.shape[-1]))


def test_fourier_neural_operator_layer_trains_as_torchs() -> None:
    x = _real(2, 3, 8, 8)
    target = _real(2, 4, 8, 8)
    w0 = _complex(3, 4, 3, 3) * 0.1

    def train(lib: Any) -> np.ndarray:
        w = lib.tensor(w0, requires_grad=True) if lib is torch else ds.tensor(w0, dtype=ds.complex128)
        if lib is ds:
            w.requires_grad_(True)
        data = lib.tensor(x) if lib is torch else ds.tensor(x, dtype=ds.float64)
        goal = lib.tensor(target) if lib is torch else ds.tensor(target, dtype=ds.float64)
        for _ in range(3):
            loss = ((_spectral_layer(lib, data, w, 3) - goal) ** 2).mean()
            loss.backward()
            with lib.no_grad():
                w -= 0.5 * w.grad
                w.grad = None
        return _numpy(w)

    np.testing.assert_allclose(train(ds), train(torch), rtol=1e-10, atol=1e-12)


def test_bad_arguments_are_refused_as_torch() -> None:
    x = ds.ones(4)
    with pytest.raises(ArgumentError, match="Invalid normalization mode"):
        ds.fft.fft(x, norm="bogus")
    with pytest.raises(ArgumentError, match=r"Invalid number of data points \(0\)"):
        ds.fft.rfft(x, n=0)
    with pytest.raises(ArgumentError, match=r"Invalid number of data points \(0\)"):
        ds.fft.irfft(ds.ones(1, dtype=ds.complex64))
    with pytest.raises(DTypeError, match="rfft expects a real input tensor"):
        ds.fft.rfft(ds.ones(4, dtype=ds.complex64))
    with pytest.raises(OutOfRangeError, match="Dimension out of range"):
        ds.fft.fft(x, dim=1)
    with pytest.raises(ArgumentError, match="FFT dims must be unique"):
        ds.fft.fft2(ds.ones(2, 2), dim=(0, 0))
    with pytest.raises(ArgumentError, match="same length"):
        ds.fft.fftn(ds.ones(2, 2), s=(2,), dim=(0, 1))
    for call in (
        lambda: torch.fft.fft(torch.ones(4), norm="bogus"),
        lambda: torch.fft.rfft(torch.ones(4), n=0),
        lambda: torch.fft.rfft(torch.ones(4, dtype=torch.complex64)),
        lambda: torch.fft.fft(torch.ones(4), dim=1),
        lambda: torch.fft.fft2(torch.ones(2, 2), dim=(0, 0)),
    ):
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            call()


# ---------------------------------------------------------------------- stft / istft


def _check_many(fn: Callable[..., Any], *arrays: np.ndarray) -> None:
    """Like :func:`_check` for several inputs (the signal or spectrum, and the window)."""
    ours = [
        ds.tensor(a, dtype=ds.complex128 if a.dtype.kind == "c" else ds.float64, requires_grad=True) for a in arrays
    ]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ref = fn(ds, *ours), fn(torch, *theirs)
    assert tuple(y.shape) == tuple(ref.shape)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), rtol=1e-10, atol=1e-12)
    weight = _complex(*ref.shape)
    _loss(ds, y, weight).backward()
    _loss(torch, ref, weight).backward()
    for mine, them in zip(ours, theirs):
        np.testing.assert_allclose(_numpy(mine.grad), _numpy(them.grad), rtol=1e-9, atol=1e-11)


_HANN12, _HANN16 = np.hanning(12), np.hanning(18)[1:-1]
_STFT_CASES: dict[str, tuple[Callable[..., Any], Callable[[], tuple[np.ndarray, ...]]]] = {
    "default": (lambda L, x, w: L.stft(x, 16, window=w, return_complex=True), lambda: (_real(2, 50), np.hanning(16))),
    "hop_win_length": (
        lambda L, x, w: L.stft(x, 16, hop_length=5, win_length=12, window=w, return_complex=True),
        lambda: (_real(2, 50), _HANN12),
    ),
    "no_center_normalized": (
        lambda L, x, w: L.stft(
            x, 16, hop_length=3, win_length=12, window=w, center=False, normalized=True, return_complex=True
        ),
        lambda: (_real(40), _HANN12),
    ),
    "constant_pad": (
        lambda L, x, w: L.stft(x, 8, window=w, pad_mode="constant", return_complex=True),
        lambda: (_real(40), np.hanning(8)),
    ),
    "two_sided": (
        lambda L, x, w: L.stft(x, 8, window=w, onesided=False, return_complex=True),
        lambda: (_real(40), np.hanning(8)),
    ),
    "complex_signal": (
        lambda L, x, w: L.stft(x, 8, window=w, return_complex=True),
        lambda: (_complex(2, 30), np.hanning(8)),
    ),
    "method": (lambda L, x, w: x.stft(8, window=w, return_complex=True).abs(), lambda: (_real(40), np.hanning(8))),
    "istft": (lambda L, s, w: L.istft(s, 16, window=w), lambda: (_complex(2, 9, 7), _HANN16)),
    "istft_hop_length": (
        lambda L, s, w: L.istft(s, 16, hop_length=4, window=w, length=40),
        lambda: (_complex(2, 9, 7), _HANN16),
    ),
    "istft_padded_length": (
        lambda L, s, w: L.istft(s, 16, hop_length=4, window=w, length=50),
        lambda: (_complex(2, 9, 7), _HANN16),
    ),
    "istft_no_center_normalized": (
        lambda L, s, w: L.istft(s, 16, hop_length=4, window=w, center=False, normalized=True),
        lambda: (_complex(2, 9, 7), np.hanning(16) + 0.1),
    ),
    "istft_two_sided": (
        lambda L, s, w: L.istft(s, 8, hop_length=2, window=w, onesided=False),
        lambda: (_complex(8, 7), np.hanning(8) + 0.1),
    ),
    "istft_return_complex": (
        lambda L, s, w: L.istft(s, 8, hop_length=2, window=w, onesided=False, return_complex=True),
        lambda: (_complex(8, 7), np.hanning(8) + 0.1),
    ),
    "istft_method": (lambda L, s, w: s.istft(16, window=w), lambda: (_complex(9, 7), _HANN16)),
    "round_trip": (
        lambda L, x, w: L.istft(
            L.stft(x, 16, hop_length=4, window=w, return_complex=True), 16, hop_length=4, window=w, length=50
        ),
        lambda: (_real(2, 50), np.hanning(16)),
    ),
}


@pytest.mark.parametrize("case", sorted(_STFT_CASES))
def test_stft_and_istft_match_torch(case: str) -> None:
    fn, data = _STFT_CASES[case]
    _check_many(fn, *data())


def test_stft_refuses_and_warns_as_torch() -> None:
    x = ds.randn(40)
    with pytest.raises(RuntimeError, match="return_complex"):
        torch.stft(torch.randn(40), 8)
    with pytest.raises(ArgumentError, match="stft requires the return_complex parameter be given for real inputs"):
        ds.stft(x, 8)
    with pytest.warns(UserWarning, match="A window was not provided"):
        ds.stft(x, 8, return_complex=True)
    with pytest.warns(UserWarning, match="return_complex=False is deprecated"):
        assert ds.stft(x, 8, window=ds.hann_window(8), return_complex=False).shape == (5, 21, 2)
    with pytest.raises(ArgumentError, match="Padding size should be less than"):
        ds.stft(ds.randn(3), 16, window=ds.hann_window(16), return_complex=True)
    with pytest.raises(ArgumentError, match="expected a 1D or 2D tensor"):
        ds.stft(ds.randn(2, 3, 40), 8, window=ds.hann_window(8), return_complex=True)
    with pytest.raises(DTypeError, match="istft requires a complex-valued input"):
        ds.istft(ds.randn(5, 4), 8)
    with pytest.warns(UserWarning, match="padded with zeros in the tail"):
        assert ds.istft(ds.ones(5, 3, dtype=ds.complex64), 8, window=ds.hann_window(8), length=30).shape == (30,)
    with pytest.raises(ArgumentError, match="NOLA"):
        ds.istft(ds.ones(5, 4, dtype=ds.complex64), 8, hop_length=8, window=ds.hann_window(8, periodic=False))


def test_spectrogram_loss_trains_as_torchs() -> None:
    # a log-mel spectrogram loss: |stft|^2 through a fixed filterbank, log, against a target, three Adam steps
    signal, target = _real(2, 64), _real(2, 64)
    filterbank = np.abs(_real(6, 9))

    def train(lib: Any) -> list[np.ndarray]:
        make = (lambda a: torch.tensor(a)) if lib is torch else (lambda a: ds.tensor(a, dtype=ds.float64))
        x = lib.nn.Parameter(make(signal))
        window, mel, goal = make(np.hanning(16)), make(filterbank), make(target)
        opt = lib.optim.Adam([x], lr=0.05)

        def log_mel(y: Any) -> Any:
            power = lib.stft(y, 16, hop_length=4, window=window, return_complex=True).abs() ** 2
            return lib.log(mel @ power + 1e-6)

        seen = []
        for _ in range(3):
            opt.zero_grad()
            loss = ((log_mel(x) - log_mel(goal)) ** 2).mean()
            loss.backward()
            opt.step()
            seen.append(_numpy(x).copy())
        return seen

    for ours, ref in zip(train(ds), train(torch)):
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
