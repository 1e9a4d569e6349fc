"""Householder reflectors, LAPACK's compact form of ``Q`` (``torch.geqrf``, ``torch.linalg.householder_product``
(alias ``torch.orgqr``) and ``torch.ormqr``).

:func:`geqrf` factors ``A = Q R`` as LAPACK's ``geqrf`` does: ``R`` on and above the diagonal of ``a``, and
below it the Householder vectors ``v_i`` (a 1 on the diagonal implied) whose reflectors
``H_i = I - tau_i v_i v_i^H`` multiply to ``Q = H_1 H_2 ... H_k``. :func:`householder_product` forms ``Q``'s
first columns from them; :func:`ormqr` multiplies a matrix by ``Q`` (or ``Q^H``) without forming it.

The forward of :func:`geqrf` is the namespace's ``linalg.qr(mode="raw")`` (LAPACK's geqrf, the same
convention as PyTorch's on the CPU); like PyTorch's, it has no gradient (backward raises
``NotImplementedError``). The other two apply the reflectors one at a time with recorded ops (matrix
products of rank one), so their gradients, and the gradients of those, are autograd's. Stacks of matrices
and complex matrices are accepted.

Example:
    >>> import downslope as ds
    >>> a = ds.tensor([[3.0, 1.0], [4.0, 2.0], [0.0, 2.0]])
    >>> h, tau = ds.geqrf(a)
    >>> q = ds.linalg.householder_product(h, tau)
    >>> ds.allclose(q @ ds.triu(h[:2]), a, atol=1e-5)
    True
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import ops
from .backend import namespace_of
from .errors import DTypeError, ShapeError, UnimplementedError
from .ops import complex as _complex
from .tensor import Tensor, record_op, wrap_array

__all__ = ["GeqrfResult", "geqrf", "householder_product", "orgqr", "ormqr"]


class GeqrfResult(NamedTuple):
    """``torch.return_types.geqrf``: the packed factor ``a`` and the reflectors' coefficients ``tau``."""

    a: Tensor
    tau: Tensor


def _floating(x: Any, where: str, name: str) -> Tensor:
    """``x`` as a floating or complex Tensor with matrices in its last two dimensions."""
    t = x if isinstance(x, Tensor) and x.array.dtype.kind == "c" else ops._lift_float(x)
    if t.ndim < 2:
        raise ShapeError(
            f"{where}: {name} must be a matrix or a stack of matrices (..., m, n), got shape {tuple(t.shape)}"
        )
    return t


def geqrf(input: Any) -> GeqrfResult:
    """LAPACK's QR factorisation of ``input`` (..., m, n), as ``torch.geqrf``: ``a`` holds ``R`` on and above
    the diagonal and the Householder vectors below it; ``tau`` (..., min(m, n)) their coefficients. There is
    no gradient, as in PyTorch (use :func:`downslope.linalg.qr` to differentiate a QR decomposition).

    Example:
        >>> import downslope as ds
        >>> a, tau = ds.geqrf(ds.tensor([[3.0, 1.0], [4.0, 2.0]]))
        >>> a.round(decimals=4)
        tensor([[-5. , -2.2],
                [ 0.5,  0.4]])
        >>> tau.round(decimals=4)
        tensor([1.6, 0. ])
    """
    x = _floating(input, "geqrf", "input")
    ns = namespace_of(x.array)
    # NumPy (and CuPy) return LAPACK's column-major array as its transpose
    h, tau = ns.linalg.qr(x.array, mode="raw")
    packed = ns.ascontiguousarray(ns.swapaxes(h, -1, -2)).astype(x.array.dtype, copy=False)
    tau = tau.astype(x.array.dtype, copy=False)
    return GeqrfResult(record_op(packed, (x,), _geqrf_vjp), record_op(tau, (x,), _geqrf_vjp))


def _geqrf_vjp(g, y, args, saved, needs, xp):
    raise UnimplementedError(
        "geqrf: the derivative for 'geqrf' is not implemented (as in PyTorch); differentiate "
        "downslope.linalg.qr instead, or geqrf of input.detach()"
    )


_complex.register(_geqrf_vjp)  # it refuses complex and real alike


def _reflectors(a: Tensor, tau: Any, where: str) -> tuple[Tensor, Tensor]:
    """The Householder vectors as the columns of ``V`` (..., m, k) (``a``'s strictly lower part, ones on the
    diagonal) and ``tau`` (..., k) as a Tensor, after PyTorch's checks of their shapes and dtypes."""
    t = tau if isinstance(tau, Tensor) else ops._lift_float(tau)
    if t.ndim < 1:
        raise ShapeError(f"{where}: tau must have at least one dimension, got shape {tuple(t.shape)}")
    if t.array.dtype != a.array.dtype:
        raise DTypeError(f"{where}: tau must have the dtype of input ({a.dtype}), got {t.dtype}")
    if tuple(t.shape[:-1]) != tuple(a.shape[:-2]):
        raise ShapeError(
            f"{where}: tau's batch dimensions must be input's: expected tau of shape "
            f"{(*a.shape[:-2], t.shape[-1])}, got {tuple(t.shape)} (input {tuple(a.shape)})"
        )
    m, n = a.shape[-2:]
    k = t.shape[-1]
    if k > n or k > m:
        raise ShapeError(
            f"{where}: tau has {k} coefficients but input ({tuple(a.shape)}) holds at most {min(m, n)} Householder vectors"
        )
    ns = namespace_of(a.array)
    v = ops.tril(a[..., :, :k], -1) + wrap_array(ns.eye(m, k, dtype=a.array.dtype))
    return v, t


