"""Normalization-layer speed against PyTorch, one thread each: LayerNorm, RMSNorm and GroupNorm
forward + backward (the input gradient of a given output gradient) and forward alone under
``no_grad`` at three float32 shapes (256x256, 64x1024, 4096x16; GroupNorm on (N, 32, L) views of
them), and BatchNorm1d/2d/3d in eval mode (inference: running statistics, affine) including
BatchNorm2d on 64x64x16x16 and on a channel-major (convolution-output layout) tensor of that shape.

Peers run in one process on the same data, interleaved slice by slice (the order rotating), so a
burst of load from other jobs hits both alike; each line is the median over slices of CPU time
per call (``time.process_time``), and the ratio is downslope's over PyTorch's (<= 1.0: downslope is
as fast or faster). Outputs and input gradients are checked against PyTorch before timing.
Run: python benchmarks/normalization.py [--quick] [--only LayerNorm,RMSNorm,GroupNorm,BatchNorm]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    backward_peers,
    check_close,
    infer_peers,
    interleaved,
    parse_args,
    print_header,
    show_ratio,
    steps_for,
)

SHAPES = ((256, 256), (64, 1024), (4096, 16))
# name -> how to build the layer from an nn namespace and the last dim; the input's shape from a 2-D shape
LAYERS: dict[str, Callable[[object, int], object]] = {
    "LayerNorm": lambda nn, n: nn.LayerNorm(n),
    "RMSNorm": lambda nn, n: nn.RMSNorm(n),
    "GroupNorm": lambda nn, n: nn.GroupNorm(8, 32),
}
# BatchNorm eval cases: (label, layer class name, input shape, channel-major memory)
BATCH_NORM = (
    ("BatchNorm1d eval 256x256", "BatchNorm1d", (256, 256), False),
    ("BatchNorm2d eval 64x64x16x16", "BatchNorm2d", (64, 64, 16, 16), False),
    ("BatchNorm2d eval 64x64x16x16 (C-major)", "BatchNorm2d", (64, 64, 16, 16), True),
    ("BatchNorm3d eval 8x32x8x16x16", "BatchNorm3d", (8, 32, 8, 16, 16), False),
)


def show(title: str, times: dict[str, float]) -> float:
    return show_ratio(title, times, 44)


def layer_input(name: str, shape: tuple[int, int]) -> tuple[int, ...]:
    """The input shape for a layer: GroupNorm's (N, 32, L) with as many values as ``shape`` and
    L = ``shape``'s row length / 4 (groups of 4 channels: as long as the LayerNorm rows)."""
    if name != "GroupNorm":
        return shape
    length = max(1, shape[1] // 4)
    return (shape[0] * shape[1] // (32 * length), 32, length)


def bench_layer(name: str, shape: tuple[int, int], slices: int, budget_us: float) -> tuple[float, float]:
    """(fwd+bwd ratio, forward-only ratio) of one layer at one shape."""
    import torch

    import downslope as ds

    in_shape = layer_input(name, shape)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(in_shape) * 2 + 0.5).astype(np.float32)
    g = rng.standard_normal(in_shape).astype(np.float32)
    theirs, ours = LAYERS[name](torch.nn, shape[1]), LAYERS[name](ds.nn, shape[1])
    # non-trivial affine parameters, the same in both
    for p_t, p_d in zip(theirs.parameters(), ours.parameters()):
        v = rng.uniform(0.5, 1.5, p_t.shape).astype(np.float32)
        with torch.no_grad():
            p_t.copy_(torch.from_numpy(v))
        p_d.array[...] = v
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    gt, gd = torch.from_numpy(g), ds.tensor(g)
    torch_step, ours_step = backward_peers(theirs, ours, xt, xd, gt, gd)
    torch_infer, ours_infer = infer_peers(theirs, ours, xt, xd)
    label = f"{name} {'x'.join(map(str, in_shape))}"
    check_close(label + " output", ours_step().detach().numpy(), torch_step().detach().numpy())
    check_close(label + " input gradient", xd.grad.numpy(), xt.grad.numpy(), 1e-4)
    check_close(label + " no_grad output", ours_infer().numpy(), torch_infer().numpy())
    steps = steps_for([ours_step, torch_step], budget_us)
    both = show(label + " fwd+bwd", interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps))
    fwd = show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, 2 * steps))
    return both, fwd


def bench_batch_norm_eval(
    label: str, cls: str, shape: tuple[int, ...], channel_major: bool, slices: int, budget_us: float
) -> float:
    """Forward ratio of an eval-mode batch norm with non-trivial running statistics and affine."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(1)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    if channel_major:  # (N, C, ...) over (C, N, ...) memory, as a convolution's output
        x = np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)
    theirs, ours = getattr(torch.nn, cls)(c).eval(), getattr(ds.nn, cls)(c).eval()
    stats = {
        "running_mean": rng.standard_normal(c).astype(np.float32),
        "running_var": rng.uniform(0.5, 2.0, c).astype(np.float32),
        "weight": rng.uniform(0.5, 1.5, c).astype(np.float32),
        "bias": rng.standard_normal(c).astype(np.float32),
    }
    with torch.no_grad():
        for key, v in stats.items():
            getattr(theirs, key).copy_(torch.from_numpy(v))
            getattr(ours, key).array[...] = v
    xt = torch.from_numpy(x) if not channel_major else torch.from_numpy(x.swapaxes(0, 1)).transpose(0, 1)
    xd = ds.tensor(x)
    torch_infer, ours_infer = infer_peers(theirs, ours, xt, xd)
    check_close(label + " output", ours_infer().numpy(), torch_infer().numpy())
    steps = steps_for([ours_infer, torch_infer], budget_us)
    return show(label + " fwd", interleaved({"torch": torch_infer, "downslope": ours_infer}, slices, steps))


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--only",
            default=",".join([*LAYERS, "BatchNorm"]),
            help="comma-separated of LayerNorm,RMSNorm,GroupNorm,BatchNorm",
        )

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 5_000.0) if args.quick else (11, 40_000.0)
    ratios: list[float] = []
    for name in args.only.split(","):
        if name == "BatchNorm":
            for label, cls, shape, cm in BATCH_NORM:
                ratios.append(bench_batch_norm_eval(label, cls, shape, cm, slices, budget))
            continue
        if name not in LAYERS:
            raise SystemExit(f"unknown layer {name!r}; pick from {', '.join([*LAYERS, 'BatchNorm'])}")
        for shape in SHAPES:
            ratios.extend(bench_layer(name, shape, slices, budget))
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
