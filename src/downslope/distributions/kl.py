"""KL(p || q) between two distributions, PyTorch's formulas, with ``register_kl`` for more pairs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError
from ..nn.functional import binary_cross_entropy_with_logits as _bce
from ..tensor import Tensor, zeros_like
from ._special import digamma, lgamma
from .compose import Independent
from .continuous import Beta, Dirichlet, Exponential, Gamma, Laplace, Normal, Uniform
from .discrete import Bernoulli, Categorical, OneHotCategorical, Poisson
from .distribution import Distribution
from .lowrank_multivariate_normal import (
    LowRankMultivariateNormal,
    _batch_lowrank_mahalanobis,
    _batch_trace_xxt,
)
from .multivariate_normal import MultivariateNormal, _batch_mahalanobis, _solve_lower
from .transforms import LogNormal

__all__ = ["kl_divergence", "register_kl"]

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
    """KL(p || q), batched over the two distributions' batch shapes; raises TypeError for a pair with
    no formula (``register_kl`` adds one).

    Example:
        >>> round(float(kl_divergence(Normal(0.0, 1.0), Normal(1.0, 2.0))), 4)
        0.4431
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        names = sorted({f"{a.__name__}-{b.__name__}" for a, b in _KL_REGISTRY})
        raise ArgumentTypeError(
            f"kl_divergence: no formula for {type(p).__name__} and {type(q).__name__} (available: {', '.join(names)})"
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
    return _bce(q.logits, p.probs, reduction="none") - _bce(p.logits, p.probs, reduction="none")


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise ArgumentError("kl_divergence: the two Independents reinterpret different numbers of dims")
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
