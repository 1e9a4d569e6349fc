"""Linear algebra with gradients (``torch.linalg``): inverses, determinants, solves, Cholesky, the
symmetric eigendecomposition, singular values, norms, least squares.

For seeing gradient descent, the useful ones are the curvature and the closed forms: the
eigenvalues of a loss's Hessian (:func:`eigvalsh` of :func:`downslope.autograd.functional.hessian`)
say which learning rates diverge (above 2 / the largest), and :func:`lstsq` is the answer linear
regression by gradient descent should reach.

Each op's forward is NumPy's (or the device namespace's) ``linalg`` and its gradient sits beside it,
written with matrix products, so the gradients of :func:`inv`, :func:`det`, :func:`slogdet` and
:func:`solve` can be differentiated again; those of :func:`cholesky`, :func:`eigh`,
:func:`eigvalsh` and :func:`svdvals` refuse double backward. Stacks of matrices (``(..., n, n)``)
are accepted everywhere. A singular matrix raises :class:`LinAlgError` (a ``RuntimeError``, as in
PyTorch) naming the op.

Example:
    >>> import downslope as ds
    >>> a = ds.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    >>> ds.linalg.det(a)
    tensor(5., grad_fn=<DetBackward>)
    >>> ds.linalg.det(a).backward(); a.grad
    tensor([[ 3., -1.],
            [-1.,  2.]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import ops
from .backend import namespace_of
from .errors import ArgumentError, ShapeError, StateError
from .tensor import Tensor, record_op, wrap_array

__all__ = [
    "LinAlgError", "inv", "det", "slogdet", "logdet", "solve", "cholesky", "eigh", "eigvalsh", "svdvals", "vector_norm",
    "matrix_norm", "norm", "matrix_power", "multi_dot", "pinv", "lstsq", "cross", "diagonal", "vecdot", "matmul",
]  # fmt: skip


class LinAlgError(StateError):
    """A matrix the op cannot take (singular, not positive-definite), as ``torch.linalg.LinAlgError``."""


def _matrix(a: Any, where: str, square: bool = True) -> Tensor:
    t = ops._lift_float(a)
    if t.ndim < 2:
        raise ShapeError(f"linalg.{where}: expected a matrix or a stack of matrices (..., m, n), got shape {t.shape}")
    if square and t.shape[-1] != t.shape[-2]:
        raise ShapeError(f"linalg.{where}: expected square matrices (..., n, n), got shape {t.shape}")
    return t


def _call(where: str, fn: Any, *arrays: Any) -> Any:
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as exc:
        raise LinAlgError(f"linalg.{where}: {exc} (input shape {arrays[0].shape})") from None


def _t(x: Any) -> Any:
    """The last two dims swapped, for arrays and tensors alike."""
    return x.swapaxes(-1, -2) if not isinstance(x, Tensor) else ops.transpose(x, -1, -2)


def _inverse_of(a: Any, xp: Any) -> Any:
    """``a``'s inverse: recorded (differentiable) under create_graph, else an array."""
    return inv(a) if xp.differentiable else namespace_of(a).linalg.inv(a)


def _no_double_backward(xp: Any, where: str) -> None:
    if xp.differentiable:
        raise StateError(f"linalg.{where}: double backward (create_graph=True) through it is not supported")


# ---------------------------------------------------------------------- inverse, determinants, solve
def inv(A: Any) -> Tensor:
    """The inverse of a square matrix (or of each in a stack): ``A @ inv(A)`` is the identity.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.inv(ds.tensor([[2.0, 0.0], [0.0, 4.0]]))
        tensor([[0.5 , 0.  ],
                [0.  , 0.25]])
    """
    a = _matrix(A, "inv")
    return record_op(_call("inv", namespace_of(a.array).linalg.inv, a.array), (a,), _inv_vjp)


def _inv_vjp(g, y, args, saved, needs, xp):
    y_t = _t(y)
    return (-(y_t @ g @ y_t),)  # d(A^-1) = -A^-1 dA A^-1


def det(A: Any) -> Tensor:
    """The determinant of a square matrix (``(...,)`` for a stack). Its gradient is
    ``det(A) * inv(A).T``, so it is undefined (infinite) at a singular matrix.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.det(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor(-2.)
    """
    a = _matrix(A, "det")
    return record_op(namespace_of(a.array).linalg.det(a.array), (a,), _det_vjp)


def _det_vjp(g, y, args, saved, needs, xp):
    scale = xp.expand_dims(xp.expand_dims(g * y, -1), -1)
    return (scale * _t(_inverse_of(args[0], xp)),)


