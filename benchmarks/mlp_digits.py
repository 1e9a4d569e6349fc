"""Training step of an MLP 64-64-10 on scikit-learn's digits, batch 32, Adam: per-op overhead.

At this size every GEMM is a few microseconds, so the time per step is almost all Python and
library overhead (graph bookkeeping, optimizer loops). Peers, in one process run on the same data,
initial weights and batch order: downslope, PyTorch eager (when installed), scikit-learn's
MLPClassifier (``partial_fit`` per batch, when installed) and a hand-written NumPy
forward/backward/Adam loop (the floor for any NumPy engine).

Target (issue 7): downslope's microseconds per step <= 0.40x PyTorch's.
Run: python benchmarks/mlp_digits.py [--quick]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    Peer,
    add_peer,
    blas_report,
    downslope_mlp,
    init_mlp,
    numpy_mlp,
    parse_args,
    print_table,
    print_target,
    sklearn_mlp,
    smoke,
    time_per_step,
    torch_mlp,
)

SIZES = [64, 64, 10]
BATCH = 32


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Synthetic values of the same shapes without scikit-learn, and in smoke mode (loading the
    # digits costs seconds of imports there): the per-step cost does not depend on them.
    if not smoke():
        try:
            from sklearn.datasets import load_digits

            x, y = load_digits(return_X_y=True)
            return (x / 16.0).astype(np.float32), y.astype(np.int64)
        except ImportError:
            pass
    rng = np.random.default_rng(0)
    return rng.random((1797, 64), dtype=np.float32), rng.integers(0, 10, 1797)


def main() -> None:
    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)")
    pieces, steps = (1, 1) if smoke() else (3, 30) if args.quick else (40, 4000)
    x, y = load_digits_arrays()
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(x), BATCH, replace=False) for _ in range(steps)]
    batch_data = [(np.ascontiguousarray(x[i]), y[i]) for i in batches]
    params = init_mlp(SIZES, np.random.default_rng(1))

    print(blas_report() + "; " + threads)
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam(lr=1e-3): microseconds per training step")
    print(f"(median over {pieces} turns of {steps // pieces} steps each; forward, loss, backward and update)")
    peers = [
        Peer("downslope", downslope_mlp(params, lr=1e-3)),
        Peer("numpy (hand-written)", numpy_mlp(params, lr=1e-3)),
    ]
    add_peer(peers, "torch", lambda: torch_mlp(params, lr=1e-3))
    add_peer(peers, "sklearn MLPClassifier", lambda: sklearn_mlp(params, lr=1e-3, classes=SIZES[-1]))
    results = time_per_step(peers, batch_data, pieces)
    print_table(results, unit="us", scale=1e6, reference="downslope")
    print_target(results, "torch", 0.40)


if __name__ == "__main__":
    main()
