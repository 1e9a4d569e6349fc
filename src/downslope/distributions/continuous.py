"""Continuous distributions over the reals, half-line and interval: Normal, Uniform, Exponential,
Laplace, Cauchy, Gumbel, HalfNormal, StudentT, Gamma, Beta and Dirichlet (the last over the simplex).

Gamma and StudentT reparameterise through the gamma draw's implicit gradient (d x / d alpha =
-(dP/dalpha) / p(x), with P the regularised incomplete gamma function), Beta and Dirichlet through the
Beta draw's (d x / d alpha = -(dF/dalpha) / pdf(x), F the Beta CDF, per component), as PyTorch does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..backend import namespace_of
from ..errors import ArgumentError
from ..tensor import Tensor, record_op
from . import constraints
from ._beta_grad import dirichlet_grad
from ._special import digamma, erfinv, lgamma, lgamma_array, standard_gamma_grad
from .distribution import (
    _HALF_LOG_2PI,
    EULER_GAMMA,
    Distribution,
    _eps,
    _param,
    _tiny,
    broadcast_all,
    constant,
    draw_per_element,
    host_draw,
    host_floats,
    no_graph,
    standard_normal,
    uniform,
    untracked_host,
    xlogy_array,
)

__all__ = [
    "Beta",
    "Cauchy",
    "Chi2",
    "Dirichlet",
    "Exponential",
    "Gamma",
    "Gumbel",
    "HalfNormal",
    "Laplace",
    "Normal",
    "StudentT",
    "Uniform",
]


def _sum_last(a: np.ndarray) -> np.ndarray:
    """ops.sum over the last axis of an array (its accumulation, so its bits)."""
    return ops.sum(constant(a), axis=-1).array


def _full(t: Tensor, value: float) -> Tensor:
    from ..tensor import full_like

    return full_like(t.detach(), value)


class _LocationScale(Distribution):
    """A family ``loc + scale * X`` for one standard X: its parameters, their constraints and their
    shapes; the mean and the mode are ``loc`` unless the family says otherwise."""

    has_rsample = True
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc


class Normal(_LocationScale):
    """The normal distribution N(loc, scale**2); ``rsample`` is ``loc + scale * eps`` (eps ~ N(0, 1)).

    Example:
        >>> import downslope as ds
        >>> round(float(Normal(0.0, 2.0).log_prob(ds.tensor(1.0))), 4)
        -1.7371
        >>> round(float(Normal(0.0, 1.0).icdf(ds.tensor(0.975))), 4)
        1.96
    """

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale * self.scale

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        eps = standard_normal(self._extended(sample_shape), self.loc)
        loc, scale = self.loc, self.scale
        if no_graph(loc, scale):  # (sample() always): the same steps on the arrays, with no op recorded
            return constant(loc.array + eps.array * scale.array)
        return loc + eps * scale

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        loc, scale = self.loc, self.scale
        if no_graph(v, loc, scale) and type(self).variance is Normal.variance:
            # no gradient wanted: the steps below on the arrays (a subclass's own variance goes there)
            va, la, sa = v.array, loc.array, scale.array
            return constant(-((va - la) ** 2) / (2 * (sa * sa)) - namespace_of(sa).log(sa) - _HALF_LOG_2PI)
        return -((v - loc) ** 2) / (2 * self.variance) - ops.log(scale) - _HALF_LOG_2PI

    def entropy(self) -> Tensor:
        return 0.5 + _HALF_LOG_2PI + ops.log(self.scale)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return 0.5 * (1 + ops.erf((v - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value: Any) -> Tensor:
        v = _param(value, self.loc)
        return self.loc + self.scale * erfinv(2 * v - 1) * math.sqrt(2)


class Uniform(Distribution):
    """Uniform on [low, high); ``rsample`` is ``low + u * (high - low)``.

    Example:
        >>> import downslope as ds
        >>> round(float(Uniform(0.0, 4.0).log_prob(ds.tensor(1.0))), 4)
        -1.3863
    """

    has_rsample = True
    arg_constraints = {"low": constraints.dependent(event_dim=0), "high": constraints.dependent(event_dim=0)}

    def __init__(self, low: Any, high: Any, validate_args: Any = None) -> None:
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, (), validate_args)
        # host: validating arguments
        if self._validate_args and not bool(np.all(constraints._host(self.low) < constraints._host(self.high))):
            raise ArgumentError(
                f"Expected parameters low and high of distribution {self!r} to satisfy low < high (Uniform is not "
                f"defined when low >= high), but found invalid values:\nlow: {self.low}\nhigh: {self.high}"
            )

    @constraints.dependent_property
    def support(self) -> Any:
        return constraints.interval(self.low, self.high)  # closed, as PyTorch's (log_prob(high) is -inf)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return self.high * float("nan")

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12**0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.low + uniform(self._extended(sample_shape), self.low) * (self.high - self.low)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.low)
        inside = ops.astype((self.low.detach() <= v.detach()) & (self.high.detach() > v.detach()), self.low.dtype)
        with np.errstate(divide="ignore"):
            return ops.log(inside) - ops.log(self.high - self.low)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.low)
        return ops.clamp((v - self.low) / (self.high - self.low), min=0.0, max=1.0)

    def icdf(self, value: Any) -> Tensor:
        v = _param(value, self.low)
        return v * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return ops.log(self.high - self.low)


class Exponential(Distribution):
    """The exponential distribution with ``rate`` (mean 1/rate).

    Example:
        >>> import downslope as ds
        >>> round(float(Exponential(2.0).log_prob(ds.tensor(1.0))), 4)
        -1.3069
    """

    has_rsample = True
    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, rate: Any, validate_args: Any = None) -> None:
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return 1 / self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.detach() * 0.0

    @property
    def stddev(self) -> Tensor:
        return 1 / self.rate

    @property
    def variance(self) -> Tensor:
        return self.rate**-2

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = uniform(self._extended(sample_shape), self.rate)
        return -ops.log1p(-u) / self.rate

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.rate)
        return ops.log(self.rate) - self.rate * v

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.rate)
        return 1 - ops.exp(-self.rate * v)

    def icdf(self, value: Any) -> Tensor:
        return -ops.log1p(-_param(value, self.rate)) / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - ops.log(self.rate)


class Laplace(_LocationScale):
    """The Laplace (double exponential) distribution with ``loc`` and ``scale``.

    Example:
        >>> import downslope as ds
        >>> round(float(Laplace(0.0, 1.0).log_prob(ds.tensor(1.0))), 4)
        -1.6931
    """

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale**2

    @property
    def stddev(self) -> Tensor:
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        eps = _eps(self.loc.dtype)
        u = uniform(self._extended(sample_shape), self.loc) * (2 - eps) + (eps - 1)  # in [eps - 1, 1)
        return self.loc - self.scale * ops.sign(u) * ops.log1p(-ops.abs(u))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return -ops.log(2 * self.scale) - ops.abs(v - self.loc) / self.scale

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return 0.5 - 0.5 * ops.sign(v - self.loc) * ops.expm1(-ops.abs(v - self.loc) / self.scale)

    def icdf(self, value: Any) -> Tensor:
        term = _param(value, self.loc) - 0.5
        return self.loc - self.scale * ops.sign(term) * ops.log1p(-2 * ops.abs(term))

    def entropy(self) -> Tensor:
        return 1 + ops.log(2 * self.scale)


class Cauchy(_LocationScale):
    """The Cauchy (Lorentz) distribution; its mean is NaN and its variance infinite, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> round(float(Cauchy(0.0, 1.0).cdf(ds.tensor(1.0))), 4)
        0.75
    """

    @property
    def mean(self) -> Tensor:
        return _full(self.loc, float("nan"))

    @property
    def variance(self) -> Tensor:
        return _full(self.loc, float("inf"))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        u = uniform(self._extended(sample_shape), self.loc)
        return self.loc + ops.tan(math.pi * (u - 0.5)) * self.scale

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return -math.log(math.pi) - ops.log(self.scale) - ops.log1p(((v - self.loc) / self.scale) ** 2)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return ops.atan((v - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value: Any) -> Tensor:
        return ops.tan(math.pi * (_param(value, self.loc) - 0.5)) * self.scale + self.loc

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) + ops.log(self.scale)


class Gumbel(_LocationScale):
    """The Gumbel (type-I extreme value) distribution with ``loc`` and ``scale``.

    Example:
        >>> import downslope as ds
        >>> round(float(Gumbel(0.0, 1.0).log_prob(ds.tensor(0.0))), 4)
        -1.0
    """

    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * EULER_GAMMA

    @property
    def stddev(self) -> Tensor:
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev**2

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        dtype = self.loc.dtype
        u = ops.clamp(uniform(self._extended(sample_shape), self.loc), min=_tiny(dtype), max=1 - _eps(dtype))
        return self.loc - self.scale * ops.log(-ops.log(u))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        z = (self.loc - v) / self.scale
        return (z - ops.exp(z)) - ops.log(self.scale)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return ops.exp(-ops.exp(-(v - self.loc) / self.scale))

    def icdf(self, value: Any) -> Tensor:
        return self.loc - self.scale * ops.log(-ops.log(_param(value, self.loc)))

    def entropy(self) -> Tensor:
        return ops.log(self.scale) + (1 + EULER_GAMMA)


class HalfNormal(Distribution):
    """|X| for X ~ N(0, scale**2), on [0, inf).

    Example:
        >>> import downslope as ds
        >>> round(float(HalfNormal(1.0).log_prob(ds.tensor(0.0))), 4)
        -0.2258
    """

    has_rsample = True
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, scale: Any, validate_args: Any = None) -> None:
        (self.scale,) = broadcast_all(scale)
        self.base_dist = Normal(0.0, self.scale, validate_args=False)
        super().__init__(self.scale.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self) -> Tensor:
        return self.scale.detach() * 0.0

    @property
    def variance(self) -> Tensor:
        return self.scale**2 * (1 - 2 / math.pi)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return ops.abs(self.base_dist.rsample(sample_shape))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        lp = self.base_dist.log_prob(v) + math.log(2)
        return ops.where(v.detach() >= 0, lp, float("-inf"))

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        return 2 * self.base_dist.cdf(v) - 1

    def icdf(self, value: Any) -> Tensor:
        return self.base_dist.icdf((_param(value, self.scale) + 1) / 2)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() - math.log(2)


# ------------------------------------------------------------------------------------------ gamma family
def standard_gamma(alpha: Tensor) -> Tensor:
    """Draws x ~ Gamma(alpha, 1), one per element of ``alpha``, differentiable in ``alpha`` through the
    implicit reparameterisation gradient (held at a fixed quantile). Drawn on the host."""
    a = np.asarray(alpha.detach().cpu().numpy(), np.float64)  # host: NumPy's gamma sampler draws on the host
    draw = backend.rng().standard_gamma(a)
    draw = np.maximum(draw, _tiny(alpha.dtype))
    out = host_draw(draw, alpha)
    return record_op(out.array, (alpha,), _standard_gamma_vjp)


def _standard_gamma_array(alpha: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """standard_gamma's draw, held off zero, on a host array broadcast to ``shape`` (its steps)."""
    draw = draw_per_element(backend.rng().standard_gamma, alpha, shape)
    return np.maximum(draw, _tiny(alpha.dtype)).astype(alpha.dtype, copy=False)


