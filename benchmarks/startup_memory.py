"""Start-up time and peak memory, each measured in fresh processes.

- ``import downslope`` and ``downslope --help``: wall time of a new interpreter doing just that
  (median of several runs), beside a bare interpreter and ``import torch``. Target: < 0.3 s.
- Peak resident memory (ru_maxrss) of a process that trains the MLP 784-256-128-10 of
  ``mlp_large.py`` for one epoch with Adam, per library; the data are the same for all, so the
  differences are the libraries' own. Target: downslope below PyTorch.

Run: python benchmarks/startup_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import smoke  # noqa: E402

TRAIN = """
import resource, sys
sys.path.insert(0, {here!r})
import numpy as np
from _common import init_mlp, {factory}
from mlp_large import BATCH, SIZES, make_classification
{threads}
from threadpoolctl import threadpool_limits
threadpool_limits(1)
x, y = make_classification({n}, SIZES[0], SIZES[-1], seed=0)
batches = [(np.ascontiguousarray(x[i : i + BATCH]), y[i : i + BATCH]) for i in range(0, {n} - BATCH + 1, BATCH)]
{factory}(init_mlp(SIZES, np.random.default_rng(2)), lr=1e-3)(batches)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def wall_time(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb(factory: str, n: int) -> float | None:
    # Only the library being measured is imported (set_threads would import torch everywhere).
    threads = "import torch; torch.set_num_threads(1)" if factory.startswith("torch") else ""
    code = TRAIN.format(here=HERE, factory=factory, n=n, threads=threads)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr:
            return None
        raise RuntimeError(f"{factory} run failed:\n{done.stderr}")
    return int(done.stdout.split()[-1]) / 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and samples (CI smoke test)")
    args = parser.parse_args()
    runs, n = (1, 256) if smoke() else (2, 2_000) if args.quick else (9, 50_000)
    py = sys.executable
    bare = wall_time([py, "-c", "pass"], runs)
    print(f"start-up, median of {runs} fresh processes (a bare interpreter takes {bare:.3f} s):")
    for label, cmd in (
        ("import downslope", [py, "-c", "import downslope"]),
        ("downslope --help", [py, "-m", "downslope", "--help"]),
        ("import torch", [py, "-c", "import torch"]),
    ):
        try:
            t = wall_time(cmd, runs)
        except subprocess.CalledProcessError:
            print(f"  {label:<18} failed (not installed?)")
            continue
        target = "  (target < 0.3 s: " + ("met)" if t < 0.3 else "NOT met)") if "downslope" in label else ""
        print(f"  {label:<18} {t:6.3f} s{target}")
    print(f"peak memory (max RSS) of one epoch of MLP 784-256-128-10 with Adam on {n} samples:")
    peaks = {
        name: peak_rss_mb(factory, n) for name, factory in (("downslope", "downslope_mlp"), ("torch", "torch_mlp"))
    }
    for name, mb in peaks.items():
        print(f"  {name:<10} " + ("not installed" if mb is None else f"{mb:7.1f} MB"))
    if peaks["torch"] is not None and peaks["downslope"] is not None:
        ratio = peaks["downslope"] / peaks["torch"]
        print(f"target: downslope below torch -> {ratio:.2f}x ({'met' if ratio < 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
