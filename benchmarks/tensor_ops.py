"""Tensor ops a differential fuzzer found slow against PyTorch, one thread each, float32: a
(512, 1024) tensor for the large cases and an (8, 16) one for the per-call overhead cases.

Large: ``clamp`` with tensor bounds, ``index_put_(..., accumulate=True)`` of 2000 rows (with
``index_add`` beside it), ``roll`` along one and two dims, ``tril``/``triu``, ``median(dim)``,
``kthvalue(dim)``, ``kron`` of two 32x32 matrices, ``lgamma`` (of normal values, half of them
negative, and of positive ones), the outer-product einsums ``i,j->ij`` (two rows) and ``bi,bj->bij``
(64 rows of 64), and the division family by a tensor (``div``, ``true_divide``, ``remainder``,
``floor_divide``; the divisor's magnitude in (0.5, 2), either sign). Small: ``std(1)``, ``var(1)``,
``mean(1)``, ``std()``/``var()`` of 10 elements, ``permute`` and ``transpose``. Both: in-place writes
through a transposed view of a tensor in the graph (``mul_`` of the whole view, ``+=`` into a row of
it), then backward. Loops: recorded writes into one tensor in the graph, whose cost per write must not
grow with the tensor or with the writes before: 200 row writes ``buf[i] = v`` into a 10000x64 buffer, a
from-scratch RNN writing its states into a preallocated (801, 4, 16) buffer (forward and backward), and
1600 accumulations ``dC[X[k]] += D2[k]`` into 27 rows (makemore's embedding gradient), then backward.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time per
call (``time.process_time``), the result read back as NumPy, and the ratio is downslope's over
PyTorch's (<= 1.0: downslope is as fast or faster). Every result is checked against PyTorch first.
Run: python benchmarks/tensor_ops.py [--quick] [--only large,small]
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

LARGE = (512, 1024)
SMALL = (8, 16)
QUICK_LARGE = (128, 256)


def _write_through_transpose(L: Any, a: dict[str, Any]) -> Any:
    """In-place writes through a transposed view of a tensor in the graph (the whole view, then one of
    its rows), then backward: the gradient of the leaf under them."""
    x = a["w"].requires_grad_()
    x.grad = None
    h = x * 2
    v = h.t()
    v.mul_(a["wt"])
    v[0] += 1.0
    (h * h).sum().backward()
    return x.grad


def _row_writes(L: Any, a: dict[str, Any]) -> Any:
    """200 recorded row writes into a 10000x64 buffer already in the graph."""
    v = a["row"].requires_grad_() * 2.0
    buf = L.zeros(10000, 64)
    for i in range(200):
        buf[i] = v
    return buf[:200].detach()


def _rnn_state_buffer(L: Any, a: dict[str, Any]) -> Any:
    """H[t] = tanh(X[t-1] @ W + H[t-1] @ U) into a preallocated buffer, then backward: U's gradient."""
    w, u = a["rnn_w"].requires_grad_(), a["rnn_u"].requires_grad_()
    w.grad = u.grad = None
    x = a["rnn_x"]
    h = L.zeros(x.shape[0] + 1, x.shape[1], u.shape[0])
    for t in range(1, x.shape[0] + 1):
        h[t] = L.tanh(x[t - 1] @ w + h[t - 1].clone() @ u)
    h.pow(2).mean().backward()
    return u.grad


def _row_accumulation(L: Any, a: dict[str, Any]) -> Any:
    """dC[X[k]] += D2[k] for 1600 rows into 27, then backward: D's gradient."""
    d = a["acc_d"].requires_grad_()
    d.grad = None
    d2, ix = d * 1.0, a["acc_i"]
    dc = L.zeros(27, d.shape[1])
    for k in range(len(ix)):
        dc[ix[k]] += d2[k]
    (dc * a["acc_w"]).sum().backward()
    return d.grad


LOOP_CASES: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]] = [
    ("200x buf[i] = v, buf 10000x64", _row_writes),
    ("RNN into a state buffer, T=800, fwd+bwd", _rnn_state_buffer),
    ("1600x dC[X[k]] += D2[k], then backward", _row_accumulation),
]


