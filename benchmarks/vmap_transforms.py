"""vmap with function transforms against torch.func, one thread each: torch's recipes.

Cases (float32 CPU):
  per-sample grads: ``vmap(grad(loss), in_dims=(None, None, 0, 0))(params, buffers, x, y)`` with
    ``functional_call`` and cross-entropy, as torch's per-sample-gradients tutorial; an MLP
    784-128-128-10 at batch 64 and 128, and a small CNN (Conv2d(1,8,3)-ReLU-MaxPool2d(2)-
    Conv2d(8,16,3)-ReLU-MaxPool2d(2)-Flatten-Linear(400,10)) on 28x28 images at batch 32;
  per-sample grads of a text CNN (Embedding(50,16)-Conv1d(16,16,3)-ReLU-causal self-attention by
    ``scaled_dot_product_attention``-mean-Linear(16,10)) on 24 tokens at batch 32;
  ensemble: 10 MLPs 784-128-10 stacked by ``stack_module_state``, ``vmap(fmodel, in_dims=(0, 0,
    None))`` over one minibatch of 64; 8 small CNNs (Conv2d(1,8,3)-ReLU-MaxPool2d(2)-Conv2d(8,8,3)-
    ReLU-Flatten-Linear(200,10)) over 32 images 16x16;
  vmap(jacrev): the per-example Jacobian of an MLP 64-64-64 (tanh) at batch 64;
  vmap(hessian): the per-example Hessian of a scalar MLP 16-32-1 (tanh) at batch 64;
  hessian(vectorize=True): ``autograd.functional.hessian`` of a scalar MLP 64-64-1 (tanh).

Before timing, each case's results are compared with torch's (float32 noise: 1e-4 of the largest
value); then the peers take turns on slices of calls and each line is the median CPU time per call
and downslope's over torch's. ``--loop`` also times downslope's per-element loop (vmap's fallback
for a function with an op that has no batching rule; what vmap always ran before it had batching
rules) and, for hessian(vectorize=True), one backward pass per row (what it ran before), for the
before/after comparison.
Run: python benchmarks/vmap_transforms.py [--quick] [--threads N] [--loop] [--only TEXT]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio  # noqa: E402

TARGET = 2.0


def mlp(lib: Any, sizes: list[int], act: str = "ReLU") -> Any:
    nn = lib.nn
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(getattr(nn, act)())
    return nn.Sequential(*layers)


def cnn(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )  # fmt: skip


def text_cnn(lib: Any) -> Any:
    """Embedding(50, 16) -> Conv1d(16, 16, 3, padding=1) -> ReLU -> causal self-attention (one head,
    ``scaled_dot_product_attention``) -> mean over the sequence -> Linear(16, 10), on (N, L) token ids."""
    nn = lib.nn
    F = nn.functional

    class TextCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.conv = nn.Conv1d(16, 16, 3, padding=1)
            self.qkv = nn.Linear(16, 48)
            self.out = nn.Linear(16, 10)

        def forward(self, ids: Any) -> Any:
            h = F.relu(self.conv(self.emb(ids).transpose(1, 2))).transpose(1, 2)  # (N, L, 16)
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            return self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).mean(1))

    return TextCNN()


def small_cnn(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(200, 10)
    )  # fmt: skip


def copy_weights(src: Any, dst: Any, lib: Any) -> None:
    """dst (a downslope module) takes src's (torch's) values."""
    for (_, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
        q.array[...] = p.detach().numpy()


def per_sample_case(make: Callable[[Any], Any], x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], Any]]:
    import torch

    import downslope as ds

    calls = {}
    models = {}
    for name, lib in (("torch", torch), ("downslope", ds)):
        lib.manual_seed(0)
        models[name] = make(lib)
    copy_weights(models["torch"], models["downslope"], ds)
    for name, lib, func in (("torch", torch, torch.func), ("downslope", ds, ds.func)):
        model = models[name]
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}
        F = lib.nn.functional

        def loss(p: Any, b: Any, sample: Any, target: Any, model: Any = model, func: Any = func, F: Any = F) -> Any:
            out = func.functional_call(model, (p, b), (sample.unsqueeze(0),))
            return F.cross_entropy(out, target.unsqueeze(0))

        per_sample = func.vmap(func.grad(loss), in_dims=(None, None, 0, 0))
        xs, ys = lib.from_numpy(x), lib.from_numpy(y)
        calls[name] = lambda f=per_sample, p=params, b=buffers, xs=xs, ys=ys: f(p, b, xs, ys)
    return calls


def ensemble_case(
    x: np.ndarray, make: Callable[[Any], Any] | None = None, count: int = 10
) -> dict[str, Callable[[], Any]]:
    import copy

    import torch

    import downslope as ds

    make = make or (lambda lib: mlp(lib, [784, 128, 10]))
    calls = {}
    torch.manual_seed(0)
    theirs = [make(torch) for _ in range(count)]
    ours = [make(ds) for _ in range(count)]
    for t, d in zip(theirs, ours):
        copy_weights(t, d, ds)
    for name, lib, func, models in (("torch", torch, torch.func, theirs), ("downslope", ds, ds.func, ours)):
        params, buffers = func.stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta") if name == "torch" else copy.deepcopy(models[0])

        def fmodel(p: Any, b: Any, xb: Any, base: Any = base, func: Any = func) -> Any:
            return func.functional_call(base, (p, b), (xb,))

        ensemble = func.vmap(fmodel, in_dims=(0, 0, None))
        xs = lib.from_numpy(x)
        calls[name] = lambda f=ensemble, p=params, b=buffers, xs=xs: f(p, b, xs)
    return calls


def jacobian_case(sizes: list[int], x: np.ndarray, kind: str, vectorize: bool = True) -> dict[str, Callable[[], Any]]:
    import torch

    import downslope as ds

    calls = {}
    torch.manual_seed(0)
    theirs = mlp(torch, sizes, "Tanh")
    ours = mlp(ds, sizes, "Tanh")
    copy_weights(theirs, ours, ds)
    for name, lib, model in (("torch", torch, theirs), ("downslope", ds, ours)):
        func = lib.func
        xs = lib.from_numpy(x)
        if kind == "jacrev":
            f = func.vmap(func.jacrev(model))
            calls[name] = lambda f=f, xs=xs: f(xs)
        elif kind == "vmap_hessian":
            f = func.vmap(func.hessian(lambda v, model=model: model(v).sum()))
            calls[name] = lambda f=f, xs=xs: f(xs)
        else:  # autograd.functional.hessian(vectorize=True) of one input

            def scalar(v: Any, model: Any = model) -> Any:
                return model(v).sum()

            calls[name] = lambda lib=lib, scalar=scalar, xs=xs: lib.autograd.functional.hessian(
                scalar, xs, vectorize=vectorize
            )
    return calls


def flat(result: Any) -> np.ndarray:
    """One float64 vector of a result's values (dicts in key order)."""
    if isinstance(result, dict):
        return np.concatenate([flat(result[k]) for k in sorted(result)])
    if isinstance(result, (tuple, list)):
        return np.concatenate([flat(r) for r in result])
    return np.asarray(result.detach().numpy(), np.float64).ravel()


