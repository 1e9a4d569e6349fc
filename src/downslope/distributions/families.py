"""More of PyTorch's families: Weibull and Pareto (continuous, on the half-line), NegativeBinomial and
Multinomial (counts). Formulas, shapes and constraints follow ``torch.distributions``; draws come from
the library's generator."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..autograd import no_grad
from ..errors import ArgumentError
from ..nn.functional import logsigmoid
from ..tensor import Tensor, as_tensor
from . import constraints
from ._special import lgamma
from .discrete import Binomial, _BinaryProbs, _OverCategorical, _probs_or_logits
from .distribution import (
    EULER_GAMMA,
    Distribution,
    _shape,
    broadcast_all,
    host_draw,
    uniform,
)

__all__ = ["Multinomial", "NegativeBinomial", "Pareto", "Weibull"]


class Weibull(Distribution):
    """The two-parameter Weibull distribution: ``scale * E ** (1 / concentration)`` for E ~ Exp(1).

    Example:
        >>> import downslope as ds
        >>> round(float(Weibull(2.0, 1.5).log_prob(ds.tensor(1.0))), 4)
        -0.9878
    """

    has_rsample = True
    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive

    def __init__(self, scale: Any, concentration: Any, validate_args: Any = None) -> None:
        self.scale, self.concentration = broadcast_all(scale, concentration)
        super().__init__(self.scale.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.scale * ops.exp(lgamma(1 + 1 / self.concentration))

    @property
    def mode(self) -> Tensor:
        k = self.concentration
        return self.scale * ((k - 1) / k) ** (1 / k)

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return self.scale**2 * (ops.exp(lgamma(1 + 2 / k)) - ops.exp(2 * lgamma(1 + 1 / k)))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        e = -ops.log1p(-uniform(self._extended(sample_shape), self.scale))
        return self.scale * e ** (1 / self.concentration)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        k, z = self.concentration, v / self.scale
        # xlogy: 0 (not 0 * -inf) at z = 0 when k = 1, the exponential's exact log density there
        return ops.log(k / self.scale) + ops.xlogy(k - 1, z) - z**k

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        return -ops.expm1(-((v / self.scale) ** self.concentration))

    def icdf(self, value: Any) -> Tensor:
        u = value if isinstance(value, Tensor) else as_tensor(value, dtype=self.scale.dtype)
        return self.scale * (-ops.log1p(-u)) ** (1 / self.concentration)

    def entropy(self) -> Tensor:
        k = self.concentration
        return EULER_GAMMA * (1 - 1 / k) + ops.log(self.scale / k) + 1


class Pareto(Distribution):
    """The Pareto (type I) distribution with ``scale`` (the minimum) and tail index ``alpha``.

    Example:
        >>> import downslope as ds
        >>> round(float(Pareto(1.0, 3.0).log_prob(ds.tensor(2.0))), 4), round(float(Pareto(1.0, 3.0).mean), 4)
        (-1.674, 1.5)
    """

    has_rsample = True
    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}

    def __init__(self, scale: Any, alpha: Any, validate_args: Any = None) -> None:
        self.scale, self.alpha = broadcast_all(scale, alpha)
        super().__init__(self.scale.shape, (), validate_args)

    @constraints.dependent_property
    def support(self) -> Any:
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self) -> Tensor:
        a = ops.clamp(self.alpha, min=1)
        return a * self.scale / (a - 1)

    @property
    def mode(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        a = ops.clamp(self.alpha, min=2)
        return self.scale**2 * a / ((a - 1) ** 2 * (a - 2))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        e = -ops.log1p(-uniform(self._extended(sample_shape), self.scale))
        return self.scale * ops.exp(e / self.alpha)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        return ops.log(self.alpha) + self.alpha * ops.log(self.scale) - (self.alpha + 1) * ops.log(v)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        return 1 - (self.scale / v) ** self.alpha

    def icdf(self, value: Any) -> Tensor:
        u = value if isinstance(value, Tensor) else as_tensor(value, dtype=self.scale.dtype)
        return self.scale * (1 - u) ** (-1 / self.alpha)

    def entropy(self) -> Tensor:
        return ops.log(self.scale / self.alpha) + (1 + 1 / self.alpha)


class NegativeBinomial(_BinaryProbs):
    """The number of successes before ``total_count`` failures in Bernoulli(``probs``) trials (PyTorch's
    parameterization: ``probs`` is the success probability).

    Example:
        >>> import downslope as ds
        >>> round(float(NegativeBinomial(3.0, probs=ds.tensor(0.4)).log_prob(ds.tensor(2.0))), 4)
        -1.5733
    """

    arg_constraints = {
        "total_count": constraints.greater_than_eq(0),
        "probs": constraints.half_open_interval(0.0, 1.0),
        "logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(self, total_count: Any, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "NegativeBinomial")
        source = p if p is not None else lg
        assert source is not None
        self.total_count, param = broadcast_all(total_count, source)
        self.total_count = self.total_count.astype(param.dtype)
        if p is not None:
            self.probs = param
        else:
            self.logits = param
        super().__init__(param.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.total_count * ops.exp(self.logits)

    @property
    def mode(self) -> Tensor:
        return ops.clamp(ops.floor((self.total_count - 1) * ops.exp(self.logits)), min=0.0)

    @property
    def variance(self) -> Tensor:
        return self.mean / ops.sigmoid(-self.logits)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A gamma-Poisson mixture draw: Poisson(Gamma(total_count, rate=exp(-logits)))."""
        shape = _shape(sample_shape) + self.batch_shape
        with no_grad():
            n = np.broadcast_to(
                np.asarray(self.total_count.detach().cpu().numpy(), np.float64), shape
            )  # host: NumPy's samplers
            odds = np.broadcast_to(
                np.exp(np.asarray(self.logits.detach().cpu().numpy(), np.float64)), shape
            )  # host: as above
            rng = backend.rng()
            rate = np.where(n > 0, rng.standard_gamma(np.maximum(n, 1e-300)) * odds, 0.0)
            return host_draw(rng.poisson(rate), self.total_count)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.logits)
        n = self.total_count
        unnormalized = n * logsigmoid(-self.logits) + v * logsigmoid(self.logits)
        normalization = -lgamma(n + v) + lgamma(1.0 + v) + lgamma(n)
        normalization = ops.where((n + v).detach() == 0.0, 0.0, normalization)
        return unnormalized - normalization


