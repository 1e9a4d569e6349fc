"""Resampling ops' speed against PyTorch, one thread each, float32 (``--float64``: float64): F.interpolate
(bilinear x2 on 8x32x56x56 and 8x32x32x32, trilinear x2 on 2x16x32x32x32, nearest x2 on 8x32x56x56,
bicubic x2 on 16x16x32x32),
F.grid_sample (bilinear and nearest on 8x16x64x64 with a random grid; trilinear on 2x16x32x32x32
through an affine_grid; bicubic on 4x3x64x64, zeros and reflection padding; bilinear on 1x3x16x16,
where the per-call overhead shows; a spatial transformer's affine_grid + grid_sample, zeros and border
padding, on 1x1x16x16 to 32x3x64x64) and F.adaptive_max_pool2d (1x32x30x25 -> 7x7, non-divisible windows).

Each line times forward alone (no graph) and forward + backward (the input's gradient, and the
grid's for grid_sample); peers run in one process on the same data, interleaved slice by slice,
each figure the median over slices of CPU time per call, the ratio downslope's over PyTorch's.
Outputs are checked against PyTorch before timing. With numba installed downslope runs its
compiled kernels (``downslope.nn._jit_resample``); ``--numpy`` times the NumPy path instead.
Run: python benchmarks/resample.py [--quick] [--numpy] [--float64] [--only grid_sample,bicubic,small,affine,...]
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402


def cases(torch: Any, ds: Any) -> list[tuple[str, tuple[int, ...], Callable[[Any, Any], Any], Any]]:
    """(title, input shape, op(lib, x, extra), extra input array or None)."""
    rng = np.random.default_rng(1)
    theta = np.tile(np.array([[[1, 0.1, 0, 0], [0, 0.9, 0.1, 0.2], [0.05, 0, 1, 0]]], np.float32), (2, 1, 1))

    def interp(mode: str, **kw: Any) -> Callable[[Any, Any, Any], Any]:
        return lambda lib, x, e: lib.nn.functional.interpolate(x, scale_factor=2, mode=mode, **kw)

    def sample(mode: str) -> Callable[[Any, Any, Any], Any]:
        return lambda lib, x, g: lib.nn.functional.grid_sample(x, g, mode=mode, align_corners=False)

    def sample3d(lib: Any, x: Any, e: Any) -> Any:
        grid = lib.nn.functional.affine_grid(lib.tensor(theta), list(x.shape), align_corners=False)
        return lib.nn.functional.grid_sample(x, grid, align_corners=False)

    grid = rng.uniform(-1.1, 1.1, (8, 64, 64, 2)).astype(np.float32)
    grid4 = rng.uniform(-1.1, 1.1, (4, 64, 64, 2)).astype(np.float32)
    grid_small = rng.uniform(-1.1, 1.1, (1, 16, 16, 2)).astype(np.float32)

    def transformer(padding: str, corners: bool) -> Callable[[Any, Any, Any], Any]:
        # a spatial transformer's sampling step: the grid made from theta at every call, as a model does
        def op(lib: Any, x: Any, th: Any) -> Any:
            grid = lib.nn.functional.affine_grid(th, list(x.shape), align_corners=corners)
            return lib.nn.functional.grid_sample(x, grid, padding_mode=padding, align_corners=corners)

        return op

    def thetas(n: int) -> np.ndarray:
        base = np.array([[0.9, 0.1, 0.05], [-0.1, 0.95, 0.02]], np.float32)
        return (base + rng.normal(0, 0.05, (n, 2, 3))).astype(np.float32)

    def bicubic(padding: str, corners: bool) -> Callable[[Any, Any, Any], Any]:
        return lambda lib, x, g: lib.nn.functional.grid_sample(
            x, g, mode="bicubic", padding_mode=padding, align_corners=corners
        )

    return [
        ("interpolate bilinear x2 8x32x56x56", (8, 32, 56, 56), interp("bilinear", align_corners=False), None),
        ("interpolate bilinear x2 8x32x32x32", (8, 32, 32, 32), interp("bilinear", align_corners=False), None),
        ("interpolate nearest x2 8x32x56x56", (8, 32, 56, 56), interp("nearest"), None),
        ("interpolate trilinear x2 2x16x32^3", (2, 16, 32, 32, 32), interp("trilinear", align_corners=False), None),
        ("interpolate bicubic x2 16x16x32x32", (16, 16, 32, 32), interp("bicubic", align_corners=False), None),
        ("grid_sample bilinear 8x16x64x64", (8, 16, 64, 64), sample("bilinear"), grid),
        ("grid_sample nearest 8x16x64x64", (8, 16, 64, 64), sample("nearest"), grid),
        ("grid_sample 3-D affine 2x16x32^3", (2, 16, 32, 32, 32), sample3d, None),
        ("grid_sample bicubic 4x3x64x64", (4, 3, 64, 64), bicubic("zeros", False), grid4),
        ("grid_sample bicubic reflection 4x3x64x64", (4, 3, 64, 64), bicubic("reflection", True), grid4),
        ("grid_sample bilinear small 1x3x16x16", (1, 3, 16, 16), sample("bilinear"), grid_small),
        ("affine+grid_sample small 1x1x16x16 zeros", (1, 1, 16, 16), transformer("zeros", False), thetas(1)),
        ("affine+grid_sample small 1x1x32x32 border ac", (1, 1, 32, 32), transformer("border", True), thetas(1)),
        ("affine+grid_sample 2x1x32x32 border", (2, 1, 32, 32), transformer("border", False), thetas(2)),
        ("affine+grid_sample 64x1x28x28 border ac", (64, 1, 28, 28), transformer("border", True), thetas(64)),
        ("affine+grid_sample 32x3x64x64 zeros ac", (32, 3, 64, 64), transformer("zeros", True), thetas(32)),
        (
            "adaptive_max_pool2d 1x32x30x25->7",
            (1, 32, 30, 25),
            lambda lib, x, e: lib.nn.functional.adaptive_max_pool2d(x, 7),
            None,
        ),
    ]


def main() -> None:
    def flags(parser: Any) -> None:
        parser.add_argument("--numpy", action="store_true", help="time the NumPy path")
        parser.add_argument("--only", default="", help="comma-separated words: the cases whose title holds one")
        parser.add_argument("--float64", action="store_true", help="time float64 data (float32 by default)")

    args, threads = parse_args(__doc__, "fewer slices", flags)
    import torch

    import downslope as ds
    from downslope import jit_gate

    print_header(threads)
    print(
        f"downslope path: {'NumPy' if args.numpy or jit_gate.kernels('downslope.nn._jit_resample') is None else 'numba kernels'}"
    )
    slices = 5 if args.quick else 15
    with jit_gate.disabled() if args.numpy else contextlib.nullcontext():
        for title, shape, op, extra in cases(torch, ds):
            if args.only and not any(word in title for word in args.only.split(",")):
                continue
            dtype = np.float64 if args.float64 else np.float32
            x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
            extra = None if extra is None else extra.astype(dtype)
            peers_f, peers_b = {}, {}
            outs = {}
            for name, lib in (("torch", torch), ("downslope", ds)):
                xt = lib.tensor(x, requires_grad=True)
                et = None if extra is None else lib.tensor(extra, requires_grad=True)
                outs[name] = op(lib, xt, et).detach().numpy()

                def forward(lib: Any = lib, xt: Any = xt, et: Any = et, op: Any = op) -> None:
                    with lib.no_grad():
                        op(lib, xt, et)

                def both(lib: Any = lib, xt: Any = xt, et: Any = et, op: Any = op) -> None:
                    xt.grad = None
                    if et is not None:
                        et.grad = None
                    op(lib, xt, et).sum().backward()

                peers_f[name], peers_b[name] = forward, both
            check_close(title, outs["downslope"], outs["torch"])
            steps = steps_for(list(peers_b.values()), 3e5 if args.quick else 1e6)
            unit = "ms" if steps < 100 else "us"
            show_ratio(title + " fwd", interleaved(peers_f, slices, steps), 44, unit)
            show_ratio(title + " fwd+bwd", interleaved(peers_b, slices, steps), 44, unit)


if __name__ == "__main__":
    main()