def large_cases(shape: tuple[int, int]) -> list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]:
    rows = shape[0]
    return [
        ("clamp(min=T, max=T)", lambda L, a: L.clamp(a["x"], min=a["lo"], max=a["hi"])),
        ("index_put_ accumulate", lambda L, a: L.zeros(*shape).index_put_((a["i"],), a["s"], accumulate=True)),
        ("index_add (same job)", lambda L, a: L.zeros(*shape).index_add(0, a["i"], a["s"])),
        ("roll(3, 1)", lambda L, a: L.roll(a["x"], 3, 1)),
        ("roll((3, 5), (0, 1))", lambda L, a: L.roll(a["x"], (3, 5), (0, 1))),
        ("tril", lambda L, a: L.tril(a["x"])),
        ("triu(1)", lambda L, a: L.triu(a["x"], 1)),
        ("median(dim=1)", lambda L, a: L.median(a["x"], dim=1)[0]),
        ("kthvalue(k, dim=1)", lambda L, a: L.kthvalue(a["x"], rows // 5, dim=1)[0]),
        ("kron 32x32", lambda L, a: L.kron(a["x"][:32, :32], a["x"][:32, :32])),
        ("lgamma", lambda L, a: L.lgamma(a["x"])),
        ("lgamma (x > 0)", lambda L, a: L.lgamma(a["p"])),
        ("einsum i,j->ij", lambda L, a: L.einsum("i,j->ij", a["x"][0], a["x"][1])),
        ("einsum bi,bj->bij 64x64", lambda L, a: L.einsum("bi,bj->bij", a["x"][:64, :64], a["x"][64:128, :64])),
        ("div(T)", lambda L, a: L.div(a["x"], a["d"])),
        ("true_divide(T)", lambda L, a: L.true_divide(a["x"], a["d"])),
        ("remainder(T)", lambda L, a: L.remainder(a["x"], a["d"])),
        ("floor_divide(T)", lambda L, a: L.floor_divide(a["x"], a["d"])),
        ("h.t().mul_(T); h.t()[0] += 1; backward", _write_through_transpose),
    ]


SMALL_CASES: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]] = [
    ("x.std(1)", lambda L, a: a["x"].std(1)),
    ("x.var(1)", lambda L, a: a["x"].var(1)),
    ("x.std(1, unbiased=False)", lambda L, a: a["x"].std(1, unbiased=False)),
    ("x.mean(1)", lambda L, a: a["x"].mean(1)),
    ("t.std() (10 elements)", lambda L, a: a["t"].std()),
    ("t.var() (10 elements)", lambda L, a: a["t"].var()),
    ("x.permute(1, 0)", lambda L, a: a["x"].permute(1, 0)),
    ("b.permute(0, 2, 1, 3)", lambda L, a: a["b"].permute(0, 2, 1, 3)),
    ("x.transpose(0, 1)", lambda L, a: a["x"].transpose(0, 1)),
    ("h.t().mul_(T); h.t()[0] += 1; backward", _write_through_transpose),
]


def arrays(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    lo = rng.standard_normal(shape[1]).astype(np.float32) - 1
    n = 2000 if shape == LARGE else 500
    return {
        "x": rng.standard_normal(shape).astype(np.float32),
        "lo": lo,
        "hi": lo + 2,
        "i": rng.integers(0, shape[0], n).astype(np.int64),
        "s": rng.standard_normal((n, shape[1])).astype(np.float32),
        "b": rng.standard_normal((4, 8, 16, 32)).astype(np.float32),
        "p": rng.uniform(0.1, 30.0, shape).astype(np.float32),
        "d": (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(np.float32),
        "t": rng.standard_normal(10).astype(np.float32),
        "w": rng.standard_normal(shape).astype(np.float32),  # a leaf that requires grad (one case's own)
        "wt": rng.standard_normal(shape[::-1]).astype(np.float32),
        # the loops' own (leaves that require grad, each case's own)
        "row": rng.standard_normal(64).astype(np.float32),
        "rnn_x": rng.standard_normal((800, 4, 8)).astype(np.float32),
        "rnn_w": (rng.standard_normal((8, 16)) * 0.3).astype(np.float32),
        "rnn_u": (rng.standard_normal((16, 16)) * 0.2).astype(np.float32),
        "acc_d": rng.standard_normal((1600, 10)).astype(np.float32),
        "acc_i": rng.integers(0, 27, 1600).astype(np.int64),
        "acc_w": rng.standard_normal((27, 10)).astype(np.float32),
    }


def run(
    cases: list[tuple[str, Callable[..., Any]]], shape: tuple[int, int], slices: int, budget_us: float
) -> list[float]:
    import torch

    import downslope as ds

    data = arrays(shape)
    theirs = {k: torch.from_numpy(v.copy()) for k, v in data.items()}
    ours = {k: ds.from_numpy(v.copy()) for k, v in data.items()}
    unit = "us" if shape == SMALL and cases is not LOOP_CASES else "ms"
    ratios = []
    for name, fn in cases:
        check_close(name, np.asarray(fn(ds, ours).numpy()), fn(torch, theirs).numpy(), 1e-5)

        def torch_call(fn: Callable[..., Any] = fn) -> Any:
            return fn(torch, theirs).numpy()

        def ours_call(fn: Callable[..., Any] = fn) -> Any:
            return np.asarray(fn(ds, ours).numpy())

        steps = steps_for([ours_call, torch_call], budget_us)
        times = interleaved({"torch": torch_call, "downslope": ours_call}, slices, steps)
        label = name if cases is LOOP_CASES else f"{name} {'x'.join(map(str, shape))}"
        ratios.append(show_ratio(label, times, 40, unit=unit))
    return ratios


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="large,small,loops", help="comma-separated groups: large, small, loops")

    args, threads = parse_args(__doc__, "a smaller large tensor, fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (7, 200_000.0)
    ratios: list[float] = []
    for group in args.only.split(","):
        if group == "large":
            shape = QUICK_LARGE if args.quick else LARGE
            ratios += run(large_cases(shape), shape, slices, budget)
        elif group == "small":
            ratios += run(SMALL_CASES, SMALL, slices, budget)
        elif group == "loops":
            ratios += run(LOOP_CASES, SMALL, slices, budget)
        else:
            raise SystemExit(f"unknown group {group!r}; pick from large, small, loops")
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
