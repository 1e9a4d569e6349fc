"""Training step of a GPT-2-style stack of transformer blocks against PyTorch, one thread each.

The model is nanoGPT's: token and position embeddings, ``LAYERS`` pre-LayerNorm blocks (causal
self-attention with one fused qkv Linear, 4 heads; a GELU MLP of width 4 * d_model; residual
adds), a final LayerNorm and a linear head, cross-entropy over every position, AdamW (lr 3e-4,
weight decay 0.1), no dropout. Sequence 64, batch 8, vocabulary 256, d_model 128 and 256.
Attention two ways: ``sdpa`` (``F.scaled_dot_product_attention(..., is_causal=True)``) and
``manual`` (q @ k^T * scale, ``masked_fill`` of a tril buffer with -inf, ``softmax``, @ v).

Both peers build the same module tree in one process from the same initial weights and train on
the same batches. Before timing, one step's loss and every parameter gradient are checked against
PyTorch (relative 1e-5 of the largest value). Then the peers take turns on slices of steps (the
first peer rotating), and each line is the median over slices of CPU seconds per step
(``time.process_time``); the ratio is downslope's over PyTorch's (<= 1.0: downslope is faster).
``--profile`` prints the top of downslope's cProfile for the first configuration instead.
Run: python benchmarks/gpt_blocks.py [--quick] [--threads N] [--only sdpa,manual] [--d-model 128,256]
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    check_close,
    interleaved,
    parse_args,
    print_header,
    show_ratio,
    smoke,
)

LAYERS, HEADS, SEQ, BATCH, VOCAB = 4, 4, 64, 8, 256


def build_gpt(lib: Any, d_model: int, attention: str) -> Any:
    """nanoGPT's model written once for both libraries (``lib`` is ``torch`` or ``downslope``)."""
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(d_model)
            self.c_attn = nn.Linear(d_model, 3 * d_model)
            self.c_proj = nn.Linear(d_model, d_model)
            self.ln_2 = nn.LayerNorm(d_model)
            self.c_fc = nn.Linear(d_model, 4 * d_model)
            self.mlp_proj = nn.Linear(4 * d_model, d_model)
            self.register_buffer("bias", lib.tril(lib.ones(SEQ, SEQ)).view(1, 1, SEQ, SEQ))

        def attend(self, x: Any) -> Any:
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(c, dim=2)
            q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
            if attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
                y = F.softmax(att, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

        def forward(self, x: Any) -> Any:
            x = x + self.attend(self.ln_1(x))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(VOCAB, d_model)
            self.wpe = nn.Embedding(SEQ, d_model)
            self.h = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.ln_f = nn.LayerNorm(d_model)
            self.lm_head = nn.Linear(d_model, VOCAB, bias=False)

        def forward(self, idx: Any, targets: Any) -> Any:
            pos = lib.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))

    return GPT()


class Trainer:
    """One library's model, AdamW and the batches it cycles through; ``step()`` is one update."""

    def __init__(
        self, lib: Any, d_model: int, attention: str, state: dict[str, np.ndarray] | None, batches: list
    ) -> None:
        self.lib = lib
        lib.manual_seed(0)
        self.model = build_gpt(lib, d_model, attention)
        if state is not None:
            self.model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in state.items()})
        self.opt = lib.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.1)
        self.batches = [(lib.from_numpy(x), lib.from_numpy(y)) for x, y in batches]
        self.i = 0

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        """The first batch's loss and parameter gradients (no update)."""
        self.opt.zero_grad()
        loss = self.model(*self.batches[0])
        loss.backward()
        return float(loss.item()), {n: p.grad.numpy().copy() for n, p in self.model.named_parameters()}

    def step(self) -> None:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.opt.zero_grad()
        self.model(x, y).backward()
        self.opt.step()


def check(ours: Trainer, theirs: Trainer, title: str) -> None:
    """Stop unless one step's loss and gradients match PyTorch's."""
    loss_d, grads_d = ours.loss_and_grads()
    loss_t, grads_t = theirs.loss_and_grads()
    check_close(f"{title} loss", np.array(loss_d), np.array(loss_t), floor=0.0)
    for name, g in grads_t.items():
        check_close(f"{title} grad {name}", grads_d[name], g, floor=0.0)


def main() -> None:
    def hook(parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default="sdpa,manual", help="attention variants (default sdpa,manual)")
        parser.add_argument("--d-model", default="128,256", help="model widths (default 128,256)")
        parser.add_argument("--profile", action="store_true", help="cProfile downslope's step instead of timing")

    args, threads = parse_args(__doc__, "a few steps only (CI smoke test, no timing claims)", hook)
    import torch

    import downslope as ds

    print_header(threads)
    batch = 2 if smoke() else BATCH  # the smoke run: the same blocks on a quarter of the tokens
    print(
        f"GPT blocks: {LAYERS} layers, {HEADS} heads, seq {SEQ}, batch {batch}, vocab {VOCAB}, AdamW; ms CPU per step"
    )
    rng = np.random.default_rng(0)
    batches = [tuple(rng.integers(0, VOCAB, (batch, SEQ)) for _ in range(2)) for _ in range(4)]
    slices, steps = (2, 1) if args.quick else (15, 4)
    for d_model in (int(d) for d in args.d_model.split(",")):
        for attention in args.only.split(","):
            theirs = Trainer(torch, d_model, attention, None, batches)
            ours = Trainer(ds, d_model, attention, theirs.state(), batches)
            title = f"d_model {d_model} {attention}"
            check(ours, theirs, title)
            if args.profile:
                profile(ours)
                return
            times = interleaved({"torch": theirs.step, "downslope": ours.step}, slices, steps)
            show_ratio(title, times, 24, "ms")


def profile(ours: Trainer) -> None:
    import cProfile
    import pstats

    for _ in range(3):
        ours.step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        ours.step()
    prof.disable()
    pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "40")))


if __name__ == "__main__":
    main()
