"""downslope on a CUDA GPU (CuPy) against PyTorch eager on the same GPU; run it where there is one.

1. Runs the GPU tests (``pytest -m gpu``).
2. Times four workloads, each peer on the same synthetic data, initial weights and batch order
   (data placed on the GPU once):
     - MLP 784-2048-2048-10, batch 1024, 200k samples: s/epoch
     - MLP 784-256-128-10, batch 128, 50k samples: s/epoch
     - MLP 64-64-10, batch 32: us/step (kernel-launch bound)
     - CNN 1x28x28 conv32-pool-conv64-pool-fc128-fc10, batch 256, 60k samples: s/epoch
   Peers: downslope on CuPy, PyTorch eager on CUDA (when installed with CUDA) and, for the MLPs, a
   hand-written CuPy step (forward, backward, Adam: the floor for a CuPy engine). An epoch is
   extrapolated from a timed run of consecutive steps (medians of a few repeats).
3. Prints, per workload, the largest relative difference (||gpu - cpu|| / ||cpu|| per parameter)
   between downslope's parameters after 10 steps on the GPU and after the same 10 steps on the CPU,
   and whether downslope's training step ran without a synchronisation (three steps under
   ``cupyx.allow_synchronize(False)``: the host never waited for the GPU inside a step).

Targets: the large MLP <= 1.3x PyTorch and <= 1.05x the hand-written CuPy step per epoch, the CNN
<= 2x PyTorch; parameters after 10 steps within 1e-4 relative of the CPU run.
Without CuPy or a GPU it says so and exits with status 0. Takes under 5 minutes on one GPU.
``--dry-run`` runs every step of the script on the CPU instead, on the strict stand-in for a GPU
(NumPy behind CuPy's wall, downslope/devices/strict.py) with small sizes, PyTorch on the CPU: it
checks the script itself (CI runs it), and its figures mean nothing.
Run: python benchmarks/gpu.py [--quick] [--skip-tests] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import init_mlp, smoke  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LR = 1e-3


class Workload:
    def __init__(self, name: str, kind: str, sizes: list[int], batch: int, samples: int, unit: str) -> None:
        self.name, self.kind, self.sizes, self.batch, self.samples, self.unit = name, kind, sizes, batch, samples, unit

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.samples // self.batch)

    def shrunk(self) -> Workload:
        """The same model with narrow hidden layers and a small batch (for --dry-run)."""
        sizes = [self.sizes[0], *[min(n, 32) for n in self.sizes[1:-1]], self.sizes[-1]] if self.sizes else []
        return Workload(self.name, self.kind, sizes, min(self.batch, 8), min(self.samples, 64), self.unit)


class Platform:
    """Where the peers run: a CUDA GPU through CuPy, or (--dry-run) the strict stand-in on the CPU."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        if dry_run:
            from downslope.devices import strict

            self.xp: Any = strict
            self.device = "strict"
            self.synchronize: Callable[[], None] = lambda: None
            self.no_synchronisation: Callable[[], Any] = lambda: strict.allow_synchronize(False)
            self.synchronised: type[Exception] = strict.DeviceSynchronized
            return
        import cupy
        import cupyx

        self.xp, self.device = cupy, "cuda"
        self.synchronize = cupy.cuda.Device().synchronize
        self.no_synchronisation = lambda: cupyx.allow_synchronize(False)
        self.synchronised = cupyx.DeviceSynchronized

    def name(self) -> str:
        if self.dry_run:
            return "strict stand-in on the CPU (--dry-run: checks the script; the figures mean nothing)"
        return str(self.xp.cuda.runtime.getDeviceProperties(0)["name"].decode())


WORKLOADS = [
    Workload("MLP 784-2048-2048-10 b1024", "mlp", [784, 2048, 2048, 10], 1024, 200_000, "s/epoch"),
    Workload("MLP 784-256-128-10 b128", "mlp", [784, 256, 128, 10], 128, 50_000, "s/epoch"),
    Workload("MLP 64-64-10 b32", "mlp", [64, 64, 10], 32, 32 * 200, "us/step"),
    Workload("CNN 28x28 conv32-conv64-fc128 b256", "cnn", [], 256, 60_000, "s/epoch"),
]


