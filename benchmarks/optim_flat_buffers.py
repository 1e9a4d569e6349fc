"""Time one optimizer step with flat buffers (one vectorised pass per group) against a
per-parameter loop (the same transforms run once per parameter: ``flat=False``).

    python benchmarks/optim_flat_buffers.py [--steps 200]

Gradients are set once and reused, so only the optimizer step is timed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import downslope as ds
from downslope import optim


def make_params(layer_sizes: list[int]) -> list[ds.Tensor]:
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        params.append(ds.tensor(rng.normal(0, fan_in**-0.5, (fan_in, fan_out)), requires_grad=True))
        params.append(ds.tensor(np.zeros(fan_out), requires_grad=True))
    for p in params:
        p.grad = ds.tensor(rng.normal(size=p.shape) * 1e-3)
    return params


def time_steps(make_opt, layer_sizes: list[int], flat: bool, steps: int) -> float:  # type: ignore[no-untyped-def]
    params = make_params(layer_sizes)
    opt = make_opt(params, flat)
    for _ in range(5):  # warm up (allocates scratch buffers)
        opt.step()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(steps):
            opt.step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    nets = {
        "MLP 784-256-256-10 (6 tensors, 270k params)": [784, 256, 256, 10],
        "deep narrow 16x64 (34 tensors, 66k params)": [64] * 17 + [10],
    }
    optimizers = {
        "SGD(momentum)": lambda p, flat: optim.SGD(p, lr=1e-3, momentum=0.9, flat=flat),
        "Adam": lambda p, flat: optim.Adam(p, lr=1e-3, flat=flat),
        "AdamW": lambda p, flat: optim.AdamW(p, lr=1e-3, flat=flat),
    }
    print(f"{'network':46s} {'optimizer':14s} {'per-param us':>13s} {'flat us':>9s} {'speed-up':>9s}")
    for net_name, sizes in nets.items():
        for opt_name, make in optimizers.items():
            loop = time_steps(make, sizes, False, args.steps)
            flat = time_steps(make, sizes, True, args.steps)
            print(f"{net_name:46s} {opt_name:14s} {loop * 1e6:13.1f} {flat * 1e6:9.1f} {loop / flat:8.2f}x")


if __name__ == "__main__":
    main()
