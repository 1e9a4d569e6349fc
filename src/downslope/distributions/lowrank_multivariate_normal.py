"""The multivariate normal with a low-rank-plus-diagonal covariance ``W W^T + diag(D)``: its
log-density, entropy and samples cost O(n m^2) through the Woodbury identity and the m x m
"capacitance" matrix ``I + W^T D^-1 W`` (PyTorch's ``LowRankMultivariateNormal``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import linalg, ops
from ..errors import ArgumentError
from ..tensor import Tensor, eye
from . import constraints
from .distribution import Distribution, _param, lazy_property, standard_normal
from .multivariate_normal import _batch_mahalanobis, _batch_mv, _mT, _solve_lower

__all__ = ["LowRankMultivariateNormal"]


def _batch_capacitance_tril(W: Tensor, D: Tensor) -> Tensor:  # noqa: N803
    """The Cholesky factor of the capacitance matrix ``I + W^T D^-1 W``."""
    m = W.shape[-1]
    wt_dinv = _mT(W) / ops.unsqueeze(D, -2)
    k = ops.matmul(wt_dinv, W) + eye(m, dtype=W.dtype, device=W.device)
    return linalg.cholesky(k)


def _batch_lowrank_logdet(W: Tensor, D: Tensor, capacitance_tril: Tensor) -> Tensor:  # noqa: N803
    """log det(W W^T + D), by the matrix determinant lemma."""
    diag = ops.diagonal(capacitance_tril, 0, -2, -1)
    return 2 * ops.sum(ops.log(diag), axis=-1) + ops.sum(ops.log(D), axis=-1)


def _batch_lowrank_mahalanobis(W: Tensor, D: Tensor, x: Tensor, capacitance_tril: Tensor) -> Tensor:  # noqa: N803
    """x^T (W W^T + D)^-1 x, by the Woodbury identity."""
    wt_dinv = _mT(W) / ops.unsqueeze(D, -2)
    wt_dinv_x = _batch_mv(wt_dinv, x)
    term1 = ops.sum(x * x / D, axis=-1)
    return term1 - _batch_mahalanobis(capacitance_tril, wt_dinv_x)


def _batch_trace_xxt(bmat: Tensor) -> Tensor:
    """The trace of ``X X^T`` for each matrix of the batch (its squared Frobenius norm)."""
    return ops.sum(bmat * bmat, axis=(-2, -1))


class LowRankMultivariateNormal(Distribution):
    """N(loc, W W^T + diag(D)) with ``cov_factor`` W of shape ``(..., n, m)`` and the positive
    ``cov_diag`` D of shape ``(..., n)``; batch dims of the three broadcast. ``rsample`` is
    ``loc + W eps_W + sqrt(D) eps_D``.

    Example:
        >>> import downslope as ds
        >>> d = LowRankMultivariateNormal(ds.zeros(2), ds.tensor([[1.0], [0.5]]), ds.tensor([1.0, 2.0]))
        >>> round(float(d.log_prob(ds.tensor([1.0, -1.0]))), 4), round(float(d.entropy()), 4)
        (-3.179, 3.5613)
    """

    has_rsample = True
    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector

    def __init__(self, loc: Any, cov_factor: Any, cov_diag: Any, validate_args: Any = None) -> None:
        loc_t = _param(loc)
        if loc_t.ndim < 1:
            raise ArgumentError("LowRankMultivariateNormal: loc must be at least one-dimensional")
        n = loc_t.shape[-1]
        factor = _param(cov_factor, loc_t)
        diag = _param(cov_diag, loc_t)
        if factor.ndim < 2:
            raise ArgumentError(
                "LowRankMultivariateNormal: cov_factor must be at least two-dimensional, with optional leading "
                f"batch dimensions; got shape {tuple(factor.shape)}"
            )
        if factor.shape[-2] != n:
            raise ArgumentError(
                f"LowRankMultivariateNormal: cov_factor must be a batch of matrices with shape {n} x m, "
                f"got shape {tuple(factor.shape)}"
            )
        if diag.ndim < 1 or diag.shape[-1] != n:
            raise ArgumentError(
                f"LowRankMultivariateNormal: cov_diag must be a batch of vectors with shape ({n},), got shape {tuple(diag.shape)}"
            )
        try:
            batch = np.broadcast_shapes(loc_t.shape[:-1], factor.shape[:-2], diag.shape[:-1])
        except ValueError:
            raise ArgumentError(
                f"LowRankMultivariateNormal: incompatible batch shapes: loc {tuple(loc_t.shape)}, cov_factor "
                f"{tuple(factor.shape)}, cov_diag {tuple(diag.shape)}"
            ) from None
        m = factor.shape[-1]
        self.loc = ops.broadcast_to(loc_t, (*batch, n))
        self.cov_factor = ops.broadcast_to(factor, (*batch, n, m))
        self.cov_diag = ops.broadcast_to(diag, (*batch, n))
        self._unbroadcasted_cov_factor = factor
        self._unbroadcasted_cov_diag = diag
        super().__init__(batch, (n,), validate_args)  # validates before the capacitance is factored
        self._capacitance_tril = _batch_capacitance_tril(factor, diag)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @lazy_property
    def variance(self) -> Tensor:
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return ops.broadcast_to(ops.sum(w * w, axis=-1) + d, self.batch_shape + self.event_shape)

    @lazy_property
    def scale_tril(self) -> Tensor:
        n = self.event_shape[0]
        d_sqrt = ops.unsqueeze(ops.sqrt(self._unbroadcasted_cov_diag), -1)
        dinvsqrt_w = self._unbroadcasted_cov_factor / d_sqrt
        k = ops.matmul(dinvsqrt_w, _mT(dinvsqrt_w)) + eye(n, dtype=d_sqrt.dtype, device=d_sqrt.device)
        return ops.broadcast_to(d_sqrt * linalg.cholesky(k), self.batch_shape + self.event_shape * 2)

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        w = self._unbroadcasted_cov_factor
        cov = ops.matmul(w, _mT(w)) + ops.diag_embed(self._unbroadcasted_cov_diag)
        return ops.broadcast_to(cov, self.batch_shape + self.event_shape * 2)

    @lazy_property
    def precision_matrix(self) -> Tensor:
        # Woodbury: (W W^T + D)^-1 = D^-1 - D^-1 W C^-1 W^T D^-1, C the capacitance matrix.
        wt_dinv = _mT(self._unbroadcasted_cov_factor) / ops.unsqueeze(self._unbroadcasted_cov_diag, -2)
        a = _solve_lower(self._capacitance_tril, wt_dinv)
        precision = ops.diag_embed(1.0 / self._unbroadcasted_cov_diag) - ops.matmul(_mT(a), a)
        return ops.broadcast_to(precision, self.batch_shape + self.event_shape * 2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended(sample_shape)
        eps_w = standard_normal(shape[:-1] + (self.cov_factor.shape[-1],), self.loc)
        eps_d = standard_normal(shape, self.loc)
        return (
            self.loc + _batch_mv(self._unbroadcasted_cov_factor, eps_w) + ops.sqrt(self._unbroadcasted_cov_diag) * eps_d
        )

    def _logdet(self) -> Tensor:
        return _batch_lowrank_logdet(
            self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag, self._capacitance_tril
        )

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.loc)
        diff = v - self.loc
        m = _batch_lowrank_mahalanobis(
            self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag, diff, self._capacitance_tril
        )
        return -0.5 * (self.event_shape[0] * math.log(2 * math.pi) + self._logdet() + m)

    def entropy(self) -> Tensor:
        h = 0.5 * (self.event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._logdet())
        return ops.broadcast_to(h, self.batch_shape)

    def expand(self, batch_shape: Any, _instance: Any = None) -> LowRankMultivariateNormal:
        new = super().expand(batch_shape)
        assert isinstance(new, LowRankMultivariateNormal)
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        return new
