"""Training step of a small CNN on scikit-learn's 8x8 digits, batch 64, Adam (lr=1e-3):
Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(16*4*4, 10).

Peers, in one process run on the same data, initial weights and batch order: downslope and
PyTorch eager (when installed). Target (issue 7): downslope's time per step <= 1.0x PyTorch's.
Run: python benchmarks/cnn_digits.py [--quick]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import Batches, Peer, add_peer, blas_report, parse_args, print_table, print_target, smoke, time_per_step  # noqa: E402
from mlp_digits import load_digits_arrays  # noqa: E402

CHANNELS = 16
BATCH = 64


def init_cnn(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation bounds (uniform in +-1/sqrt(fan_in)), float32."""
    conv_bound, fc_bound = 1 / np.sqrt(9), 1 / np.sqrt(CHANNELS * 16)
    return {
        "conv_w": rng.uniform(-conv_bound, conv_bound, (CHANNELS, 1, 3, 3)).astype(np.float32),
        "conv_b": rng.uniform(-conv_bound, conv_bound, CHANNELS).astype(np.float32),
        "fc_w": rng.uniform(-fc_bound, fc_bound, (10, CHANNELS * 16)).astype(np.float32),
        "fc_b": rng.uniform(-fc_bound, fc_bound, 10).astype(np.float32),
    }


def downslope_cnn(w: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    import downslope as ds
    from downslope import nn, optim

    model = nn.Sequential(
        nn.Conv2d(1, CHANNELS, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(CHANNELS * 16, 10)
    )
    for p, key in zip(model.parameters(), ("conv_w", "conv_b", "fc_w", "fc_b")):
        p.array[...] = w[key]
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(ds.from_numpy(x)), ds.from_numpy(y)).backward()
            opt.step()

    return run


def torch_cnn(w: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    import torch

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, CHANNELS, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(CHANNELS * 16, 10),
    )
    with torch.no_grad():
        for p, key in zip(model.parameters(), ("conv_w", "conv_b", "fc_w", "fc_b")):
            p.copy_(torch.from_numpy(w[key]))
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()

    return run


def main() -> None:
    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)")
    pieces, steps = (1, 1) if smoke() else (3, 15) if args.quick else (30, 1500)
    x, y = load_digits_arrays()
    x = x.reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(0)
    batches = [
        (np.ascontiguousarray(x[i]), y[i]) for i in (rng.choice(len(x), BATCH, replace=False) for _ in range(steps))
    ]
    weights = init_cnn(np.random.default_rng(1))
    print(blas_report() + "; " + threads)
    print(f"CNN Conv2d(1,{CHANNELS},3,pad 1)-ReLU-MaxPool(2)-Linear on 8x8 digits, batch {BATCH}, Adam: us per step")
    peers = [Peer("downslope", downslope_cnn(weights))]
    add_peer(peers, "torch", lambda: torch_cnn(weights))
    results = time_per_step(peers, batches, pieces)
    print_table(results, unit="us", scale=1e6, reference="downslope")
    print_target(results, "torch", 1.00)


if __name__ == "__main__":
    main()