class Multinomial(_OverCategorical):
    """Counts of ``total_count`` draws from a :class:`Categorical` of ``probs`` or ``logits``, over the
    last dimension. ``sample`` needs an integer ``total_count``; ``log_prob`` takes any counts.

    Example:
        >>> import downslope as ds
        >>> d = Multinomial(4, probs=ds.tensor([0.2, 0.3, 0.5]))
        >>> round(float(d.log_prob(ds.tensor([1.0, 1.0, 2.0]))), 4), d.sample().sum().item()
        (-1.7148, 4.0)
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}

    def __init__(self, total_count: int = 1, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        if not isinstance(total_count, (int, np.integer)) or isinstance(total_count, bool):
            raise ArgumentError(f"Multinomial: inhomogeneous total_count is not supported, got {total_count!r}")
        self.total_count = int(total_count)
        super().__init__(probs, logits, validate_args)

    @constraints.dependent_property
    def support(self) -> Any:
        return constraints.multinomial(self.total_count)

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def entropy(self) -> Tensor:
        """torch's sum over the support: n H(categorical) - log n! + sum_i E[log x_i!], each count
        x_i ~ Binomial(n, p_i), its expectation enumerated over 1..n (log 0! = 0)."""
        n = self.total_count
        binomial = Binomial(n, probs=self.probs, validate_args=False)
        support = binomial.enumerate_support(expand=False)[1:]
        weights = ops.exp(binomial.log_prob(support)) * lgamma(support + 1)
        return n * self._categorical.entropy() - math.lgamma(n + 1) + ops.sum(weights, axis=(0, -1))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = _shape(sample_shape) + self.batch_shape
        with no_grad():
            p = np.asarray(self.probs.detach().cpu().numpy(), np.float64)  # host: NumPy's multinomial sampler
            p = np.broadcast_to(p / p.sum(-1, keepdims=True), shape + p.shape[-1:])
            return host_draw(backend.rng().multinomial(self.total_count, p), self.probs)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.probs)
        logits = ops.broadcast_to(self.logits, np.broadcast_shapes(self.logits.shape, v.shape))
        v = ops.broadcast_to(v, logits.shape)
        log_factorial_n = lgamma(ops.sum(v, axis=-1) + 1)
        log_factorial_xs = ops.sum(lgamma(v + 1), axis=-1)
        # 0 * log(0) counts as 0: a class with no count and probability 0 adds nothing.
        logits = ops.where((v.detach() == 0) & (logits.detach() == -math.inf), 0.0, logits)
        return log_factorial_n - log_factorial_xs + ops.sum(logits * v, axis=-1)
