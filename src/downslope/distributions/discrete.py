"""Discrete distributions: Categorical, OneHotCategorical, Bernoulli, Geometric, Binomial, Poisson."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..autograd import no_grad
from ..backend import namespace_of
from ..errors import ArgumentError, OutOfRangeError
from ..tensor import Tensor, arange, as_tensor, full_like, wrap_array
from . import constraints
from ._special import lgamma, lgamma_array
from .distribution import (
    _SCALAR_DRAWS,
    Distribution,
    _param,
    _shape,
    _tiny,
    bce_with_logits,
    broadcast_all,
    constant,
    draw_per_element,
    host_draw,
    host_floats,
    lazy_property,
    logits_to_probs,
    no_graph,
    probs_to_logits,
    uniform,
    untracked_host,
    xlogy_array,
)

__all__ = ["Bernoulli", "Binomial", "Categorical", "Geometric", "OneHotCategorical", "Poisson"]


def _probs_or_logits(probs: Any, logits: Any, where: str) -> tuple[Tensor | None, Tensor | None]:
    if (probs is None) == (logits is None):
        raise ArgumentError(f"{where}: pass either probs or logits, not both and not neither")
    return (None if probs is None else _param(probs)), (None if logits is None else _param(logits))


class Categorical(Distribution):
    """A distribution over the classes ``0 .. K-1`` of the last dimension of ``probs`` (normalised to
    sum to 1) or ``logits`` (normalised by log-sum-exp). ``sample`` gives int64 class indices.

    Example:
        >>> import downslope as ds
        >>> Categorical(probs=ds.tensor([0.0, 1.0])).sample((3,)).tolist()
        [1, 1, 1]
        >>> Categorical(logits=ds.tensor([[0.0, 1.0], [2.0, 0.0]])).mode.tolist()
        [1, 0]
    """

    has_enumerate_support = True
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, type(self).__name__)
        source = p if p is not None else lg
        assert source is not None
        if source.ndim < 1:
            raise ArgumentError(
                f"Categorical: probs/logits need at least one dimension, got shape {tuple(source.shape)}"
            )
        if p is not None:
            self.probs = p / ops.sum(p, axis=-1, keepdims=True)
        else:
            assert lg is not None
            self.logits = _normalized_logits(lg)
        self._param = source
        self._num_events = source.shape[-1]
        super().__init__(source.shape[:-1], (), validate_args)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> Any:
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(self._param.shape)

    @property
    def mean(self) -> Tensor:
        return full_like(self.probs[..., 0].detach(), float("nan"))

    @property
    def mode(self) -> Tensor:
        return ops.argmax(self.probs, -1)

    @property
    def variance(self) -> Tensor:
        return full_like(self.probs[..., 0].detach(), float("nan"))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = _shape(sample_shape) + self.batch_shape
        # Inverse CDF in float64: the first class whose cumulative weight passes u * total. A class of
        # probability 0 repeats its predecessor's cumulative value, so it is never the first to pass;
        # the cap at the class where the total is reached covers u * total rounding up. A sample has
        # no gradient, so this runs on the arrays (in their namespace), not as recorded ops.
        probs = self.probs.array
        xp = namespace_of(probs)
        cumulative = xp.cumsum(probs.astype(np.float64), axis=-1)
        total = cumulative[..., -1:]
        u = backend.random_like(shape + (1,), cumulative, np.float64)
        index = (u * total >= cumulative).sum(axis=-1, dtype=np.int64)
        last = (cumulative < total).sum(axis=-1, dtype=np.int64)
        return constant(xp.minimum(index, last))

    def log_prob(self, value: Any) -> Tensor:
        v = value if isinstance(value, Tensor) else as_tensor(value)
        if self._validate_args:
            self._validate_sample(v)
        if v.dtype.kind not in "iu":
            v = ops.astype(v, np.int64)
        k = self._num_events
        # take_along_dim wraps a negative class to the last ones, where torch's gather refuses it;
        # checked on host data only, as take_along_dim checks its upper bound (a device would wait)
        if type(v.array) is np.ndarray and v.array.size and v.array.min() < 0:  # host: host values
            raise OutOfRangeError(
                f"Categorical.log_prob: expected class indices in [0, {k - 1}], got "
                f"{int(v.array.min())} (a negative index is out of bounds, as in torch's gather)"
            )
        logits = self.logits
        shape = v.shape if v.shape == self.batch_shape else np.broadcast_shapes(v.shape, self.batch_shape)
        past = type(v.array) is np.ndarray and v.array.size and v.array.max() >= k  # host: host values
        if no_graph(logits) and not past:
            # no gradient wanted: the pick on the arrays (an index past the classes goes on to
            # take_along_dim, whose error it is)
            xp = namespace_of(logits.array)
            picked = xp.take_along_axis(
                xp.broadcast_to(logits.array, shape + (k,)), xp.broadcast_to(v.array, shape)[..., None], axis=-1
            )
            return constant(picked[..., 0])
        logits = ops.broadcast_to(logits, shape + (k,))
        index = ops.unsqueeze(ops.broadcast_to(v, shape), -1)
        return ops.squeeze(ops.take_along_dim(logits, index, -1), -1)

    def entropy(self) -> Tensor:
        logits = ops.clamp(self.logits, min=float(np.finfo(self.logits.dtype).min))
        return -ops.sum(logits * self.probs, axis=-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(self._num_events, device=self._param.device).reshape((-1,) + (1,) * len(self.batch_shape))
        return ops.broadcast_to(values, (self._num_events,) + self.batch_shape) if expand else values


def _normalized_logits(logits: Tensor) -> Tensor:
    """``logits - logsumexp(logits)`` over the last dim. Without a gradient to record it is computed on
    the array, in the steps of ``ops.logsumexp`` (the largest logit taken out first, a row of -inf
    shifted by 0), so that both ways give the same numbers; float16 (which the op widens) goes there."""
    lg = logits.array
    if not no_graph(logits) or lg.dtype.kind != "f" or lg.dtype.itemsize < 4 or not lg.size:
        return logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    xp = namespace_of(lg)
    m = lg.max(axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a row of only -inf is log(0) = -inf, as the op's
        total = xp.log(xp.exp(lg - m).sum(axis=-1, keepdims=True)) + m
        return constant(lg - total.astype(lg.dtype, copy=False))


class _BinaryProbs(Distribution):
    """A family of one success probability, given as ``probs`` or ``logits``: the other is computed
    from it on first use (binary: ``logits = log(p / (1 - p))``)."""

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)


class _OverCategorical(Distribution):
    """A distribution built on a :class:`Categorical` of ``probs`` or ``logits`` (one-hot, relaxed,
    multinomial counts): its parameters, its batch shape and its event of K classes."""

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        self._categorical = Categorical(probs, logits, validate_args)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:], validate_args=False)
        self._validate_args = self._categorical._validate_args

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits


class OneHotCategorical(_OverCategorical):
    """A :class:`Categorical` whose samples and values are one-hot vectors of length K (floats).

    Example:
        >>> import downslope as ds
        >>> OneHotCategorical(probs=ds.tensor([0.0, 1.0, 0.0])).sample().tolist()
        [0.0, 1.0, 0.0]
    """

    has_enumerate_support = True
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.one_hot

    @property
    def param_shape(self) -> tuple[int, ...]:
        return self._categorical.param_shape

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        probs = self.probs
        return ops.astype(ops.unsqueeze(ops.argmax(probs, -1), -1) == arange(probs.shape[-1]), probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        index = self._categorical.sample(sample_shape).array
        xp = namespace_of(index)
        k = self.event_shape[0]
        return constant((index[..., None] == xp.arange(k)).astype(self.probs.dtype))

    def log_prob(self, value: Any) -> Tensor:
        v = _param(value, self.probs)
        if self._validate_args:
            self._validate_sample(v)
        return self._categorical.log_prob(constant(namespace_of(v.array).argmax(v.array, axis=-1)))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        from ..tensor import eye

        n = self.event_shape[0]
        values = eye(n, dtype=self.probs.dtype).reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return ops.broadcast_to(values, (n,) + self.batch_shape + (n,)) if expand else values


class Bernoulli(_BinaryProbs):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0; samples are floats, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> round(float(Bernoulli(logits=ds.tensor(0.0)).log_prob(ds.tensor(1.0))), 4)
        -0.6931
    """

    has_enumerate_support = True
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "Bernoulli")
        if p is not None:
            self.probs = p
        else:
            assert lg is not None
            self.logits = lg
        param = p if p is not None else lg
        assert param is not None
        self._param: Tensor = param
        super().__init__(self._param.shape, (), validate_args)

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(self._param.shape)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        p = self.probs.detach()
        return ops.where(p == 0.5, float("nan"), ops.astype(p > 0.5, p.dtype))

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = _shape(sample_shape) + self.batch_shape
        # on the arrays: a sample has no gradient (the draws are those of distribution.uniform)
        probs = self.probs.array
        xp = namespace_of(probs)
        u = backend.random_like(shape, probs, np.float64).astype(probs.dtype)
        return constant((u < xp.broadcast_to(probs, shape)).astype(probs.dtype))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.logits)
        logits = self.logits
        shape = v.shape if v.shape == logits.shape else np.broadcast_shapes(v.shape, logits.shape)
        if no_graph(v, logits):  # the same steps as bce_with_logits, on the arrays
            xp = namespace_of(logits.array)
            x, t = xp.broadcast_to(logits.array, shape), xp.broadcast_to(v.array, shape)
            return constant(-((x + xp.abs(x)) / 2 - x * t + xp.log1p(xp.exp(-xp.abs(x)))))
        logits, v = ops.broadcast_to(logits, shape), ops.broadcast_to(v, shape)
        return -bce_with_logits(logits, v)

    def entropy(self) -> Tensor:
        return bce_with_logits(self.logits, self.probs)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(2, dtype=self._param.dtype).reshape((-1,) + (1,) * len(self.batch_shape))
        return ops.broadcast_to(values, (2,) + self.batch_shape) if expand else values


