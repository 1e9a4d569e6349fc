"""Small-batch LSTM/GRU forward passes (no_grad and with grad) on each path, interleaved with PyTorch.

The NumPy formulation (the compiled loops off) runs every pass of a process until the compiled
loops start (see ``downslope.nn._rnn_jit``), so its speed at a small batch is what short programs
see. Its per-step products are gate-major, ``(4H, I+H+1) @ (I+H+1, N)``: at batch N <= 8 these
are narrow products, which ``gemm.stepper`` leaves to NumPy's BLAS (``gemm.STEP_NARROW_COLUMNS``);
``--old`` times them on oneDNN again, as before that rule.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/rnn_small_batch.py [--old]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch

import downslope as ds
from downslope import gemm
from downslope.nn import _jit, _rnn_jit


def main() -> None:
    torch.set_num_threads(1)
    if "--old" in sys.argv:
        gemm.STEP_NARROW_COLUMNS = 0
    compiled = _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is not None
    for kind in ("LSTM", "GRU"):
        for batch in (1, 4, 8):
            print(_time_layer(kind, batch, compiled and kind == "LSTM"))


def _time_layer(kind: str, batch: int, compiled: bool) -> str:
    """One line: the medians of interleaved runs of each path, and their ratios to PyTorch's."""
    x = np.random.default_rng(0).standard_normal((batch, 50, 32)).astype(np.float32)
    theirs = getattr(torch.nn, kind)(32, 128, batch_first=True)
    ours = getattr(ds.nn, kind)(32, 128, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xt, xd = torch.from_numpy(x), ds.tensor(x)

    def torch_nograd() -> None:
        with torch.no_grad():
            theirs(xt)

    def numpy_nograd() -> None:
        with ds.no_grad(), _jit.disabled():
            ours(xd)

    def numpy_grad() -> None:
        with _jit.disabled():
            ours(xd)

    def compiled_nograd() -> None:
        with ds.no_grad():
            ours(xd)

    def compiled_grad() -> None:
        ours(xd)

    runs = {"torch no_grad": torch_nograd, "numpy no_grad": numpy_nograd, "numpy grad": numpy_grad}
    if compiled:
        runs |= {"compiled no_grad": compiled_nograd, "compiled grad": compiled_grad}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for f in runs.values():
        f()
    for _ in range(9):
        for name, f in runs.items():
            start = time.perf_counter()
            for _ in range(10):
                f()
            times[name].append((time.perf_counter() - start) / 10)
    medians = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    base = medians["torch no_grad"]
    shown = "  ".join(f"{name} {ms:.3f} ms ({ms / base:.2f}x)" for name, ms in medians.items())
    return f"{kind} batch {batch}: {shown}"


if __name__ == "__main__":
    main()
