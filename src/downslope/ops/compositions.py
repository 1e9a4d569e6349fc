"""torch functions made of other ops, so their gradients are those ops': ``rsub``, ``fill``,
``adjoint``, ``vander``, the old norm spellings ``frobenius_norm`` and ``nuclear_norm``,
``nonzero_static``, and the Tensor methods ``hardshrink`` and ``prelu``.

Example:
    >>> import downslope as ds
    >>> ds.rsub(ds.tensor([1.0, 2.0]), 10.0)
    tensor([9., 8.])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import namespace_of
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, record_op, wrap_array
from .arithmetic import mul, sub
from .indexing import nonzero
from .operands import _lift
from .pointwise import astype, where
from .pointwise import hardshrink as _pointwise_hardshrink
from .reductions import vector_norm
from .shape import broadcast_to, reshape, stack

__all__ = ["adjoint", "fill", "frobenius_norm", "nonzero_static", "nuclear_norm", "rsub", "vander"]


def rsub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """``other - alpha * input`` (``torch.rsub``: :func:`downslope.sub` with its operands reversed).

    Example:
        >>> import downslope as ds
        >>> ds.rsub(ds.tensor([1.0, 2.0]), 1.0, alpha=2)
        tensor([-1., -3.])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"rsub(): argument 'input' must be Tensor, not {type(input).__name__}")
    return sub(other, input, alpha=alpha)


