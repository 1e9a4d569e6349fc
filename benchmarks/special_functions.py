"""Special-function speed against PyTorch, one thread each: erf, erfc, erfinv, polygamma(n, x) for
n = 1, 2, 3, and torch.special's ndtr, ndtri, log_ndtr, erfcx, i0, i0e, i1, i1e, the Bessel
functions J0, J1, Y0, Y1 and the regularised incomplete gamma functions gammainc and gammaincc (at
x = 1.3 a, a uniform in (0.1, 30) for the wide input), forward only, on a 512x512 tensor of float32
and of float64, for two inputs: the fuzzer's (uniform in (-0.9, 0.9), |x| for the functions defined for x >= 0) and a wide
one that crosses every range of the piecewise formulas (uniform in (-6, 6), (-10, 10) for erf and
erfc, whose float32 results saturate from about 4, (-30, 30) for the Bessel functions, (0, 1) for
ndtri).

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time
per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is
as fast or faster). Values are checked against PyTorch before timing (polygamma's against torch's
float64 values rounded: torch's float32 kernel computes in float32 and loses up to 4% near the poles).
Run: python benchmarks/special_functions.py [--quick] [--only erf,ndtri,...] [--size 512]
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

# name -> (the function of a library namespace and a tensor, the input's domain: "real", "positive", "unit")
FUNCTIONS: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "erf": (lambda lib, x: lib.erf(x), "saturating"),
    "erfc": (lambda lib, x: lib.erfc(x), "saturating"),
    "erfinv": (lambda lib, x: lib.erfinv(x), "signed unit"),
    "ndtr": (lambda lib, x: lib.special.ndtr(x), "real"),
    "ndtri": (lambda lib, x: lib.special.ndtri(x), "unit"),
    "log_ndtr": (lambda lib, x: lib.special.log_ndtr(x), "real"),
    "erfcx": (lambda lib, x: lib.special.erfcx(x), "real"),
    "i0": (lambda lib, x: lib.special.i0(x), "real"),
    "i0e": (lambda lib, x: lib.special.i0e(x), "real"),
    "i1": (lambda lib, x: lib.special.i1(x), "real"),
    "i1e": (lambda lib, x: lib.special.i1e(x), "real"),
    "bessel_j0": (lambda lib, x: lib.special.bessel_j0(x), "oscillating"),
    "bessel_j1": (lambda lib, x: lib.special.bessel_j1(x), "oscillating"),
    "bessel_y0": (lambda lib, x: lib.special.bessel_y0(x), "positive oscillating"),
    "bessel_y1": (lambda lib, x: lib.special.bessel_y1(x), "positive oscillating"),
    "polygamma1": (lambda lib, x: lib.polygamma(1, x), "real"),
    "polygamma2": (lambda lib, x: lib.polygamma(2, x), "real"),
    "polygamma3": (lambda lib, x: lib.polygamma(3, x), "real"),
    # P(a, x) and Q(a, x) at x = 1.3 a (the other operand made on both sides: well under 1% of the time)
    "gammainc": (lambda lib, x: lib.special.gammainc(x, x * 1.3), "gamma"),
    "gammaincc": (lambda lib, x: lib.special.gammaincc(x, x * 1.3), "gamma"),
}
# checked against torch's float64 values, rounded to the dtype (downslope computes these in float64)
REFERENCE_IN_FLOAT64 = {"polygamma1", "polygamma2", "polygamma3"}


def inputs(domain: str, wide: bool, size: int, rng: np.random.Generator) -> np.ndarray:
    """The fuzzer's input (uniform in (-0.9, 0.9); its |x| for the functions of x >= 0) or a wide one."""
    if not wide:
        x = rng.uniform(-0.9, 0.9, (size, size))
        return np.abs(x) if domain in ("unit", "positive oscillating", "gamma") else x
    if domain == "unit":
        return rng.uniform(0, 1, (size, size))
    if domain == "signed unit":
        return rng.uniform(-1, 1, (size, size))
    if domain == "oscillating":
        return rng.uniform(-30, 30, (size, size))
    if domain == "positive oscillating":
        return rng.uniform(0, 30, (size, size))
    if domain == "gamma":
        return rng.uniform(0.1, 30, (size, size))
    if domain == "saturating":
        return rng.uniform(-10, 10, (size, size))
    return rng.uniform(-6, 6, (size, size))


def bench(name: str, dtype: str, wide: bool, size: int, slices: int, budget_us: float) -> float:
    """downslope's time over torch's for one function, dtype and input."""
    import torch

    import downslope as ds

    fn, domain = FUNCTIONS[name]
    x = inputs(domain, wide, size, np.random.default_rng(0)).astype(dtype)
    xt, xd = torch.from_numpy(x), ds.tensor(x, dtype=getattr(ds, dtype))
    reference = fn(torch, xt.double()).numpy().astype(dtype) if name in REFERENCE_IN_FLOAT64 else fn(torch, xt).numpy()
    theirs, ours = reference, fn(ds, xd).numpy()
    finite = np.isfinite(theirs)
    if not (
        np.array_equal(finite, np.isfinite(ours)) and np.allclose(ours[finite], theirs[finite], rtol=1e-5, atol=1e-6)
    ):
        raise SystemExit(f"{name} {dtype}: downslope's values differ from torch's")
    peers = {"torch": lambda: fn(torch, xt), "downslope": lambda: fn(ds, xd)}
    steps = steps_for(list(peers.values()), budget_us)
    label = f"{name} {dtype} {'wide' if wide else '(-0.9, 0.9)'}"
    return show_ratio(label, interleaved(peers, slices, steps), 34, unit="ms")


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(FUNCTIONS), help=f"comma-separated of {', '.join(FUNCTIONS)}")
        parser.add_argument("--size", type=int, default=512, help="the tensor is size x size (default 512)")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (9, 100_000.0)
    ratios: dict[bool, list[float]] = {False: [], True: []}
    worst = (0.0, "")
    for name in args.only.split(","):
        if name not in FUNCTIONS:
            raise SystemExit(f"unknown function {name!r}; pick from {', '.join(FUNCTIONS)}")
        for dtype in ("float32", "float64"):
            for wide in (False, True):
                ratio = bench(name, dtype, wide, args.size, slices, budget)
                ratios[wide].append(ratio)
                worst = max(worst, (ratio, f"{name} {dtype} {'wide' if wide else '(-0.9, 0.9)'}"))
    print(
        f"geometric mean ratio: (-0.9, 0.9) {statistics.geometric_mean(ratios[False]):.2f}, "
        f"wide {statistics.geometric_mean(ratios[True]):.2f}; worst {worst[0]:.2f} ({worst[1]})"
    )


if __name__ == "__main__":
    main()