def data(w: Workload, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of synthetic inputs and labels (float32 / int64), the same for every peer."""
    n = steps * w.batch
    shape = (n, 1, 28, 28) if w.kind == "cnn" else (n, w.sizes[0])
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def downslope_model(w: Workload, rng: np.random.Generator) -> Any:
    """The workload's model in downslope on the CPU, initialised from ``rng`` (PyTorch's key names)."""
    import downslope as ds
    from downslope import nn

    if w.kind == "cnn":
        ds.manual_seed(int(rng.integers(2**31)))  # the layers' own initialisation, seeded from rng
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
        return model
    layers = init_mlp(w.sizes, rng)
    modules: list[Any] = []
    for i, (weight, bias) in enumerate(layers):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.array[...] = weight
        linear.bias.array[...] = bias
        modules += [linear] if i == len(layers) - 1 else [linear, nn.ReLU()]
    return nn.Sequential(*modules)


def torch_model(w: Workload, state: dict[str, np.ndarray]) -> Any:
    import torch

    if w.kind == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(64 * 7 * 7, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
        )
    else:
        mods: list[Any] = []
        for i, (a, b) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
            mods += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(w.sizes) - 2 else [])
        model = torch.nn.Sequential(*mods)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model


# ---------------------------------------------------------------------- peers: step functions over batch i
Step = Callable[[int], None]


def downslope_steps(model: Any, x: Any, y: Any, batch: int) -> Step:
    from downslope import nn, optim

    opt = optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step(i: int) -> None:
        sl = slice(i * batch, (i + 1) * batch)
        opt.zero_grad()
        loss_fn(model(x[sl]), y[sl]).backward()
        opt.step()

    return step


def torch_steps(model: Any, x: Any, y: Any, batch: int) -> Step:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i: int) -> None:
        sl = slice(i * batch, (i + 1) * batch)
        opt.zero_grad()
        loss_fn(model(x[sl]), y[sl]).backward()
        opt.step()

    return step


def cupy_mlp_steps(cp: Any, layers: list[tuple[np.ndarray, np.ndarray]], x: Any, y: Any, batch: int) -> Step:
    """A hand-written CuPy MLP step (``cp`` is cupy): ReLU layers, softmax cross-entropy, Adam (PyTorch's
    defaults)."""
    params = [cp.asarray(a) for wb in layers for a in wb]
    m = [cp.zeros_like(p) for p in params]
    v = [cp.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = [0]

    def step(i: int) -> None:
        sl = slice(i * batch, (i + 1) * batch)
        xb, yb = x[sl], y[sl]
        acts = [xb]
        h = xb
        n_layers = len(params) // 2
        for k in range(n_layers):
            h = h @ params[2 * k].T + params[2 * k + 1]
            if k < n_layers - 1:
                h = cp.maximum(h, 0)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        e = cp.exp(z)
        g = e / e.sum(axis=1, keepdims=True)
        g[cp.arange(len(yb)), yb] -= 1
        g /= len(yb)
        grads: list[Any] = [None] * len(params)
        for k in reversed(range(n_layers)):
            grads[2 * k] = g.T @ acts[k]
            grads[2 * k + 1] = g.sum(axis=0)
            if k:
                g = (g @ params[2 * k]) * (acts[k] > 0)
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, gr, mm, vv in zip(params, grads, m, v):
            mm *= b1
            mm += (1 - b1) * gr
            vv *= b2
            vv += (1 - b2) * gr * gr
            p -= (LR / c1) * mm / (cp.sqrt(vv / c2) + eps)

    return step


def seconds_per_step(step: Step, steps: int, sync: Callable[[], None], repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per step over ``steps`` consecutive batches."""
    for i in range(0 if smoke() else min(3, steps)):  # warm-up: kernels compiled, memory pools filled
        step(i)
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            step(i)
        sync()
        samples.append((time.perf_counter() - start) / steps)
    return statistics.median(samples)


