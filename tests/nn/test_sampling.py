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
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
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


def _edge_grid(h: int, w: int, align_corners: bool) -> np.ndarray:
    """Locations on the pixel centres and edges, on the image border, and whole periods outside:
    the points where clamping and reflecting change slope."""
    px = np.array([-2 * w - 0.25, -w, -1.0, -0.5, 0.0, 0.25, w - 1.0, w - 0.5, w, w + 0.75, 3 * w - 1.5])
    py = np.array([-1.0, -0.5, 0.0, h - 1.0, h - 0.5, h + 2.25])

    def normalize(p: np.ndarray, n: int) -> np.ndarray:
        return p * 2.0 / (n - 1) - 1.0 if align_corners else (2.0 * p + 1.0) / n - 1.0

    gx, gy = np.meshgrid(normalize(px, w), normalize(py, h))
    return np.stack([np.stack([gx, gy], -1)] * 2).astype(np.float32)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_padding_at_the_edges_matches_torch(
    check_op: Any, mode: str, padding_mode: str, align_corners: bool
) -> None:
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 5)).astype(np.float32)
    kwargs = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    check_op(
        lambda x, g: F.grid_sample(x, g, **kwargs),
        lambda x, g: TF.grid_sample(x, g, **kwargs),
        [x, _edge_grid(4, 5, align_corners)],
        grad_inputs=[0, 1] if mode == "bilinear" else [0],
    )


@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_reflection_double_precision_gradients_match_torch(align_corners: bool) -> None:
    import downslope as ds

    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3, 4))
    grid = rng.uniform(-3.0, 3.0, (1, 5, 6, 2))
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in (x, grid)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, grid)]
    kwargs = {"padding_mode": "reflection", "align_corners": align_corners}
    y, ty = F.grid_sample(*ours, **kwargs), TF.grid_sample(*theirs, **kwargs)
    weights = rng.standard_normal(ty.shape)
    (y * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_grid_sample_refuses_an_unknown_padding_mode() -> None:
    import downslope as ds

    with pytest.raises(ds.DownslopeError, match="reflection"):
        F.grid_sample(ds.zeros(1, 1, 2, 2), ds.zeros(1, 1, 1, 2), padding_mode="mirror")
