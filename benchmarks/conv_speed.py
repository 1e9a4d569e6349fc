"""Convolution speed against PyTorch, one thread each: depthwise 3x3 (forward and backward), a
MobileNet-like training step, a kernel-7 Conv1d (forward and backward), batch-1 CNN inference (with
and without ``no_grad``), layer inference (1x1, 3x3 Winograd, Conv1d, a depthwise-separable block)
the backward of a convolution with one output channel, and training steps of mainstream CNNs: ResNet-18
(CIFAR variant) on 32x32 images, DCGAN's generator and discriminator on 64x64 images, and a ResNeXt-style
grouped 3x3 layer (groups=32, forward alone and forward and backward).

Peers run in one process on the same data and weights, interleaved slice by slice (the order
rotating), so a burst of load from other jobs hits both alike; each line is the median over slices
of CPU time per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0:
downslope is as fast or faster). Outputs are checked against PyTorch before timing.
Run: python benchmarks/conv_speed.py [--quick] [--only depthwise,mobile,conv1d,infer,layers,narrow,resnet,dcgan,grouped]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    check_close,
    infer_peers,
    interleaved,
    parse_args,
    print_header,
    show_ratio,
    smoke,
    square_sum_peers,
)

CASES = ("depthwise", "mobile", "conv1d", "infer", "layers", "narrow", "resnet", "dcgan", "grouped")


def show(title: str, times: dict[str, float]) -> float:
    return show_ratio(title, times, 52, "ms")


def copy_weights(theirs, ours) -> None:  # type: ignore[no-untyped-def]
    import downslope as ds

    ours.load_state_dict({k: ds.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})


def check(name: str, a: np.ndarray, b: np.ndarray, tol: float = 1e-3) -> None:
    check_close(name, a, b, tol, floor=1e-12)


def layer_fwd_bwd(
    name: str, make: Callable[[object], object], shape: tuple[int, ...], slices: int, steps: int
) -> float:
    """Forward and backward (input and parameter gradients) of one layer, loss sum(out^2)."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(ds.nn)
    copy_weights(theirs, ours)
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    torch_step, ours_step = square_sum_peers(theirs, ours, xt, xd)
    torch_step()
    ours_step()
    check(name + " input gradient", xd.grad.numpy(), xt.grad.numpy())
    check(name + " weight gradient", ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    return show(name, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def mobile(nn):  # type: ignore[no-untyped-def]
    def block(i: int, o: int, s: int) -> list:  # type: ignore[type-arg]
        return [
            nn.Conv2d(i, i, 3, stride=s, padding=1, groups=i, bias=False),
            nn.BatchNorm2d(i),
            nn.ReLU(),
            nn.Conv2d(i, o, 1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(),
        ]

    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        *block(32, 64, 1),
        *block(64, 128, 2),
        *block(128, 128, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def cifar(nn):  # type: ignore[no-untyped-def]
    def block(i: int, o: int) -> list:  # type: ignore[type-arg]
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(), nn.Linear(128 * 16, 10))


def mobile_train(slices: int, steps: int, batch: int = 64) -> float:
    """One SGD (momentum) training step of the MobileNet-like net, a batch of 32x32 images."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch)
    torch.manual_seed(0)
    theirs, ours = mobile(torch.nn), mobile(ds.nn)
    copy_weights(theirs, ours)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
    opt_d = ds.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    xt, yt, xd, yd = torch.from_numpy(x), torch.from_numpy(y), ds.tensor(x), ds.tensor(y)

    def torch_step() -> None:
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(theirs(xt), yt).backward()
        opt_t.step()

    def ours_step() -> None:
        opt_d.zero_grad()
        ds.nn.functional.cross_entropy(ours(xd), yd).backward()
        opt_d.step()

    return show(
        f"MobileNet-like train step B{batch} 32x32",
        interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps),
    )


def cnn_inference(slices: int, steps: int, grad_mode: bool = False) -> float:
    """Eval-mode forward of the CIFAR CNN (3x3 convs 3-32-64-128, BN, pooling) on one image, under
    ``no_grad`` or (``grad_mode``) not: the parameters then require grad and a graph is recorded."""
    import torch

    import downslope as ds

    torch.manual_seed(0)
    theirs = cifar(torch.nn)
    with torch.no_grad():  # running statistics that are not the defaults
        theirs(torch.randn(64, 3, 32, 32) * 2 + 0.5)
    ours = cifar(ds.nn)
    copy_weights(theirs, ours)
    theirs.eval()
    ours.eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    xt, xd = torch.from_numpy(x), ds.tensor(x)
    torch_step, ours_step = infer_peers(theirs, ours, xt, xd)
    if grad_mode:  # fresh inputs each call, outside no_grad: a graph is recorded
        torch_step, ours_step = (lambda: theirs(torch.from_numpy(x))), (lambda: ours(ds.tensor(x)))
    check("CNN inference", ours_step().detach().numpy(), torch_step().detach().numpy())  # type: ignore[attr-defined]
    title = "CIFAR CNN inference, eval, batch 1" + (", grad mode on" if grad_mode else ", no_grad")
    return show(title, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def layer_inference(
    name: str, make: Callable[[object], object], shape: tuple[int, ...], slices: int, steps: int
) -> float:
    """Forward of a layer (or a small eval-mode network) under ``no_grad``."""
    import torch

    import downslope as ds

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(ds.nn)
    copy_weights(theirs, ours)
    theirs.eval()  # type: ignore[attr-defined]
    ours.eval()  # type: ignore[attr-defined]
    xt, xd = torch.from_numpy(x), ds.tensor(x)
    torch_step, ours_step = infer_peers(theirs, ours, xt, xd)
    check(name, ours_step().numpy(), torch_step().numpy())  # type: ignore[attr-defined]
    return show(name, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def separable(nn):  # type: ignore[no-untyped-def]
    return nn.Sequential(
        nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 128, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def conv1d_net(nn):  # type: ignore[no-untyped-def]
    return nn.Sequential(
        nn.Conv1d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(64, 5),
    )


def resnet18(nn):  # type: ignore[no-untyped-def]
    """ResNet-18 for 32x32 images (CIFAR: a 3x3 stem, no max pooling), torchvision's block layout."""

    class Block(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, i: int, o: int, s: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(o)
            self.relu = nn.ReLU()
            self.down = (
                nn.Sequential(nn.Conv2d(i, o, 1, stride=s, bias=False), nn.BatchNorm2d(o))
                if s != 1 or i != o
                else nn.Identity()
            )

        def forward(self, x):  # type: ignore[no-untyped-def]
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.down(x))

    layers: list = [nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]  # type: ignore[type-arg]
    for i, o, s in ((64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)):
        layers += [Block(i, o, s), Block(o, o, 1)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def model_train(
    title: str, make: Callable[[object], object], shape: tuple[int, ...], classes: int, slices: int, steps: int
) -> float:
    """One SGD (momentum) cross-entropy training step of ``make(nn)`` on a batch of ``shape``."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shape).astype(np.float32), rng.integers(0, classes, shape[0])
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(ds.nn)
    copy_weights(theirs, ours)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)  # type: ignore[attr-defined]
    opt_d = ds.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)  # type: ignore[attr-defined]
    xt, yt, xd, yd = torch.from_numpy(x), torch.from_numpy(y), ds.tensor(x), ds.tensor(y)
    with torch.no_grad(), ds.no_grad():
        check(title + " output", ours(xd).numpy(), theirs(xt).numpy())  # type: ignore[operator]

    def torch_step() -> None:
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(theirs(xt), yt).backward()  # type: ignore[operator]
        opt_t.step()

    def ours_step() -> None:
        opt_d.zero_grad()
        ds.nn.functional.cross_entropy(ours(xd), yd).backward()  # type: ignore[operator]
        opt_d.step()

    return show(title, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def dcgan_generator(nn):  # type: ignore[no-untyped-def]
    """DCGAN's generator (Radford et al.): 100-d noise to 64x64 RGB through 4x4 stride-2 ConvTranspose2d."""

    def up(i: int, o: int) -> list:  # type: ignore[type-arg]
        return [nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        nn.ConvTranspose2d(100, 512, 4, 1, 0, bias=False),
        nn.BatchNorm2d(512),
        nn.ReLU(),
        *up(512, 256),
        *up(256, 128),
        *up(128, 64),
        nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def dcgan_discriminator(nn):  # type: ignore[no-untyped-def]
    """DCGAN's discriminator: 64x64 RGB to one logit through 4x4 stride-2 Conv2d."""

    def down(i: int, o: int) -> list:  # type: ignore[type-arg]
        return [nn.Conv2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2)]

    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        *down(64, 128),
        *down(128, 256),
        *down(256, 512),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False),
        nn.Flatten(),
    )


def dcgan_train(batch: int, slices: int, steps: int) -> float:
    """One DCGAN training step (Adam, binary cross-entropy on logits): the discriminator on a real
    and a generated batch, then the generator through the discriminator."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32)
    noise = rng.standard_normal((batch, 100, 1, 1)).astype(np.float32)
    torch.manual_seed(0)
    peers = {}
    for name, lib, nn, tensor in (
        ("torch", torch, torch.nn, torch.from_numpy),
        ("downslope", ds, ds.nn, ds.tensor),
    ):
        gen, disc = dcgan_generator(nn), dcgan_discriminator(nn)
        if name == "torch":
            theirs = (gen, disc)
        else:
            copy_weights(theirs[0], gen)
            copy_weights(theirs[1], disc)
        opt_g = lib.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = lib.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = nn.functional.binary_cross_entropy_with_logits
        x, z = tensor(real), tensor(noise)
        ones, zeros = lib.ones(batch, 1), lib.zeros(batch, 1)

        def step(gen=gen, disc=disc, opt_g=opt_g, opt_d=opt_d, bce=bce, x=x, z=z, ones=ones, zeros=zeros):  # type: ignore[no-untyped-def]
            fake = gen(z)
            opt_d.zero_grad()
            (bce(disc(x), ones) + bce(disc(fake.detach()), zeros)).backward()
            opt_d.step()
            opt_g.zero_grad()
            bce(disc(fake), ones).backward()
            opt_g.step()

        peers[name] = step
    title = f"DCGAN train step (G and D) B{batch} 64x64"
    return show(title, interleaved(peers, slices, steps))


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated cases of {', '.join(CASES)}")

    args, threads = parse_args(__doc__, "fewer slices (a smoke run)", flags)
    print_header(threads)
    only = set(args.only.split(","))
    slices = 3 if args.quick else 11
    tiny = smoke()  # the smoke run trains the big models on a batch of 2: the same layers, a fraction of the work
    if "depthwise" in only:
        for stride in (1, 2):
            layer_fwd_bwd(
                f"depthwise 3x3 s{stride} 64ch 16x16 B64 fwd+bwd",
                lambda nn, s=stride: nn.Conv2d(64, 64, 3, stride=s, padding=1, groups=64),
                (64, 64, 16, 16),
                slices,
                3,
            )
    if "mobile" in only:
        mobile_train(slices, 2, 4 if tiny else 64)
    if "conv1d" in only:
        for dilation in (1, 2):
            layer_fwd_bwd(
                f"Conv1d 64->64 k7 dil{dilation} L512 B32 fwd+bwd",
                lambda nn, d=dilation: nn.Conv1d(64, 64, 7, dilation=d, padding=3 * d),
                (32, 64, 512),
                slices,
                2,
            )
    if "infer" in only:
        cnn_inference(slices, 100)
        cnn_inference(slices, 100, grad_mode=True)
    if "layers" in only:
        layer_inference(
            "Conv2d(64->128, 1x1) 32x64x16x16 infer", lambda nn: nn.Conv2d(64, 128, 1), (32, 64, 16, 16), slices, 10
        )
        layer_inference(
            "Conv2d(16->16, 3x3, p1) 64x16x28x28 infer",
            lambda nn: nn.Conv2d(16, 16, 3, padding=1),
            (64, 16, 28, 28),
            slices,
            4,
        )
        layer_inference("Depthwise-separable 64->128 16x16 B32 infer", separable, (32, 64, 16, 16), slices, 5)
        layer_inference("Conv1d 1-32-64 k5 L256 B64 net infer", conv1d_net, (64, 1, 256), slices, 10)
    if "narrow" in only:
        layer_fwd_bwd(
            "Conv2d(16->1, 3x3, p1) 28x28 B64 fwd+bwd",
            lambda nn: nn.Conv2d(16, 1, 3, padding=1),
            (64, 16, 28, 28),
            slices,
            4,
        )
    if "resnet" in only:
        batch = 2 if tiny else 16
        model_train(f"ResNet-18 (CIFAR) train step B{batch} 32x32", resnet18, (batch, 3, 32, 32), 10, slices, 1)
    if "dcgan" in only:
        dcgan_train(2 if tiny else 32, slices, 1)
    if "grouped" in only:
        grouped = lambda nn: nn.Conv2d(256, 256, 3, padding=1, groups=32, bias=False)  # noqa: E731
        layer_inference("Grouped 3x3 256ch g32 16x16 B16 infer", grouped, (16, 256, 16, 16), slices, 5)
        layer_fwd_bwd("Grouped 3x3 256ch g32 16x16 B16 fwd+bwd", grouped, (16, 256, 16, 16), slices, 3)


if __name__ == "__main__":
    main()
