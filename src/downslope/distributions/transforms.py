"""Bijective transforms and :class:`TransformedDistribution` (``torch.distributions.transforms``), with
torch's domain/codomain/event-dim bookkeeping: elementwise (Exp, Affine, Sigmoid, Tanh, Softplus,
Power, Abs), over vectors (Softmax, StickBreaking, CorrCholesky), over matrices (LowerCholesky,
PositiveDefinite), structural (Compose, Independent, Reshape, Cat, Stack) and
CumulativeDistributionTransform; their inverses (``t.inv``); LogNormal is a Normal through
ExpTransform.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions import Normal, TransformedDistribution, TanhTransform
    >>> d = TransformedDistribution(Normal(0.0, 1.0), [TanhTransform(cache_size=1)])
    >>> round(float(d.log_prob(ds.tensor(0.5))), 4)
    -0.7821
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..backend import Size
from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor, eye, zeros, zeros_like
from . import constraints
from .continuous import Normal
from .distribution import Distribution, _eps, _param, _shape, _size, _tiny, broadcast_all, sum_rightmost

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "CatTransform",
    "ComposeTransform",
    "CorrCholeskyTransform",
    "CumulativeDistributionTransform",
    "ExpTransform",
    "IndependentTransform",
    "LogNormal",
    "LowerCholeskyTransform",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "ReshapeTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "SoftplusTransform",
    "StackTransform",
    "StickBreakingTransform",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "identity_transform",
]


class Transform:
    """An invertible map y = t(x) with ``inv``, ``log_abs_det_jacobian(x, y)`` and ``sign``; with
    ``cache_size=1`` the last pair is remembered, so ``inv`` of the last output is exact (tanh's
    inverse at +-1 would be infinite). ``domain``/``codomain`` are the constraints on inputs and
    outputs; their ``event_dim`` says how many rightmost dims one application couples.

    Example:
        >>> import downslope as ds
        >>> t = ExpTransform()
        >>> float(t.inv(t(ds.tensor(0.5, dtype=ds.float64))))
        0.5
    """

    bijective = False
    domain: Any = constraints.real
    codomain: Any = constraints.real

    def __init__(self, cache_size: int = 0) -> None:
        if cache_size not in (0, 1):
            raise ArgumentError(f"{type(self).__name__}: cache_size must be 0 or 1, got {cache_size}")
        self._cache_size = cache_size
        self._inv: Transform | None = None
        self._cached_x_y: tuple[Any, Any] = (None, None)

    @property
    def event_dim(self) -> int:
        if self.domain.event_dim == self.codomain.event_dim:
            return int(self.domain.event_dim)
        raise ArgumentError("Please use either .domain.event_dim or .codomain.event_dim")

    @property
    def inv(self) -> Transform:
        """The inverse transform (``t.inv.inv is t``)."""
        inv = self._inv
        if inv is None:
            inv = _InverseTransform(self)
            self._inv = inv
        return inv

    @property
    def sign(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no sign")

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        if type(self).__init__ is Transform.__init__:
            return type(self)(cache_size=cache_size)
        raise NotImplementedError(f"{type(self).__name__}.with_cache is not implemented")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __call__(self, x: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._call(x)
        x_old, y_old = self._cached_x_y
        if x is x_old:
            return y_old
        y = self._call(x)
        self._cached_x_y = (x, y)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._inverse(y)
        x_old, y_old = self._cached_x_y
        if y is y_old:
            return x_old
        x = self._inverse(y)
        self._cached_x_y = (x, y)
        return x

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no forward map")

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no log_abs_det_jacobian")

    def forward_shape(self, shape: Any) -> Size:
        """The output shape for an input of ``shape``."""
        return _size(shape)

    def inverse_shape(self, shape: Any) -> Size:
        """The input shape for an output of ``shape``."""
        return _size(shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_T = TypeVar("_T", bound=type[Transform])


def _equal_within_class(cls: _T) -> _T:
    """A transform without parameters: every instance of ``cls`` (subclasses too) is equal, as torch's."""

    def __eq__(self: Transform, other: object) -> bool:  # noqa: N807
        return isinstance(other, cls)

    cls.__eq__ = __eq__  # type: ignore[method-assign]
    # set after the class is made, so defining __eq__ doesn't unset it
    cls.__hash__ = object.__hash__  # type: ignore[method-assign,assignment]
    return cls


