"""Activation and LayerNorm speed against PyTorch, one thread each: per layer, forward + backward
(the input gradient of a given output gradient) and forward alone under ``no_grad``, at three
float32 shapes (256x256, 64x1024, 4096x16).

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time
per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is
as fast or faster). Outputs and input gradients are checked against PyTorch before timing.
Run: python benchmarks/activations.py [--quick] [--only GELU,SiLU,...] [--shapes 256x256,...]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable

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

# name -> how to build the layer from an nn namespace and the feature count
LAYERS: dict[str, Callable[[object, int], object]] = {
    "Sigmoid": lambda nn, n: nn.Sigmoid(),
    "SiLU": lambda nn, n: nn.SiLU(),
    "GELU": lambda nn, n: nn.GELU(),
    "GELU(tanh)": lambda nn, n: nn.GELU(approximate="tanh"),
    "Tanh": lambda nn, n: nn.Tanh(),
    "ReLU": lambda nn, n: nn.ReLU(),
    "LeakyReLU": lambda nn, n: nn.LeakyReLU(0.1),
    "ELU": lambda nn, n: nn.ELU(),
    "Softplus": lambda nn, n: nn.Softplus(),
    "Hardtanh": lambda nn, n: nn.Hardtanh(),
    "ReLU6": lambda nn, n: nn.ReLU6(),
    "Mish": lambda nn, n: nn.Mish(),
    "Hardswish": lambda nn, n: nn.Hardswish(),
    "Hardsigmoid": lambda nn, n: nn.Hardsigmoid(),
    "LogSigmoid": lambda nn, n: nn.LogSigmoid(),
    "LayerNorm": lambda nn, n: nn.LayerNorm(n),
}
SHAPES = ((256, 256), (64, 1024), (4096, 16))


def show(title: str, times: dict[str, float]) -> float:
    return show_ratio(title, times, 36)


def bench_layer(name: str, shape: tuple[int, int], slices: int, budget_us: float) -> tuple[float, float]:
    """(fwd+bwd ratio, forward-only ratio) of one layer at one shape."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    theirs, ours = LAYERS[name](torch.nn, shape[1]), LAYERS[name](ds.nn, shape[1])
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    gt, gd = torch.from_numpy(g), ds.tensor(g)
    torch_step, ours_step = backward_peers(theirs, ours, xt, xd, gt, gd)
    torch_infer, ours_infer = infer_peers(theirs, ours, xt, xd)
    label = f"{name} {shape[0]}x{shape[1]}"
    check_close(label + " output", ours_step().detach().numpy(), torch_step().detach().numpy())
    check_close(label + " input gradient", xd.grad.numpy(), xt.grad.numpy())
    steps = steps_for([ours_step, torch_step], budget_us)
    both = show(label + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))
    fwd = show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, 2 * steps))
    return both, fwd


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(LAYERS), help=f"comma-separated layers of {', '.join(LAYERS)}")
        parser.add_argument(
            "--shapes", default=",".join(f"{a}x{b}" for a, b in SHAPES), help="comma-separated RxC float32 shapes"
        )

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 5_000.0) if args.quick else (11, 40_000.0)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    ratios = []
    for name in args.only.split(","):
        if name not in LAYERS:
            raise SystemExit(f"unknown layer {name!r}; pick from {', '.join(LAYERS)}")
        for shape in shapes:
            ratios.append(bench_layer(name, (shape[0], shape[1]), slices, budget))
    both = statistics.geometric_mean(r[0] for r in ratios)
    fwd = statistics.geometric_mean(r[1] for r in ratios)
    print(f"geometric mean ratio: fwd+bwd {both:.2f}, fwd {fwd:.2f}")


if __name__ == "__main__":
    main()
