"""Distributions built from others: Independent, MixtureSameFamily, and the Gumbel-softmax relaxations
RelaxedBernoulli and RelaxedOneHotCategorical (reparameterised samples in (0, 1) and on the simplex)."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..errors import ArgumentError, UnimplementedError
from ..tensor import Tensor, full_like
from . import constraints
from ._special import lgamma
from .discrete import Categorical, _BinaryProbs, _OverCategorical, _probs_or_logits
from .distribution import (
    Distribution,
    _param,
    broadcast_all,
    clamp_probs,
    uniform,
)
from .transforms import ExpTransform, SigmoidTransform, TransformedDistribution

__all__ = [
    "ExpRelaxedCategorical",
    "Independent",
    "LogitRelaxedBernoulli",
    "MixtureSameFamily",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
]


class Independent(Distribution):
    """``base`` with its last ``reinterpreted_batch_ndims`` batch dims read as one event: ``log_prob``
    and ``entropy`` sum over them (a diagonal Gaussian is ``Independent(Normal(mu, sigma), 1)``)."""

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int, validate_args: Any = None):
        n = int(reinterpreted_batch_ndims)
        if not 0 <= n <= len(base_distribution.batch_shape):
            raise ArgumentError(
                f"Independent: reinterpreted_batch_ndims must lie in [0, {len(base_distribution.batch_shape)}], "
                f"got {reinterpreted_batch_ndims}"
            )
        self.base_dist, self.reinterpreted_batch_ndims = base_distribution, n
        cut = len(base_distribution.batch_shape) - n
        batch, event = base_distribution.batch_shape[:cut], base_distribution.batch_shape[cut:]
        super().__init__(batch, event + base_distribution.event_shape, validate_args)
        self.has_rsample = base_distribution.has_rsample
        # with no dims reinterpreted the base's support is the whole support (torch's rule); with some,
        # it would be their cartesian product, which torch does not enumerate either
        self.has_enumerate_support = n == 0 and bool(base_distribution.has_enumerate_support)

    @constraints.dependent_property
    def support(self) -> Any:
        base = self.base_dist.support
        if base is None or self.reinterpreted_batch_ndims == 0:
            return base
        return constraints.independent(base, self.reinterpreted_batch_ndims)

    def _sum(self, t: Tensor) -> Tensor:
        if self.reinterpreted_batch_ndims == 0:
            return t
        return ops.sum(t, axis=tuple(range(-self.reinterpreted_batch_ndims, 0)))

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape: Any = ()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value: Any) -> Tensor:
        return self._sum(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum(self.base_dist.entropy())

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if self.reinterpreted_batch_ndims > 0:
            raise UnimplementedError(
                f"Independent.enumerate_support: enumerating the cartesian product over "
                f"reinterpreted_batch_ndims={self.reinterpreted_batch_ndims} dims is not implemented (as in "
                "torch); only reinterpreted_batch_ndims=0 enumerates, through the base distribution"
            )
        return self.base_dist.enumerate_support(expand=expand)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Independent:
        batch = tuple(batch_shape)
        extra = self.event_shape[: self.reinterpreted_batch_ndims]
        return Independent(self.base_dist.expand(batch + extra), self.reinterpreted_batch_ndims, validate_args=False)


class MixtureSameFamily(Distribution):
    """A mixture: ``mixture_distribution`` (a Categorical over K) picks one of the K components batched
    in the rightmost batch dim of ``component_distribution``.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions import Categorical, Normal
        >>> mix = MixtureSameFamily(Categorical(probs=ds.tensor([0.5, 0.5])), Normal(ds.tensor([-1.0, 1.0]), 1.0))
        >>> round(float(mix.log_prob(ds.tensor(0.0))), 4), float(mix.mean)
        (-1.4189, 0.0)
    """

    has_rsample = False

    def __init__(
        self, mixture_distribution: Categorical, component_distribution: Distribution, validate_args: Any = None
    ) -> None:
        from .discrete import OneHotCategorical

        if not isinstance(mixture_distribution, (Categorical, OneHotCategorical)):
            raise ArgumentError("MixtureSameFamily: mixture_distribution must be a Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ArgumentError("MixtureSameFamily: component_distribution must be a Distribution")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        mdbs, cdbs = mixture_distribution.batch_shape, component_distribution.batch_shape[:-1]
        if len(component_distribution.batch_shape) < 1:
            raise ArgumentError("MixtureSameFamily: the components need a batch dim for the K components")
        for a, b in zip(reversed(mdbs), reversed(cdbs)):
            if a != 1 and b != 1 and a != b:
                raise ArgumentError(
                    f"MixtureSameFamily: mixture batch shape {mdbs} does not fit the component batch shape {cdbs}"
                )
        km = mixture_distribution.probs.shape[-1]
        kc = component_distribution.batch_shape[-1]
        if km != kc:
            raise ArgumentError(
                f"MixtureSameFamily: the mixture has {km} components and the component distribution {kc}"
            )
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cdbs, component_distribution.event_shape, validate_args)

    @property
    def mixture_distribution(self) -> Categorical:
        return self._mixture_distribution

    @property
    def component_distribution(self) -> Distribution:
        return self._component_distribution

    @constraints.dependent_property
    def support(self) -> Any:
        return self._component_distribution.support

    def _pad(self, x: Tensor) -> Tensor:
        return ops.unsqueeze(x, -1 - self._event_ndims)

    def _pad_mixture_dimensions(self, x: Tensor) -> Tensor:
        dist_batch_ndims = len(self.batch_shape)
        cat_batch_ndims = len(self._mixture_distribution.batch_shape)
        pad_ndims = 0 if cat_batch_ndims == 1 else dist_batch_ndims - cat_batch_ndims
        shape = x.shape
        return ops.reshape(x, shape[:-1] + (1,) * pad_ndims + shape[-1:] + (1,) * self._event_ndims)

    @property
    def mean(self) -> Tensor:
        probs = self._pad_mixture_dimensions(self._mixture_distribution.probs)
        return ops.sum(probs * self._component_distribution.mean, axis=-1 - self._event_ndims)

    @property
    def variance(self) -> Tensor:
        probs = self._pad_mixture_dimensions(self._mixture_distribution.probs)
        axis = -1 - self._event_ndims
        mean_cond_var = ops.sum(probs * self._component_distribution.variance, axis=axis)
        var_cond_mean = ops.sum(probs * (self._component_distribution.mean - self._pad(self.mean)) ** 2, axis=axis)
        return mean_cond_var + var_cond_mean

    def cdf(self, value: Any) -> Tensor:
        x = self._pad(self._value(value, self._mixture_distribution.probs))
        cdf_x = self._component_distribution.cdf(x)
        return ops.sum(cdf_x * self._mixture_distribution.probs, axis=-1)

    def log_prob(self, value: Any) -> Tensor:
        x = self._pad(self._value(value, self._mixture_distribution.probs))
        log_prob_x = self._component_distribution.log_prob(x)
        log_mix_prob = ops.log_softmax(self._mixture_distribution.logits, -1)
        return ops.logsumexp(log_prob_x + log_mix_prob, axis=-1)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        from ..autograd import no_grad

        with no_grad():
            sample_len = len(tuple(sample_shape) if not isinstance(sample_shape, int) else (sample_shape,))
            mix_sample = self._mixture_distribution.sample(sample_shape)
            comp_samples = self._component_distribution.sample(sample_shape)
            if mix_sample.ndim > sample_len + len(self._mixture_distribution.batch_shape):  # one-hot mixture
                mix_sample = ops.argmax(mix_sample, -1)
            index = ops.reshape(mix_sample, mix_sample.shape + (1,) * (self._event_ndims + 1))
            target = comp_samples.shape[: -1 - self._event_ndims] + (1,) + self.event_shape
            index = ops.broadcast_to(index, target)
            return ops.squeeze(ops.take_along_dim(comp_samples, index, -1 - self._event_ndims), -1 - self._event_ndims)


class LogitRelaxedBernoulli(_BinaryProbs):
    """The logit of a :class:`RelaxedBernoulli` sample (a binary Concrete distribution in logit space)."""

    # rsample works, but torch leaves has_rsample False here (its RelaxedBernoulli says True)
    has_rsample = False
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "LogitRelaxedBernoulli")
        if p is not None:
            (self.probs,) = broadcast_all(p)
            self._param = self.probs
        else:
            (self.logits,) = broadcast_all(lg)
            self._param = self.logits
        # the temperature keeps its own shape (torch's): it broadcasts where it is used, and neither it
        # nor an expand() widens it to the batch; a number takes the parameter's dtype
        self.temperature = _param(temperature, self._param)
        super().__init__(self._param.shape, (), validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> LogitRelaxedBernoulli:
        new = object.__new__(type(self)) if _instance is None else _instance
        new.temperature = self.temperature
        return super().expand(batch_shape, _instance=new)  # type: ignore[return-value]

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        probs = clamp_probs(ops.broadcast_to(self.probs, shape))
        u = clamp_probs(uniform(shape, probs))
        return (ops.log(u) - ops.log1p(-u) + ops.log(probs) - ops.log1p(-probs)) / self.temperature

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self._param)
        logits, v = broadcast_all(self.logits, v)
        diff = logits - v * self.temperature
        return ops.log(self.temperature) + diff - 2 * ops.log1p(ops.exp(diff))


class _Relaxed(TransformedDistribution):
    """A relaxation: its base distribution (``_base``, in logit or log space) mapped by ``_transform``,
    with the base's temperature and parameters."""

    _base: Any
    _transform: Any

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        base = self._base(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, self._transform(), validate_args=False)
        self._validate_args = base._validate_args

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return True  # the base (in logit or log space) is reparameterised; torch says so here only

    @property
    def temperature(self) -> Tensor:
        return self.base_dist.temperature  # type: ignore[attr-defined]

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits  # type: ignore[attr-defined]

    @property
    def probs(self) -> Tensor:
        return self.base_dist.probs  # type: ignore[attr-defined]


