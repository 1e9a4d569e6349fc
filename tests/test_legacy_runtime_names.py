"""torch's old runtime names met at the top of ported scripts, against PyTorch: set_default_tensor_type
(sets the default dtype, with torch's deprecation warning), set_flush_denormal (False: not done here),
empty_strided (an empty tensor of the size); the storage classes raise UnsupportedNameError with the
reason; errors torch raises as NotImplementedError are NotImplementedErrors here too."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope._unsupported import UnsupportedNameError

torch = pytest.importorskip("torch")


@pytest.fixture
def restore_default_dtype():
    before = ds.get_default_dtype()
    yield
    ds.set_default_dtype(before)


def _warnings_of(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message).split(" (Triggered internally")[0] for w in caught if w.category is UserWarning]


@pytest.mark.parametrize(
    "kind, dtype",
    [
        ("FloatTensor", "float32"),
        ("DoubleTensor", "float64"),
        ("HalfTensor", "float16"),
        ("'torch.DoubleTensor'", "float64"),
        ("'torch.FloatTensor'", "float32"),
    ],
)
def test_set_default_tensor_type_sets_the_default_dtype_as_torch(restore_default_dtype, kind, dtype):
    def given(lib):
        return kind.strip("'") if kind.startswith("'") else getattr(lib, kind)

    torch_before = torch.get_default_dtype()
    torch._C._set_warnAlways(True)  # torch warns once per process otherwise
    try:
        theirs = _warnings_of(lambda: torch.set_default_tensor_type(given(torch)))
        torch_dtype = str(torch.get_default_dtype()).replace("torch.", "")
        torch_ones = torch.ones(2).dtype
    finally:
        torch._C._set_warnAlways(False)
        torch.set_default_dtype(torch_before)
    ours = _warnings_of(lambda: ds.set_default_tensor_type(given(ds)))
    assert str(ds.get_default_dtype()) == torch_dtype == dtype
    assert str(ds.ones(2).dtype) == str(torch_ones).replace("torch.", "")
    assert ours == theirs and len(ours) == 1


@pytest.mark.parametrize("given", ["LongTensor", "float64", "3"])
def test_set_default_tensor_type_refuses_what_torch_refuses(restore_default_dtype, given):
    value = {"LongTensor": ds.LongTensor, "float64": ds.float64, "3": 3}[given]
    with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
        ds.set_default_tensor_type(value)
    assert ds.get_default_dtype() == ds.float32


def test_set_default_tensor_type_refuses_a_cuda_type_with_the_way_to_go(restore_default_dtype):
    with pytest.raises(TypeError, match="set_default_device"):
        ds.set_default_tensor_type("torch.cuda.FloatTensor")


def test_set_flush_denormal_reports_it_is_not_done():
    assert ds.set_flush_denormal(True) is False
    assert ds.set_flush_denormal(False) is False
    np.testing.assert_array_equal((ds.tensor([1e-39]) * 1).numpy(), np.float32(1e-39))  # denormals kept
    with pytest.raises(TypeError, match="expects a bool"):
        ds.set_flush_denormal(1)


@pytest.mark.parametrize(
    "size, stride, options",
    [
        ((2, 3), (1, 2), {}),
        ((2, 3), (3, 1), {"dtype": "float64", "requires_grad": True}),
        ((), (), {}),
        ((0, 4), (4, 1), {}),
    ],
)
def test_empty_strided_is_an_empty_tensor_of_the_size(size, stride, options):
    ours = ds.empty_strided(size, stride, **{k: getattr(ds, v) if k == "dtype" else v for k, v in options.items()})
    ref = torch.empty_strided(size, stride, **{k: getattr(torch, v) if k == "dtype" else v for k, v in options.items()})
    assert tuple(ours.shape) == tuple(ref.shape)
    assert str(ours.dtype) == str(ref.dtype).replace("torch.", "")
    assert ours.requires_grad == ref.requires_grad


def test_empty_strided_refuses_strides_of_another_length():
    with pytest.raises(
        ds.errors.ShapeError, match=r"dimensionality of sizes \(2\) must match dimensionality of strides \(1\)"
    ):
        ds.empty_strided((2, 3), (1,))


@pytest.mark.parametrize("name", ["FloatStorage", "DoubleStorage", "LongStorage", "TypedStorage", "UntypedStorage"])
def test_storage_classes_say_why_they_are_missing(name):
    assert hasattr(torch, name)
    with pytest.raises(UnsupportedNameError, match="storage-level API"):
        getattr(ds, name)
    assert not hasattr(ds, name)


def test_softmax_of_integers_is_a_not_implemented_error_as_in_torch():
    with pytest.raises(NotImplementedError):
        torch.softmax(torch.tensor([1, 2]), 0)
    for fn in (ds.softmax, ds.log_softmax, ds.nn.functional.softmax):
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
            fn(ds.tensor([1, 2]), 0)
    with pytest.raises(ds.errors.DTypeError):  # still the error it was
        ds.softmax(ds.tensor([1, 2]), 0)


@pytest.mark.parametrize(
    "shape, mode",
    [((1, 1, 4), "bilinear"), ((1, 1, 4, 4), "linear"), ((1, 1, 4), "trilinear"), ((1, 1, 4, 4, 4), "bilinear")],
)
def test_interpolate_of_the_wrong_rank_is_a_not_implemented_error_as_in_torch(shape, mode):
    with pytest.raises(NotImplementedError):
        torch.nn.functional.interpolate(torch.ones(shape), scale_factor=2, mode=mode)
    with pytest.raises(NotImplementedError, match=f"but {mode} mode needs"):
        ds.nn.functional.interpolate(ds.ones(*shape), scale_factor=2, mode=mode)
    with pytest.raises(ds.errors.ShapeError):
        ds.nn.functional.interpolate(ds.ones(*shape), scale_factor=2, mode=mode)
