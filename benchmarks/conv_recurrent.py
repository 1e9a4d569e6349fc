"""Training steps of the convolutional and recurrent nets people train after an MLP, side by side.

Workloads (``--workload``, default all), each one training step per batch of synthetic data:

* ``cnn_mnist``: 1x28x28 input, Conv2d(1,32,3,pad 1)-ReLU-MaxPool2d(2)-Conv2d(32,64,3,pad 1)-ReLU-
  MaxPool2d(2)-Flatten-Linear(3136,128)-ReLU-Linear(128,10), batch 64, Adam (lr 1e-3).
* ``cnn_cifar``: 3x32x32 input, Conv2d(3,32,3,pad 1)-BatchNorm2d-ReLU-MaxPool2d(2)-Conv2d(32,64,3,pad 1)-
  BatchNorm2d-ReLU-MaxPool2d(2)-Flatten-Linear(4096,10), batch 64, SGD (lr 0.01, momentum 0.9).
* ``lstm`` / ``gru``: LSTM(32, 128) / GRU(32, 128) over 50 steps, batch 32, the last step's output
  -> Linear(128, 10), Adam (lr 1e-3).
* ``word_lm``: the model of pytorch/examples' word_language_model at its default size on a
  10,000-word vocabulary: Embedding(10000, 200)-Dropout(0.2)-LSTM(200, 200, 2 layers, dropout 0.2)-
  Dropout(0.2)-Linear(200, 10000), 35 steps, batch 20, cross-entropy over every step's word,
  clip_grad_norm_(0.25), SGD (lr 20). The issue that asked for this benchmark set no target for it;
  it is held to the same ratios as the others.

Peers (downslope, PyTorch eager) start from the same initial weights and train on the same batches
in the same order, taking turns on slices of the work (medians over slices). Each peer runs in a
process of its own (only its library imported), as a user's program would: two libraries in one
process share one OpenMP runtime and one allocator, so the settings and the freed memory of one
change the other's time (``--one-process`` runs both in this process, as earlier versions did). Targets:
downslope's ms per step <= 0.9x PyTorch's with one thread each, <= 1.0x with two (``--threads 2``).
For the CNNs the peak resident memory is measured too, each peer in a fresh process (only its own
library imported, and numba when downslope's jit extra is installed): the rise of the RSS
high-water mark over the RSS after setup, during the steps, and during the steps after the first
(which also loads code once per process). Target: downslope's <= PyTorch's.

``--profile`` adds the downslope step's cProfile (the functions with the most own time).
Timing modes: by default each peer runs all the steps in one turn, five turns each, as a training
run keeps its threads busy from one step to the next (medians over turns). ``--slices`` has the
peers take turns on slices of 10 steps (25 slices), each after a short pause: on a virtual machine
that measures the first steps after each wake-up as well. Woken by the pipe that starts its turn,
a process's threads can land on one core and stay there for 20-30 ms (seen in /proc/<tid>/stat):
threads that sleep between parallel regions (downslope's, so that two runs at once can share the
cores) are then placed anew at each region on the core they shared, while threads that spin
(PyTorch's) stay runnable and are moved apart within a few milliseconds. The two modes differ most
for two threads.

Run: python benchmarks/conv_recurrent.py [--quick] [--threads N] [--workload NAME] [--profile] [--slices]
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import Batches, Peer, blas_report, parse_args, smoke  # noqa: E402

WORKLOADS = ("cnn_mnist", "cnn_cifar", "lstm", "gru", "word_lm")
BATCH = {"cnn_mnist": 64, "cnn_cifar": 64, "lstm": 32, "gru": 32, "word_lm": 20}
SEQ, FEATURES, HIDDEN = 50, 32, 128
VOCAB, WORDS, EMBED, CLIP = 10_000, 35, 200, 0.25  # word_lm: vocabulary, steps (bptt), sizes, clip norm
#: Seconds between one peer's turn and the next (see :func:`time_in_processes`): longer than an
#: idle OpenMP worker spins.
SETTLE_S = 0.05
#: Turns of each peer by default (each all the steps; ``--slices``: one turn per slice).
ROUNDS = 5


def make_batches(workload: str, steps: int, seed: int = 0) -> Batches:
    """Synthetic float32 inputs and int64 labels (10 classes), the same for every peer."""
    rng = np.random.default_rng(seed)
    if workload == "word_lm":  # token ids (steps, batch) and the next word of every position
        return [
            (
                rng.integers(0, VOCAB, (WORDS, BATCH[workload])).astype(np.int64),
                rng.integers(0, VOCAB, WORDS * BATCH[workload]).astype(np.int64),
            )
            for _ in range(steps)
        ]
    shape = {
        "cnn_mnist": (BATCH[workload], 1, 28, 28),
        "cnn_cifar": (BATCH[workload], 3, 32, 32),
        "lstm": (SEQ, BATCH[workload], FEATURES),
        "gru": (SEQ, BATCH[workload], FEATURES),
    }[workload]
    return [
        (rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, BATCH[workload]).astype(np.int64))
        for _ in range(steps)
    ]


# ---------------------------------------------------------------------- models, one per library
def torch_model(workload: str) -> tuple[Any, Callable[[Any], Any], Any]:
    """(model, forward(x) -> logits, optimizer) in PyTorch; its initial weights are the reference."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if workload == "cnn_mnist":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        return model, model, torch.optim.Adam(model.parameters(), lr=1e-3)
    if workload == "cnn_cifar":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4096, 10),
        )  # fmt: skip
        return model, model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if workload == "word_lm":
        layers, words = word_model(nn)
        return layers, words, torch.optim.SGD(layers.parameters(), lr=20.0)
    rnn = (nn.LSTM if workload == "lstm" else nn.GRU)(FEATURES, HIDDEN)
    head = nn.Linear(HIDDEN, 10)
    model = nn.ModuleDict({"rnn": rnn, "head": head})

    def forward(x: Any) -> Any:
        return head(rnn(x)[0][-1])

    return model, forward, torch.optim.Adam(model.parameters(), lr=1e-3)


