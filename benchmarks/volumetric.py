"""3-D (volumetric) layer speed against PyTorch, one thread each: a small 3-D U-Net (medical imaging
patches) forward (no grad) and training step (forward, backward, Adam) on 1x1x8^3, 1x1x16^3 and
2x1x32^3 patches, and Conv3d, MaxPool3d, AvgPool3d and ConvTranspose3d layers forward and forward
with backward (loss sum(out^2)).

Peers run in one process on the same data and weights, interleaved slice by slice (the order
rotating), so a burst of load from other jobs hits both alike; each line is the median over slices
of CPU time per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0:
downslope is as fast or faster). Outputs and gradients are checked against PyTorch before timing.
Run: python benchmarks/volumetric.py [--quick] [--only unet,train,conv3d,pool3d,convt3d]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import infer_peers, interleaved, parse_args, print_header, square_sum_peers, steps_for  # noqa: E402
from conv_speed import check, copy_weights, show  # noqa: E402

CASES = ("unet", "train", "conv3d", "pool3d", "convt3d")
TARGET = 1.5  # downslope's time over torch's: the 3-D U-Net forward and training step, MaxPool3d fwd+bwd


def target(title: str, ratio: float) -> None:
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"target: {title} downslope/torch <= {TARGET:.2f} -> {ratio:.2f} ({verdict})")


PATCHES = ((1, 1, 8, 8, 8), (1, 1, 16, 16, 16), (2, 1, 32, 32, 32))


def unet(nn: Any, cat: Callable[..., Any], base: int = 8) -> Any:
    """A two-level 3-D U-Net: double 3x3x3 convolutions with ReLU, 2x max pooling down, stride-2
    transposed convolutions up, skip connections concatenated, a 1x1x1 head."""

    def double(i: int, o: int) -> Any:
        return nn.Sequential(nn.Conv3d(i, o, 3, padding=1), nn.ReLU(), nn.Conv3d(o, o, 3, padding=1), nn.ReLU())

    class UNet3d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1, self.enc2 = double(1, base), double(base, 2 * base)
            self.mid = double(2 * base, 4 * base)
            self.pool = nn.MaxPool3d(2)
            self.up2, self.dec2 = nn.ConvTranspose3d(4 * base, 2 * base, 2, stride=2), double(4 * base, 2 * base)
            self.up1, self.dec1 = nn.ConvTranspose3d(2 * base, base, 2, stride=2), double(2 * base, base)
            self.head = nn.Conv3d(base, 1, 1)

        def forward(self, x: Any) -> Any:
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            m = self.mid(self.pool(e2))
            d2 = self.dec2(cat([self.up2(m), e2], 1))
            d1 = self.dec1(cat([self.up1(d2), e1], 1))
            return self.head(d1)

    return UNet3d()


def nets() -> tuple[Any, Any]:
    import torch

    import downslope as ds

    torch.manual_seed(0)
    theirs, ours = unet(torch.nn, torch.cat), unet(ds.nn, ds.cat)
    copy_weights(theirs, ours)
    return theirs, ours


def unet_forward(shape: tuple[int, ...], slices: int) -> None:
    import torch

    import downslope as ds

    theirs, ours = nets()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    torch_forward, ours_forward = infer_peers(theirs, ours, torch.from_numpy(x), ds.tensor(x))
    check(f"unet {shape} output", ours_forward().numpy(), torch_forward().numpy())
    steps = steps_for([torch_forward, ours_forward], 20_000)
    title = f"3-D U-Net forward {'x'.join(map(str, shape))}"
    target(title, show(title, interleaved({"torch": torch_forward, "downslope": ours_forward}, slices, steps)))


def unet_train(shape: tuple[int, ...], slices: int) -> None:
    """One Adam step on the MSE against a fixed target."""
    import torch

    import downslope as ds

    theirs, ours = nets()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    opt_d = ds.optim.Adam(ours.parameters(), lr=1e-3)
    xt, yt, xd, yd = torch.from_numpy(x), torch.from_numpy(y), ds.tensor(x), ds.tensor(y)

    def torch_step() -> None:
        opt_t.zero_grad()
        torch.nn.functional.mse_loss(theirs(xt), yt).backward()
        opt_t.step()

    def ours_step() -> None:
        opt_d.zero_grad()
        ds.nn.functional.mse_loss(ours(xd), yd).backward()
        opt_d.step()

    # the gradients of the first step checked (Adam's first update is nearly sign(gradient), so
    # tiny gradients that differ by rounding could move the parameters apart)
    torch.nn.functional.mse_loss(theirs(xt), yt).backward()
    ds.nn.functional.mse_loss(ours(xd), yd).backward()
    for (key, p_t), p_d in zip(theirs.named_parameters(), ours.parameters()):
        # float32 sums over a whole 2x32^3 batch and 14 layers: rounding reaches ~1e-3 of the largest value
        check(f"unet {shape} {key} gradient", p_d.grad.numpy(), p_t.grad.numpy(), 5e-3)
    steps = steps_for([torch_step, ours_step], 20_000)
    title = f"3-D U-Net train step {'x'.join(map(str, shape))}"
    target(title, show(title, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps)))


def layer(name: str, make: Callable[[Any], Any], shape: tuple[int, ...], slices: int, params: bool = True) -> float:
    """Forward (no grad) and forward+backward of ``make(nn)`` on a batch of ``shape``."""
    import torch

    import downslope as ds

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(ds.nn)
    if params:
        copy_weights(theirs, ours)
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    torch_forward, ours_forward = infer_peers(theirs, ours, xt, xd)
    torch_step, ours_step = square_sum_peers(theirs, ours, xt, xd)
    check(name + " output", ours_forward().numpy(), torch_forward().numpy())
    torch_step()
    ours_step()
    assert xd.grad is not None and xt.grad is not None
    check(name + " input gradient", xd.grad.numpy(), xt.grad.numpy())
    for (key, p_t), p_d in zip(theirs.named_parameters(), ours.parameters()):
        check(f"{name} {key} gradient", p_d.grad.numpy(), p_t.grad.numpy())
    steps = steps_for([torch_forward, ours_forward], 20_000)
    show(name + " fwd", interleaved({"torch": torch_forward, "downslope": ours_forward}, slices, steps))
    steps = steps_for([torch_step, ours_step], 20_000)
    return show(name + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def main() -> None:
    def flags(parser: Any) -> None:
        parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated cases of {', '.join(CASES)}")

    args, threads = parse_args(__doc__, "fewer slices (a smoke run)", flags)
    print_header(threads)
    only = set(args.only.split(","))
    slices = 5 if args.quick else 15
    if "unet" in only:
        for shape in PATCHES:
            unet_forward(shape, slices)
    if "train" in only:
        for shape in PATCHES:
            unet_train(shape, slices)
    if "conv3d" in only:
        layer("Conv3d(8,16,3,p1) 2x8x16^3", lambda nn: nn.Conv3d(8, 16, 3, padding=1), (2, 8, 16, 16, 16), slices)
        layer("Conv3d(1,8,3,p1) 1x1x32^3", lambda nn: nn.Conv3d(1, 8, 3, padding=1), (1, 1, 32, 32, 32), slices)
        layer("Conv3d(16,32,3,s2,p1) 2x16x16^3", lambda nn: nn.Conv3d(16, 32, 3, 2, 1), (2, 16, 16, 16, 16), slices)
    if "pool3d" in only:
        for title, make, shape in [
            ("MaxPool3d(2) 2x8x32^3", lambda nn: nn.MaxPool3d(2), (2, 8, 32, 32, 32)),
            ("MaxPool3d(2) 1x8x8^3", lambda nn: nn.MaxPool3d(2), (1, 8, 8, 8, 8)),
            ("MaxPool3d(3,2,1) 2x16x16^3", lambda nn: nn.MaxPool3d(3, 2, 1), (2, 16, 16, 16, 16)),
            # global windows (stride = kernel = the volume): the window-rows path, once 9x torch's time
            ("MaxPool3d(16) 8x32x16^3", lambda nn: nn.MaxPool3d(16), (8, 32, 16, 16, 16)),
        ]:
            target(title + " fwd+bwd", layer(title, make, shape, slices, params=False))
        layer("AvgPool3d(2) 2x8x32^3", lambda nn: nn.AvgPool3d(2), (2, 8, 32, 32, 32), slices, params=False)
    if "convt3d" in only:
        layer("ConvT3d(32,16,2,s2) 2x32x8^3", lambda nn: nn.ConvTranspose3d(32, 16, 2, stride=2),
              (2, 32, 8, 8, 8), slices)  # fmt: skip
        layer("ConvT3d(16,8,3,s2,p1,op1) 1x16x8^3", lambda nn: nn.ConvTranspose3d(16, 8, 3, 2, 1, 1),
              (1, 16, 8, 8, 8), slices)  # fmt: skip


if __name__ == "__main__":
    main()
