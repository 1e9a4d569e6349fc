"""Samplers parametrised by tensors: ``torch.poisson``, ``torch.binomial`` and ``Tensor.bernoulli``.

They draw from downslope's one NumPy generator (seeded by ``ds.manual_seed``), or from the
``generator=`` given: the same distributions as PyTorch's, other numbers. The draws are made on the
host (the same numbers on every device) and placed on the parameters' device.

Example:
    >>> import downslope as ds
    >>> _ = ds.manual_seed(0)
    >>> ds.poisson(ds.tensor([0.0, 0.0]))
    tensor([0., 0.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..generator import as_numpy_generator
from ..tensor import Tensor, record_op, wrap_array

__all__ = ["binomial", "poisson"]


def _stream(generator: Any, where: str) -> np.random.Generator:
    return backend.rng() if generator is None else as_numpy_generator(generator, where)


def _floating(x: Any, name: str, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{name}(): argument '{what}' must be Tensor, not {type(x).__name__}")
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"{name}(): only floating-point dtypes are supported for {what}, got {x.array.dtype}")
    return x


def poisson(input: Tensor, generator: Any = None) -> Tensor:
    """Poisson counts, one per element, with the rates ``input`` (non-negative), in ``input``'s dtype.
    As in torch, the result takes part in the graph with gradient zero.

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(0)
        >>> ds.poisson(ds.full((3,), 4.0)).shape
        downslope.Size([3])
    """
    x = _floating(input, "poisson", "input")
    rates = np.asarray(to_host(x.array), dtype=np.float64)  # host: drawn on the host, then placed
    if not (rates >= 0).all():  # NaN fails this too
        raise ArgumentError("poisson(): invalid Poisson rate, expected rate to be non-negative")
    draws = _stream(generator, "poisson").poisson(rates).astype(x.array.dtype)
    return record_op(like(draws, x.array), (x,), _zero_vjp)


def _zero_vjp(g, y, args, saved, needs, xp):
    never = backend.namespace_of(xp.data(g)).zeros(g.shape, dtype=bool)
    return (xp.where(never, g, 0.0),)  # zeros of g's dtype, recorded under create_graph


_zero_vjp.reads_inputs = False  # type: ignore[attr-defined]


def binomial(count: Tensor, prob: Tensor, generator: Any = None) -> Tensor:
    """Binomial counts of successes in ``count`` trials of success probability ``prob`` (tensors of
    one floating dtype, broadcast together), in that dtype. A negative count draws 0 and a probability
    outside [0, 1] is clipped to it, as torch's sampler does. No gradient (torch has none).

    Example:
        >>> import downslope as ds
        >>> ds.binomial(ds.tensor([10.0, 5.0]), ds.tensor([1.0, 0.0]))
        tensor([10.,  0.])
    """
    n = _floating(count, "binomial", "count")
    p = _floating(prob, "binomial", "prob")
    if n.array.dtype != p.array.dtype:
        raise ArgumentTypeError(f"binomial(): found dtype {p.array.dtype} for prob but expected {n.array.dtype}")
    try:
        shape = np.broadcast_shapes(n.shape, p.shape)
    except ValueError:
        raise ShapeError(
            f"binomial(): count of shape {tuple(n.shape)} and prob of shape {tuple(p.shape)} do not broadcast"
        ) from None
    trials = np.broadcast_to(to_host(n.array).astype(np.float64), shape)  # host: drawn on the host
    chance = np.broadcast_to(to_host(p.array).astype(np.float64), shape)  # host: drawn on the host
    unknown = np.isnan(trials) | np.isnan(chance)
    whole = np.where(unknown, 0, np.floor(np.clip(trials, 0, None))).astype(np.int64)
    chance = np.where(unknown, 0.0, np.clip(chance, 0.0, 1.0))
    draws = _stream(generator, "binomial").binomial(whole, chance).astype(np.float64)
    draws[unknown] = np.nan
    return wrap_array(like(draws.astype(n.array.dtype), n.array))


def _tensor_bernoulli(self: Tensor, p: Any = None, *, generator: Any = None) -> Tensor:
    """Draws of 1 (with probability the element's value, or ``p`` for every element) or 0, in this
    tensor's (floating) dtype and shape (``Tensor.bernoulli``). No gradient.

    Example:
        >>> import downslope as ds
        >>> ds.tensor([0.0, 1.0]).bernoulli()
        tensor([0., 1.])
    """
    if self.array.dtype.kind != "f":
        raise ArgumentTypeError(f"bernoulli(): expected a floating tensor, got {self.array.dtype}")
    if p is None:
        probs = np.asarray(to_host(self.array), dtype=np.float64)  # host: drawn on the host, then placed
    elif isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool):
        probs = np.full(self.shape, float(p))  # host: drawn on the host, then placed
    else:
        raise ArgumentTypeError(f"bernoulli(): p must be a float, got {type(p).__name__}")
    if not ((probs >= 0) & (probs <= 1)).all():
        raise ArgumentError("bernoulli(): expected every probability to be in [0, 1]")
    draws = _stream(generator, "bernoulli").random(probs.shape) < probs
    return wrap_array(like(draws.astype(self.array.dtype), self.array))


# Tensor methods (torch's x.bernoulli(); ds.bernoulli(p) stays the top-level sampler)
METHODS = {"bernoulli": _tensor_bernoulli}