class RelaxedBernoulli(_Relaxed):
    """The binary Concrete (Gumbel-sigmoid) relaxation of a Bernoulli at ``temperature``: samples in
    (0, 1), reparameterised.

    Example:
        >>> import downslope as ds
        >>> d = RelaxedBernoulli(ds.tensor(0.5), probs=ds.tensor(0.3))
        >>> round(float(d.log_prob(ds.tensor(0.2))), 4)
        -0.2528
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval

    _base, _transform = LogitRelaxedBernoulli, SigmoidTransform


class ExpRelaxedCategorical(_OverCategorical):
    """The log of a :class:`RelaxedOneHotCategorical` sample (Concrete distribution in log space)."""

    has_rsample = True
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.real_vector

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        self.temperature = temperature if isinstance(temperature, Tensor) else broadcast_all(temperature)[0]
        super().__init__(probs, logits, validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> ExpRelaxedCategorical:
        new = object.__new__(type(self)) if _instance is None else _instance
        new.temperature = self.temperature  # its own shape, as in torch (see LogitRelaxedBernoulli)
        return super().expand(batch_shape, _instance=new)  # type: ignore[return-value]

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        u = clamp_probs(uniform(shape, self.logits))
        gumbels = -ops.log(-ops.log(u))
        scores = (self.logits + gumbels) / self.temperature
        return scores - ops.logsumexp(scores, axis=-1, keepdims=True)

    def log_prob(self, value: Any) -> Tensor:
        k = self._categorical._num_events
        v = self._value(value, self.logits)
        temperature = self.temperature
        log_scale = lgamma(full_like(temperature.detach(), float(k))) + ops.log(temperature) * (k - 1)
        score = self.logits - v * temperature
        score = ops.sum(score - ops.logsumexp(score, axis=-1, keepdims=True), axis=-1)
        return score + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """The Concrete (Gumbel-softmax) relaxation of a OneHotCategorical at ``temperature``: samples on the
    simplex, reparameterised.

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(0)
        >>> d = RelaxedOneHotCategorical(ds.tensor(0.5), logits=ds.zeros(3))
        >>> round(float(d.rsample().sum()), 4)
        1.0
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.simplex

    _base, _transform = ExpRelaxedCategorical, ExpTransform
