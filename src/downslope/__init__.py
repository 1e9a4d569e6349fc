"""downslope: see and control gradient descent. Tensors with reverse-mode autodiff on NumPy.

Example:
    >>> import downslope as ds
    >>> w = ds.tensor([1.0, -2.0], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad
    tensor([ 2., -4.])
"""

from __future__ import annotations

from typing import Any

from .autograd import autograd_grad, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    get_rng_state,
    int32,
    int64,
    manual_seed,
    set_default_dtype,
    set_rng_state,
)
from .device import accelerator, backends, cuda, device
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, DownslopeError, ShapeError
from .functional import elu, gelu, std, var
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .ops import (
    abs,
    add,
    amax,
    amin,
    broadcast_to,
    cat,
    clamp,
    clip,
    concatenate,
    cos,
    div,
    erf,
    exp,
    flatten,
    gather,
    getitem,
    leaky_relu,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    softplus,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    sum_to,
    tanh,
    transpose,
    unsqueeze,
    where,
)
from .tensor import Tensor, arange, as_tensor, from_numpy, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like

__version__ = "0.1.0"

_LAZY = {"nn", "optim", "data", "train", "viz", "distributed", "cli", "utils"}


def __getattr__(name: str) -> Any:
    # Subpackages load on first use so that `import downslope` stays fast.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name == "fit":
        from .train import fit

        return fit
    if name in ("save", "load"):
        from . import serialization

        return getattr(serialization, name)
    raise AttributeError(f"module 'downslope' has no attribute {name!r}")


__all__ = [
    "Tensor", "tensor", "from_numpy", "as_tensor", "zeros", "ones", "full", "zeros_like", "ones_like",
    "randn", "rand", "arange", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "grad",
    "autograd_grad", "gradcheck", "GradcheckError", "GradcheckReport", "manual_seed", "get_rng_state",
    "set_rng_state", "get_default_dtype", "set_default_dtype", "float16", "float32", "float64", "int32",
    "int64", "bool_", "add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "abs",
    "sin", "cos", "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "elu", "softplus", "erf", "clip", "clamp",
    "maximum", "minimum", "where", "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "softmax",
    "log_softmax", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "flatten", "broadcast_to",
    "sum_to", "concatenate", "cat", "stack", "getitem", "gather", "pad", "save", "load", "DownslopeError",
    "ShapeError", "CheckpointError", "DataError", "ConfigError", "DivergenceError", "device", "cuda",
    "accelerator", "backends",
]  # fmt: skip
