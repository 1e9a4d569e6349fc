"""grid_sample's compiled kernels (and the NumPy path beside them) against torch in float64: values,
the input's and the grid's gradients, torch's rounding of the unnormalised coordinates (the
identity theta of affine_grid puts points exactly on pixel centres), and create_graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _both(x: np.ndarray, grid: np.ndarray, seed: int = 5, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """(out, d/dx, d/dgrid) of sum(out * r) from torch and downslope, float64."""
    r = np.random.default_rng(seed).standard_normal(TF.grid_sample(torch.tensor(x), torch.tensor(grid), **kwargs).shape)
    results = []
    for lib in (torch, ds):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        gt = lib.tensor(grid, dtype=lib.float64, requires_grad=True)
        out = lib.nn.functional.grid_sample(xt, gt, **kwargs)
        (out * lib.tensor(r, dtype=lib.float64)).sum().backward()
        results.append([np.asarray(out.detach().numpy()), xt.grad.numpy(), gt.grad.numpy()])
    return results[0], results[1]


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("spatial", [2, 3])
def test_grid_sample_float64_matches_torch(
    resample_path: str, mode: str, padding_mode: str, align_corners: bool, spatial: int
) -> None:
    rng = np.random.default_rng(spatial)
    x = rng.standard_normal((2, 3, *(4, 5, 6)[3 - spatial :]))
    grid = rng.uniform(-1.3, 1.3, (2, *(3, 4, 5)[3 - spatial :], spatial))  # some points fall outside
    expected, got = _both(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sizes", [(4, 5), (1, 3), (6, 1)])
def test_grid_sample_bicubic_float64_matches_torch(
    resample_path: str, padding_mode: str, align_corners: bool, sizes: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(sizes) + 10 * align_corners)
    x = rng.standard_normal((2, 3, *sizes))
    grid = rng.uniform(-1.6, 1.6, (2, 5, 4, 2))  # past the borders: several reflections, clamped taps
    grid[1] = np.round(grid[1] * 4) / 4  # on pixel centres and borders, where the branches meet
    expected, got = _both(x, grid, mode="bicubic", padding_mode=padding_mode, align_corners=align_corners)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_grid_sample_bicubic_float32_matches_torch(resample_path: str) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (2, 4, 5, 2)).astype(np.float32)
    for padding_mode in ("zeros", "reflection"):
        kw: dict[str, Any] = dict(mode="bicubic", padding_mode=padding_mode, align_corners=False)
        xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
        xd, gd = ds.tensor(x, requires_grad=True), ds.tensor(grid, requires_grad=True)
        t, d = TF.grid_sample(xt, gt, **kw), F.grid_sample(xd, gd, **kw)
        assert d.dtype == ds.float32
        t.sum().backward()
        d.sum().backward()
        for ours, theirs in ((d, t), (xd.grad, xt.grad), (gd.grad, gt.grad)):
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 4, 16, 20), (2, 1, 28, 28), (1, 2, 6, 10, 12)])
def test_identity_theta_gradient_matches_torch(resample_path: str, shape: tuple[int, ...]) -> None:
    # pixel centres: torch's 2-D kernel rounds (coord + 1) * (size / 2) - 0.5 once (an FMA), which
    # lands some points just below the centre, where the one-sided derivative is the left one
    spatial = len(shape) - 2
    x = np.random.default_rng(0).standard_normal(shape)
    eye = np.eye(spatial, spatial + 1)[None].repeat(shape[0], 0)
    grads = []
    for lib in (torch, ds):
        theta = lib.tensor(eye, dtype=lib.float64, requires_grad=True)
        grid = lib.nn.functional.affine_grid(theta, list(shape), align_corners=False)
        y = lib.nn.functional.grid_sample(lib.tensor(x, dtype=lib.float64), grid, align_corners=False)
        (y * y.detach().cos()).sum().backward()
        grads.append(theta.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_grid_sample_non_finite_grid_reads_zero(resample_path: str) -> None:
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    grid = np.array([[[[np.nan, 0.0], [np.inf, 0.0], [0.0, -np.inf], [1e30, 0.0]]]])
    for mode in ("bilinear", "nearest"):
        got = F.grid_sample(
            ds.tensor(x, dtype=ds.float64), ds.tensor(grid, dtype=ds.float64), mode=mode, align_corners=False
        )
        want = TF.grid_sample(torch.tensor(x), torch.tensor(grid), mode=mode, align_corners=False)
        finite = np.isfinite(grid[..., 0]) & np.isfinite(grid[..., 1])
        np.testing.assert_array_equal(got.numpy()[..., finite[0]], want.numpy()[..., finite[0]])
        assert np.all(got.numpy()[0, 0, 0, 3] == 0)  # far outside: zeros padding


@pytest.mark.parametrize(("spatial", "mode"), [(2, "bilinear"), (3, "bilinear"), (2, "bicubic")])
def test_grid_sample_create_graph_matches_numpy_path(spatial: int, mode: str) -> None:
    if jit_gate.kernels("downslope.nn._jit_resample", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, *(3, 4, 5)[3 - spatial :]))
    grid = rng.uniform(-1, 1, (1, *(2, 3, 4)[3 - spatial :], spatial))
    kw: dict[str, Any] = dict(mode=mode, padding_mode="reflection" if mode == "bicubic" else "zeros")

    def second(compiled: bool) -> list[np.ndarray]:
        xt = ds.tensor(x, dtype=ds.float64, requires_grad=True)
        gt = ds.tensor(grid, dtype=ds.float64, requires_grad=True)
        if compiled:
            out = F.grid_sample(xt, gt, align_corners=False, **kw)
        else:
            with jit_gate.disabled():
                out = F.grid_sample(xt, gt, align_corners=False, **kw)
        gx, gg = ds.autograd.grad((out * out).sum(), [xt, gt], create_graph=True)
        return [a.numpy() for a in ds.autograd.grad((gx * gx).sum() + (gg * gg).sum(), [xt, gt])]

    for a, b in zip(second(True), second(False)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def scatter_calls(monkeypatch: Any) -> list[Any]:
    """Calls of the rules' scatter into zeros at advanced indices (the gathers' adjoint: np.add.at)
    from now on; a basic slice's adjoint (an assignment) is not counted."""
    from downslope.graph import ArrayRules

    calls: list[Any] = []
    original = ArrayRules.scatter

    def spy(*args: Any) -> Any:
        if args[2]:  # advanced
            calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(ArrayRules, "scatter", staticmethod(spy))
    return calls


@pytest.mark.parametrize("spatial", [2, 3])
def test_grid_sample_backward_is_compiled(monkeypatch: Any, spatial: int) -> None:
    # the NumPy formulation's gathers scatter their gradients through np.add.at (which made backward
    # 7x slower than torch's); the compiled path scatters in its own kernel
    x = ds.randn(2, 3, *(4, 8, 8)[3 - spatial :], requires_grad=True)
    if jit_gate.kernels("downslope.nn._jit_resample", x.array) is None:
        pytest.skip("no numba (the jit extra), or the data is not on the host")
    grid = ds.tensor(
        np.random.default_rng(0).uniform(-1, 1, (2, *(3, 5, 5)[3 - spatial :], spatial)).astype(np.float32)
    )
    grid.requires_grad_(True)
    calls = scatter_calls(monkeypatch)
    with jit_gate.disabled():
        F.grid_sample(x, grid, align_corners=False).sum().backward()
    assert calls  # the NumPy path does scatter (so the spy sees the old formulation)
    calls.clear()
    for mode in ("bilinear", "nearest", "bicubic")[: 3 if spatial == 2 else 2]:
        F.grid_sample(x, grid, mode=mode, align_corners=False).sum().backward()
    assert not calls
