"""Probability distributions with PyTorch's names (``torch.distributions``): sampling, ``log_prob``
and ``entropy``, differentiable in their parameters.

What policy-gradient and variational code uses: :class:`Normal` (with ``rsample``, the
reparameterised sample a VAE trains through), :class:`Categorical` and :class:`Bernoulli` (from
``probs`` or ``logits``), :class:`Independent` (a diagonal Normal over the last dims) and
:func:`kl_divergence` for the pairs of them. Formulas and shapes follow PyTorch's; the random draws
come from the library's generator (``ds.manual_seed``), so they are repeatable but not PyTorch's
numbers. ``validate_args`` is accepted and not checked.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions import Categorical
    >>> logits = ds.tensor([0.0, 1.0, 2.0], requires_grad=True)
    >>> dist = Categorical(logits=logits)
    >>> dist.log_prob(ds.tensor(2)).backward()
    >>> round(float(dist.entropy()), 4), [round(float(g), 4) for g in logits.grad]
    (0.8324, [-0.09, -0.2447, 0.3348])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import ops
from .autograd import no_grad
from .errors import ArgumentError, ArgumentTypeError
from .tensor import Tensor, as_tensor, full_like, zeros_like

__all__ = ["Bernoulli", "Categorical", "Distribution", "Independent", "Normal", "kl_divergence"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _param(value: Any, like: Any = None) -> Tensor:
    """A parameter as a floating tensor (numbers take ``like``'s dtype and device)."""
    if isinstance(value, Tensor):
        return value if value.dtype.kind == "f" else value.float()
    t = as_tensor(value, dtype=like.dtype if isinstance(like, Tensor) else None)
    if isinstance(like, Tensor) and t.device != like.device:
        t = t.to(like.device)
    return t if t.dtype.kind == "f" else t.float()


def _shape(sample_shape: Any) -> tuple[int, ...]:
    if isinstance(sample_shape, int):
        return (sample_shape,)
    return tuple(int(s) for s in sample_shape)


class Distribution:
    """The interface: ``sample``, ``rsample`` (when ``has_rsample``), ``log_prob``, ``entropy``,
    ``mean``, ``variance``, ``stddev``, ``batch_shape`` and ``event_shape``."""

    has_rsample = False

    def __init__(self, batch_shape: tuple[int, ...] = (), event_shape: tuple[int, ...] = ()) -> None:
        self.batch_shape = tuple(batch_shape)
        self.event_shape = tuple(event_shape)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sample (rsample)")

    def log_prob(self, value: Any) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return ops.sqrt(self.variance)

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError

    def _extended(self, sample_shape: Any) -> tuple[int, ...]:
        return _shape(sample_shape) + self.batch_shape + self.event_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self.batch_shape}, event_shape={self.event_shape})"


