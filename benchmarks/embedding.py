"""Embedding lookups at inference, side by side with PyTorch: ``nn.Embedding`` (100,000 x 32
table, 1,024 indices) and ``nn.EmbeddingBag`` (mode "mean", 10,240 indices in 1,024 bags of 10),
float32, under no_grad: the lookups of a recommender model's forward pass.

Peers run in one process on the same table and indices, taking turns (medians of CPU time per
call). Targets: Embedding <= 1.0x PyTorch's, EmbeddingBag <= 1.5x.

Run: python benchmarks/embedding.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, infer_peers, interleaved, parse_args, print_header, print_target, show_ratio  # noqa: E402

ROWS, DIM, BATCH, BAG = 100_000, 32, 1024, 10


def main() -> None:
    import torch

    import downslope as ds

    args, threads = parse_args(__doc__, "a few calls only (CI smoke test, no timing claims)")
    print_header(threads)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    users = rng.integers(0, ROWS, BATCH)
    history = rng.integers(0, ROWS, BATCH * BAG)
    offsets = np.arange(0, BATCH * BAG, BAG)
    emb_t, emb_d = torch.nn.Embedding.from_pretrained(torch.from_numpy(table)), ds.nn.Embedding(ROWS, DIM)
    bag_t = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(table), mode="mean")
    bag_d = ds.nn.EmbeddingBag(ROWS, DIM, mode="mean")
    for layer in (emb_d, bag_d):
        layer.load_state_dict({"weight": ds.from_numpy(table.copy())})
    ut, ht, ot = (torch.from_numpy(a) for a in (users, history, offsets))
    ud, hd, od = (ds.from_numpy(a) for a in (users, history, offsets))
    emb_theirs, emb_ours = infer_peers(emb_t, emb_d, ut, ud)
    bag_theirs, bag_ours = infer_peers(lambda h: bag_t(h, ot), lambda h: bag_d(h, od), ht, hd)
    check_close("Embedding", emb_ours().numpy(), emb_theirs().numpy(), 0.0)
    check_close("EmbeddingBag", bag_ours().numpy(), bag_theirs().numpy(), 1e-6)
    slices, steps = (2, 1) if args.quick else (31, 20)
    width = 48
    times = interleaved({"torch": emb_theirs, "downslope": emb_ours}, slices, steps)
    show_ratio(f"Embedding {ROWS}x{DIM}, {BATCH} indices, no_grad", times, width)
    print_target(times, "torch", 1.00)
    times = interleaved({"torch": bag_theirs, "downslope": bag_ours}, slices, steps)
    show_ratio(f"EmbeddingBag mean, {BATCH * BAG} indices in {BATCH} bags", times, width)
    print_target(times, "torch", 1.50)


if __name__ == "__main__":
    main()
