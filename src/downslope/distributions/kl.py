"""KL(p || q) between two distributions, PyTorch's formulas, with ``register_kl`` for more pairs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor, zeros_like
from ._special import digamma, lgamma
from .compose import Independent
from .continuous import Beta, Cauchy, Dirichlet, Exponential, Gamma, Gumbel, HalfNormal, Laplace, Normal, Uniform
from .discrete import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson
from .distribution import EULER_GAMMA, Distribution, sum_rightmost
from .families import Pareto
from .lowrank_multivariate_normal import (
    LowRankMultivariateNormal,
    _batch_lowrank_mahalanobis,
    _batch_trace_xxt,
)
from .more import ContinuousBernoulli, ExponentialFamily
from .multivariate_normal import MultivariateNormal, _batch_mahalanobis, _solve_lower
from .transforms import LogNormal, TransformedDistribution

__all__ = ["KLNotImplementedError", "kl_divergence", "register_kl"]


class KLNotImplementedError(ArgumentTypeError, NotImplementedError):
    """No KL formula is registered for the pair: a NotImplementedError, as torch's, so fallbacks that
    catch it (a Monte Carlo estimate) work; still the TypeError it was before, for older callers."""


_KL_REGISTRY: dict[tuple[type, type], Callable[[Any, Any], Tensor]] = {}


def register_kl(type_p: type, type_q: type) -> Callable[[Callable[[Any, Any], Tensor]], Callable[[Any, Any], Tensor]]:
    """A decorator registering ``fn(p, q)`` as KL(p || q) for instances of the two types (and their
    subclasses; the most specific registration wins)."""

    def decorator(fn: Callable[[Any, Any], Tensor]) -> Callable[[Any, Any], Tensor]:
        _KL_REGISTRY[type_p, type_q] = fn
        return fn

    return decorator


def _lookup(tp: type, tq: type) -> Callable[[Any, Any], Tensor] | None:
    best, rank = None, None
    for (a, b), fn in _KL_REGISTRY.items():
        if issubclass(tp, a) and issubclass(tq, b):
            r = (tp.__mro__.index(a), tq.__mro__.index(b))
            if rank is None or r < rank:
                best, rank = fn, r
    return best


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q), batched over the two distributions' batch shapes; raises NotImplementedError (as
    torch does) for a pair with no formula, naming the pairs that have one (``register_kl`` adds one).

    Example:
        >>> round(float(kl_divergence(Normal(0.0, 1.0), Normal(1.0, 2.0))), 4)
        0.4431
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        names = sorted({f"{a.__name__}-{b.__name__}" for a, b in _KL_REGISTRY})
        raise KLNotImplementedError(
            f"No KL(p || q) is implemented for p type {type(p).__name__} and q type {type(q).__name__}: "
            f"no formula registered (available: {', '.join(names)})"
        )
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Tensor:
    ratio = (p.scale / q.scale) ** 2
    shift = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (ratio + shift - 1 - ops.log(ratio))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p: LogNormal, q: LogNormal) -> Tensor:
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Tensor:
    terms = p.probs * (p.logits - q.logits)
    inf = zeros_like(terms.detach()) + float("inf")
    terms = ops.where(ops.broadcast_to(q.probs.detach() == 0, terms.shape), inf, terms)
    # where p is 0 the term is 0 (0 log 0)
    terms = ops.where(ops.broadcast_to(p.probs.detach() == 0, terms.shape), zeros_like(terms.detach()), terms)
    return ops.sum(terms, axis=-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    pp, qp = p.probs, q.probs
    t1 = pp * (ops.softplus(-q.logits) - ops.softplus(-p.logits))
    t1 = ops.where(ops.broadcast_to(qp.detach() == 0, t1.shape), float("inf"), t1)
    t1 = ops.where(ops.broadcast_to(pp.detach() == 0, t1.shape), 0.0, t1)
    t2 = (1 - pp) * (ops.softplus(q.logits) - ops.softplus(p.logits))
    t2 = ops.where(ops.broadcast_to(qp.detach() == 1, t2.shape), float("inf"), t2)
    t2 = ops.where(ops.broadcast_to(pp.detach() == 1, t2.shape), 0.0, t2)
    return t1 + t2


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise KLNotImplementedError(
            "kl_divergence: the two Independents reinterpret different numbers of dims "
            f"({p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims})"
        )
    return p._sum(kl_divergence(p.base_dist, q.base_dist))


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    if p.event_shape != q.event_shape:
        raise ArgumentError("kl_divergence: two MultivariateNormals of different event shapes")
    lp, lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    half_term1 = q._half_log_det() - p._half_log_det()
    n = p.event_shape[0]
    solved = _solve_lower(lq, lp)
    term2 = ops.sum(solved * solved, axis=(-2, -1))
    term3 = _batch_mahalanobis(lq, q.loc - p.loc)
    return half_term1 + 0.5 * (term2 + term3 - n)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Tensor:
    result = ops.log((q.high - q.low) / (p.high - p.low))
    outside = (q.low.detach() > p.low.detach()) | (q.high.detach() < p.high.detach())
    return ops.where(outside, float("inf"), result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Tensor:
    ratio = q.rate / p.rate
    return -ops.log(ratio) + ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p: Laplace, q: Laplace) -> Tensor:
    scale_ratio = p.scale / q.scale
    diff = ops.abs(p.loc - q.loc)
    return -ops.log(scale_ratio) + diff / q.scale + scale_ratio * ops.exp(-diff / p.scale) - 1


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Tensor:
    t1 = q.concentration * ops.log(p.rate / q.rate)
    t2 = lgamma(q.concentration) - lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Tensor:
    sp = p.concentration1 + p.concentration0
    sq = q.concentration1 + q.concentration0
    t1 = lgamma(q.concentration1) + lgamma(q.concentration0) + lgamma(sp)
    t2 = lgamma(p.concentration1) + lgamma(p.concentration0) + lgamma(sq)
    t3 = (p.concentration1 - q.concentration1) * digamma(p.concentration1)
    t4 = (p.concentration0 - q.concentration0) * digamma(p.concentration0)
    t5 = (sq - sp) * digamma(sp)
    return t1 - t2 + t3 + t4 + t5


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Tensor:
    sp = ops.sum(p.concentration, axis=-1)
    sq = ops.sum(q.concentration, axis=-1)
    t1 = lgamma(sp) - lgamma(sq)
    t2 = ops.sum(lgamma(p.concentration) - lgamma(q.concentration), axis=-1)
    t3 = p.concentration - q.concentration
    t4 = digamma(p.concentration) - ops.unsqueeze(digamma(sp), -1)
    return t1 - t2 + ops.sum(t3 * t4, axis=-1)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Tensor:
    return p.rate * (ops.log(p.rate) - ops.log(q.rate)) - (p.rate - q.rate)


def _lowrank_woodbury_factor(q: LowRankMultivariateNormal) -> Tensor:
    """``A = C^-1/2 W^T D^-1`` of q, so that (W W^T + D)^-1 = D^-1 - A^T A."""
    qwt_qdinv = ops.transpose(q._unbroadcasted_cov_factor, -1, -2) / ops.unsqueeze(q._unbroadcasted_cov_diag, -2)
    return _solve_lower(q._capacitance_tril, qwt_qdinv)


def _same_events(p: Distribution, q: Distribution) -> None:
    if p.event_shape != q.event_shape:
        raise ArgumentError(
            f"kl_divergence: KL-divergence between two (low-rank) multivariate normals with different event "
            f"shapes cannot be computed: {p.event_shape} vs {q.event_shape}"
        )


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _same_events(p, q)
    term1 = q._logdet() - p._logdet()
    term3 = _batch_lowrank_mahalanobis(
        q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q.loc - p.loc, q._capacitance_tril
    )
    a = _lowrank_woodbury_factor(q)
    pw, pd, qd = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, q._unbroadcasted_cov_diag
    term21 = ops.sum(pd / qd, axis=-1)
    term22 = _batch_trace_xxt(pw * ops.unsqueeze(ops.rsqrt(qd), -1))
    term23 = _batch_trace_xxt(a * ops.unsqueeze(ops.sqrt(pd), -2))
    term24 = _batch_trace_xxt(ops.matmul(a, pw))
    return 0.5 * (term1 + term21 + term22 - term23 - term24 + term3 - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _same_events(p, q)
    term1 = q._logdet() - 2 * p._half_log_det()
    term3 = _batch_lowrank_mahalanobis(
        q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q.loc - p.loc, q._capacitance_tril
    )
    a = _lowrank_woodbury_factor(q)
    lp = p._unbroadcasted_scale_tril
    term21 = _batch_trace_xxt(lp * ops.unsqueeze(ops.rsqrt(q._unbroadcasted_cov_diag), -1))
    term22 = _batch_trace_xxt(ops.matmul(a, lp))
    return 0.5 * (term1 + term21 - term22 + term3 - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> Tensor:
    _same_events(p, q)
    term1 = 2 * q._half_log_det() - p._logdet()
    term3 = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    lq = q._unbroadcasted_scale_tril
    term21 = _batch_trace_xxt(_solve_lower(lq, p._unbroadcasted_cov_factor))
    term22 = _batch_trace_xxt(_solve_lower(lq, ops.diag_embed(ops.sqrt(p._unbroadcasted_cov_diag))))
    return 0.5 * (term1 + term21 + term22 + term3 - p.event_shape[0])


# -------------------------------------------------------------- more of torch's registered pairs
def _infinite_like(t: Tensor) -> Tensor:
    return zeros_like(t.detach()) + math.inf


def _where_inf(mask: Tensor, result: Tensor) -> Tensor:
    shape = np.broadcast_shapes(tuple(mask.shape), tuple(result.shape))
    return ops.where(ops.broadcast_to(mask, shape), math.inf, result)


def _x_log_x(t: Tensor) -> Tensor:
    return ops.xlogy(t, t)  # 0 at t = 0


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p: Binomial, q: Binomial) -> Tensor:
    pn, qn = p.total_count.detach(), q.total_count.detach()
    if bool(ops.any(pn < qn).item()):
        raise KLNotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + ops.log1p(-p.probs) - ops.log1p(-q.probs))
    return _where_inf(pn > qn, kl)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_cb_cb(p: ContinuousBernoulli, q: ContinuousBernoulli) -> Tensor:
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + ops.log1p(-p.probs)
    t3 = -q._cont_bern_log_norm() - ops.log1p(-q.probs)
    return t1 + t2 + t3


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p: ExponentialFamily, q: ExponentialFamily) -> Tensor:
    """The Bregman divergence of the log normalizer, for two of the same family."""
    if type(p) is not type(q):
        raise KLNotImplementedError(
            "The cross KL-divergence between different exponential families cannot be computed using "
            "Bregman divergences"
        )
    p_nparams, lg_normal, gradients = p._log_normalizer_and_grads()
    q_nparams = q._natural_params
    result = q._log_normalizer(*q_nparams) - lg_normal
    n_batch = len(np.broadcast_shapes(p.batch_shape, q.batch_shape))
    for pnp, qnp, g in zip(p_nparams, q_nparams, gradients):
        assert g is not None
        term = (qnp - pnp) * g
        # the dims right of the batch: event dims, or none for a parameter with only batch dims
        # (Wishart's df term; torch's fixed count of event dims sums that over the batch)
        result = result - sum_rightmost(term, max(term.ndim - n_batch, 0))
    return result


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p: Gumbel, q: Gumbel) -> Tensor:
    ct1, ct2, ct3 = p.scale / q.scale, q.loc / q.scale, p.loc / q.scale
    t1 = -ops.log(ct1) - ct2 + ct3
    t2 = ct1 * EULER_GAMMA
    t3 = ops.exp(ct2 + lgamma(1 + ct1) - ct3)
    return t1 + t2 + t3 - (1 + EULER_GAMMA)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p: Geometric, q: Geometric) -> Tensor:
    return -p.entropy() - ops.log1p(-q.probs) / p.probs - q.logits


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p: HalfNormal, q: HalfNormal) -> Tensor:
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p: Pareto, q: Pareto) -> Tensor:
    scale_ratio, alpha_ratio = p.scale / q.scale, q.alpha / p.alpha
    result = q.alpha * ops.log(scale_ratio) - ops.log(alpha_ratio) + alpha_ratio - 1
    return _where_inf(p.scale.detach() < q.scale.detach(), result)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p: TransformedDistribution, q: TransformedDistribution) -> Tensor:
    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise KLNotImplementedError("kl_divergence: the two TransformedDistributions have different transforms")
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p: Cauchy, q: Cauchy) -> Tensor:
    return ops.log((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2) - ops.log(4 * p.scale * q.scale)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Tensor:
    return -p.entropy() - (p.probs * ops.log(q.rate) - q.rate)


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_cb(p: Beta, q: ContinuousBernoulli) -> Tensor:
    return -p.entropy() - p.mean * q.logits - ops.log1p(-q.probs) - q._cont_bern_log_norm()


def _kl_infinite(attr: str) -> Callable[[Any, Any], Tensor]:
    def fn(p: Any, q: Any) -> Tensor:
        return _infinite_like(getattr(p, attr))

    return fn


for _p, _qs, _attr in (
    (Beta, (Pareto,), "concentration1"),
    (ContinuousBernoulli, (Pareto,), "probs"),
    (Exponential, (Beta, ContinuousBernoulli, Pareto, Uniform), "rate"),
    (Gamma, (Beta, ContinuousBernoulli, Pareto, Uniform), "concentration"),
    (Gumbel, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform), "loc"),
    (Laplace, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform), "loc"),
    (Normal, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform), "loc"),
    (Pareto, (Beta, ContinuousBernoulli, Uniform), "scale"),
    (Poisson, (Bernoulli, Binomial), "rate"),
):
    for _q in _qs:
        register_kl(_p, _q)(_kl_infinite(_attr))


@register_kl(Beta, Exponential)
def _kl_beta_exponential(p: Beta, q: Exponential) -> Tensor:
    return -p.entropy() - ops.log(q.rate) + q.rate * (p.concentration1 / (p.concentration1 + p.concentration0))


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p: Beta, q: Gamma) -> Tensor:
    a, b = p.concentration1, p.concentration0
    t2 = lgamma(q.concentration) - q.concentration * ops.log(q.rate)
    t3 = (q.concentration - 1) * (digamma(a) - digamma(a + b))
    return -p.entropy() + t2 - t3 + q.rate * a / (a + b)


@register_kl(Beta, Normal)
def _kl_beta_normal(p: Beta, q: Normal) -> Tensor:
    a, b = p.concentration1, p.concentration0
    e_beta = a / (a + b)
    var_normal = q.scale**2
    t2 = 0.5 * ops.log(var_normal * 2 * math.pi)
    t3 = (e_beta * (1 - e_beta) / (a + b + 1) + e_beta**2) * 0.5
    return -p.entropy() + t2 + (t3 - q.loc * e_beta + q.loc**2 * 0.5) / var_normal


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p: Beta, q: Uniform) -> Tensor:
    result = -p.entropy() + ops.log(q.high - q.low)
    return _where_inf((q.low.detach() > 0) | (q.high.detach() < 1), result)


@register_kl(ContinuousBernoulli, Exponential)
def _kl_cb_exponential(p: ContinuousBernoulli, q: Exponential) -> Tensor:
    return -p.entropy() - ops.log(q.rate) + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_cb_normal(p: ContinuousBernoulli, q: Normal) -> Tensor:
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale) ** 2) + ops.log(q.scale)
    t3 = (p.variance + p.mean**2 - 2.0 * q.loc * p.mean) / (2.0 * q.scale**2)
    return -p.entropy() + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_cb_uniform(p: ContinuousBernoulli, q: Uniform) -> Tensor:
    result = -p.entropy() + ops.log(q.high - q.low)
    return _where_inf((q.low.detach() >= 0) | (q.high.detach() <= 1), result)


@register_kl(Exponential, Gamma)
def _kl_exponential_gamma(p: Exponential, q: Gamma) -> Tensor:
    ratio = q.rate / p.rate
    t1 = -q.concentration * ops.log(ratio)
    return t1 + ratio + lgamma(q.concentration) + q.concentration * EULER_GAMMA - (1 + EULER_GAMMA)


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p: Exponential, q: Gumbel) -> Tensor:
    prod = p.rate * q.scale
    ratio = q.loc / q.scale
    return ops.log(prod) - 1 - ratio + ops.exp(ratio) * prod / (prod + 1) + 1 / prod


@register_kl(Exponential, Normal)
def _kl_exponential_normal(p: Exponential, q: Normal) -> Tensor:
    var_normal, rate_sqr = q.scale**2, p.rate**2
    t1 = 0.5 * ops.log(rate_sqr * var_normal * 2 * math.pi)
    return t1 - 1 + (1 / rate_sqr - q.loc / p.rate + q.loc**2 * 0.5) / var_normal


@register_kl(Gamma, Exponential)
def _kl_gamma_exponential(p: Gamma, q: Exponential) -> Tensor:
    return -p.entropy() - ops.log(q.rate) + q.rate * p.concentration / p.rate


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p: Gamma, q: Gumbel) -> Tensor:
    c = p.concentration
    prod = p.rate * q.scale
    ratio = q.loc / q.scale
    t1 = (c - 1) * digamma(c) - lgamma(c) - c
    t2 = ops.log(prod) + c / prod
    t3 = ops.exp(ratio) * (1 + 1 / prod) ** (-c) - ratio
    return t1 + t2 + t3


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p: Gamma, q: Normal) -> Tensor:
    c = p.concentration
    var_normal, beta_sqr = q.scale**2, p.rate**2
    t1 = 0.5 * ops.log(beta_sqr * var_normal * 2 * math.pi) - c - lgamma(c)
    t2 = 0.5 * (c**2 + c) / beta_sqr
    t3 = q.loc * c / p.rate
    return t1 + (c - 1) * digamma(c) + (t2 - t3 + 0.5 * q.loc**2) / var_normal


@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p: Gumbel, q: Normal) -> Tensor:
    ratio = p.scale / q.scale
    t1 = ops.log(ratio / math.sqrt(2 * math.pi))
    t2 = (math.pi * ratio * 0.5) ** 2 / 3
    t3 = ((p.loc + p.scale * EULER_GAMMA - q.loc) / q.scale) ** 2 * 0.5
    return -t1 + t2 + t3 - (EULER_GAMMA + 1)


@register_kl(Laplace, Normal)
def _kl_laplace_normal(p: Laplace, q: Normal) -> Tensor:
    var_normal = q.scale**2
    ratio = p.scale**2 / var_normal
    t1 = 0.5 * ops.log(2 * ratio / math.pi)
    return -t1 + ratio + (0.5 * p.loc**2 - p.loc * q.loc + 0.5 * q.loc**2) / var_normal - 1


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p: Normal, q: Gumbel) -> Tensor:
    mean_ratio = p.loc / q.scale
    var_ratio = (p.scale / q.scale) ** 2
    loc_ratio = q.loc / q.scale
    t3 = ops.exp(-mean_ratio + 0.5 * var_ratio + loc_ratio)
    return -0.5 * ops.log(var_ratio) + mean_ratio - loc_ratio + t3 - 0.5 * (1 + math.log(2 * math.pi))


@register_kl(Normal, Laplace)
def _kl_normal_laplace(p: Normal, q: Laplace) -> Tensor:
    loc_diff = p.loc - q.loc
    scale_ratio = p.scale / q.scale
    z = loc_diff / p.scale
    t2 = math.sqrt(2 / math.pi) * p.scale * ops.exp(-0.5 * z**2)
    t3 = loc_diff * ops.erf(math.sqrt(0.5) * z)
    return -ops.log(scale_ratio) + (t2 + t3) / q.scale - 0.5 * (1 + math.log(0.5 * math.pi))


@register_kl(Pareto, Exponential)
def _kl_pareto_exponential(p: Pareto, q: Exponential) -> Tensor:
    prod = p.scale * q.rate
    result = ops.log(p.alpha / prod) - 1 / p.alpha + p.alpha * prod / (p.alpha - 1) - 1
    return _where_inf(p.alpha.detach() <= 1, result)


@register_kl(Pareto, Gamma)
def _kl_pareto_gamma(p: Pareto, q: Gamma) -> Tensor:
    common = ops.log(p.scale) + 1 / p.alpha
    t1 = ops.log(p.alpha) - common
    t2 = lgamma(q.concentration) - q.concentration * ops.log(q.rate)
    t3 = (1 - q.concentration) * common
    t4 = q.rate * p.alpha * p.scale / (p.alpha - 1)
    return _where_inf(p.alpha.detach() <= 1, t1 + t2 + t3 + t4 - 1)


@register_kl(Pareto, Normal)
def _kl_pareto_normal(p: Pareto, q: Normal) -> Tensor:
    var_normal = 2 * q.scale**2
    common = p.scale / (p.alpha - 1)
    t1 = ops.log(math.sqrt(2 * math.pi) * q.scale * p.alpha / p.scale)
    t3 = p.alpha * common**2 / (p.alpha - 2)
    t4 = (p.alpha * common - q.loc) ** 2
    result = t1 - 1 / p.alpha + (t3 + t4) / var_normal - 1
    return _where_inf(p.alpha.detach() <= 2, result)


@register_kl(Uniform, Beta)
def _kl_uniform_beta(p: Uniform, q: Beta) -> Tensor:
    common = p.high - p.low
    t1 = ops.log(common)
    t2 = (q.concentration1 - 1) * (_x_log_x(p.high) - _x_log_x(p.low) - common) / common
    t3 = (q.concentration0 - 1) * (_x_log_x(1 - p.high) - _x_log_x(1 - p.low) + common) / common
    t4 = lgamma(q.concentration1) + lgamma(q.concentration0) - lgamma(q.concentration1 + q.concentration0)
    return _where_inf((p.high.detach() > 1) | (p.low.detach() < 0), t3 + t4 - t1 - t2)


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_cb(p: Uniform, q: ContinuousBernoulli) -> Tensor:
    result = -p.entropy() - p.mean * q.logits - ops.log1p(-q.probs) - q._cont_bern_log_norm()
    return _where_inf((p.high.detach() >= 1) | (p.low.detach() <= 0), result)


@register_kl(Uniform, Exponential)
def _kl_uniform_exponential(p: Uniform, q: Exponential) -> Tensor:
    result = q.rate * (p.high + p.low) / 2 - ops.log((p.high - p.low) * q.rate)
    return _where_inf(p.low.detach() < 0, result)


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p: Uniform, q: Gamma) -> Tensor:
    common = p.high - p.low
    t2 = lgamma(q.concentration) - q.concentration * ops.log(q.rate)
    t3 = (1 - q.concentration) * (_x_log_x(p.high) - _x_log_x(p.low) - common) / common
    t4 = q.rate * (p.high + p.low) / 2
    return _where_inf(p.low.detach() < 0, -ops.log(common) + t2 + t3 + t4)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p: Uniform, q: Gumbel) -> Tensor:
    common = q.scale / (p.high - p.low)
    high_diff, low_diff = (p.high - q.loc) / q.scale, (p.low - q.loc) / q.scale
    t1 = ops.log(common) + 0.5 * (high_diff + low_diff)
    return t1 - common * (ops.exp(-high_diff) - ops.exp(-low_diff))


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    common = p.high - p.low
    t1 = ops.log(math.sqrt(math.pi * 2) * q.scale / common)
    t2 = common**2 / 12
    t3 = ((p.high + p.low - 2 * q.loc) / 2) ** 2
    return t1 + 0.5 * (t2 + t3) / q.scale**2


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p: Uniform, q: Pareto) -> Tensor:
    width = p.high - p.low
    t1 = ops.log(q.alpha * q.scale**q.alpha * width)
    t2 = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    return _where_inf(p.low.detach() < q.scale.detach(), t2 * (q.alpha + 1) - t1)