class Normal(Distribution):
    """The normal distribution N(loc, scale**2); ``rsample`` is ``loc + scale * eps`` (eps ~ N(0, 1)).

    Example:
        >>> import downslope as ds
        >>> round(float(Normal(0.0, 2.0).log_prob(ds.tensor(1.0))), 4)
        -1.7371
    """

    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None) -> None:
        loc_t = _param(loc, scale)
        scale_t = _param(scale, loc_t)
        shape = np.broadcast_shapes(loc_t.shape, scale_t.shape)
        self.loc, self.scale = ops.broadcast_to(loc_t, shape), ops.broadcast_to(scale_t, shape)
        super().__init__(shape)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale * self.scale

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        from .tensor import randn

        eps = randn(*self._extended(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Any) -> Tensor:
        v = _param(value, self.loc)
        return -((v - self.loc) ** 2) / (2 * self.variance) - ops.log(self.scale) - _HALF_LOG_2PI

    def entropy(self) -> Tensor:
        return 0.5 + _HALF_LOG_2PI + ops.log(self.scale)

    def cdf(self, value: Any) -> Tensor:
        v = _param(value, self.loc)
        return 0.5 * (1 + ops.erf((v - self.loc) / (self.scale * math.sqrt(2))))


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
    """

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "Categorical")
        source = p if p is not None else lg
        assert source is not None
        if source.ndim < 1:
            raise ArgumentError(f"Categorical: probs/logits need at least one dimension, got shape {source.shape}")
        if p is not None:
            self.probs = p / ops.sum(p, axis=-1, keepdims=True)
            self.logits = ops.log(ops.clamp(self.probs, min=float(np.finfo(p.dtype).tiny)))
        else:
            assert lg is not None
            self.logits = lg - ops.logsumexp(lg, axis=-1, keepdims=True)
            self.probs = ops.exp(self.logits)
        self._num_events = source.shape[-1]
        super().__init__(source.shape[:-1])

    @property
    def param_shape(self) -> tuple[int, ...]:
        return self.probs.shape

    @property
    def mean(self) -> Tensor:
        return full_like(self.probs[..., 0].detach(), float("nan"))

    @property
    def variance(self) -> Tensor:
        return full_like(self.probs[..., 0].detach(), float("nan"))

    def sample(self, sample_shape: Any = ()) -> Tensor:
        from . import backend

        shape = _shape(sample_shape) + self.batch_shape
        with no_grad():
            # Inverse CDF: the first class whose cumulative probability passes a uniform draw.
            cumulative = ops.cumsum(self.probs.detach(), -1)
            u = Tensor(backend.random_like(shape + (1,), cumulative.array, np.float64))
            below = ops.astype(u.astype(cumulative.dtype) >= cumulative, np.int64)
            index = ops.sum(below, axis=-1)
            return ops.clamp(index, max=self._num_events - 1)

    def log_prob(self, value: Any) -> Tensor:
        v = value if isinstance(value, Tensor) else as_tensor(value)
        if v.dtype.kind not in "iu":
            v = ops.astype(v, np.int64)
        shape = np.broadcast_shapes(v.shape, self.batch_shape)
        logits = ops.broadcast_to(self.logits, shape + (self._num_events,))
        index = ops.unsqueeze(ops.broadcast_to(v, shape), -1)
        return ops.squeeze(ops.take_along_dim(logits, index, -1), -1)

    def entropy(self) -> Tensor:
        logits = ops.clamp(self.logits, min=float(np.finfo(self.logits.dtype).min))
        return -ops.sum(logits * self.probs, axis=-1)


class Bernoulli(Distribution):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0; samples are floats, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> round(float(Bernoulli(logits=ds.tensor(0.0)).log_prob(ds.tensor(1.0))), 4)
        -0.6931
    """

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: Any = None) -> None:
        p, lg = _probs_or_logits(probs, logits, "Bernoulli")
        if p is not None:
            self.probs = p
            eps = float(np.finfo(p.dtype).eps)
            clamped = ops.clamp(p, min=eps, max=1 - eps)
            self.logits = ops.log(clamped) - ops.log1p(-clamped)
        else:
            assert lg is not None
            self.logits = lg
            self.probs = ops.sigmoid(lg)
        super().__init__(self.probs.shape)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        from . import backend

        shape = _shape(sample_shape) + self.batch_shape
        with no_grad():
            probs = ops.broadcast_to(self.probs.detach(), shape)
            u = Tensor(backend.random_like(shape, probs.array, np.float64)).astype(probs.dtype)
            return ops.astype(u < probs, probs.dtype)

    def log_prob(self, value: Any) -> Tensor:
        from .nn.functional import binary_cross_entropy_with_logits

        v = _param(value, self.logits)
        shape = np.broadcast_shapes(v.shape, self.logits.shape)
        logits, v = ops.broadcast_to(self.logits, shape), ops.broadcast_to(v, shape)
        return -binary_cross_entropy_with_logits(logits, v, reduction="none")

    def entropy(self) -> Tensor:
        from .nn.functional import binary_cross_entropy_with_logits

        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")


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
        super().__init__(batch, event + base_distribution.event_shape)
        self.has_rsample = base_distribution.has_rsample

    def _sum(self, t: Tensor) -> Tensor:
        if self.reinterpreted_batch_ndims == 0:
            return t
        return ops.sum(t, axis=tuple(range(-self.reinterpreted_batch_ndims, 0)))

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

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


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q) for two Normals, two Categoricals, two Bernoullis, or two Independents of those.

    Example:
        >>> round(float(kl_divergence(Normal(0.0, 1.0), Normal(1.0, 2.0))), 4)
        0.4431
    """
    if isinstance(p, Normal) and isinstance(q, Normal):
        ratio = (p.scale / q.scale) ** 2
        shift = ((p.loc - q.loc) / q.scale) ** 2
        return 0.5 * (ratio + shift - 1 - ops.log(ratio))
    if isinstance(p, Categorical) and isinstance(q, Categorical):
        terms = p.probs * (p.logits - q.logits)
        # where p is 0 the term is 0 (0 log 0); where q is 0 and p is not, it is inf, as in PyTorch
        terms = ops.where(p.probs.detach() == 0, zeros_like(terms.detach()), terms)
        return ops.sum(terms, axis=-1)
    if isinstance(p, Bernoulli) and isinstance(q, Bernoulli):
        from .nn.functional import binary_cross_entropy_with_logits as bce

        return bce(q.logits, p.probs, reduction="none") - bce(p.logits, p.probs, reduction="none")
    if isinstance(p, Independent) and isinstance(q, Independent):
        if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
            raise ArgumentError("kl_divergence: the two Independents reinterpret different numbers of dims")
        return p._sum(kl_divergence(p.base_dist, q.base_dist))
    raise ArgumentTypeError(
        f"kl_divergence: no formula for {type(p).__name__} and {type(q).__name__} "
        "(available: Normal, Categorical, Bernoulli and Independent of them, each with its own kind)"
    )
