"""Shared helpers for the benchmark scripts: timing medians, the BLAS report, and the same MLP
training step written for each peer (downslope, PyTorch, scikit-learn, hand-written NumPy)."""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

SMOKE_ENV = "DOWNSLOPE_BENCH_SMOKE"


def smoke() -> bool:
    """Whether this run is the test suite's smoke run (``DOWNSLOPE_BENCH_SMOKE=1``): every case runs
    once, at the smallest size that takes the same code paths, with no warm-up and one repeat, so
    the tests prove each script runs and prints its lines in seconds. Its numbers mean nothing."""
    return os.environ.get(SMOKE_ENV, "").strip() not in ("", "0")


def median_time(fn: Callable[[], object], repeats: int, inner: int) -> float:
    """Median over ``repeats`` of the mean seconds per call over ``inner`` calls (after one warm-up).

    In smoke mode: one call, timed, no warm-up."""
    if smoke():
        repeats, inner = 1, 1
    else:
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def blas_report() -> str:
    """Which BLAS library and kernel NumPy uses here (threadpoolctl), in one line."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: unknown (pip install threadpoolctl to report it)"
    parts = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            parts.append(
                f"{info.get('internal_api')} {info.get('version')} kernel={info.get('architecture')} "
                f"threads={info.get('num_threads')} ({info.get('prefix')})"
            )
    from downslope import gemm

    return "BLAS: " + ("; ".join(parts) if parts else "none found") + f"; float32 GEMM: {gemm.describe()}"


# ---------------------------------------------------------------------- training-step peers
# Every training benchmark runs the same network (Linear layers with ReLU between them, softmax
# cross-entropy, Adam) in each library from the same initial weights and on the same batches.
# A peer is a function that runs a list of (x, y) batches, one update each.

Batches = list[tuple[np.ndarray, np.ndarray]]


class Peer:
    """A named contender: ``run(batches)`` performs one training step per batch."""

    def __init__(self, name: str, run: Callable[[Batches], object]) -> None:
        self.name = name
        self.run = run


def add_peer(peers: list[Peer], name: str, make: Callable[[], Callable[[Batches], object]]) -> None:
    """Append the peer that ``make()`` builds, or say it is skipped when its library is not installed."""
    try:
        peers.append(Peer(name, make()))
    except ImportError:
        print(f"{name}: not installed, skipped")


def print_target(results: dict[str, float], peer: str, limit: float) -> None:
    """The line that says whether downslope's time / ``peer``'s time is within issue 7's ``limit``."""
    if peer in results:
        ratio = results["downslope"] / results[peer]
        verdict = "met" if ratio <= limit else "NOT met"
        print(f"target: downslope/{peer.split()[0]} <= {limit:.2f} -> {ratio:.2f} ({verdict})")


def parse_args(doc: str | None, quick_help: str, parser_hook: Callable[[Any], None] | None = None) -> tuple[Any, str]:
    """The flags every benchmark takes (--quick, --threads); sets the threads; returns (args, threads line)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for every peer (default 1)")
    if parser_hook is not None:
        parser_hook(parser)
    args = parser.parse_args()
    if getattr(args, "child", None):  # a one-peer child process sets up its own library only
        return args, ""
    return args, set_threads(args.threads)


def set_threads(n: int) -> str:
    """Give NumPy's BLAS and torch the same number of threads; return what was set, in words."""
    try:  # torch (and scikit-learn, via SciPy) load BLAS libraries of their own: load them first
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    # Not in smoke mode: importing scikit-learn is about a third of a smoke run's start-up, and the
    # tests' OMP_NUM_THREADS=1 limits its BLAS anyway (scripts that use scikit-learn import it themselves).
    try:
        if not smoke():
            import sklearn.neural_network  # noqa: F401
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    from downslope import gemm  # oneDNN's GEMM (the onednn extra) runs on OpenMP threads of its own

    gemm.set_num_threads(n)
    return f"{n} thread(s) for NumPy's BLAS, oneDNN's GEMM and torch"


def init_mlp(sizes: list[int], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (out, in), bias (out,)) per layer, float32, PyTorch's default Linear initialisation."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


