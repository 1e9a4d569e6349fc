"""Speed against PyTorch, one thread each, of the ops whose NumPy calls are scalar loops: float32 fmod,
remainder (by a tensor and by a number), floor_divide, div(rounding_mode="floor"), logaddexp, nextafter
and sign on two 512x512 tensors, and cummax / cummin (forward, and forward with backward) and gather
(forward, and forward with backward) along dim 1 of a 512x512 tensor with a 512x512 index; huber_loss
and smooth_l1_loss (forward with backward, mean) of two 512x512 tensors.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time per
call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is as
fast or faster). Values are checked against PyTorch before timing.
Run: python benchmarks/elementwise_misc.py [--quick] [--only fmod,cummax,...] [--size 512]
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

# name -> (the call of a library namespace on (x, y, index), whether it runs a backward too)
OPS: dict[str, tuple[Callable[[Any, Any, Any, Any], Any], bool]] = {
    "fmod": (lambda lib, x, y, i: lib.fmod(x, y), False),
    "remainder": (lambda lib, x, y, i: lib.remainder(x, y), False),
    "remainder by 0.7": (lambda lib, x, y, i: lib.remainder(x, 0.7), False),
    "floor_divide": (lambda lib, x, y, i: lib.floor_divide(x, y), False),
    "div floor": (lambda lib, x, y, i: lib.div(x, y, rounding_mode="floor"), False),
    "logaddexp": (lambda lib, x, y, i: lib.logaddexp(x, y), False),
    "nextafter": (lambda lib, x, y, i: lib.nextafter(x, y), False),
    "sign": (lambda lib, x, y, i: lib.sign(x), False),
    "cummax": (lambda lib, x, y, i: lib.cummax(x, 1)[0], False),
    "cummin": (lambda lib, x, y, i: lib.cummin(x, 1)[0], False),
    "cummax fwd+bwd": (lambda lib, x, y, i: lib.cummax(x, 1)[0], True),
    "gather": (lambda lib, x, y, i: lib.gather(x, 1, i), False),
    "gather fwd+bwd": (lambda lib, x, y, i: lib.gather(x, 1, i), True),
    "huber_loss fwd+bwd": (lambda lib, x, y, i: lib.nn.functional.huber_loss(x, y, delta=0.5), True),
    "smooth_l1_loss fwd+bwd": (lambda lib, x, y, i: lib.nn.functional.smooth_l1_loss(x, y, beta=0.5), True),
}


def bench(name: str, size: int, slices: int, budget_us: float) -> float:
    """downslope's time over torch's for one op."""
    import torch

    import downslope as ds

    fn, backward = OPS[name]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, size, size)).astype(np.float32)
    index = rng.integers(0, size, (size, size)).astype(np.int64)

    def inputs(lib: Any) -> tuple[Any, Any, Any]:
        xl = lib.from_numpy(x.copy())
        if backward:
            xl.requires_grad_()
        return xl, lib.from_numpy(y), lib.from_numpy(index)

    args = {"torch": inputs(torch), "downslope": inputs(ds)}
    theirs = fn(torch, *args["torch"]).detach().numpy()
    ours = fn(ds, *args["downslope"]).detach().numpy()
    close = np.isclose(ours, theirs, rtol=1e-5, atol=1e-6) | (np.isnan(ours) & np.isnan(theirs))
    if not close.all():
        raise SystemExit(f"{name}: downslope's values differ from torch's in {int((~close).sum())} elements")

    def call(lib: Any) -> Callable[[], object]:
        xl, yl, il = args[lib.__name__]
        if backward:
            return lambda: fn(lib, xl, yl, il).sum().backward()
        return lambda: fn(lib, xl, yl, il)

    peers = {"torch": call(torch), "downslope": call(ds)}
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(name, interleaved(peers, slices, steps), 20, unit="ms")


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(OPS), help=f"comma-separated of {', '.join(OPS)}")
        parser.add_argument("--size", type=int, default=512, help="the tensors are size x size (default 512)")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (9, 100_000.0)
    ratios = []
    worst = (0.0, "")
    for name in args.only.split(","):
        if name not in OPS:
            raise SystemExit(f"unknown op {name!r}; pick from {', '.join(OPS)}")
        ratio = bench(name, args.size, slices, budget)
        ratios.append(ratio)
        worst = max(worst, (ratio, name))
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}; worst {worst[0]:.2f} ({worst[1]})")


if __name__ == "__main__":
    main()
