"""Speed against PyTorch, one thread each, of Fourier transforms and sorting ops as ported programs call
them: rfft and irfft of a (64, 16, 1024) float32 signal (spectral layers), an rfft -> scale -> irfft
round trip forward and backward at that size and at a small FNO's (8, 16, 66), a complex fft2; topk
with k=5 of 4096x1000 logits (accuracy@k) forward and with backward, k=2 of 1024x64 gate logits
(mixture-of-experts routing) forward and backward, and sort, argsort (descending), msort and kthvalue
of 1024x1000.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time per
call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is as
fast or faster). Values (and gradients, and the indices of the sorting ops) are checked against
PyTorch before timing.
Run: python benchmarks/fft_sort.py [--quick] [--only rfft,topk k=5,...]
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
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402

_SIGNAL = (64, 16, 1024)
_FNO = (8, 16, 66)
_LOGITS = (4096, 1000)
_GATE = (1024, 64)
_ROWS = (1024, 1000)


def _round_trip(lib: Any, x: Any) -> Any:
    return lib.fft.irfft(lib.fft.rfft(x) * 2, n=x.shape[-1])


# name -> (input shape, input kind ("real" or "complex"), the call of a library namespace on the
# input, whether it runs a backward too)
OPS: dict[str, tuple[tuple[int, ...], str, Callable[[Any, Any], Any], bool]] = {
    "rfft 64x16x1024": (_SIGNAL, "real", lambda lib, x: lib.fft.rfft(x), False),
    "irfft 64x16x1024": (_SIGNAL, "complex", lambda lib, x: lib.fft.irfft(x, n=1024), False),
    "rfft->irfft fwd+bwd 64x16x1024": (_SIGNAL, "real", _round_trip, True),
    "rfft->irfft fwd+bwd 8x16x66": (_FNO, "real", _round_trip, True),
    "fft2 complex 16x128x128": ((16, 128, 128), "complex", lambda lib, x: lib.fft.fft2(x), False),
    "topk k=5 4096x1000": (_LOGITS, "real", lambda lib, x: lib.topk(x, 5, -1), False),
    "topk k=5 4096x1000 fwd+bwd": (_LOGITS, "real", lambda lib, x: lib.topk(x, 5, -1)[0], True),
    "topk k=2 1024x64 fwd+bwd": (_GATE, "real", lambda lib, x: lib.topk(x, 2, -1)[0], True),
    "topk k=2 1024x64": (_GATE, "real", lambda lib, x: lib.topk(x, 2, -1), False),
    "topk k=50 smallest 1024x1000": (_ROWS, "real", lambda lib, x: lib.topk(x, 50, 1, largest=False), False),
    "sort 1024x1000": (_ROWS, "real", lambda lib, x: lib.sort(x, 1), False),
    "argsort descending 1024x1000": (_ROWS, "real", lambda lib, x: lib.argsort(x, 1, descending=True), False),
    "msort 1024x1000": (_ROWS, "real", lambda lib, x: lib.msort(x), False),
    "kthvalue k=100 1024x1000": (_ROWS, "real", lambda lib, x: lib.kthvalue(x, 100, 1), False),
}


def _numpy(out: Any) -> list[np.ndarray]:
    """A call's outputs (a tensor, or a (values, indices) pair) as arrays."""
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    return [o.detach().numpy() for o in outs]


def _data(shape: tuple[int, ...], kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "complex":
        return (x + 1j * rng.standard_normal(shape).astype(np.float32)).astype(np.complex64)
    return x


def bench(name: str, slices: int, budget_us: float) -> float:
    """downslope's time over torch's for one op."""
    import torch

    import downslope as ds

    shape, kind, fn, backward = OPS[name]
    x = _data(shape, kind)

    def inputs(lib: Any) -> Any:
        xl = lib.from_numpy(x.copy())
        if backward:
            xl.requires_grad_()
        return xl

    args = {"torch": inputs(torch), "downslope": inputs(ds)}
    for theirs, ours in zip(_numpy(fn(torch, args["torch"])), _numpy(fn(ds, args["downslope"]))):
        if theirs.dtype.kind in "iu":  # indices along the last dim: the same values there (equal
            # float32 values among a million may be ordered differently)
            def picked(idx: np.ndarray) -> np.ndarray:
                return np.take_along_axis(x, idx if idx.ndim == x.ndim else idx[..., None], axis=-1)

            if not np.array_equal(picked(ours), picked(theirs)):
                raise SystemExit(f"{name}: downslope's indices point at other values than torch's")
        else:
            check_close(name, ours, theirs, tol=1e-5)
    if backward:
        fn(torch, args["torch"]).real.square().sum().backward()
        fn(ds, args["downslope"]).real.square().sum().backward()
        check_close(name + " (gradient)", args["downslope"].grad.numpy(), args["torch"].grad.numpy(), tol=1e-5)

    def call(lib: Any) -> Callable[[], object]:
        xl = args[lib.__name__]
        if backward:
            return lambda: fn(lib, xl).real.square().sum().backward()
        return lambda: fn(lib, xl)

    peers = {"torch": call(torch), "downslope": call(ds)}
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(name, interleaved(peers, slices, steps), 32, unit="ms")


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(OPS), help=f"comma-separated of {', '.join(OPS)}")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (9, 100_000.0)
    ratios = []
    worst = (0.0, "")
    for name in args.only.split(","):
        if name not in OPS:
            raise SystemExit(f"unknown op {name!r}; pick from {', '.join(OPS)}")
        ratio = bench(name, slices, budget)
        ratios.append(ratio)
        worst = max(worst, (ratio, name))
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}; worst {worst[0]:.2f} ({worst[1]})")


if __name__ == "__main__":
    main()
