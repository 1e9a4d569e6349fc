"""The multivariate normal distribution, parameterised by a covariance matrix, a precision matrix or
the lower Cholesky factor of the covariance, differentiable in the location and the matrix through
``downslope.linalg``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, gemm, linalg, ops
from ..errors import ArgumentError
from ..tensor import Tensor, eye
from . import constraints
from .distribution import Distribution, _param, constant, host_floats, lazy_property, no_graph, standard_normal

__all__ = ["MultivariateNormal"]


def _mT(x: Tensor) -> Tensor:  # noqa: N802
    return ops.transpose(x, -1, -2)


def _batch_mv(mat: Tensor, vec: Tensor) -> Tensor:
    return ops.squeeze(ops.matmul(mat, ops.unsqueeze(vec, -1)), -1)


def _solve_lower(L: Tensor, B: Tensor) -> Tensor:  # noqa: N803
    """L^-1 B for lower-triangular L, with L's and B's batch dims broadcast."""
    batch = np.broadcast_shapes(L.shape[:-2], B.shape[:-2])
    return linalg.solve_triangular(
        ops.broadcast_to(L, batch + L.shape[-2:]), ops.broadcast_to(B, batch + B.shape[-2:]), upper=False
    )


def _batch_mahalanobis(L: Tensor, x: Tensor) -> Tensor:  # noqa: N803
    """The squared Mahalanobis distance x^T (L L^T)^-1 x over the batch dims of L and x."""
    n = x.shape[-1]
    if L.ndim == 2:  # one factor for every vector: one solve with the vectors as columns
        flat = ops.reshape(x, (-1, n))
        y = linalg.solve_triangular(L, _mT(flat), upper=False)
        return ops.reshape(ops.sum(y * y, axis=0), x.shape[:-1])
    y = _solve_lower(L, ops.unsqueeze(x, -1))
    return ops.sum(ops.squeeze(y, -1) ** 2, axis=-1)


def _precision_to_scale_tril(P: Tensor) -> Tensor:  # noqa: N803
    """The lower Cholesky factor of P^-1, as PyTorch computes it (no explicit inverse)."""
    lf = linalg.cholesky(ops.flip(P, (-2, -1)))
    l_inv = _mT(ops.flip(lf, (-2, -1)))
    ident = eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return _solve_lower(l_inv, ops.broadcast_to(ident, P.shape))


def _one_matrix(fn: str, covariance_matrix: Any, precision_matrix: Any, scale_tril: Any) -> tuple[Any, str]:
    """The one matrix given of the three, with its parameter's name (torch takes exactly one)."""
    named = (
        ("covariance_matrix", covariance_matrix),
        ("precision_matrix", precision_matrix),
        ("scale_tril", scale_tril),
    )
    given = [(m, name) for name, m in named if m is not None]
    if len(given) != 1:
        raise ArgumentError(f"{fn}: pass exactly one of covariance_matrix, precision_matrix or scale_tril")
    return given[0]


def _scale_tril_of(matrix: Tensor, name: str) -> Tensor:
    """The lower Cholesky factor of the covariance, from the matrix given as parameter ``name``."""
    if name == "scale_tril":
        return matrix
    if name == "covariance_matrix":
        return linalg.cholesky(matrix)
    return _precision_to_scale_tril(matrix)


