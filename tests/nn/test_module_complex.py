"""Layers built with a complex dtype and modules cast to and from complex dtypes, as torch does:
``Layer(dtype=complex64)`` draws both parts of its random parameters, ``float()``/``double()``/``half()``
leave complex parameters alone, ``to(dtype)`` casts floating and complex ones (a complex dtype included)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]


def _torch_layer(name: str, *args: object, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "complex modules are a new feature" notice
        return getattr(torch.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(("name", "args"), [("Linear", (40, 30)), ("Conv1d", (8, 6, 5)), ("Conv2d", (8, 6, 5))])
def test_complex_layers_are_built_as_torch_builds_them(name: str, args: tuple[int, ...], dtype: str) -> None:
    mine = getattr(ds.nn, name)(*args, dtype=getattr(ds, dtype))
    ref = _torch_layer(name, *args, dtype=getattr(torch, dtype))
    bound = 1 / np.sqrt(np.prod(ref.weight.shape[1:]))  # torch: each part of weight and bias U(-b, b)
    for p, r in ((mine.weight, ref.weight), (mine.bias, ref.bias)):
        assert p.dtype == dtype and tuple(p.shape) == tuple(r.shape) and p.requires_grad
        values, theirs = p.detach().numpy(), r.detach().numpy()
        for part, their_part in ((values.real, theirs.real), (values.imag, theirs.imag)):
            assert np.abs(their_part).max() <= bound * (1 + 1e-6)
            assert np.abs(part).max() <= bound * (1 + 1e-6)
            assert np.abs(part).max() > bound / 4  # drawn over the range: neither part is left at zero


def test_complex_layer_with_constant_parameters_keeps_them_real_valued() -> None:
    mine = ds.nn.LayerNorm(5, dtype=ds.complex64)
    ref = _torch_layer("LayerNorm", 5, dtype=torch.complex64)
    np.testing.assert_array_equal(mine.weight.detach().numpy(), ref.weight.detach().numpy())
    np.testing.assert_array_equal(mine.bias.detach().numpy(), ref.bias.detach().numpy())


def test_complex_linear_forward_and_backward_match_torch() -> None:
    mine = ds.nn.Linear(4, 3, dtype=ds.complex128)
    ref = _torch_layer("Linear", 4, 3, dtype=torch.complex128)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(mine.weight.detach().numpy()))
        ref.bias.copy_(torch.from_numpy(mine.bias.detach().numpy()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4))
    out, expected = mine(ds.tensor(x, dtype=ds.complex128)), ref(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    (out.abs() ** 2).sum().backward()
    (expected.abs() ** 2).sum().backward()
    np.testing.assert_allclose(mine.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mine.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["float", "double", "half"])
def test_float_double_half_leave_complex_parameters_as_torch(method: str) -> None:
    mine = ds.nn.Linear(3, 2, dtype=ds.complex64)
    ref = _torch_layer("Linear", 3, 2, dtype=torch.complex64)
    before = mine.weight.detach().numpy().copy()
    getattr(mine, method)()
    getattr(ref, method)()
    assert str(ref.weight.dtype) == "torch.complex64"
    assert mine.weight.dtype == "complex64"
    np.testing.assert_array_equal(mine.weight.detach().numpy(), before)


def test_to_a_complex_dtype_casts_real_and_complex_parameters_as_torch() -> None:
    real = ds.nn.Linear(3, 2)
    weight = real.weight
    real.to(ds.complex64)
    assert real.weight is weight and real.weight.dtype == "complex64" and real.bias.dtype == "complex64"
    layer = ds.nn.Linear(3, 2, dtype=ds.complex64)
    layer.to(ds.complex128)
    assert layer.weight.dtype == "complex128"
    np.testing.assert_array_equal(layer.weight.detach().numpy().imag != 0, True)


def test_to_a_real_dtype_drops_the_imaginary_part_with_torchs_warning() -> None:
    layer = ds.nn.Linear(3, 2, dtype=ds.complex64)
    values = layer.weight.detach().numpy().copy()
    ref = _torch_layer("Linear", 3, 2, dtype=torch.complex64)
    # torch warns once per process (TORCH_WARN_ONCE): an earlier test's cast may have used it up
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Casting complex values to real", UserWarning)
        ref.to(torch.float64)
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        layer.to(ds.float64)
    assert layer.weight.dtype == "float64"
    np.testing.assert_allclose(layer.weight.detach().numpy(), values.real.astype(np.float64))


def test_to_refuses_an_integer_dtype_naming_the_kinds_it_takes() -> None:
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or complex"):
        torch.nn.Linear(2, 2).to(torch.int64)
    with pytest.raises(ArgumentTypeError, match=r"expected a floating dtype, got int64 \(or a complex one\)"):
        ds.nn.Linear(2, 2).to(ds.int64)
