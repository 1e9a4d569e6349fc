"""Argument checks torch makes that the library made too leniently: ``F.pad``'s copying modes refuse a
nonzero ``value``; FractionalMaxPool3d needs output + kernel - 1 below the input size (2-D allows equal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _outcome(call: Any, lib: Any, make: Any, x: np.ndarray) -> Any:
    try:
        return call(lib, make(x)).detach().numpy()
    except RuntimeError:
        return RuntimeError


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("value", [1.0, -2.5, 0.0, 0, None])
def test_pad_copying_modes_refuse_a_nonzero_value_as_torch(mode: str, value: Any) -> None:
    x = np.arange(10, dtype=np.float32).reshape(1, 2, 5)
    theirs = _outcome(lambda lib, t: TF.pad(t, (1, 2), mode=mode, value=value), torch, torch.from_numpy, x)
    ours = _outcome(lambda lib, t: F.pad(t, (1, 2), mode=mode, value=value), ds, ds.from_numpy, x)
    if theirs is RuntimeError:
        assert ours is RuntimeError
    else:
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    "shape, output_size",
    [((3, 6, 6), 2), ((6, 3, 6), 2), ((6, 6, 3), 2), ((6, 6, 5), (3, 3, 4)), ((5, 5, 5), 3), ((4, 4, 4), 2)],
)
def test_fractional_max_pool3d_size_check_matches_torch(shape: tuple[int, ...], output_size: Any) -> None:
    x = np.random.default_rng(0).standard_normal((1, 2, *shape)).astype(np.float32)
    samples = np.full((1, 2, 3), 0.5, np.float32)

    def call(lib: Any, t: Any) -> Any:
        tensor = torch.from_numpy if lib is torch else ds.from_numpy
        return lib.nn.FractionalMaxPool3d(2, output_size=output_size, _random_samples=tensor(samples))(t)

    theirs = _outcome(call, torch, torch.from_numpy, x)
    ours = _outcome(call, ds, ds.from_numpy, x)
    if theirs is RuntimeError:
        assert ours is RuntimeError
    else:
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape, output_size", [((5, 5), 4), ((3, 3), 2), ((4, 4), 3)])
def test_fractional_max_pool2d_takes_output_plus_kernel_minus_one_equal_to_the_input(
    shape: Any, output_size: int
) -> None:
    x = np.random.default_rng(1).standard_normal((1, 2, *shape)).astype(np.float32)
    samples = np.full((1, 2, 2), 0.5, np.float32)
    theirs = torch.nn.FractionalMaxPool2d(2, output_size=output_size, _random_samples=torch.from_numpy(samples))
    ours = ds.nn.FractionalMaxPool2d(2, output_size=output_size, _random_samples=ds.from_numpy(samples))
    np.testing.assert_array_equal(ours(ds.from_numpy(x)).numpy(), theirs(torch.from_numpy(x)).numpy())