def word_model(nn: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The word_lm model in either library (``nn`` is ``torch.nn`` or ``downslope.nn``, which share
    these names): (its layers, forward(token ids) -> logits of every position)."""
    layers = nn.ModuleDict(
        {
            "encoder": nn.Embedding(VOCAB, EMBED),
            "rnn": nn.LSTM(EMBED, EMBED, 2, dropout=0.2),
            "decoder": nn.Linear(EMBED, VOCAB),
        }
    )
    drop = nn.Dropout(0.2)

    def words(x: Any) -> Any:
        out = layers["rnn"](drop(layers["encoder"](x)))[0]
        return layers["decoder"](drop(out)).view(-1, VOCAB)

    return layers, words


def downslope_model(workload: str, state: dict[str, np.ndarray]) -> tuple[Any, Callable[[Any], Any], Any]:
    """The same model in downslope, its parameters copied from ``state`` (PyTorch's names)."""
    from downslope import nn, optim

    if workload == "cnn_mnist":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        forward: Callable[[Any], Any] = model
    elif workload == "cnn_cifar":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4096, 10),
        )  # fmt: skip
        forward = model
    elif workload == "word_lm":
        model, forward = word_model(nn)
    else:
        rnn = (nn.LSTM if workload == "lstm" else nn.GRU)(FEATURES, HIDDEN)
        head = nn.Linear(HIDDEN, 10)
        model = nn.ModuleDict({"rnn": rnn, "head": head})

        def forward(x: Any) -> Any:
            return head(rnn(x)[0][-1])

    model.load_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, strict=False)
    if workload == "cnn_cifar":
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    elif workload == "word_lm":
        opt = optim.SGD(model.parameters(), lr=20.0)
    else:
        opt = optim.Adam(model.parameters(), lr=1e-3)
    return model, forward, opt


def reference_state(workload: str) -> dict[str, np.ndarray]:
    model = torch_model(workload)[0]
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def downslope_peer(workload: str, state: dict[str, np.ndarray]) -> Callable[[Batches], object]:
    import downslope as ds
    from downslope import nn

    model, forward, opt = downslope_model(workload, state)
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(forward(ds.from_numpy(x)), ds.from_numpy(y)).backward()
            if workload == "word_lm":
                nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()

    return run


