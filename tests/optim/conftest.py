"""Shared test setup for the optim tests."""

from __future__ import annotations

try:
    import torch
except ImportError:  # the reference tests skip themselves without torch
    torch = None

if torch is not None:
    # torch's intra-op thread pool spins while waiting; on a small shared machine that made each
    # 100-step reference run ~10x slower. One thread is plenty for these tiny tensors.
    torch.set_num_threads(1)
