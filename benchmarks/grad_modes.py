"""What inference tensors cost: an MLP 64-64-64-10 training step (Linear, ReLU, cross-entropy, Adam, batch
32) before any tensor was made inside ``inference_mode()`` and after (record_op then checks each recorded
op's inputs for inference tensors), beside PyTorch's; and the model's forward under ``no_grad`` and under
``inference_mode`` (where each output is marked an inference tensor), beside PyTorch's. One thread, CPU
time per call, peers taking turns, medians.

Target: the training step after inference_mode within noise (<= 1.03x) of the step before it.

Run: python benchmarks/grad_modes.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import interleaved, parse_args, print_header, steps_for  # noqa: E402


def _models(lib: Any, layers: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    modules: list[Any] = []
    for i, (w, b) in enumerate(layers):
        linear = lib.nn.Linear(w.shape[1], w.shape[0])
        with lib.no_grad():
            linear.weight.copy_(lib.tensor(w))
            linear.bias.copy_(lib.tensor(b))
        modules += [linear] if i == len(layers) - 1 else [linear, lib.nn.ReLU()]
    return lib.nn.Sequential(*modules)


def main() -> None:
    args, threads = parse_args(__doc__, "a few steps of each peer (smoke run)")
    import torch

    import downslope as ds

    tensor_module = sys.modules["downslope.tensor"]
    print_header(threads)
    rng = np.random.default_rng(0)
    sizes = [64, 64, 64, 10]
    layers = [
        (rng.uniform(-0.1, 0.1, (o, i)).astype(np.float32), np.zeros(o, np.float32)) for i, o in zip(sizes, sizes[1:])
    ]
    x = rng.standard_normal((32, 64)).astype(np.float32)
    y = rng.integers(0, 10, 32)

    def trainer(lib: Any) -> tuple[Any, Callable[[], Any]]:
        model = _models(lib, layers)
        opt = lib.optim.Adam(model.parameters(), 1e-3)
        xs, ys = lib.tensor(x), lib.tensor(y)

        def step() -> Any:
            loss = lib.nn.functional.cross_entropy(model(xs), ys)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return model, step

    ds_model, ds_step = trainer(ds)
    _, torch_step = trainer(torch)
    made = tensor_module._inference_made  # (this process may have made inference tensors already)

    def step_before() -> None:
        tensor_module._inference_made = False
        ds_step()

    def step_after() -> None:
        tensor_module._inference_made = True
        ds_step()

    slices, budget = (3, 2e3) if args.quick else (15, 4e5)
    steps = steps_for([step_before, step_after, torch_step], budget)
    times = interleaved(
        {"before inference_mode": step_before, "after inference_mode": step_after, "torch": torch_step}, slices, steps
    )
    tensor_module._inference_made = made
    print(f"training step (MLP {'-'.join(map(str, sizes))}, batch 32, Adam), us per step:")
    for name, t in times.items():
        print(f"  {name:<22} {t * 1e6:8.1f}")
    ratio = times["after inference_mode"] / times["before inference_mode"]
    print(
        f"  after / before = {ratio:.3f} (target <= 1.03); downslope / torch = {times['before inference_mode'] / times['torch']:.2f}"
    )

    xd, xt = ds.tensor(x), torch.tensor(x)
    torch_model = _models(torch, layers)

    def ds_no_grad() -> None:
        with ds.no_grad():
            ds_model(xd)

    def ds_inference() -> None:
        with ds.inference_mode():
            ds_model(xd)

    def torch_inference() -> None:
        with torch.inference_mode():
            torch_model(xt)

    steps = steps_for([ds_no_grad, ds_inference, torch_inference], budget)
    times = interleaved(
        {"no_grad": ds_no_grad, "inference_mode": ds_inference, "torch inference_mode": torch_inference}, slices, steps
    )
    print("forward, us per call:")
    for name, t in times.items():
        print(f"  {name:<22} {t * 1e6:8.1f}")
    print(
        f"  inference_mode / no_grad = {times['inference_mode'] / times['no_grad']:.3f}; "
        f"inference_mode / torch's = {times['inference_mode'] / times['torch inference_mode']:.2f}"
    )


if __name__ == "__main__":
    main()
