"""More of torch.distributions' families: HalfCauchy, VonMises, Kumaraswamy, FisherSnedecor,
ContinuousBernoulli, InverseGamma, LogisticNormal, GeneralizedPareto, LKJCholesky,
OneHotCategoricalStraightThrough and the ExponentialFamily base (entropy and KL through the log
normalizer's gradient). Formulas, shapes and constraints follow torch's; draws come from the
library's generator (same distributions, other numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..autograd import enable_grad, grad, no_grad
from ..errors import ArgumentError
from ..special import i0e, i1e
from ..tensor import Tensor, arange, full_like, ones_like, zeros_like
from . import constraints
from ._special import digamma, lgamma
from .continuous import Beta, Cauchy, Gamma, Normal, Uniform, standard_normal
from .discrete import OneHotCategorical, _probs_or_logits
from .distribution import (
    EULER_GAMMA,
    Distribution,
    _param,
    _shape,
    _tiny,
    bce_with_logits,
    broadcast_all,
    clamp_probs,
    host_draw,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
    uniform,
)
from .transforms import (
    AbsTransform,
    AffineTransform,
    PowerTransform,
    StickBreakingTransform,
    TransformedDistribution,
)

__all__ = [
    "ContinuousBernoulli",
    "ExponentialFamily",
    "FisherSnedecor",
    "GeneralizedPareto",
    "HalfCauchy",
    "InverseGamma",
    "Kumaraswamy",
    "LKJCholesky",
    "LogisticNormal",
    "OneHotCategoricalStraightThrough",
    "VonMises",
]


class ExponentialFamily(Distribution):
    """The base of exponential-family distributions p(x; theta) = exp(<t(x), theta> - F(theta) + k(x)):
    a subclass gives ``_natural_params`` (theta), ``_log_normalizer`` (F) and
    ``_mean_carrier_measure`` (E[k(x)]), and gets ``entropy`` (and KL between two of the same type)
    from F's gradient, as torch's.

    Example:
        >>> import downslope as ds
        >>> round(float(ContinuousBernoulli(probs=ds.tensor(0.3)).entropy()), 4)
        -0.0294
    """

    @property
    def _natural_params(self) -> tuple[Tensor, ...]:
        raise NotImplementedError(f"{type(self).__name__} has no _natural_params")

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no _log_normalizer")

    @property
    def _mean_carrier_measure(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no _mean_carrier_measure")

    def _log_normalizer_and_grads(self) -> tuple[list[Tensor], Tensor, Any]:
        """theta (detached leaves), F(theta) and grad F(theta), differentiable (create_graph)."""
        with enable_grad():
            nparams = [p.detach().requires_grad_() for p in self._natural_params]
            lg_normal = self._log_normalizer(*nparams)
            gradients = grad(lg_normal.sum(), nparams, create_graph=True)
        return nparams, lg_normal, gradients

    def entropy(self) -> Tensor:
        """-E[k(x)] + F(theta) - <theta, grad F(theta)> (the Bregman form), differentiable."""
        nparams, lg_normal, gradients = self._log_normalizer_and_grads()
        result: Any = -self._mean_carrier_measure + lg_normal
        for p, g in zip(nparams, gradients):
            assert g is not None
            result = result - ops.sum(ops.reshape(p * g, self.batch_shape + (-1,)), axis=-1)
        return result


# ------------------------------------------------------------------------------------- HalfCauchy
class HalfCauchy(TransformedDistribution):
    """|X| for X ~ Cauchy(0, scale), on [0, inf).

    Example:
        >>> import downslope as ds
        >>> round(float(HalfCauchy(1.0).log_prob(ds.tensor(1.0))), 4)
        -1.1447
    """

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, scale: Any, validate_args: Any = None) -> None:
        (scale_t,) = broadcast_all(scale)
        super().__init__(Cauchy(0.0, scale_t, validate_args=False), AbsTransform(), validate_args=validate_args)

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale  # type: ignore[attr-defined]

    @property
    def mean(self) -> Tensor:
        return full_like(self.scale.detach(), math.inf)

    @property
    def mode(self) -> Tensor:
        return zeros_like(self.scale.detach())

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        lp = self.base_dist.log_prob(v) + math.log(2)
        return ops.where(v.detach() >= 0, lp, -math.inf)

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self.scale)
        return 2 * self.base_dist.cdf(v) - 1

    def icdf(self, value: Any) -> Tensor:
        return self.base_dist.icdf((_param(value, self.scale) + 1) / 2)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() - math.log(2)


# --------------------------------------------------------------------------------------- VonMises
def _log_i0(x: Tensor) -> Tensor:
    """log I0(x) = log(i0e(x)) + |x|, exact where the exponent would overflow."""
    return ops.log(i0e(x)) + ops.abs(x)


class VonMises(Distribution):
    """The von Mises (circular normal) distribution on angles, with ``loc`` and ``concentration``;
    ``sample`` uses torch's rejection algorithm (Best and Fisher) in float64, ``log_prob`` the exact
    log Bessel I0 (torch's polynomial approximation of it agrees to about 1e-7).

    Example:
        >>> import downslope as ds
        >>> round(float(VonMises(0.0, 1.0).log_prob(ds.tensor(0.0))), 4)
        -1.0738
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc: Any, concentration: Any, validate_args: Any = None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        return self.concentration * ops.cos(v - self.loc) - math.log(2 * math.pi) - _log_i0(self.concentration)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return 1 - i1e(k) / i0e(k)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        with no_grad():
            kappa = np.broadcast_to(constraints._host(self.concentration).astype(np.float64), shape)  # host: sampler
            loc = np.broadcast_to(constraints._host(self.loc).astype(np.float64), shape)  # host: sampler
            with np.errstate(all="ignore"):
                tau = 1 + np.sqrt(1 + 4 * kappa**2)
                rho = (tau - np.sqrt(2 * tau)) / (2 * kappa)
                r = np.where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho**2) / (2 * rho))
            x = np.zeros(shape)  # host: sampler
            done = np.zeros(shape, dtype=bool)  # host: sampler
            rng = backend.rng()
            while not done.all():
                u1, u2, u3 = rng.random((3,) + tuple(shape))
                z = np.cos(math.pi * u1)
                with np.errstate(all="ignore"):
                    f = (1 + r * z) / (r + z)
                    c = kappa * (r - f)
                    accept = ((c * (2 - c) - u2) > 0) | (np.log(c / u2) + 1 - c >= 0)
                accept &= ~done
                x = np.where(accept, np.sign(u3 - 0.5) * np.arccos(np.clip(f, -1, 1)), x)
                done |= accept
            return host_draw((x + math.pi + loc) % (2 * math.pi) - math.pi, self.loc)


