"""PyTorch's ``torch.nn.utils.parametrizations``: ``orthogonal``, ``weight_norm`` and
``spectral_norm``, each registered through :func:`~downslope.nn.utils.parametrize.register_parametrization`.

The original tensors live in ``module.parametrizations.<name>`` (``original0``/``original1`` for
weight norm, ``original`` plus the ``0._u``/``0._v`` buffers for spectral norm, ``original`` plus
``0.base`` for orthogonal), so state_dict keys read as in PyTorch, and ``module.<name>`` is
computed from them on access.

Example:
    >>> from downslope import nn
    >>> from downslope.nn.utils.parametrizations import weight_norm
    >>> list(weight_norm(nn.Linear(3, 2)).state_dict())
    ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import numpy as np

from ... import backend, linalg, ops
from ...backend import namespace_of
from ...devices import to_host
from ...errors import ArgumentError, OutOfRangeError
from ...graph import no_grad
from ...tensor import Tensor, wrap_array
from .._arrays import array_like
from .._weight_norm import norm_except_dim, weight_norm_op
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# ---------------------------------------------------------------------- orthogonal
class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


def _eye_like(x: Tensor, n: int, k: int | None = None) -> Tensor:
    return wrap_array(namespace_of(x.array).eye(n, n if k is None else k, dtype=x.dtype))


def _householder_product(a: Tensor, tau: Tensor) -> Tensor:
    """The first ``k`` columns of ``H_0 H_1 ... H_{k-1}``, ``H_i = I - tau_i v_i v_i^T`` with ``v_i``
    column ``i`` of ``a`` below the diagonal and a 1 on it (PyTorch's ``linalg.householder_product``
    for the strictly lower ``a`` used here), built from differentiable ops."""
    n, k = a.shape[-2], a.shape[-1]
    v_all = ops.tril(a, -1) + _eye_like(a, n, k)
    q = _eye_like(a, n, k)
    for i in range(k - 1, -1, -1):  # applied right to left: H_0 (H_1 (... (H_{k-1} E)))
        v = v_all[..., :, i : i + 1]
        q = q - tau[..., i : i + 1, None] * ops.matmul(v, ops.matmul(v.mT, q))
    return q


def _geqrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK's ``geqrf`` on the host: R on and above the diagonal, the Householder vectors below,
    and their coefficients ``tau`` (batched over leading dims)."""
    m, n = a.shape[-2:]
    out = np.array(a, dtype=np.float64).reshape(-1, m, n)  # host: a rare no-grad assignment path
    taus = np.zeros((out.shape[0], min(m, n)))  # host: as above
    for b in range(out.shape[0]):
        r = out[b]
        for j in range(min(m, n)):
            alpha, xnorm = r[j, j], np.linalg.norm(r[j + 1 :, j])
            if xnorm == 0.0:
                continue  # tau = 0: H is the identity
            beta = -np.copysign(np.hypot(alpha, xnorm), alpha)
            taus[b, j] = (beta - alpha) / beta
            r[j + 1 :, j] /= alpha - beta
            r[j, j] = beta
            w = np.concatenate([[1.0], r[j + 1 :, j]])
            r[j:, j + 1 :] -= taus[b, j] * np.outer(w, w @ r[j:, j + 1 :])
    return out.reshape(a.shape), taus.reshape(*a.shape[:-2], min(m, n))


def _is_orthogonal(q: np.ndarray) -> bool:
    """Whether ``q``'s columns are orthonormal (unitary ones for complex ``q``: Q^H Q = I)."""
    n, k = q.shape[-2:]
    eps = 10.0 * n * np.finfo(q.dtype).eps
    return bool(np.allclose(np.swapaxes(q, -1, -2).conj() @ q, np.eye(k), atol=eps))  # host: q is a host copy


