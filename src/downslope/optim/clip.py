"""Gradient clipping for optimizer users: the functions live in :mod:`downslope.nn.utils` (PyTorch's
``torch.nn.utils``); this module re-exports them so ``downslope.optim.clip_grad_norm_`` keeps working."""

from __future__ import annotations

from ..nn.utils import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
