"""A second backward through an FFT of a real tensor, as in PyTorch.

torch's fft_c2c/fft_c2r and its real-to-complex cast save no values, so a graph through them can be
differentiated again without retain_graph (a spectral operator built once from a leaf, then used by two
losses). The cast of a real input to complex that downslope records first is what saved nothing too.
"""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# (name, transform): each takes a real (3, 4) float64 tensor and returns a real tensor
TRANSFORMS = [
    ("fft2", lambda L, m: L.fft.fft2(m).real),
    ("fftn_s", lambda L, m: L.fft.fftn(m, s=(4, 6)).imag),
    ("ifft2", lambda L, m: L.fft.ifft2(m).real),
    ("irfft", lambda L, m: L.fft.irfft(m)),
    ("irfftn", lambda L, m: L.fft.irfftn(m, s=(3, 5))),
    ("hfft", lambda L, m: L.fft.hfft(m, n=7)),
    ("to_complex", lambda L, m: m.to(L.complex128).real),
]


@pytest.mark.parametrize("name,transform", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
def test_second_backward_through_fft_of_real_input_matches_torch(name, transform):
    x0 = np.random.default_rng(0).standard_normal((3, 4))
    grads = {}
    for lib in (torch, ds):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        y = transform(lib, x)
        first = lib.autograd.grad((y**2).sum(), x)[0]  # frees the graph (no retain_graph)
        second = lib.autograd.grad((y * 3).sum(), x)[0]  # passes again through the transform
        grads[lib.__name__] = (first.numpy(), second.numpy())
    for got, want in zip(grads["downslope"], grads["torch"]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_cast_to_complex_allows_an_in_place_write_to_its_input_as_torch():
    # the cast's rule reads no input values, so writing into the input after the cast is legal, as in torch
    x = ds.tensor([1.0, 2.0], dtype=ds.float64, requires_grad=True)
    y = x * 1.0
    z = y.to(ds.complex128)
    with ds.no_grad():
        y.mul_(5.0)
    (g,) = ds.autograd.grad(z.real.sum() * 2, x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 2.0])
