"""Inference speed of recurrent, transformer and convolution layers against PyTorch (eval mode, no_grad,
float32, one thread by default): ``nn.LSTM`` (batch 1 and 32, hidden 128 and 512, 50 steps,
batch_first), ``nn.TransformerEncoder`` (2 layers, batch_first, d_model 128 and 256, seq 64 and 128,
dim_feedforward 4 * d_model) and a 3x3 ``Conv2d`` (64 -> 64 channels, batch 32, 32x32, the Winograd
path). With numba installed it is imported first, so the compiled LSTM loops run from the first call
(a process that has not imported numba starts them only once they would repay numba's start).

Peers run in one process on the same data and weights, interleaved slice by slice (the order rotating);
each line is the median over slices of CPU time per call, the ratio downslope's over PyTorch's. Outputs
are checked against PyTorch before timing.
Run: python benchmarks/inference_layers.py [--quick] [--threads N] [--only lstm,encoder,conv]
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, smoke, steps_for  # noqa: E402


def _copy_weights(theirs: Any, ours: Any) -> None:
    import downslope as ds

    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    theirs.eval()
    ours.eval()


def cases(torch: Any, ds: Any, quick: bool) -> list[tuple[str, str, Any, Any, tuple[int, ...]]]:
    """(title, group, torch layer, downslope layer, input shape)."""
    out = []
    lstm_shapes = [(1, 128), (32, 512)] if quick else [(1, 128), (32, 128), (1, 512), (32, 512)]
    if smoke():  # batch 1 and a batch, as --quick, at the smaller width
        lstm_shapes = [(1, 128), (32, 128)]
    for batch, hidden in lstm_shapes:
        theirs, ours = torch.nn.LSTM(hidden, hidden, batch_first=True), ds.nn.LSTM(hidden, hidden, batch_first=True)
        _copy_weights(theirs, ours)
        out.append((f"LSTM B{batch} H{hidden} seq 50", "lstm", theirs, ours, (batch, 50, hidden)))
    encoder_shapes = [(8, 64, 128)] if quick else [(8, 64, 128), (1, 128, 256), (8, 128, 256)]
    for batch, seq, width in encoder_shapes:
        heads = 8 if width >= 256 else 4

        def layer(lib: Any, width: int = width, heads: int = heads) -> Any:
            return lib.nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, batch_first=True)

        theirs = torch.nn.TransformerEncoder(layer(torch), num_layers=2, enable_nested_tensor=False)
        ours = ds.nn.TransformerEncoder(layer(ds), num_layers=2)
        _copy_weights(theirs, ours)
        out.append((f"TransformerEncoder B{batch} S{seq} D{width}", "encoder", theirs, ours, (batch, seq, width)))
    theirs, ours = torch.nn.Conv2d(64, 64, 3, padding=1), ds.nn.Conv2d(64, 64, 3, padding=1)
    _copy_weights(theirs, ours)
    batch = 2 if smoke() else 8 if quick else 32
    out.append((f"Conv2d 64->64 3x3 B{batch} 32x32", "conv", theirs, ours, (batch, 64, 32, 32)))
    return out


def main() -> None:
    def flags(parser: Any) -> None:
        parser.add_argument("--only", default="", help="comma-separated groups: lstm, encoder, conv")

    args, threads = parse_args(__doc__, "fewer and smaller cases", flags)
    with contextlib.suppress(ImportError):
        import numba  # noqa: F401  (see the docstring)
    import torch

    import downslope as ds

    print_header(threads)
    slices = 5 if args.quick else 11
    for title, group, theirs, ours, shape in cases(torch, ds, args.quick):
        if args.only and group not in args.only.split(","):
            continue
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        xt, xd = torch.tensor(x), ds.tensor(x)

        def first(y: Any) -> Any:
            return y[0] if isinstance(y, tuple) else y

        def torch_infer(layer: Any = theirs, xt: Any = xt) -> Any:
            with torch.no_grad():
                return first(layer(xt))

        def ours_infer(layer: Any = ours, xd: Any = xd) -> Any:
            with ds.no_grad():
                return first(layer(xd))

        peers: dict[str, Callable[[], object]] = {"torch": torch_infer, "downslope": ours_infer}
        check_close(title, ours_infer().numpy(), torch_infer().numpy())
        steps = steps_for(list(peers.values()), 2e5 if args.quick else 1e6)
        unit = "ms" if steps < 100 else "us"
        show_ratio(title + " infer", interleaved(peers, slices, steps), 44, unit)


if __name__ == "__main__":
    main()