def time_per_step(peers: list[Peer], batches: Batches, pieces: int) -> dict[str, float]:
    """Median seconds per step of each peer, the peers taking turns.

    ``batches`` is cut into ``pieces`` consecutive slices; each slice is run by every peer in turn
    (after one warm-up slice each), so a burst of load from other jobs on a shared machine hits
    all peers alike, and the median over slices discards the bursts. Every peer still trains on
    the same batches in the same order. In smoke mode: one slice of one batch, no warm-up.
    """
    size = max(1, len(batches) // pieces)
    slices = [batches[i : i + size] for i in range(0, len(batches) - size + 1, size)]
    if smoke():
        slices = [batches[:1]]
    else:
        for peer in peers:
            peer.run(slices[0])
    samples: dict[str, list[float]] = {peer.name: [] for peer in peers}
    for piece in slices:
        for peer in peers:
            start = time.perf_counter()
            peer.run(piece)
            samples[peer.name].append((time.perf_counter() - start) / len(piece))
    return {name: statistics.median(times) for name, times in samples.items()}


def print_table(results: dict[str, float], unit: str, scale: float, reference: str) -> None:
    """One line per peer: time per step and the reference peer's time divided by it."""
    ref = results[reference]
    width = max(len(name) for name in results)
    for name, t in results.items():
        print(f"  {name:<{width}}  {t * scale:10.1f} {unit}   {reference}/{name} = {ref / t:5.2f}")


def downslope_mlp(layers: list[tuple[np.ndarray, np.ndarray]], lr: float) -> Callable[[Batches], object]:
    import downslope as ds
    from downslope import nn, optim

    modules: list[nn.Module] = []
    for i, (w, b) in enumerate(layers):
        linear = nn.Linear(w.shape[1], w.shape[0])
        linear.weight.array[...] = w
        linear.bias.array[...] = b
        modules += [linear] if i == len(layers) - 1 else [linear, nn.ReLU()]
    model = nn.Sequential(*modules)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=lr)

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(ds.from_numpy(x)), ds.from_numpy(y))
            loss.backward()
            opt.step()

    return run


def torch_mlp(layers: list[tuple[np.ndarray, np.ndarray]], lr: float) -> Callable[[Batches], object]:
    import torch

    modules: list[torch.nn.Module] = []
    for i, (w, b) in enumerate(layers):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear] if i == len(layers) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*modules)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def run(batches: Batches) -> None:
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()

    return run


def sklearn_mlp(layers: list[tuple[np.ndarray, np.ndarray]], lr: float, classes: int) -> Callable[[Batches], object]:
    """scikit-learn's MLPClassifier (solver adam, no L2) trained by ``partial_fit`` over the batches,
    concatenated into one call with ``batch_size`` equal to ours and no shuffling, so that its own
    mini-batch loop (not its per-call input checks) is what gets timed."""
    from sklearn.neural_network import MLPClassifier

    model: MLPClassifier | None = None
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def run(batches: Batches) -> None:
        nonlocal model
        key = id(batches)
        if key not in cache:
            cache[key] = (np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]))
        x, y = cache[key]
        if model is None:
            model = MLPClassifier(
                hidden_layer_sizes=tuple(w.shape[0] for w, _ in layers[:-1]),
                solver="adam",
                learning_rate_init=lr,
                alpha=0.0,
                batch_size=len(batches[0][0]),
                shuffle=False,
            )
            with warnings.catch_warnings():  # one sample to build the layers: batch_size gets clipped
                warnings.simplefilter("ignore")
                model.partial_fit(x[:1], y[:1], classes=np.arange(classes))
            model.coefs_ = [np.ascontiguousarray(w.T) for w, _ in layers]
            model.intercepts_ = [b.copy() for _, b in layers]
        model.partial_fit(x, y)

    return run


