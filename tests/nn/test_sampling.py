"""affine_grid and grid_sample against torch: values and gradients for input, grid and theta."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(check_op: Any, align_corners: bool) -> None:
    theta = np.random.default_rng(0).standard_normal((2, 2, 3)).astype(np.float32)
    check_op(
        lambda t: F.affine_grid(t, [2, 3, 4, 5], align_corners=align_corners),
        lambda t: TF.affine_grid(t, [2, 3, 4, 5], align_corners=align_corners),
        [theta],
    )


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch(check_op: Any, mode: str, padding_mode: str, align_corners: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = (rng.uniform(-1.3, 1.3, (2, 4, 7, 2))).astype(np.float32)  # some locations fall outside
    kwargs = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    check_op(
        lambda x, g: F.grid_sample(x, g, **kwargs),
        lambda x, g: TF.grid_sample(x, g, **kwargs),
        [x, grid],
        grad_inputs=[0, 1] if mode == "bilinear" else [0],
    )


def test_spatial_transformer_path_matches_torch(check_op: Any) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    theta = (np.array([[1.0, 0.1, 0.05], [-0.1, 0.9, 0.0]], np.float32) + 0.05 * rng.standard_normal((2, 2, 3))).astype(
        np.float32
    )
    check_op(
        lambda x, t: F.grid_sample(x, F.affine_grid(t, x.shape, align_corners=False), align_corners=False),
        lambda x, t: TF.grid_sample(x, TF.affine_grid(t, x.size(), align_corners=False), align_corners=False),
        [x, theta],
    )
