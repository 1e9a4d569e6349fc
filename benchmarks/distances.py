"""Pairwise distances and global max pooling against PyTorch, one thread each, float32: forward alone
under ``no_grad`` and forward + backward (the input gradient of a given output gradient).

Cases: ``F.pdist`` for p = 1, inf (and 2 for reference) of (1000, 64) and (2000, 16) rows;
``torch.cdist`` for p = 1, inf, 0.5 and 3 of (1000, 64) x (1000, 64) and batched (8, 256, 32) x (8, 256, 32);
global max pooling of (64, 256, 128) (the text-CNN idiom) three ways: ``F.max_pool1d(x, 128)``,
``F.adaptive_max_pool1d(x, 1)`` and ``x.max(dim=-1)``.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time
per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is
as fast or faster). Outputs and input gradients are checked against PyTorch before timing. With
numba installed downslope runs its compiled distance kernels (``downslope.ops._jit_distance``);
``--numpy`` times the NumPy path instead (``DOWNSLOPE_JIT=0`` does the same).
Run: python benchmarks/distances.py [--quick] [--numpy] [--only pdist,cdist,pool]
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

PDIST_SHAPES = ((1000, 64), (2000, 16))
PDIST_PS = (1.0, float("inf"), 2.0)
CDIST_SHAPES = (((1000, 64), (1000, 64)), ((8, 256, 32), (8, 256, 32)))
CDIST_PS = (1.0, float("inf"), 0.5, 3.0)
POOL_SHAPE = (64, 256, 128)
# --quick (a smoke run): a quarter of the rows, a quarter of the batch
QUICK = {
    "pdist": ((250, 64), (500, 16)),
    "cdist": (((250, 64), (250, 64)), ((2, 64, 32), (2, 64, 32))),
    "pool": (16, 256, 128),
}


def show(title: str, times: dict[str, float]) -> float:
    return show_ratio(title, times, 44, unit="ms")


def run_case(
    label: str, theirs: Any, ours: Any, arrays: list[np.ndarray], slices: int, budget_us: float
) -> tuple[float, float]:
    """(fwd+bwd ratio, forward-only ratio) of ``ours`` against ``theirs`` on ``arrays`` (all needing gradients)."""
    import torch

    import downslope as ds

    ts = [torch.from_numpy(a).requires_grad_() for a in arrays]
    dss = [ds.tensor(a, requires_grad=True) for a in arrays]
    out = theirs(*ts)
    g = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    gt, gd = torch.from_numpy(g), ds.tensor(g)

    def torch_fn(t: Any) -> Any:
        return theirs(*ts)

    def ours_fn(t: Any) -> Any:
        return ours(*dss)

    torch_step, ours_step = backward_peers(torch_fn, ours_fn, ts[0], dss[0], gt, gd)

    def torch_clear() -> Any:
        for t in ts[1:]:
            t.grad = None
        return torch_step()

    def ours_clear() -> Any:
        for t in dss[1:]:
            t.grad = None
        return ours_step()

    torch_infer, ours_infer = infer_peers(torch_fn, ours_fn, ts[0], dss[0])
    check_close(label + " output", ours_clear().detach().numpy(), torch_clear().detach().numpy(), 1e-5)
    for k, (t, d) in enumerate(zip(ts, dss)):
        check_close(f"{label} gradient {k}", d.grad.numpy(), t.grad.numpy(), 1e-4)
    steps = steps_for([ours_clear, torch_clear], budget_us)
    both = show(label + " fwd+bwd", interleaved({"torch": torch_clear, "downslope": ours_clear}, slices, steps))
    fwd = show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, 2 * steps))
    return both, fwd


def bench_pdist(slices: int, budget_us: float, quick: bool) -> list[tuple[float, float]]:
    import torch

    import downslope as ds

    ratios = []
    for shape in QUICK["pdist"] if quick else PDIST_SHAPES:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for p in PDIST_PS:
            ratios.append(
                run_case(
                    f"pdist p={p:g} {'x'.join(map(str, shape))}",
                    lambda a, p=p: torch.nn.functional.pdist(a, p),
                    lambda a, p=p: ds.nn.functional.pdist(a, p),
                    [x],
                    slices,
                    budget_us,
                )
            )
    return ratios


def bench_cdist(slices: int, budget_us: float, quick: bool) -> list[tuple[float, float]]:
    import torch

    import downslope as ds

    ratios = []
    for s1, s2 in QUICK["cdist"] if quick else CDIST_SHAPES:
        rng = np.random.default_rng(0)
        x1, x2 = rng.standard_normal(s1).astype(np.float32), rng.standard_normal(s2).astype(np.float32)
        for p in CDIST_PS:
            ratios.append(
                run_case(
                    f"cdist p={p:g} {'x'.join(map(str, s1))}",
                    lambda a, b, p=p: torch.cdist(a, b, p),
                    lambda a, b, p=p: ds.cdist(a, b, p),
                    [x1, x2],
                    slices,
                    budget_us,
                )
            )
    return ratios


def bench_pool(slices: int, budget_us: float, quick: bool) -> list[tuple[float, float]]:
    import torch

    import downslope as ds

    shape = QUICK["pool"] if quick else POOL_SHAPE
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    length = shape[-1]
    ways: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = [
        (
            "max_pool1d(x, L)",
            lambda a: torch.nn.functional.max_pool1d(a, length),
            lambda a: ds.nn.functional.max_pool1d(a, length),
        ),
        (
            "adaptive_max_pool1d(x, 1)",
            lambda a: torch.nn.functional.adaptive_max_pool1d(a, 1),
            lambda a: ds.nn.functional.adaptive_max_pool1d(a, 1),
        ),
        ("x.max(dim=-1)", lambda a: a.max(dim=-1).values, lambda a: a.max(dim=-1).values),
    ]
    return [run_case(f"{name} {'x'.join(map(str, shape))}", t, d, [x], slices, budget_us) for name, t, d in ways]


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="pdist,cdist,pool", help="comma-separated groups")
        parser.add_argument("--numpy", action="store_true", help="time downslope's NumPy path (numba off)")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    from downslope import jit_gate

    print(
        "downslope path: "
        + ("NumPy" if args.numpy or jit_gate.kernels("downslope.ops._jit_distance") is None else "numba kernels")
    )
    slices, budget = (3, 20_000.0) if args.quick else (7, 400_000.0)
    groups = {"pdist": bench_pdist, "cdist": bench_cdist, "pool": bench_pool}
    ratios: list[tuple[float, float]] = []
    with jit_gate.disabled() if args.numpy else contextlib.nullcontext():
        for name in args.only.split(","):
            if name not in groups:
                raise SystemExit(f"unknown group {name!r}; pick from {', '.join(groups)}")
            ratios += groups[name](slices, budget, args.quick)
    both = statistics.geometric_mean(r[0] for r in ratios)
    fwd = statistics.geometric_mean(r[1] for r in ratios)
    print(f"geometric mean ratio: fwd+bwd {both:.2f}, fwd {fwd:.2f}")


if __name__ == "__main__":
    main()
