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

import numpy as _np

from . import autograd
from .autograd import autograd_grad, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    get_rng_state,
    int8,
    int16,
    int32,
    int64,
    manual_seed,
    set_default_dtype,
    set_rng_state,
    uint8,
)
from .device import accelerator, backends, cuda, device
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, DownslopeError, ShapeError
from .functional import addcdiv, addcmul, elu, gelu, lerp, norm, reciprocal, square, std, var
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .ops import (
    abs,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    bincount,
    bmm,
    broadcast_to,
    cat,
    ceil,
    chunk,
    clamp,
    clip,
    clone,
    concat,
    concatenate,
    cos,
    cumsum,
    div,
    dot,
    einsum,
    eq,
    equal,
    erf,
    exp,
    expm1,
    flatten,
    flip,
    floor,
    gather,
    ge,
    getitem,
    gt,
    hstack,
    index_select,
    is_floating_point,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    leaky_relu,
    log,
    log1p,
    log_softmax,
    logical_and,
    logical_not,
    logical_or,
    logsumexp,
    lt,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    mv,
    narrow,
    ne,
    neg,
    numel,
    outer,
    pad,
    permute,
    pow,
    prod,
    relu,
    reshape,
    return_types,
    round,
    rsqrt,
    scatter,
    scatter_add,
    sigmoid,
    sign,
    sin,
    softmax,
    softplus,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    sum_to,
    t,
    tanh,
    tile,
    topk,
    transpose,
    tril,
    triu,
    trunc,
    unbind,
    unique,
    unsqueeze,
    vstack,
    where,
)
from .tensor import (
    Tensor,
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    logspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)

# PyTorch's dtype names (NumPy dtypes underneath): ds.float is float32, ds.long is int64, ...
dtype = _np.dtype  # isinstance(ds.float32, ds.dtype)
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
bool = bool_  # noqa: A001
inference_mode = no_grad  # torch.inference_mode: no recording (no separate inference tensors here)
subtract, multiply, divide, true_divide, negative = sub, mul, div, div, neg
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
absolute = abs
Size = tuple  # torch.Size: shapes are tuples here

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
    "accelerator", "backends", "autograd", "int8", "int16", "uint8", "addcdiv", "addcmul", "lerp", "norm",
    "reciprocal", "square", "all", "allclose", "any", "argmax", "argmin", "argsort", "bincount", "bmm", "ceil",
    "chunk", "clone", "concat", "cumsum", "dot", "eq", "equal", "expm1", "flip", "floor", "ge", "gt", "hstack",
    "index_select", "is_floating_point", "isclose", "isfinite", "isinf", "isnan", "le", "log1p", "logical_and",
    "logical_not", "logical_or", "lt", "masked_fill", "mm", "mv", "narrow", "ne", "numel", "outer", "prod",
    "return_types", "round", "rsqrt", "sign", "sort", "split", "t", "tile", "topk", "tril", "triu", "trunc",
    "unbind", "unique", "vstack", "bernoulli", "empty", "empty_like", "eye", "full_like", "is_tensor",
    "linspace", "logspace", "normal", "rand_like", "randint", "randint_like", "randn_like", "randperm", "dtype",
    "float", "double", "half", "long", "int", "short", "bool", "inference_mode", "subtract", "multiply",
    "divide", "true_divide", "negative", "scatter", "scatter_add", "einsum", "Size", "greater", "greater_equal", "less", "less_equal", "not_equal", "absolute",
]  # fmt: skip
