"""F.interpolate / nn.Upsample against torch: every mode, sizes and scale factors, values and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")

CASES = [
    ((1, 2, 5), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 2, 5), {"size": 7, "mode": "nearest"}),
    ((1, 2, 5), {"size": 3, "mode": "nearest-exact"}),
    ((2, 2, 5), {"size": 9, "mode": "linear", "align_corners": False}),
    ((2, 2, 5), {"scale_factor": 1.5, "mode": "linear", "align_corners": True}),
    ((1, 3, 4, 5), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 3, 4, 5), {"size": (7, 3), "mode": "nearest"}),
    ((1, 3, 4, 5), {"scale_factor": (2, 3), "mode": "bilinear", "align_corners": False}),
    ((2, 1, 4, 5), {"size": (6, 9), "mode": "bilinear", "align_corners": True}),
    ((2, 1, 6, 6), {"size": (4, 3), "mode": "bilinear", "align_corners": False}),
    ((2, 1, 4, 4), {"scale_factor": 0.5, "mode": "bilinear"}),
    ((1, 3, 4, 5), {"scale_factor": 2, "mode": "bicubic"}),
    ((2, 1, 6, 8), {"size": (7, 5), "mode": "bicubic", "align_corners": False}),
    ((2, 1, 6, 8), {"size": (3, 11), "mode": "bicubic", "align_corners": True}),
    ((1, 2, 6, 8), {"scale_factor": (1.7, 0.5), "mode": "bicubic"}),
]


@pytest.mark.parametrize(("shape", "kwargs"), CASES, ids=[f"{c[1]}" for c in CASES])
def test_interpolate_matches_torch(check_op: Any, shape: tuple, kwargs: dict) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    check_op(lambda x: F.interpolate(x, **kwargs), lambda x: torch.nn.functional.interpolate(x, **kwargs), [x])


def test_upsample_modules_match_torch(check_op: Any) -> None:
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32)
    check_op(nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2), [x])
    check_op(
        nn.Upsample(size=(5, 5), mode="bilinear", align_corners=False),
        torch.nn.Upsample(size=(5, 5), mode="bilinear", align_corners=False),
        [x],
    )
    check_op(nn.UpsamplingNearest2d(scale_factor=3), torch.nn.UpsamplingNearest2d(scale_factor=3), [x])
    check_op(nn.UpsamplingBilinear2d(size=(6, 7)), torch.nn.UpsamplingBilinear2d(size=(6, 7)), [x])


def test_interpolate_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(ds.ones(1, 1, 4))
    with pytest.raises(ValueError, match="mode 'bilinear' does not fit"):
        F.interpolate(ds.ones(1, 1, 4), size=8, mode="bilinear")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(ds.ones(1, 1, 4, 4), size=8, mode="bicubical")


@pytest.mark.parametrize(
    "kwargs",
    [{"scale_factor": 2, "mode": "trilinear", "align_corners": False}, {"size": (3, 5, 4), "mode": "trilinear",
     "align_corners": True}, {"scale_factor": (1, 2, 2), "mode": "nearest"}],
)  # fmt: skip
def test_volumetric_interpolation_matches_torch(check_op: Any, kwargs: dict) -> None:
    x = np.random.default_rng(2).standard_normal((1, 2, 2, 3, 4)).astype(np.float32)
    check_op(lambda x: F.interpolate(x, **kwargs), lambda x: torch.nn.functional.interpolate(x, **kwargs), [x])


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [((2, 3, 7), {"size": 3}), ((2, 3, 8, 6), {"scale_factor": 0.5}), ((1, 2, 5, 9), {"size": (3, 4)}),
     ((1, 2, 4, 4, 6), {"size": (2, 2, 3)}), ((1, 1, 3, 3), {"size": 6})],
)  # fmt: skip
def test_area_mode_matches_torch(check_op, shape, kwargs):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    check_op(
        lambda t: F.interpolate(t, mode="area", **kwargs),
        lambda t: torch.nn.functional.interpolate(t, mode="area", **kwargs),
        [x],
    )


def test_interpolate_to_a_size_of_zero_or_less_raises_as_torch() -> None:
    for kwargs in ({"size": 0}, {"size": -2}, {"scale_factor": 0.1}):
        with pytest.raises(RuntimeError):
            torch.nn.functional.interpolate(torch.randn(1, 1, 4), **kwargs)
        with pytest.raises(ds.errors.ArgumentError, match="sizes should be greater than 0"):
            ds.nn.functional.interpolate(ds.randn(1, 1, 4), **kwargs)  # was an empty tensor or a ZeroDivisionError
    with pytest.raises(ds.errors.ArgumentError, match="interpolate"):
        ds.nn.Upsample(size=0)(ds.randn(1, 1, 4))
    assert ds.nn.Upsample(scale_factor=0.5)(ds.randn(1, 1, 4)).shape == (1, 1, 2)


AA_CASES = [
    ((2, 3, 16, 20), {"scale_factor": 0.5}),
    ((1, 2, 17, 13), {"size": (5, 4)}),
    ((1, 1, 9, 10), {"scale_factor": 0.3}),
    ((1, 2, 6, 7), {"size": (11, 15)}),
    ((1, 1, 8, 8), {"scale_factor": 1.7}),
    ((1, 2, 17, 13), {"size": (5, 4), "align_corners": True}),
    ((1, 1, 20, 9), {"size": (7, 9), "align_corners": True}),
    ((1, 1, 10, 10), {"size": (1, 3)}),
    ((1, 1, 12, 30), {"scale_factor": (0.25, 0.4)}),
    ((1, 1, 12, 30), {"scale_factor": (0.26, 0.41), "recompute_scale_factor": True}),
]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("shape", "kwargs"), AA_CASES, ids=[f"{s}{k}" for s, k in AA_CASES])
def test_antialiased_resizing_matches_torch_values_and_gradients(mode, shape, kwargs) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape)
    ours32 = F.interpolate(ds.tensor(a, dtype=ds.float32), mode=mode, antialias=True, **kwargs)
    theirs32 = torch.nn.functional.interpolate(
        torch.tensor(a, dtype=torch.float32), mode=mode, antialias=True, **kwargs
    )
    assert ours32.dtype == ds.float32
    np.testing.assert_allclose(ours32.numpy(), theirs32.numpy(), rtol=0, atol=1e-5)
    t = torch.tensor(a, requires_grad=True)
    y = torch.nn.functional.interpolate(t, mode=mode, antialias=True, **kwargs)
    w = rng.normal(size=tuple(y.shape))
    (y * torch.tensor(w)).sum().backward()
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    yd = F.interpolate(x, mode=mode, antialias=True, **kwargs)
    (yd * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_allclose(yd.detach().numpy(), y.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_antialiased_resizing_on_the_strict_device() -> None:
    a = np.random.default_rng(1).normal(size=(1, 2, 12, 10))
    ours = F.interpolate(
        ds.tensor(a, dtype=ds.float64, device="strict"), scale_factor=0.5, mode="bicubic", antialias=True
    )
    theirs = torch.nn.functional.interpolate(torch.tensor(a), scale_factor=0.5, mode="bicubic", antialias=True)
    np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("mode", "shape"), [("nearest", (1, 1, 8, 8)), ("linear", (1, 1, 8)), ("bilinear", (1, 8, 8))])
def test_antialias_is_refused_outside_bilinear_and_bicubic_on_4d_input_as_torch(mode, shape) -> None:
    with pytest.raises((RuntimeError, ValueError)):
        torch.nn.functional.interpolate(torch.zeros(shape), scale_factor=0.5, mode=mode, antialias=True)
    with pytest.raises(ds.errors.ArgumentError, match="anti-alias"):
        F.interpolate(ds.zeros(*shape), scale_factor=0.5, mode=mode, antialias=True)
