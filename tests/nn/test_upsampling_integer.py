"""interpolate on uint8 images against torch's byte kernels (torchvision's resize): blended with
int16 fixed-point weights, rounded and clamped to [0, 255] after each pass (they returned zeros)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

torch = pytest.importorskip("torch")

SHAPES = [((4, 4), (3, 3)), ((7, 5), (9, 11)), ((16, 9), (5, 17)), ((32, 32), (64, 20)), ((1, 6), (2, 7))]


def _both(x: np.ndarray, **options: object) -> tuple[np.ndarray, np.ndarray]:
    ours = ds.nn.functional.interpolate(ds.tensor(x), **options)  # type: ignore[arg-type]
    theirs = torch.nn.functional.interpolate(torch.tensor(x), **options)  # type: ignore[arg-type]
    assert ours.dtype == np.uint8
    return ours.numpy(), theirs.numpy()


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize(("size", "out"), SHAPES)
def test_uint8_bilinear_is_torch_exactly(
    size: tuple[int, int], out: tuple[int, int], channels: int, align_corners: bool, antialias: bool
) -> None:
    x = np.random.default_rng(0).integers(0, 256, (2, channels, *size), dtype=np.uint8)
    ours, theirs = _both(x, size=out, mode="bilinear", align_corners=align_corners, antialias=antialias)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(("size", "out"), SHAPES)
def test_uint8_bicubic_matches_torch(size: tuple[int, int], out: tuple[int, int], align_corners: bool) -> None:
    x = np.random.default_rng(1).integers(0, 256, (2, 3, *size), dtype=np.uint8)
    ours, theirs = _both(x, size=out, mode="bicubic", align_corners=align_corners, antialias=True)
    np.testing.assert_array_equal(ours, theirs)
    # plain bicubic: torch's byte kernel rounds a few pixels (about 0.1%) one or two levels off Keys'
    # weights in int16 fixed point, as computed here; the rest are its bytes exactly
    ours, theirs = _both(x, size=out, mode="bicubic", align_corners=align_corners)
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert diff.max() <= 2 and (diff != 0).sum() <= 1 + 0.01 * diff.size


@pytest.mark.parametrize("scale_factor", [0.5, 0.3, 2.0, 1.7])
@pytest.mark.parametrize("recompute", [None, True])
def test_uint8_bilinear_with_scale_factors(scale_factor: float, recompute: bool | None) -> None:
    x = np.random.default_rng(2).integers(0, 256, (1, 3, 10, 13), dtype=np.uint8)
    ours, theirs = _both(x, scale_factor=scale_factor, mode="bilinear", recompute_scale_factor=recompute)
    np.testing.assert_array_equal(ours, theirs)


def test_the_reported_image() -> None:
    img = np.arange(0, 256, 16, dtype=np.uint8).reshape(1, 1, 4, 4)
    ours, theirs = _both(img, size=(3, 3), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(ours, theirs)  # [14, 35, 56, 99, ...], not zeros
    assert ours.any()


@pytest.mark.parametrize(
    ("shape", "mode", "dtype"),
    [((1, 1, 8), "linear", np.uint8), ((1, 1, 2, 2, 4), "trilinear", np.uint8), ((1, 1, 4, 4), "bilinear", np.int32)],
)
def test_other_integer_blends_are_refused_as_in_torch(shape: tuple[int, ...], mode: str, dtype: type) -> None:
    x = np.zeros(shape, dtype=dtype)
    size = tuple(2 * n for n in shape[2:])
    with pytest.raises(NotImplementedError):
        torch.nn.functional.interpolate(torch.tensor(x), size=size, mode=mode)
    with pytest.raises(DTypeError, match="floating-point input"):
        ds.nn.functional.interpolate(ds.tensor(x), size=size, mode=mode)


def test_uint8_nearest_is_unchanged() -> None:
    x = np.random.default_rng(3).integers(0, 256, (1, 3, 5, 7), dtype=np.uint8)
    ours, theirs = _both(x, size=(9, 4), mode="nearest")
    np.testing.assert_array_equal(ours, theirs)
