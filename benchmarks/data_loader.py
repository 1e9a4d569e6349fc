"""One epoch of a DataLoader against PyTorch's, side by side in one process.

Cases: a TensorDataset of 100,000 x 32 float32 rows and int64 labels, shuffled, batch 64 and 256; a
map-style dataset with a Python ``__getitem__`` (a row and a label per call, as most user datasets),
batch 64; each with ``num_workers`` 0 and 2. A line is the median wall time of one full epoch (iterating
the loader to the end, touching nothing), the peers taking turns epoch by epoch (the first peer
rotating), so a burst of load from other jobs hits both alike; the ratio is downslope's over PyTorch's
(<= 1.0: downslope is as fast or faster). Wall time, not CPU time: PyTorch's workers are other processes.

downslope reads the data in this process whatever ``num_workers`` says (its workers are emulated, see
``DataLoader``): with 2 workers it does the same work as with 0, while PyTorch starts 2 processes each
epoch (their start-up is part of its epoch, as in a training loop without ``persistent_workers``).
Run: python benchmarks/data_loader.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import parse_args, print_header, smoke  # noqa: E402


def epoch(loader: Any) -> Callable[[], object]:
    def run() -> int:
        count = 0
        for _batch in loader:
            count += 1
        return count

    return run


def interleaved_wall(peers: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds per call of each peer over ``repeats`` turns (after one warm-up call each)."""
    names = list(peers)
    for name in names if not smoke() else ():
        peers[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            peers[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in samples.items()}


def python_dataset(lib: Any, x: np.ndarray, y: np.ndarray) -> Any:
    class Rows(lib.utils.data.Dataset):
        """A user's map-style dataset: one row and its label per __getitem__ call."""

        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[i], y[i]

    return Rows()


def main() -> None:
    args, threads = parse_args(__doc__, "a smoke run: 10,000 rows, 2 repeats")
    import torch

    import downslope as ds

    print_header(threads)
    n, repeats = (1_000, 1) if smoke() else (10_000, 2) if args.quick else (100_000, 5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 32)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    datasets = {
        "TensorDataset": (
            torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
            ds.utils.data.TensorDataset(ds.from_numpy(x), ds.from_numpy(y)),
        ),
        "Python __getitem__": (python_dataset(torch, x, y), python_dataset(ds, x, y)),
    }
    cases = [("TensorDataset", 64), ("TensorDataset", 256), ("Python __getitem__", 64)]
    print(f"{n:,} rows x 32 float32, shuffle=True; median wall seconds per epoch over {repeats} epochs")
    ratios = []
    for name, batch_size in cases:
        for workers in (0, 2):
            theirs, ours = datasets[name]
            torch_loader = torch.utils.data.DataLoader(theirs, batch_size=batch_size, shuffle=True, num_workers=workers)
            ds_loader = ds.utils.data.DataLoader(ours, batch_size=batch_size, shuffle=True, num_workers=workers)
            assert epoch(torch_loader)() == epoch(ds_loader)() == -(-n // batch_size)  # the same batches
            times = interleaved_wall({"torch": epoch(torch_loader), "downslope": epoch(ds_loader)}, repeats)
            ratio = times["downslope"] / times["torch"]
            ratios.append(ratio)
            title = f"{name} batch {batch_size} num_workers={workers}"
            print(
                f"{title:<44} torch {times['torch']:8.3f} s  downslope {times['downslope']:8.3f} s  ratio {ratio:6.3f}"
            )
    print(f"geometric mean of the ratios: {float(np.exp(np.mean(np.log(ratios)))):.3f}")


if __name__ == "__main__":
    main()