def _make_orthogonal(a: np.ndarray) -> np.ndarray:
    """The Q of ``a = QR`` with R's diagonal made non-negative (``a`` tall)."""
    q, r = np.linalg.qr(a)
    d = np.diagonal(r, axis1=-2, axis2=-1)
    if d.dtype.kind == "c":  # torch's sgn: d / |d| (0 for 0), so that R's diagonal is real and >= 0
        magnitude = np.abs(d)
        d = np.where(magnitude == 0, 0, d / np.where(magnitude == 0, 1, magnitude))
    else:
        d = np.sign(d)
    return q * d[..., None, :]


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True) -> None:
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:  # noqa: N803 (PyTorch's name)
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT  # noqa: N806
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = ops.tril(X)  # noqa: N806
            if n != k:
                pad = wrap_array(namespace_of(X.array).zeros((*X.shape[:-2], n, n - k), X.dtype))
                X = ops.cat([X, pad], -1)  # noqa: N806
            A = X - (X.mH if X.is_complex() else X.mT)  # noqa: N806 (skew-Hermitian: Q unitary)
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = linalg.matrix_exp(A)  # noqa: N806
            else:
                eye = _eye_like(A, n)
                Q = linalg.solve(eye - 0.5 * A, eye + 0.5 * A)  # noqa: N806
            if n != k:
                Q = Q[..., :k]  # noqa: N806
        else:
            A = ops.tril(X, -1)  # noqa: N806
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = _householder_product(A, tau)  # noqa: N806
            signs = ops.trunc(ops.diagonal(X.detach(), 0, -2, -1))  # PyTorch's .int(): no gradient
            Q = Q * ops.unsqueeze(signs, -2)  # noqa: N806
        if self._buffers.get("base") is not None:
            Q = ops.matmul(self.base, Q)  # noqa: N806
        if transposed:
            Q = Q.mT  # noqa: N806
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:  # noqa: N803
        if Q.shape != self.shape:
            raise ArgumentError(
                f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. Got a tensor of shape {tuple(Q.shape)}."
            )
        with no_grad():
            wide = np.complex128 if Q.is_complex() else np.float64
            q = np.asarray(to_host(Q.array), wide)  # host: a rare assignment, done by LAPACK on the host
            n, k = q.shape[-2:]
            transpose = n < k
            if transpose:
                q = np.swapaxes(q, -1, -2)
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley parametrizations "
                        "when use_trivialization=False."
                    )
                a, tau = _geqrf(q)
                diag = np.sign(np.diagonal(a, axis1=-2, axis2=-1)).copy()
                diag[tau == 0.0] *= -1
                idx = np.arange(min(n, k))  # host: index of a host copy
                a[..., idx, idx] = diag
                if transpose:
                    a = np.swapaxes(a, -1, -2)
                return wrap_array(array_like(np.ascontiguousarray(a).astype(Q.dtype), Q.array))  # host: then moved
            if n == k:
                q = q if _is_orthogonal(q.astype(Q.dtype)) else _make_orthogonal(q)
            else:
                # Completed to a square matrix with random columns (from downslope's seeded generator).
                noise = backend.rng().standard_normal((*q.shape[:-2], n, n - k))
                if q.dtype.kind == "c":  # torch's complex randn: both parts of variance 1/2
                    imag = backend.rng().standard_normal(noise.shape)
                    noise = (noise + 1j * imag) * np.sqrt(0.5)
                q = _make_orthogonal(np.concatenate([q, noise], -1))
            self.base = wrap_array(array_like(q.astype(Q.dtype), Q.array))
            neg_id = np.zeros(Q.shape, Q.dtype)  # host: moved to Q's device below
            m = min(Q.shape[-2:])
            neg_id[..., np.arange(m), np.arange(m)] = -1.0  # host: as above
            return wrap_array(array_like(neg_id, Q.array))


def orthogonal(
    module: Module, name: str = "weight", orthogonal_map: str | None = None, *, use_trivialization: bool = True
) -> Module:
    """Make ``module.<name>`` an orthogonal matrix (or batch of matrices): orthonormal columns when it
    is tall, orthonormal rows when it is wide (PyTorch's ``parametrizations.orthogonal``).

    ``orthogonal_map`` is ``"matrix_exp"``, ``"cayley"`` or ``"householder"``; by default
    ``"matrix_exp"`` for a square or complex matrix and ``"householder"`` otherwise. A complex weight
    becomes unitary (matrix_exp or cayley of a skew-Hermitian matrix), as in torch. With
    ``use_trivialization=True`` the buffer ``parametrizations.<name>.0.base`` holds the starting point
    (the initial weight, orthogonalized by QR when it is not orthogonal already).

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> from downslope.nn.utils.parametrizations import orthogonal
        >>> layer = orthogonal(nn.Linear(3, 5))
        >>> q = layer.weight
        >>> bool(ds.allclose(q.mT @ q, ds.eye(3), atol=1e-5))
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"orthogonal: {type(module).__name__} has no parameter or buffer named {name!r}")
    if weight.ndim < 2:
        raise ArgumentError(
            f"orthogonal: expected a matrix or batch of matrices, got a tensor of {weight.ndim} dimensions"
        )
    if orthogonal_map is None:
        # complex weights have no householder map (torch's default for them too)
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    orth_enum = getattr(_OrthMaps, str(orthogonal_map), None)
    if orth_enum is None:
        raise ArgumentError(
            f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}'
        )
    if orth_enum == _OrthMaps.householder and weight.is_complex():
        raise ArgumentError(
            f"orthogonal: the householder parametrization does not support complex tensors, got {weight.dtype} "
            '(as in torch; use orthogonal_map="matrix_exp" or "cayley")'
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


# ---------------------------------------------------------------------- weight normalization
def _check_norm_dim(dim: int | None, ndim: int, where: str) -> None:
    """Reject a ``dim`` that PyTorch's weight norm would: None and -1 (the whole tensor) always do."""
    if dim is None or dim == -1:
        return
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ArgumentError(f"{where}: dim must be an int or None, got {dim!r}")
    if ndim == 0 or not -ndim <= dim < ndim:
        raise OutOfRangeError(f"{where}: dim {dim} is out of range for a parameter with {ndim} dim(s)")


