"""WGAN-GP critic step against PyTorch, one thread each: the gradient penalty's double backward.

A small conv critic (Conv2d(1,16,4,2,1)-LeakyReLU(0.2)-Conv2d(16,32,4,2,1)-LeakyReLU(0.2)-Flatten-
Linear(1568,1)) on 28x28 images, batch 64. One step: the penalty's input gradient by
``autograd.grad(critic(interp).sum(), interp, create_graph=True)``, the loss ``critic(fake).mean() -
critic(real).mean() + 10 * (|grad|_2 - 1)^2``, its backward (through the recorded gradient) and
Adam (lr 1e-4, betas (0, 0.9)).

Both peers start from the same weights. Before timing, one step's loss and parameter gradients of
each float32 peer are compared with PyTorch's in float64 (the error of each, relative to the
largest value; a bias gradient sums terms that cancel, so both peers' errors there are ~1e-5) and
the run stops if downslope's is over 1e-5 or over 10x PyTorch's. Then the peers take turns on
slices of steps, and each line is the median over slices of CPU time per step
(``time.process_time``); the ratio is downslope's over PyTorch's.
Run: python benchmarks/gradient_penalty.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import interleaved, parse_args, print_header, show_ratio  # noqa: E402

BATCH = 64


def critic(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 1),
    )


class Critic:
    """One library's critic, its Adam and the step's fixed images (real, fake, mixing weights)."""

    def __init__(self, lib: Any, images: tuple[np.ndarray, ...], state: dict[str, np.ndarray] | None = None) -> None:
        self.lib = lib
        lib.manual_seed(0)
        self.model = critic(lib)
        if state is not None:
            self.model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in state.items()})
        self.opt = lib.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.0, 0.9))
        self.real, self.fake, self.eps = (lib.from_numpy(a) for a in images)

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}

    def loss(self) -> Any:
        interp = (self.eps * self.real + (1 - self.eps) * self.fake).requires_grad_(True)
        (g,) = self.lib.autograd.grad(self.model(interp).sum(), interp, create_graph=True)
        penalty = ((g.view(BATCH, -1).norm(2, dim=1) - 1) ** 2).mean()
        return self.model(self.fake).mean() - self.model(self.real).mean() + 10 * penalty

    def gradients(self) -> dict[str, np.ndarray]:
        """One step's loss (as "loss") and parameter gradients, without an update."""
        self.opt.zero_grad()
        loss = self.loss()
        loss.backward()
        grads = {n: p.grad.detach().numpy().astype(np.float64) for n, p in self.model.named_parameters()}
        return {"loss": np.array(float(loss.item())), **grads}

    def step(self) -> None:
        self.opt.zero_grad()
        self.loss().backward()
        self.opt.step()


def check(ours: Critic, theirs: Critic, reference: Critic) -> None:
    """Stop unless downslope's loss and gradients are as close to float64's as PyTorch's are."""
    exact, mine, torch_values = reference.gradients(), ours.gradients(), theirs.gradients()
    for name, value in exact.items():
        scale = max(float(np.abs(value).max()), 1e-30)
        err, err_torch = (float(np.abs(v[name] - value).max()) / scale for v in (mine, torch_values))
        if not (err <= 1e-5 or err <= 10 * err_torch):
            raise SystemExit(f"{name}: downslope's error {err:.1e} against float64 (PyTorch's {err_torch:.1e})")


def main() -> None:
    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)")
    import torch

    import downslope as ds

    print_header(threads)
    print(f"WGAN-GP critic step, batch {BATCH}, 28x28: ms CPU per step")
    rng = np.random.default_rng(0)
    images = (
        rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
        rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
        rng.random((BATCH, 1, 1, 1)).astype(np.float32),
    )
    theirs = Critic(torch, images)
    ours = Critic(ds, images, theirs.state())
    reference = Critic(torch, tuple(a.astype(np.float64) for a in images))
    reference.model.double().load_state_dict(
        {k: torch.from_numpy(v.astype(np.float64)) for k, v in theirs.state().items()}
    )
    check(ours, theirs, reference)
    slices, steps = (2, 1) if args.quick else (15, 5)
    times = interleaved({"torch": theirs.step, "downslope": ours.step}, slices, steps)
    show_ratio("WGAN-GP critic step", times, 24, "ms")


if __name__ == "__main__":
    main()
