"""Max pooling's speed against PyTorch, one thread each, float32: F.max_pool2d with kernel 3, stride 2,
padding 1 on 32x64x64x64 (a ResNet stem's pooling), with and without ``return_indices``, forward alone
and forward + backward; a 2x2 stride-2 pooling on the same input; and, for the resizes around it,
antialiased bicubic downscaling (8x32x64x64 -> 40x40), forward alone.

Peers run in one process on the same data, interleaved slice by slice, each figure the median over
slices of CPU time per call, the ratio downslope's over PyTorch's. Outputs, indices and gradients are
checked against PyTorch before timing. With numba installed downslope runs its compiled kernels;
``--numpy`` times the NumPy formulation instead (what DOWNSLOPE_JIT=0 and devices run).
Run: python benchmarks/max_pool.py [--quick] [--numpy] [--threads N]
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


def _cases() -> list[tuple[str, tuple[int, ...], Callable[[Any, Any], Any], bool]]:
    """(title, input shape, op(F, x) returning the output (and indices), whether to time backward)."""

    def pool(indices: bool, k: int = 3, s: int = 2, p: int = 1) -> Callable[[Any, Any], Any]:
        return lambda F, x: F.max_pool2d(x, k, s, p, return_indices=indices)

    def aa(F: Any, x: Any) -> Any:
        return F.interpolate(x, size=(40, 40), mode="bicubic", antialias=True)

    big = (32, 64, 64, 64)
    return [
        ("max_pool2d k3 s2 p1, indices, fwd", big, pool(True), False),
        ("max_pool2d k3 s2 p1, indices, fwd+bwd", big, pool(True), True),
        ("max_pool2d k3 s2 p1, fwd", big, pool(False), False),
        ("max_pool2d k3 s2 p1, fwd+bwd", big, pool(False), True),
        ("max_pool2d k2 s2, fwd+bwd", big, pool(False, 2, 2, 0), True),
        ("bicubic antialias 64->40, fwd", (8, 32, 64, 64), aa, False),
    ]


def main() -> None:
    def flags(parser: Any) -> None:
        parser.add_argument("--numpy", action="store_true", help="time downslope's NumPy path (no numba kernels)")

    args, threads = parse_args(__doc__, "fewer slices (a smoke run)", flags)
    import torch

    import downslope as ds
    from downslope.nn import _jit

    print_header(threads)
    print("downslope path:", "NumPy (--numpy)" if args.numpy else "compiled kernels where numba is installed")
    rng = np.random.default_rng(0)
    width = 42
    ratios = []
    for title, shape, op, backward in _cases():
        a = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            ref = op(torch.nn.functional, torch.from_numpy(a))
        ref_out = ref[0] if isinstance(ref, tuple) else ref
        g = rng.standard_normal(tuple(ref_out.shape)).astype(np.float32)
        gt, gd = torch.from_numpy(g), ds.from_numpy(g)

        def run_torch(op: Any = op, a: Any = a, gt: Any = gt, backward: bool = backward) -> Any:
            if not backward:
                with torch.no_grad():
                    return op(torch.nn.functional, torch.from_numpy(a))
            x = torch.from_numpy(a).requires_grad_()
            out = op(torch.nn.functional, x)
            (out[0] if isinstance(out, tuple) else out).backward(gt)
            return out, x.grad

        def run_ds(op: Any = op, a: Any = a, gd: Any = gd, backward: bool = backward) -> Any:
            if not backward:
                with ds.no_grad():
                    return op(ds.nn.functional, ds.from_numpy(a))
            x = ds.from_numpy(a).requires_grad_()
            out = op(ds.nn.functional, x)
            (out[0] if isinstance(out, tuple) else out).backward(gd)
            return out, x.grad

        with _jit.disabled() if args.numpy else contextlib.nullcontext():
            theirs, ours = run_torch(), run_ds()
            if backward:
                check_close(title + " grad", ours[1].numpy(), theirs[1].numpy())
                theirs, ours = theirs[0], ours[0]
            if isinstance(theirs, tuple):
                check_close(title, ours[0].detach().numpy(), theirs[0].detach().numpy())
                assert np.array_equal(ours[1].numpy(), theirs[1].numpy()), f"{title}: indices differ from torch's"
            else:
                check_close(title, ours.detach().numpy(), theirs.detach().numpy())
            steps = steps_for([run_torch, run_ds], 300_000)
            times = interleaved({"torch": run_torch, "downslope": run_ds}, 3 if args.quick else 7, steps)
        ratios.append(show_ratio(title, times, width, "ms"))
    print(f"median ratio downslope/torch: {float(np.median(ratios)):.2f}; worst: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