class _InverseTransform(Transform):
    def __init__(self, transform: Transform) -> None:
        super().__init__(cache_size=transform._cache_size)
        self._inv = transform

    @property
    def _base(self) -> Transform:
        assert self._inv is not None
        return self._inv

    @property
    def domain(self) -> Any:
        return self._base.codomain

    @property
    def codomain(self) -> Any:
        return self._base.domain

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return self._base.bijective

    @property
    def sign(self) -> Any:
        return self._base.sign

    @property
    def inv(self) -> Transform:
        return self._base

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self._base.with_cache(cache_size).inv

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _InverseTransform) and self._base == other._base

    __hash__ = object.__hash__

    def __call__(self, x: Tensor) -> Tensor:
        return self._base._inv_call(x)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -self._base.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape: Any) -> Size:
        return self._base.inverse_shape(shape)

    def inverse_shape(self, shape: Any) -> Size:
        return self._base.forward_shape(shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"


def _as_tensor_like(value: Any, like: Tensor) -> Tensor:
    return value if isinstance(value, Tensor) else _param(value, like)


class ComposeTransform(Transform):
    """The transforms ``parts`` applied in order. Its domain and codomain carry the largest event dim
    any part couples (an ``AffineTransform(..., event_dim=1)`` followed by ``TanhTransform`` couples
    vectors), and ``log_abs_det_jacobian`` sums each part's term over the dims that part treats as
    batch, as torch's does.

    Example:
        >>> import downslope as ds
        >>> t = ComposeTransform([AffineTransform(0.0, ds.tensor([2.0, 3.0]), event_dim=1), TanhTransform()])
        >>> t.domain.event_dim, t.codomain.event_dim
        (1, 1)
    """

    def __init__(self, parts: list[Transform], cache_size: int = 0) -> None:
        parts = list(parts)
        if not all(isinstance(p, Transform) for p in parts):
            raise ArgumentError("ComposeTransform: parts must be a list of Transforms")
        if cache_size:
            parts = [part.with_cache(cache_size) for part in parts]
        super().__init__(cache_size=cache_size)
        self.parts = parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    __hash__ = object.__hash__

    @property
    def domain(self) -> Any:
        if not self.parts:
            return constraints.real
        domain = self.parts[0].domain
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            event_dim += part.domain.event_dim - part.codomain.event_dim
            event_dim = max(event_dim, part.domain.event_dim)
        if event_dim > domain.event_dim:
            domain = constraints.independent(domain, event_dim - domain.event_dim)
        return domain

    @property
    def codomain(self) -> Any:
        if not self.parts:
            return constraints.real
        codomain = self.parts[-1].codomain
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            event_dim += part.codomain.event_dim - part.domain.event_dim
            event_dim = max(event_dim, part.codomain.event_dim)
        if event_dim > codomain.event_dim:
            codomain = constraints.independent(codomain, event_dim - codomain.event_dim)
        return codomain

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return all(p.bijective for p in self.parts)

    @property
    def sign(self) -> Any:
        sign: Any = 1
        for p in self.parts:
            sign = sign * p.sign
        return sign

    @property
    def inv(self) -> Transform:
        inv = self._inv
        if inv is None:
            inv = ComposeTransform([p.inv for p in reversed(self.parts)])
            self._inv = inv
            inv._inv = self
        return inv

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return ComposeTransform(self.parts, cache_size=cache_size)

    def __call__(self, x: Tensor) -> Tensor:
        for part in self.parts:
            x = part(x)
        return x

    def _inv_call(self, y: Tensor) -> Tensor:
        return self.inv(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        if not self.parts:
            return zeros_like(x)
        # The intermediates are free when the parts cache them.
        xs = [x]
        for part in self.parts[:-1]:
            xs.append(part(xs[-1]))
        xs.append(y)
        total: Any = None
        event_dim = self.domain.event_dim
        for part, xi, yi in zip(self.parts, xs[:-1], xs[1:]):
            term = sum_rightmost(
                _as_tensor_like(part.log_abs_det_jacobian(xi, yi), x), event_dim - part.domain.event_dim
            )
            total = term if total is None else total + term
            event_dim += part.codomain.event_dim - part.domain.event_dim
        return total

    def forward_shape(self, shape: Any) -> Size:
        for part in self.parts:
            shape = part.forward_shape(shape)
        return _size(shape)

    def inverse_shape(self, shape: Any) -> Size:
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return _size(shape)

    def __repr__(self) -> str:
        return type(self).__name__ + "(\n    " + ",\n    ".join(repr(p) for p in self.parts) + "\n)"


identity_transform = ComposeTransform([])


class IndependentTransform(Transform):
    """``base_transform`` with ``reinterpreted_batch_ndims`` more rightmost dims read as one event:
    the map is unchanged, ``log_abs_det_jacobian`` sums over those dims.

    Example:
        >>> import downslope as ds
        >>> t = IndependentTransform(ExpTransform(), 1)
        >>> t.log_abs_det_jacobian(ds.tensor([1.0, 2.0]), t(ds.tensor([1.0, 2.0]))).item()
        3.0
    """

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.base_transform = base_transform.with_cache(cache_size)
        self.reinterpreted_batch_ndims = int(reinterpreted_batch_ndims)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return IndependentTransform(self.base_transform, self.reinterpreted_batch_ndims, cache_size=cache_size)

    @property
    def domain(self) -> Any:
        return constraints.independent(self.base_transform.domain, self.reinterpreted_batch_ndims)

    @property
    def codomain(self) -> Any:
        return constraints.independent(self.base_transform.codomain, self.reinterpreted_batch_ndims)

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return self.base_transform.bijective

    @property
    def sign(self) -> Any:
        return self.base_transform.sign

    def _call(self, x: Tensor) -> Tensor:
        if x.ndim < self.domain.event_dim:
            raise ShapeError(f"IndependentTransform: too few dimensions on input ({x.ndim} < {self.domain.event_dim})")
        return self.base_transform(x)

    def _inverse(self, y: Tensor) -> Tensor:
        if y.ndim < self.codomain.event_dim:
            raise ShapeError(
                f"IndependentTransform: too few dimensions on input ({y.ndim} < {self.codomain.event_dim})"
            )
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y), self.reinterpreted_batch_ndims)

    def forward_shape(self, shape: Any) -> Size:
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape: Any) -> Size:
        return self.base_transform.inverse_shape(shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class ReshapeTransform(Transform):
    """Reshapes the rightmost ``in_shape`` of a tensor to ``out_shape`` (Jacobian 1).

    Example:
        >>> import downslope as ds
        >>> ReshapeTransform((4,), (2, 2))(ds.zeros(3, 4)).shape
        downslope.Size([3, 2, 2])
    """

    bijective = True

    def __init__(self, in_shape: Any, out_shape: Any, cache_size: int = 0) -> None:
        self.in_shape, self.out_shape = _size(in_shape), _size(out_shape)
        if int(np.prod(self.in_shape)) != int(np.prod(self.out_shape)):
            raise ArgumentError(
                f"ReshapeTransform: in_shape {self.in_shape} and out_shape {self.out_shape} have different "
                "numbers of elements"
            )
        super().__init__(cache_size=cache_size)

    @property
    def domain(self) -> Any:
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self) -> Any:
        return constraints.independent(constraints.real, len(self.out_shape))

    @property
    def sign(self) -> Any:
        return 1

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return ReshapeTransform(self.in_shape, self.out_shape, cache_size=cache_size)

    def _call(self, x: Tensor) -> Tensor:
        return ops.reshape(x, tuple(x.shape[: x.ndim - len(self.in_shape)]) + self.out_shape)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.reshape(y, tuple(y.shape[: y.ndim - len(self.out_shape)]) + self.in_shape)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return zeros(tuple(x.shape[: x.ndim - len(self.in_shape)]), dtype=x.dtype, device=x.device)

    def _moved(self, shape: Any, src: tuple[int, ...], dst: tuple[int, ...]) -> Size:
        shape = tuple(shape)
        if len(shape) < len(src):
            raise ShapeError(f"ReshapeTransform: too few dimensions on input: {shape} for event shape {src}")
        cut = len(shape) - len(src)
        if shape[cut:] != src:
            raise ShapeError(f"ReshapeTransform: shape mismatch: expected {src} but got {shape[cut:]}")
        return _size(shape[:cut] + dst)

    def forward_shape(self, shape: Any) -> Size:
        return self._moved(shape, self.in_shape, self.out_shape)

    def inverse_shape(self, shape: Any) -> Size:
        return self._moved(shape, self.out_shape, self.in_shape)