def synchronisation_in(step: Step, platform: Platform) -> str:
    """'none' when three steps run under ``cupyx.allow_synchronize(False)``, else where CuPy reported one."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in CuPy, still there
        try:
            with platform.no_synchronisation():
                for i in range(3):
                    step(i)
        except platform.synchronised as exc:
            import traceback

            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/downslope/" in f.filename]
            return f"YES at {frames[-1].filename.split('/downslope/')[-1]}:{frames[-1].lineno}" if frames else "YES"
    return "none"


def relative_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)) for x, y in zip(a, b))


def run_tests() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"], cwd=ROOT
    )
    return done.returncode in (0, 5)  # 5: no test was selected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (a smoke run, not a measurement)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu first")
    parser.add_argument("--dry-run", action="store_true", help="run the script on the CPU's strict stand-in (a check)")
    args = parser.parse_args()

    import downslope as ds

    if not args.dry_run and not ds.cuda.is_available():
        print("no CUDA GPU here (CuPy is not installed or sees no device): nothing to measure.")
        print('On a machine with an NVIDIA GPU: pip install "downslope[cuda]" and run this script again.')
        return 0
    platform = Platform(args.dry_run)

    tests_ok = True if args.skip_tests or args.dry_run else run_tests()
    print(f"gpu tests: {'passed' if tests_ok else 'FAILED'}")
    try:
        import torch

        has_torch = args.dry_run or torch.cuda.is_available()
    except ImportError:
        has_torch = False
    print(f"device: {platform.name()}; PyTorch: {has_torch}")

    timed, repeats = (1, 1) if smoke() else (5, 1) if args.quick or args.dry_run else (30, 3)
    header = f"{'workload':36s} {'unit':8s} {'downslope':>10s} {'torch':>10s} {'cupy':>10s} {'ds/torch':>9s} {'ds/cupy':>8s} {'10-step rel diff vs CPU':>24s}  synchronises"
    print(header)
    failures = 0
    for w in WORKLOADS:
        try:
            measure(w.shrunk() if args.dry_run else w, platform, timed, repeats, has_torch)
        except Exception:  # one workload's failure must not hide the others' figures
            import traceback

            failures += 1
            print(f"{w.name:36s} FAILED:")
            traceback.print_exc(file=sys.stdout)
    print(
        "targets: large MLP ds/torch <= 1.3 and ds/cupy <= 1.05; CNN ds/torch <= 2; 10-step rel diff <= 1e-4; synchronises: none"
    )
    return 0 if tests_ok and not failures else 1


def measure(w: Workload, platform: Platform, timed: int, repeats: int, has_torch: bool) -> None:
    """One table row: the 10-step difference from the CPU, the synchronisation check and the timings."""
    import downslope as ds

    cp, device = platform.xp, platform.device

    steps = min(timed, w.steps_per_epoch)
    rng = np.random.default_rng(0)
    cpu_model = downslope_model(w, rng)
    state = {k: np.array(v) for k, v in cpu_model.state_dict().items()}
    x, y = data(w, max(steps, 10), np.random.default_rng(1))

    # parameters after 10 steps: the CPU run and the GPU run from the same weights and batches
    gpu_model = downslope_model(w, np.random.default_rng(0)).to(device)
    ref_step = downslope_steps(cpu_model, ds.tensor(x), ds.tensor(y), w.batch)
    gpu_x, gpu_y = ds.tensor(x, device=device), ds.tensor(y, device=device)
    gpu_step = downslope_steps(gpu_model, gpu_x, gpu_y, w.batch)
    for i in range(10):
        ref_step(i)
        gpu_step(i)
    diff = relative_difference(
        [p.detach().cpu().numpy() for p in gpu_model.parameters()], [p.detach().numpy() for p in cpu_model.parameters()]
    )
    synchronises = synchronisation_in(gpu_step, platform)

    results: dict[str, float] = {}
    fresh = downslope_model(w, np.random.default_rng(0)).to(device)
    results["downslope"] = seconds_per_step(
        downslope_steps(fresh, gpu_x, gpu_y, w.batch), steps, platform.synchronize, repeats
    )
    if has_torch:
        import torch

        on = "cpu" if platform.dry_run else "cuda"
        tx, ty = torch.from_numpy(x).to(on), torch.from_numpy(y).to(on)
        results["torch"] = seconds_per_step(
            torch_steps(torch_model(w, state).to(on), tx, ty, w.batch),
            steps,
            platform.synchronize if platform.dry_run else torch.cuda.synchronize,
            repeats,
        )
    if w.kind == "mlp":
        layers = init_mlp(w.sizes, np.random.default_rng(0))
        results["cupy"] = seconds_per_step(
            cupy_mlp_steps(cp, layers, cp.asarray(x), cp.asarray(y), w.batch), steps, platform.synchronize, repeats
        )
    scale = 1e6 if w.unit == "us/step" else w.steps_per_epoch
    cells = [f"{results[k] * scale:10.4g}" if k in results else f"{'-':>10s}" for k in ("downslope", "torch", "cupy")]
    ratios = [f"{results['downslope'] / results[k]:9.2f}" if k in results else f"{'-':>9s}" for k in ("torch", "cupy")]
    print(f"{w.name:36s} {w.unit:8s} {' '.join(cells)} {ratios[0]} {ratios[1]:>8s} {diff:24.2e}  {synchronises}")


if __name__ == "__main__":
    sys.exit(main())
