"""Constraints on parameters and values (``torch.distributions.constraints``): what ``validate_args``
checks a distribution's parameters and ``log_prob``'s values against.

``check(value)`` reads the value to the host (validation is not a training hot path) and returns a
bool tensor over the value's batch dims (its last ``event_dim`` dims are one event), as torch does.

Example:
    >>> from downslope.distributions import constraints
    >>> constraints.positive
    GreaterThan(lower_bound=0.0)
    >>> constraints.positive.check(-1.0).tolist()
    False
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ..tensor import Tensor

__all__ = [
    "Constraint",
    "boolean",
    "cat",
    "corr_cholesky",
    "dependent",
    "dependent_property",
    "greater_than",
    "greater_than_eq",
    "half_open_interval",
    "independent",
    "integer_interval",
    "interval",
    "is_dependent",
    "less_than",
    "lower_cholesky",
    "lower_triangular",
    "multinomial",
    "nonnegative",
    "nonnegative_integer",
    "one_hot",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_semidefinite",
    "real",
    "real_vector",
    "simplex",
    "square",
    "stack",
    "symmetric",
    "unit_interval",
]


def _host(value: Any) -> np.ndarray:
    """A tensor's (or number's) values as a host array."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        return np.asarray(value.detach().cpu().numpy())  # host: validating arguments
    return np.asarray(value)  # host: validating arguments


def satisfied(constraint: Any, value: Any) -> bool:
    """Whether every element (every event) of ``value`` satisfies ``constraint``: what ``validate_args``
    asks of each parameter and of each ``log_prob`` value.

    A distribution checks this on every construction and every ``log_prob``, at batch 1 in an RL
    rollout on every environment step, so a host tensor under one of this module's constraints is
    tested on its array in one pass (:meth:`Constraint._holds`), without making the bool tensor that
    ``check`` returns. A device tensor, or a constraint of a user's class (which may define ``check``
    as it likes), goes through ``check``, read back to the host: validation waits for the device, as
    in torch.
    """
    from ..tensor import Tensor

    array = value.array if isinstance(value, Tensor) else value
    if type(array) is np.ndarray and isinstance(constraint, Constraint) and constraint._own():  # host: host data
        return constraint._holds(array)
    return bool(_host(constraint.check(value)).all())  # host: validating arguments


def _number(value: Any) -> Any:
    """A bound as it prints: a Python number, or a host array."""
    arr = _host(value)
    return arr.item() if arr.size == 1 and arr.ndim == 0 else arr