def numpy_mlp(layers: list[tuple[np.ndarray, np.ndarray]], lr: float) -> Callable[[Batches], object]:
    """A hand-written NumPy forward/backward/Adam loop: the floor for any NumPy engine.

    Parameters, gradients and Adam's moments live in flat float32 buffers (each weight a view), so
    the update is a handful of vectorised calls, and the GEMMs write straight into the gradient views.
    """
    shapes = [s for w, b in layers for s in (w.shape, b.shape)]
    sizes = [int(np.prod(s)) for s in shapes]
    flat_p = np.concatenate([a.ravel() for w, b in layers for a in (w, b)]).astype(np.float32)
    flat_g, m, v = np.zeros_like(flat_p), np.zeros_like(flat_p), np.zeros_like(flat_p)
    tmp = np.zeros_like(flat_p)
    offsets = np.cumsum([0] + sizes)
    params = [flat_p[o : o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes)]
    grads = [flat_g[o : o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes)]
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0

    def step(x: np.ndarray, y: np.ndarray) -> None:
        nonlocal t, flat_p, m, v, tmp
        acts = [x]
        h = x
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = h @ params[2 * i].T
            h += params[2 * i + 1]
            if i < n_layers - 1:
                np.maximum(h, 0, out=h)
                acts.append(h)
        # softmax cross-entropy, mean over the batch
        h -= h.max(axis=1, keepdims=True)
        np.exp(h, out=h)
        h /= h.sum(axis=1, keepdims=True)
        h[np.arange(len(y)), y] -= 1
        h *= 1.0 / len(y)
        g = h
        for i in range(n_layers - 1, -1, -1):
            np.matmul(g.T, acts[i], out=grads[2 * i])
            np.sum(g, axis=0, out=grads[2 * i + 1])
            if i:
                g = g @ params[2 * i]
                g *= acts[i] > 0
        t += 1
        m *= b1
        m += (1 - b1) * flat_g
        v *= b2
        np.multiply(flat_g, flat_g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        step_size = lr / (1 - b1**t)
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / np.sqrt(1 - b2**t)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        flat_p -= tmp

    def run(batches: Batches) -> None:
        for x, y in batches:
            step(x, y)

    return run


# ---------------------------------------------------------------------- layer-speed peers
# The layer benchmarks (activations, normalization, conv_speed, conv_transpose_speed) time one
# downslope callable against its PyTorch twin in one process, taking turns, on CPU time.


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def print_header(threads: str) -> None:
    """The CPU, BLAS and library-version lines every layer benchmark starts with."""
    import torch

    print(f"CPU: {cpu_model()}; {threads}")
    print(blas_report())
    print(f"torch {torch.__version__}; numpy {np.__version__}")


def interleaved(peers: dict[str, Callable[[], object]], slices: int, steps: int) -> dict[str, float]:
    """Median CPU seconds per call of each peer over ``slices`` slices of ``steps`` calls, the
    peers taking turns (the first peer of each slice rotating), after two warm-up calls each.

    In smoke mode: one call each, timed, no warm-up."""
    names = list(peers)
    if smoke():
        slices, steps = 1, 1
    else:
        for name in names:
            for _ in range(2):
                peers[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for s in range(slices):
        for name in names[s % len(names) :] + names[: s % len(names)]:
            start = time.process_time()
            for _ in range(steps):
                peers[name]()
            samples[name].append((time.process_time() - start) / steps)
    return {name: statistics.median(t) for name, t in samples.items()}


def steps_for(fns: list[Callable[[], object]], budget_us: float) -> int:
    """How many calls of each of ``fns`` (run once each here) fit in ``budget_us`` of CPU time (1 in
    smoke mode, without running them)."""
    if smoke():
        return 1
    start = time.process_time()
    for fn in fns:
        fn()
    return max(1, int(budget_us * 1e-6 / max(time.process_time() - start, 1e-6)))


def show_ratio(title: str, times: dict[str, float], width: int, unit: str = "us") -> float:
    """Print torch's and downslope's time per call (``unit`` "us" or "ms") and their ratio; return it."""
    scale, digits = (1e6, 1) if unit == "us" else (1e3, 3)
    ratio = times["downslope"] / times["torch"]
    print(
        f"{title:<{width}} torch {times['torch'] * scale:8.{digits}f} {unit}"
        f"  downslope {times['downslope'] * scale:8.{digits}f} {unit}  ratio {ratio:5.2f}",
        flush=True,
    )
    return ratio


def check_close(name: str, ours: np.ndarray, theirs: np.ndarray, tol: float = 1e-5, floor: float = 1.0) -> None:
    """Stop unless ``ours`` matches ``theirs`` within ``tol`` of the largest value (at least ``floor``)."""
    err = float(np.abs(ours - theirs).max() / max(floor, float(np.abs(theirs).max())))
    if not err <= tol:
        raise SystemExit(f"{name}: downslope differs from torch by {err:.2e} (relative to the largest value)")


def infer_peers(theirs: Any, ours: Any, xt: Any, xd: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(torch, downslope) calls of each layer on its input under no_grad."""
    import torch

    import downslope as ds

    def torch_infer() -> Any:
        with torch.no_grad():
            return theirs(xt)

    def ours_infer() -> Any:
        with ds.no_grad():
            return ours(xd)

    return torch_infer, ours_infer


def backward_peers(
    theirs: Any, ours: Any, xt: Any, xd: Any, gt: Any, gd: Any
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(torch, downslope) forward + backward of an output gradient (``gt``, ``gd``); each returns the output."""

    def torch_step() -> Any:
        xt.grad = None
        out = theirs(xt)
        out.backward(gt)
        return out

    def ours_step() -> Any:
        xd.grad = None
        out = ours(xd)
        out.backward(gd)
        return out

    return torch_step, ours_step


def square_sum_peers(theirs: Any, ours: Any, xt: Any, xd: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """(torch, downslope) forward + backward of the loss sum(out^2), input and parameter gradients."""

    def torch_step() -> None:
        theirs.zero_grad()
        xt.grad = None
        theirs(xt).square().sum().backward()

    def ours_step() -> None:
        ours.zero_grad()
        xd.grad = None
        ours(xd).square().sum().backward()

    return torch_step, ours_step
