"""Jacobians and Hessians of small scientific functions against PyTorch, one thread each.

Functions of 100 inputs (float32 CPU, the same weights in both libraries):
  mlp      x (100) -> tanh(W1 x + b1) (64) -> sin(W2 h + b2) (32) -> exp(0.1 (W3 h + b3)) (10)
  squares  (x.reshape(10, 10) ** 2).sum(1)                                   (10 outputs)
  softmax  softmax(x.reshape(10, 10), dim=-1)                                (100 outputs)
  pinn     Linear(2, 32)-Tanh-Linear(32, 32)-Tanh-Linear(32, 1) on x.reshape(50, 2) (50 outputs)
  norm     linalg.vector_norm(x.reshape(10, 10) - c, dim=1)                    (10 outputs)
Transforms: ``autograd.functional.jacobian(f, x, vectorize=True)``, ``func.jacfwd(f)(x)``,
``func.hessian(s)(x)`` and ``autograd.functional.hessian(s, x, vectorize=True)`` of the scalar
``s = f(x).sum()``. Then batched ``linalg.det`` / ``linalg.inv`` over 1000 matrices 3x3 (forward, and
forward + backward).

Each result is compared with torch's before timing; then the peers take turns on slices of calls
(the order rotating, in one process) and each line is the median CPU time per call and downslope's
over torch's.
Run: python benchmarks/jacobians_small.py [--quick] [--threads N] [--only TEXT]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402

TARGET = 3.0
RNG = np.random.default_rng(0)
X100 = RNG.normal(size=100).astype(np.float32)


def _weights(sizes: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for fan_out, fan_in in sizes:
        bound = 1.0 / np.sqrt(fan_in)
        out.append(
            (
                RNG.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                RNG.uniform(-bound, bound, fan_out).astype(np.float32),
            )
        )
    return out


MLP_W = _weights([(64, 100), (32, 64), (10, 32)])
PINN_W = _weights([(32, 2), (32, 32), (1, 32)])
NORM_C = RNG.normal(size=(10, 10)).astype(np.float32)
MATS = (RNG.normal(size=(1000, 3, 3)) + 3 * np.eye(3)).astype(np.float32)


def _mlp(lib: Any) -> Callable[[Any], Any]:
    (w1, b1), (w2, b2), (w3, b3) = [(lib.from_numpy(w.copy()), lib.from_numpy(b.copy())) for w, b in MLP_W]

    def f(x: Any) -> Any:
        h = lib.tanh(w1 @ x + b1)
        h = lib.sin(w2 @ h + b2)
        return lib.exp(0.1 * (w3 @ h + b3))

    return f


def _squares(lib: Any) -> Callable[[Any], Any]:
    return lambda x: (x.reshape(10, 10) ** 2).sum(1)


def _softmax(lib: Any) -> Callable[[Any], Any]:
    return lambda x: lib.nn.functional.softmax(x.reshape(10, 10), dim=-1)


def _pinn(lib: Any) -> Callable[[Any], Any]:
    nn = lib.nn
    layers = [nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)]
    for layer, (w, b) in zip(layers[::2], PINN_W):
        layer.weight.data.copy_(lib.from_numpy(w.copy()))
        layer.bias.data.copy_(lib.from_numpy(b.copy()))
    model = nn.Sequential(*layers)
    return lambda x: model(x.reshape(50, 2)).reshape(50)


def _norm(lib: Any) -> Callable[[Any], Any]:
    c = lib.from_numpy(NORM_C.copy())
    return lambda x: lib.linalg.vector_norm(x.reshape(10, 10) - c, dim=1)


FUNCTIONS: dict[str, Callable[[Any], Callable[[Any], Any]]] = {
    "mlp": _mlp,
    "squares": _squares,
    "softmax": _softmax,
    "pinn": _pinn,
    "norm": _norm,
}


def _transform(lib: Any, kind: str, f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    import torch

    functional = torch.autograd.functional if lib is torch else lib.autograd.functional

    def scalar(x: Any) -> Any:
        return f(x).sum()

    if kind == "jacobian(vectorize)":
        return lambda x: functional.jacobian(f, x, vectorize=True)
    if kind == "jacfwd":
        return lib.func.jacfwd(f)
    if kind == "func.hessian":
        return lib.func.hessian(scalar)
    if kind == "hessian(vectorize)":
        return lambda x: functional.hessian(scalar, x, vectorize=True)
    raise SystemExit(f"unknown transform {kind!r}")


TRANSFORMS = ("jacobian(vectorize)", "jacfwd", "func.hessian", "hessian(vectorize)")


def _linalg_case(op: str, backward: bool) -> Callable[[Any], Callable[[], Any]]:
    def make(lib: Any) -> Callable[[], Any]:
        fn = getattr(lib.linalg, op)
        if not backward:
            a = lib.from_numpy(MATS.copy())
            return lambda: fn(a)

        def step() -> Any:
            a = lib.from_numpy(MATS.copy()).requires_grad_(True)
            fn(a).sum().backward()
            return a.grad

        return step

    return make


def _cases() -> dict[str, Callable[[Any], Callable[[], Any]]]:
    cases: dict[str, Callable[[Any], Callable[[], Any]]] = {}
    for fname, build in FUNCTIONS.items():
        for kind in TRANSFORMS:

            def make(lib: Any, build: Any = build, kind: str = kind) -> Callable[[], Any]:
                g = _transform(lib, kind, build(lib))
                x = lib.from_numpy(X100.copy())
                return lambda: g(x)

            cases[f"{fname} {kind}"] = make
    for op in ("det", "inv"):
        cases[f"{op} 1000x3x3"] = _linalg_case(op, False)
        cases[f"{op} 1000x3x3 +backward"] = _linalg_case(op, True)
    return cases


def bench(name: str, make: Callable[[Any], Callable[[], Any]], slices: int, budget_us: float) -> float:
    """downslope's time over torch's for one case (after checking the values)."""
    import torch

    import downslope as ds

    peers = {"torch": make(torch), "downslope": make(ds)}
    ours, theirs = peers["downslope"]().detach().numpy(), peers["torch"]().detach().numpy()
    check_close(name, np.asarray(ours), theirs, tol=1e-4)
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(name, interleaved(peers, slices, steps), 34)


def main() -> None:
    cases = _cases()

    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="", help="run only the cases whose name contains this text")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (7, 100_000.0)
    ratios: dict[str, float] = {}
    for name, make in cases.items():
        if args.only in name:
            ratios[name] = bench(name, make, slices, budget)
    jac = [r for n, r in ratios.items() if "jacobian" in n or "jacfwd" in n]
    if jac:
        worst = max(jac)
        verdict = "met" if worst <= TARGET else "NOT met"
        print(f"target: jacobian(vectorize)/jacfwd <= {TARGET:.1f}x torch -> worst {worst:.2f} ({verdict})")
    if ratios:
        print(f"geometric mean ratio {statistics.geometric_mean(ratios.values()):.2f}")


if __name__ == "__main__":
    main()
