"""Training steps of embedding models, side by side with PyTorch: forward, loss, zero_grad,
backward and the optimizer step, float32, on big tables.

- matrix factorisation: users ``Embedding(1,000,000, 32, sparse=True)`` and items
  ``Embedding(200,000, 32, sparse=True)``, 4,096 (user, item, rating) triples, MSE, ``SparseAdam``;
- the same model with ``SGD`` (plain: each step moves only the rows looked up) and with ``Adagrad``;
- word2vec-style skip-gram with negative sampling: two ``Embedding(200,000, 64, sparse=True)``
  tables (centres and contexts), 512 centres with 1 context and 5 negatives each, BCE with logits, SGD;
- two-tower: ``EmbeddingBag(200,000, 64, mode="mean", sparse=True)`` over 1,024 bags of 10 ids
  against ``Embedding(200,000, 64, sparse=True)`` items, dot-product scores, MSE, ``SparseAdam``;
- the dense case: ``Embedding(200,000, 64)`` (sparse=False) with ``Adam``, 1,024 ids (both libraries
  then update the whole table each step).

Peers run in one process from the same tables and on the same batches, taking turns (medians of
CPU time per step); after the timing, each peer having taken the same steps, their tables are
compared. Targets: each case <= 1.0x PyTorch's.

Run: python benchmarks/embedding_training.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, print_target, show_ratio  # noqa: E402

USERS, ITEMS, WORDS, DIM_MF, DIM_W = 1_000_000, 200_000, 200_000, 32, 64


def _mf(lib: Any, tables: list[np.ndarray], opt_name: str, lr: float, batches: list[tuple[Any, ...]]) -> Any:
    users = lib.nn.Embedding(USERS, DIM_MF, sparse=True)
    items = lib.nn.Embedding(ITEMS, DIM_MF, sparse=True)
    _load(lib, [users, items], tables)
    params = [users.weight, items.weight]
    opt = getattr(lib.optim, opt_name)(params, lr=lr)
    step = [0]

    def run() -> None:
        u, i, r = batches[step[0] % len(batches)]
        step[0] += 1
        loss = ((users(u) * items(i)).sum(-1) - r).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run, params


def _w2v(lib: Any, tables: list[np.ndarray], batches: list[tuple[Any, ...]]) -> Any:
    centres = lib.nn.Embedding(WORDS, DIM_W, sparse=True)
    contexts = lib.nn.Embedding(WORDS, DIM_W, sparse=True)
    _load(lib, [centres, contexts], tables)
    params = [centres.weight, contexts.weight]
    opt = lib.optim.SGD(params, lr=0.5)
    step = [0]

    def run() -> None:
        c, ctx, labels = batches[step[0] % len(batches)]
        step[0] += 1
        scores = (contexts(ctx) * centres(c).unsqueeze(1)).sum(-1)  # (B, 1 + negatives)
        loss = lib.nn.functional.binary_cross_entropy_with_logits(scores, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run, params


def _two_tower(lib: Any, tables: list[np.ndarray], batches: list[tuple[Any, ...]]) -> Any:
    history = lib.nn.EmbeddingBag(WORDS, DIM_W, mode="mean", sparse=True)
    items = lib.nn.Embedding(WORDS, DIM_W, sparse=True)
    _load(lib, [history, items], tables)
    params = [history.weight, items.weight]
    opt = lib.optim.SparseAdam(params, lr=1e-2)
    step = [0]

    def run() -> None:
        h, offsets, i, r = batches[step[0] % len(batches)]
        step[0] += 1
        loss = ((history(h, offsets) * items(i)).sum(-1) - r).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run, params


def _dense(lib: Any, tables: list[np.ndarray], batches: list[tuple[Any, ...]]) -> Any:
    words = lib.nn.Embedding(WORDS, DIM_W)
    _load(lib, [words], tables)
    opt = lib.optim.Adam([words.weight], lr=1e-3)
    step = [0]

    def run() -> None:
        w, target = batches[step[0] % len(batches)]
        step[0] += 1
        loss = (words(w) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run, [words.weight]


def _load(lib: Any, layers: list[Any], tables: list[np.ndarray]) -> None:
    for layer, table in zip(layers, tables):
        with lib.no_grad():
            layer.weight.copy_(lib.from_numpy(table.copy()))


def _case(
    title: str,
    build: Callable[[Any, list[np.ndarray], list[tuple[Any, ...]]], Any],
    tables: list[np.ndarray],
    batches: list[tuple[np.ndarray, ...]],
    slices: int,
    steps: int,
    tol: float,
) -> None:
    import torch

    import downslope as ds

    run_t, params_t = build(torch, tables, [tuple(torch.from_numpy(a) for a in b) for b in batches])
    run_d, params_d = build(ds, tables, [tuple(ds.from_numpy(a) for a in b) for b in batches])
    times = interleaved({"torch": run_t, "downslope": run_d}, slices, steps)
    show_ratio(title, times, 58, unit="ms")
    print_target(times, "torch", 1.00)
    for k, (pt, pd) in enumerate(zip(params_t, params_d)):
        ours, theirs = pd.detach().numpy(), pt.detach().numpy()
        check_close(f"{title} table {k}", ours, theirs, tol)
        if not np.array_equal((ours != tables[k]).any(axis=1), (theirs != tables[k]).any(axis=1)):
            raise SystemExit(f"{title} table {k}: the rows updated differ from torch's")


def main() -> None:
    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)")
    print_header(threads)
    rng = np.random.default_rng(0)
    f32 = np.float32

    def table(rows: int, dim: int) -> np.ndarray:
        return (rng.standard_normal((rows, dim)) * 0.1).astype(f32)

    n_batches = 4
    mf_batches = [
        (rng.integers(0, USERS, 4096), rng.integers(0, ITEMS, 4096), rng.standard_normal(4096).astype(f32))
        for _ in range(n_batches)
    ]
    labels = np.zeros((512, 6), f32)
    labels[:, 0] = 1
    w2v_batches = [(rng.integers(0, WORDS, 512), rng.integers(0, WORDS, (512, 6)), labels) for _ in range(n_batches)]
    tower_batches = [
        (
            rng.integers(0, WORDS, 10240),
            np.arange(0, 10240, 10),
            rng.integers(0, WORDS, 1024),
            rng.standard_normal(1024).astype(f32),
        )  # fmt: skip
        for _ in range(n_batches)
    ]
    dense_batches = [
        (rng.integers(0, WORDS, 1024), rng.standard_normal((1024, DIM_W)).astype(f32)) for _ in range(n_batches)
    ]
    mf_tables = [table(USERS, DIM_MF), table(ITEMS, DIM_MF)]
    w_tables = [table(WORDS, DIM_W), table(WORDS, DIM_W)]
    slices, steps = (2, 1) if args.quick else (15, 4)
    _case("MF 1M+200k x 32, 4096 ids, SparseAdam", lambda lib, t, b: _mf(lib, t, "SparseAdam", 1e-2, b),
          mf_tables, mf_batches, slices, steps, 1e-5)  # fmt: skip
    _case("MF 1M+200k x 32, 4096 ids, SGD", lambda lib, t, b: _mf(lib, t, "SGD", 0.5, b),
          mf_tables, mf_batches, slices, steps, 1e-5)  # fmt: skip
    _case("MF 1M+200k x 32, 4096 ids, Adagrad", lambda lib, t, b: _mf(lib, t, "Adagrad", 0.05, b),
          mf_tables, mf_batches, slices, steps, 1e-5)  # fmt: skip
    _case("word2vec 2 x 200k x 64, 512 x (1+5) ids, SGD", _w2v, w_tables, w2v_batches, slices, steps, 1e-5)
    _case("two-tower bag 200k x 64, 1024 bags of 10, SparseAdam", _two_tower, w_tables, tower_batches,
          slices, steps, 1e-5)  # fmt: skip
    _case("dense Embedding 200k x 64, 1024 ids, Adam", _dense, w_tables[:1], dense_batches, slices, steps, 1e-5)


if __name__ == "__main__":
    main()
