"""The strict stand-in: NumPy behind CuPy's wall. Values match NumPy; every implicit host conversion fails."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.backend import namespace_of
from downslope.devices import strict
from downslope.devices.strict import StrictArray


def test_ufuncs_functions_and_methods_compute_numpys_values_on_the_device():
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = strict.asarray(host)
    for ours, expected in [
        (np.exp(x), np.exp(host)),
        (x @ x.T, host @ host.T),
        (np.where(x > 2, x, -x), np.where(host > 2, host, -host)),
        (x.sum(axis=0), host.sum(axis=0)),
        (x.reshape(3, 2).astype(np.float64), host.reshape(3, 2).astype(np.float64)),
        (np.concatenate([x, x]), np.concatenate([host, host])),
        (np.zeros_like(x), np.zeros_like(host)),
        (x[:, 1], host[:, 1]),
        (-x + 1 / (x + 1) ** 2, -host + 1 / (host + 1) ** 2),
    ]:
        assert isinstance(ours, StrictArray)
        np.testing.assert_array_equal(ours.get(), expected)
        assert ours.dtype == expected.dtype and ours.shape == expected.shape


def test_reductions_stay_on_the_device_as_0d_arrays():
    x = strict.asarray([1.0, 2.0])
    total = x.sum()
    assert isinstance(total, StrictArray) and total.ndim == 0 and total.get() == 3.0
    assert isinstance(np.max(x), StrictArray) and isinstance(x[0], StrictArray)


def test_views_share_memory_and_inplace_operators_write_through():
    x = strict.zeros(4, dtype=np.float32)
    view = x[1:3]
    view += 2
    x[0] = strict.asarray(5.0)
    x *= 2
    np.testing.assert_array_equal(x.get(), [10, 4, 4, 0])
    np.add(x, 1, out=x)
    np.testing.assert_array_equal(view.get(), [5, 5])


@pytest.mark.parametrize(
    "convert",
    [np.asarray, np.array, float, int, bool, lambda a: a.item(), lambda a: a.tolist(), lambda a: a.tobytes()],
    ids=["asarray", "array", "float", "int", "bool", "item", "tolist", "tobytes"],
)
def test_every_implicit_host_conversion_is_refused(convert):
    with pytest.raises(TypeError, match="(Implicit conversion|implicit device->host transfer)"):
        convert(strict.asarray([1.0]))


@pytest.mark.parametrize(
    "mix",
    [
        lambda d, h: d + h,
        lambda d, h: np.add(h, d),
        lambda d, h: np.concatenate([d, h]),
        lambda d, h: np.matmul(d, h),
        lambda d, h: d.__setitem__(slice(None), h),
    ],
    ids=["operator", "ufunc", "function", "matmul", "setitem"],
)
def test_mixing_with_a_host_array_is_refused(mix):
    with pytest.raises(TypeError, match="same device, but found at least two devices, strict and cpu"):
        mix(strict.ones(3), np.ones(3))


def test_python_and_numpy_scalars_join_but_0d_host_arrays_only_compare():
    # CuPy's kernels take Python and NumPy scalars as arguments; a 0-d host array is "Unsupported type",
    # except in comparisons, where CuPy's __array_ufunc__ turns it into a scalar first
    x = strict.ones(2)
    np.testing.assert_array_equal((x * 2.0 + np.float32(1)).get(), [3.0, 3.0])
    np.testing.assert_array_equal((x > np.array(0.5)).get(), [True, True])
    with pytest.raises(TypeError, match="0-d host"):
        x - np.array(1.0)
    with pytest.raises(TypeError, match="0-d host"):
        np.where(x > 0, x, np.array(0.0))


def test_namespace_creates_device_arrays_and_get_asnumpy_copy_out():
    for made in (strict.zeros(3), strict.empty((2, 2)), strict.ones(2), strict.full(2, 7.0), strict.arange(3)):
        assert isinstance(made, StrictArray)
    assert isinstance(strict.eye(2), StrictArray) and isinstance(strict.exp(strict.ones(1)), StrictArray)
    g = strict.random.default_rng(0)
    draw = g.standard_normal((3,))
    assert isinstance(draw, StrictArray)
    np.testing.assert_array_equal(draw.get(), np.random.Generator(np.random.PCG64(0)).standard_normal(3))
    x = strict.asarray([1.0, 2.0])
    out = strict.asnumpy(x)
    out[0] = 9
    assert type(out) is np.ndarray and x.get()[0] == 1.0


def test_namespace_of_follows_the_data():
    assert namespace_of(np.zeros(1)) is np and namespace_of(1.5) is np and namespace_of(np.float32(1)) is np
    assert namespace_of(strict.zeros(1)) is strict


def test_methods_cupy_lacks_are_missing_here_too():
    with pytest.raises(AttributeError, match="CuPy"):
        strict.ones(2).tofile  # noqa: B018


def test_functions_ufuncs_and_methods_cupy_lacks_are_refused_with_the_reason():
    from downslope.devices._cupy_names import FUNCTIONS, METHODS

    x = strict.ones(3)
    with pytest.raises(TypeError, match="CuPy has no such function"):
        np.insert(x, 0, 1.0)  # numpy.insert: not in CuPy
    with pytest.raises(TypeError, match="CuPy has no such function"):
        np.spacing(x)  # a ufunc CuPy lacks
    with pytest.raises(AttributeError, match="cupy"):
        strict.geomspace  # noqa: B018  (the namespace has only CuPy's functions)
    assert "insert" not in FUNCTIONS[""] and "concatenate" in FUNCTIONS[""] and "norm" in FUNCTIONS["linalg"]
    np.concatenate([x, x])  # and what CuPy has still works
    np.linalg.norm(x)
    from downslope.devices.strict import _METHODS

    assert _METHODS <= METHODS  # every array method the stand-in offers, CuPy's ndarray has