def _gamma_draw(c: np.ndarray, r: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Gamma.rsample's value on host arrays of one dtype: its tensor ops' steps, so the same numbers."""
    with np.errstate(all="ignore"):
        return np.asarray(_standard_gamma_array(c, shape) / r).clip(_tiny(c.dtype), math.inf)


def _standard_gamma_vjp(g, y, args, saved, needs, xp):
    alpha = args[0]
    a = np.asarray(backend_to_host(xp.data(alpha)), np.float64)  # host: the implicit gradient is computed there
    x = np.asarray(backend_to_host(xp.data(y)), np.float64)
    grad_arr = host_draw(standard_gamma_grad(a, x), Tensor(xp.data(y))).array
    return (g * xp.constant(grad_arr),)


def backend_to_host(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.asarray(a.get())  # host: CuPy array to the host


class Gamma(Distribution):
    """The gamma distribution with ``concentration`` (shape) and ``rate`` (mean concentration / rate);
    ``rsample`` differentiates through the draw's implicit gradient.

    Example:
        >>> import downslope as ds
        >>> round(float(Gamma(2.0, 3.0).log_prob(ds.tensor(1.0))), 4)
        -0.8028
    """

    has_rsample = True
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, concentration: Any, rate: Any, validate_args: Any = None) -> None:
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ops.clamp((self.concentration - 1) / self.rate, min=0.0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate**2

    def sample(self, sample_shape: Any = ()) -> Tensor:
        c, r = self.concentration, self.rate
        # (a subclass's own rsample is what its sample must draw from)
        if host_floats(c, r) and type(self).rsample is Gamma.rsample:
            return constant(_gamma_draw(c.array, r.array, self._extended(sample_shape)))
        return super().sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        c, r = self.concentration, self.rate
        if no_graph(c, r) and host_floats(c, r):
            return constant(_gamma_draw(c.array, r.array, shape))
        draw = standard_gamma(ops.broadcast_to(c, shape)) / ops.broadcast_to(r, shape)
        return ops.clamp(draw, min=_tiny(draw.dtype))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.rate)
        c, r = self.concentration, self.rate
        if untracked_host(c, r, v):
            a, b, x = c.array, r.array, v.array
            with np.errstate(all="ignore"):
                out = xlogy_array(a, b) + xlogy_array(a - 1, x) - b * x - lgamma_array(a)
            return constant(out)
        return ops.xlogy(c, r) + ops.xlogy(c - 1, v) - r * v - lgamma(c)

    def cdf(self, value: Any) -> Tensor:
        """P(concentration, rate * value), the regularized lower incomplete gamma function (as in
        PyTorch, differentiable in ``rate`` and the value, not in ``concentration``)."""
        from ..ops.special import igamma

        v = self._value(value, self.rate)
        return igamma(self.concentration, v * self.rate)

    def entropy(self) -> Tensor:
        c = self.concentration
        return c - ops.log(self.rate) + lgamma(c) + (1.0 - c) * digamma(c)


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``.

    Example:
        >>> import downslope as ds
        >>> d = Chi2(ds.tensor(3.0))
        >>> round(float(d.log_prob(ds.tensor(2.0))), 4), round(float(d.cdf(ds.tensor(2.0))), 4)
        (-1.5724, 0.4276)
    """

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df: Any, validate_args: Any = None) -> None:
        (df_t,) = broadcast_all(df)
        super().__init__(0.5 * df_t, _full(df_t, 0.5), validate_args)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, ``loc`` and ``scale``.

    Example:
        >>> import downslope as ds
        >>> round(float(StudentT(3.0).log_prob(ds.tensor(0.0))), 4)
        -1.0009
    """

    has_rsample = True
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, df: Any, loc: Any = 0.0, scale: Any = 1.0, validate_args: Any = None) -> None:
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, (), validate_args)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def mean(self) -> Tensor:
        return ops.where(self.df.detach() > 1, self.loc, float("nan"))

    @property
    def variance(self) -> Tensor:
        df = self.df.detach()
        finite = self.scale**2 * self.df / ops.where(df > 2, self.df - 2, 1.0)
        return ops.where(df > 2, finite, ops.where(df > 1, float("inf"), float("nan")))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        df, loc, scale = self.df, self.loc, self.scale
        if host_floats(df, loc, scale) and type(self).rsample is StudentT.rsample:
            return constant(_student_t_draw(df.array, loc.array, scale.array, self._extended(sample_shape)))
        return super().sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        df, loc, scale = self.df, self.loc, self.scale
        if no_graph(df, loc, scale) and host_floats(df, loc, scale):
            return constant(_student_t_draw(df.array, loc.array, scale.array, shape))
        x = standard_normal(shape, self.df)
        half = ops.broadcast_to(0.5 * self.df, shape)
        chi2 = ops.clamp(standard_gamma(half) * 2, min=_tiny(self.df.dtype))
        return self.loc + self.scale * x * ops.rsqrt(chi2 / self.df)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        if untracked_host(self.df, self.loc, self.scale, v):
            df, loc, scale = self.df.array, self.loc.array, self.scale.array
            with np.errstate(all="ignore"):
                y_ = (v.array - loc) / scale
                z_ = (
                    np.log(scale)
                    + 0.5 * np.log(df)
                    + 0.5 * math.log(math.pi)
                    + lgamma_array(0.5 * df)
                    - lgamma_array(0.5 * (df + 1.0))
                )
                out = -0.5 * (df + 1.0) * np.log1p(y_**2 / df) - z_
            return constant(out)
        y = (v - self.loc) / self.scale
        z = (
            ops.log(self.scale)
            + 0.5 * ops.log(self.df)
            + 0.5 * math.log(math.pi)
            + lgamma(0.5 * self.df)
            - lgamma(0.5 * (self.df + 1.0))
        )
        return -0.5 * (self.df + 1.0) * ops.log1p(y**2 / self.df) - z

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = lgamma(0.5 * df) + math.lgamma(0.5) - lgamma(0.5 * (df + 1))
        return (
            ops.log(self.scale)
            + 0.5 * (df + 1) * (digamma(0.5 * (df + 1)) - digamma(0.5 * df))
            + 0.5 * ops.log(df)
            + lbeta
        )


def _student_t_draw(df: np.ndarray, loc: np.ndarray, scale: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """StudentT.rsample's value on host arrays of one dtype: its tensor ops' steps (the normal draw,
    then the gamma draw, from the library generator), so the same numbers."""
    dtype = df.dtype
    x = backend.rng().standard_normal(shape, dtype=np.float64).astype(dtype)
    with np.errstate(all="ignore"):
        chi2 = np.asarray(_standard_gamma_array(0.5 * df, shape) * 2).clip(_tiny(dtype), math.inf)
        return loc + scale * x * (1 / np.sqrt(chi2 / df))


class Dirichlet(Distribution):
    """The Dirichlet distribution over the simplex of the last dimension of ``concentration``.

    Example:
        >>> import downslope as ds
        >>> round(float(Dirichlet(ds.tensor([1.0, 2.0, 3.0])).log_prob(ds.tensor([0.2, 0.3, 0.5]))), 4)
        1.5041
    """

    has_rsample = True
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex

    def __init__(self, concentration: Any, validate_args: Any = None) -> None:
        c = _param(concentration)
        if c.ndim < 1:
            raise ArgumentError("Dirichlet: concentration must have at least one dimension")
        self.concentration = c
        super().__init__(c.shape[:-1], c.shape[-1:], validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / ops.sum(self.concentration, axis=-1, keepdims=True)

    @property
    def mode(self) -> Tensor:
        cm1 = ops.clamp(self.concentration - 1, min=0.0)
        mode = cm1 / ops.sum(cm1, axis=-1, keepdims=True)
        all_below = ops.all(self.concentration.detach() < 1, -1, True)
        corner = ops.astype(_one_hot_argmax(mode.detach()), mode.dtype)
        return ops.where(all_below, corner, mode)

    @property
    def variance(self) -> Tensor:
        c0 = ops.sum(self.concentration, axis=-1, keepdims=True)
        return self.concentration * (c0 - self.concentration) / (c0**2 * (c0 + 1))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        c = self.concentration
        if host_floats(c) and type(self).rsample is Dirichlet.rsample:
            return constant(_dirichlet_draw(c.array, self._extended(sample_shape)))
        return super().sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        c = self.concentration
        if no_graph(c) and host_floats(c):
            return constant(_dirichlet_draw(c.array, self._extended(sample_shape)))
        return sample_dirichlet(ops.broadcast_to(c, self._extended(sample_shape)))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.concentration)
        c = self.concentration
        if untracked_host(c, v):
            return constant(_dirichlet_log_prob(c.array, v.array))
        return ops.sum(ops.xlogy(c - 1.0, v), axis=-1) + lgamma(ops.sum(c, axis=-1)) - ops.sum(lgamma(c), axis=-1)

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        a0 = ops.sum(c, axis=-1)
        return (
            ops.sum(lgamma(c), axis=-1) - lgamma(a0) - (k - a0) * digamma(a0) - ops.sum((c - 1.0) * digamma(c), axis=-1)
        )


def _dirichlet_log_prob(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Dirichlet.log_prob's value on host arrays of one dtype (its tensor ops' steps)."""
    with np.errstate(all="ignore"):
        return _sum_last(xlogy_array(c - 1.0, v)) + lgamma_array(_sum_last(c)) - _sum_last(lgamma_array(c))