def torch_peer(workload: str, state: dict[str, np.ndarray]) -> Callable[[Batches], object]:
    import torch

    model, forward, opt = torch_model(workload)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    loss_fn = torch.nn.CrossEntropyLoss()

    params = list(model.parameters())

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss_fn(forward(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            if workload == "word_lm":
                torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()

    return run


# ---------------------------------------------------------------------- timing
def time_peers(peers: list[Peer], batches: Batches, pieces: int) -> dict[str, dict[str, float]]:
    """Per peer, medians over slices of the batches (the peers taking turns on each slice, after
    one warm-up slice each) of: wall ms per step, CPU ms per step (this process, all threads),
    and minor page faults per step (memory the allocator had returned to the system and touches
    again). On a shared machine the CPU time is the steadier measure of the work done. Under
    ``"paired"``: the slice-by-slice ratio of downslope's wall time to torch's (:func:`_paired`)."""
    import statistics

    slices = _slices(batches, pieces)
    for peer in peers if not smoke() else ():
        peer.run(slices[0])
    samples: dict[str, dict[str, list[float]]] = {p.name: {"wall": [], "cpu": [], "faults": []} for p in peers}
    for piece in slices:
        for peer in peers:
            wall, cpu, faults = _timed(peer.run, piece)
            got = samples[peer.name]
            got["wall"].append(wall)
            got["cpu"].append(cpu)
            got["faults"].append(faults)
    out = {name: {k: statistics.median(v) for k, v in got.items()} for name, got in samples.items()}
    out["paired"] = _paired(samples["downslope"]["wall"], samples["torch"]["wall"])
    return out


def set_up_child(peer: str, threads: int) -> None:
    """In a one-peer process: load only that peer's library and give it ``threads`` threads."""
    if peer == "torch":
        import torch

        torch.set_num_threads(threads)
    else:  # downslope's optional kernels (numba, oneDNN), loaded at setup as torch's library is
        from downslope import gemm
        from downslope.nn import _jit

        _jit.kernels()
        gemm.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def load_child_state() -> dict[str, np.ndarray]:
    state = np.load(os.environ["DOWNSLOPE_BENCH_STATE"])
    return {k: state[k] for k in state.files}


def time_child(workload: str, peer: str, steps: int, pieces: int, threads: int) -> None:
    """Run in a process of its own: build one peer, then run the slice whose index arrives on stdin
    and answer with its wall ms, CPU ms and page faults per step (one line), until stdin closes."""
    set_up_child(peer, threads)
    batches = make_batches(workload, steps)
    run = (
        downslope_peer(workload, load_child_state())
        if peer == "downslope"
        else torch_peer(workload, load_child_state())
    )
    slices = _slices(batches, pieces)
    if not smoke():  # the smoke run times each step once, cold
        run(slices[0])  # warm-up
    print("ready", flush=True)
    for line in sys.stdin:
        piece = batches if line.strip() == "all" else slices[int(line)]
        if not smoke():
            run(piece[:1])  # untimed: caches and threads back in use after the wait for this turn
        wall, cpu, faults = _timed(run, piece)
        print(wall, cpu, faults, flush=True)


def _slices(batches: list[Any], pieces: int) -> list[list[Any]]:
    size = max(1, len(batches) // pieces)
    return [batches[i : i + size] for i in range(0, len(batches) - size + 1, size)]


def _timed(run: Callable[[Batches], object], piece: Batches) -> tuple[float, float, float]:
    """(wall ms, CPU ms of this process, minor page faults) per step of ``run(piece)``."""
    import resource
    import time

    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu, wall = time.process_time(), time.perf_counter()
    run(piece)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return wall / len(piece) * 1e3, cpu / len(piece) * 1e3, faults / len(piece)


def time_in_processes(
    workload: str, state: dict[str, np.ndarray], steps: int, pieces: int, threads: int, continuous: bool = False
) -> dict[str, dict[str, float]]:
    """As :func:`time_peers`, each peer in a process of its own; the processes take turns (one runs
    a slice while the other waits on its stdin), so they never compete for the cores. With
    ``continuous``, each turn is all ``steps`` steps instead of a slice (:data:`ROUNDS` turns each):
    a training run's threads stay busy from one step to the next, where after each short slice's
    pause they are woken anew (see the module docstring for what that measures too).

    Each turn starts after a pause of :data:`SETTLE_S` and one untimed step: an OpenMP runtime's
    worker threads keep spinning for a while after their last parallel region (GNU OpenMP's
    default, which torch runs with: about 8 ms of a core, measured), and without the pause the
    peer that has just finished would take a core from the one being timed (with two threads the
    LSTM's steps measured 4.5 ms instead of 3.8 ms that way). A user's program runs alone."""
    import statistics
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.npz")
        np.savez(path, **state)
        env = dict(os.environ, DOWNSLOPE_BENCH_STATE=path)
        children = {}
        for peer in ("downslope", "torch"):
            cmd = [sys.executable, __file__, "--child", "time", "--peer", peer, "--workload", workload]
            cmd += ["--threads", str(threads), "--steps", str(steps), "--pieces", str(pieces)]
            children[peer] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        try:
            for peer, child in children.items():  # set up one after the other
                if child.stdout is None or child.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"the {peer} timing process failed to start")
            samples: dict[str, list[list[float]]] = {peer: [] for peer in children}
            turns = (
                ["all"] * (1 if smoke() else ROUNDS) if continuous else range(len(_slices(list(range(steps)), pieces)))
            )
            for index in turns:
                for peer, child in children.items():
                    assert child.stdin is not None and child.stdout is not None
                    time.sleep(SETTLE_S)
                    child.stdin.write(f"{index}\n")
                    child.stdin.flush()
                    samples[peer].append([float(v) for v in child.stdout.readline().split()])
        finally:
            for child in children.values():
                if child.stdin is not None:
                    child.stdin.close()
                child.wait(timeout=60)
    keys = ("wall", "cpu", "faults")
    out = {
        peer: {k: statistics.median(row[i] for row in rows) for i, k in enumerate(keys)}
        for peer, rows in samples.items()
    }
    out["paired"] = _paired([row[0] for row in samples["downslope"]], [row[0] for row in samples["torch"]])
    return out


def _paired(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """The wall-time ratio slice by slice (the peers ran each slice one right after the other, so a
    slow spell of a shared machine hits both): its median and middle half, the spread to expect
    from one run to the next."""
    import statistics

    ratios = sorted(a / b for a, b in zip(ours, theirs))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"median": statistics.median(ratios), "low": quartiles[0], "high": quartiles[2]}


# ---------------------------------------------------------------------- peak memory, fresh process
def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_child(workload: str, peer: str, steps: int, threads: int) -> None:
    """Run in a fresh process: build one peer, run ``steps`` steps, print baseline and peak RSS (kB)."""
    set_up_child(peer, threads)
    state = load_child_state()
    batches = make_batches(workload, steps)
    run = downslope_peer(workload, state) if peer == "downslope" else torch_peer(workload, state)
    base = _rss_kb("VmRSS")
    run(batches[:1])
    first = _rss_kb("VmHWM")
    # The first step also loads code once per process (torch's oneDNN primitives; numba's LLVM
    # and downslope's compiled kernels, ~60 MB, when numba is installed). The steps after it show
    # what a step itself needs: the high-water mark is reset before them.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux)
    steady = _rss_kb("VmRSS")
    run(batches[1:])
    print(base, first, steady, _rss_kb("VmHWM"))


def peak_memory(
    workload: str, state: dict[str, np.ndarray], steps: int, threads: int
) -> dict[str, tuple[float, float, float]]:
    """Per peer: (MB the RSS high-water mark rose during all the steps, the same over the steps
    after the first, peak RSS MB)."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.npz")
        np.savez(path, **state)
        for peer in ("downslope", "torch"):
            env = dict(os.environ, DOWNSLOPE_BENCH_STATE=path)
            cmd = [sys.executable, __file__, "--child", "rss", "--peer", peer, "--workload", workload]
            cmd += ["--threads", str(threads)]
            done = subprocess.run(cmd + ["--steps", str(steps)], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"memory run of {peer} failed:\n{done.stderr}")
            base, first, steady, peak = (int(v) for v in done.stdout.split()[-4:])
            out[peer] = ((max(first, peak) - base) / 1024, (peak - steady) / 1024, max(first, peak) / 1024)
    return out


def profile_step(workload: str, state: dict[str, np.ndarray], batches: Batches, top: int = 18) -> None:
    """cProfile of downslope's steps: the functions with the most own time."""
    import cProfile
    import pstats

    run = downslope_peer(workload, state)
    run(batches[:2])
    prof = cProfile.Profile()
    prof.enable()
    run(batches)
    prof.disable()
    print(f"  profile of {len(batches)} downslope steps (own time, top {top}):")
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    for (file, line, name), (_, calls, tottime, cumtime, _) in rows:
        where = f"{os.path.basename(file)}:{line}({name})"
        print(
            f"    {tottime / len(batches) * 1e3:7.2f} ms/step own  {cumtime / len(batches) * 1e3:7.2f} cum  {calls:6d}  {where}"
        )


def main() -> None:
    def hook(parser: Any) -> None:
        parser.add_argument("--workload", choices=WORKLOADS + ("all",), default="all")
        parser.add_argument("--profile", action="store_true", help="also print a cProfile of downslope's step")
        parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
        parser.add_argument("--total-steps", type=int, default=250, help="training steps per peer (default 250)")
        parser.add_argument("--one-process", action="store_true", help="time both peers in this process")
        parser.add_argument(
            "--slices", action="store_true", help="turns of 10 steps after a pause each, instead of all the steps"
        )
        parser.add_argument("--child", choices=("rss", "time"), help=argparse_hidden())
        parser.add_argument("--peer", choices=("downslope", "torch"), help=argparse_hidden())
        parser.add_argument("--steps", type=int, default=10, help=argparse_hidden())
        parser.add_argument("--pieces", type=int, default=25, help=argparse_hidden())

    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)", hook)
    if args.child == "rss":
        rss_child(args.workload, args.peer, args.steps, args.threads)
        return
    if args.child == "time":
        time_child(args.workload, args.peer, args.steps, args.pieces, args.threads)
        return
    import platform

    pieces, steps = (2, 2) if smoke() else (2, 4) if args.quick else (25, max(25, args.total_steps))
    print(blas_report() + "; " + threads)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cores, {platform.machine()}); load average {os.getloadavg()[0]:.2f}")
    limit = 0.9 if args.threads == 1 else 1.0
    for workload in WORKLOADS if args.workload == "all" else (args.workload,):
        state = reference_state(workload)
        # The smoke run times the first workload in processes of their own (that code runs) and the
        # others in this process: each peer process costs a library import, about 3 s of CPU for torch.
        one_process = args.one_process or (smoke() and workload != WORKLOADS[0])
        batches = make_batches(workload, steps) if one_process or args.profile else []
        print(f"{workload}: ms per training step (batch {BATCH[workload]})")
        if one_process:  # torch is needed anyway: its initialisation is the reference weights
            peers = [Peer("downslope", downslope_peer(workload, state)), Peer("torch", torch_peer(workload, state))]
            results = time_peers(peers, batches, pieces)
        else:
            results = time_in_processes(workload, state, steps, pieces, args.threads, not args.slices)
        paired = results.pop("paired")
        for name, r in results.items():
            print(
                f"  {name:<10} {r['wall']:8.2f} ms wall  {r['cpu']:8.2f} ms CPU  {r['faults']:7.0f} page faults per step"
            )
        ratio = results["downslope"]["wall"] / results["torch"]["wall"]
        cpu_ratio = results["downslope"]["cpu"] / results["torch"]["cpu"]
        print(
            f"target: {workload} downslope/torch <= {limit:.2f} -> {ratio:.2f} wall, {cpu_ratio:.2f} CPU "
            f"({'met' if ratio <= limit else 'NOT met'}); turn by turn {paired['median']:.2f}, middle half "
            f"{paired['low']:.2f}-{paired['high']:.2f}"
        )
        if workload.startswith("cnn") and not args.no_memory:
            mem = peak_memory(workload, state, 2 if smoke() else 3 if args.quick else 10, args.threads)
            (d_rise, d_step, d_peak), (t_rise, t_step, t_peak) = mem["downslope"], mem["torch"]
            print(
                f"peak memory: {workload} RSS rise during the steps downslope {d_rise:.1f} MB vs torch {t_rise:.1f} MB "
                f"({'met' if d_rise <= t_rise else 'NOT met'}); during a step after the first {d_step:.1f} vs "
                f"{t_step:.1f} MB ({'met' if d_step <= t_step else 'NOT met'}); peak RSS {d_peak:.0f} vs {t_peak:.0f} MB"
            )
        if args.profile:
            profile_step(workload, state, batches[: 3 if args.quick else 30])
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def argparse_hidden() -> Any:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