@_equal_within_class
class ExpTransform(Transform):
    """y = exp(x)."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = 1

    def _call(self, x: Tensor) -> Tensor:
        return ops.exp(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.log(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return x


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals.

    Example:
        >>> import downslope as ds
        >>> PowerTransform(2.0)(ds.tensor(3.0)).item()
        9.0
    """

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent: Any, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        (self.exponent,) = broadcast_all(exponent)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return PowerTransform(self.exponent, cache_size=cache_size)

    @property
    def sign(self) -> Any:
        return ops.sign(self.exponent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PowerTransform):
            return False
        return bool(constraints._host(self.exponent == other.exponent).all())  # host: comparing parameters

    __hash__ = object.__hash__

    def _call(self, x: Tensor) -> Tensor:
        return x**self.exponent

    def _inverse(self, y: Tensor) -> Tensor:
        return y ** (1 / self.exponent)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return ops.log(ops.abs(self.exponent * y / x))

    def forward_shape(self, shape: Any) -> Size:
        return _size(np.broadcast_shapes(tuple(shape), tuple(self.exponent.shape)))

    def inverse_shape(self, shape: Any) -> Size:
        return _size(np.broadcast_shapes(tuple(shape), tuple(self.exponent.shape)))


def _clipped_sigmoid(x: Tensor) -> Tensor:
    """sigmoid(x) kept inside [tiny, 1 - eps] of x's dtype, as torch's."""
    return ops.clamp(ops.sigmoid(x), min=_tiny(x.dtype), max=1.0 - _eps(x.dtype))


