"""Token-by-token generation from a tiny GPT against PyTorch, one thread each.

Generation runs the model once per new token on tiny tensors (batch 1, a context of at most 32
tokens), so what counts is each op's fixed cost per call, not its arithmetic: the model forward
(Linear, LayerNorm, causal scaled_dot_product_attention, GELU) and the sampling ops after it
(topk, a masked write of -inf, softmax, argmax, cat; log_softmax, topk over the flattened beams,
index_select for beam search).

The model is nanoGPT's at its smallest: vocabulary 65, context 32, 2 pre-LayerNorm blocks of
d_model 64 with 4 heads, tied token embedding and head. Two workloads:

* ``greedy``: 100 new tokens from a 3-token prompt, each the argmax of the softmax of the last
  logits after a top-10 filter (nanoGPT's ``generate`` with ``top_k=10``), batch 1.
* ``beam``: beam search with 5 beams (the beams as the batch) for 20 steps: log_softmax of the last
  logits, the 5 best continuations of all beams by one topk over beams x vocabulary.

Both peers get the same initial weights. Before timing, the generated tokens and the beams are
checked equal to PyTorch's. Then the peers take turns (the first one rotating), and each line is the
median over slices of CPU seconds per whole generation (``time.process_time``); the ratio is
downslope's over PyTorch's (<= 1.0: downslope is faster). ``--profile`` prints the top of
downslope's cProfile of one greedy generation instead.

Run: python benchmarks/generation.py [--quick] [--threads N] [--profile]
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import interleaved, parse_args, print_header, show_ratio  # noqa: E402

VOCAB, CONTEXT, LAYERS, HEADS, D_MODEL = 65, 32, 2, 4, 64
NEW_TOKENS, TOP_K, BEAMS, BEAM_STEPS = 100, 10, 5, 20


def build_gpt(lib: Any) -> Any:
    """nanoGPT's model written once for both libraries (``lib`` is ``torch`` or ``downslope``)."""
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(D_MODEL)
            self.c_attn = nn.Linear(D_MODEL, 3 * D_MODEL)
            self.c_proj = nn.Linear(D_MODEL, D_MODEL)
            self.ln_2 = nn.LayerNorm(D_MODEL)
            self.c_fc = nn.Linear(D_MODEL, 4 * D_MODEL)
            self.mlp_proj = nn.Linear(4 * D_MODEL, D_MODEL)

        def forward(self, x: Any) -> Any:
            b, t, c = x.size()
            q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
            q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(VOCAB, D_MODEL)
            self.wpe = nn.Embedding(CONTEXT, D_MODEL)
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.ln_f = nn.LayerNorm(D_MODEL)
            self.head = nn.Linear(D_MODEL, VOCAB, bias=False)
            self.wte.weight = self.head.weight  # tied, as nanoGPT

        def forward(self, idx: Any) -> Any:
            pos = lib.arange(0, idx.size(1), dtype=lib.long)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return GPT()


def greedy(lib: Any, model: Any, prompt: Any) -> Any:
    """nanoGPT's ``generate`` with a top-k filter, the argmax taken (no sampling: comparable tokens)."""
    F = lib.nn.functional
    idx = prompt
    for _ in range(NEW_TOKENS):
        context = idx if idx.size(1) <= CONTEXT else idx[:, -CONTEXT:]
        logits = model(context)[:, -1, :]
        v, _ = lib.topk(logits, TOP_K)
        logits[logits < v[:, [-1]]] = -float("inf")
        probs = F.softmax(logits, dim=-1)
        idx = lib.cat((idx, probs.argmax(-1, keepdim=True)), dim=1)
    return idx


def beam_search(lib: Any, model: Any, prompt: Any) -> tuple[Any, Any]:
    """Beams as the batch: each step scores every continuation of every beam and keeps the best BEAMS."""
    F = lib.nn.functional
    beams = prompt.expand(BEAMS, -1).contiguous()
    scores = lib.zeros(BEAMS)
    scores[1:] = -float("inf")  # one live beam at the start
    for _ in range(BEAM_STEPS):
        context = beams if beams.size(1) <= CONTEXT else beams[:, -CONTEXT:]
        logp = F.log_softmax(model(context)[:, -1, :], dim=-1)
        total = (scores[:, None] + logp).view(-1)
        scores, flat = lib.topk(total, BEAMS)
        origin = lib.div(flat, VOCAB, rounding_mode="floor")
        beams = lib.cat((beams.index_select(0, origin), (flat % VOCAB)[:, None]), dim=1)
    return beams, scores


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--profile", action="store_true", help="cProfile one downslope greedy generation")

    args, threads = parse_args(__doc__, "fewer slices (a smoke run)", extra)
    import torch

    import downslope as ds

    print_header(threads)
    torch.manual_seed(0)
    theirs = build_gpt(torch).eval()
    ours = build_gpt(ds).eval()
    ours.load_state_dict({k: ds.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    prompt = np.array([[1, 2, 3]], np.int64)
    pt, pd = torch.tensor(prompt), ds.tensor(prompt)

    if args.profile:
        import cProfile
        import pstats

        with ds.no_grad():
            greedy(ds, ours, pd)
            profile = cProfile.Profile()
            profile.enable()
            greedy(ds, ours, pd)
            profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return

    with torch.no_grad(), ds.no_grad():
        tokens_t, tokens_d = greedy(torch, theirs, pt).numpy(), greedy(ds, ours, pd).numpy()
        if not np.array_equal(tokens_t, tokens_d):
            raise SystemExit(f"greedy: downslope's tokens differ from torch's:\n{tokens_d}\n{tokens_t}")
        (beams_t, scores_t), (beams_d, scores_d) = beam_search(torch, theirs, pt), beam_search(ds, ours, pd)
        if not np.array_equal(beams_t.numpy(), beams_d.numpy()):
            raise SystemExit("beam: downslope's beams differ from torch's")
        if not np.allclose(scores_t.numpy(), scores_d.numpy(), rtol=1e-5, atol=1e-5 * math.sqrt(BEAM_STEPS)):
            raise SystemExit("beam: downslope's scores differ from torch's")
    print(f"checked: {NEW_TOKENS} greedy tokens and {BEAMS} beams of {BEAM_STEPS} steps equal to torch's")

    slices = 3 if args.quick else 9
    cases = {
        f"greedy, {NEW_TOKENS} tokens, top-{TOP_K} filter": (
            lambda: greedy(torch, theirs, pt),
            lambda: greedy(ds, ours, pd),
        ),
        f"beam search, {BEAMS} beams, {BEAM_STEPS} steps": (
            lambda: beam_search(torch, theirs, pt),
            lambda: beam_search(ds, ours, pd),
        ),
    }
    print(f"median CPU time per generation over {slices} interleaved slices; ratio = downslope / torch")
    width = max(len(name) for name in cases)
    with torch.no_grad(), ds.no_grad():
        for name, (run_torch, run_ours) in cases.items():
            times = interleaved({"torch": run_torch, "downslope": run_ours}, slices, 1)
            show_ratio(name, times, width, unit="ms")


if __name__ == "__main__":
    main()
