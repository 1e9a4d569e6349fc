"""A recurrent cell stepped in a Python loop, side by side: PyTorch's time-sequence-prediction model.

The model of pytorch/examples' time_sequence_prediction: LSTMCell(1, 51) -> LSTMCell(51, 51) ->
Linear(51, 1), in float64, batch 97, the input split into time steps and the cells called once
per step from Python (so every step is a separate call of each cell: per-call overhead counts).
One "pass" is the forward over ``--steps`` time steps (default 100) plus the backward of the
mean squared output; the example's L-BFGS is left out (it calls the same closure).

Then a packed batch through a sequence layer: a BiLSTM and a BiGRU (64 -> 128 units, float32,
batch 32 of lengths 10..40, ``pack_padded_sequence(enforce_sorted=False)``), inference under
no_grad and forward+backward, beside the same layer on the padded batch unpacked; and an LSTM with a
projection (LSTM(32, 64, proj_size=16), T=50, batch 16, float32, forward+backward). Target: the
packed inference <= 1.0x PyTorch's (the packed batch runs the fused sequence kernels with a
per-step count of active rows, within about 1.1x of the unpacked batch).

Peers (downslope, PyTorch eager) run from the same initial weights on the same input, taking
turns (medians over turns of wall and CPU ms per pass). No target is set for this workload; the
sequence layers' targets are in ``conv_recurrent.py``.

Run: python benchmarks/rnn_cells.py [--quick] [--threads N] [--steps T]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import blas_report, interleaved, parse_args, print_target, show_ratio, smoke  # noqa: E402

BATCH, HIDDEN = 97, 51


def torch_pass(x: np.ndarray) -> tuple[Callable[[], None], dict[str, np.ndarray]]:
    """(one forward + backward pass, the initial weights by PyTorch's names)."""
    import torch

    torch.manual_seed(0)
    lstm1, lstm2 = torch.nn.LSTMCell(1, HIDDEN).double(), torch.nn.LSTMCell(HIDDEN, HIDDEN).double()
    linear = torch.nn.Linear(HIDDEN, 1).double()
    modules = {"lstm1": lstm1, "lstm2": lstm2, "linear": linear}
    state = {f"{m}.{k}": v.detach().numpy().copy() for m, mod in modules.items() for k, v in mod.state_dict().items()}
    inputs = torch.from_numpy(x)

    def run() -> None:
        zeros = torch.zeros(x.shape[0], HIDDEN, dtype=torch.float64)
        s1 = s2 = (zeros, zeros)
        outputs = []
        for step in inputs.split(1, dim=1):
            s1 = lstm1(step, s1)
            s2 = lstm2(s1[0], s2)
            outputs.append(linear(s2[0]))
        (torch.stack(outputs, 1) ** 2).mean().backward()

    return run, state


def downslope_pass(x: np.ndarray, state: dict[str, np.ndarray]) -> Callable[[], None]:
    import downslope as ds
    from downslope import nn

    lstm1 = nn.LSTMCell(1, HIDDEN, dtype=np.float64)
    lstm2 = nn.LSTMCell(HIDDEN, HIDDEN, dtype=np.float64)
    linear = nn.Linear(HIDDEN, 1, dtype=np.float64)
    for name, mod in {"lstm1": lstm1, "lstm2": lstm2, "linear": linear}.items():
        mod.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(name + ".")})
    inputs = ds.tensor(x, dtype=np.float64)

    def run() -> None:
        zeros = ds.zeros(x.shape[0], HIDDEN, dtype=np.float64)
        s1: Any = (zeros, zeros)
        s2: Any = (zeros, zeros)
        outputs = []
        for step in inputs.split(1, dim=1):
            s1 = lstm1(step, s1)
            s2 = lstm2(s1[0], s2)
            outputs.append(linear(s2[0]))
        (ds.stack(outputs, 1) ** 2).mean().backward()

    return run


