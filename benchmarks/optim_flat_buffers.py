"""Time one optimizer step with flat buffers (one vectorised pass per group) against a
per-parameter loop (the same transforms run once per parameter: ``flat=False``); then, on large
parameters (two of a Linear(2048, 2048)), the compiled one-pass step (numba, ``optim/_fused.py``)
against the NumPy transforms path and PyTorch's step, when those are installed.

    python benchmarks/optim_flat_buffers.py [--steps 200] [--rounds 15] [--big-only]

Gradients are set once and reused, so only the optimizer step is timed. The large-parameter
table interleaves the contenders and reports medians of CPU time (a loaded machine's wall clock
says little), one BLAS/OpenMP thread each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import downslope as ds
from downslope import jit_gate, optim

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_model, interleaved  # noqa: E402


def make_params(layer_sizes: list[int]) -> list[ds.Tensor]:
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        params.append(ds.tensor(rng.normal(0, fan_in**-0.5, (fan_in, fan_out)), requires_grad=True))
        params.append(ds.tensor(np.zeros(fan_out), requires_grad=True))
    for p in params:
        p.grad = ds.tensor(rng.normal(size=p.shape) * 1e-3)
    return params


def time_steps(
    make_opt: Callable[[list[ds.Tensor], bool], Any], layer_sizes: list[int], flat: bool, steps: int
) -> float:
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


BIG_OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "SGD": ("SGD", {"lr": 0.01}),
    "SGD(momentum)": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "Adam": ("Adam", {"lr": 1e-3}),
    # beta1 = 0 (GAN-style): the moment's lerp takes its large-weight form, g - (g - m) * (1 - w)
    "Adam(b1=0)": ("Adam", {"lr": 1e-3, "betas": (0.0, 0.99)}),
    "AdamW": ("AdamW", {"lr": 1e-3, "weight_decay": 0.01}),
    "NAdam": ("NAdam", {"lr": 1e-3}),
    "RMSprop": ("RMSprop", {"lr": 1e-3}),
    "RMSprop(mom)": ("RMSprop", {"lr": 1e-3, "momentum": 0.9}),
    "RMSprop(ctr)": ("RMSprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
    "Adagrad": ("Adagrad", {"lr": 1e-2}),
    "Adadelta": ("Adadelta", {"lr": 1.0}),
}


def big_parameters(rounds: int) -> None:
    """Two parameters of 4.2M and 2k floats: compiled one-pass step, NumPy transforms path, PyTorch."""
    torch: Any = None
    try:
        import torch
    except ImportError:
        pass
    if torch is not None:
        torch.set_num_threads(1)
    compiled = jit_gate.kernels("downslope.optim._jit_updates") is not None
    print(f"\nlarge parameters (2048x2048 + 2048 float32), CPU {cpu_model()}, median CPU ms per step")
    print(
        f"{'optimizer':14s} {'compiled':>9s} {'numpy':>9s} {'torch':>9s} {'compiled/torch':>15s} {'numpy/torch':>12s}"
    )
    rng = np.random.default_rng(0)
    shapes = [(2048, 2048), (2048,)]
    for label, (name, kwargs) in BIG_OPTIMIZERS.items():
        init = [rng.standard_normal(s).astype(np.float32) * 0.02 for s in shapes]
        grads = [rng.standard_normal(s).astype(np.float32) * 0.01 for s in shapes]
        fns: dict[str, Callable[[], Any]] = {}
        for path in ("compiled", "numpy"):
            params = [ds.from_numpy(a.copy(), requires_grad=True) for a in init]
            for p, g in zip(params, grads):
                p.grad = ds.from_numpy(g)
            opt = getattr(optim, name)(params, **kwargs)
            if path == "compiled":
                if compiled:
                    fns[path] = opt.step
            else:

                def numpy_step(opt: Any = opt) -> None:
                    with jit_gate.disabled():
                        opt.step()

                fns[path] = numpy_step
        if torch is not None:
            tparams = [torch.tensor(a.copy(), requires_grad=True) for a in init]
            for tp, tg in zip(tparams, grads):
                tp.grad = torch.tensor(tg)
            fns["torch"] = getattr(torch.optim, name)(tparams, **kwargs).step
        ms = {k: v * 1e3 for k, v in interleaved(fns, rounds, 4).items()}
        cells = [f"{ms[k]:9.3f}" if k in ms else f"{'-':>9s}" for k in ("compiled", "numpy", "torch")]
        ratios = [f"{ms[k] / ms['torch']:.2f}x" if k in ms and "torch" in ms else "-" for k in ("compiled", "numpy")]
        print(f"{label:14s} {' '.join(cells)} {ratios[0]:>15s} {ratios[1]:>12s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the large-parameter table")
    parser.add_argument("--big-only", action="store_true", help="only the large-parameter table")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    nets = {
        "MLP 784-256-256-10 (6 tensors, 270k params)": [784, 256, 256, 10],
        "deep narrow 16x64 (34 tensors, 66k params)": [64] * 17 + [10],
    }
    optimizers = {
        "SGD(momentum)": lambda p, flat: optim.SGD(p, lr=1e-3, momentum=0.9, flat=flat),
        "Adam": lambda p, flat: optim.Adam(p, lr=1e-3, flat=flat),
        "AdamW": lambda p, flat: optim.AdamW(p, lr=1e-3, flat=flat),
    }
    if args.big_only:
        big_parameters(args.rounds)
        return
    print(f"{'network':46s} {'optimizer':14s} {'per-param us':>13s} {'flat us':>9s} {'speed-up':>9s}")
    for net_name, sizes in nets.items():
        for opt_name, make in optimizers.items():
            loop = time_steps(make, sizes, False, args.steps)
            flat = time_steps(make, sizes, True, args.steps)
            print(f"{net_name:46s} {opt_name:14s} {loop * 1e6:13.1f} {flat * 1e6:9.1f} {loop / flat:8.2f}x")
    big_parameters(args.rounds)


if __name__ == "__main__":
    main()