def main() -> None:
    def flags(p: Any) -> None:
        p.add_argument("--loop", action="store_true")
        p.add_argument("--only", default=None, help="run only the cases whose title contains this text")

    args, threads = parse_args(__doc__, "fewer, shorter slices (a smoke run)", flags)
    import downslope.func as dsf

    print_header(threads)
    rng = np.random.default_rng(0)
    slices, budget = (3, 0.05) if args.quick else (7, 0.4)
    cases: list[tuple[str, Callable[[], dict[str, Callable[[], Any]]]]] = []
    for batch in (64, 128):
        x = rng.standard_normal((batch, 784)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        cases.append(
            (
                f"per-sample grads MLP b{batch}",
                lambda x=x, y=y: per_sample_case(lambda lib: mlp(lib, [784, 128, 128, 10]), x, y),
            )
        )
    images = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    cases.append(("per-sample grads CNN b32", lambda: per_sample_case(cnn, images, labels)))
    tokens = rng.integers(0, 50, (32, 24))
    cases.append(("per-sample grads emb+conv1d+attn b32", lambda: per_sample_case(text_cnn, tokens, labels)))
    small = rng.standard_normal((32, 1, 16, 16)).astype(np.float32)
    cases.append(("ensemble 8 CNNs b32", lambda: ensemble_case(small, small_cnn, 8)))
    minibatch = rng.standard_normal((64, 784)).astype(np.float32)
    cases.append(("ensemble 10 MLPs b64", lambda: ensemble_case(minibatch)))
    x64 = rng.standard_normal((64, 64)).astype(np.float32)
    cases.append(("vmap(jacrev) MLP 64-64 b64", lambda: jacobian_case([64, 64, 64], x64, "jacrev")))
    x16 = rng.standard_normal((64, 16)).astype(np.float32)
    cases.append(("vmap(hessian) MLP 16-32-1 b64", lambda: jacobian_case([16, 32, 1], x16, "vmap_hessian")))
    v64 = rng.standard_normal(64).astype(np.float32)
    cases.append(("hessian(vectorize) MLP 64-64-1", lambda: jacobian_case([64, 64, 1], v64, "hessian")))
    # what hessian(vectorize=True) ran before it walked the graph once: one backward pass per row
    unvectorized = {"hessian(vectorize) MLP 64-64-1": lambda: jacobian_case([64, 64, 1], v64, "hessian", False)}
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    elif args.quick:
        cases = cases[::2]
    worst = 0.0
    for title, make in cases:
        peers = make()
        check_close(title, flat(peers["downslope"]()), flat(peers["torch"]()), tol=1e-4)
        if args.loop and title in unvectorized:
            peers["downslope loop"] = unvectorized[title]()["downslope"]
        elif args.loop:
            loop = peers["downslope"]

            def looped(loop: Any = loop) -> Any:
                dsf.BATCHING = False
                try:
                    return loop()
                finally:
                    dsf.BATCHING = True

            peers["downslope loop"] = looped
        start = time.process_time()
        for call in peers.values():
            call()
        steps = max(1, int(budget / max(time.process_time() - start, 1e-6)))
        times = interleaved(peers, slices, steps)
        worst = max(worst, show_ratio(title, times, 34, unit="ms"))
        if args.loop:
            print(
                f"{'':34} downslope loop {times['downslope loop'] * 1e3:8.3f} ms  ratio {times['downslope loop'] / times['torch']:5.2f}"
            )
    print(
        f"target: downslope/torch <= {TARGET:.2f} in every case -> worst {worst:.2f} ({'met' if worst <= TARGET else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
