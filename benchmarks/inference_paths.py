"""Paths that a speed survey against PyTorch found slow, side by side with PyTorch (one thread,
float32, CPU time per call, peers taking turns, medians): ``MaxPool1d(2)`` under no_grad and with its
gradient; 2-D fractional max pooling forward and backward; reflect, replicate and circular pads;
pooling windows that tile the input (1-D averages of 32, 8x8 windows, global max pooling);
a small Conv1d at batch 1 (per-call overhead); ResNet-18's 512 -> 512 3x3 layer on a 4x4 map at
batch 1 and the whole CIFAR ResNet-18 at batch 1 (eval, no_grad); ``embedding_bag(mode="max")``
forward and backward; a graph network's row gather ``x[idx]`` forward and backward; and a wide
``Conv2d(1024, 1024, (5, 1))`` on a few time steps, forward and backward. Every case first checks
that both libraries give the same values.

Targets: MaxPool1d(2) no_grad <= 3x, the 512-channel layer <= 1.3x, ResNet-18 batch 1 <= 1.1x,
embedding_bag max <= 2x, the row gather <= 1.3x, the wide Conv2d <= 1.3x PyTorch's time.

Run: python benchmarks/inference_paths.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio  # noqa: E402

WIDTH = 58


def _resnet18(lib: Any) -> Any:
    """The CIFAR ResNet-18 (3x3 stem, four stages of two basic blocks, 32x32 inputs)."""
    nn, F = lib.nn, lib.nn.functional

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.sc = nn.Sequential()
            if stride != 1 or cin != cout:
                self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            out = F.relu(self.b1(self.c1(x)))
            return F.relu(self.b2(self.c2(out)) + self.sc(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
            blocks, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                blocks += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, 10)

        def forward(self, x: Any) -> Any:
            x = self.layers(F.relu(self.b1(self.c1(x))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return ResNet()


def _copy_weights(theirs: Any, ours: Any) -> None:
    import downslope as ds

    ours.load_state_dict({k: ds.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})


def _case(title: str, peers: tuple[Callable[[], Any], Callable[[], Any]], quick: bool, unit: str = "ms") -> float:
    theirs, ours = peers
    slices, steps = (2, 1) if quick else (15, 5)
    return show_ratio(title, interleaved({"torch": theirs, "downslope": ours}, slices, steps), WIDTH, unit)


def main() -> None:
    import torch

    import downslope as ds

    args, threads = parse_args(__doc__, "a few calls only (CI smoke test, no timing claims)")
    print_header(threads)
    quick = args.quick
    rng = np.random.default_rng(0)
    results: dict[str, float] = {}

    # MaxPool1d(2) on (256, 32, 256)
    x = rng.standard_normal((64 if quick else 256, 32, 256)).astype(np.float32)
    xt, xd = torch.from_numpy(x.copy()), ds.tensor(x.copy())
    check_close(
        "max_pool1d",
        ds.nn.functional.max_pool1d(xd, 2).detach().numpy(),
        torch.nn.functional.max_pool1d(xt, 2).numpy(),
        0.0,
    )

    def pool_t() -> Any:
        with torch.no_grad():
            return torch.nn.functional.max_pool1d(xt, 2)

    def pool_d() -> Any:
        with ds.no_grad():
            return ds.nn.functional.max_pool1d(xd, 2)

    results["MaxPool1d(2) no_grad"] = _case(f"MaxPool1d(2) on {x.shape}, no_grad", (pool_t, pool_d), quick)
    xtg, xdg = xt.clone().requires_grad_(), ds.tensor(x.copy(), requires_grad=True)
    _case(
        f"MaxPool1d(2) on {x.shape}, forward + backward",
        (
            lambda: torch.nn.functional.max_pool1d(xtg, 2).sum().backward(),
            lambda: ds.nn.functional.max_pool1d(xdg, 2).sum().backward(),
        ),
        quick,
    )

    # 2-D fractional max pooling (its separable path) and the copying pads, forward + backward
    image = rng.standard_normal((2 if quick else 8, 32, 32, 32)).astype(np.float32)
    samples = rng.random((image.shape[0], 32, 2)).astype(np.float32)
    it, idd = torch.tensor(image, requires_grad=True), ds.tensor(image, requires_grad=True)
    st, sd = torch.from_numpy(samples), ds.tensor(samples)

    def fractional(lib: Any, v: Any, s: Any) -> Any:
        return lib.nn.functional.fractional_max_pool2d(v, 3, output_ratio=(0.5, 0.5), _random_samples=s)

    check_close(
        "fractional_max_pool2d",
        fractional(ds, idd, sd).detach().numpy(),
        fractional(torch, it, st).detach().numpy(),
        0.0,
    )
    _case(
        f"FractionalMaxPool2d(3, 0.5) on {image.shape}, fwd+bwd",
        (lambda: fractional(torch, it, st).sum().backward(), lambda: fractional(ds, idd, sd).sum().backward()),
        quick,
    )
    for mode in ("reflect", "replicate", "circular"):

        def padded(lib: Any, v: Any, m: str = mode) -> Any:
            return lib.nn.functional.pad(v, (3, 3, 3, 3), mode=m)

        check_close(f"pad {mode}", padded(ds, idd).detach().numpy(), padded(torch, it).detach().numpy(), 0.0)
        _case(
            f"pad(x, 3, mode={mode!r}) on {image.shape}, no_grad",
            (lambda m=mode: padded(torch, it.detach(), m), lambda m=mode: padded(ds, idd.detach(), m)),
            quick,
        )

    # windows that tile the input: 1-D averages of 32, 8x8 windows, global pooling
    for name, fd, ft, shape, kernel in (
        ("avg_pool1d(x, 32)", ds.nn.functional.avg_pool1d, torch.nn.functional.avg_pool1d, (256, 32, 256), 32),
        ("avg_pool2d(x, 8)", ds.nn.functional.avg_pool2d, torch.nn.functional.avg_pool2d, (64, 32, 32, 32), 8),
        ("max_pool2d(x, 8)", ds.nn.functional.max_pool2d, torch.nn.functional.max_pool2d, (64, 32, 32, 32), 8),
        (
            "max_pool2d(x, 32) (global)",
            ds.nn.functional.max_pool2d,
            torch.nn.functional.max_pool2d,
            (64, 32, 32, 32),
            32,
        ),
    ):
        if quick:
            shape = (4,) + shape[1:]
        image = rng.standard_normal(shape).astype(np.float32)
        it, idd = torch.from_numpy(image), ds.tensor(image)

        def tiled_t(f: Any = ft, v: Any = it, k: int = kernel) -> Any:
            with torch.no_grad():
                return f(v, k)

        def tiled_d(f: Any = fd, v: Any = idd, k: int = kernel) -> Any:
            with ds.no_grad():
                return f(v, k)

        check_close(name, tiled_d().numpy(), tiled_t().numpy(), 1e-6)
        _case(f"{name} on {shape}, no_grad", (tiled_t, tiled_d), quick)

    # a small Conv1d at batch 1 (streaming inference): per-call overhead
    small_t, small_d = torch.nn.Conv1d(8, 32, 7, padding=3).eval(), ds.nn.Conv1d(8, 32, 7, padding=3).eval()
    _copy_weights(small_t, small_d)
    frame = rng.standard_normal((1, 8, 256)).astype(np.float32)
    ft1, fd1 = torch.from_numpy(frame), ds.tensor(frame)

    def small_infer_t() -> Any:
        with torch.no_grad():
            return small_t(ft1)

    def small_infer_d() -> Any:
        with ds.no_grad():
            return small_d(fd1)

    check_close("small Conv1d", small_infer_d().numpy(), small_infer_t().numpy(), 1e-5)
    slices, steps = (2, 1) if quick else (15, 200)
    show_ratio(
        "Conv1d(8, 32, 7) on (1, 8, 256), eval no_grad",
        interleaved({"torch": small_infer_t, "downslope": small_infer_d}, slices, steps),
        WIDTH,
        "us",
    )

    # ResNet-18's last stage layer, and the whole network, at batch 1 (eval, no_grad)
    conv_t = torch.nn.Conv2d(512, 512, 3, padding=1, bias=False).eval()
    conv_d = ds.nn.Conv2d(512, 512, 3, padding=1, bias=False).eval()
    _copy_weights(conv_t, conv_d)
    for name, (theirs, ours), shape in (
        ("Conv2d(512, 512, 3) on (1, 512, 4, 4), eval no_grad", (conv_t, conv_d), (1, 512, 4, 4)),
        ("ResNet-18 (CIFAR) on (1, 3, 32, 32), eval no_grad", (_resnet18(torch).eval(), None), (1, 3, 32, 32)),
    ):
        if ours is None:
            ours = _resnet18(ds).eval()
            _copy_weights(theirs, ours)
        image = rng.standard_normal(shape).astype(np.float32)
        it, idd = torch.from_numpy(image), ds.tensor(image)

        def infer_t(m: Any = theirs, v: Any = it) -> Any:
            with torch.no_grad():
                return m(v)

        def infer_d(m: Any = ours, v: Any = idd) -> Any:
            with ds.no_grad():
                return m(v)

        check_close(name, infer_d().numpy(), infer_t().numpy(), 1e-4)
        results[name] = _case(name, (infer_t, infer_d), quick)

    # embedding_bag(mode="max"), forward and backward: a 50k x 32 table, 256 bags of 20 ids
    table = rng.standard_normal((50_000, 32)).astype(np.float32)
    ids = rng.integers(0, 50_000, (256, 20))
    wt, wd = torch.tensor(table, requires_grad=True), ds.tensor(table, requires_grad=True)
    it, idd = torch.tensor(ids), ds.tensor(ids)

    def bag_t() -> Any:
        wt.grad = None
        torch.nn.functional.embedding_bag(it, wt, mode="max").sum().backward()
        return wt.grad

    def bag_d() -> Any:
        wd.grad = None
        ds.nn.functional.embedding_bag(idd, wd, mode="max").sum().backward()
        return wd.grad

    check_close("embedding_bag max", bag_d().numpy(), bag_t().numpy(), 0.0)
    results["embedding_bag max"] = _case(
        "embedding_bag(mode='max') 50k x 32, 256 x 20, fwd + bwd", (bag_t, bag_d), quick
    )

    # a graph network's gather x[src], forward and backward: 5,000 nodes, 50,000 edges, 64 features
    nodes = rng.standard_normal((5000, 64)).astype(np.float32)
    src = rng.integers(0, 5000, 50_000)
    nt, nd = torch.tensor(nodes, requires_grad=True), ds.tensor(nodes, requires_grad=True)
    st, sd = torch.tensor(src), ds.tensor(src)

    def gather_t() -> Any:
        nt.grad = None
        nt[st].sum().backward()
        return nt.grad

    def gather_d() -> Any:
        nd.grad = None
        nd[sd].sum().backward()
        return nd.grad

    check_close("x[idx]", gather_d().numpy(), gather_t().numpy(), 0.0)
    results["x[idx]"] = _case("x[idx] 5000 x 64, 50,000 rows, fwd + bwd", (gather_t, gather_d), quick)

    # a wide Conv2d on a few steps (HiFi-GAN's period discriminator), forward and backward
    wide_t = torch.nn.Conv2d(1024, 1024, (5, 1), padding=(2, 0))
    wide_d = ds.nn.Conv2d(1024, 1024, (5, 1), padding=(2, 0))
    _copy_weights(wide_t, wide_d)
    signal = rng.standard_normal((1, 1024, 4, 2)).astype(np.float32)
    ct, cd = torch.from_numpy(signal), ds.tensor(signal)

    def wide_step_t() -> Any:
        wide_t.zero_grad()
        wide_t(ct).sum().backward()
        return wide_t.weight.grad

    def wide_step_d() -> Any:
        wide_d.zero_grad()
        wide_d(cd).sum().backward()
        return wide_d.weight.grad

    check_close("wide Conv2d", wide_step_d().numpy(), wide_step_t().numpy(), 1e-5)
    results["wide Conv2d"] = _case(
        "Conv2d(1024, 1024, (5, 1)) on (1, 1024, 4, 2), fwd + bwd", (wide_step_t, wide_step_d), quick
    )

    for name, limit in (
        ("MaxPool1d(2) no_grad", 3.0),
        ("Conv2d(512, 512, 3) on (1, 512, 4, 4), eval no_grad", 1.3),
        ("ResNet-18 (CIFAR) on (1, 3, 32, 32), eval no_grad", 1.1),
        ("embedding_bag max", 2.0),
        ("x[idx]", 1.3),
        ("wide Conv2d", 1.3),
    ):
        verdict = "met" if results[name] <= limit else "NOT met"
        print(f"target: {name}: downslope/torch <= {limit:.2f} -> {results[name]:.2f} ({verdict})")


if __name__ == "__main__":
    main()
