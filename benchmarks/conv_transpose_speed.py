"""Transposed convolution speed against PyTorch, one thread each: ConvTranspose2d layers of a
conv autoencoder's decoder, a ConvTranspose1d, ConvTranspose3d layers (a volumetric decoder's
upsampling), and a DCGAN-like two-layer decoder, forward alone
(no grad) and forward with backward (input and parameter gradients, loss sum(out^2)).

Peers run in one process on the same data and weights, interleaved slice by slice (the order
rotating), so a burst of load from other jobs hits both alike; each line is the median over slices
of CPU time per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0:
downslope is as fast or faster). Outputs and gradients are checked against PyTorch before timing.
Run: python benchmarks/conv_transpose_speed.py [--quick] [--only ct2d_small,ct2d_mid,ct1d,ct3d,decoder]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import infer_peers, interleaved, parse_args, print_header, square_sum_peers  # noqa: E402
from conv_speed import check, copy_weights, show  # noqa: E402

CASES = ("ct2d_small", "ct2d_mid", "ct1d", "ct3d", "decoder")


def decoder(nn):  # type: ignore[no-untyped-def]
    """DCGAN-like: 64 channels at 7x7 up to one at 28x28 through two stride-2 kernel-4 layers."""
    return nn.Sequential(
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        nn.Tanh(),
    )


def layer(name: str, make: Callable[[object], object], shape: tuple[int, ...], slices: int, steps: int) -> None:
    """Forward (no grad) and forward+backward of ``make(nn)`` on a batch of ``shape``."""
    import torch

    import downslope as ds

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(ds.nn)
    copy_weights(theirs, ours)
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    torch_forward, ours_forward = infer_peers(theirs, ours, xt, xd)
    torch_step, ours_step = square_sum_peers(theirs, ours, xt, xd)
    check(name + " output", ours_forward().numpy(), torch_forward().numpy())  # type: ignore[attr-defined]
    torch_step()
    ours_step()
    check(name + " input gradient", xd.grad.numpy(), xt.grad.numpy())
    for (key, p_t), p_d in zip(theirs.named_parameters(), ours.parameters()):
        check(f"{name} {key} gradient", p_d.grad.numpy(), p_t.grad.numpy())
    show(name + " fwd", interleaved({"torch": torch_forward, "downslope": ours_forward}, slices, steps))
    show(name + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated cases of {', '.join(CASES)}")

    args, threads = parse_args(__doc__, "fewer slices (a smoke run)", flags)
    print_header(threads)
    only = set(args.only.split(","))
    slices = 3 if args.quick else 11
    if "ct2d_small" in only:
        layer(
            "ConvT2d(16,1,3,s2,p1,op1) 14->28 B64",
            lambda nn: nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
            (64, 16, 14, 14),
            slices,
            3,
        )
    if "ct2d_mid" in only:
        layer(
            "ConvT2d(32,16,4,s2,p1) 7->14 B64",
            lambda nn: nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            (64, 32, 7, 7),
            slices,
            3,
        )
        layer(
            "ConvT2d(32,16,4,s2,p1) 14->28 B64",
            lambda nn: nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            (64, 32, 14, 14),
            slices,
            2,
        )
    if "ct1d" in only:
        layer(
            "ConvT1d(32,16,4,s2) L128 B64", lambda nn: nn.ConvTranspose1d(32, 16, 4, stride=2), (64, 32, 128), slices, 3
        )
    if "ct3d" in only:
        layer(
            "ConvT3d(32,16,4,s2,p1) 4x8x8->8x16x16 B8",
            lambda nn: nn.ConvTranspose3d(32, 16, 4, stride=2, padding=1),
            (8, 32, 4, 8, 8),
            slices,
            2,
        )
        layer(
            "ConvT3d(16,8,3,s1,p1) 4x6x6 B8",
            lambda nn: nn.ConvTranspose3d(16, 8, 3, padding=1),
            (8, 16, 4, 6, 6),
            slices,
            3,
        )
    if "decoder" in only:
        layer("DCGAN-like decoder 64x7x7->1x28x28 B64", decoder, (64, 64, 7, 7), slices, 2)


if __name__ == "__main__":
    main()
