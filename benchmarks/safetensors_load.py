"""Reading a safetensors file: ``ds.load_safetensors`` against ``safetensors.numpy.load_file`` and
``safetensors.torch.load_file``, side by side in one process.

The file: 100 float32 tensors of 1024 x 512 (200 MiB; ``--quick``: 10 of them, 20 MiB), written once to
a temporary folder (so it sits in the page cache: the times are the copies, not the disk). A line is the
median wall time of one whole load over the repeats, the peers taking turns (the first rotating); the
ratio is the peer's over ``safetensors.numpy.load_file``'s (the library's NumPy reader, which also hands
back arrays that own their memory). ``safetensors.torch.load_file`` maps the file and copies lazily, so
its time is not a full read: it is shown for reference.
Run: python benchmarks/safetensors_load.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_model, parse_args, smoke  # noqa: E402


def main() -> None:
    args, threads = parse_args(__doc__, "a smoke run: a 20 MiB file, 3 repeats")
    import safetensors.numpy as stn

    import downslope as ds

    print(f"CPU: {cpu_model()}; {threads}")
    count, repeats = (2, 1) if smoke() else (10, 3) if args.quick else (100, 7)
    rng = np.random.default_rng(0)
    tensors = {f"w{i}": rng.standard_normal((1024, 512)).astype(np.float32) for i in range(count)}
    peers: dict[str, Callable[[str], object]] = {
        "downslope load_safetensors": ds.load_safetensors,
        "safetensors.numpy.load_file": stn.load_file,
    }
    try:
        import safetensors.torch as stt

        peers["safetensors.torch.load_file (lazy)"] = stt.load_file
    except ImportError:
        print("safetensors.torch: torch not installed, skipped")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "weights.safetensors")
        stn.save_file(tensors, path)
        loaded = ds.load_safetensors(path)
        assert all(np.array_equal(loaded[k].numpy(), v) for k, v in tensors.items())
        names = list(peers)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for name in names if not smoke() else ():
            peers[name](path)  # warm-up: the file in the page cache
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                peers[name](path)
                samples[name].append(time.perf_counter() - start)
    times = {name: statistics.median(t) for name, t in samples.items()}
    base = times["safetensors.numpy.load_file"]
    print(f"{count} x (1024 x 512) float32 = {count * 2} MiB; median wall time per load over {repeats} loads")
    for name in names:
        print(f"{name:<38} {times[name] * 1e3:9.1f} ms  ratio {times[name] / base:5.2f}")


if __name__ == "__main__":
    main()