class SlogdetResult(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


def slogdet(A: Any) -> SlogdetResult:
    """``(sign, log|det A|)``, without the overflow of the determinant of a large matrix; the gradient
    flows through ``logabsdet`` (``inv(A).T``).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.slogdet(ds.tensor([[1.0, 2.0], [3.0, 4.0]])).sign
        tensor(-1.)
    """
    a = _matrix(A, "slogdet")
    sign, logabs = namespace_of(a.array).linalg.slogdet(a.array)
    return SlogdetResult(wrap_array(sign), record_op(logabs, (a,), _slogdet_vjp))


def _slogdet_vjp(g, y, args, saved, needs, xp):
    return (xp.expand_dims(xp.expand_dims(g, -1), -1) * _t(_inverse_of(args[0], xp)),)


def logdet(A: Any) -> Tensor:
    """``log(det(A))`` (``torch.logdet``): NaN where the determinant is negative, -inf where it is 0.

    Example:
        >>> import downslope as ds
        >>> ds.logdet(ds.tensor([[2.0, 0.0], [0.0, 3.0]])).item() == float(ds.tensor(6.0).log())
        True
    """
    sign, logabs = slogdet(A)
    ns = namespace_of(sign.array)
    undefined = ns.where(sign.array < 0, np.nan, -np.inf).astype(logabs.array.dtype)
    return ops.where(sign.array > 0, logabs, wrap_array(undefined))


def solve(A: Any, B: Any, *, left: bool = True) -> Tensor:
    """The ``X`` with ``A @ X = B`` (``left=False``: ``X @ A = B``), for a square ``A``. ``B`` may be a
    vector ``(n,)`` (then ``X`` is one), or a matrix ``(..., n, k)``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.solve(ds.tensor([[2.0, 0.0], [0.0, 4.0]]), ds.tensor([2.0, 2.0]))
        tensor([1. , 0.5])
    """
    a = _matrix(A, "solve")
    b = ops._lift_float(B)
    if not left:
        return _t(solve(_t(a), _t(b)))
    vector = b.ndim == 1
    if vector:
        b = ops.unsqueeze(b, -1)
    if b.shape[-2] != a.shape[-1]:
        raise ShapeError(
            f"linalg.solve: A of shape {a.shape} and B of shape {B.shape if hasattr(B, 'shape') else b.shape} do not fit"
        )
    x = record_op(_call("solve", namespace_of(a.array).linalg.solve, a.array, b.array), (a, b), _solve_vjp)
    return ops.squeeze(x, -1) if vector else x


def _solve_vjp(g, y, args, saved, needs, xp):
    a = args[0]
    g_b = solve(_t(a), g) if xp.differentiable else namespace_of(a).linalg.solve(_t(a), g)  # A^-T g
    g_a = -(g_b @ _t(y)) if needs[0] else None
    return (xp.sum_to(g_a, a.shape) if g_a is not None else None, xp.sum_to(g_b, args[1].shape))


# ---------------------------------------------------------------------- factorizations of symmetric matrices
def cholesky(A: Any, *, upper: bool = False) -> Tensor:
    """The lower-triangular ``L`` with ``L @ L.T = A`` for a symmetric positive-definite ``A`` (the
    upper ``L.T`` with ``upper=True``); only ``A``'s lower triangle is read, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.cholesky(ds.tensor([[4.0, 2.0], [2.0, 2.0]]))
        tensor([[2., 0.],
                [1., 1.]])
    """
    a = _matrix(A, "cholesky")
    out = record_op(_call("cholesky", namespace_of(a.array).linalg.cholesky, a.array), (a,), _cholesky_vjp)
    return _t(out) if upper else out


def _cholesky_vjp(g, y, args, saved, needs, xp):
    _no_double_backward(xp, "cholesky")
    # Murray (2016): with Phi the lower triangle and half the diagonal, dA = L^-T Phi(L^T gL) L^-1,
    # made symmetric (A is symmetric, and only its lower triangle was read).
    ns = namespace_of(y)
    phi = ns.tril(_t(y) @ ns.tril(g))
    phi = phi - 0.5 * ns.eye(y.shape[-1], dtype=y.dtype) * phi
    l_inv = ns.linalg.inv(y)
    grad = _t(l_inv) @ phi @ l_inv
    return (0.5 * (grad + _t(grad)),)


class EighResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


def eigh(A: Any, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, reading its lower
    (``UPLO='L'``) or upper triangle. The gradient through the eigenvectors is undefined where two
    eigenvalues are equal (as in PyTorch).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eigh(ds.tensor([[2.0, 0.0], [0.0, 1.0]])).eigenvalues
        tensor([1., 2.])
    """
    a = _matrix(A, "eigh")
    if UPLO not in ("L", "U"):
        raise ArgumentError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    w, v = _call("eigh", namespace_of(a.array).linalg.eigh, a.array, UPLO)
    values = record_op(w, (a,), _eigvalsh_vjp, v)
    vectors = record_op(v, (a,), _eigenvectors_vjp, w)
    return EighResult(values, vectors)


def _eigvalsh_vjp(g, y, args, saved, needs, xp):
    _no_double_backward(xp, "eigvalsh")
    v = saved
    return ((v * xp.expand_dims(g, -2)) @ _t(v),)  # V diag(g) V^T


def _eigenvectors_vjp(g, y, args, saved, needs, xp):
    _no_double_backward(xp, "eigh")
    w, v = saved, y
    gap = xp.expand_dims(w, -2) - xp.expand_dims(w, -1)  # w_j - w_i
    ns = namespace_of(v)
    off = ~ns.eye(w.shape[-1], dtype=bool)
    with np.errstate(divide="ignore"):
        f = ns.where(off, 1.0 / ns.where(off, gap, 1.0), 0.0).astype(v.dtype)
    inner = _t(v) @ g
    return (v @ (f * 0.5 * (inner - _t(inner))) @ _t(v),)


def eigvalsh(A: Any, UPLO: str = "L") -> Tensor:
    """The eigenvalues of a symmetric matrix, ascending (see :func:`eigh`): for a loss's Hessian,
    the curvatures along its principal directions.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eigvalsh(ds.tensor([[2.0, 1.0], [1.0, 2.0]]))
        tensor([1., 3.])
    """
    return eigh(A, UPLO).eigenvalues


def svdvals(A: Any) -> Tensor:
    """The singular values of a matrix (or of each in a stack), descending; the gradient is
    ``U diag(g) V^T``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.svdvals(ds.tensor([[3.0, 0.0], [0.0, -4.0]]))
        tensor([4., 3.])
    """
    a = _matrix(A, "svdvals", square=False)
    u, s, vt = _call("svdvals", namespace_of(a.array).linalg.svd, a.array, False)
    return record_op(s, (a,), _svdvals_vjp, (u, vt))


def _svdvals_vjp(g, y, args, saved, needs, xp):
    _no_double_backward(xp, "svdvals")
    u, vt = saved
    return ((u * xp.expand_dims(g, -2)) @ vt,)


# ---------------------------------------------------------------------- norms
def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements by default): see :func:`downslope.ops.vector_norm`.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.vector_norm(ds.tensor([3.0, -4.0]))
        tensor(5.)
    """
    return ops.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(A: Any, ord: Any = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False) -> Tensor:
    """A matrix norm over the two dims ``dim``: ``'fro'``, ``'nuc'`` (sum of singular values), 2 / -2
    (largest / smallest singular value), 1 / -1 (largest / smallest column sum of ``|A|``),
    inf / -inf (largest / smallest row sum).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_norm(ds.tensor([[3.0, 0.0], [0.0, -4.0]]), ord=2)
        tensor(4.)
    """
    a = _matrix(A, "matrix_norm", square=False)
    d0, d1 = (d % a.ndim for d in dim)
    if d0 == d1:
        raise ArgumentError(f"linalg.matrix_norm: dim must name two different dims, got {dim}")
    if ord == "fro":
        return ops.vector_norm(a, 2, (d0, d1), keepdim)
    moved = ops.movedim(a, (d0, d1), (-2, -1))
    if ord in ("nuc", 2, -2):
        s = svdvals(moved)
        out = ops.sum(s, -1) if ord == "nuc" else (ops.amax(s, -1) if ord == 2 else ops.amin(s, -1))
    elif ord in (1, -1, np.inf, -np.inf):
        sums = ops.sum(ops.abs(moved), -2 if ord in (1, -1) else -1)
        out = ops.amax(sums, -1) if ord in (1, np.inf) else ops.amin(sums, -1)
    else:
        raise ArgumentError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got {ord!r}")
    if keepdim:
        for d in sorted((d0, d1)):
            out = ops.unsqueeze(out, d)
    return out


def norm(x: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int (or the input is 1-D, or ``ord`` is
    None and ``dim`` is None: the 2-norm of all elements), else a matrix norm over two dims.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.norm(ds.tensor([[1.0, 2.0], [2.0, 4.0]]), ord="fro")
        tensor(5.)
    """
    t = ops._lift_float(x)
    if dtype is not None:
        t = ops.astype(t, dtype)
    if isinstance(dim, int) or (dim is None and (t.ndim == 1 or ord is None)):
        return vector_norm(t, 2 if ord is None else ord, dim, keepdim)
    matrix_dims = (-2, -1) if dim is None else tuple(dim)
    return matrix_norm(t, "fro" if ord is None else ord, matrix_dims, keepdim)


# ---------------------------------------------------------------------- products and least squares
def matrix_power(A: Any, n: int) -> Tensor:
    """``A`` multiplied by itself ``n`` times (the identity for 0, the inverse's power for n < 0).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_power(ds.tensor([[1.0, 1.0], [0.0, 1.0]]), 3)
        tensor([[1., 3.],
                [0., 1.]])
    """
    a = _matrix(A, "matrix_power")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ArgumentError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    if n == 0:
        eye = namespace_of(a.array).eye(a.shape[-1], dtype=a.array.dtype)
        return wrap_array(namespace_of(a.array).broadcast_to(eye, a.shape).copy())
    base = inv(a) if n < 0 else a
    out = base
    for _ in range(abs(int(n)) - 1):
        out = out @ base
    return out


def multi_dot(tensors: Sequence[Any]) -> Tensor:
    """The product of a chain of matrices (the first and the last may be vectors), left to right.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.multi_dot([ds.ones(2, 3), ds.ones(3, 4), ds.ones(4)])
        tensor([12., 12.])
    """
    items = [ops._lift_float(t) for t in tensors]
    if len(items) < 2:
        raise ArgumentError(f"linalg.multi_dot: expected at least 2 tensors, got {len(items)}")
    out = items[0]
    for t in items[1:]:
        out = out @ t
    return out


def pinv(A: Any, *, rtol: float | None = None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse (singular values below ``rtol`` times the largest are taken
    as 0; the default is NumPy's and PyTorch's ``max(m, n) * eps``), with Golub and Pereyra's
    gradient (exact where the rank does not change).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.pinv(ds.tensor([[1.0, 0.0], [0.0, 0.0]]))
        tensor([[1., 0.],
                [0., 0.]])
    """
    a = _matrix(A, "pinv", square=False)
    ns = namespace_of(a.array)
    if rtol is None:
        rtol = max(a.shape[-2:]) * float(np.finfo(a.array.dtype).eps)  # host: a Python number
    return record_op(_call("pinv", ns.linalg.pinv, a.array, rtol, hermitian), (a,), _pinv_vjp)


def _pinv_vjp(g, y, args, saved, needs, xp):
    a, x = args[0], y
    ns = namespace_of(xp.data(a))
    m, n = a.shape[-2], a.shape[-1]
    eye_m, eye_n = ns.eye(m, dtype=xp.data(a).dtype), ns.eye(n, dtype=xp.data(a).dtype)
    g_t = _t(g)
    return (-(_t(x) @ g @ _t(x)) + (eye_m - a @ x) @ g_t @ x @ _t(x) + _t(x) @ x @ g_t @ (eye_n - x @ a),)


class LstsqResult(NamedTuple):
    solution: Tensor
    residuals: Tensor
    rank: Tensor
    singular_values: Tensor


def lstsq(A: Any, B: Any, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """The least-squares solution of ``A @ X = B`` (``pinv(A) @ B``, with its gradient): the weights
    that linear regression by gradient descent converges to. ``residuals``, ``rank`` and
    ``singular_values`` are NumPy's (``driver`` is accepted and has no effect).

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])   # a column of ones: the intercept
        >>> ds.linalg.lstsq(x, ds.tensor([[1.0], [3.0], [5.0]])).solution
        tensor([[1.],
                [2.]])
    """
    a = _matrix(A, "lstsq", square=False)
    b = ops._lift_float(B)
    vector = b.ndim == a.ndim - 1
    if vector:
        b = ops.unsqueeze(b, -1)
    solution = pinv(a, rtol=rcond) @ b
    if a.ndim == 2:
        _, residuals, rank, sv = _call("lstsq", namespace_of(a.array).linalg.lstsq, a.array, b.array, rcond)
    else:  # NumPy's lstsq takes one matrix: the extras of a stack come from its singular values
        sv = namespace_of(a.array).linalg.svd(a.array, compute_uv=False)
        rank, residuals = (sv > sv[..., :1] * max(a.shape[-2:]) * np.finfo(sv.dtype).eps).sum(-1), sv[..., :0]
    return LstsqResult(
        ops.squeeze(solution, -1) if vector else solution, wrap_array(residuals), wrap_array(rank), wrap_array(sv)
    )


# ---------------------------------------------------------------------- torch.linalg's names for ops found elsewhere
def cross(a: Any, b: Any, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (``torch.linalg.cross``; its ``dim`` defaults to -1)."""
    return ops.cross(a, b, dim=dim)


def diagonal(A: Any, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices over the last two dims (``torch.linalg.diagonal``)."""
    return ops.diagonal(A, offset, dim1, dim2)


def vecdot(x: Any, y: Any, *, dim: int = -1) -> Tensor:
    """The dot product of ``x`` and ``y`` along ``dim`` (broadcast)."""
    return ops.sum(ops._lift_float(x) * ops._lift_float(y), dim)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` (``torch.linalg.matmul``)."""
    return ops.matmul(a, b)
