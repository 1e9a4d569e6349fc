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


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore:Since version 1.3.0")  # torch on unit-size grids
def test_affine_grid_at_identity_is_bit_identical_to_torch(align_corners: bool, dtype: Any) -> None:
    import downslope as ds

    for n in [*range(1, 40), 64, 100, 224, 257]:
        for size in ((2, 1, n, n + 3), (1, 1, 3, n, n + 1)):
            spatial = len(size) - 2
            theta = np.zeros((size[0], spatial, spatial + 1), dtype)
            theta[:, range(spatial), range(spatial)] = 1
            ref = TF.affine_grid(torch.tensor(theta), size, align_corners=align_corners).numpy()
            ours = F.affine_grid(ds.tensor(theta, dtype=dtype), size, align_corners=align_corners).numpy()
            assert ours.dtype == ref.dtype
            np.testing.assert_array_equal(ours, ref, err_msg=str(size))


@pytest.mark.parametrize("align_corners", [False, True])
def test_spatial_transformer_gradient_at_identity_matches_torch(align_corners: bool) -> None:
    # at the identity the sample points sit on pixel centres (align_corners=False): an ulp decides
    # which side's bilinear derivative grid_sample takes
    import downslope as ds

    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    grads = []
    for lib in (torch, ds):
        theta = lib.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], requires_grad=True)
        grid = lib.nn.functional.affine_grid(theta, (1, 1, 28, 28), align_corners=align_corners)
        y = lib.nn.functional.grid_sample(lib.tensor(x), grid, align_corners=align_corners, padding_mode="border")
        (g,) = lib.autograd.grad((y * y).sum(), theta)
        grads.append(g.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-4, atol=1e-3)
