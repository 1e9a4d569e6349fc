"""Forward + backward of a small MLP built from raw downslope ops, against PyTorch and NumPy.

Measures the autodiff core alone (no nn, no optimizer): per-op Python overhead shows at the small
size, GEMM efficiency at the large one. Every peer runs on the same number of threads (--threads,
1 by default, as the other benchmarks). Run: python benchmarks/core_mlp.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import blas_report, median_time, parse_args  # noqa: E402

import downslope as ds  # noqa: E402


def make_params(sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32))
        params.append(np.zeros(fan_out, np.float32))
    return params


def downslope_step(params: list[ds.Tensor], x: ds.Tensor, y: np.ndarray) -> None:
    h = x
    for i in range(0, len(params) - 2, 2):
        h = (h @ params[i] + params[i + 1]).relu()
    logits = h @ params[-2] + params[-1]
    loss = -logits.log_softmax(-1)[np.arange(len(y)), y].mean()
    for p in params:
        p.grad = None
    loss.backward()


def numpy_step(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Hand-written forward/backward: the floor for any NumPy engine."""
    acts, h = [x], x
    for i in range(0, len(params) - 2, 2):
        h = np.maximum(h @ params[i] + params[i + 1], 0)
        acts.append(h)
    logits = h @ params[-2] + params[-1]
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(1, keepdims=True)
    g = p
    g[np.arange(len(y)), y] -= 1
    g /= len(y)
    grads = []
    for i in range(len(params) - 2, -1, -2):
        a = acts[i // 2]
        grads += [a.T @ g, g.sum(0)]
        if i:
            g = (g @ params[i].T) * (a > 0)
    return grads


def torch_setup(params: list[np.ndarray], x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    import torch  # (its threads were set with every peer's, by parse_args)

    tp = [torch.tensor(p, requires_grad=True) for p in params]
    tx, ty = torch.tensor(x), torch.tensor(y)

    def step() -> None:
        h = tx
        for i in range(0, len(tp) - 2, 2):
            h = torch.relu(h @ tp[i] + tp[i + 1])
        loss = torch.nn.functional.cross_entropy(h @ tp[-2] + tp[-1], ty)
        for p in tp:
            p.grad = None
        loss.backward()

    return step


def run(sizes: list[int], batch: int, repeats: int, inner: int) -> None:
    rng = np.random.default_rng(0)
    params = make_params(sizes, rng)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    dparams = [ds.from_numpy(p.copy(), requires_grad=True) for p in params]
    dx = ds.from_numpy(x)
    t_ds = median_time(lambda: downslope_step(dparams, dx, y), repeats, inner)
    t_np = median_time(lambda: numpy_step(params, x, y), repeats, inner)
    line = f"MLP {'-'.join(map(str, sizes))} batch {batch}: downslope {t_ds * 1e6:9.1f} us | numpy {t_np * 1e6:9.1f} us"
    ratios = f"downslope/numpy {t_ds / t_np:5.2f}"
    try:
        t_torch = median_time(torch_setup(params, x, y), repeats, inner)
        line += f" | torch {t_torch * 1e6:9.1f} us"
        ratios += f"  downslope/torch {t_ds / t_torch:5.2f}"
    except ImportError:
        line += " | torch not installed"
    print(line)
    print("    " + ratios)


def main() -> None:
    args, threads = parse_args(__doc__, "a few iterations only (CI smoke test)")
    repeats, inner = (3, 2) if args.quick else (9, 30)
    print(blas_report())
    print(threads)
    print("forward + backward per step, median of", repeats, "runs")
    run([64, 64, 10], 32, repeats, inner)
    run([784, 256, 128, 10], 128, repeats, max(1, inner // 5))


if __name__ == "__main__":
    main()
