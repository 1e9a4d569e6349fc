"""torch.svd_lowrank and torch.pca_lowrank: randomized low-rank SVD (Halko, Martinsson and Tropp, "Finding
structure with randomness", 2009: algorithm 4.4, the randomized range finder with subspace iterations, then
algorithm 5.1, the SVD of the projection), as torch's ``torch/_lowrank.py`` computes it.

Every step is a recorded op (matmul, ``linalg.qr``, ``linalg.svd``, mean), so gradients flow to ``A``
(and ``M``) through the same formulas as torch's. The random test matrix comes from the library's seeded
generator: the factors are not torch's for the same seed, but they span the same subspaces up to the
approximation's error, and with ``q`` at least the rank the singular values are ``linalg.svd``'s. The
signs of the singular vectors follow LAPACK's SVD of the small projected matrix (through NumPy), which
may differ from torch's.
"""

from __future__ import annotations

from typing import Any

from . import linalg, ops
from .errors import ArgumentError, ArgumentTypeError, ShapeError
from .tensor import Tensor, randn

__all__ = ["svd_lowrank", "pca_lowrank", "get_approximate_basis"]


def _adjoint(x: Tensor) -> Tensor:
    return x.mH


def _floating_dtype(a: Tensor) -> Any:
    """torch's ``get_floating_dtype``: a floating or complex tensor's own dtype, float32 otherwise."""
    return a.dtype if a.array.dtype.kind in "fc" else "float32"


def _check_matrix(A: Any, name: str) -> Tensor:
    if not isinstance(A, Tensor):
        raise ArgumentTypeError(f"{name}: expected A to be a Tensor, got {type(A).__name__}")
    if A.ndim < 2:
        raise ShapeError(f"{name}: expected A of shape (*, m, n) with at least 2 dims, got shape {tuple(A.shape)}")
    return A


def _check_count(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentError(f"{name}: {what}(={value!r}) must be a non-negative integer")
    return value


def get_approximate_basis(A: Tensor, q: int, niter: int | None = 2, M: Tensor | None = None) -> Tensor:
    """``Q`` with ``q`` orthonormal columns such that ``Q Q^H (A - M)`` approximates ``A - M`` (``M``
    optional), from a Gaussian test matrix and ``niter`` subspace iterations, each re-orthonormalised
    by QR (Halko et al. algorithm 4.4)."""
    niter = 2 if niter is None else niter
    R = randn(A.shape[-1], q, dtype=_floating_dtype(A), device=A.device)
    X = A @ R
    if M is not None:
        X = X - M @ R
    Q = linalg.qr(X).Q
    for _ in range(niter):
        X = _adjoint(A) @ Q
        if M is not None:
            X = X - _adjoint(M) @ Q
        Q = linalg.qr(X).Q
        X = A @ Q
        if M is not None:
            X = X - M @ Q
        Q = linalg.qr(X).Q
    return Q


def svd_lowrank(
    A: Tensor, q: int | None = 6, niter: int | None = 2, M: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(U, S, V)`` with ``A ≈ U diag(S) V^H`` (or ``A - M``, ``M`` broadcast to ``A``'s shape), from a
    randomized range finder with ``q`` columns (``q`` a slightly overestimated rank of ``A``) and ``niter``
    subspace iterations (torch.svd_lowrank). ``U`` is ``(*, m, q)``, ``S`` ``(*, q)``, ``V`` ``(*, n, q)``.
    Random: seed with ``ds.manual_seed`` for repeatable factors.

    Example:
        >>> import downslope as ds
        >>> a = ds.randn(8, 2, dtype=ds.float64) @ ds.randn(2, 5, dtype=ds.float64)  # rank 2
        >>> u, s, v = ds.svd_lowrank(a, q=2)
        >>> bool(ds.allclose(u @ ds.diag(s) @ v.mT, a))
        True
    """
    A = _check_matrix(A, "svd_lowrank")
    q = _check_count(6 if q is None else q, "q", "svd_lowrank")
    niter = _check_count(2 if niter is None else niter, "niter", "svd_lowrank")
    m, n = A.shape[-2:]
    if M is not None:
        M = ops.broadcast_to(M, A.shape)
    if m < n:  # the range finder works on the taller side
        A = _adjoint(A)
        if M is not None:
            M = _adjoint(M)
    Q = get_approximate_basis(A, q, niter=niter, M=M)
    B = _adjoint(Q) @ A
    if M is not None:
        B = B - _adjoint(Q) @ M
    U, S, Vh = linalg.svd(B, full_matrices=False)
    V = _adjoint(Vh)
    U = Q @ U
    if m < n:
        U, V = V, U
    return U, S, V


def pca_lowrank(A: Tensor, q: int | None = None, center: bool = True, niter: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Principal component analysis of ``A`` (``m`` samples by ``n`` features, or a batch of such) as
    :func:`svd_lowrank` of the column-centred ``A`` (``center=False``: ``A`` as it is): ``V``'s columns are
    the principal directions, ``S**2 / (m - 1)`` the covariance's eigenvalues, ``A @ V[:, :k]`` the
    projection onto the first ``k`` components (torch.pca_lowrank). ``q`` defaults to ``min(6, m, n)``.

    Example:
        >>> import downslope as ds
        >>> x = ds.randn(50, 4, dtype=ds.float64)
        >>> u, s, v = ds.pca_lowrank(x, q=4)
        >>> s.shape, v.shape
        (downslope.Size([4]), downslope.Size([4, 4]))
    """
    A = _check_matrix(A, "pca_lowrank")
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= min(m, n):
        raise ArgumentError(
            f"pca_lowrank: q(={q!r}) must be non-negative integer and not greater than min(m, n)={min(m, n)}"
        )
    niter = _check_count(niter, "niter", "pca_lowrank")
    if not center:
        return svd_lowrank(A, q, niter=niter)
    return svd_lowrank(A - A.mean(dim=-2, keepdim=True), q, niter=niter)