class Constraint:
    """A region values must lie in; ``event_dim`` trailing dims form one event, ``is_discrete`` marks
    integer-valued supports."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Any) -> Tensor:
        """A bool tensor over ``value``'s batch dims (on its device), True where it satisfies the
        constraint, as torch's ``Constraint.check``."""
        from ..tensor import Tensor, wrap_array

        ok = wrap_array(np.asarray(self._check(value), dtype=bool))
        return ok.to(value.device) if isinstance(value, Tensor) and value.device != ok.device else ok

    def _check(self, value: Any) -> np.ndarray:
        """The check on the host (a subclass defines this one, or overrides ``check``)."""
        raise NotImplementedError

    def _reduce(self, ok: np.ndarray) -> np.ndarray:
        return np.asarray(ok.all(axis=tuple(range(-self.event_dim, 0))) if self.event_dim else ok)

    def _own(self) -> bool:
        """Whether this is one of this module's constraints (whose :meth:`_holds` is known to agree
        with ``check``), not an instance of a user's subclass."""
        return type(self).__module__ == __name__

    def _holds(self, v: np.ndarray) -> bool:
        """Whether all of the host array ``v`` satisfies the constraint (what ``check(v).all()`` says),
        in one pass where the class knows one (:func:`satisfied` calls it when :meth:`_own`)."""
        return bool(np.all(self._check(v)))

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A placeholder whose region depends on other parameters (checked by the distribution itself)."""

    def __init__(self, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete: bool = False, event_dim: int = 0) -> _Dependent:
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def _check(self, value: Any) -> np.ndarray:
        raise ArgumentError("Cannot determine validity of dependent constraint")


def is_dependent(constraint: Any) -> bool:
    return isinstance(constraint, _Dependent)


class dependent_property(property, _Dependent):  # noqa: N801  (torch's name)
    """A property standing for a dependent constraint (``support`` of Uniform, Binomial). Read on the
    class it is a dependent constraint itself (``is_dependent(Uniform.support)``), as in torch; used as
    ``@dependent_property(is_discrete=True, event_dim=1)`` it sets those two attributes."""

    def __init__(self, fn: Any = None, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        property.__init__(self, fn)
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, fn: Any) -> dependent_property:  # type: ignore[override]
        # the decorator-factory form: dependent_property(is_discrete=..., event_dim=...)(fn)
        return dependent_property(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _Real(Constraint):
    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce(v == v)  # not NaN

    def _holds(self, v: np.ndarray) -> bool:
        return v.dtype.kind in "biu" or not bool(np.isnan(v).any())


class _Boolean(Constraint):
    is_discrete = True

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce((v == 0) | (v == 1))


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)


class _GreaterThan(Constraint):
    def __init__(self, lower_bound: Any) -> None:
        self.lower_bound = lower_bound

    def _check(self, value: Any) -> np.ndarray:
        return self._reduce(_host(value) > _host(self.lower_bound))

    def _holds(self, v: np.ndarray) -> bool:
        bound = self.lower_bound
        if type(bound) is not float or v.dtype.kind not in "fiu":
            return bool(np.all(self._check(v)))
        if type(self) is _GreaterThanEq:
            return bool((v >= bound).all())
        if type(self) is _GreaterThan:
            return bool((v > bound).all())
        return bool(np.all(self._check(v)))

    def __repr__(self) -> str:
        return f"{type(self).__name__.lstrip('_')}(lower_bound={_number(self.lower_bound)})"


class _GreaterThanEq(_GreaterThan):
    def _check(self, value: Any) -> np.ndarray:
        return self._reduce(_host(value) >= _host(self.lower_bound))


class _LessThan(Constraint):
    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def _check(self, value: Any) -> np.ndarray:
        return self._reduce(_host(value) < _host(self.upper_bound))

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={_number(self.upper_bound)})"


class _Interval(Constraint):
    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce((_host(self.lower_bound) <= v) & (v <= _host(self.upper_bound)))

    def _holds(self, v: np.ndarray) -> bool:
        lo, hi = self.lower_bound, self.upper_bound
        if type(self) is not _Interval or type(lo) is not float or type(hi) is not float or v.dtype.kind != "f":
            return bool(np.all(self._check(v)))
        return bool(((lo <= v) & (v <= hi)).all())

    def __repr__(self) -> str:
        lo, hi = _number(self.lower_bound), _number(self.upper_bound)
        return f"{type(self).__name__.lstrip('_')}(lower_bound={lo}, upper_bound={hi})"


class _HalfOpenInterval(_Interval):
    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce((_host(self.lower_bound) <= v) & (v < _host(self.upper_bound)))


class _IntegerInterval(_Interval):
    is_discrete = True

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce((v % 1 == 0) & (_host(self.lower_bound) <= v) & (v <= _host(self.upper_bound)))

    def _holds(self, v: np.ndarray) -> bool:
        lo, hi = self.lower_bound, self.upper_bound
        if v.dtype.kind not in "iu" or type(lo) is not int or type(hi) is not int or not v.size:
            return bool(np.all(self._check(v)))
        return lo <= int(v.min()) and int(v.max()) <= hi  # integers: no fractional part to test


class _IntegerGreaterThan(_GreaterThan):
    is_discrete = True

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return self._reduce((v % 1 == 0) & (v >= _host(self.lower_bound)))


class _Simplex(Constraint):
    event_dim = 1

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return (v >= 0).all(-1) & (np.abs(v.sum(-1) - 1) < 1e-6)

    def _holds(self, v: np.ndarray) -> bool:
        return bool((v >= 0).all()) and bool((np.abs(v.sum(-1) - 1) < 1e-6).all())


class _LowerCholesky(Constraint):
    event_dim = 2

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        lower = (np.tril(v) == v).all((-2, -1))
        return np.asarray(lower & (np.diagonal(v, axis1=-2, axis2=-1) > 0).all(-1))


class _LowerTriangular(Constraint):
    event_dim = 2

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return np.asarray((np.tril(v) == v).all((-2, -1)))


class _CorrCholesky(Constraint):
    """Lower Cholesky factors of correlation matrices: lower triangular, positive diagonal, unit rows."""

    event_dim = 2

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        tol = float(np.finfo(v.dtype if v.dtype.kind == "f" else np.float32).eps) * v.shape[-1] * 10
        unit_rows = (np.abs(np.linalg.norm(v, axis=-1) - 1.0) <= tol).all(-1)
        return np.asarray(_LowerCholesky()._check(v) & unit_rows)


class _Square(Constraint):
    event_dim = 2

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return np.full(v.shape[:-2], v.shape[-2] == v.shape[-1], dtype=bool)


class _Symmetric(_Square):
    def _check(self, value: Any) -> np.ndarray:
        square = super()._check(value)
        if not square.all():
            return square
        v = _host(value)
        return np.asarray(np.isclose(v, np.swapaxes(v, -1, -2), atol=1e-6).all((-2, -1)))


class _PositiveSemidefinite(_Symmetric):
    def _check(self, value: Any) -> np.ndarray:
        sym = super()._check(value)
        if not sym.all():
            return sym
        v = _host(value).astype(np.float64)
        with np.errstate(all="ignore"):
            return np.asarray(np.linalg.eigvalsh(np.where(np.isfinite(v), v, 0.0)).min(-1) >= 0)


class _PositiveDefinite(_Symmetric):
    def _check(self, value: Any) -> np.ndarray:
        sym = super()._check(value)
        if not sym.all():
            return sym
        v = _host(value).astype(np.float64)
        if not v.size:
            return sym
        with np.errstate(all="ignore"):
            return np.asarray(np.linalg.eigvalsh(np.where(np.isfinite(v), v, 0.0)).min(-1) > 0)


class _Multinomial(Constraint):
    """Nonnegative counts along the last dim summing to at most ``upper_bound`` (torch checks no
    integrality)."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        return np.asarray((v >= 0).all(-1) & (v.sum(-1) <= _host(self.upper_bound)))


