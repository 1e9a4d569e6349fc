"""Embedding lookups at inference, side by side with PyTorch: ``nn.Embedding`` (100,000 x 32
table, 1,024 indices) and ``nn.EmbeddingBag`` (mode "mean", 10,240 indices in 1,024 bags of 10),
float32, under no_grad: the lookups of a recommender model's forward pass.

Peers run in one process on the same table and indices, taking turns (medians of CPU time per
call). Targets: Embedding <= 1.0x PyTorch's, EmbeddingBag <= 1.5x.

``--gate`` instead measures where nn.Embedding's size gates lie (no PyTorch): the forward's NumPy
``take`` against the compiled gather (``nn._jit_embedding``), and the gradient's NumPy scatter
against the compiled scatter-add (``nn._jit_kernels.add_rows``, used from
``layers.JIT_EMBEDDING_GRAD_MIN_SIZE`` gradient elements on), over tables and index counts.

Run: python benchmarks/embedding.py [--quick] [--threads N] [--gate]
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, infer_peers, interleaved, parse_args, print_header, print_target, show_ratio  # noqa: E402

ROWS, DIM, BATCH, BAG = 100_000, 32, 1024, 10


# (table rows, columns, indices) for --gate: the tutorials' small lookups up to a recommender's
GATE_CASES = [
    (60, 32, 96),
    (1000, 32, 256),
    (1000, 32, 512),
    (10_000, 64, 128),
    (10_000, 32, 4096),
    (100_000, 32, 16_384),
]


def _median_us(fn: Any, calls: int, slices: int) -> float:
    import time

    times = []
    for _ in range(slices):
        start = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - start) / calls)
    return float(np.median(times)) * 1e6


def gate(quick: bool) -> None:
    """The NumPy paths against the compiled kernels, per call (the kernels loaded first)."""
    from downslope import jit_gate
    from downslope.nn import _jit, layers

    gather = jit_gate.kernels("downslope.nn._jit_embedding")
    scatter = _jit.kernels(np.zeros(1, np.float32))
    if gather is None or scatter is None:
        print("numba is not installed: nothing to compare")
        return
    slices = 2 if quick else 9
    print(f"gradient gate: layers.JIT_EMBEDDING_GRAD_MIN_SIZE = {layers.JIT_EMBEDDING_GRAD_MIN_SIZE} elements")
    rng = np.random.default_rng(0)
    for rows, dim, n in GATE_CASES:
        calls = 2 if quick else max(5, 20_000 // (n // 32 + rows // 256 + 10))
        t = _gate_case(rng, rows, dim, n, gather, scatter, calls, slices)
        print(
            f"table {rows}x{dim}, {n} indices ({n * dim} elements): lookup take {t[0]:.1f} us, compiled {t[1]:.1f} us"
            f" | gradient NumPy {t[2]:.1f} us, compiled {t[3]:.1f} us"
        )


def _gate_case(
    rng: Any, rows: int, dim: int, n: int, gather: Any, scatter: Any, calls: int, slices: int
) -> list[float]:
    """Per-call times (us) of: take, the compiled gather, NumPy's scatter, the compiled scatter-add."""
    from downslope import graph, workspace

    table = rng.standard_normal((rows, dim)).astype(np.float32)
    idx = rng.integers(0, rows, n)
    g = rng.standard_normal((n, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)

    def take() -> None:
        if idx.min() < 0:
            raise IndexError
        np.take(table, idx, axis=0)

    def compiled_gather() -> None:
        gather.gather_rows(table, idx, out)

    def numpy_scatter() -> None:
        graph.ArrayRules.scatter((rows, dim), idx, True, g)

    def compiled_scatter() -> None:
        workspace.give(scatter.add_rows(workspace.lend_zeros((rows, dim), g.dtype, like=g), idx, g))

    paths = (take, compiled_gather, numpy_scatter, compiled_scatter)
    for f in paths:  # the kernels' first call loads them from numba's cache: not timed
        f()
    return [_median_us(f, calls, slices) for f in paths]


def main() -> None:
    import torch

    import downslope as ds

    args, threads = parse_args(
        __doc__,
        "a few calls only (CI smoke test, no timing claims)",
        lambda parser: parser.add_argument("--gate", action="store_true", help="measure the size gates instead"),
    )
    print_header(threads)
    if args.gate:
        gate(args.quick)
        return
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