def main() -> None:
    def hook(parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=100, help="time steps per pass (default 100)")

    args, threads = parse_args(__doc__, "a few short passes only (CI smoke test, no timing claims)", hook)
    steps, turns = (5, 1) if smoke() else (5, 3) if args.quick else (args.steps, 15)
    print(blas_report() + "; " + threads)
    print(f"load average {os.getloadavg()[0]:.2f}")
    from downslope.nn import _rnn_jit

    # the compiled loops start at setup, as torch's library is loaded: a process starts them on its own
    # only once small passes' gains add up to their start cost (see downslope.nn._rnn_jit)
    _rnn_jit.kernels(np.zeros(1, np.float32))
    x = np.sin(np.arange(BATCH * steps, dtype=np.float64).reshape(BATCH, steps) / 20.0)
    torch_run, state = torch_pass(x)
    peers = {"downslope": downslope_pass(x, state), "torch": torch_run}
    samples: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in peers}
    for run in peers.values() if not smoke() else ():
        run()  # warm-up
    for _ in range(turns):
        for name, run in peers.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            samples[name]["wall"].append((time.perf_counter() - wall) * 1e3)
            samples[name]["cpu"].append((time.process_time() - cpu) * 1e3)
    print(f"LSTMCell loop (time_sequence_prediction, float64, batch {BATCH}, {steps} steps): ms per forward+backward")
    med = {name: {k: statistics.median(v) for k, v in got.items()} for name, got in samples.items()}
    for name, m in med.items():
        print(f"  {name:<10} {m['wall']:8.2f} ms wall  {m['cpu']:8.2f} ms CPU")
    print(
        f"ratio downslope/torch: {med['downslope']['wall'] / med['torch']['wall']:.2f} wall, "
        f"{med['downslope']['cpu'] / med['torch']['cpu']:.2f} CPU"
    )
    packed_sequences(args.quick)
    projected_lstm(args.quick)


def projected_lstm(quick: bool) -> None:
    """LSTM(32, 64, proj_size=16) forward+backward against PyTorch's (the step-by-step path, each step
    the fused cell plus the projection)."""
    import warnings

    import torch

    import downslope as ds

    x = np.random.default_rng(0).standard_normal((50, 16, 32)).astype(np.float32)
    theirs = torch.nn.LSTM(32, 64, proj_size=16)
    ours = ds.nn.LSTM(32, 64, proj_size=16)
    ours.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    xt, xd = torch.from_numpy(x).requires_grad_(True), ds.from_numpy(x).requires_grad_(True)

    def train_t() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # projections are not supported with oneDNN: torch's default path
            theirs(xt)[0].sum().backward()

    def train_d() -> None:
        ours(xd)[0].sum().backward()

    slices, steps = (2, 1) if quick else (15, 3)
    show_ratio("LSTM 32->64 proj 16, T=50 B=16 fwd+bwd", interleaved({"torch": train_t, "downslope": train_d}, slices, steps), 44, "ms")  # fmt: skip


def packed_sequences(quick: bool) -> None:
    """Packed BiLSTM / BiGRU against PyTorch's, and against the unpacked padded batch."""
    import torch
    import torch.nn.utils.rnn as trnn

    import downslope as ds
    import downslope.nn.utils.rnn as drnn

    rng = np.random.default_rng(0)
    batch, longest, features, hidden = 32, 40, 64, 128
    lengths = rng.integers(10, longest + 1, batch)
    x = rng.standard_normal((batch, longest, features)).astype(np.float32)
    slices, steps = (2, 1) if quick else (15, 3)
    width = 44
    for kind in ("LSTM", "GRU"):
        theirs = getattr(torch.nn, kind)(features, hidden, batch_first=True, bidirectional=True)
        ours = getattr(ds.nn, kind)(features, hidden, batch_first=True, bidirectional=True)
        ours.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
        xt, xd = torch.from_numpy(x).requires_grad_(True), ds.from_numpy(x).requires_grad_(True)
        lt, ld = torch.from_numpy(lengths), ds.from_numpy(lengths)

        def infer_t(theirs: Any = theirs, xt: Any = xt, lt: Any = lt) -> None:
            with torch.no_grad():
                theirs(trnn.pack_padded_sequence(xt, lt, batch_first=True, enforce_sorted=False))

        def infer_d(ours: Any = ours, xd: Any = xd, ld: Any = ld) -> None:
            with ds.no_grad():
                ours(drnn.pack_padded_sequence(xd, ld, batch_first=True, enforce_sorted=False))

        def train_t(theirs: Any = theirs, xt: Any = xt, lt: Any = lt) -> None:
            out, _ = theirs(trnn.pack_padded_sequence(xt, lt, batch_first=True, enforce_sorted=False))
            out.data.sum().backward()

        def train_d(ours: Any = ours, xd: Any = xd, ld: Any = ld) -> None:
            out, _ = ours(drnn.pack_padded_sequence(xd, ld, batch_first=True, enforce_sorted=False))
            out.data.sum().backward()

        def unpacked_d(ours: Any = ours, xd: Any = xd) -> None:
            with ds.no_grad():
                ours(xd)

        times = interleaved({"torch": infer_t, "downslope": infer_d, "unpacked": unpacked_d}, slices, steps)
        show_ratio(f"packed Bi{kind} {features}->{hidden} inference", times, width, "ms")
        print(f"{'':<{width}} downslope packed / unpacked {times['downslope'] / times['unpacked']:5.2f}")
        show_ratio(f"packed Bi{kind} {features}->{hidden} forward+backward", interleaved(
            {"torch": train_t, "downslope": train_d}, slices, steps), width, "ms")  # fmt: skip
        print_target(times, "torch", 1.00)


if __name__ == "__main__":
    main()