def fill(input: Any, value: Any) -> Tensor:
    """A tensor of ``input``'s shape and dtype holding ``value`` everywhere (``torch.fill``, the
    out-of-place ``fill_``). ``value`` is a number or a 0-d tensor; a 0-d tensor that requires grad
    gets the sum of the output's gradient, and ``input`` gets zeros.

    Example:
        >>> import downslope as ds
        >>> ds.fill(ds.zeros(2, 2), 3.5)
        tensor([[3.5, 3.5],
                [3.5, 3.5]])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"fill(): argument 'input' must be Tensor, not {type(input).__name__}")
    xp = namespace_of(input.array)
    dtype = input.array.dtype
    parents: tuple[Tensor, ...] = (input,)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(
                f"fill(): only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions"
            )
        filled = xp.broadcast_to(value.array.astype(dtype), input.shape).copy()
        if dtype.kind == "f":
            parents = (input, value)
    elif isinstance(value, (bool, int, float, np.generic)):
        filled = xp.full(input.shape, value, dtype=dtype)
    else:
        raise ArgumentTypeError(
            f"fill(): argument 'value' must be a number or a 0-d Tensor, not {type(value).__name__}"
        )
    return record_op(filled, parents, _fill_vjp)


def _fill_vjp(g, y, args, saved, needs, xp):
    mask = namespace_of(xp.data(g)).ones(g.shape, dtype=bool)
    gx = xp.where(mask, 0.0, g) if needs[0] else None  # zeros of g's dtype and kind
    if len(args) == 1:
        return (gx,)
    return gx, (xp.astype(xp.sum_to(g, ()), args[1].dtype) if needs[1] else None)


_fill_vjp.reads_inputs = False  # type: ignore[attr-defined]


def adjoint(input: Tensor) -> Tensor:
    """The last two dims swapped (``torch.adjoint``; the conjugate transpose, and tensors here are
    real). A 1-d tensor is refused, as in torch.

    Example:
        >>> import downslope as ds
        >>> ds.adjoint(ds.zeros(4, 2, 3)).shape
        downslope.Size([4, 3, 2])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"adjoint(): argument 'input' must be Tensor, not {type(input).__name__}")
    return input.adjoint()


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of the 1-d ``x``: columns ``x**(N-1), ..., x, 1`` (``increasing=True``:
    ``1, x, ..., x**(N-1)``), ``N`` = ``len(x)`` by default (``torch.vander``). Integer and boolean
    input gives int64, as in torch. The powers are running products, so the gradient is exact at 0.

    Example:
        >>> import downslope as ds
        >>> ds.vander(ds.tensor([1, 2, 3]))
        tensor([[1, 1, 1],
                [4, 2, 1],
                [9, 3, 1]])
    """
    x = _lift(x)
    if x.ndim != 1:
        raise ShapeError(f"vander(): x must be a one-dimensional tensor, got {x.ndim}-d of shape {tuple(x.shape)}")
    if N is None:
        n = x.shape[0]
    elif isinstance(N, bool) or not isinstance(N, (int, np.integer)):
        raise ArgumentTypeError(f"vander(): argument 'N' must be int, not {type(N).__name__}")
    else:
        n = int(N)
    if n < 0:
        raise ArgumentError(f"vander(): N must be non-negative, got {n}")
    if x.array.dtype.kind in "biu":
        x = astype(x, np.int64)
    xp = namespace_of(x.array)
    if n == 0:
        return wrap_array(xp.empty((x.shape[0], 0), x.array.dtype))
    columns = [wrap_array(xp.ones(x.shape, x.array.dtype))]
    for _ in range(n - 1):
        columns.append(mul(columns[-1], x))
    if not increasing:
        columns.reverse()
    return stack(columns, 1)


def _dims(dim: Any, name: str) -> tuple[int, ...]:
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
        return (int(dim),)
    if isinstance(dim, Sequence) and not isinstance(dim, str):
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dim):
            raise ArgumentTypeError(f"{name}(): argument 'dim' must be a sequence of ints, got {dim!r}")
        return tuple(int(d) for d in dim)
    raise ArgumentTypeError(f"{name}(): argument 'dim' must be an int or a sequence of ints, not {type(dim).__name__}")


def _deprecated(name: str, instead: str) -> None:
    warnings.warn(
        f"{name} is deprecated, as at::{name} is in PyTorch (kept for old code); use {instead} instead",
        UserWarning,
        stacklevel=3,
    )


def frobenius_norm(input: Any, dim: Any, keepdim: bool = False) -> Tensor:
    """sqrt of the sum of squares over ``dim`` (one or two dims; ``torch.frobenius_norm``, deprecated
    there and here with the same warning: it is ``ds.linalg.vector_norm(input, 2, dim, keepdim)``).

    Example:
        >>> import warnings, downslope as ds
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds.frobenius_norm(ds.tensor([[3.0, 4.0]]), (0, 1))
        tensor(5.)
    """
    dims = _dims(dim, "frobenius_norm")
    if len(dims) > 2:
        raise ShapeError(f"frobenius_norm(): expected at most 2 dimensions, but got {len(dims)} dimensions instead")
    x = _lift(input)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"frobenius_norm(): input dtype should be floating point, got {x.array.dtype}")
    _deprecated("frobenius_norm", "linalg.vector_norm(A, 2., dim, keepdim)")
    return vector_norm(x, 2, dims, keepdim)


def nuclear_norm(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """The sum of the singular values of the matrices over ``dim`` (two dims; the last two by default),
    ``torch.nuclear_norm`` (deprecated there and here with the same warning: it is
    ``ds.linalg.matrix_norm(A, 'nuc', dim, keepdim)``). As in torch, ``nuclear_norm(x, True)``
    reads the bool as ``keepdim``.

    Example:
        >>> import warnings, downslope as ds
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds.nuclear_norm(ds.tensor([[3.0, 0.0], [0.0, -4.0]]))
        tensor(7.)
    """
    from ..linalg import matrix_norm  # the SVD lives in downslope.linalg, which imports the ops

    if isinstance(dim, (bool, np.bool_)):
        dim, keepdim = None, bool(dim)  # host: torch's nuclear_norm(x, keepdim) form
    dims = (-2, -1) if dim is None else _dims(dim, "nuclear_norm")
    if len(dims) != 2:
        raise ShapeError(f"nuclear_norm(): expected 2 dimensions, got {len(dims)}")
    x = _lift(input)
    if x.ndim < 2:
        raise ShapeError(f"nuclear_norm(): expected a matrix or a batch of matrices, got a {x.ndim}-d tensor")
    _deprecated("nuclear_norm", "linalg.matrix_norm(A, 'nuc', dim, keepdim)")
    return matrix_norm(x, "nuc", (dims[0], dims[1]), keepdim)


def nonzero_static(input: Any, *, size: int, fill_value: int = -1) -> Tensor:
    """The indices of the nonzero elements (as :func:`downslope.nonzero`, one row per element) in a
    result of exactly ``size`` rows: cut there, or padded with rows of ``fill_value``
    (``torch.nonzero_static``).

    Example:
        >>> import downslope as ds
        >>> ds.nonzero_static(ds.tensor([0, 3, 0, 5]), size=3)
        tensor([[ 1],
                [ 3],
                [-1]])
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ArgumentError(f"nonzero_static(): 'size' must be a non-negative integer, got {size!r}")
    if isinstance(fill_value, bool) or not isinstance(fill_value, (int, np.integer)):
        raise ArgumentTypeError(f"nonzero_static(): argument 'fill_value' must be int, not {type(fill_value).__name__}")
    x = _lift(input)
    found = nonzero(x).array
    xp = namespace_of(found)
    out = xp.full((int(size), x.ndim), int(fill_value), dtype=np.int64)
    rows = min(int(size), found.shape[0])
    out[:rows] = found[:rows]
    return wrap_array(out)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (``Tensor.hardshrink``, torch's hard shrinkage).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([-1.0, 0.2, 2.0]).hardshrink(0.5)
        tensor([-1.,  0.,  2.])
    """
    x = _lift(input)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"hardshrink(): expected a floating tensor, got {x.array.dtype}")
    return _pointwise_hardshrink(x, lambd)  # one rule: NaN stays NaN, as torch's


def prelu(input: Tensor, weight: Any) -> Tensor:
    """``x`` where ``x > 0``, else ``weight * x``, with one weight for all elements or one per channel
    (dim 1; a tensor of fewer than 2 dims has one channel) (``Tensor.prelu``).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([[1.0, -2.0], [-4.0, 3.0]]).prelu(ds.tensor([0.5, 0.25]))
        tensor([[ 1. , -0.5],
                [-2. ,  3. ]])
    """
    x = _lift(input)
    w = _lift(weight, x)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.numel() not in (1, channels) or w.ndim > 1:
        raise ShapeError(
            f"prelu(): mismatch of parameter numbers and input channel size. Found parameter numbers = {w.numel()} "
            f"and channel size = {channels}"
        )
    if w.numel() == 1 or x.ndim < 2:
        scale = reshape(w, ())
    else:
        scale = reshape(w, (channels,) + (1,) * (x.ndim - 2))
    return where(x > 0, x, mul(broadcast_to(scale, x.shape) if x.ndim else scale, x))


# Tensor methods torch has among these
METHODS = {"hardshrink": hardshrink, "prelu": prelu, "nonzero_static": nonzero_static}