def _dim_in_range(dim: int, ndim: int) -> None:
    if not -ndim <= dim < ndim:
        raise ArgumentError(f"constraint: dim {dim} out of range for a value with {ndim} dimensions")


class _Cat(Constraint):
    """Constraints ``cseq`` applied to consecutive slices of ``lengths`` along ``dim``."""

    def __init__(self, cseq: Any, dim: int = 0, lengths: Any = None) -> None:
        self.cseq = list(cseq)
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise ArgumentError("constraints.cat: every element of cseq must be a Constraint")
        self.lengths = [1] * len(self.cseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.cseq):
            raise ArgumentError(f"constraints.cat: {len(self.lengths)} lengths for {len(self.cseq)} constraints")
        self.dim = dim

    @property
    def is_discrete(self) -> bool:  # type: ignore[override]
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:  # type: ignore[override]
        return max(c.event_dim for c in self.cseq)

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        _dim_in_range(self.dim, v.ndim)
        checks, start = [], 0
        for c, n in zip(self.cseq, self.lengths):
            part = np.take(v, range(start, start + n), axis=self.dim)
            checks.append(_host(c.check(part)))
            start += n
        return np.concatenate(checks, self.dim)


class _Stack(Constraint):
    """Constraints ``cseq`` applied to the slices of ``value`` along ``dim``."""

    def __init__(self, cseq: Any, dim: int = 0) -> None:
        self.cseq = list(cseq)
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise ArgumentError("constraints.stack: every element of cseq must be a Constraint")
        self.dim = dim

    @property
    def is_discrete(self) -> bool:  # type: ignore[override]
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:  # type: ignore[override]
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def _check(self, value: Any) -> np.ndarray:
        v = _host(value)
        _dim_in_range(self.dim, v.ndim)
        parts = [np.take(v, i, axis=self.dim) for i in range(v.shape[self.dim])]
        return np.stack([_host(c.check(p)) for p, c in zip(parts, self.cseq)], self.dim)


class _IndependentConstraint(Constraint):
    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint, self.reinterpreted_batch_ndims = base_constraint, reinterpreted_batch_ndims
        self.is_discrete = base_constraint.is_discrete
        self.event_dim = base_constraint.event_dim + reinterpreted_batch_ndims

    def _check(self, value: Any) -> np.ndarray:
        ok = _host(self.base_constraint.check(value))  # check, not _check: the base may be a user's
        n = self.reinterpreted_batch_ndims
        return np.asarray(ok.all(axis=tuple(range(-n, 0))) if n else ok)

    def _own(self) -> bool:
        return type(self).__module__ == __name__ and self.base_constraint._own()

    def _holds(self, v: np.ndarray) -> bool:
        # all of every event is all of the base's elements: the reinterpreted dims change nothing (a
        # value with too few dims for them goes where check handles it)
        if v.ndim < self.event_dim:
            return bool(np.all(self._check(v)))
        return self.base_constraint._holds(v)

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


dependent = _Dependent()
real = _Real()
real_vector = _IndependentConstraint(real, 1)
boolean = _Boolean()
one_hot = _OneHot()
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
unit_interval = _Interval(0.0, 1.0)
simplex = _Simplex()
lower_cholesky = _LowerCholesky()
lower_triangular = _LowerTriangular()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
interval = _Interval
half_open_interval = _HalfOpenInterval
integer_interval = _IntegerInterval
independent = _IndependentConstraint
multinomial = _Multinomial
cat = _Cat
stack = _Stack
