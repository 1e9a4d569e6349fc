"""PyTorch's newer parametrization API for two common weight reparameterizations:
``parametrizations.weight_norm`` and ``parametrizations.spectral_norm``.

The original tensors live in ``module.parametrizations.<name>`` (``original0``/``original1`` for
weight norm, ``original`` plus the ``0._u``/``0._v`` buffers for spectral norm), so state_dict keys
read as in PyTorch. The weight is recomputed from them before every forward (PyTorch recomputes it
on every attribute access; read ``module.<name>`` after a forward for the current value).

Example:
    >>> from downslope import nn
    >>> from downslope.nn.utils.parametrizations import weight_norm
    >>> list(weight_norm(nn.Linear(3, 2)).state_dict())
    ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import backend, ops
from ...backend import namespace_of
from ...errors import ArgumentError
from ...tensor import Tensor, wrap_array
from .._arrays import array_like

__all__ = ["weight_norm", "spectral_norm"]


def _normalize(a: np.ndarray, eps: float) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a), eps)  # on the array's device: no host round-trip


def _copy(a: Any) -> Tensor:
    """A tensor holding a copy of ``a`` on its device (a NumPy scalar becomes a 0-d array)."""
    return wrap_array(namespace_of(a).array(a))


def _norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    if dim is None:
        return ops.sqrt(ops.sum(v * v))
    dim = dim % v.ndim
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return ops.sqrt(ops.sum(v * v, axes, keepdim=True))


def _register(module: Any, name: str, holder: Any, compute: Any) -> Any:
    from ..module import ModuleDict

    if name not in module._parameters or module._parameters[name] is None:
        raise ArgumentError(f"{type(module).__name__} has no parameter {name!r} to parametrize")
    delattr(module, name)
    if "parametrizations" not in module._modules:
        module.parametrizations = ModuleDict()
    module.parametrizations[name] = holder

    def recompute(mod: Any, args: Any) -> None:
        object.__setattr__(mod, name, compute(mod.parametrizations[name]))

    recompute(module, ())
    hooks = module.__dict__.setdefault("_parametrization_hooks", {})
    hooks[name] = module.register_forward_pre_hook(recompute)
    return module


def weight_norm(module: Any, name: str = "weight", dim: int | None = 0) -> Any:
    """``<name> = original0 * original1 / ||original1||`` (norms over every dim but ``dim``)."""
    from ..module import Module, Parameter

    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    holder = Module()
    holder.original0 = Parameter(_copy(_norm_except_dim(weight.detach(), dim).array))
    holder.original1 = Parameter(_copy(weight.array))

    def compute(h: Any) -> Tensor:
        return h.original0 * (h.original1 / _norm_except_dim(h.original1, dim))

    return _register(module, name, holder, compute)


def spectral_norm(
    module: Any, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim: int | None = None
) -> Any:
    """``<name> = original / sigma``, sigma the largest singular value estimated by power iteration on
    the buffers ``0._u``, ``0._v`` (one step per training forward; 15 at registration, as in PyTorch)."""
    from ..module import Module, Parameter

    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    order = (dim, *[d for d in range(weight.ndim) if d != dim])
    height = weight.shape[dim]
    holder = Module()
    holder.original = Parameter(_copy(weight.array))
    state = Module()
    matrix = weight.array.transpose(order).reshape(height, -1)
    rng = backend.rng()
    # Drawn by the host generator (the same start on every device), then placed on the weight's device.
    u = _normalize(array_like(rng.standard_normal(matrix.shape[0]).astype(weight.dtype), matrix), eps)
    v = _normalize(array_like(rng.standard_normal(matrix.shape[1]).astype(weight.dtype), matrix), eps)
    for _ in range(15):
        u = _normalize(matrix @ v, eps)
        v = _normalize(matrix.T @ u, eps)
    state.register_buffer("_u", wrap_array(u.astype(weight.dtype)))
    state.register_buffer("_v", wrap_array(v.astype(weight.dtype)))
    holder.add_module("0", state)

    def compute(h: Any) -> Tensor:
        w = h.original
        buffers = h._modules["0"]
        mat = w.array.transpose(order).reshape(height, -1)
        if h.training:
            for _ in range(n_power_iterations):
                buffers._u.array[...] = _normalize(mat @ buffers._v.array, eps)
                buffers._v.array[...] = _normalize(mat.T @ buffers._u.array, eps)
        w_mat = ops.reshape(ops.permute(w, order), (height, -1))
        sigma = ops.sum(ops.matmul(w_mat, wrap_array(buffers._v.array.copy())) * wrap_array(buffers._u.array.copy()))
        return w / sigma

    return _register(module, name, holder, compute)
