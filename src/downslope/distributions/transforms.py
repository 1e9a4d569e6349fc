"""Bijective transforms and :class:`TransformedDistribution` (``torch.distributions.transforms``):
ExpTransform, AffineTransform, SigmoidTransform, TanhTransform (the squashed Normal of SAC), their
inverses (``t.inv``) and ComposeTransform; LogNormal is a Normal through ExpTransform.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions import Normal, TransformedDistribution, TanhTransform
    >>> d = TransformedDistribution(Normal(0.0, 1.0), [TanhTransform(cache_size=1)])
    >>> round(float(d.log_prob(ds.tensor(0.5))), 4)
    -0.7821
"""

from __future__ import annotations

import math
from typing import Any

from .. import ops
from ..autograd import no_grad
from ..errors import ArgumentError
from ..tensor import Tensor
from . import constraints
from .continuous import Normal
from .distribution import Distribution, _eps, _param, _tiny, broadcast_all, sum_rightmost

__all__ = [
    "AffineTransform",
    "ComposeTransform",
    "ExpTransform",
    "LogNormal",
    "SigmoidTransform",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
]


class Transform:
    """An invertible map y = t(x) with ``inv``, ``log_abs_det_jacobian(x, y)`` and ``sign``; with
    ``cache_size=1`` the last pair is remembered, so ``inv`` of the last output is exact (tanh's
    inverse at +-1 would be infinite)."""

    bijective = True
    domain: Any = constraints.real
    codomain: Any = constraints.real
    sign: Any = 1

    def __init__(self, cache_size: int = 0) -> None:
        if cache_size not in (0, 1):
            raise ArgumentError(f"{type(self).__name__}: cache_size must be 0 or 1, got {cache_size}")
        self._cache_size = cache_size
        self._cached: tuple[Any, Any] | None = None

    @property
    def event_dim(self) -> int:
        return int(self.domain.event_dim)

    @property
    def inv(self) -> Transform:
        return _InverseTransform(self)

    def __call__(self, x: Tensor) -> Tensor:
        if self._cache_size and self._cached is not None and self._cached[0] is x:
            return self._cached[1]
        y = self._call(x)
        if self._cache_size:
            self._cached = (x, y)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size and self._cached is not None and self._cached[1] is y:
            return self._cached[0]
        x = self._inverse(y)
        if self._cache_size:
            self._cached = (x, y)
        return x

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _InverseTransform(Transform):
    def __init__(self, transform: Transform) -> None:
        super().__init__(transform._cache_size)
        self._inv = transform
        self.domain, self.codomain = transform.codomain, transform.domain

    @property
    def sign(self) -> Any:
        return self._inv.sign

    @property
    def inv(self) -> Transform:
        return self._inv

    def __call__(self, x: Tensor) -> Tensor:
        return self._inv._inv_call(x)

    def _inv_call(self, y: Tensor) -> Tensor:
        return self._inv(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -self._inv.log_abs_det_jacobian(y, x)

    def __repr__(self) -> str:
        return f"{self._inv!r}.inv"


class ComposeTransform(Transform):
    """The transforms applied in order (elementwise ones)."""

    def __init__(self, parts: list[Transform], cache_size: int = 0) -> None:
        super().__init__(cache_size)
        self.parts = list(parts)

    @property
    def sign(self) -> Any:
        s: Any = 1
        for p in self.parts:
            s = s * p.sign
        return s

    def _call(self, x: Tensor) -> Tensor:
        for p in self.parts:
            x = p(x)
        return x

    def _inverse(self, y: Tensor) -> Tensor:
        for p in reversed(self.parts):
            y = p.inv(y)
        return y

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        total: Any = 0.0
        for p in self.parts:
            y_next = p(x)
            total = total + p.log_abs_det_jacobian(x, y_next)
            x = y_next
        return total


class ExpTransform(Transform):
    """y = exp(x)."""

    codomain = constraints.positive

    def _call(self, x: Tensor) -> Tensor:
        return ops.exp(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.log(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return x


class SigmoidTransform(Transform):
    """y = sigmoid(x), clamped into (0, 1) as PyTorch's is."""

    codomain = constraints.unit_interval

    def _call(self, x: Tensor) -> Tensor:
        eps = _eps(x.dtype)
        return ops.clamp(ops.sigmoid(x), min=eps, max=1 - eps)

    def _inverse(self, y: Tensor) -> Tensor:
        y = ops.clamp(y, min=_tiny(y.dtype), max=1 - _eps(y.dtype))
        return ops.log(y) - ops.log1p(-y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -ops.softplus(-x) - ops.softplus(x)


class TanhTransform(Transform):
    """y = tanh(x); its log-det-Jacobian is PyTorch's stable 2 (log 2 - x - softplus(-2x))."""

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x: Tensor) -> Tensor:
        return ops.tanh(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.atanh(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return 2.0 * (math.log(2.0) - x - ops.softplus(-2.0 * x))


class AffineTransform(Transform):
    """y = loc + scale * x, over events of ``event_dim`` dims."""

    def __init__(self, loc: Any, scale: Any, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size)
        self.loc, self.scale, self._event_dim = loc, scale, int(event_dim)

    @property
    def event_dim(self) -> int:
        return self._event_dim

    @property
    def domain(self) -> Any:
        return constraints.independent(constraints.real, self._event_dim) if self._event_dim else constraints.real

    @property
    def codomain(self) -> Any:
        return self.domain

    @property
    def sign(self) -> Any:
        if isinstance(self.scale, Tensor):
            return ops.sign(self.scale.detach())
        return 1 if self.scale > 0 else -1 if self.scale < 0 else 0

    def _call(self, x: Tensor) -> Tensor:
        return self.loc + self.scale * x

    def _inverse(self, y: Tensor) -> Tensor:
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        scale = _param(self.scale, x)
        result = ops.broadcast_to(ops.log(ops.abs(scale)), x.shape)
        return sum_rightmost(result, self._event_dim)


class TransformedDistribution(Distribution):
    """``base_distribution`` pushed through ``transforms`` (one or a list, applied in order): samples
    are transformed draws, ``log_prob`` subtracts each transform's log-det-Jacobian, ``cdf``/``icdf``
    go through monotone transforms.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions import Normal, ExpTransform
        >>> d = TransformedDistribution(Normal(0.0, 1.0), ExpTransform())
        >>> round(float(d.log_prob(ds.tensor(1.0))), 4)
        -0.9189
    """

    def __init__(self, base_distribution: Distribution, transforms: Any, validate_args: Any = None) -> None:
        if isinstance(transforms, Transform):
            transforms = [transforms]
        self.transforms = list(transforms)
        if not all(isinstance(t, Transform) for t in self.transforms):
            raise ArgumentError("TransformedDistribution: transforms must be a Transform or a list of them")
        self.base_dist = base_distribution
        shape = base_distribution.batch_shape + base_distribution.event_shape
        event_dim = max([len(base_distribution.event_shape)] + [t.event_dim for t in self.transforms])
        cut = len(shape) - event_dim
        super().__init__(shape[:cut], shape[cut:], validate_args)
        self.has_rsample = base_distribution.has_rsample
        if type(self).support is None:
            self.support = self.transforms[-1].codomain if self.transforms else base_distribution.support

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with no_grad():
            x = self.base_dist.sample(sample_shape)
            for t in self.transforms:
                x = t(x)
            return x

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        x = self.base_dist.rsample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def log_prob(self, value: Any) -> Tensor:
        y = value if isinstance(value, Tensor) else _param(value)
        if self._validate_args:
            self._validate_sample(y)
        event_dim = len(self.event_shape)
        log_prob: Any = 0.0
        for t in reversed(self.transforms):
            x = t.inv(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            log_prob = log_prob - sum_rightmost(t.log_abs_det_jacobian(x, y), event_dim - t.domain.event_dim)
            y = x
        return log_prob + sum_rightmost(self.base_dist.log_prob(y), event_dim - len(self.base_dist.event_shape))

    def _monotonize_cdf(self, value: Tensor) -> Tensor:
        sign: Any = 1
        for t in self.transforms:
            sign = sign * t.sign
        if isinstance(sign, int) and sign == 1:
            return value
        return sign * (value - 0.5) + 0.5

    def cdf(self, value: Any) -> Tensor:
        v = _param(value)
        for t in reversed(self.transforms):
            v = t.inv(v)
        return self._monotonize_cdf(self.base_dist.cdf(v))

    def icdf(self, value: Any) -> Tensor:
        v = self.base_dist.icdf(self._monotonize_cdf(_param(value)))
        for t in self.transforms:
            v = t(v)
        return v


class LogNormal(TransformedDistribution):
    """exp(X) for X ~ N(loc, scale**2).

    Example:
        >>> import downslope as ds
        >>> round(float(LogNormal(0.0, 1.0).mean), 4)
        1.6487
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive

    def __init__(self, loc: Any, scale: Any, validate_args: Any = None) -> None:
        loc_t, scale_t = broadcast_all(loc, scale)
        base = Normal(loc_t, scale_t, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.loc  # type: ignore[attr-defined]

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale  # type: ignore[attr-defined]

    @property
    def mean(self) -> Tensor:
        return ops.exp(self.loc + self.scale**2 / 2)

    @property
    def mode(self) -> Tensor:
        return ops.exp(self.loc - self.scale**2)

    @property
    def variance(self) -> Tensor:
        s2 = self.scale**2
        return ops.expm1(s2) * ops.exp(2 * self.loc + s2)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc
