"""conv1d / conv2d (functional and layers) on complex tensors against torch: values and gradients of the
input, the weight and the bias (torch's conjugate-Wirtinger convention) in complex64 and complex128."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

from .._complex_helpers import to_numpy as _numpy
from .._complex_helpers import values as _values
from .._complex_helpers import weighted_loss as _loss

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
_TOL = {"complex64": {"rtol": 2e-5, "atol": 2e-5}, "complex128": {"rtol": 1e-10, "atol": 1e-11}}


_CASES = {
    "conv1d": (1, dict(stride=1, padding=0, dilation=1, groups=1)),
    "conv1d_strided_padded_dilated": (1, dict(stride=2, padding=2, dilation=2, groups=1)),
    "conv1d_groups": (1, dict(stride=1, padding=1, dilation=1, groups=2)),
    "conv2d": (2, dict(stride=1, padding=1, dilation=1, groups=1)),
    "conv2d_strided_groups": (2, dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    "conv2d_same": (2, dict(stride=1, padding="same", dilation=1, groups=1)),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("case", sorted(_CASES))
def test_complex_conv_matches_torch(case: str, dtype: str, bias: bool) -> None:
    dims, kwargs = _CASES[case]
    spatial = (9,) if dims == 1 else (7, 8)
    kernel = (3,) if dims == 1 else (3, 2)
    arrays = [_values(1, 2, 4, *spatial), _values(2, 6, 4 // kwargs["groups"], *kernel), _values(3, 6)]
    if not bias:
        arrays = arrays[:2]
    mine = [ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    name = f"conv{dims}d"
    out = getattr(ds.nn.functional, name)(*mine, **kwargs)
    expected = getattr(torch.nn.functional, name)(*ref, **kwargs)
    assert out.dtype == dtype
    np.testing.assert_allclose(_numpy(out), _numpy(expected), **_TOL[dtype])
    _loss(out, 4).backward()
    _loss(expected, 4).backward()
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])


@pytest.mark.parametrize("dims", [1, 2])
def test_unbatched_complex_conv_matches_torch(dims: int) -> None:
    spatial, kernel = ((6,), (2,)) if dims == 1 else ((5, 5), (2, 2))
    x, w = _values(5, 3, *spatial), _values(6, 2, 3, *kernel)
    name = f"conv{dims}d"
    out = getattr(ds.nn.functional, name)(ds.tensor(x, dtype=ds.complex128), ds.tensor(w, dtype=ds.complex128))
    expected = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(w))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("layer", ["Conv1d", "Conv2d"])
def test_complex_conv_layers_match_torch_with_the_same_parameters(layer: str, padding_mode: str) -> None:
    shape = (2, 4, 7) if layer == "Conv1d" else (2, 4, 6, 5)
    mine = getattr(ds.nn, layer)(4, 3, 3, padding=1, padding_mode=padding_mode, dtype=ds.complex128)
    ref = getattr(torch.nn, layer)(4, 3, 3, padding=1, padding_mode=padding_mode, dtype=torch.complex128)
    assert mine.weight.dtype == "complex128" and mine.bias.dtype == "complex128"
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(mine.weight.detach().numpy()))
        ref.bias.copy_(torch.from_numpy(mine.bias.detach().numpy()))
    x = _values(7, *shape)
    xm, xr = ds.tensor(x, dtype=ds.complex128, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = mine(xm), ref(xr)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-11)
    _loss(out, 8).backward()
    _loss(expected, 8).backward()
    for m, r in ((xm, xr), (mine.weight, ref.weight), (mine.bias, ref.bias)):
        np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), rtol=1e-10, atol=1e-11)


def test_complex_conv_refuses_mixed_dtypes_as_torch() -> None:
    z = ds.tensor(_values(9, 1, 2, 5), dtype=ds.complex64)
    w = ds.tensor(_values(10, 3, 2, 2), dtype=ds.complex64)
    with pytest.raises(DTypeError, match="conv1d: input dtype complex64 does not match weight dtype float32"):
        ds.nn.functional.conv1d(z, w.real)
    with pytest.raises(DTypeError, match="conv1d: bias dtype float32 does not match input dtype complex64"):
        ds.nn.functional.conv1d(z, w, ds.zeros(3))
