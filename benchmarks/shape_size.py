"""The cost of ``tensor.shape`` being a ``downslope.Size`` (as torch's ``torch.Size``) rather than the
array's plain tuple, where shapes are read most: an MLP 64-64-10 training step (batch 32, Adam, four
steps a call) and a loop of 200 small ops on an (8, 16) tensor (mul, add, relu, reshape, t,
unsqueeze, squeeze, sum+expand), without and with backward.

Three peers in one process, interleaved slice by slice (the order rotating), one thread each:
downslope as it is (``Size``), downslope with ``Tensor.shape`` swapped for the plain tuple
(``tuple``, the former property: what the Size costs) and PyTorch. Each line is the median over
slices of CPU time per call (``time.process_time``); Size/tuple near 1.00 means the Size is free.
Run: python benchmarks/shape_size.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import downslope_mlp, init_mlp, parse_args, print_header, smoke, torch_mlp  # noqa: E402


def small_ops(x: Any, w: Any, b: Any) -> Any:
    """200 small ops (25 rounds of 8) on an (8, 16) tensor; the same code runs in either library."""
    h = x
    for _ in range(25):
        h = h * w
        h = h + b
        h = h.relu()
        h = h.reshape(16, 8)
        h = h.t()
        h = h.unsqueeze(0)
        h = h.squeeze(0)
        h = h.sum(0, keepdim=True).expand(8, 16) * 0.01 + h
    return h


def interleaved_three(peers: dict[str, Callable[[], object]], slices: int, steps: int) -> dict[str, float]:
    """Median CPU seconds per call of each peer, the peers taking turns (the first one rotating)."""
    names = list(peers)
    for fn in peers.values() if not smoke() else ():
        fn()
        fn()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for s in range(slices):
        for name in names[s % len(names) :] + names[: s % len(names)]:
            start = time.process_time()
            for _ in range(steps):
                peers[name]()
            samples[name].append((time.process_time() - start) / steps)
    return {name: statistics.median(t) for name, t in samples.items()}


def main() -> None:
    args, threads = parse_args(__doc__, "a few slices only (CI smoke test)")
    print_header(threads)
    import torch

    import downslope as ds
    from downslope.tensor import Tensor

    as_size = Tensor.__dict__["shape"]
    as_tuple = property(lambda self: self.array.shape)  # the former property, for comparison

    def with_shape(prop: Any, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            Tensor.shape = prop  # type: ignore[method-assign, assignment]
            fn()

        return run

    rng = np.random.default_rng(0)
    xs, ws = (rng.standard_normal((8, 16)).astype(np.float32) for _ in range(2))
    xd, wd, bd = ds.tensor(xs), ds.tensor(ws, requires_grad=True), ds.tensor(ws * 0.1, requires_grad=True)
    xt, wt, bt = torch.tensor(xs), torch.tensor(ws, requires_grad=True), torch.tensor(ws * 0.1, requires_grad=True)
    layers = init_mlp([64, 64, 10], rng)
    batches = [(rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32)) for _ in range(4)]
    ours_mlp, torch_step = downslope_mlp(layers, 1e-3), torch_mlp(layers, 1e-3)

    def ours_grad() -> None:
        small_ops(xd, wd, bd).sum().backward()

    def torch_grad() -> None:
        small_ops(xt, wt, bt).sum().backward()

    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "MLP 64-64-10 step x4": (lambda: ours_mlp(batches), lambda: torch_step(batches)),
        "200 small ops": (
            lambda: small_ops(xd.detach(), wd.detach(), bd.detach()),
            lambda: small_ops(xt, wt.detach(), bt.detach()),
        ),
        "200 small ops + backward": (ours_grad, torch_grad),
    }
    check = small_ops(xd, wd, bd).detach().numpy() - small_ops(xt, wt, bt).detach().numpy()
    if not np.abs(check).max() <= 1e-4:
        raise SystemExit("200 small ops: downslope differs from torch")
    slices, steps = (1, 1) if smoke() else (3, 2) if args.quick else (30, 20)
    width = max(len(name) for name in cases)
    try:
        for name, (ours, theirs) in cases.items():
            peers = {"Size": with_shape(as_size, ours), "tuple": with_shape(as_tuple, ours), "torch": theirs}
            t = interleaved_three(peers, slices, steps)
            print(
                f"{name:<{width}}  torch {t['torch'] * 1e6:8.1f} us  downslope {t['Size'] * 1e6:8.1f} us "
                f"(shape as tuple {t['tuple'] * 1e6:8.1f} us)  downslope/torch {t['Size'] / t['torch']:5.2f}  "
                f"Size/tuple {t['Size'] / t['tuple']:5.3f}",
                flush=True,
            )
    finally:
        Tensor.shape = as_size  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
