"""``torch.special``: the special functions under PyTorch's names (``ds.special.erfcx(x)``), each a
differentiable op; several are the very functions of the top level (``expit`` is :func:`downslope.sigmoid`,
``gammaln`` is :func:`downslope.lgamma`, ``psi`` is :func:`downslope.digamma`...). Each takes PyTorch's
``out=`` keyword where torch.special's does (all but ``softmax`` and ``log_softmax``), through the
top level's one wrapper (:func:`downslope.ops.out.with_out`), so the aliases stay the same objects.

Example:
    >>> import downslope as ds
    >>> ds.special.expit(ds.tensor([0.0]))
    tensor([0.5])
    >>> ds.special.gammaln(ds.tensor([3.0]))
    tensor([0.6931])
"""

from __future__ import annotations

from typing import Any

from . import ops
from .ops import logit as _logit
from .ops import special as _ops_special
from .ops.out import with_out
from .ops.reductions import log_softmax as _log_softmax
from .ops.reductions import softmax as _softmax
from .ops.special import (  # the polynomials, Bessel/Airy functions and zeta come wrapped with out=
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    gammainc,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    lgamma,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
    spherical_bessel_j0,
    zeta,
)
from .tensor import Tensor

# The same wrapper objects as the top level's (with_out wraps a function once).
erf, erfc, exp2, expm1, log1p = (with_out(f) for f in (ops.erf, ops.erfc, ops.exp2, ops.expm1, ops.log1p))
logsumexp, sinc, xlogy, expit, round = (
    with_out(f) for f in (ops.logsumexp, ops.sinc, ops.xlogy, ops.sigmoid, ops.round)
)
digamma, entr, erfcx, erfinv, i0, i0e, i1, i1e = (
    with_out(getattr(_ops_special, n)) for n in ("digamma", "entr", "erfcx", "erfinv", "i0", "i0e", "i1", "i1e")
)
log_ndtr, multigammaln, ndtr, ndtri, polygamma, xlog1py, gammaincc = (
    with_out(getattr(_ops_special, n))
    for n in ("log_ndtr", "multigammaln", "ndtr", "ndtri", "polygamma", "xlog1py", "gammaincc")
)
# lgamma and igamma come wrapped from downslope.ops.special (downslope.distributions re-exports those very
# objects), so their special spellings are the top level's objects too.
gammaln = lgamma
psi = digamma


def logit(x: Any, eps: float | None = None) -> Tensor:
    """log(x / (1 - x)) (torch.special.logit); with ``eps``, x is clamped to [eps, 1 - eps] first
    (see :func:`downslope.logit`).

    Example:
        >>> import downslope as ds
        >>> ds.special.logit(ds.tensor([0.0, 0.5]), eps=1e-6)
        tensor([-13.8155,   0.    ])
    """
    return _logit(x, eps)


logit = with_out(logit)


def softmax(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (torch.special.softmax: ``dim`` is required).

    Example:
        >>> import downslope as ds
        >>> ds.special.softmax(ds.tensor([0.0, 0.0]), 0)
        tensor([0.5, 0.5])
    """
    return _softmax(x, dim, dtype=dtype)


def log_softmax(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim`` (torch.special.log_softmax: ``dim`` is required).

    Example:
        >>> import downslope as ds
        >>> ds.special.log_softmax(ds.tensor([0.0, 0.0]), 0)
        tensor([-0.6931, -0.6931])
    """
    return _log_softmax(x, dim, dtype=dtype)


__all__ = [
    "digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc",
    "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp",
    "modified_bessel_i0", "modified_bessel_i1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "sinc", "softmax", "xlog1py", "xlogy",
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t", "chebyshev_polynomial_u",
    "chebyshev_polynomial_v", "chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
    "laguerre_polynomial_l", "legendre_polynomial_p", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w",
    "spherical_bessel_j0", "zeta",
]  # fmt: skip
