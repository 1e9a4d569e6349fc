"""Speed against PyTorch, one thread each, of the ops that scientific (non-deep-learning) programs
lean on: triangular and Cholesky solves and least squares in float64 (a GP fit, IRLS), grid_sample
(a spatial transformer's warp), and the per-call cost of small ops in loops (a 3-tap conv1d stencil
with replicate padding, boolean-mask indexing), plus two whole programs: a heat-equation inverse
problem (F.pad + F.conv1d, 200 steps, backward) and ALS matrix factorisation (masks, 4x4 solves).

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time per
call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is as
fast or faster). Values are checked against PyTorch before timing.
Run: python benchmarks/scientific_small_ops.py [--quick] [--only solve_triangular,heat,...]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402

RNG = np.random.default_rng(0)
N_TRI = 400
_M = RNG.normal(size=(N_TRI, 2 * N_TRI))
L_TRI = np.linalg.cholesky(_M @ _M.T / (2 * N_TRI) + np.eye(N_TRI))
B_TRI = RNG.normal(size=(N_TRI, 1))
A_LS, B_LS = RNG.normal(size=(3000, 41)), RNG.normal(size=(3000, 1))
A_LS_SMALL, B_LS_SMALL = RNG.normal(size=(400, 10)), RNG.normal(size=(400, 1))
IMG_MNIST = RNG.normal(size=(64, 1, 28, 28)).astype(np.float32)
IMG_RGB = RNG.normal(size=(32, 3, 64, 64)).astype(np.float32)
THETA = np.array([[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]], np.float32)
U64 = RNG.random((1, 1, 64))
STENCIL = np.array([[[1.0, -2.0, 1.0]]])
A_MASK = RNG.random((30, 40))


def _grid_case(img: np.ndarray) -> Callable[[Any], Callable[[], Any]]:
    def make(lib: Any) -> Callable[[], Any]:
        import torch

        F = lib.nn.functional
        x = lib.from_numpy(img)
        # one grid for both peers (torch's affine_grid): the two affine_grids' GEMMs may round a coordinate
        # one ulp apart depending on the machine's GEMM kernel, which moves a sample of a 64-pixel image by
        # ~4e-6 px and its value by up to ~2e-5, more than the check below allows for grid_sample itself
        theta = torch.from_numpy(np.tile(THETA, (img.shape[0], 1, 1)))
        grid = lib.from_numpy(torch.nn.functional.affine_grid(theta, list(img.shape), align_corners=False).numpy())
        return lambda: F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return make


def _heat(lib: Any) -> Callable[[], Any]:
    """An explicit finite-difference heat equation differentiated through 200 steps (one SGD fit step)."""
    F, f64 = lib.nn.functional, lib.float64
    nx, dt = 64, 1e-4
    u0 = lib.exp(-100 * (lib.linspace(0, 1, nx, dtype=f64) - 0.5) ** 2)
    st = lib.tensor(STENCIL, dtype=f64) * nx**2

    def solve(alpha: Any) -> Any:
        u = u0.clone()
        for _ in range(200):
            u = u + dt * alpha * F.conv1d(F.pad(u[None, None], (1, 1), mode="replicate"), st)[0, 0]
        return u

    target = solve(lib.tensor(0.7, dtype=f64)).detach()

    def step() -> Any:
        alpha = lib.tensor(0.2, dtype=f64, requires_grad=True)
        loss = ((solve(alpha) - target) ** 2).sum()
        loss.backward()
        return alpha.grad

    return step


def _als(lib: Any) -> Callable[[], Any]:
    """One sweep of alternating least squares over users and items (row masks, 4x4 solves)."""
    f64 = lib.float64
    r = np.random.default_rng(1)
    n_u, n_i, k = 30, 40, 4
    R = lib.tensor(r.normal(size=(n_u, k)) @ r.normal(size=(k, n_i)), dtype=f64)
    M = lib.tensor((r.random((n_u, n_i)) < 0.4).astype(np.float64), dtype=f64)
    U0 = lib.tensor(r.normal(size=(n_u, k)) * 0.1, dtype=f64)
    V = lib.tensor(r.normal(size=(n_i, k)) * 0.1, dtype=f64)
    eye = lib.eye(k, dtype=f64)

    def sweep() -> Any:
        U = U0.clone()
        for u in range(n_u):
            m = M[u].bool()
            Vm = V[m]
            U[u] = lib.linalg.solve(Vm.T @ Vm + 0.1 * eye, Vm.T @ R[u, m])
        for i in range(n_i):
            m = M[:, i].bool()
            Um = U[m]
            V[i] = lib.linalg.solve(Um.T @ Um + 0.1 * eye, Um.T @ R[m, i])
        return U

    return sweep


def _case(fn: Callable[..., Any], *arrays: np.ndarray) -> Callable[[Any], Callable[[], Any]]:
    """A maker of ``fn(lib, *tensors)`` for a library, the tensors made once from ``arrays``."""

    def make(lib: Any) -> Callable[[], Any]:
        tensors = [lib.from_numpy(a) for a in arrays]
        return lambda: fn(lib, *tensors)

    return make


# name -> (a maker of the call for a library, the unit shown)
CASES: dict[str, tuple[Callable[[Any], Callable[[], Any]], str]] = {
    "solve_triangular n=400 k=1": (
        _case(lambda lib, L, b: lib.linalg.solve_triangular(L, b, upper=False), L_TRI, B_TRI),
        "us",
    ),
    "cholesky_solve n=400 k=1": (_case(lambda lib, L, b: lib.cholesky_solve(b, L), L_TRI, B_TRI), "us"),
    "lstsq 3000x41": (_case(lambda lib, a, b: lib.linalg.lstsq(a, b), A_LS, B_LS), "us"),
    "lstsq 400x10": (_case(lambda lib, a, b: lib.linalg.lstsq(a, b), A_LS_SMALL, B_LS_SMALL), "us"),
    "grid_sample 64x1x28x28": (_grid_case(IMG_MNIST), "us"),
    "grid_sample 32x3x64x64": (_grid_case(IMG_RGB), "us"),
    "conv1d 1x1x64 k=3": (_case(lambda lib, u, w: lib.nn.functional.conv1d(u, w), U64, STENCIL), "us"),
    "pad replicate 1x1x64": (_case(lambda lib, u: lib.nn.functional.pad(u, (1, 1), mode="replicate"), U64), "us"),
    "int then mask index 30x40": (_case(lambda lib, a, m: a[0, m], A_MASK, A_MASK[0] > 0.5), "us"),
    "2-D mask index 30x40": (_case(lambda lib, a, m: a[m], A_MASK, A_MASK > 0.5), "us"),
    "heat inverse problem": (_heat, "ms"),
    "ALS sweep": (_als, "ms"),
}


def _values(out: Any) -> list[np.ndarray]:
    if isinstance(out, tuple):
        return [np.asarray(o.detach().numpy()) for o in out if o.numel()]
    return [np.asarray(out.detach().numpy())]


def bench(name: str, slices: int, budget_us: float) -> float:
    """downslope's time over torch's for one case."""
    import torch

    import downslope as ds

    make, unit = CASES[name]
    peers = {"torch": make(torch), "downslope": make(ds)}
    for theirs, ours in zip(_values(peers["torch"]()), _values(peers["downslope"]())):
        if not np.allclose(ours, theirs, rtol=1e-5, atol=1e-5):
            raise SystemExit(f"{name}: downslope's values differ from torch's by {np.abs(ours - theirs).max():.3g}")
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(name, interleaved(peers, slices, steps), 28, unit=unit)


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated of {', '.join(CASES)}")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (9, 200_000.0)
    ratios = []
    for name in args.only.split(","):
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; pick from {', '.join(CASES)}")
        ratios.append(bench(name, slices, budget))
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
