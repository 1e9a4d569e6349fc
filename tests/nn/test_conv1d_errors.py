"""conv1d runs as a height-1 conv2d; its errors name the caller's own 3-D shapes, as torch's do."""

from __future__ import annotations

import pytest

import downslope as ds


def test_a_kernel_longer_than_the_input_names_the_1d_shapes() -> None:
    with pytest.raises(ds.DownslopeError) as info:
        ds.nn.Conv1d(2, 2, 5)(ds.ones(1, 2, 3))
    message = str(info.value)
    assert "input 3 is smaller than the dilated kernel 5" in message
    assert "(1, 2, 3)" in message and "(2, 2, 5)" in message and "(1, 2, 1, 3)" not in message


def test_a_channel_mismatch_in_functional_conv1d_names_the_1d_shapes() -> None:
    with pytest.raises(ValueError, match=r"weight \(2, 2, 5\) with groups=1 expects 2 \(input shape \(1, 3, 9\)\)"):
        ds.nn.functional.conv1d(ds.ones(1, 3, 9), ds.ones(2, 2, 5))


def test_conv2d_keeps_its_2d_shapes() -> None:
    with pytest.raises(ValueError, match=r"input 3x3 is smaller than the dilated kernel 5x5.*\(1, 2, 3, 3\)"):
        ds.nn.Conv2d(2, 2, 5)(ds.ones(1, 2, 3, 3))
