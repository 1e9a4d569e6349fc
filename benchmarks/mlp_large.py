"""One epoch of an MLP 784-256-128-10 (ReLU, softmax cross-entropy, Adam lr=1e-3, batch 128) on
50,000 synthetic samples (make_classification-like): GEMM efficiency and memory traffic.

Peers, in one process run on the same data, initial weights and batch order: downslope, PyTorch
eager (when installed), scikit-learn's MLPClassifier (when installed) and a hand-written NumPy
forward/backward/Adam loop (the floor for any NumPy engine). Also printed: the fraction of the
float32 GEMM roofline reached (the FLOPs of a step's eight GEMMs over the time one large GEMM takes
per FLOP here), and the same eight GEMMs timed alone in NumPy and in torch: at this size a step is
mostly GEMMs, so the BLAS each library ships sets its floor.

Targets (issue 7): downslope's seconds per epoch <= 0.80x PyTorch and <= 1.10x hand-written NumPy.
Run: python benchmarks/mlp_large.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    Peer,
    add_peer,
    blas_report,
    downslope_mlp,
    init_mlp,
    median_time,
    numpy_mlp,
    parse_args,
    print_target,
    sklearn_mlp,
    smoke,
    time_per_step,
    torch_mlp,
)

SIZES = [784, 256, 128, 10]
BATCH = 128


def make_classification(n: int, n_features: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around random class centres in a 20-D subspace, plus noise features."""
    rng = np.random.default_rng(seed)
    informative = 20
    centres = rng.standard_normal((n_classes, informative)) * 2.0
    y = rng.integers(0, n_classes, n)
    z = centres[y] + rng.standard_normal((n, informative))
    mixing = rng.standard_normal((informative, n_features)) / np.sqrt(informative)
    x = z @ mixing + 0.5 * rng.standard_normal((n, n_features))
    return x.astype(np.float32), y.astype(np.int64)


def gemm_flops_per_second(repeats: int) -> float:
    """Peak-ish float32 GEMM throughput here: one 1024x1024x1024 product, best of a few."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best


def step_flops(sizes: list[int], batch: int) -> float:
    """Forward GEMM + two backward GEMMs per layer (the first layer's input gradient is skipped)."""
    flops = 0.0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        gemms = 2 if i == 0 else 3
        flops += gemms * 2.0 * batch * fan_in * fan_out
    return flops


def gemm_floor(sizes: list[int], batch: int, repeats: int) -> tuple[float, float | None]:
    """Seconds per step spent in the step's GEMMs alone: (NumPy's BLAS, torch's BLAS or None)."""
    rng = np.random.default_rng(0)
    shapes = []  # (a, b) operand shapes of a @ b: forward, weight gradient, input gradient per layer
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes += [((batch, fan_in), (fan_in, fan_out)), ((fan_out, batch), (batch, fan_in))]
        if i:
            shapes.append(((batch, fan_out), (fan_out, fan_in)))
    pairs = [(rng.standard_normal(a).astype(np.float32), rng.standard_normal(b).astype(np.float32)) for a, b in shapes]
    t_np = sum(median_time(lambda a=a, b=b: a @ b, repeats, 20) for a, b in pairs)
    try:
        import torch
    except ImportError:
        return t_np, None
    tpairs = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs]
    return t_np, sum(median_time(lambda a=a, b=b: a @ b, repeats, 20) for a, b in tpairs)


def main() -> None:
    args, threads = parse_args(
        __doc__,
        "a small slice of an epoch (CI smoke test)",
        lambda p: p.add_argument("--epochs", type=int, default=3, help="epochs each peer trains (timed in turns)"),
    )
    n = 2 * BATCH if smoke() else 2_000 if args.quick else 50_000
    epochs = 1 if args.quick else args.epochs
    x, y = make_classification(n, SIZES[0], SIZES[-1], seed=0)
    x_train, y_train = x[:n], y[:n]
    order = np.random.default_rng(1).permutation(n)
    batches = [
        (np.ascontiguousarray(x_train[order[i : i + BATCH]]), y_train[order[i : i + BATCH]])
        for i in range(0, n - BATCH + 1, BATCH)
    ]
    layers = init_mlp(SIZES, np.random.default_rng(2))

    print(blas_report() + "; " + threads)
    print(
        f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam(lr=1e-3), {n} samples: seconds per epoch "
        f"(median over turns of a tenth of an epoch, {epochs} epochs; same data order and initial weights for all)"
    )
    peers = [
        Peer("downslope", downslope_mlp(layers, lr=1e-3)),
        Peer("numpy (hand-written)", numpy_mlp(layers, lr=1e-3)),
    ]
    add_peer(peers, "torch", lambda: torch_mlp(layers, lr=1e-3))
    add_peer(peers, "sklearn MLPClassifier", lambda: sklearn_mlp(layers, lr=1e-3, classes=SIZES[-1]))

    peak = gemm_flops_per_second(1 if smoke() else 3 if args.quick else 5)
    flops = step_flops(SIZES, BATCH) * len(batches)
    per_step = time_per_step(peers, batches * epochs, pieces=max(3, 10 * epochs))
    results = {name: t * len(batches) for name, t in per_step.items()}  # seconds per epoch
    width = max(len(name) for name in results)
    for name, t in results.items():
        print(
            f"  {name:<{width}}  {t:7.3f} s/epoch   downslope/{name.split()[0]} = {results['downslope'] / t:5.2f}"
            f"   GEMM roofline {flops / t / peak:5.1%}"
        )
    print(f"  (float32 GEMM peak here: {peak / 1e9:.1f} GFLOP/s; {flops / len(batches) / 1e6:.0f} MFLOP per step)")
    t_np, t_torch = gemm_floor(SIZES, BATCH, 3 if args.quick else 9)
    line = f"  the step's 8 GEMMs alone: NumPy {t_np * 1e3:.2f} ms"
    if t_torch is not None:
        line += f", torch {t_torch * 1e3:.2f} ms (NumPy's BLAS / torch's = {t_np / t_torch:.2f})"
    print(line + f"; per step above: downslope {results['downslope'] / len(batches) * 1e3:.2f} ms")
    print_target(results, "torch", 0.80)
    print_target(results, "numpy (hand-written)", 1.10)


if __name__ == "__main__":
    main()