def sample_dirichlet(concentration: Tensor) -> Tensor:
    """Draws x ~ Dirichlet(concentration) over the last dim (normalised gamma draws, clamped into
    [tiny, 1 - eps]), differentiable in ``concentration`` through torch's implicit reparameterisation
    gradient (``_Dirichlet.backward``): each component's exact d x_i / d alpha at the draw's fixed CDF
    value, not the derivative of the gamma ratio, which has the same mean but a larger variance. Drawn
    on the host."""
    a = concentration.array
    if type(a) is not np.ndarray:
        a = np.asarray(concentration.detach().cpu().numpy())  # host: NumPy's gamma sampler draws on the host
    out = host_draw(_dirichlet_draw(a, a.shape), concentration)
    return record_op(out.array, (concentration,), _sample_dirichlet_vjp)


def _dirichlet_draw(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A Dirichlet draw for the host concentrations ``a`` broadcast to ``shape``, in ``a``'s dtype."""
    dtype = a.dtype
    g = draw_per_element(backend.rng().standard_gamma, a, shape)
    g = np.maximum(g, _tiny(dtype)).astype(dtype, copy=False)
    return np.clip(g / g.sum(axis=-1, keepdims=True), _tiny(dtype), 1 - _eps(dtype))


def _sample_dirichlet_vjp(g, y, args, saved, needs, xp):
    alpha = np.asarray(backend_to_host(xp.data(args[0])), np.float64)  # host: the implicit gradient is computed there
    x = np.asarray(backend_to_host(xp.data(y)), np.float64)  # host: as above
    grad = dirichlet_grad(x, alpha, np.broadcast_to(alpha.sum(axis=-1, keepdims=True), alpha.shape))
    grad = host_draw(grad, Tensor(xp.data(y))).array
    # torch's rule: d x_j / d alpha_i = grad_i (delta_ij - x_j), contracted with the incoming g
    # (the draw is a constant here: torch's rule is not differentiated again either)
    return (xp.constant(grad) * (g - (xp.constant(xp.data(y)) * g).sum(axis=-1, keepdims=True)),)


def _one_hot_argmax(t: Tensor) -> Tensor:
    idx = ops.argmax(t, -1)
    k = t.shape[-1]
    from ..tensor import arange

    return ops.unsqueeze(idx, -1) == arange(k, device=t.device)


class Beta(Distribution):
    """The beta distribution on [0, 1] with ``concentration1`` (alpha) and ``concentration0`` (beta),
    built on a two-class :class:`Dirichlet` as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> round(float(Beta(2.0, 3.0).log_prob(ds.tensor(0.5))), 4)
        0.4055
    """

    has_rsample = True
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval

    def __init__(self, concentration1: Any, concentration0: Any, validate_args: Any = None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(ops.stack([self.concentration1, self.concentration0], -1), validate_args=False)
        super().__init__(self.concentration1.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total**2 * (total + 1))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        c = self._dirichlet.concentration
        if host_floats(c) and type(self).rsample is Beta.rsample:
            return constant(_dirichlet_draw(c.array, self._extended(sample_shape) + (2,))[..., 0])
        return super().sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self._dirichlet.rsample(sample_shape)[..., 0]

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.concentration1)
        c = self._dirichlet.concentration
        if untracked_host(c, v):
            x = v.array
            with np.errstate(all="ignore"):
                pair = np.stack(np.broadcast_arrays(x, 1.0 - x), -1)
            return constant(_dirichlet_log_prob(c.array, pair))
        return self._dirichlet.log_prob(ops.stack([v, 1.0 - v], -1))

    def entropy(self) -> Tensor:
        return self._dirichlet.entropy()