# ------------------------------------------------------------------------------------ Kumaraswamy
def _moments(a: Tensor, b: Tensor, n: int) -> Tensor:
    """E[X^n] of Kumaraswamy(a, b) = b B(1 + n/a, b)."""
    arg1 = 1 + n / a
    return b * ops.exp(lgamma(arg1) + lgamma(b) - lgamma(arg1 + b))


class Kumaraswamy(TransformedDistribution):
    """The Kumaraswamy distribution on (0, 1): ``(1 - U ** (1 / concentration0)) ** (1 / concentration1)``
    for U ~ Uniform(0, 1), reparameterised.

    Example:
        >>> import downslope as ds
        >>> round(float(Kumaraswamy(2.0, 3.0).log_prob(ds.tensor(0.5))), 4)
        0.5232
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval

    def __init__(self, concentration1: Any, concentration0: Any, validate_args: Any = None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        c0 = self.concentration0
        base = Uniform(zeros_like(c0.detach()), ones_like(c0.detach()), validate_args=validate_args)
        transforms = [
            PowerTransform(exponent=1 / self.concentration0),
            AffineTransform(loc=1.0, scale=-1.0),
            PowerTransform(exponent=1 / self.concentration1),
        ]
        super().__init__(base, transforms, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        # the concentrations are the instance's own (not the base's): broadcast them with the batch,
        # or mean, variance, mode and entropy would keep the old batch shape
        new = object.__new__(type(self)) if _instance is None else _instance
        batch = _shape(batch_shape)
        new.concentration1 = ops.broadcast_to(self.concentration1, batch)
        new.concentration0 = ops.broadcast_to(self.concentration0, batch)
        return super().expand(batch_shape, _instance=new)

    @property
    def mean(self) -> Tensor:
        return _moments(self.concentration1, self.concentration0, 1)

    @property
    def mode(self) -> Tensor:
        c1, c0 = self.concentration1, self.concentration0
        log_mode = (1 / c0) * ops.log1p(-c0) - ops.log1p(-c0 * c1)
        bad = (c0.detach() < 1) | (c1.detach() < 1)
        return ops.exp(ops.where(bad, math.nan, log_mode))

    @property
    def variance(self) -> Tensor:
        return _moments(self.concentration1, self.concentration0, 2) - self.mean**2

    def entropy(self) -> Tensor:
        c1, c0 = self.concentration1, self.concentration0
        t1, t0 = 1 - 1 / c1, 1 - 1 / c0
        h0 = digamma(c0 + 1) + EULER_GAMMA
        return t0 + t1 * h0 - ops.log(c1) - ops.log(c0)


# --------------------------------------------------------------------------------- FisherSnedecor
class FisherSnedecor(Distribution):
    """Fisher's F distribution with ``df1`` and ``df2`` degrees of freedom (a ratio of two scaled
    gammas, reparameterised).

    Example:
        >>> import downslope as ds
        >>> round(float(FisherSnedecor(3.0, 5.0).log_prob(ds.tensor(1.0))), 4)
        -1.0184
    """

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1: Any, df2: Any, validate_args: Any = None) -> None:
        self.df1, self.df2 = broadcast_all(df1, df2)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1, validate_args=False)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2, validate_args=False)
        super().__init__(self.df1.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        df2 = ops.where(self.df2.detach() <= 2, math.nan, self.df2)
        return df2 / (df2 - 2)

    @property
    def mode(self) -> Tensor:
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return ops.where(self.df1.detach() <= 2, math.nan, mode)

    @property
    def variance(self) -> Tensor:
        df2 = ops.where(self.df2.detach() <= 4, math.nan, self.df2)
        return 2 * df2**2 * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2) ** 2 * (df2 - 4))

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        tiny = _tiny(self.df1.dtype)
        x1 = self._gamma1.rsample(sample_shape)
        x2 = ops.clamp(self._gamma2.rsample(sample_shape), min=tiny)
        return ops.clamp(x1 / x2, min=tiny)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.df1)
        ct1, ct2, ct3 = self.df1 * 0.5, self.df2 * 0.5, self.df1 / self.df2
        t1 = lgamma(ct1 + ct2) - lgamma(ct1) - lgamma(ct2)
        t2 = ct1 * ops.log(ct3) + (ct1 - 1) * ops.log(v)
        t3 = (ct1 + ct2) * ops.log1p(ct3 * v)
        return t1 + t2 - t3


# ---------------------------------------------------------------------------- ContinuousBernoulli
class ContinuousBernoulli(ExponentialFamily):
    """The continuous Bernoulli distribution on [0, 1] (Loaiza-Ganem and Cunningham) with ``probs`` or
    ``logits``; near probs = 1/2 (inside ``lims``) it uses torch's Taylor expansions.

    Example:
        >>> import downslope as ds
        >>> round(float(ContinuousBernoulli(probs=ds.tensor(0.3)).log_prob(ds.tensor(0.2))), 4)
        0.2245
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(
        self,
        probs: Any = None,
        logits: Any = None,
        lims: tuple[float, float] = (0.499, 0.501),
        validate_args: Any = None,
    ) -> None:
        p, lg = _probs_or_logits(probs, logits, "ContinuousBernoulli")
        if p is not None:
            (pt,) = broadcast_all(p)
            if validate_args is not None and not bool(constraints._host(constraints.unit_interval.check(pt)).all()):
                raise ArgumentError("ContinuousBernoulli: the parameter probs has invalid values")  # host: validating
            self.probs = clamp_probs(pt)
            self._param = self.probs
        else:
            (self.logits,) = broadcast_all(lg)
            self._param = self.logits
        self._lims = lims
        super().__init__(self._param.shape, (), validate_args)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(self._param.shape)

    def _outside_unstable_region(self) -> Tensor:
        p = self.probs.detach()
        return (p <= self._lims[0]) | (p > self._lims[1])

    def _cut_probs(self) -> Tensor:
        return ops.where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _cont_bern_log_norm(self) -> Tensor:
        cut = self._cut_probs()
        below = ops.where(cut.detach() <= 0.5, cut, 0.0)
        above = ops.where(cut.detach() >= 0.5, cut, 1.0)
        log_norm = ops.log(ops.abs(ops.log1p(-cut) - ops.log(cut))) - ops.where(
            cut.detach() <= 0.5, ops.log1p(-2.0 * below), ops.log(2.0 * above - 1.0)
        )
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return ops.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self) -> Tensor:
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / (ops.log1p(-cut) - ops.log(cut))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x**2) * x
        return ops.where(self._outside_unstable_region(), mus, taylor)

    @property
    def variance(self) -> Tensor:
        cut = self._cut_probs()
        var = cut * (cut - 1.0) / (1.0 - 2.0 * cut) ** 2 + 1.0 / (ops.log1p(-cut) - ops.log(cut)) ** 2
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return ops.where(self._outside_unstable_region(), var, taylor)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.icdf(uniform(self._extended(sample_shape), self.probs))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self._param)
        logits, v = broadcast_all(self.logits, v)
        return -bce_with_logits(logits, v) + self._cont_bern_log_norm()

    def cdf(self, value: Any) -> Tensor:
        v = self._value(value, self._param)
        cut = self._cut_probs()
        cdfs = (cut**v * (1.0 - cut) ** (1.0 - v) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = ops.where(self._outside_unstable_region(), cdfs, v)
        return ops.where(v.detach() <= 0.0, 0.0, ops.where(v.detach() >= 1.0, 1.0, unbounded))

    def icdf(self, value: Any) -> Tensor:
        v = _param(value, self._param)
        cut = self._cut_probs()
        inside = (ops.log1p(-cut + v * (2.0 * cut - 1.0)) - ops.log1p(-cut)) / (ops.log(cut) - ops.log1p(-cut))
        return ops.where(self._outside_unstable_region(), inside, v)

    def entropy(self) -> Tensor:
        log_probs0, log_probs1 = ops.log1p(-self.probs), ops.log(self.probs)
        return self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm() - log_probs0

    @property
    def _natural_params(self) -> tuple[Tensor, ...]:
        return (self.logits,)

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        (x,) = natural_params
        lo, hi = self._lims[0] - 0.5, self._lims[1] - 0.5
        outside = (x.detach() <= lo) | (x.detach() > hi)
        cut = ops.where(outside, x, lo)
        log_norm = ops.log(ops.abs(ops.expm1(cut))) - ops.log(ops.abs(cut))
        taylor = 0.5 * x + x**2 / 24.0 - x**4 / 2880.0
        return ops.where(outside, log_norm, taylor)


# ----------------------------------------------------------------------------------- InverseGamma
class InverseGamma(TransformedDistribution):
    """1 / X for X ~ Gamma(concentration, rate).

    Example:
        >>> import downslope as ds
        >>> round(float(InverseGamma(2.0, 3.0).log_prob(ds.tensor(1.0))), 4)
        -0.8028
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive

    def __init__(self, concentration: Any, rate: Any, validate_args: Any = None) -> None:
        base = Gamma(concentration, rate, validate_args=validate_args)
        super().__init__(base, PowerTransform(_param(-1.0, base.rate)), validate_args=validate_args)

    @property
    def concentration(self) -> Tensor:
        return self.base_dist.concentration  # type: ignore[attr-defined]

    @property
    def rate(self) -> Tensor:
        return self.base_dist.rate  # type: ignore[attr-defined]

    @property
    def mean(self) -> Tensor:
        result = self.rate / (self.concentration - 1)
        return ops.where(self.concentration.detach() > 1, result, math.inf)

    @property
    def mode(self) -> Tensor:
        return self.rate / (self.concentration + 1)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        result = self.rate**2 / ((c - 1) ** 2 * (c - 2))
        return ops.where(c.detach() > 2, result, math.inf)

    def entropy(self) -> Tensor:
        c = self.concentration
        return c + ops.log(self.rate) + lgamma(c) - (1 + c) * digamma(c)


# --------------------------------------------------------------------------------- LogisticNormal
class LogisticNormal(TransformedDistribution):
    """A Normal over K - 1 reals pushed onto the K-simplex by stick-breaking.

    Example:
        >>> import downslope as ds
        >>> d = LogisticNormal(ds.zeros(2), ds.ones(2))
        >>> d.event_shape, round(float(d.log_prob(ds.tensor([0.2, 0.3, 0.5]))), 4)
        (downslope.Size([3]), 1.298)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None) -> None:
        base: Distribution = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand((1,))
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.base_dist.loc  # type: ignore[attr-defined]

    @property
    def scale(self) -> Tensor:
        return self.base_dist.base_dist.scale  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ GeneralizedPareto
