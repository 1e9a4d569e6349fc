"""ds.frombuffer, ds.empty_permuted and Tensor.new against torch; the anomaly and warn-always flags."""

from __future__ import annotations

import array
import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.host_only
def test_frombuffer_matches_torch_and_shares_memory() -> None:
    ints = array.array("i", [1, 2, 3])
    assert ds.frombuffer(ints, dtype=ds.int32).tolist() == torch.frombuffer(ints, dtype=torch.int32).tolist()
    raw = bytearray(b"\x01\x02\x03\x04")
    for kwargs in ({"dtype": "uint8", "count": 2, "offset": 1}, {"dtype": "int16"}, {"dtype": "float32"}):
        ours = ds.frombuffer(raw, **{**kwargs, "dtype": getattr(ds, kwargs["dtype"])})
        theirs = torch.frombuffer(raw, **{**kwargs, "dtype": getattr(torch, kwargs["dtype"])})
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == np.dtype(kwargs["dtype"])
    t = ds.frombuffer(raw, dtype=ds.uint8)
    t[0] = 9
    assert raw[0] == 9  # shared, as in torch
    assert ds.frombuffer(raw, dtype=ds.float32, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    "kwargs",
    [{"dtype": "int32", "count": 2}, {"dtype": "int16", "offset": 1}, {"dtype": "int16", "offset": 5},
     {"dtype": "uint8", "count": 0}],
)  # fmt: skip
def test_frombuffer_errors_as_torch(kwargs: dict) -> None:
    raw = bytearray(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError):
        torch.frombuffer(raw, **{**kwargs, "dtype": getattr(torch, kwargs["dtype"])})
    with pytest.raises(ds.errors.ArgumentError):
        ds.frombuffer(raw, **{**kwargs, "dtype": getattr(ds, kwargs["dtype"])})
    with pytest.raises(ds.errors.ArgumentError):
        ds.frombuffer(bytearray(), dtype=ds.int16)
    with pytest.raises(TypeError):
        ds.frombuffer(raw)  # dtype is required, as in torch
    with pytest.raises(TypeError):
        ds.frombuffer([1, 2], dtype=ds.uint8)


@pytest.mark.host_only
def test_frombuffer_of_read_only_bytes_warns_and_refuses_writes() -> None:
    with pytest.warns(UserWarning, match="not writable"):
        t = ds.frombuffer(b"abcd", dtype=ds.uint8)
    assert t.tolist() == [97, 98, 99, 100]
    with pytest.raises((ValueError, RuntimeError)):
        t.fill_(0)


@pytest.mark.parametrize(("size", "layout"), [((2, 3, 4), (0, 2, 1)), ((2, 3, 4, 5), (0, 2, 3, 1)), ((3,), (0,))])
def test_empty_permuted_strides_match_torch(size: tuple, layout: tuple) -> None:
    ours, theirs = ds.empty_permuted(size, layout), torch.empty_permuted(size, layout)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == ds.float32
    assert ours.stride() == theirs.stride()
    assert ds.empty_permuted(size, layout, dtype=ds.int64, requires_grad=False).dtype == ds.int64
    assert ds.empty_permuted((2, 3), (1, 0), requires_grad=True).requires_grad


def test_empty_permuted_errors() -> None:
    with pytest.raises(ds.errors.ArgumentError):
        ds.empty_permuted((2, 3), (0, 0))
    with pytest.raises(ds.ShapeError):
        ds.empty_permuted((2, 3), (0,))


def test_tensor_new_legacy_constructor() -> None:
    y, ty = ds.tensor([1, 2]), torch.tensor([1, 2])
    assert y.new(2, 3).shape == (2, 3) and y.new(2, 3).dtype == ds.int64
    assert y.new([1.5, 2]).tolist() == ty.new([1.5, 2]).tolist() and y.new([1.5, 2]).dtype == ds.int64
    assert y.new().shape == (0,) and y.new().dtype == ds.int64
    assert y.new(y.shape).shape == (2,)  # x.new(x.size()): a size
    z = ds.tensor([1.0])
    assert z.new(3).dtype == ds.float32 and z.new([]).shape == (0,)
    other = ds.tensor([5.0, 6.0])
    shared = z.new(other)
    shared[0] = 0.0
    assert other.tolist() == [0.0, 6.0]  # x.new(tensor) aliases it, as in torch
    with pytest.raises(TypeError):
        z.new(ds.tensor([1, 2]))
    with pytest.raises(TypeError):
        z.new(2.5)


def test_anomaly_and_warn_always_flags() -> None:
    assert ds.is_anomaly_enabled() is torch.is_anomaly_enabled() is False
    assert ds.is_anomaly_check_nan_enabled() is torch.is_anomaly_check_nan_enabled() is True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ds.autograd.detect_anomaly():
            assert ds.is_anomaly_enabled() and ds.is_anomaly_check_nan_enabled()
    assert not ds.is_anomaly_enabled()
    assert ds.is_warn_always_enabled() is False
    ds.set_warn_always(True)
    try:
        assert ds.is_warn_always_enabled() is True
    finally:
        ds.set_warn_always(False)
    with pytest.raises(TypeError):
        ds.set_warn_always("yes")
