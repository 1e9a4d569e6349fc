"""Training step of a TransformerEncoder: 2 layers, d_model 128, 4 heads, feed-forward 512,
sequence 64, batch 32 (batch_first, dropout 0.1 as PyTorch's default), a linear read-out of every
position and mean-squared error to a random target, Adam (lr=1e-3).

Peers, in one process on the same initial weights (copied by state_dict) and the same batches:
downslope and PyTorch eager. Target: downslope's time per step <= 1.0x PyTorch's.

Then causal ``scaled_dot_product_attention`` under no_grad at two shapes (B32 H4 T64 hd32 and
B8 H8 T256 hd64, float32), CPU time per call, the peers taking turns. Target: <= 1.0x PyTorch's.
Run: python benchmarks/transformer.py [--quick] [--threads N] [--dropout P]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    Batches,
    Peer,
    add_peer,
    blas_report,
    interleaved,
    parse_args,
    print_table,
    print_target,
    show_ratio,
    smoke,
    time_per_step,
)

LAYERS, D_MODEL, HEADS, FF, SEQ, BATCH = 2, 128, 4, 512, 64, 32


def torch_model(dropout: float):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout, batch_first=True)
    return torch.nn.Sequential(torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)), torch.nn.Linear(
        D_MODEL, D_MODEL
    )


def initial_state(dropout: float) -> dict[str, np.ndarray]:
    """PyTorch's initialization when torch is installed (so both start alike), downslope's otherwise."""
    try:
        enc, head = torch_model(dropout)
        state = {f"enc.{k}": v.detach().numpy().copy() for k, v in enc.state_dict().items()}
        state.update({f"head.{k}": v.detach().numpy().copy() for k, v in head.state_dict().items()})
        return state
    except ImportError:
        import downslope as ds

        ds.manual_seed(0)
        model = downslope_model(dropout)
        return model.state_dict()


def downslope_model(dropout: float):  # type: ignore[no-untyped-def]
    from downslope import nn

    layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout, batch_first=True)
    model = nn.Module()
    model.enc = nn.Sequential(nn.TransformerEncoder(layer, LAYERS))
    model.head = nn.Linear(D_MODEL, D_MODEL)
    return model


def downslope_step(state: dict[str, np.ndarray], dropout: float):  # type: ignore[no-untyped-def]
    import downslope as ds
    from downslope import nn, optim

    model = downslope_model(dropout)
    model.load_state_dict(state)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model.head(model.enc(ds.from_numpy(x))), ds.from_numpy(y)).backward()
            opt.step()

    return run


def torch_step(state: dict[str, np.ndarray], dropout: float):  # type: ignore[no-untyped-def]
    import torch

    enc, head = torch_model(dropout)
    enc.load_state_dict({k[4:]: torch.tensor(v) for k, v in state.items() if k.startswith("enc.")})
    head.load_state_dict({k[5:]: torch.tensor(v) for k, v in state.items() if k.startswith("head.")})
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    enc.train()

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(head(enc(torch.from_numpy(x))), torch.from_numpy(y)).backward()
            opt.step()

    return run


def main() -> None:
    def hook(parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--dropout", type=float, default=0.1, help="dropout of the layers (default 0.1)")

    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)", hook)
    pieces, steps = (1, 1) if smoke() else (2, 4) if args.quick else (15, 90)
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32),
            rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32),
        )
        for _ in range(steps)
    ]
    state = initial_state(args.dropout)
    print(blas_report() + "; " + threads)
    print(
        f"TransformerEncoder {LAYERS} layers, d_model {D_MODEL}, {HEADS} heads, ff {FF}, seq {SEQ}, batch {BATCH}, "
        f"dropout {args.dropout}, Adam: ms per training step"
    )
    peers = [Peer("downslope", downslope_step(state, args.dropout))]
    add_peer(peers, "torch", lambda: torch_step(state, args.dropout))
    results = time_per_step(peers, batches, pieces)
    print_table(results, unit="ms", scale=1e3, reference="downslope")
    print_target(results, "torch", 1.00)
    causal_attention(args.quick)


def causal_attention(quick: bool) -> None:
    """Causal scaled_dot_product_attention without gradients, downslope against PyTorch."""
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:
        print("torch: not installed, causal attention skipped")
        return
    import downslope as ds
    import downslope.nn.functional as F

    rng = np.random.default_rng(1)
    for batch, heads, length, dim in ((32, 4, 64, 32), (8, 8, 256, 64)):
        q, k, v = (rng.standard_normal((batch, heads, length, dim)).astype(np.float32) for _ in range(3))
        qt, kt, vt = (torch.from_numpy(a) for a in (q, k, v))
        qd, kd, vd = (ds.from_numpy(a) for a in (q, k, v))

        def theirs(qt=qt, kt=kt, vt=vt):  # type: ignore[no-untyped-def]
            with torch.no_grad():
                return TF.scaled_dot_product_attention(qt, kt, vt, is_causal=True)

        def ours(qd=qd, kd=kd, vd=vd):  # type: ignore[no-untyped-def]
            with ds.no_grad():
                return F.scaled_dot_product_attention(qd, kd, vd, is_causal=True)

        err = float(np.abs(ours().numpy() - theirs().numpy()).max())
        if not err <= 1e-5:
            raise SystemExit(f"causal attention differs from torch by {err:.2e}")
        slices, steps = (2, 1) if quick else (21, 5)
        times = interleaved({"torch": theirs, "downslope": ours}, slices, steps)
        show_ratio(f"SDPA causal no_grad B{batch} H{heads} T{length} hd{dim}", times, 40, "ms")
        print_target(times, "torch", 1.00)


if __name__ == "__main__":
    main()
