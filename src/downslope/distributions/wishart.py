"""The Wishart distribution over positive-definite matrices (``torch.distributions.wishart``):
parameterised by degrees of freedom ``df`` and a covariance matrix, a precision matrix or the lower
Cholesky factor of the covariance; ``rsample`` by the Bartlett decomposition."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import linalg, ops
from ..errors import ArgumentError
from ..tensor import Tensor, arange, eye, randn
from . import constraints
from ._special import digamma
from .continuous import Chi2
from .distribution import Distribution, _param, _shape, lazy_property
from .more import ExponentialFamily
from .multivariate_normal import _one_matrix, _scale_tril_of

__all__ = ["Wishart"]

_LOG_2 = math.log(2)


def _mT(x: Tensor) -> Tensor:  # noqa: N802
    return ops.transpose(x, -1, -2)


def _mvdigamma(x: Tensor, p: int) -> Tensor:
    """The multivariate digamma: sum over i < p of digamma(x - i / 2)."""
    shifts = arange(p, dtype=x.dtype, device=x.device) / 2
    return ops.sum(digamma(ops.unsqueeze(x, -1) - shifts), axis=-1)


def _cholesky_solve(B: Tensor, L: Tensor) -> Tensor:  # noqa: N803
    """(L L^T)^-1 B with B's and L's batch dims broadcast first: linalg.cholesky_solve pairs an
    unbatched B with a batched L wrongly (the rows of different batch entries get mixed)."""
    batch = tuple(np.broadcast_shapes(B.shape[:-2], L.shape[:-2]))
    return linalg.cholesky_solve(ops.broadcast_to(B, batch + B.shape[-2:]), ops.broadcast_to(L, batch + L.shape[-2:]))


class Wishart(ExponentialFamily):
    """W(df, Sigma) over symmetric positive-definite p x p matrices, with exactly one of
    ``covariance_matrix`` (Sigma), ``precision_matrix`` (Sigma^-1) or ``scale_tril`` (L, Sigma = L L^T);
    ``df`` must exceed p - 1. Batch dims of ``df`` and the matrix broadcast. The mean is df Sigma.

    ``rsample`` uses the Bartlett decomposition; a draw that comes out singular (possible for
    p - 1 < df < p) is redrawn up to ``max_try_correction`` times, with a warning.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions import Wishart
        >>> w = Wishart(ds.tensor(4.0), covariance_matrix=ds.eye(2))
        >>> w.mean
        tensor([[4., 0.],
                [0., 4.]])
        >>> round(float(w.log_prob(ds.eye(2))), 4)
        -4.2242
    """

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    # a property, as torch's: df's bound depends on the event size
    @property
    def arg_constraints(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            "covariance_matrix": constraints.positive_definite,
            "precision_matrix": constraints.positive_definite,
            "scale_tril": constraints.lower_cholesky,
            "df": constraints.greater_than(self.event_shape[-1] - 1),
        }

    def __init__(
        self,
        df: Any,
        covariance_matrix: Any = None,
        precision_matrix: Any = None,
        scale_tril: Any = None,
        validate_args: Any = None,
    ) -> None:
        given, name = _one_matrix("Wishart", covariance_matrix, precision_matrix, scale_tril)
        param = _param(given)
        if param.ndim < 2 or param.shape[-1] != param.shape[-2]:
            raise ArgumentError(
                "Wishart: the matrix must be square and at least two-dimensional, with optional leading batch "
                f"dims; got shape {tuple(param.shape)}"
            )
        df_t = _param(df, param)
        try:
            batch = tuple(np.broadcast_shapes(tuple(param.shape[:-2]), tuple(df_t.shape)))
        except ValueError:
            raise ArgumentError(
                f"Wishart: df of shape {tuple(df_t.shape)} does not broadcast with the matrix's batch shape "
                f"{tuple(param.shape[:-2])}"
            ) from None
        p = param.shape[-1]
        self.df = ops.broadcast_to(df_t, batch)
        df_host = constraints._host(self.df)  # host: validating arguments
        if (df_host <= p - 1).any():
            raise ArgumentError(f"Wishart: expected df greater than ndim - 1 = {p - 1}, got {_shown(df_host)}")
        setattr(self, name, ops.broadcast_to(param, batch + (p, p)))
        if (df_host < p).any():
            warnings.warn(
                "Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df < ndim.",
                UserWarning,
                stacklevel=2,
            )
        super().__init__(batch, (p, p), validate_args)  # validates the given matrix before it is factored
        self._unbroadcasted_scale_tril = _scale_tril_of(param, name)
        self._dist_chi2 = self._chi2()

    def _chi2(self) -> Chi2:
        """Chi2(df - i) for i < p: the squared diagonal of the Bartlett factor."""
        p = self.event_shape[-1]
        shifts = arange(p, dtype=self._unbroadcasted_scale_tril.dtype, device=self.df.device)
        return Chi2(ops.unsqueeze(self.df, -1) - shifts, validate_args=False)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Wishart:
        """The distribution with its parameters broadcast to ``batch_shape`` (no copies, no validation).

        Example:
            >>> import downslope as ds
            >>> Wishart(4.0, covariance_matrix=ds.eye(2)).expand((3,)).batch_shape
            downslope.Size([3])
        """
        batch = _shape(batch_shape)
        new = object.__new__(Wishart)
        cov_shape = batch + self.event_shape
        new._unbroadcasted_scale_tril = ops.broadcast_to(self._unbroadcasted_scale_tril, cov_shape)
        new.df = ops.broadcast_to(self.df, batch)
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, ops.broadcast_to(self.__dict__[name], cov_shape))
        Distribution.__init__(new, batch, self.event_shape, validate_args=False)
        new._dist_chi2 = new._chi2()
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def scale_tril(self) -> Tensor:
        return ops.broadcast_to(self._unbroadcasted_scale_tril, self.batch_shape + self.event_shape)

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril  # noqa: N806
        return ops.broadcast_to(ops.matmul(L, _mT(L)), self.batch_shape + self.event_shape)

    @lazy_property
    def precision_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril  # noqa: N806
        ident = eye(self.event_shape[-1], dtype=L.dtype, device=L.device)
        return ops.broadcast_to(_cholesky_solve(ident, L), self.batch_shape + self.event_shape)

    def _df_matrix(self, value: Tensor) -> Tensor:
        return ops.reshape(value, self.batch_shape + (1, 1))

    @property
    def mean(self) -> Tensor:
        return self._df_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        """(df - p - 1) Sigma, NaN where df <= p + 1 (no mode there)."""
        factor = self.df - (self.event_shape[-1] + 1)
        factor = ops.where(factor.array <= 0, math.nan, factor)
        return self._df_matrix(factor) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        v = self.covariance_matrix
        d = ops.diagonal(v, 0, -2, -1)
        return self._df_matrix(self.df) * (v * v + ops.unsqueeze(d, -1) * ops.unsqueeze(d, -2))

    def _bartlett_sampling(self, sample_shape: tuple[int, ...]) -> Tensor:
        """L A A^T L^T with A lower-triangular: sqrt(Chi2(df - i)) on the diagonal, N(0, 1) below."""
        p = self.event_shape[-1]
        diag = ops.clamp(ops.sqrt(self._dist_chi2.rsample(sample_shape)), min=float(np.finfo(self.df.dtype).eps))
        below = randn(*(sample_shape + self.batch_shape + (p, p)), dtype=self.df.dtype, device=self.df.device)
        noise = ops.diag_embed(diag) + ops.tril(below, -1)
        chol = ops.matmul(self._unbroadcasted_scale_tril, noise)
        return ops.matmul(chol, _mT(chol))

    def _singular(self, sample: Tensor, n_sample_dims: int) -> np.ndarray:
        """Per draw (over the sample dims), whether any matrix of the batch failed the support check."""
        bad = ~constraints._host(self.support.check(sample)).astype(bool)  # host: a data-dependent retry
        return np.asarray(bad.reshape(bad.shape[:n_sample_dims] + (-1,)).any(-1) if self.batch_shape else bad)

    def rsample(self, sample_shape: Any = (), max_try_correction: int | None = None) -> Tensor:
        """A reparameterised draw of shape ``sample_shape + batch_shape + (p, p)``. Draws that come out
        singular are redrawn, up to ``max_try_correction`` (10) times, with a "Singular sample
        detected." warning; ones still singular after that are returned as they are (their
        ``log_prob`` is -inf).

        Example:
            >>> import downslope as ds
            >>> _ = ds.manual_seed(0)
            >>> Wishart(ds.tensor(3.0), covariance_matrix=ds.eye(2)).rsample((5,)).shape
            downslope.Size([5, 2, 2])
        """
        tries = 10 if max_try_correction is None else int(max_try_correction)
        shape = _shape(sample_shape)
        sample = self._bartlett_sampling(shape)
        singular = self._singular(sample, len(shape))
        if singular.any():
            warnings.warn("Singular sample detected.", UserWarning, stacklevel=2)
            for _ in range(tries):
                fresh = self._bartlett_sampling(shape)
                mask = singular.reshape(singular.shape + (1,) * (len(self.batch_shape) + 2))
                sample = ops.where(mask, fresh, sample)
                singular = self._singular(sample, len(shape))
                if not singular.any():
                    break
        return sample

    def log_prob(self, value: Any) -> Tensor:
        v = self._value(value, self.df)
        nu = self.df
        p = self.event_shape[-1]
        L = self._unbroadcasted_scale_tril  # noqa: N806
        half_log_det = ops.sum(ops.log(ops.diagonal(L, 0, -2, -1)), axis=-1)
        trace = ops.sum(ops.diagonal(_cholesky_solve(v, L), 0, -2, -1), axis=-1)
        return (
            -nu * (p * _LOG_2 / 2 + half_log_det)
            - ops.mvlgamma(nu / 2, p)
            + (nu - p - 1) / 2 * linalg.slogdet(v).logabsdet
            - trace / 2
        )

    def entropy(self) -> Tensor:
        nu = self.df
        p = self.event_shape[-1]
        half_log_det = ops.sum(ops.log(ops.diagonal(self._unbroadcasted_scale_tril, 0, -2, -1)), axis=-1)
        return (
            (p + 1) * (p * _LOG_2 / 2 + half_log_det)
            + ops.mvlgamma(nu / 2, p)
            - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p)
            + nu * p / 2
        )

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        p = self.event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        x, y = natural_params
        p = self.event_shape[-1]
        return (y + (p + 1) / 2) * (-linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p) + ops.mvlgamma(y + (p + 1) / 2, p)


def _shown(values: np.ndarray) -> Any:
    return values.item() if values.size == 1 else values.tolist()  # host: an error message