def _mvn_draw(loc: np.ndarray, L: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:  # noqa: N803
    """MultivariateNormal.rsample's value on host arrays of one dtype: its ops' steps (the same normal
    draw, the same matrix product through downslope.gemm), so the same numbers."""
    eps = backend.rng().standard_normal(shape, dtype=np.float64).astype(loc.dtype)
    with np.errstate(all="ignore"):
        return loc + gemm.matmul(L, eps.reshape(shape + (1,))).reshape(shape)


class MultivariateNormal(Distribution):
    """N(loc, Sigma) over the last dimension of ``loc``, with exactly one of ``covariance_matrix``,
    ``precision_matrix`` or ``scale_tril`` (lower-triangular, positive diagonal); batch dims of the
    location and the matrix broadcast. ``rsample`` is ``loc + L @ eps``.

    Example:
        >>> import downslope as ds
        >>> mvn = MultivariateNormal(ds.zeros(2), covariance_matrix=ds.tensor([[2.0, 0.5], [0.5, 1.0]]))
        >>> round(float(mvn.log_prob(ds.tensor([1.0, -1.0]))), 4), round(float(mvn.entropy()), 4)
        (-3.2605, 3.1177)
    """

    has_rsample = True
    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector

    def __init__(
        self,
        loc: Any,
        covariance_matrix: Any = None,
        precision_matrix: Any = None,
        scale_tril: Any = None,
        validate_args: Any = None,
    ) -> None:
        loc_t = _param(loc)
        if loc_t.ndim < 1:
            raise ArgumentError("MultivariateNormal: loc must be at least one-dimensional")
        given, name = _one_matrix("MultivariateNormal", covariance_matrix, precision_matrix, scale_tril)
        matrix = _param(given, loc_t)
        if matrix.ndim < 2:
            raise ArgumentError(
                "MultivariateNormal: the matrix must be at least two-dimensional, with optional leading batch dims"
            )
        n = loc_t.shape[-1]
        if matrix.shape[-2:] != (n, n):
            raise ArgumentError(
                f"MultivariateNormal: the matrix's last two dims {tuple(matrix.shape[-2:])} do not match "
                f"the event size {n} of loc"
            )
        batch = np.broadcast_shapes(matrix.shape[:-2], loc_t.shape[:-1])
        setattr(self, name, ops.broadcast_to(matrix, batch + (n, n)))
        self.loc = ops.broadcast_to(loc_t, batch + (n,))
        super().__init__(batch, (n,), validate_args)  # validates the given matrix before it is factored
        self._unbroadcasted_scale_tril = _scale_tril_of(matrix, name)

    @lazy_property
    def scale_tril(self) -> Tensor:
        return ops.broadcast_to(self._unbroadcasted_scale_tril, self.batch_shape + self.event_shape * 2)

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril  # noqa: N806
        return ops.broadcast_to(ops.matmul(L, _mT(L)), self.batch_shape + self.event_shape * 2)

    @lazy_property
    def precision_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril  # noqa: N806
        ident = eye(L.shape[-1], dtype=L.dtype, device=L.device)
        l_inv = _solve_lower(L, ops.broadcast_to(ident, L.shape))
        return ops.broadcast_to(ops.matmul(_mT(l_inv), l_inv), self.batch_shape + self.event_shape * 2)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        L = self._unbroadcasted_scale_tril  # noqa: N806
        return ops.broadcast_to(ops.sum(L * L, axis=-1), self.batch_shape + self.event_shape)

    def _half_log_det(self) -> Tensor:
        return ops.sum(ops.log(ops.diagonal(self._unbroadcasted_scale_tril, 0, -2, -1)), axis=-1)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        loc, L = self.loc, self._unbroadcasted_scale_tril  # noqa: N806
        if host_floats(loc, L) and type(self).rsample is MultivariateNormal.rsample:
            return constant(_mvn_draw(loc.array, L.array, self._extended(sample_shape)))
        return super().sample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        loc, L = self.loc, self._unbroadcasted_scale_tril  # noqa: N806
        if no_graph(loc, L) and host_floats(loc, L):
            return constant(_mvn_draw(loc.array, L.array, self._extended(sample_shape)))
        eps = standard_normal(self._extended(sample_shape), loc)
        return loc + _batch_mv(L, eps)

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        direct = self._direct_log_prob(v)
        if direct is not None:
            return direct
        diff = v - self.loc
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        return -0.5 * (self.event_shape[0] * math.log(2 * math.pi) + m) - self._half_log_det()

    def _direct_log_prob(self, v: Tensor) -> Tensor | None:
        """``log_prob`` on host arrays, where no gradient is wanted and one factor serves every vector
        (a policy's MultivariateNormal at batch 1): the same steps as the ops below, with SciPy's
        triangular solve, the one downslope.linalg makes on the host. None where that does not apply."""
        L, loc = self._unbroadcasted_scale_tril, self.loc  # noqa: N806
        arrays = (v.array, loc.array, L.array)
        if L.ndim != 2 or not no_graph(v, loc, L) or any(type(a) is not np.ndarray for a in arrays):  # host: host data
            return None
        if L.dtype not in (np.float32, np.float64) or v.dtype != L.dtype or loc.dtype != L.dtype:
            return None
        try:
            from scipy.linalg import solve_triangular
        except ImportError:  # SciPy is optional: the ops' own substitution serves
            return None
        diff = v.array - loc.array
        n = diff.shape[-1]
        y = solve_triangular(L.array, diff.reshape(-1, n).T, lower=True, check_finite=False)
        m = (y * y).sum(axis=0).reshape(diff.shape[:-1])
        half_log_det = np.log(np.diagonal(L.array, 0, -2, -1)).sum(axis=-1)
        return constant(-0.5 * (n * math.log(2 * math.pi) + m) - half_log_det)

    def entropy(self) -> Tensor:
        h = 0.5 * self.event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return ops.broadcast_to(h, self.batch_shape)

    def expand(self, batch_shape: Any, _instance: Any = None) -> MultivariateNormal:
        new = super().expand(batch_shape)
        assert isinstance(new, MultivariateNormal)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        return new