@_equal_within_class
class SigmoidTransform(Transform):
    """y = sigmoid(x), clamped into [finfo.tiny, 1 - finfo.eps] as PyTorch's is."""

    domain = constraints.real
    codomain = constraints.unit_interval
    bijective = True
    sign = 1

    def _call(self, x: Tensor) -> Tensor:
        return _clipped_sigmoid(x)

    def _inverse(self, y: Tensor) -> Tensor:
        y = ops.clamp(y, min=_tiny(y.dtype), max=1 - _eps(y.dtype))
        return ops.log(y) - ops.log1p(-y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -ops.softplus(-x) - ops.softplus(x)


@_equal_within_class
class SoftplusTransform(Transform):
    """y = log(1 + exp(x)); the inverse is ``log(-expm1(-y)) + y``.

    Example:
        >>> import downslope as ds
        >>> round(SoftplusTransform()(ds.tensor(0.0)).item(), 4)
        0.6931
    """

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = 1

    def _call(self, x: Tensor) -> Tensor:
        return ops.softplus(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.log(-ops.expm1(-y)) + y

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -ops.softplus(-x)


@_equal_within_class
class TanhTransform(Transform):
    """y = tanh(x); its log-det-Jacobian is PyTorch's stable 2 (log 2 - x - softplus(-2x)). No clamp,
    as in torch (use ``cache_size=1`` to invert outputs that rounded to +-1)."""

    domain = constraints.real
    codomain = constraints.interval(-1.0, 1.0)
    bijective = True
    sign = 1

    def _call(self, x: Tensor) -> Tensor:
        return ops.tanh(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.atanh(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return 2.0 * (math.log(2.0) - x - ops.softplus(-2.0 * x))


@_equal_within_class
class AbsTransform(Transform):
    """y = |x| (not bijective; the inverse picks the positive root).

    Example:
        >>> import downslope as ds
        >>> AbsTransform()(ds.tensor(-2.0)).item()
        2.0
    """

    domain = constraints.real
    codomain = constraints.positive

    def _call(self, x: Tensor) -> Tensor:
        return ops.abs(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return y


class AffineTransform(Transform):
    """y = loc + scale * x, over events of ``event_dim`` dims."""

    bijective = True

    def __init__(self, loc: Any, scale: Any, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
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

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return AffineTransform(self.loc, self.scale, self._event_dim, cache_size=cache_size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AffineTransform):
            return False
        for a, b in ((self.loc, other.loc), (self.scale, other.scale)):
            if not bool(np.all(constraints._host(a) == constraints._host(b))):  # host: comparing parameters
                return False
        return True

    __hash__ = object.__hash__

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
        # log|scale| is broadcast over the whole event before summing, so a scale that does not
        # span the event (a scalar tensor with event_dim=1) still counts once per coordinate.
        scale = _param(self.scale, x)
        shape = np.broadcast_shapes(tuple(x.shape), tuple(scale.shape))
        result = sum_rightmost(ops.broadcast_to(ops.log(ops.abs(scale)), shape), self._event_dim)
        out = tuple(x.shape[: x.ndim - self._event_dim]) if self._event_dim else tuple(x.shape)
        return result if tuple(result.shape) == out else ops.broadcast_to(result, out)

    def forward_shape(self, shape: Any) -> Size:
        return _size(np.broadcast_shapes(tuple(shape), _shape_of(self.loc), _shape_of(self.scale)))

    def inverse_shape(self, shape: Any) -> Size:
        return self.forward_shape(shape)


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, Tensor) else ()


def _tril_selector(n: int, diag: int) -> np.ndarray:
    """A (m, n*n) 0/1 matrix picking, in row-major order, the entries (i, j) with j < i + diag + 1."""
    rows, cols = np.nonzero(np.arange(n) < np.arange(n)[:, None] + (diag + 1))
    sel = np.zeros((len(rows), n * n))  # host: a constant index matrix
    sel[np.arange(len(rows)), rows * n + cols] = 1.0
    return sel


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The lower triangle (below diagonal ``diag``) of the last two dims, row by row."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ArgumentError(f"tril_matrix_to_vec: diag ({diag}) provided is outside [{-n}, {n - 1}]")
    sel = Tensor(_tril_selector(n, diag)).astype(mat.dtype).to(mat.device)
    flat = ops.reshape(mat, tuple(mat.shape[:-2]) + (n * n,))
    return ops.matmul(flat, ops.transpose(sel, 0, 1))


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """The inverse of :func:`tril_matrix_to_vec`: a square matrix with ``vec`` in its lower triangle."""
    m = vec.shape[-1]
    n_float = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * m + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    n = round(n_float)
    if abs(n - n_float) > 1e-6:
        raise ShapeError(f"vec_to_tril_matrix: the size of the last dim ({m}) is not a triangular number")
    sel = Tensor(_tril_selector(n, diag)).astype(vec.dtype).to(vec.device)
    return ops.reshape(ops.matmul(vec, sel), tuple(vec.shape[:-1]) + (n, n))


class CorrCholeskyTransform(Transform):
    """An unconstrained vector of D(D-1)/2 reals to the Cholesky factor of a D x D correlation matrix
    (tanh to (-1, 1), then stick-breaking along each row), as torch's.

    Example:
        >>> import downslope as ds
        >>> CorrCholeskyTransform()(ds.zeros(3)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def _call(self, x: Tensor) -> Tensor:
        x = ops.tanh(x)
        eps = _eps(x.dtype)
        x = ops.clamp(x, min=-1 + eps, max=1 - eps)
        r = vec_to_tril_matrix(x, diag=-1)
        z = r**2
        z1m_cumprod_sqrt = ops.cumprod(ops.sqrt(1 - z), -1)
        r = r + eye(r.shape[-1], dtype=r.dtype, device=r.device)
        return r * ops.pad(z1m_cumprod_sqrt[..., :-1], [1, 0], value=1.0)

    def _inverse(self, y: Tensor) -> Tensor:
        y_cumsum = 1 - ops.cumsum(y * y, -1)
        y_cumsum_shifted = ops.pad(y_cumsum[..., :-1], [1, 0], value=1.0)
        y_vec = tril_matrix_to_vec(y, diag=-1)
        y_cumsum_vec = tril_matrix_to_vec(y_cumsum_shifted, diag=-1)
        t = y_vec / ops.sqrt(y_cumsum_vec)
        return (ops.log1p(t) - ops.log1p(-t)) / 2

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        y1m_cumsum = 1 - ops.cumsum(y * y, -1)
        y1m_cumsum_tril = tril_matrix_to_vec(y1m_cumsum, diag=-2)
        stick_breaking_logdet = 0.5 * ops.sum(ops.log(y1m_cumsum_tril), axis=-1)
        tanh_logdet = -2 * ops.sum(x + ops.softplus(-2 * x) - math.log(2.0), axis=-1)
        return stick_breaking_logdet + tanh_logdet

    def forward_shape(self, shape: Any) -> Size:
        shape = tuple(shape)
        if len(shape) < 1:
            raise ShapeError("CorrCholeskyTransform: too few dimensions on input")
        n = shape[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ShapeError(f"CorrCholeskyTransform: input size {n} is not a flattened lower-diagonal number")
        return _size(shape[:-1] + (d, d))

    def inverse_shape(self, shape: Any) -> Size:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ShapeError("CorrCholeskyTransform: too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ShapeError(f"CorrCholeskyTransform: input is not square: {shape}")
        d = shape[-1]
        return _size(shape[:-2] + (d * (d - 1) // 2,))


@_equal_within_class
class SoftmaxTransform(Transform):
    """Unconstrained reals to the simplex by ``exp`` and normalising (not bijective; no Jacobian).

    Example:
        >>> import downslope as ds
        >>> SoftmaxTransform()(ds.zeros(2)).tolist()
        [0.5, 0.5]
    """

    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x: Tensor) -> Tensor:
        probs = ops.exp(x - ops.amax(x.detach(), axis=-1, keepdims=True))
        return probs / ops.sum(probs, axis=-1, keepdims=True)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.log(y)

    def forward_shape(self, shape: Any) -> Size:
        if len(tuple(shape)) < 1:
            raise ShapeError("SoftmaxTransform: too few dimensions on input")
        return _size(shape)

    def inverse_shape(self, shape: Any) -> Size:
        return self.forward_shape(shape)


def _offset(n: int, like: Tensor, shift: int) -> Tensor:
    """``shift - cumsum(ones(n))`` = [shift - 1, ..., shift - n] as a constant like ``like``."""
    return Tensor(np.arange(shift - 1, shift - 1 - n, -1, dtype=np.float64)).astype(like.dtype).to(like.device)


@_equal_within_class
class StickBreakingTransform(Transform):
    """Unconstrained reals (K - 1 of them) to the K-simplex by stick-breaking, bijective, as torch's.

    Example:
        >>> import downslope as ds
        >>> [round(v, 4) for v in StickBreakingTransform()(ds.zeros(2)).tolist()]
        [0.3333, 0.3333, 0.3333]
    """

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def _call(self, x: Tensor) -> Tensor:
        offset = _offset(x.shape[-1], x, x.shape[-1] + 1)
        z = _clipped_sigmoid(x - ops.log(offset))
        z_cumprod = ops.cumprod(1 - z, -1)
        return ops.pad(z, [0, 1], value=1.0) * ops.pad(z_cumprod, [1, 0], value=1.0)

    def _inverse(self, y: Tensor) -> Tensor:
        y_crop = y[..., :-1]
        offset = _offset(y_crop.shape[-1], y, y.shape[-1])
        sf = ops.clamp(1 - ops.cumsum(y_crop, -1), min=_tiny(y.dtype))
        return ops.log(y_crop) - ops.log(sf) + ops.log(offset)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        from ..nn.functional import logsigmoid

        offset = _offset(x.shape[-1], x, x.shape[-1] + 1)
        x = x - ops.log(offset)
        return ops.sum(-x + logsigmoid(x) + ops.log(y[..., :-1]), axis=-1)

    def forward_shape(self, shape: Any) -> Size:
        shape = tuple(shape)
        if len(shape) < 1:
            raise ShapeError("StickBreakingTransform: too few dimensions on input")
        return _size(shape[:-1] + (shape[-1] + 1,))

    def inverse_shape(self, shape: Any) -> Size:
        shape = tuple(shape)
        if len(shape) < 1:
            raise ShapeError("StickBreakingTransform: too few dimensions on input")
        return _size(shape[:-1] + (shape[-1] - 1,))


@_equal_within_class
class LowerCholeskyTransform(Transform):
    """An unconstrained square matrix to a lower-triangular one with positive diagonal (the strict
    lower triangle kept, the diagonal exponentiated; no Jacobian, as torch's).

    Example:
        >>> import downslope as ds
        >>> LowerCholeskyTransform()(ds.zeros(2, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def _call(self, x: Tensor) -> Tensor:
        return ops.tril(x, -1) + ops.diag_embed(ops.exp(ops.diagonal(x, dim1=-2, dim2=-1)))

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.tril(y, -1) + ops.diag_embed(ops.log(ops.diagonal(y, dim1=-2, dim2=-1)))


@_equal_within_class
class PositiveDefiniteTransform(Transform):
    """An unconstrained square matrix to a positive definite one: L L^T of its LowerCholeskyTransform.

    Example:
        >>> import downslope as ds
        >>> PositiveDefiniteTransform()(ds.zeros(2, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def _call(self, x: Tensor) -> Tensor:
        lower = LowerCholeskyTransform()(x)
        return ops.matmul(lower, ops.transpose(lower, -1, -2))

    def _inverse(self, y: Tensor) -> Tensor:
        from ..linalg import cholesky

        return LowerCholeskyTransform().inv(cholesky(y))


def _check_dim(where: str, dim: int, t: Tensor, size: int, what: str) -> None:
    if not -t.ndim <= dim < t.ndim:
        raise ShapeError(f"{where}: dim {dim} out of range for a tensor with {t.ndim} dimensions")
    if t.shape[dim] != size:
        raise ShapeError(f"{where}: size {t.shape[dim]} along dim {dim} must equal {what} {size}")


class CatTransform(Transform):
    """Transforms ``tseq`` applied to consecutive slices of ``lengths`` along ``dim``, concatenated.

    Example:
        >>> import downslope as ds
        >>> t = CatTransform([ExpTransform(), AffineTransform(1.0, 2.0)], dim=0, lengths=[1, 1])
        >>> t(ds.tensor([0.0, 1.0])).tolist()
        [1.0, 3.0]
    """

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, lengths: Any = None, cache_size: int = 0) -> None:
        tseq = list(tseq)
        if not all(isinstance(t, Transform) for t in tseq):
            raise ArgumentError("CatTransform: every element of tseq must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = tseq
        self.lengths = [1] * len(tseq) if lengths is None else [int(n) for n in lengths]
        if len(self.lengths) != len(self.transforms):
            raise ArgumentError(f"CatTransform: {len(self.lengths)} lengths for {len(self.transforms)} transforms")
        self.dim = int(dim)

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self) -> int:
        return sum(self.lengths)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CatTransform(self.transforms, self.dim, self.lengths, cache_size)

    def _map(self, v: Tensor, forward: bool) -> Tensor:
        _check_dim("CatTransform", self.dim, v, self.length, "the total length")
        out, start = [], 0
        for t, n in zip(self.transforms, self.lengths):
            piece = ops.narrow(v, self.dim, start, n)
            out.append(t(piece) if forward else t.inv(piece))
            start += n
        return ops.cat(out, self.dim)

    def _call(self, x: Tensor) -> Tensor:
        return self._map(x, True)

    def _inverse(self, y: Tensor) -> Tensor:
        return self._map(y, False)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        _check_dim("CatTransform", self.dim, x, self.length, "the total length")
        _check_dim("CatTransform", self.dim, y, self.length, "the total length")
        terms, start = [], 0
        for t, n in zip(self.transforms, self.lengths):
            term = t.log_abs_det_jacobian(ops.narrow(x, self.dim, start, n), ops.narrow(y, self.dim, start, n))
            if t.event_dim < self.event_dim:
                term = sum_rightmost(term, self.event_dim - t.event_dim)
            terms.append(term)
            start += n
        dim = self.dim - x.ndim if self.dim >= 0 else self.dim
        dim += self.event_dim
        if dim < 0:
            return ops.cat(terms, dim)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self) -> Any:
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self) -> Any:
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)


class StackTransform(Transform):
    """Transforms ``tseq`` applied to the slices along ``dim``, stacked back.

    Example:
        >>> import downslope as ds
        >>> t = StackTransform([ExpTransform(), AffineTransform(1.0, 2.0)], dim=0)
        >>> t(ds.tensor([0.0, 1.0])).tolist()
        [1.0, 3.0]
    """

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, cache_size: int = 0) -> None:
        tseq = list(tseq)
        if not all(isinstance(t, Transform) for t in tseq):
            raise ArgumentError("StackTransform: every element of tseq must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = tseq
        self.dim = int(dim)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return StackTransform(self.transforms, self.dim, cache_size)

    def _slices(self, z: Tensor) -> list[Tensor]:
        _check_dim("StackTransform", self.dim, z, len(self.transforms), "the number of transforms")
        return [ops.select(z, self.dim, i) for i in range(z.shape[self.dim])]

    def _call(self, x: Tensor) -> Tensor:
        return ops.stack([t(s) for s, t in zip(self._slices(x), self.transforms)], self.dim)

    def _inverse(self, y: Tensor) -> Tensor:
        return ops.stack([t.inv(s) for s, t in zip(self._slices(y), self.transforms)], self.dim)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        terms = [
            _as_tensor_like(t.log_abs_det_jacobian(xs, ys), xs)
            for xs, ys, t in zip(self._slices(x), self._slices(y), self.transforms)
        ]
        return ops.stack(terms, self.dim)

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self) -> Any:
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self) -> Any:
        return constraints.stack([t.codomain for t in self.transforms], self.dim)


class CumulativeDistributionTransform(Transform):
    """x to ``distribution.cdf(x)`` (onto [0, 1]); the inverse is ``icdf`` and the log-Jacobian the
    log density.

    Example:
        >>> import downslope as ds
        >>> CumulativeDistributionTransform(Normal(0.0, 1.0))(ds.tensor(0.0)).item()
        0.5
    """

    bijective = True
    codomain = constraints.unit_interval
    sign = 1

    def __init__(self, distribution: Distribution, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self) -> Any:
        return self.distribution.support

    def _call(self, x: Tensor) -> Tensor:
        return self.distribution.cdf(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return self.distribution.log_prob(x)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CumulativeDistributionTransform(self.distribution, cache_size=cache_size)


class TransformedDistribution(Distribution):
    """``base_distribution`` pushed through ``transforms`` (one or a list, applied in order): samples
    are transformed draws, ``log_prob`` subtracts each transform's log-det-Jacobian, ``cdf``/``icdf``
    go through monotone transforms. As in torch, the base is expanded to the shape the transforms
    need and wrapped in :class:`Independent` over the dims the transforms couple, and the event shape
    is the larger of the transforms' codomain event dim and the base's.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions import ExpTransform, Normal, TransformedDistribution
        >>> d = TransformedDistribution(Normal(0.0, 1.0), ExpTransform())
        >>> round(float(d.log_prob(ds.tensor(1.0))), 4)
        -0.9189
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}

    def __init__(self, base_distribution: Distribution, transforms: Any, validate_args: Any = None) -> None:
        from .compose import Independent

        if isinstance(transforms, Transform):
            self.transforms = [transforms]
        elif isinstance(transforms, (list, tuple)):
            if not all(isinstance(t, Transform) for t in transforms):
                raise ArgumentError("TransformedDistribution: transforms must be a Transform or a list of Transforms")
            self.transforms = list(transforms)
        else:
            raise ArgumentError(
                f"TransformedDistribution: transforms must be a Transform or a list, got {type(transforms).__name__}"
            )
        base_shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        base_event_dim = len(base_distribution.event_shape)
        transform = ComposeTransform(self.transforms)
        domain_event_dim = transform.domain.event_dim
        if len(base_shape) < domain_event_dim:
            raise ShapeError(
                f"TransformedDistribution: base_distribution needs a shape of at least {domain_event_dim} dims, "
                f"got {base_shape}"
            )
        forward_shape = transform.forward_shape(base_shape)
        expanded_base_shape = transform.inverse_shape(forward_shape)
        if base_shape != expanded_base_shape:
            base_distribution = base_distribution.expand(
                expanded_base_shape[: len(expanded_base_shape) - base_event_dim]
            )
        reinterpreted = domain_event_dim - base_event_dim
        if reinterpreted > 0:
            base_distribution = Independent(base_distribution, reinterpreted)
        self.base_dist = base_distribution
        codomain_event_dim = transform.codomain.event_dim
        event_dim = max(codomain_event_dim, base_event_dim + codomain_event_dim - domain_event_dim)
        cut = len(forward_shape) - event_dim
        super().__init__(forward_shape[:cut], forward_shape[cut:], validate_args)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.base_dist.has_rsample)

    def _support(self) -> Any:
        if not self.transforms:
            return self.base_dist.support
        support = self.transforms[-1].codomain
        if len(self.event_shape) > support.event_dim:
            support = constraints.independent(support, len(self.event_shape) - support.event_dim)
        return support

    # a class-level attribute (not a plain property) so subclasses may fix it with a constraint
    support: Any = constraints.dependent_property(_support)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        batch = _shape(batch_shape)
        shape = batch + self.event_shape
        for t in reversed(self.transforms):
            shape = t.inverse_shape(shape)
        base_batch = shape[: len(shape) - len(self.base_dist.event_shape)]
        new = object.__new__(type(self)) if _instance is None else _instance
        # what a subclass's expand set on its _instance (torch's pattern) is kept
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k not in new.__dict__})
        new.base_dist = self.base_dist.expand(base_batch)
        new.batch_shape = batch
        return new

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

    def _like(self) -> Tensor | None:
        return next((v for v in _tensors_of(self.base_dist) if v.dtype.kind == "f"), None)

    def log_prob(self, value: Any) -> Tensor:
        y = value if isinstance(value, Tensor) and value.dtype.kind == "f" else _param(value, self._like())
        if self._validate_args:
            self._validate_sample(y)
        event_dim = len(self.event_shape)
        log_prob: Any = 0.0
        for t in reversed(self.transforms):
            x = t.inv(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            log_prob = log_prob - sum_rightmost(
                _as_tensor_like(t.log_abs_det_jacobian(x, y), x), event_dim - t.domain.event_dim
            )
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
        v = value if isinstance(value, Tensor) and value.dtype.kind == "f" else _param(value, self._like())
        for t in reversed(self.transforms):
            v = t.inv(v)
        if self._validate_args:
            self.base_dist._validate_sample(v)
        return self._monotonize_cdf(self.base_dist.cdf(v))

    def icdf(self, value: Any) -> Tensor:
        v = value if isinstance(value, Tensor) and value.dtype.kind == "f" else _param(value, self._like())
        v = self.base_dist.icdf(self._monotonize_cdf(v))
        for t in self.transforms:
            v = t(v)
        return v


def _tensors_of(dist: Distribution) -> list[Tensor]:
    """The tensors a distribution (or the one it wraps) holds, for picking a dtype and device."""
    found = [v for v in vars(dist).values() if isinstance(v, Tensor)]
    inner = vars(dist).get("base_dist")
    return found + (_tensors_of(inner) if isinstance(inner, Distribution) else [])


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