class Geometric(_BinaryProbs):
    """The number of failures before the first success of Bernoulli(``probs``) trials.

    Example:
        >>> import downslope as ds
        >>> round(float(Geometric(probs=0.5).log_prob(ds.tensor(2.0))), 4)
        -2.0794
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "Geometric")
        if p is not None:
            (self.probs,) = broadcast_all(p)
        else:
            (self.logits,) = broadcast_all(lg)
        self._param = self.probs if p is not None else self.logits
        super().__init__(self._param.shape, (), validate_args)
        if self._validate_args and p is not None:
            # host: validating arguments
            if not bool(np.all(constraints._host(self.probs) > 0)):
                raise ArgumentError(
                    f"Expected parameter probs ({type(self.probs).__name__} of shape {tuple(self.probs.shape)}) "
                    f"of distribution {self!r} to be positive but found invalid values:\n{self.probs}"
                )

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return self.probs.detach() * 0.0

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        with no_grad():
            probs = self.probs.detach()
            u = uniform(shape, probs, low=_tiny(probs.dtype))
            return ops.floor(ops.log(u) / ops.log1p(-probs))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self._param)
        v, probs = broadcast_all(v, self.probs)
        probs = ops.where((probs.detach() == 1) & (v.detach() == 0), 0.0, probs)
        return v * ops.log1p(-probs) + ops.log(self.probs)

    def entropy(self) -> Tensor:
        return bce_with_logits(self.logits, self.probs) / self.probs


def _clamp_by_zero(x: Tensor) -> Tensor:
    return (ops.clamp(x, min=0.0) + x - ops.clamp(x, max=0.0)) / 2


class Binomial(_BinaryProbs):
    """The number of successes in ``total_count`` Bernoulli(``probs``) trials.

    Example:
        >>> import downslope as ds
        >>> round(float(Binomial(10, probs=0.5).log_prob(ds.tensor(5.0))), 4)
        -1.402
    """

    has_enumerate_support = True
    arg_constraints = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }

    def __init__(self, total_count: Any = 1, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "Binomial")
        if p is not None:
            self.total_count, self.probs = broadcast_all(total_count, p)
            self.total_count = ops.astype(self.total_count, self.probs.dtype)
        else:
            self.total_count, self.logits = broadcast_all(total_count, lg)
            self.total_count = ops.astype(self.total_count, self.logits.dtype)
        self._param = self.probs if p is not None else self.logits
        super().__init__(self._param.shape, (), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> Any:
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ops.clamp(ops.floor((self.total_count + 1) * self.probs.detach()), max=self.total_count.detach())

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        counts, probs = self.total_count, self.probs
        if host_floats(counts, probs):  # as below, without the detour through detached copies
            n, p = counts.array, probs.array
            if n.shape != shape:
                n, p = np.broadcast_to(n, shape), np.broadcast_to(p, shape)
            n, p = n.astype(np.int64), p.astype(np.float64)
            rng = backend.rng()
            if n.size <= _SCALAR_DRAWS:  # one call per element: see draw_per_element (the same numbers)
                each = [rng.binomial(k, q) for k, q in zip(n.ravel().tolist(), p.ravel().tolist())]
                draw = np.array(each, dtype=np.int64).reshape(shape)
            else:
                draw = rng.binomial(n, p)
            return wrap_array(draw.astype(probs.array.dtype, copy=False))
        with no_grad():
            # host: NumPy's binomial sampler draws on the host
            n = np.broadcast_to(constraints._host(self.total_count), shape).astype(np.int64)
            p = np.broadcast_to(constraints._host(self.probs), shape).astype(np.float64)
            return host_draw(backend.rng().binomial(n, p), self._param)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self._param)
        n, logits = self.total_count, self.logits
        if untracked_host(v, n, logits):  # the steps below on the arrays
            k, m, x = v.array, n.array, logits.array
            with np.errstate(all="ignore"):
                clamped = (x.clip(0.0, math.inf) + x - x.clip(-math.inf, 0.0)) / 2  # _clamp_by_zero's steps
                norm = m * clamped + m * np.log1p(np.exp(-np.abs(x))) - lgamma_array(m + 1)
                return constant(k * x - lgamma_array(k + 1) - lgamma_array(m - k + 1) - norm)
        log_factorial_n = lgamma(n + 1)
        log_factorial_k = lgamma(v + 1)
        log_factorial_nmk = lgamma(n - v + 1)
        normalize = n * _clamp_by_zero(logits) + n * ops.log1p(ops.exp(-ops.abs(logits))) - log_factorial_n
        return v * logits - log_factorial_k - log_factorial_nmk - normalize

    def entropy(self) -> Tensor:
        counts = constraints._host(self.total_count)  # host: the support's size sets the enumeration
        total = int(counts.max()) if counts.size else 0
        if counts.size and not bool((counts == total).all()):
            raise NotImplementedError("Binomial.entropy: inhomogeneous total_count is not supported")
        lp = self.log_prob(self.enumerate_support(False))
        return -ops.sum(ops.exp(lp) * lp, axis=0)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        counts = constraints._host(self.total_count)  # host: the support's size sets the enumeration
        total = int(counts.max()) if counts.size else 0
        if counts.size and not bool((counts == total).all()):
            raise NotImplementedError("Binomial.enumerate_support: inhomogeneous total_count is not supported")
        values = arange(1 + total, dtype=self._param.dtype).reshape((-1,) + (1,) * len(self.batch_shape))
        return ops.broadcast_to(values, (1 + total,) + self.batch_shape) if expand else values


class Poisson(Distribution):
    """The Poisson distribution with ``rate``.

    Example:
        >>> import downslope as ds
        >>> round(float(Poisson(3.0).log_prob(ds.tensor(2.0))), 4)
        -1.4959
    """

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate: Any, validate_args: Any = None) -> None:
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return ops.floor(self.rate.detach())

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        rate = self.rate
        if host_floats(rate):  # the draw below without the detour through a detached copy (a sampler's step)
            draw = draw_per_element(backend.rng().poisson, rate.array, shape)
            return wrap_array(draw.astype(rate.array.dtype, copy=False))
        with no_grad():
            lam = np.broadcast_to(constraints._host(rate), shape)  # host: NumPy's Poisson sampler
            return host_draw(backend.rng().poisson(lam), rate)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.rate)
        if untracked_host(v, self.rate):  # the steps below on the arrays
            k, rate = v.array, self.rate.array
            with np.errstate(all="ignore"):
                return constant(xlogy_array(k, rate) - rate - lgamma_array(k + 1))
        return ops.xlogy(v, self.rate) - self.rate - lgamma(v + 1)