class GeneralizedPareto(Distribution):
    """The generalized Pareto distribution with ``loc``, ``scale`` and ``concentration`` (shape xi):
    exponential at xi = 0, bounded above at loc - scale / xi for xi < 0.

    Example:
        >>> import downslope as ds
        >>> round(float(GeneralizedPareto(0.0, 1.0, 0.5).log_prob(ds.tensor(1.0))), 4)
        -1.2164
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, concentration: Any, validate_args: Any = None) -> None:
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, (), validate_args)

    @constraints.dependent_property
    def support(self) -> Any:
        c = self.concentration.detach()
        upper = ops.where(c < 0, self.loc.detach() - self.scale.detach() / c, math.inf)
        return constraints.interval(self.loc.detach(), upper)

    def _eq_zero(self) -> Tensor:
        return ops.abs(self.concentration.detach()) <= 1e-8  # torch.isclose(c, 0)'s tolerance

    def _safe_conc(self) -> Tensor:
        return ops.where(self._eq_zero(), 1.0, self.concentration)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.icdf(uniform(self._extended(sample_shape), self.loc))

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        z = (v - self.loc) / self.scale
        safe = self._safe_conc()
        y = 1 / safe + 1.0
        where_nonzero = ops.where(y.detach() == 0, y, y * ops.log1p(safe * z))
        return -ops.log(self.scale) - ops.where(self._eq_zero(), z, where_nonzero)

    def log_survival_function(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        z = (v - self.loc) / self.scale
        safe = self._safe_conc()
        return ops.where(self._eq_zero(), -z, -ops.log1p(safe * z) / safe)

    def log_cdf(self, value: Any) -> Tensor:
        return ops.log1p(-ops.exp(self.log_survival_function(value)))

    def cdf(self, value: Any) -> Tensor:
        return ops.exp(self.log_cdf(value))

    def icdf(self, value: Any) -> Tensor:
        v = _param(value, self.loc)
        safe = self._safe_conc()
        logu = ops.log1p(-v)
        where_nonzero = self.loc + self.scale / safe * ops.expm1(-safe * logu)
        return ops.where(self._eq_zero(), self.loc - self.scale * logu, where_nonzero)

    @property
    def mean(self) -> Tensor:
        valid = self.concentration.detach() < 1
        safe = ops.where(valid, self.concentration, 0.5)
        return ops.where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self) -> Tensor:
        valid = self.concentration.detach() < 0.5
        safe = ops.where(valid, self.concentration, 0.25)
        return ops.where(valid, self.scale**2 / ((1 - safe) ** 2 * (1 - 2 * safe)), math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def entropy(self) -> Tensor:
        return ops.broadcast_to(ops.log(self.scale) + self.concentration + 1, self.batch_shape)


# ----------------------------------------------------------------------------------- LKJCholesky
class LKJCholesky(Distribution):
    """The LKJ distribution over Cholesky factors of ``dim`` x ``dim`` correlation matrices, with
    ``concentration`` (eta); sampled by torch's onion method.

    Example:
        >>> import downslope as ds
        >>> d = LKJCholesky(3, 0.5)
        >>> d.event_shape, round(float(d.log_prob(ds.eye(3))), 4)
        (downslope.Size([3, 3]), -2.531)
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration: Any = 1.0, validate_args: Any = None) -> None:
        if int(dim) < 2:
            raise ArgumentError(f"LKJCholesky: expected dim to be an integer >= 2, got dim={dim}")
        self.dim = int(dim)
        (self.concentration,) = broadcast_all(concentration)
        c = self.concentration
        marginal_conc = c + 0.5 * (self.dim - 2)
        offset = ops.cat([arange(1, dtype=c.dtype) * 0, arange(self.dim - 1, dtype=c.dtype)], 0).to(c.device)
        beta_conc1 = offset + 0.5
        beta_conc0 = ops.unsqueeze(marginal_conc, -1) - 0.5 * offset
        self._beta = Beta(ops.broadcast_to(beta_conc1, beta_conc0.shape), beta_conc0, validate_args=False)
        super().__init__(c.shape, (self.dim, self.dim), validate_args)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            y = ops.unsqueeze(self._beta.sample(sample_shape), -1)
            u_normal = ops.tril(standard_normal(self._extended(sample_shape), y), -1)
            norm = ops.sqrt(ops.sum(u_normal * u_normal, axis=-1, keepdims=True))
            u_hypersphere = u_normal / ops.where(norm == 0, 1.0, norm)  # row 0 is all zeros
            w = ops.sqrt(y) * u_hypersphere
            diag = ops.sqrt(ops.clamp(1 - ops.sum(w**2, axis=-1), min=_tiny(w.dtype)))
            return w + ops.diag_embed(diag)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.concentration)
        diag_elems = ops.diagonal(v, dim1=-1, dim2=-2)[..., 1:]
        order = arange(2, self.dim + 1, dtype=v.dtype).to(v.device)
        order = 2 * ops.unsqueeze(self.concentration - 1, -1) + self.dim - order
        unnormalized = ops.sum(order * ops.log(diag_elems), axis=-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        normalize = 0.5 * dm1 * math.log(math.pi) + ops.mvlgamma(alpha - 0.5, dm1) - lgamma(alpha) * dm1
        return unnormalized - normalize


# ------------------------------------------------------------------ OneHotCategoricalStraightThrough
class OneHotCategoricalStraightThrough(OneHotCategorical):
    """A :class:`OneHotCategorical` whose ``rsample`` passes gradients straight through: the one-hot
    draw plus ``probs - probs.detach()``.

    Example:
        >>> import downslope as ds
        >>> logits = ds.tensor([0.0, 1.0], requires_grad=True)
        >>> OneHotCategoricalStraightThrough(logits=logits).rsample().sum().item()
        1.0
    """

    has_rsample = True

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self.probs
        return samples + (probs - probs.detach())
