"""Pooling of integer tensors (uint8 images, int64 label maps) as torch's: max_pool2d/3d keep any integer
dtype but bool, avg_pool1d/2d/3d take int64 only (each window's sum divided by the divisor, truncated toward
zero), and the dtypes torch refuses are refused with an error that is a NotImplementedError too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _values(dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    low, high = max(int(info.min), -1000), min(int(info.max), 1000)
    return rng.integers(low, high + 1, shape).astype(dtype)


MAX_CASES = [
    (2, {}),
    (3, {"stride": 1, "padding": 1}),
    (3, {"stride": 2, "padding": 1, "dilation": 2}),
    (2, {"ceil_mode": True}),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("kernel, kwargs", MAX_CASES)
@pytest.mark.parametrize("dims", [2, 3])
def test_max_pool_keeps_integer_dtypes_as_torch(dtype: Any, kernel: int, kwargs: dict[str, Any], dims: int) -> None:
    x = _values(dtype, (2, 3, 7, 6) if dims == 2 else (1, 2, 5, 6, 7))
    if dims == 3:
        kwargs = {k: v for k, v in kwargs.items() if k != "dilation"}
    ours = getattr(F, f"max_pool{dims}d")(ds.from_numpy(x), kernel, return_indices=True, **kwargs)
    theirs = getattr(TF, f"max_pool{dims}d")(torch.from_numpy(x), kernel, return_indices=True, **kwargs)
    assert ours[0].numpy().dtype == theirs[0].numpy().dtype == dtype
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())


AVG_CASES = [
    (2, {}),
    (3, {"stride": 1, "padding": 1}),
    (3, {"stride": 1, "padding": 1, "count_include_pad": False}),
    (2, {"ceil_mode": True}),
    (3, {"stride": 2, "padding": 1, "ceil_mode": True}),
    (2, {"divisor_override": 3}),
]


@pytest.mark.parametrize("kernel, kwargs", AVG_CASES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_avg_pool_of_int64_truncates_as_torch(kernel: int, kwargs: dict[str, Any], dims: int) -> None:
    x = _values(np.int64, {1: (2, 3, 9), 2: (2, 3, 7, 6), 3: (1, 2, 5, 6, 7)}[dims])
    if dims == 1:
        kwargs = {k: v for k, v in kwargs.items() if k != "divisor_override"}
    ours = getattr(F, f"avg_pool{dims}d")(ds.from_numpy(x), kernel, **kwargs)
    theirs = getattr(TF, f"avg_pool{dims}d")(torch.from_numpy(x), kernel, **kwargs)
    assert ours.numpy().dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_pooling_layers_on_a_uint8_image_match_torch() -> None:
    image = _values(np.uint8, (2, 3, 8, 8))
    for name, args in (("MaxPool2d", (2,)), ("MaxPool3d", (2,))):
        data = image if name == "MaxPool2d" else image[None]
        ours = getattr(ds.nn, name)(*args)(ds.from_numpy(data))
        theirs = getattr(torch.nn, name)(*args)(torch.from_numpy(data))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "call",
    [
        lambda f, x: f.max_pool1d(x[:, :, 0], 2),  # torch: max_pool1d_impl takes no integers
        lambda f, x: f.max_pool2d(x.bool(), 2),
        lambda f, x: f.avg_pool2d(x, 2),  # uint8: avg_pool2d takes int64 only
        lambda f, x: f.avg_pool2d(x.int(), 2),
        lambda f, x: f.avg_pool1d(x[:, :, 0].int(), 2),
    ],
)
def test_integer_pooling_torch_refuses_is_refused(call: Any) -> None:
    x = _values(np.uint8, (1, 2, 4, 4))
    with pytest.raises(NotImplementedError):
        call(TF, torch.from_numpy(x))
    with pytest.raises(NotImplementedError) as caught:
        call(F, ds.from_numpy(x))
    assert isinstance(caught.value, TypeError)  # also what the library raised before for a dtype it refuses
