"""interpolate's choices of torch's CPU kernels, bit for bit: nearest/nearest-exact source pixels (the
2-D kernel for small outputs computes in float32 with shortcuts, the generic one in the input's
opmath type) and uint8 bicubic's fixed-point weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# exact-integer source coordinates, where float32 and float64 disagree, on both sides of the 2-D
# kernel's threshold (output height + width <= 128), and exactly doubled sizes past it
KNOWN = [(2, 188), (178, 587), (26, 22), (14, 23), (26, 11), (89, 178), (89, 179), (2, 141), (2, 159), (30, 29)]


def _pairs() -> list[tuple[int, int]]:
    rng = np.random.default_rng(20)
    return KNOWN + [(int(a), int(b)) for a, b in rng.integers(1, 301, size=(60, 2))]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_nearest_source_pixels_match_torch(mode: str, dtype: str, spatial: int) -> None:
    for n_in, n_out in _pairs():
        x = np.arange(float(n_in)).astype(dtype).reshape((1, 1) + (1,) * (spatial - 1) + (n_in,))
        ours = ds.tensor(x, dtype=getattr(ds, dtype))
        for by_scale in (False, True):
            if by_scale:
                f = n_out / n_in
                if math.floor(n_in * f) < 1:
                    continue
                kw: dict = {"scale_factor": (1.0,) * (spatial - 1) + (f,)}
            else:
                kw = {"size": (1,) * (spatial - 1) + (n_out,)}
            ref = TF.interpolate(torch.tensor(x), mode=mode, **kw).numpy()
            got = F.interpolate(ours, mode=mode, **kw).numpy()
            assert got.shape == ref.shape, (n_in, n_out, kw)
            np.testing.assert_array_equal(got, ref, err_msg=f"{n_in}->{n_out} {kw}")


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nearest_2d_both_dims_follow_the_kernel_threshold(mode: str, dtype: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        oh, ow = (int(v) for v in rng.integers(1, 160, 2))
        x = rng.standard_normal((2, 3, h, w)).astype(dtype)
        got = F.interpolate(ds.tensor(x, dtype=getattr(ds, dtype)), size=(oh, ow), mode=mode).numpy()
        np.testing.assert_array_equal(got, TF.interpolate(torch.tensor(x), size=(oh, ow), mode=mode).numpy())


def test_uint8_bicubic_matches_torch_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    xi = np.random.RandomState(0).randint(0, 255, size=(1, 3, 5, 7)).astype(np.uint8)
    cases: list[tuple[np.ndarray, dict]] = [(xi, {"scale_factor": 1.5})]
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 14, 2))
        img = rng.integers(0, 256, size=(1, 2, h, w)).astype(np.uint8)
        corners = [None, False, True][int(rng.integers(3))]
        if rng.integers(2):
            f = float(rng.choice([0.5, 0.75, 1.3, 1.5, 2.0, 2.7, 3.0]))
            if math.floor(h * f) < 1 or math.floor(w * f) < 1:
                continue
            cases.append((img, {"scale_factor": f, "align_corners": corners}))
        else:
            cases.append((img, {"size": tuple(int(v) for v in rng.integers(1, 20, 2)), "align_corners": corners}))
    for img, kw in cases:
        ref = TF.interpolate(torch.tensor(img), mode="bicubic", **kw).numpy()
        got = F.interpolate(ds.tensor(img), mode="bicubic", **kw).numpy()
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, ref, err_msg=f"{img.shape} {kw}")
