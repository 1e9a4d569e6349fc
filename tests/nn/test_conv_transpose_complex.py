"""conv_transpose1d/2d, ConvTranspose1d/2d, unfold/fold and l1_loss on complex tensors against torch: values
and gradients (torch's conjugate-Wirtinger convention) in complex64 and complex128."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError

from .._complex_helpers import to_numpy as _numpy
from .._complex_helpers import values as _values
from .._complex_helpers import weighted_loss as _loss

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
_TOL = {"complex64": {"rtol": 2e-5, "atol": 2e-5}, "complex128": {"rtol": 1e-10, "atol": 1e-11}}


def _pair(arrays: list[np.ndarray], dtype: str) -> tuple[list[Any], list[Any]]:
    mine = [ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    return mine, ref


def _check(out: Any, expected: Any, mine: list[Any], ref: list[Any], dtype: str) -> None:
    assert out.dtype == getattr(ds, dtype)
    np.testing.assert_allclose(_numpy(out), _numpy(expected), **_TOL[dtype])
    _loss(out, 9).backward()
    _loss(expected, 9).backward()
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])


_CASES = {
    "conv_transpose1d": (1, dict(stride=2, padding=1, output_padding=1, groups=1, dilation=1)),
    "conv_transpose1d_groups": (1, dict(stride=1, padding=0, output_padding=0, groups=2, dilation=2)),
    "conv_transpose2d": (2, dict(stride=2, padding=0, output_padding=0, groups=1, dilation=1)),
    "conv_transpose2d_strided_groups": (2, dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("case", sorted(_CASES))
def test_complex_conv_transpose_matches_torch(case: str, dtype: str, bias: bool) -> None:
    dims, kwargs = _CASES[case]
    spatial = (7,) if dims == 1 else (5, 6)
    kernel = (3,) if dims == 1 else (2, 3)
    groups = kwargs["groups"]
    arrays = [_values(1, 2, 4, *spatial), _values(2, 4, 6 // groups, *kernel), _values(3, 6)]
    if not bias:
        arrays = arrays[:2]
    mine, ref = _pair(arrays, dtype)
    name = f"conv_transpose{dims}d"
    out = getattr(ds.nn.functional, name)(*mine, **kwargs)
    expected = getattr(torch.nn.functional, name)(*ref, **kwargs)
    _check(out, expected, mine, ref, dtype)


@pytest.mark.parametrize("dims", [1, 2])
def test_complex_conv_transpose_layer_matches_torch(dims: int) -> None:
    # the DCUNet decoder's layer: ConvTranspose(dtype=cfloat), its parameters copied from torch's
    torch.manual_seed(0)
    layer_t = getattr(torch.nn, f"ConvTranspose{dims}d")(2, 3, 2, stride=2, dtype=torch.cfloat)
    layer = getattr(ds.nn, f"ConvTranspose{dims}d")(2, 3, 2, stride=2, dtype=ds.cfloat)
    assert layer.weight.dtype == ds.complex64
    with ds.no_grad():
        layer.weight.copy_(ds.tensor(_numpy(layer_t.weight)))
        layer.bias.copy_(ds.tensor(_numpy(layer_t.bias)))
    x = _values(4, 1, 2, *((6,) if dims == 1 else (4, 5)))
    out, expected = layer(ds.tensor(x, dtype=ds.cfloat)), layer_t(torch.tensor(x, dtype=torch.cfloat))
    _check(out, expected, [layer.weight, layer.bias], [layer_t.weight, layer_t.bias], "complex64")


def test_pooling_of_complex_says_complex_is_not_supported() -> None:
    # .float() would drop the imaginary part: the message must not advise it for complex input
    with pytest.raises(ArgumentTypeError, match="complex input") as info:
        ds.nn.functional.max_pool2d(ds.tensor(_values(0, 1, 1, 4, 4), dtype=ds.cfloat), 2)
    assert ".float()" not in str(info.value)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_unfold_and_fold_match_torch(dtype: str) -> None:
    mine, ref = _pair([_values(5, 2, 2, 5, 6)], dtype)
    kwargs = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
    out = ds.nn.functional.unfold(mine[0], **kwargs)
    expected = torch.nn.functional.unfold(ref[0], **kwargs)
    _check(out, expected, mine, ref, dtype)
    cols_m, cols_t = _pair([_numpy(expected)], dtype)
    back = ds.nn.functional.fold(cols_m[0], (5, 6), **kwargs)
    back_t = torch.nn.functional.fold(cols_t[0], (5, 6), **kwargs)
    _check(back, back_t, cols_m, cols_t, dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_l1_loss_matches_torch(dtype: str, reduction: str) -> None:
    mine, ref = _pair([_values(6, 3, 4), _values(7, 3, 4)], dtype)
    out = ds.nn.functional.l1_loss(*mine, reduction=reduction)
    expected = torch.nn.functional.l1_loss(*ref, reduction=reduction)
    assert out.dtype == {"complex64": ds.float32, "complex128": ds.float64}[dtype]  # |a - b| is real
    np.testing.assert_allclose(_numpy(out), _numpy(expected), **_TOL[dtype])
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])
