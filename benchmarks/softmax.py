"""softmax, log_softmax and cross_entropy speed against PyTorch, one thread each: forward alone
under ``no_grad`` and forward + backward (the input gradient of a given output gradient), float32,
over the last dim of 4096x1000, 256x10, 64x50257 (a language model's head) and 32x4x64x64
(attention scores); cross_entropy (class indices, mean) over 1024x10000 logits.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time
per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is
as fast or faster). Outputs and input gradients are checked against PyTorch before timing. With
numba installed downslope runs its compiled kernels (``downslope.ops._jit_softmax``); ``--numpy``
times the NumPy path instead (``DOWNSLOPE_JIT=0`` does the same).
Run: python benchmarks/softmax.py [--quick] [--numpy] [--only softmax,log_softmax,cross_entropy]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    backward_peers,
    check_close,
    infer_peers,
    interleaved,
    parse_args,
    print_header,
    show_ratio,
    steps_for,
)

SHAPES = ((4096, 1000), (256, 10), (64, 50257), (32, 4, 64, 64))
BIG = {(4096, 1000), (64, 50257), (32, 4, 64, 64)}  # the shapes of the 1.2x target
TARGET = 1.2
CE_SHAPE = (1024, 10000)


def show(title: str, times: dict[str, float]) -> float:
    return show_ratio(title, times, 40)


def bench_op(name: str, shape: tuple[int, ...], slices: int, budget_us: float) -> tuple[float, float]:
    """(fwd+bwd ratio, forward-only ratio) of ``name`` (softmax or log_softmax) over the last dim."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    theirs: Callable[[Any], Any] = lambda t: getattr(torch.nn.functional, name)(t, -1)  # noqa: E731
    ours: Callable[[Any], Any] = lambda t: getattr(ds.nn.functional, name)(t, -1)  # noqa: E731
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    gt, gd = torch.from_numpy(g), ds.tensor(g)
    torch_step, ours_step = backward_peers(theirs, ours, xt, xd, gt, gd)
    torch_infer, ours_infer = infer_peers(theirs, ours, xt, xd)
    label = f"{name} {'x'.join(map(str, shape))}"
    check_close(label + " output", ours_step().detach().numpy(), torch_step().detach().numpy(), 1e-5)
    check_close(label + " input gradient", xd.grad.numpy(), xt.grad.numpy(), 1e-5)
    steps = steps_for([ours_step, torch_step], budget_us)
    both = show(label + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))
    fwd = show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, 2 * steps))
    return both, fwd


def bench_cross_entropy(slices: int, budget_us: float) -> tuple[float, float]:
    """(fwd+bwd ratio, forward-only ratio) of cross_entropy with class indices over CE_SHAPE logits."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(CE_SHAPE) * 3).astype(np.float32)
    t = rng.integers(0, CE_SHAPE[1], CE_SHAPE[0])
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    tt, td = torch.from_numpy(t), ds.tensor(t)
    theirs: Callable[[Any], Any] = lambda a: torch.nn.functional.cross_entropy(a, tt)  # noqa: E731
    ours: Callable[[Any], Any] = lambda a: ds.nn.functional.cross_entropy(a, td)  # noqa: E731
    torch_step, ours_step = backward_peers(theirs, ours, xt, xd, None, None)  # a scalar loss: no output gradient
    torch_infer, ours_infer = infer_peers(theirs, ours, xt, xd)
    label = f"cross_entropy {CE_SHAPE[0]}x{CE_SHAPE[1]}"
    check_close(label + " loss", ours_step().detach().numpy(), torch_step().detach().numpy(), 1e-5)
    check_close(label + " input gradient", xd.grad.numpy(), xt.grad.numpy(), 1e-5, floor=1e-6)
    steps = steps_for([ours_step, torch_step], budget_us)
    both = show(label + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))
    fwd = show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, 2 * steps))
    return both, fwd


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="softmax,log_softmax,cross_entropy", help="comma-separated ops")
        parser.add_argument("--numpy", action="store_true", help="time downslope's NumPy path (numba off)")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    from downslope import jit_gate

    print(
        "downslope path: "
        + ("NumPy" if args.numpy or jit_gate.kernels("downslope.ops._jit_softmax") is None else "numba kernels")
    )
    slices, budget = (3, 20_000.0) if args.quick else (11, 100_000.0)
    ratios: list[tuple[float, float]] = []
    big: list[float] = []
    with jit_gate.disabled() if args.numpy else contextlib.nullcontext():
        for name in args.only.split(","):
            if name == "cross_entropy":
                ratios.append(bench_cross_entropy(slices, budget))
                continue
            if name not in ("softmax", "log_softmax"):
                raise SystemExit(f"unknown op {name!r}; pick from softmax, log_softmax, cross_entropy")
            for shape in SHAPES:
                r = bench_op(name, shape, slices, budget)
                ratios.append(r)
                if shape in BIG:
                    big += list(r)
    both = statistics.geometric_mean(r[0] for r in ratios)
    fwd = statistics.geometric_mean(r[1] for r in ratios)
    print(f"geometric mean ratio: fwd+bwd {both:.2f}, fwd {fwd:.2f}")
    if big:
        worst = max(big)
        print(
            f"target: every big shape <= {TARGET:.1f}x torch -> worst {worst:.2f} ({'met' if worst <= TARGET else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