def _coefficient(tau: Tensor, i: int, conjugate: bool) -> Tensor:
    """``tau_i`` (conjugated for ``H_i^H``) shaped (..., 1, 1) to scale a matrix of the stack."""
    c = tau[..., i : i + 1, None]
    return _complex.conj(c) if conjugate and c.array.dtype.kind == "c" else c


def _reflect_left(x: Tensor, v: Tensor, tau: Tensor, i: int, conjugate: bool) -> Tensor:
    """``H_i x`` (``H_i^H x`` when ``conjugate``): ``x - tau_i v (v^H x)``."""
    vi = v[..., :, i : i + 1]
    vh = _complex.conj(vi.mT) if vi.array.dtype.kind == "c" else vi.mT
    return x - _coefficient(tau, i, conjugate) * (vi @ (vh @ x))


def _reflect_right(x: Tensor, v: Tensor, tau: Tensor, i: int, conjugate: bool) -> Tensor:
    """``x H_i`` (``x H_i^H`` when ``conjugate``): ``x - tau_i (x v) v^H``."""
    vi = v[..., :, i : i + 1]
    vh = _complex.conj(vi.mT) if vi.array.dtype.kind == "c" else vi.mT
    return x - _coefficient(tau, i, conjugate) * ((x @ vi) @ vh)


def householder_product(A: Any, tau: Any) -> Tensor:
    """The first ``n`` columns of ``H_1 H_2 ... H_k`` for ``A`` (..., m, n), m >= n, holding the Householder
    vectors below its diagonal and ``tau`` (..., k), k <= n, as ``torch.linalg.householder_product``
    (``torch.orgqr``): with :func:`geqrf`'s output, the ``Q`` of the QR decomposition. Differentiable in
    ``A`` and ``tau`` (the parts of ``A`` on and above the diagonal, and its columns past ``k``, get zeros).

    Example:
        >>> import downslope as ds
        >>> h, tau = ds.geqrf(ds.tensor([[3.0, 1.0], [4.0, 2.0]]))
        >>> ds.linalg.householder_product(h, tau).round(decimals=4)
        tensor([[-0.6, -0.8],
                [-0.8,  0.6]])
    """
    where = "linalg.householder_product"
    a = _floating(A, where, "input")
    m, n = a.shape[-2:]
    if m < n:
        raise ShapeError(
            f"{where}: input must have at least as many rows as columns (m >= n), got shape {tuple(a.shape)}"
        )
    v, t = _reflectors(a, tau, where)
    ns = namespace_of(a.array)
    q: Tensor = wrap_array(ns.broadcast_to(ns.eye(m, n, dtype=a.array.dtype), a.shape).copy())
    for i in range(t.shape[-1] - 1, -1, -1):  # right to left: H_1 (H_2 (... (H_k E)))
        q = _reflect_left(q, v, t, i, conjugate=False)
    return q


def orgqr(input: Any, input2: Any) -> Tensor:
    """``torch.orgqr``: :func:`householder_product` (``input2`` is ``tau``)."""
    return householder_product(input, input2)


def ormqr(input: Any, input2: Any, input3: Any, left: bool = True, transpose: bool = False) -> Tensor:
    """``op(Q) @ C`` (``left``) or ``C @ op(Q)``, ``op(Q) = Q^H`` when ``transpose`` and ``Q`` otherwise, for
    the ``Q = H_1 ... H_k`` (mn x mn) whose Householder vectors are below the diagonal of ``input``
    (..., mn, k') with coefficients ``input2`` (..., k), k <= k', and ``C = input3``, as ``torch.ormqr``;
    ``Q`` is never formed. Differentiable in all three.

    Example:
        >>> import downslope as ds
        >>> a = ds.tensor([[3.0, 1.0], [4.0, 2.0]])
        >>> h, tau = ds.geqrf(a)
        >>> ds.ormqr(h, tau, a, transpose=True).round(decimals=4)  # Q^T A = R
        tensor([[-5. , -2.2],
                [ 0. ,  0.4]])
    """
    where = "ormqr"
    a = _floating(input, where, "input")
    c = _floating(input3, where, "input3")
    mn = a.shape[-2]
    if c.array.dtype != a.array.dtype:
        raise DTypeError(f"{where}: input3 must have the dtype of input ({a.dtype}), got {c.dtype}")
    if tuple(c.shape[:-2]) != tuple(a.shape[:-2]):
        raise ShapeError(
            f"{where}: input3's batch dimensions must be input's: got input {tuple(a.shape)} and input3 {tuple(c.shape)}"
        )
    side = c.shape[-2] if left else c.shape[-1]
    if side != mn:
        raise ShapeError(
            f"{where}: with left={left}, input3's {'rows' if left else 'columns'} must number input's rows "
            f"({mn}), got input3 of shape {tuple(c.shape)}"
        )
    v, t = _reflectors(a, input2, where)
    k = t.shape[-1]
    # Q = H_1 ... H_k, Q^H = H_k^H ... H_1^H: the reflector nearest C is applied first
    order = range(k - 1, -1, -1) if left != transpose else range(k)
    x = c
    for i in order:
        x = _reflect_left(x, v, t, i, transpose) if left else _reflect_right(x, v, t, i, transpose)
    return x
