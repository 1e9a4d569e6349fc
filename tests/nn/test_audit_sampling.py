"""grid_sample's bicubic mode and 5-D input, and affine_grid's 3-D size, against torch in float64:
values and the gradients of the input, the grid and theta."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

CASES = [
    (nd, mode, padding, corners)
    for nd, mode, padding, corners in itertools.product(
        (2, 3), ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True)
    )
    if not (mode == "bicubic" and nd == 3)
]


@pytest.mark.parametrize(("nd", "mode", "padding", "corners"), CASES)
def test_grid_sample_matches_torch(nd: int, mode: str, padding: str, corners: bool) -> None:
    rng = np.random.default_rng(nd * 100 + len(mode) * 10 + len(padding) + corners)
    for rep in range(3):
        sizes = [int(rng.integers(1, 6)) for _ in range(nd)]
        x = rng.standard_normal([2, 3, *sizes])
        grid = rng.uniform(-1.4, 1.4, [2, *(int(rng.integers(1, 4)) for _ in range(nd)), nd])
        if rep == 2:  # on pixel centres and borders, where the branches meet
            grid = np.round(grid * 4) / 4
        xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
        xd, gd = ds.from_numpy(x.copy()), ds.from_numpy(grid.copy())
        xd.requires_grad_(True)
        gd.requires_grad_(True)
        kw: dict[str, Any] = dict(mode=mode, padding_mode=padding, align_corners=corners)
        t, d = TF.grid_sample(xt, gt, **kw), F.grid_sample(xd, gd, **kw)
        assert d.shape == tuple(t.shape)
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(tuple(t.shape))
        t.backward(torch.tensor(g))
        d.backward(ds.from_numpy(g))
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(gd.grad.numpy(), gt.grad.numpy(), rtol=1e-10, atol=1e-11)


def test_grid_sample_bicubic_needs_4d_input() -> None:
    with pytest.raises(ds.errors.ArgumentError, match="bicubic"):
        F.grid_sample(ds.randn(1, 1, 2, 2, 2), ds.zeros(1, 1, 1, 1, 3), mode="bicubic", align_corners=False)
    with pytest.raises(ds.errors.ShapeError, match="grid"):
        F.grid_sample(ds.randn(1, 1, 2, 2, 2), ds.zeros(1, 1, 1, 2), align_corners=False)


@pytest.mark.parametrize("size", [[2, 3, 4, 5], [2, 3, 2, 4, 5], [2, 1, 3, 1, 2]])
@pytest.mark.parametrize("corners", [False, True])
def test_affine_grid_matches_torch(size: list[int], corners: bool) -> None:
    nd = len(size) - 2
    theta = np.random.default_rng(len(size)).standard_normal((size[0], nd, nd + 1))
    tt = torch.tensor(theta, requires_grad=True)
    td = ds.from_numpy(theta.copy())
    td.requires_grad_(True)
    t, d = TF.affine_grid(tt, size, align_corners=corners), F.affine_grid(td, size, align_corners=corners)
    assert d.shape == tuple(t.shape)
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-13, atol=1e-14)
    g = np.random.default_rng(0).standard_normal(tuple(t.shape))
    t.backward(torch.tensor(g))
    d.backward(ds.from_numpy(g))
    np.testing.assert_allclose(td.grad.numpy(), tt.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_affine_grid_checks_theta_against_the_size() -> None:
    with pytest.raises(ds.errors.ShapeError, match=r"\(1, 3, 4\)"):
        F.affine_grid(ds.zeros(1, 2, 3), [1, 1, 2, 2, 2], align_corners=False)
    with pytest.raises(ds.errors.ShapeError, match="size must be"):
        F.affine_grid(ds.zeros(1, 2, 3), [1, 1, 2], align_corners=False)
