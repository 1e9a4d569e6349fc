"""Attention speed against PyTorch, one thread each, float32, forward + backward of a given output
gradient: ``F.scaled_dot_product_attention`` (batch 2, 8 heads, head dim 32) at 16 to 1024 tokens,
without a mask, causal, with a boolean and with a float mask; ``nn.MultiheadAttention`` (d_model
256, 8 heads, batch first, ``need_weights=False``) and a ``TransformerEncoderLayer`` step (d_model
256, 8 heads, feed-forward 1024, pre-norm off) at seq 128/512/1024, batch 2-8, with no mask, a
causal ``attn_mask`` (``is_causal=True``) and a ``key_padding_mask``; dropout 0 (outputs and input
gradients checked against PyTorch before timing) and dropout 0.1 (speed only: the masks differ).

Peers run in one process on the same data and weights, interleaved slice by slice (the order
rotating), so a burst of load from other jobs hits both alike; each line is the median over
slices of CPU time per call (``time.process_time``), and the ratio is downslope's over PyTorch's
(<= 1.0: downslope is as fast or faster).
Run: python benchmarks/attention.py [--quick] [--threads N] [--only sdpa,mha,encoder]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402

WIDTH = 52


def _pair(torch_step: Callable[[], Any], ours_step: Callable[[], Any], label: str, slices: int, budget: float) -> float:
    steps = steps_for([ours_step, torch_step], budget)
    return show_ratio(label, interleaved({"torch": torch_step, "downslope": ours_step}, slices, steps), WIDTH, "ms")


def bench_sdpa(seq: int, mask: str, slices: int, budget: float) -> float:
    """``mask``: none, causal, bool (a random boolean mask, True = takes part) or float (additive)."""
    import torch

    import downslope as ds

    rng = np.random.default_rng(seq)
    shape = (2, 8, seq, 32)
    q, k, v, g = (rng.standard_normal(shape).astype(np.float32) for _ in range(4))
    kwargs_t: dict[str, Any] = {"is_causal": mask == "causal"}
    kwargs_d: dict[str, Any] = dict(kwargs_t)
    if mask == "bool":
        m = rng.random((seq, seq)) < 0.8
        m[:, 0] = True
        kwargs_t["attn_mask"], kwargs_d["attn_mask"] = torch.from_numpy(m), ds.tensor(m)
    elif mask == "float":
        m = rng.standard_normal((seq, seq)).astype(np.float32)
        kwargs_t["attn_mask"], kwargs_d["attn_mask"] = torch.from_numpy(m), ds.tensor(m)
    ts = [torch.from_numpy(a).requires_grad_() for a in (q, k, v)]
    dd = [ds.tensor(a, requires_grad=True) for a in (q, k, v)]
    gt, gd = torch.from_numpy(g), ds.tensor(g)

    def torch_step() -> Any:
        for t in ts:
            t.grad = None
        out = torch.nn.functional.scaled_dot_product_attention(*ts, **kwargs_t)
        out.backward(gt)
        return out

    def ours_step() -> Any:
        for t in dd:
            t.grad = None
        out = ds.nn.functional.scaled_dot_product_attention(*dd, **kwargs_d)
        out.backward(gd)
        return out

    label = f"sdpa 2x8x{seq}x32 {mask}"
    check_close(label + " output", ours_step().detach().numpy(), torch_step().detach().numpy(), 1e-4)
    for name, a, b in zip("qkv", dd, ts):
        check_close(f"{label} d{name}", a.grad.numpy(), b.grad.numpy(), 1e-4)
    return _pair(torch_step, ours_step, label + " fwd+bwd", slices, budget)


def _modules(kind: str, dropout: float) -> tuple[Any, Any]:
    """(torch module, downslope module with the same weights)."""
    import torch

    import downslope as ds

    torch.manual_seed(0)
    if kind == "mha":
        theirs = torch.nn.MultiheadAttention(256, 8, dropout=dropout, batch_first=True)
        ours = ds.nn.MultiheadAttention(256, 8, dropout=dropout, batch_first=True)
    else:
        theirs = torch.nn.TransformerEncoderLayer(256, 8, 1024, dropout=dropout, batch_first=True)
        ours = ds.nn.TransformerEncoderLayer(256, 8, 1024, dropout=dropout, batch_first=True)
    ours.load_state_dict({k: ds.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


def bench_module(kind: str, batch: int, seq: int, mask: str, dropout: float, slices: int, budget: float) -> float:
    """forward + backward (input and parameter gradients) of an output gradient."""
    import torch

    import downslope as ds

    theirs, ours = _modules(kind, dropout)
    rng = np.random.default_rng(seq + batch)
    x = rng.standard_normal((batch, seq, 256)).astype(np.float32)
    g = rng.standard_normal((batch, seq, 256)).astype(np.float32)
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.tensor(x, requires_grad=True)
    gt, gd = torch.from_numpy(g), ds.tensor(g)
    kt: dict[str, Any] = {}
    kd: dict[str, Any] = {}
    if mask == "causal":
        causal = np.triu(np.full((seq, seq), -np.inf, np.float32), 1)
        kt = {"is_causal": True}
        kd = {"is_causal": True}
        kt["attn_mask" if kind == "mha" else "src_mask"] = torch.from_numpy(causal)
        kd["attn_mask" if kind == "mha" else "src_mask"] = ds.tensor(causal)
    elif mask == "padding":
        pad = np.zeros((batch, seq), bool)
        pad[:, seq - seq // 4 :] = True  # the last quarter of every sequence is padding
        key = "key_padding_mask" if kind == "mha" else "src_key_padding_mask"
        kt[key], kd[key] = torch.from_numpy(pad), ds.tensor(pad)
    if kind == "mha":
        kt["need_weights"] = kd["need_weights"] = False

    def run(module: Any, xin: Any, kw: dict[str, Any]) -> Any:
        out = module(xin, xin, xin, **kw)[0] if kind == "mha" else module(xin, **kw)
        return out

    def torch_step() -> Any:
        theirs.zero_grad()
        xt.grad = None
        out = run(theirs, xt, kt)
        out.backward(gt)
        return out

    def ours_step() -> Any:
        ours.zero_grad()
        xd.grad = None
        out = run(ours, xd, kd)
        out.backward(gd)
        return out

    label = f"{'MultiheadAttention' if kind == 'mha' else 'EncoderLayer'} {batch}x{seq} {mask} p={dropout}"
    if dropout == 0:
        check_close(label + " output", ours_step().detach().numpy(), torch_step().detach().numpy(), 1e-4)
        check_close(label + " input gradient", xd.grad.numpy(), xt.grad.numpy(), 1e-4)
    return _pair(torch_step, ours_step, label + " fwd+bwd", slices, budget)


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="sdpa,mha,encoder", help="comma-separated: sdpa, mha, encoder")

    args, threads = parse_args(__doc__, "fewer sizes and shorter slices (a smoke run)", flags)
    print_header(threads)
    from downslope import jit_gate

    path = jit_gate.kernels("downslope.nn._jit_attention", np.zeros(1, np.float32))
    print("downslope softmax of the scores: " + ("numba kernel" if path is not None else "NumPy"))
    only = set(args.only.split(","))
    slices, budget = (3, 20_000.0) if args.quick else (7, 300_000.0)
    seqs = (16, 256) if args.quick else (16, 64, 256, 512, 1024)
    if "sdpa" in only:
        for seq in seqs:
            for mask in ("none", "causal") if seq < 512 or args.quick else ("none", "causal", "bool", "float"):
                bench_sdpa(seq, mask, slices, budget)
    cases = ((2, 128),) if args.quick else ((8, 128), (4, 512), (2, 1024))
    for kind in ("mha", "encoder"):
        if kind not in only:
            continue
        for batch, seq in cases:
            for mask in ("none", "causal", "padding"):
                bench_module(kind, batch, seq, mask, 0.0, slices, budget)
            bench_module(kind, batch, seq, "causal", 0.1, slices, budget)


if __name__ == "__main__":
    main()