# the norm weight_norm divides by (shared with nn.utils.weight_norm, the older API)
_norm_except_dim = norm_except_dim


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_norm_op(weight_g, weight_v, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``<name> = original0 * original1 / ||original1||``, the norm over every dim but ``dim``
    (over the whole tensor for ``dim=None``), as PyTorch's ``parametrizations.weight_norm``.

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils.parametrizations import weight_norm
        >>> weight_norm(nn.Linear(3, 2)).parametrizations.weight.original0.shape
        downslope.Size([2, 1])
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    _check_norm_dim(dim, weight.ndim, "weight_norm")
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


# ---------------------------------------------------------------------- spectral normalization
def _normalize(a: Any, eps: float) -> Any:
    return a / np.maximum(np.linalg.norm(a), eps)  # on the array's device: no host round-trip


class _SpectralNorm(Module):
    _u: Tensor
    _v: Tensor

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise OutOfRangeError(
                f"spectral_norm: dim {dim} is out of range for a weight of {ndim} dimensions "
                f"(expected in [{-ndim}, {ndim - 1}])"
            )
        if n_power_iterations <= 0:
            raise ArgumentError(f"spectral_norm: expected n_power_iterations > 0, got {n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = self._matrix(weight.array)
            rng = backend.rng()
            # Drawn by the host generator (the same start on every device), then placed on the weight's device.
            u = _normalize(array_like(rng.standard_normal(mat.shape[0]).astype(weight.dtype), mat), eps)
            v = _normalize(array_like(rng.standard_normal(mat.shape[1]).astype(weight.dtype), mat), eps)
            self.register_buffer("_u", wrap_array(u.astype(weight.dtype)))
            self.register_buffer("_v", wrap_array(v.astype(weight.dtype)))
            self._power_method(mat, 15)

    def _matrix(self, w: Any) -> Any:
        if self.dim != 0:
            w = w.transpose((self.dim, *[d for d in range(w.ndim) if d != self.dim]))
        return w.reshape(w.shape[0], -1)

    def _power_method(self, mat: Any, n: int) -> None:
        # Outside the graph, updating the buffers in place (as PyTorch's normalize(..., out=)).
        for _ in range(n):
            self._u.array[...] = _normalize(mat @ self._v.array, self.eps)
            self._v.array[...] = _normalize(mat.T @ self._u.array, self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return weight / ops.clamp(ops.sqrt(ops.sum(weight * weight)), min=self.eps)
        if self.training:
            self._power_method(self._matrix(weight.array), self.n_power_iterations)
        order = (self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        w_mat = ops.reshape(ops.permute(weight, order), (weight.shape[self.dim], -1))
        u, v = wrap_array(self._u.array.copy()), wrap_array(self._v.array.copy())
        sigma = ops.sum(ops.matmul(w_mat, v) * u)
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim: int | None = None
) -> Module:
    """``<name> = original / sigma``, sigma the largest singular value estimated by power iteration on
    the buffers ``0._u``, ``0._v`` (one step per training access; 15 at registration, as in PyTorch).

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils.parametrizations import spectral_norm
        >>> list(spectral_norm(nn.Linear(3, 2)).state_dict())[1:]
        ['parametrizations.weight.original', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v']
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ArgumentError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if parametrize.type_before_parametrizations(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
