"""``torch.gradient``: the derivative of sampled values estimated by finite differences (central in
the interior, one-sided of first or second order at the edges), as ``numpy.gradient`` computes it.
Built from slices and arithmetic, so it is differentiable in the values.

Example:
    >>> import downslope as ds
    >>> ds.gradient(ds.tensor([1.0, 2.0, 4.0, 8.0]))
    (tensor([1. , 1.5, 3. , 4. ]),)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..devices import to_host
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor
from .arithmetic import add, mul
from .operands import _dim, _lift
from .pointwise import astype
from .rearrange import narrow
from .shape import cat

__all__ = ["gradient"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _spacings(spacing: Any, dims: tuple[int, ...], given_dim: bool, ndim: int) -> list[Any]:
    """One spacing per dim of ``dims``: a float (uniform steps) or a float64 host array (coordinates)."""
    if isinstance(spacing, Tensor) and spacing.ndim == 0:
        spacing = spacing.item()  # host: a scalar step picks the formula
    if _number(spacing):
        return [float(spacing)] * len(dims)  # host: a Python step
    if not isinstance(spacing, Sequence) or isinstance(spacing, str):
        raise ArgumentTypeError(
            f"gradient(): spacing must be a number, a list of numbers or a list of 1-d tensors, got "
            f"{type(spacing).__name__}"
        )
    if len(spacing) != len(dims):
        what = f"'len(dim) = {len(dims)}'" if given_dim else f"'self.dim() = {ndim}'"
        raise ArgumentError(
            f"gradient(): expected spacing to be unspecified, a scalar, or a list of length equal to {what}, "
            f"but got a list of length {len(spacing)}"
        )
    out: list[Any] = []
    for s in spacing:
        if _number(s):
            out.append(float(s))  # host: a Python step
        elif isinstance(s, Tensor):
            if s.ndim != 1:
                raise ShapeError(
                    f"gradient(): expected each element of spacing to have one dimension, but got an element with "
                    f"{s.ndim} dimensions"
                )
            out.append(np.asarray(to_host(s.array), dtype=np.float64))  # host: coordinates fix the coefficients
        else:
            raise ArgumentTypeError(
                f"gradient(): each element of spacing must be a number or a 1-d tensor, got {type(s).__name__}"
            )
    if not all(_number(s) for s in out) and not all(isinstance(s, np.ndarray) for s in out):
        raise ArgumentTypeError("gradient(): spacing must be all numbers or all 1-d tensors, not a mix")
    return out


def _along(x: Tensor, d: int, start: int, length: int) -> Tensor:
    return narrow(x, d, start, length)


def _weighted(x: Tensor, d: int, terms: list[tuple[Any, int, int]]) -> Tensor:
    """sum of coefficient * x[start : start + length] along ``d``; a coefficient is a float or a host
    array of ``length`` values (one per position along ``d``)."""
    total: Tensor | None = None
    for coefficient, start, length in terms:
        part = _along(x, d, start, length)
        if isinstance(coefficient, np.ndarray):
            c = _lift(coefficient.reshape((length,) + (1,) * (x.ndim - d - 1)), x)
            term = mul(part, c)
        else:
            term = mul(part, coefficient)
        total = term if total is None else add(total, term)
    assert total is not None
    return total


def _one_dim(x: Tensor, d: int, h: Any, edge_order: int) -> Tensor:
    n = x.shape[d]
    if isinstance(h, np.ndarray):
        if h.shape[0] != n:
            raise ShapeError(
                f"gradient(): the coordinates for dim {d} have {h.shape[0]} values, but the dim has size {n}"
            )
        dx = np.diff(h)
        dx1, dx2 = dx[:-1], dx[1:]
        interior = [
            (-dx2 / (dx1 * (dx1 + dx2)), 0, n - 2),
            ((dx2 - dx1) / (dx1 * dx2), 1, n - 2),
            (dx1 / (dx2 * (dx1 + dx2)), 2, n - 2),
        ]
        if edge_order == 1:
            first = [(-1 / dx[0], 0, 1), (1 / dx[0], 1, 1)]
            last = [(-1 / dx[-1], n - 2, 1), (1 / dx[-1], n - 1, 1)]
        else:
            a1, a2 = dx[0], dx[1]
            first = [
                (-(2 * a1 + a2) / (a1 * (a1 + a2)), 0, 1),
                ((a1 + a2) / (a1 * a2), 1, 1),
                (-a1 / (a2 * (a1 + a2)), 2, 1),
            ]
            b1, b2 = dx[-2], dx[-1]
            last = [
                (b2 / (b1 * (b1 + b2)), n - 3, 1),
                (-(b1 + b2) / (b1 * b2), n - 2, 1),
                ((2 * b2 + b1) / (b2 * (b1 + b2)), n - 1, 1),
            ]
        first = [(float(c), s, k) for c, s, k in first]  # host: coefficients from host coordinates
        last = [(float(c), s, k) for c, s, k in last]  # host: coefficients from host coordinates
    else:
        interior = [(-0.5 / h, 0, n - 2), (0.5 / h, 2, n - 2)]
        if edge_order == 1:
            first = [(-1 / h, 0, 1), (1 / h, 1, 1)]
            last = [(-1 / h, n - 2, 1), (1 / h, n - 1, 1)]
        else:
            first = [(-1.5 / h, 0, 1), (2 / h, 1, 1), (-0.5 / h, 2, 1)]
            last = [(0.5 / h, n - 3, 1), (-2 / h, n - 2, 1), (1.5 / h, n - 1, 1)]
    pieces = [_weighted(x, d, first)]
    if n > 2:
        pieces.append(_weighted(x, d, interior))
    pieces.append(_weighted(x, d, last))
    return cat(pieces, d)


def gradient(input: Any, *, spacing: Any = 1, dim: Any = None, edge_order: int = 1) -> tuple[Tensor, ...]:
    """The derivative of ``input``'s values along each dim of ``dim`` (all by default), one tensor per
    dim (``torch.gradient``). ``spacing`` is the step between samples: one number for every dim, a
    list of numbers (one per dim), or a list of 1-d tensors holding each dim's sample coordinates.
    Interior points use central differences, the edges one-sided ones of order ``edge_order`` (1 or
    2; each dim needs at least ``edge_order + 1`` samples). Integer input gives the default float dtype.

    Example:
        >>> import downslope as ds
        >>> ds.gradient(ds.tensor([[1.0, 2.0, 4.0]]), spacing=2.0, dim=1)
        (tensor([[0.5 , 0.75, 1.  ]]),)
    """
    x = _lift(input)
    if x.array.dtype.kind not in "fc":  # integers and booleans: the default float; complex stays complex
        x = astype(x, backend.get_default_dtype())
    if isinstance(edge_order, bool) or edge_order not in (1, 2):
        raise ArgumentError(f"gradient(): only edge_order=1 and edge_order=2 are supported, got {edge_order!r}")
    given_dim = dim is not None
    if dim is None:
        dims: tuple[int, ...] = tuple(range(x.ndim))
    elif isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
        dims = (_dim(int(dim), x.ndim, "gradient"),)
    elif isinstance(dim, Sequence) and not isinstance(dim, str):
        dims = tuple(_dim(int(d), x.ndim, "gradient") for d in dim)
        if len(set(dims)) != len(dims):
            raise ArgumentError(f"gradient(): a dim appears multiple times in the list of dims {list(dim)}")
    else:
        raise ArgumentTypeError(f"gradient(): dim must be an int or a sequence of ints, got {type(dim).__name__}")
    steps = _spacings(spacing, dims, given_dim, x.ndim)
    for d in dims:
        if x.shape[d] < edge_order + 1:
            raise ShapeError(
                f"gradient(): expected each dimension size to be at least edge_order+1 ({edge_order + 1}), "
                f"got size {x.shape[d]} at dim {d}"
            )
    return tuple(_one_dim(x, d, h, edge_order) for d, h in zip(dims, steps))
