"""Linear algebra with gradients (``torch.linalg``): inverses, determinants, solves, the Cholesky,
symmetric eigen, singular value, QR and LU decompositions, the matrix exponential, norms, least squares.

For seeing gradient descent, the useful ones are the curvature and the closed forms: the
eigenvalues of a loss's Hessian (:func:`eigvalsh` of :func:`downslope.autograd.functional.hessian`)
say which learning rates diverge (above 2 / the largest), and :func:`lstsq` is the answer linear
regression by gradient descent should reach.

Each op's forward is NumPy's (or the device namespace's) ``linalg`` and its gradient sits beside it,
written with matrix products. The gradients can be differentiated again (``create_graph=True``: the
Hessians of a log-determinant through :func:`cholesky`, of an energy through :func:`eigvalsh`...): the
decompositions' rules run on plain arrays in an ordinary backward, and under create_graph as recorded
ops on the factors (for :func:`eigh`, :func:`svd` and :func:`qr`, the same decomposition again,
recorded), as PyTorch's formulas. Stacks of matrices (``(..., n, n)``) are accepted everywhere. A
singular matrix raises :class:`LinAlgError` (a ``RuntimeError``, as in PyTorch) naming the op.

Complex matrices (complex64, complex128) are taken by inv, det, slogdet (a complex sign, differentiable),
solve, matrix_exp, cholesky, eigh/eigvalsh (Hermitian; real eigenvalues), svd/svdvals (real singular
values), qr, pinv, lstsq, eig/eigvals, the matrix norms, solve_triangular/triangular_solve,
cholesky_solve/cholesky_inverse (A = L L^H), lu_factor(_ex)/lu/lu_unpack/lu_solve (LAPACK's pivots),
inv_ex/solve_ex, vecdot (conjugating x), cond and matrix_rank, with torch's gradients (the real rules with
conjugate transposes; the SVD's adds the phase term). Their double backward is refused for eigh, svd,
qr and cholesky.

Example:
    >>> import downslope as ds
    >>> a = ds.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    >>> ds.linalg.det(a)
    tensor(5., grad_fn=<LinalgDetBackward0>)
    >>> ds.linalg.det(a).backward(); a.grad
    tensor([[ 3., -1.],
            [-1.,  2.]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import backend, ops
from . import devices as _devices
from .backend import namespace_of
from .errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError, StateError
from .graph import is_grad_enabled, no_grad, reads_inputs_when_recorded
from .ops import complex as _complex
from .tensor import Tensor, record_op, wrap_array

__all__ = [
    "LinAlgError", "inv", "det", "slogdet", "logdet", "solve", "cholesky", "eigh", "eigvalsh", "svdvals", "vector_norm",
    "matrix_norm", "norm", "matrix_power", "multi_dot", "pinv", "lstsq", "cross", "diagonal", "vecdot", "matmul",
    "svd", "qr", "solve_triangular", "matrix_exp", "lu_factor", "lu_factor_ex", "lu", "lu_unpack", "lu_solve",
    "cholesky_ex", "inv_ex", "solve_ex", "eig", "eigvals", "matrix_rank", "cond", "vander", "tensorinv", "tensorsolve",
    "householder_product",
]  # fmt: skip


class LinAlgError(StateError):
    """A matrix the op cannot take (singular, not positive-definite), as ``torch.linalg.LinAlgError``."""


def _matrix(a: Any, where: str, square: bool = True, complex_ok: bool = False) -> Tensor:
    # complex_ok: the op holds for complex matrices (the others refuse them, naming themselves)
    t = a if complex_ok and isinstance(a, Tensor) and a.array.dtype.kind == "c" else ops._lift_float(a)
    if t.ndim < 2:
        raise ShapeError(
            f"linalg.{where}: expected a matrix or a stack of matrices (..., m, n), got shape {tuple(t.shape)}"
        )
    if square and t.shape[-1] != t.shape[-2]:
        raise ShapeError(f"linalg.{where}: expected square matrices (..., n, n), got shape {tuple(t.shape)}")
    return t


def _operand(b: Any) -> Tensor:
    """A right-hand side: a complex Tensor as it is, anything else lifted to a floating one."""
    return b if isinstance(b, Tensor) and b.array.dtype.kind == "c" else ops._lift_float(b)


def _call(where: str, fn: Any, *arrays: Any) -> Any:
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as exc:
        raise LinAlgError(f"linalg.{where}: {exc} (input shape {tuple(arrays[0].shape)})") from None


def _t(x: Any) -> Any:
    """The last two dims swapped, for arrays and tensors alike."""
    return x.swapaxes(-1, -2) if not isinstance(x, Tensor) else ops.transpose(x, -1, -2)


def _is_c(x: Any) -> bool:
    return (x.array if isinstance(x, Tensor) else x).dtype.kind == "c"


def _c(x: Any) -> Any:
    """The conjugate of a complex array or tensor; a real one as it is (no copy)."""
    if not _is_c(x):
        return x
    return _complex.conj(x) if isinstance(x, Tensor) else x.conj()


def _h(x: Any) -> Any:
    """The conjugate transpose (the last two dims): the complex rules' transpose, ``_t`` for real values."""
    return _t(_c(x))


def _real_like(grad: Any, arg: Any) -> Any:
    """A gradient for ``arg``: its real part when ``arg`` is real and took part in a complex computation."""
    if grad is None or _is_c(arg) or not _is_c(grad):
        return grad
    return _complex.real(grad) if isinstance(grad, Tensor) else np.real(grad)  # np.real: device arrays dispatch it


def _single_backward_for_complex(where: str, a: Any, xp: Any) -> None:
    """Refuse create_graph=True through a factorization of a complex matrix (its recorded rule is the real one)."""
    if xp.differentiable and _is_c(a):
        raise DTypeError(
            f"linalg.{where}: the double backward (create_graph=True) of {where} is not supported for complex "
            f"matrices, got {a.array.dtype}; first-order gradients are"
        )


def _inverse_of(a: Any, xp: Any) -> Any:
    """``a``'s inverse: recorded (differentiable) under create_graph, else an array."""
    return inv(a) if xp.differentiable else namespace_of(a).linalg.inv(a)


# ---------------------------------------------------------------------- inverse, determinants, solve
def inv(A: Any) -> Tensor:
    """The inverse of a square matrix (or of each in a stack): ``A @ inv(A)`` is the identity.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.inv(ds.tensor([[2.0, 0.0], [0.0, 4.0]]))
        tensor([[0.5 , 0.  ],
                [0.  , 0.25]])
    """
    a = _matrix(A, "inv", complex_ok=True)
    if _small_stack(a.array):
        cof = _cofactor_matrix(a.array)
        d = _det_from_cofactors(a.array, cof)
        if d.all():  # else LAPACK's path, which names a singular matrix as before
            return record_op(cof.swapaxes(-1, -2) / d[..., None, None], (a,), _inv_vjp)
    return record_op(_call("inv", namespace_of(a.array).linalg.inv, a.array), (a,), _inv_vjp)


def _inv_vjp(g, y, args, saved, needs, xp):
    y_t = _h(y)
    return (-(y_t @ g @ y_t),)  # d(A^-1) = -A^-1 dA A^-1; complex: -A^-H g A^-H


def det(A: Any) -> Tensor:
    """The determinant of a square matrix (``(...,)`` for a stack). Its gradient is the cofactor
    matrix, ``det(A) * inv(A).T`` where A is invertible, and from the SVD at a singular matrix (finite:
    PyTorch's formula), where it can be differentiated again too.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.det(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor(-2.)
    """
    a = _matrix(A, "det", complex_ok=True)
    if _small_stack(a.array):
        return record_op(_det_from_cofactors(a.array, _cofactor_matrix(a.array, first_row=True)), (a,), _det_vjp)
    return record_op(namespace_of(a.array).linalg.det(a.array), (a,), _det_vjp)


# A stack of 2x2 or 3x3 real matrices on the host: NumPy's det and inv call LAPACK once per matrix (a
# copy and an LU factorization each), which for 1000 matrices 3x3 cost 2-3x torch's batched kernels;
# their closed forms over the whole stack are a few elementwise products per entry (about 10x faster
# there). Below this many matrices LAPACK's calls cost less than the closed forms' NumPy steps.
_SMALL_STACK = 16
_SMALL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _small_stack(a: Any) -> bool:
    """Whether ``a`` is a host stack of real 2x2 or 3x3 matrices that the closed forms take."""
    return (
        type(a) is np.ndarray
        and a.ndim >= 3
        and (a.shape[-1] == 2 or a.shape[-1] == 3)
        and a.dtype in _SMALL_DTYPES
        and a.size >= _SMALL_STACK * a.shape[-1] * a.shape[-1]
    )


def _cofactor_matrix(a: Any, first_row: bool = False) -> np.ndarray:
    """The cofactor matrices of a stack of 2x2 or 3x3 matrices (``det(A) inv(A)^T``, exact products
    of the entries, finite at a singular matrix too); only their first rows with ``first_row``."""
    c = np.empty_like(a)
    if a.shape[-1] == 2:
        c[..., 0, 0] = a[..., 1, 1]
        c[..., 0, 1] = -a[..., 1, 0]
        if not first_row:
            c[..., 1, 0] = -a[..., 0, 1]
            c[..., 1, 1] = a[..., 0, 0]
        return c
    a00, a01, a02 = a[..., 0, 0], a[..., 0, 1], a[..., 0, 2]
    a10, a11, a12 = a[..., 1, 0], a[..., 1, 1], a[..., 1, 2]
    a20, a21, a22 = a[..., 2, 0], a[..., 2, 1], a[..., 2, 2]
    c[..., 0, 0] = a11 * a22 - a12 * a21
    c[..., 0, 1] = a12 * a20 - a10 * a22
    c[..., 0, 2] = a10 * a21 - a11 * a20
    if not first_row:
        c[..., 1, 0] = a02 * a21 - a01 * a22
        c[..., 1, 1] = a00 * a22 - a02 * a20
        c[..., 1, 2] = a01 * a20 - a00 * a21
        c[..., 2, 0] = a01 * a12 - a02 * a11
        c[..., 2, 1] = a02 * a10 - a00 * a12
        c[..., 2, 2] = a00 * a11 - a01 * a10
    return c


def _det_from_cofactors(a: Any, c: Any) -> np.ndarray:
    """det(A) by the expansion along the first row (``c``: the cofactors, at least their first row)."""
    d = a[..., 0, 0] * c[..., 0, 0] + a[..., 0, 1] * c[..., 0, 1]
    if a.shape[-1] == 3:
        d += a[..., 0, 2] * c[..., 0, 2]
    return d


def _det_vjp(g, y, args, saved, needs, xp):
    scale = xp.expand_dims(xp.expand_dims(g, -1), -1)
    if not xp.differentiable and _small_stack(args[0]):
        return (scale * _cofactor_matrix(args[0]),)  # the gradient itself, at singular matrices too
    if not _any_singular(xp.data(y)):
        # complex: g conj(det) A^-H, the real rule's transposes conjugated
        return (scale * _c(xp.expand_dims(xp.expand_dims(y, -1), -1)) * _h(_inverse_of(args[0], xp)),)
    # det(A) inv(A)^T has no value at a singular matrix, but the cofactor matrix it equals elsewhere
    # does (PyTorch's SVD-based formula): used for the whole stack, so one singular matrix leaves the
    # others' gradients intact
    return (scale * _c(_cofactors(args[0], xp)),)


def _any_singular(det: Any) -> bool:
    """Whether a determinant of the stack (or log|det|, -inf) is exactly zero: no inverse exists."""
    return bool(_devices.to_host((det == 0) | (det == -np.inf)).any())  # host: picks the formula


def _cofactors(a: Any, xp: Any) -> Any:
    """The cofactor matrices (``det(A) inv(A)^T`` where A is invertible) of the stack ``a``, from its
    SVD ``A = U diag(s) Vh``: ``det(U) det(Vh) U diag(prod_{j != i} s_j) Vh``, finite at a singular
    matrix. Recorded under create_graph (differentiable again where the singular values differ)."""
    if xp.differentiable:
        u, s, vh = svd(a, full_matrices=False)
        eye = namespace_of(s.array).eye(s.shape[-1], dtype=bool)
        others = ops.prod(
            ops.where(eye, wrap_array(namespace_of(s.array).ones((), s.array.dtype)), s[..., None, :]), -1
        )
        sign = det(u) * det(vh)
        # A^-T = conj(U) diag(1/s) conj(Vh) for a complex A
        return sign[..., None, None] * ((_c(u) * others[..., None, :]) @ _c(vh))
    ns = namespace_of(a)
    u, s, vh = _call("det", ns.linalg.svd, a)
    eye = ns.eye(s.shape[-1], dtype=bool)
    others = ns.where(eye, 1.0, s[..., None, :]).prod(-1).astype(a.dtype)
    sign = ns.linalg.det(u) * ns.linalg.det(vh)
    return sign[..., None, None] * ((_c(u) * others[..., None, :]) @ _c(vh))


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
    a = _matrix(A, "slogdet", complex_ok=True)
    sign, logabs = namespace_of(a.array).linalg.slogdet(a.array)
    # a complex sign (det / |det|) moves with A, as torch's; a real one is piecewise constant
    sign_t = record_op(sign, (a,), _slogdet_sign_vjp) if _is_c(sign) else wrap_array(sign)
    return SlogdetResult(sign_t, record_op(logabs, (a,), _slogdet_vjp))


def _slogdet_sign_vjp(g, y, args, saved, needs, xp):
    # d sign = i Im(tr(A^-1 dA)) sign, so the gradient is -i Im(conj(g) sign) A^-H
    c = _complex.imag(_c(g) * y) if isinstance(g, Tensor) else np.imag(g.conj() * y)
    scale = xp.expand_dims(xp.expand_dims(c, -1), -1) * -1j
    return (scale * _h(_inverse_of(args[0], xp)),)


_complex.register(_slogdet_sign_vjp)  # written for complex values


def _slogdet_vjp(g, y, args, saved, needs, xp):
    scale = xp.expand_dims(xp.expand_dims(g, -1), -1)
    if y is None:  # log|det| changed in place (torch saves A, not it): only its -inf entries are read
        with no_grad():
            y = slogdet(wrap_array(xp.data(args[0]))).logabsdet.array
    # only log|det| = -inf is singular: 0 is |det| = 1 (the identity, every 0 x 0 matrix), not _any_singular's
    # zero determinant
    if not bool(_devices.to_host(xp.data(y) == -np.inf).any()):  # host: picks the formula
        return (scale * _h(_inverse_of(args[0], xp)),)
    # log|det| is -inf at a singular matrix and its gradient infinite: PyTorch's inf and NaN, those of
    # solving A^T X = g I through LAPACK's LU (a constant); the other matrices of the stack keep their
    # finite (and differentiable) gradients
    a = xp.data(args[0])
    ns = namespace_of(a)
    singular = ns.expand_dims(ns.expand_dims(xp.data(y) == -np.inf, -1), -1)
    eye = ns.broadcast_to(ns.eye(a.shape[-1], dtype=a.dtype), a.shape)
    regular = scale * _h(_inverse_of(xp.where(singular, xp.constant(eye), args[0]), xp))
    with no_grad():
        rhs = ns.expand_dims(ns.expand_dims(xp.data(g), -1), -1) * eye
        blown = _getrs(wrap_array(_h(a).copy()), wrap_array(rhs), True).array
    return (xp.where(singular, xp.constant(blown), regular),)


_slogdet_vjp.reads_output = "optional"  # type: ignore[attr-defined]


def logdet(A: Any) -> Tensor:
    """``log(det(A))`` (``torch.logdet``): NaN where the determinant is negative, -inf where it is 0.

    Example:
        >>> import downslope as ds
        >>> ds.logdet(ds.tensor([[2.0, 0.0], [0.0, 3.0]])).item() == float(ds.tensor(6.0).log())
        True
    """
    sign, logabs = slogdet(A)
    nan = wrap_array(namespace_of(sign.array).full((), np.nan, dtype=logabs.array.dtype))
    # a singular matrix keeps log|det| (-inf) and its gradient, as PyTorch's
    return ops.where(sign.array < 0, nan, logabs)


def solve(A: Any, B: Any, *, left: bool = True) -> Tensor:
    """The ``X`` with ``A @ X = B`` (``left=False``: ``X @ A = B``), for a square ``A``. ``B`` may be a
    vector ``(n,)`` (then ``X`` is one), or a matrix ``(..., n, k)``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.solve(ds.tensor([[2.0, 0.0], [0.0, 4.0]]), ds.tensor([2.0, 2.0]))
        tensor([1. , 0.5])
    """
    b = B if isinstance(B, Tensor) and _is_c(B) else ops._lift_float(B)
    return _solve(_matrix(A, "solve", complex_ok=True), b, left, "solve")


def _solve(a: Tensor, b: Tensor, left: bool, where: str, shapes: str = "", vectors: bool = True) -> Tensor:
    """:func:`solve` for the ops built on it, whose errors name ``where`` (and ``shapes``, the caller's).
    ``vectors``: linalg.solve's rule that a B of A's shape without its last dim is a batch of vectors;
    the triangular, LU and Cholesky solves take B as matrices whatever its shape, as PyTorch's do."""
    shapes = shapes or f"A of shape {tuple(a.shape)} and B of shape {tuple(b.shape)}"
    if not left:
        # XA = B has no vector form: a B that linalg.solve's rule reads as vectors is refused, as PyTorch
        if b.ndim < 2 or (vectors and _vector_rhs(a, b)):
            raise ShapeError(
                f"linalg.{where}: with left=False, B must be a matrix (..., k, n), got {shapes} (a B of A's "
                "shape without its last dim is read as a batch of vectors)"
            )
        return _t(_solve(_t(a), _t(b), True, where, shapes, vectors=False))
    vector = _vector_rhs(a, b) if vectors else False
    if vector:
        b = ops.unsqueeze(b, -1)
    _solve_shapes(a, b, True, where, shapes)
    # both operands to the batch their batch dims broadcast to, as PyTorch: a B with fewer dims than A
    # would be read by NumPy 1 as a stack of vectors, and A (2, 1, n, n) with B (3, n, k) gives (2, 3, n, k);
    # the recorded broadcasts sum each gradient back to its operand's own batch
    batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))  # host: shapes are tuples
    # the rule solves with A as it is now (torch saves its LU factors): a copy, taken before A's batch
    # broadcast (a write into A or B after the solve does not stop backward, as in torch)
    kept = a.array.copy() if is_grad_enabled() and (a.requires_grad or b.requires_grad) else None
    if tuple(a.shape[:-2]) != batch:
        a = ops.broadcast_to(a, batch + tuple(a.shape[-2:]))
        if kept is not None:
            kept = namespace_of(kept).broadcast_to(kept, a.shape)
    if tuple(b.shape[:-2]) != batch:
        b = ops.broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = record_op(_call(where, namespace_of(a.array).linalg.solve, a.array, b.array), (a, b), _solve_vjp, kept)
    return ops.squeeze(x, -1) if vector else x


def _vector_rhs(a: Tensor, b: Tensor) -> bool:
    """PyTorch's rule: ``B`` is a vector (or a batch of them) when it is 1-D, or has A's shape without
    its last dim."""
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and tuple(b.shape) == tuple(a.shape[:-1]))


def _solve_shapes(a: Tensor, b: Tensor, left: bool, where: str, shapes: str = "") -> None:
    """Refuse a matrix ``B`` that does not fit ``A`` (rows for ``left``, else columns) or whose batch
    dims do not broadcast with ``A``'s."""
    shapes = shapes or f"A of shape {tuple(a.shape)} and B of shape {tuple(b.shape)}"
    n = a.shape[-1]
    if b.ndim < 2 or b.shape[-2 if left else -1] != n:
        raise ShapeError(f"linalg.{where}: {shapes} do not fit: B needs {n} {'rows' if left else 'columns'}")
    try:
        np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))  # host: shapes are tuples
    except ValueError:
        raise ShapeError(f"linalg.{where}: the batch dims of {shapes} do not broadcast") from None


def _solve_vjp(g, y, args, saved, needs, xp):
    a = args[0] if xp.differentiable or saved is None else saved  # (under create_graph: A, recorded)
    g_b = solve(_h(a), g) if xp.differentiable else namespace_of(a).linalg.solve(_h(a), g)  # A^-T g (complex: A^-H g)
    g_a = -(g_b @ _h(y)) if needs[0] else None
    g_a = xp.sum_to(_real_like(g_a, a), a.shape) if g_a is not None else None
    return (g_a, xp.sum_to(_real_like(g_b, args[1]), args[1].shape))


_solve_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]


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
    a = _matrix(A, "cholesky", complex_ok=True)
    factor = _call("cholesky", namespace_of(a.array).linalg.cholesky, a.array)
    diag = namespace_of(factor).diagonal(factor, axis1=-2, axis2=-1)
    if bool(_devices.to_host(namespace_of(diag).isnan(diag).any())):  # host: LAPACK lets NaN through; PyTorch raises
        raise LinAlgError(
            f"linalg.cholesky: the input is not positive-definite (it holds NaN) (input shape {tuple(a.shape)})"
        )
    out = record_op(factor, (a,), _cholesky_vjp)
    return _h(out) if upper else out  # U = L^H


def _cholesky_vjp(g, y, args, saved, needs, xp):
    _single_backward_for_complex("cholesky", args[0], xp)
    if xp.differentiable:
        return (_cholesky_grad_recorded(g, y),)
    # Murray (2016): with Phi the lower triangle and half the diagonal, dA = L^-T Phi(L^T gL) L^-1,
    # made symmetric (A is symmetric, and only its lower triangle was read).
    ns = namespace_of(y)
    # complex: the transposes conjugated (torch's cholesky_backward), the result Hermitian
    phi = ns.tril(_h(y) @ ns.tril(g))
    phi = phi - 0.5 * ns.eye(y.shape[-1], dtype=y.dtype) * phi
    l_inv = ns.linalg.inv(y)
    grad = _h(l_inv) @ phi @ l_inv
    return (0.5 * (grad + _h(grad)),)


def _cholesky_grad_recorded(g: Tensor, low: Tensor) -> Tensor:
    """The rule above with recorded ops (PyTorch's cholesky_backward), for double backward: with
    ``T = tril(L^T gL)``, ``P = (T + tril(T, -1)^T) / 2`` (symmetric), ``gA = L^-T P L^-1`` by two
    triangular solves."""
    phi = ops.tril(_h(low) @ ops.tril(g))
    phi = 0.5 * (phi + _h(ops.tril(phi, -1)))
    return solve_triangular(low, solve_triangular(_h(low), phi, upper=True), upper=False, left=False)


class EighResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


def eigh(A: Any, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric (complex: Hermitian) matrix, reading its lower
    (``UPLO='L'``) or upper triangle. The gradient through the eigenvectors is undefined where two
    eigenvalues are equal (as in PyTorch). An eigenvector's sign is arbitrary: downslope's come from
    LAPACK through NumPy and may differ from PyTorch's, so compare sign-free uses (``V diag(w) V^T``,
    projections ``v v^T``), or fix the signs (e.g. the largest entry of each vector positive).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eigh(ds.tensor([[2.0, 0.0], [0.0, 1.0]])).eigenvalues
        tensor([1., 2.])
    """
    a = _matrix(A, "eigh", complex_ok=True)
    if not isinstance(UPLO, str) or UPLO.upper() not in ("L", "U"):
        raise ArgumentError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    UPLO = UPLO.upper()  # PyTorch takes either case
    w, v = _call("eigh", namespace_of(a.array).linalg.eigh, a.array, UPLO)
    values = record_op(w, (a,), _eigvalsh_vjp, (v, UPLO))
    vectors = record_op(v, (a,), _eigenvectors_vjp, (w, UPLO))
    return EighResult(values, vectors)


def _eigvalsh_vjp(g, y, args, saved, needs, xp):
    # under create_graph V is the recorded one (the decomposition again: LAPACK gives the same
    # vectors for the same matrix), so the gradient differentiates again through it
    v = eigh(args[0], saved[1]).eigenvectors if xp.differentiable else saved[0]
    return ((v * xp.expand_dims(g, -2)) @ _h(v),)  # V diag(g) V^T (complex: V^H)


def _eigenvectors_vjp(g, y, args, saved, needs, xp):
    _single_backward_for_complex("eigh", args[0], xp)
    if xp.differentiable:
        w, v = eigh(args[0], saved[1])
        return (_eigenvectors_grad_recorded(g, w, v),)
    w, v = saved[0], y
    gap = xp.expand_dims(w, -2) - xp.expand_dims(w, -1)  # w_j - w_i
    ns = namespace_of(v)
    off = ~ns.eye(w.shape[-1], dtype=bool)
    with np.errstate(divide="ignore"):
        f = ns.where(off, 1.0 / ns.where(off, gap, 1.0), 0.0).astype(v.dtype)
    inner = _h(v) @ g  # complex: the skew-Hermitian part, as torch's linalg_eig_backward
    return (v @ (f * 0.5 * (inner - _h(inner))) @ _h(v),)


def _eigenvectors_grad_recorded(g: Tensor, w: Tensor, v: Tensor) -> Tensor:
    """The eigenvectors' share of A's gradient with recorded ops (PyTorch's linalg_eig_backward for a
    symmetric A): ``V (skew(V^T gV) / 2 / E) V^T``, ``E_ij = w_j - w_i`` off the diagonal."""
    off = ~namespace_of(w.array).eye(w.shape[-1], dtype=bool)
    gap = ops.unsqueeze(w, -2) - ops.unsqueeze(w, -1)  # w_j - w_i
    inner = _h(v) @ g
    scaled = ops.where(off, 0.5 * (inner - _h(inner)) / ops.where(off, gap, 1.0), 0.0)
    return v @ scaled @ _h(v)


def eigvalsh(A: Any, UPLO: str = "L") -> Tensor:
    """The eigenvalues of a symmetric matrix, ascending (see :func:`eigh`): for a loss's Hessian,
    the curvatures along its principal directions.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eigvalsh(ds.tensor([[2.0, 1.0], [1.0, 2.0]]))
        tensor([1., 3.])
    """
    return eigh(A, UPLO).eigenvalues


def svdvals(A: Any, *, driver: str | None = None) -> Tensor:
    """The singular values of a matrix (or of each in a stack), descending; the gradient is
    ``U diag(g) V^T``. ``driver`` is refused on the CPU, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.svdvals(ds.tensor([[3.0, 0.0], [0.0, -4.0]]))
        tensor([4., 3.])
    """
    a = _matrix(A, "svdvals", square=False, complex_ok=True)
    if driver is not None and type(a.array) is np.ndarray:
        raise ArgumentError(
            f"linalg.svdvals: driver= is only supported for tensors on a CUDA device, as in PyTorch, got "
            f"driver={driver!r} on the CPU"
        )
    u, s, vt = _call("svdvals", namespace_of(a.array).linalg.svd, a.array, False)
    return record_op(s, (a,), _svdvals_vjp, (u, vt))


def _svdvals_vjp(g, y, args, saved, needs, xp):
    # under create_graph U and Vh recorded (the same SVD again), to differentiate through them
    u, _, vt = svd(args[0], full_matrices=False) if xp.differentiable else (saved[0], None, saved[1])
    return ((u * xp.expand_dims(g, -2)) @ vt,)


_svdvals_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]  # U and Vh are saved


# ---------------------------------------------------------------------- factorizations of general matrices
class SVDResult(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


def svd(A: Any, full_matrices: bool = True, *, driver: str | None = None) -> SVDResult:
    """The singular value decomposition ``A = U diag(S) Vh``, singular values descending, as
    ``torch.linalg.svd`` (``full_matrices=True`` gives square ``U`` and ``Vh``; their extra columns get
    no gradient, as in PyTorch). The gradient through ``U`` and ``Vh`` is undefined where two singular
    values are equal, and a singular vector's sign is arbitrary: downslope's come from LAPACK through
    NumPy and may differ from PyTorch's (a pair ``U[:, i]``, ``Vh[i]`` flipped together), so only sign-free
    uses of them (``U @ diag(S) @ Vh``, projections, ``S``) are comparable between libraries; the
    gradient of a sign-dependent loss (``U.sum()``) differs with them. ``driver`` is refused on the
    CPU, as in PyTorch, and has no effect on a GPU.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.svd(ds.tensor([[3.0, 0.0], [0.0, -4.0]])).S
        tensor([4., 3.])
    """
    a = _matrix(A, "svd", square=False, complex_ok=True)
    if driver is not None and type(a.array) is np.ndarray:
        raise ArgumentError(
            f"linalg.svd: driver= is only supported for tensors on a CUDA device, as in PyTorch, got driver={driver!r} "
            "on the CPU"
        )
    u, s, vh = _call("svd", namespace_of(a.array).linalg.svd, a.array, full_matrices)
    k = s.shape[-1]
    u_k, vh_k, s_k = u[..., :k], vh[..., :k, :], s
    if is_grad_enabled() and a.requires_grad:
        # the rules read the factors as computed: copies, which a write into an output after does not reach
        # (each output's rule reads the others' factors, whose writes no version check of its own sees)
        u_k, vh_k, s_k = u_k.copy(), vh_k.copy(), s.copy()
    return SVDResult(
        record_op(u, (a,), _svd_vjp, ("U", u_k, s_k, vh_k, full_matrices)),
        record_op(s, (a,), _svd_vjp, ("S", u_k, s_k, vh_k, full_matrices)),
        record_op(vh, (a,), _svd_vjp, ("Vh", u_k, s_k, vh_k, full_matrices)),
    )


def _svd_vjp(g, y, args, saved, needs, xp):
    # Each output's share of A's gradient; the shares add up to the joint rule, which is linear in
    # (gU, gS, gVh). The rule is PyTorch's svd_backward (Townsend 2016; Ionescu et al. 2015).
    which, u, s, vh, full = saved
    _single_backward_for_complex("svd", args[0], xp)
    if xp.differentiable:
        return (_svd_grad_recorded(which, g, args[0], s.shape[-1], full),)
    ns = namespace_of(u)
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    if which == "S":
        return ((u * ns.expand_dims(g, -2)) @ vh,)
    s2 = s * s
    gap = ns.expand_dims(s2, -2) - ns.expand_dims(s2, -1)  # s_j^2 - s_i^2
    gap = ns.where(ns.eye(k, dtype=bool), 1.0, gap)
    # complex: the transposes conjugated, and V's share carries the phase term i Im(diag(V^H gV)) / s
    # (the phases of a pair U[:, i], Vh[i] are arbitrary together: a loss that does not depend on
    # them has Im diag(U^H gU) = -Im diag(V^H gV), so the term sits on one share)
    if which == "U":
        gu = g[..., :k]  # the full U's extra columns are not differentiated (PyTorch's choice)
        inner = _h(u) @ gu
        core = (inner - _h(inner)) * ns.expand_dims(s, -2) / gap
        if m > k:  # the part of gU outside U's column space
            gu_sinv = gu / ns.expand_dims(s, -2)
            return ((u @ core + gu_sinv - u @ (_h(u) @ gu_sinv)) @ vh,)
        return (u @ core @ vh,)
    gv = _h(g[..., :k, :])
    v = _h(vh)
    inner = _h(v) @ gv
    core = ns.expand_dims(s, -1) * (inner - _h(inner)) / gap
    if _is_c(inner):
        idx = np.arange(k)  # host: the diagonal's positions
        core[..., idx, idx] -= 1j * np.imag(inner[..., idx, idx]) / s
    if n > k:  # the part of gV outside V's column space
        gv_sinv = _h(gv / ns.expand_dims(s, -2))
        return (u @ (core @ vh + gv_sinv - (gv_sinv @ v) @ vh),)
    return (u @ core @ vh,)


_svd_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]  # U, S and Vh are saved


def _svd_grad_recorded(which: str, g: Tensor, a: Tensor, k: int, full: bool) -> Tensor:
    """One output's share of A's gradient with recorded ops (PyTorch's svd_backward), for double
    backward: U, S and Vh are those of the same SVD again (LAPACK gives the same vectors for the same
    matrix), recorded, so the gradient differentiates through them."""
    u, s, vh = svd(a, full_matrices=full)
    u, vh = u[..., :k], vh[..., :k, :]
    m, n = u.shape[-2], vh.shape[-1]
    if which == "S":
        return (u * ops.unsqueeze(g, -2)) @ vh
    s2 = s * s
    eye = namespace_of(s.array).eye(k, dtype=bool)
    gap = ops.where(eye, 1.0, ops.unsqueeze(s2, -2) - ops.unsqueeze(s2, -1))  # s_j^2 - s_i^2
    if which == "U":
        gu = g[..., :k]  # the full U's extra columns are not differentiated (PyTorch's choice)
        inner = _t(u) @ gu
        core = (inner - _t(inner)) * ops.unsqueeze(s, -2) / gap
        if m > k:  # the part of gU outside U's column space
            gu_sinv = gu / ops.unsqueeze(s, -2)
            return (u @ core + gu_sinv - u @ (_t(u) @ gu_sinv)) @ vh
        return u @ core @ vh
    gvh = g[..., :k, :]
    inner = vh @ _t(gvh)  # V^T gV
    core = ops.unsqueeze(s, -1) * (inner - _t(inner)) / gap
    if n > k:  # the part of gV outside V's column space
        sinv_gvh = gvh / ops.unsqueeze(s, -1)
        return u @ (core @ vh + sinv_gvh - (sinv_gvh @ _t(vh)) @ vh)
    return u @ core @ vh


class QRResult(NamedTuple):
    Q: Tensor
    R: Tensor


def qr(A: Any, mode: str = "reduced") -> QRResult:
    """The QR decomposition ``A = Q R`` (``Q``'s columns orthonormal, ``R`` upper triangular), as
    ``torch.linalg.qr``: ``mode='reduced'`` (``Q`` is m x k, k = min(m, n)), ``'complete'`` (``Q`` is
    m x m) or ``'r'`` (``R`` only; ``Q`` is empty). As in PyTorch, there is no gradient for
    ``mode='r'``, nor for ``'complete'`` when A has more rows than columns. Signs follow LAPACK's
    Householder convention, the same as PyTorch's on the CPU.

    Example:
        >>> import downslope as ds
        >>> q, r = ds.linalg.qr(ds.tensor([[3.0, 1.0], [4.0, 2.0]]))
        >>> (q @ r).round(decimals=4)
        tensor([[3., 1.],
                [4., 2.]])
    """
    a = _matrix(A, "qr", square=False, complex_ok=True)
    if mode not in ("reduced", "complete", "r"):
        raise ArgumentError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    ns = namespace_of(a.array)
    q, r = _call("qr", ns.linalg.qr, a.array, "complete" if mode == "complete" else "reduced")
    if mode == "r":
        return QRResult(wrap_array(ns.zeros((0,), dtype=a.array.dtype)), record_op(r, (a,), _qr_r_only_vjp))
    m, n = a.shape[-2:]
    refuse = "complete" if mode == "complete" and m > n else None
    kq, kr = (q.copy(), r.copy()) if is_grad_enabled() and a.requires_grad else (q, r)  # (as svd's factors)
    return QRResult(
        record_op(q, (a,), _qr_vjp, ("Q", kq, kr, refuse, mode)),
        record_op(r, (a,), _qr_vjp, ("R", kq, kr, refuse, mode)),
    )


def _qr_r_only_vjp(g, y, args, saved, needs, xp):
    raise StateError(
        "linalg.qr: the gradient of R depends on Q, which mode='r' does not compute: use mode='reduced' "
        "to differentiate through it"
    )


def _qr_vjp(g, y, args, saved, needs, xp):
    which, q, r, refuse, mode = saved
    _single_backward_for_complex("qr", args[0], xp)
    if refuse:
        raise StateError(
            "linalg.qr: the decomposition is not differentiable with mode='complete' and more rows than columns"
        )
    if xp.differentiable:
        return (_qr_grad_recorded(which, g, args[0], mode),)
    ns = namespace_of(q)
    gq = g if which == "Q" else ns.zeros_like(q)
    gr = g if which == "R" else ns.zeros_like(r)
    m, n = q.shape[-2], r.shape[-1]
    if m >= n:
        return (_qr_square_or_tall_grad(gq, gr, q, r, ns),)
    # wide: A = [X | Y] with X = Q R_X square and R_Y = Q^T Y, so Y = Q R_Y (from the factors, as torch's rule)
    y_part = q @ r[..., m:]
    gr_x, gr_y = gr[..., :m], gr[..., m:]
    g_x = _qr_square_or_tall_grad(gq + y_part @ _h(gr_y), gr_x, q, r[..., :m], ns)
    return (ns.concatenate([g_x, q @ gr_y], axis=-1),)


_qr_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]  # Q and R are saved


def _qr_square_or_tall_grad(gq: Any, gr: Any, q: Any, r: Any, ns: Any) -> Any:
    # Walter and Lehmann (2018): M = R gR^T - gQ^T Q, gA = (gQ + Q copyltu(M)) R^-T, where copyltu
    # mirrors M's lower triangle onto its upper one.
    # complex: the transposes conjugated, and copyltu's diagonal is M's real part (R's diagonal is real)
    mm = r @ _h(gr) - _h(gq) @ q
    low = ns.tril(mm, -1)
    diag = ns.tril(ns.triu(mm))
    sym = low + _h(low) + (np.real(diag) if _is_c(diag) else diag)
    rhs = gq + q @ sym
    return _h(_call("qr", ns.linalg.solve, r, _h(rhs)))  # rhs R^-H: R X^H = rhs^H


def _qr_grad_recorded(which: str, g: Tensor, a: Tensor, mode: str) -> Tensor:
    """One output's share of A's gradient with recorded ops, for double backward: Q and R are those of
    the same decomposition again (LAPACK gives the same factors for the same matrix), recorded."""
    q, r = qr(a, mode)
    ns = namespace_of(q.array)
    gq: Tensor = g if which == "Q" else wrap_array(ns.zeros_like(q.array))
    gr: Tensor = g if which == "R" else wrap_array(ns.zeros_like(r.array))
    m, n = q.shape[-2], r.shape[-1]
    if m >= n:
        return _qr_square_or_tall_recorded(gq, gr, q, r)
    # wide: A = [X | Y] with X = Q R_X square and R_Y = Q^T Y
    gr_y = gr[..., m:]
    g_x = _qr_square_or_tall_recorded(gq + a[..., m:] @ _t(gr_y), gr[..., :m], q, r[..., :m])
    return ops.cat([g_x, q @ gr_y], -1)


def _qr_square_or_tall_recorded(gq: Tensor, gr: Tensor, q: Tensor, r: Tensor) -> Tensor:
    """:func:`_qr_square_or_tall_grad` with recorded ops; ``R^-T`` by a triangular solve."""
    mm = r @ _t(gr) - _t(gq) @ q
    low = ops.tril(mm, -1)
    rhs = gq + q @ (low + _t(low) + ops.tril(ops.triu(mm)))
    return solve_triangular(_t(r), rhs, upper=False, left=False)  # rhs R^-T


def solve_triangular(A: Any, B: Any, *, upper: bool, left: bool = True, unitriangular: bool = False) -> Tensor:
    """The ``X`` with ``A @ X = B`` (``left=False``: ``X @ A = B``) for a triangular ``A``, reading only
    its upper (``upper=True``) or lower triangle, and taking its diagonal as ones with
    ``unitriangular=True``; as ``torch.linalg.solve_triangular``. Built from recorded ops, so it
    differentiates (again) in both arguments, and ``A``'s gradient stays in its triangle.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.solve_triangular(ds.tensor([[2.0, 1.0], [0.0, 4.0]]), ds.tensor([[3.0], [4.0]]), upper=True)
        tensor([[1.],
                [1.]])
    """
    a = _matrix(A, "solve_triangular", complex_ok=True)
    b = _operand(B)
    if b.ndim < 2:
        raise ShapeError(f"linalg.solve_triangular: expected B of shape (..., n, k), got shape {tuple(b.shape)}")
    zero_pivot = not unitriangular and bool(_devices.to_host((_diagonals(a) == 0).any()))  # host: picks the path
    if a.shape[-1] and not zero_pivot:
        # A as given: the solve reads only its triangle (and takes a unit diagonal as ones), and the
        # rule keeps A's gradient there, as the masked copy of A the other path makes would
        return _solve_tri(a, b, left, upper, "solve_triangular", unit=unitriangular, raw=True)
    return _solve_triangle(_triangle(a, upper, unitriangular), b, upper, left, unitriangular, "solve_triangular")


def _diagonals(a: Tensor) -> Any:
    """The diagonals of ``a``'s matrices, as an array in its namespace."""
    return namespace_of(a.array).diagonal(a.array, axis1=-2, axis2=-1)


def _solve_triangle(tri: Tensor, b: Tensor, upper: bool, left: bool, unit: bool, where: str) -> Tensor:
    """Solve with the triangular ``tri``: by the solver, unless its diagonal holds a zero; then by
    substitution, whose inf and NaN are LAPACK's trsm results (PyTorch's), where a solver refuses."""
    ns = namespace_of(tri.array)
    diag = ns.diagonal(tri.array, axis1=-2, axis2=-1)
    if unit or tri.shape[-1] == 0 or not bool(_devices.to_host((diag == 0).any())):  # host: picks the path
        return _solve_tri(tri, b, left, upper, where)
    _solve_shapes(tri, b, left, where)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if not left:  # X A = B  <=>  A^T X^T = B^T, and the transpose flips the triangle
            return _t(_substitute(_t(tri), _t(b), lower=upper, unit=False))
        return _substitute(tri, b, lower=not upper, unit=False)


_HOST_SCIPY_LINALG: list[Any] = []  # scipy.linalg, or None without SciPy: looked up on the first triangular solve
_TRI_BLOCK = 64  # rows per block of the substitution without SciPy: matmuls on blocks, small solves on the diagonal
_LAPACK_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


def _host_scipy_linalg() -> Any:
    """scipy.linalg when it can be imported, else None. SciPy is optional (not a dependency) and slow
    to import, so it is imported on the first triangular solve, not with downslope."""
    if not _HOST_SCIPY_LINALG:
        try:
            import scipy.linalg as module
        except ImportError:  # the blocked substitution serves
            module = None
        _HOST_SCIPY_LINALG.append(module)
    return _HOST_SCIPY_LINALG[0]


def _tri_values(t: Any, b: Any, lower: bool, unit: bool = False) -> Any:
    """The ``X`` with ``T X = B`` for the lower (or upper) triangle of ``T`` (..., n, n), read alone (the
    other triangle is ignored; with ``unit``, the diagonal too, taken as ones), whose diagonal has no
    zero, ``B`` (..., n, k), batches broadcast: O(n^2 k) work where a general solve does O(n^3). On host
    float arrays by LAPACK's trtrs through SciPy (as torch's trsm), a batch of small matrices by
    :func:`_substitute_values`; else by blocked substitution in the
    arrays' namespace: each block of rows subtracts the solved rows' part by one matmul (those blocks lie
    inside the triangle) and solves its own small masked triangle."""
    if (
        type(t) is np.ndarray
        and type(b) is np.ndarray
        and t.dtype.type in _LAPACK_DTYPES
        and b.dtype.type in _LAPACK_DTYPES
    ):
        n = t.shape[-1]
        if 0 < n <= _TRI_BLOCK and math.prod(np.broadcast_shapes(t.shape[:-2], b.shape[:-2])) > 1:
            # SciPy solves a batch one matrix at a time from Python (~50 us each: 20000 3x3 solves took
            # seconds); the substitution takes n steps, each over the whole batch at once
            return _substitute_values(t, b, lower, unit)
        sl = _host_scipy_linalg()
        if sl is not None:
            # SciPy raises on a singular (zero-diagonal) T, which the callers have ruled out
            return sl.solve_triangular(t, b, lower=lower, unit_diagonal=unit, check_finite=False)
    xp = namespace_of(t)
    n = t.shape[-1]

    def diagonal_block(s: int, e: int) -> Any:
        block = t[..., s:e, s:e]
        if unit:
            eye = xp.eye(e - s, dtype=t.dtype)
            return (xp.tril(block, -1) if lower else xp.triu(block, 1)) + eye
        return xp.tril(block) if lower else xp.triu(block)

    if n <= _TRI_BLOCK:
        return xp.linalg.solve(diagonal_block(0, n), b)
    starts = list(range(0, n, _TRI_BLOCK))
    solved: list[Any] = []  # the solved blocks, in the order of the substitution
    for s in starts if lower else starts[::-1]:
        e = min(s + _TRI_BLOCK, n)
        rhs = b[..., s:e, :]
        if solved:
            done = xp.concatenate(solved if lower else solved[::-1], axis=-2)
            rhs = rhs - (t[..., s:e, :s] @ done if lower else t[..., s:e, e:] @ done)
        solved.append(xp.linalg.solve(diagonal_block(s, e), rhs))
    return xp.concatenate(solved if lower else solved[::-1], axis=-2)


def _substitute_values(t: np.ndarray, b: np.ndarray, lower: bool, unit: bool) -> np.ndarray:
    """The ``X`` with ``T X = B`` for host arrays (batches broadcast), by forward (or back) substitution
    over the whole batch at once: row k of X from the solved rows, reading only T's triangle (with
    ``unit``, not its diagonal either), as trsm does. T's diagonal has no zero (the callers' rule)."""
    n = t.shape[-1]
    batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    x = np.empty(batch + b.shape[-2:], dtype=np.result_type(t.dtype, b.dtype))
    for k in range(n) if lower else range(n - 1, -1, -1):
        lo, hi = (0, k) if lower else (k + 1, n)
        acc = b[..., k, :]
        if hi > lo:
            acc = acc - (t[..., k : k + 1, lo:hi] @ x[..., lo:hi, :])[..., 0, :]
        x[..., k, :] = acc if unit else acc / t[..., k, k, None]
    return x


def _solve_tri(
    tri: Tensor, b: Tensor, left: bool, upper: bool, where: str, unit: bool = False, raw: bool = False
) -> Tensor:
    """:func:`_solve` (matrix B) for a triangular ``tri`` with no zero on its diagonal, by triangular
    solves forward and backward. ``raw``: ``tri`` is the caller's whole matrix, of which the solve
    reads the triangle (``unit``: without the diagonal) and to which the gradient goes, masked to it;
    else ``tri`` holds zeros outside its triangle already."""
    if not left:  # X A = B  <=>  A^T X^T = B^T, and the transpose flips the triangle
        return _t(_solve_tri(_t(tri), _t(b), True, not upper, where, unit, raw))
    _solve_shapes(tri, b, True, where)
    batch = np.broadcast_shapes(tuple(tri.shape[:-2]), tuple(b.shape[:-2]))  # host: shapes are tuples
    # the rule solves with A as it is now, as _solve's
    kept = tri.array.copy() if is_grad_enabled() and (tri.requires_grad or b.requires_grad) else None
    if tuple(tri.shape[:-2]) != batch:
        tri = ops.broadcast_to(tri, batch + tuple(tri.shape[-2:]))
        if kept is not None:
            kept = namespace_of(kept).broadcast_to(kept, tri.shape)
    if tuple(b.shape[:-2]) != batch:
        b = ops.broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = _call(where, lambda t, r: _tri_values(t, r, not upper, unit and raw), tri.array, b.array)
    return record_op(x, (tri, b), _solve_tri_vjp, (kept, upper, unit and raw, raw))


def _solve_tri_vjp(g, y, args, saved, needs, xp):
    kept, upper, unit, raw = saved
    a = args[0] if xp.differentiable or kept is None else kept  # (under create_graph: A, recorded)
    # A^-H g: A^H is triangular too, in the other triangle
    if xp.differentiable:
        g_b = _solve_tri(_h(a), g, True, not upper, "solve_triangular", unit, raw)
    else:
        g_b = _tri_values(_h(a), g, upper, unit)
    g_a = None
    if needs[0]:
        g_a = -(g_b @ _h(y))
        if raw:  # the gradient of the triangle read (strictly, for a unit diagonal); the rest is unread
            offset = (1 if upper else -1) if unit else 0
            if isinstance(g_a, Tensor):
                g_a = ops.triu(g_a, offset) if upper else ops.tril(g_a, offset)
            else:
                g_a = namespace_of(g_a).triu(g_a, offset) if upper else namespace_of(g_a).tril(g_a, offset)
        g_a = xp.sum_to(_real_like(g_a, a), a.shape)
    return (g_a, xp.sum_to(_real_like(g_b, args[1]), args[1].shape))


_solve_tri_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]


def _triangle(a: Tensor, upper: bool, unit: bool) -> Tensor:
    if not unit:
        return ops.triu(a) if upper else ops.tril(a)
    eye = wrap_array(namespace_of(a.array).eye(a.shape[-1], dtype=a.array.dtype))
    return (ops.triu(a, 1) if upper else ops.tril(a, -1)) + eye


def matrix_exp(A: Any) -> Tensor:
    """The matrix exponential ``exp(A) = I + A + A^2/2! + ...`` (``torch.linalg.matrix_exp``), by scaling
    and squaring: ``A / 2^s`` has norm at most 1/2, a degree-18 Taylor polynomial of it is exact to
    float64's precision, and ``s`` squarings undo the scaling. Built from recorded matrix products, so
    its gradient (and double backward) is the gradient of that computation.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_exp(ds.tensor([[0.0, 1.0], [0.0, 0.0]]))
        tensor([[1., 1.],
                [0., 1.]])
    """
    a = _matrix(A, "matrix_exp", complex_ok=True)
    ns = namespace_of(a.array)
    n = a.shape[-1]
    if a.array.size == 0:  # exp of 0 x 0 matrices (or of none), recorded so that backward reaches A
        return ops.clone(a)
    finite = ns.isfinite(a.array).all(axis=(-2, -1), keepdims=True)
    if not bool(_devices.to_host(finite).all()):  # host: whether to take the slower masked path
        # only the matrices holding NaN/inf give NaN (as PyTorch); the others keep their graph
        safe = ops.where(wrap_array(finite), a, wrap_array(ns.zeros_like(a.array)))
        nan = wrap_array(ns.full(a.shape, np.nan, dtype=a.array.dtype))
        return ops.where(wrap_array(finite), matrix_exp(safe), nan)
    one_norm = float(_devices.to_host(ns.abs(a.array).sum(-2).max()))  # host: the number of squarings is a Python int
    squarings = max(0, int(np.ceil(np.log2(one_norm / 0.5)))) if one_norm > 0.5 else 0
    scaled = a * (0.5**squarings)
    eye = wrap_array(ns.broadcast_to(ns.eye(n, dtype=a.array.dtype), a.shape).copy())
    out = eye
    for k in range(18, 0, -1):  # Horner: I + X/1 (I + X/2 (I + ... X/18))
        out = eye + (scaled @ out) * (1.0 / k)
    for _ in range(squarings):
        out = out @ out
    return out


class LUFactorResult(NamedTuple):
    LU: Tensor
    pivots: Tensor


class LUFactorExResult(NamedTuple):
    LU: Tensor
    pivots: Tensor
    info: Tensor


class LUResult(NamedTuple):
    P: Tensor
    L: Tensor
    U: Tensor


def _lu_packed(a: Any, pivot: bool) -> tuple[Any, Any, Any, Any]:
    """Gaussian elimination with partial pivoting on the array ``a`` (..., m, n), as LAPACK's getrf:
    the packed ``L`` (below the diagonal, unit diagonal implied) and ``U``, LAPACK's 1-based ``pivots``,
    the row order ``perm`` (``A[perm] = L U``) and ``info`` (the 1-based index of the first zero pivot)."""
    ns = namespace_of(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    if a.size == 0:  # nothing to eliminate: an empty factorization, with pivots 1..k
        pivots = ns.broadcast_to(ns.arange(1, k + 1, dtype=np.int32), batch + (k,)).copy()
        perm = ns.broadcast_to(ns.arange(m), batch + (m,)).copy()
        return a.copy(), pivots, perm, ns.zeros(batch, dtype=np.int32)
    lu = a.reshape((-1, m, n)).copy()
    count = lu.shape[0]
    rows = ns.arange(count)
    perm = ns.broadcast_to(ns.arange(m), (count, m)).copy()
    pivots = ns.broadcast_to(ns.arange(1, k + 1, dtype=np.int32), (count, k)).copy()
    info = ns.zeros(count, dtype=np.int32)
    for j in range(k):
        if pivot:
            column = lu[:, j:, j]
            # LAPACK's pivot for complex values is the largest |re| + |im| (izamax), not the modulus
            # (np.real/np.imag: device arrays dispatch them)
            size = ns.abs(np.real(column)) + ns.abs(np.imag(column)) if column.dtype.kind == "c" else ns.abs(column)
            p = j + ns.argmax(size, axis=-1)
            pivots[:, j] = (p + 1).astype(np.int32)
            row_p, row_j = lu[rows, p].copy(), lu[:, j].copy()
            lu[rows, p], lu[:, j] = row_j, row_p
            perm_p, perm_j = perm[rows, p].copy(), perm[:, j].copy()
            perm[rows, p], perm[:, j] = perm_j, perm_p
        d = lu[:, j, j]
        zero = d == 0
        info = ns.where(zero & (info == 0), j + 1, info).astype(np.int32)
        with np.errstate(divide="ignore", invalid="ignore"):
            lu[:, j + 1 :, j] = ns.where(
                ns.expand_dims(zero, -1), lu[:, j + 1 :, j], lu[:, j + 1 :, j] / ns.expand_dims(d, -1)
            )
        lu[:, j + 1 :, j + 1 :] -= lu[:, j + 1 :, j : j + 1] * lu[:, j : j + 1, j + 1 :]
    return (
        lu.reshape(batch + (m, n)),
        pivots.reshape(batch + (k,)),
        perm.reshape(batch + (m,)),
        info.reshape(batch),
    )


def lu_factor_ex(A: Any, *, pivot: bool = True, check_errors: bool = False) -> LUFactorExResult:
    """:func:`lu_factor` with LAPACK's ``info`` (0, or the 1-based index of the first zero pivot: the
    matrix is singular), raising on a singular matrix only with ``check_errors=True``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.lu_factor_ex(ds.tensor([[1.0, 2.0], [2.0, 4.0]])).info
        tensor(2, dtype=int32)
    """
    a = _matrix(A, "lu_factor", square=False, complex_ok=True)
    lu, pivots, perm, info = _lu_packed(a.array, pivot)
    if check_errors:
        _lu_singular_check(info, "linalg.lu_factor_ex")
    packed = record_op(lu, (a,), _lu_factor_vjp, perm)
    return LUFactorExResult(packed, wrap_array(pivots), wrap_array(info))


def lu_factor(A: Any, *, pivot: bool = True) -> LUFactorResult:
    """The LU decomposition with partial pivoting, packed as LAPACK's getrf and ``torch.linalg.lu_factor``
    give it: ``LU`` holds ``U`` on and above the diagonal and ``L`` (whose diagonal is ones) below it;
    ``pivots`` (int32, 1-based) says which row was swapped with row ``i`` at step ``i``. An exactly
    singular matrix (a zero on ``U``'s diagonal) raises LinAlgError, as PyTorch does; :func:`lu_factor_ex`
    factors it and reports the zero pivot in ``info``. Differentiable (any shape), with PyTorch's gradient.

    Example:
        >>> import downslope as ds
        >>> lu, pivots = ds.linalg.lu_factor(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> pivots
        tensor([2, 2], dtype=int32)
    """
    lu, pivots, info = lu_factor_ex(A, pivot=pivot)
    _lu_singular_check(info.array, "linalg.lu_factor")
    return LUFactorResult(lu, pivots)


def _lu_singular_check(info: Any, name: str) -> None:
    """Raise torch's error for the first matrix (of a batch) whose LU has a zero pivot; ``info`` holds
    LAPACK's 1-based index of that pivot, which torch's message prints as it is."""
    host = np.asarray(_devices.to_host(info)).reshape(-1)  # host: the check decides whether to raise
    bad = np.flatnonzero(host)
    if bad.size:
        where = f"(Batch element {int(bad[0])}): " if np.ndim(info) else ""
        k = int(host[bad[0]])
        raise LinAlgError(
            f"{name}: {where}U[{k},{k}] is zero and using it on lu_solve would result in a division by zero. "
            "If you still want to perform the factorization, consider calling linalg.lu(A, pivot) or "
            "linalg.lu_factor_ex(A, pivot)"
        )


def _lu_factor_vjp(g, y, args, saved, needs, xp):
    # PyTorch's linalg_lu_backward: for square A[perm] = L U,
    # gA[perm] = L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T; a tall A's extra rows of L and a wide
    # A's extra columns of U are solves with the square part, whose gradients are added first.
    perm = saved
    if xp.differentiable:
        return (_lu_factor_grad_recorded(g, y, perm),)
    ns = namespace_of(y)
    m, n = y.shape[-2:]
    k = min(m, n)
    l_full = ns.tril(y[..., :, :k], -1) + ns.eye(m, k, dtype=y.dtype)
    u_full = ns.triu(y[..., :k, :])
    gl_full, gu_full = ns.tril(g[..., :, :k], -1), ns.triu(g[..., :k, :])
    l1, u1 = l_full[..., :k, :], u_full[..., :, :k]
    gl1, gu1 = gl_full[..., :k, :], gu_full[..., :, :k]
    extra = None
    if m > k:  # L2 = A2 U^-1
        l2, gl2 = l_full[..., k:, :], gl_full[..., k:, :]
        extra = _call("lu_factor", ns.linalg.solve, u1, gl2.swapaxes(-1, -2)).swapaxes(-1, -2)  # gA2 = gL2 U^-T
        gu1 = gu1 - l2.swapaxes(-1, -2) @ extra
    elif n > k:  # U2 = L^-1 A2
        u2, gu2 = u_full[..., :, k:], gu_full[..., :, k:]
        extra = _call("lu_factor", ns.linalg.solve, l1.swapaxes(-1, -2), gu2)  # gA2 = L^-T gU2
        gl1 = gl1 - extra @ u2.swapaxes(-1, -2)
    middle = ns.tril(l1.swapaxes(-1, -2) @ gl1, -1) + ns.triu(gu1 @ u1.swapaxes(-1, -2))
    left = _call("lu_factor", ns.linalg.solve, l1.swapaxes(-1, -2), middle)
    g_square = _call("lu_factor", ns.linalg.solve, u1, left.swapaxes(-1, -2)).swapaxes(-1, -2)
    if extra is None:
        g_perm = g_square
    else:
        g_perm = ns.concatenate([g_square, extra], axis=-2 if m > k else -1)
    back = ns.argsort(perm, axis=-1)  # row perm[i] of A became row i: gA's row r is row back[r]
    return (ns.take_along_axis(g_perm, ns.broadcast_to(ns.expand_dims(back, -1), g_perm.shape), axis=-2),)


# LU is holomorphic in A: the complex rule is the real one conjugated (torch's, with conjugate transposes)
_complex.register_holomorphic(_lu_factor_vjp)


def _lu_factor_grad_recorded(g: Tensor, y: Tensor, perm: Any) -> Tensor:
    """The rule above with recorded ops (solves with the triangular factors, read from the packed
    output ``y``), for double backward."""
    ns = namespace_of(y.array)
    m, n = y.shape[-2:]
    k = min(m, n)
    l_full = ops.tril(y[..., :, :k], -1) + wrap_array(ns.eye(m, k, dtype=y.array.dtype))
    u_full = ops.triu(y[..., :k, :])
    gl_full, gu_full = ops.tril(g[..., :, :k], -1), ops.triu(g[..., :k, :])
    l1, u1 = l_full[..., :k, :], u_full[..., :, :k]
    gl1, gu1 = gl_full[..., :k, :], gu_full[..., :, :k]
    extra = None
    if m > k:  # L2 = A2 U^-1
        extra = _t(solve_triangular(u1, _t(gl_full[..., k:, :]), upper=True))  # gL2 U^-T
        gu1 = gu1 - _t(l_full[..., k:, :]) @ extra
    elif n > k:  # U2 = L^-1 A2
        extra = solve_triangular(_t(l1), gu_full[..., :, k:], upper=True, unitriangular=True)  # L^-T gU2
        gl1 = gl1 - extra @ _t(u_full[..., :, k:])
    middle = ops.tril(_t(l1) @ gl1, -1) + ops.triu(gu1 @ _t(u1))
    left = solve_triangular(_t(l1), middle, upper=True, unitriangular=True)
    g_square = _t(solve_triangular(u1, _t(left), upper=True))  # left U^-T
    g_perm = g_square if extra is None else ops.cat([g_square, extra], -2 if m > k else -1)
    back = ns.argsort(perm, axis=-1)  # row perm[i] of A became row i: gA's row r is row back[r]
    return _rows(g_perm, back)


def _permutation_of(pivots: Any, m: int, dtype: Any) -> Any:
    """The permutation matrix P (..., m, m) with A = P L U, from LAPACK's sequential row swaps."""
    perm = _row_order(pivots, m)
    eye = namespace_of(perm).eye(m, dtype=dtype)
    # P[perm[i], i] = 1: column i of P is the unit vector of the row that moved to position i
    return eye[perm].swapaxes(-1, -2)


def _row_order(pivots: Any, m: int) -> Any:
    """``perm`` (..., m) with ``A[perm] = L U``, from LAPACK's sequential row swaps ``pivots``."""
    ns = namespace_of(pivots)
    batch = pivots.shape[:-1]
    count = int(np.prod(batch))  # host: a shape; not -1, which a reshape cannot infer when there are no pivots
    flat = pivots.reshape((count, pivots.shape[-1])).astype(np.int64) - 1
    perm = ns.broadcast_to(ns.arange(m), (flat.shape[0], m)).copy()
    rows = ns.arange(flat.shape[0])
    for j in range(flat.shape[1]):
        p = flat[:, j]
        perm_p, perm_j = perm[rows, p].copy(), perm[:, j].copy()
        perm[rows, p], perm[:, j] = perm_j, perm_p
    return perm.reshape(batch + (m,))


def lu_unpack(LU_data: Any, LU_pivots: Any, unpack_data: bool = True, unpack_pivots: bool = True) -> LUResult:
    """``(P, L, U)`` from :func:`lu_factor`'s packed output (``torch.lu_unpack``); ``L`` and ``U`` are
    recorded slices of ``LU_data``, so gradients flow back through them.

    Example:
        >>> import downslope as ds
        >>> p, l, u = ds.lu_unpack(*ds.linalg.lu_factor(ds.tensor([[1.0, 2.0], [3.0, 4.0]])))
        >>> (p @ l @ u).round(decimals=4)
        tensor([[1., 2.],
                [3., 4.]])
    """
    lu = _matrix(LU_data, "lu_unpack", square=False, complex_ok=True)
    pivots = LU_pivots.array if isinstance(LU_pivots, Tensor) else namespace_of(lu.array).asarray(LU_pivots)
    m, n = lu.shape[-2:]
    k = min(m, n)
    ns = namespace_of(lu.array)
    empty = wrap_array(ns.zeros((0,), dtype=lu.array.dtype))
    p = wrap_array(_permutation_of(pivots, m, lu.array.dtype)) if unpack_pivots else empty
    if not unpack_data:
        return LUResult(p, empty, empty)
    eye = wrap_array(ns.eye(m, k, dtype=lu.array.dtype))
    return LUResult(p, ops.tril(lu[..., :, :k], -1) + eye, ops.triu(lu[..., :k, :]))


def lu(A: Any, *, pivot: bool = True) -> LUResult:
    """``(P, L, U)`` with ``A = P @ L @ U`` (``torch.linalg.lu``): ``P`` a permutation, ``L`` unit lower
    triangular (m x k), ``U`` upper triangular (k x n), k = min(m, n). Differentiable through ``L`` and
    ``U``.

    Example:
        >>> import downslope as ds
        >>> p, l, u = ds.linalg.lu(ds.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> u
        tensor([[3.    , 4.    ],
                [0.    , 0.6667]])
    """
    return lu_unpack(*lu_factor_ex(A, pivot=pivot)[:2])  # a singular A factors, as in torch


def lu_solve(LU: Any, pivots: Any, B: Any, *, left: bool = True, adjoint: bool = False) -> Tensor:
    """The ``X`` with ``A @ X = B`` (``left=False``: ``X @ A = B``; ``adjoint=True``: with ``A.T``), from
    ``A``'s :func:`lu_factor` (``torch.linalg.lu_solve``): two triangular solves and a row permutation,
    recorded, so it differentiates in ``LU`` and ``B``.

    Example:
        >>> import downslope as ds
        >>> a = ds.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ds.linalg.lu_solve(*ds.linalg.lu_factor(a), ds.tensor([[5.0], [11.0]]))
        tensor([[1.],
                [2.]])
    """
    p, low, up = lu_unpack(LU, pivots)
    if low.shape[-1] != low.shape[-2] or up.shape[-1] != up.shape[-2]:
        raise ShapeError(f"linalg.lu_solve: expected the LU of a square matrix, got shape {tuple(LU.shape)}")
    b = _operand(B)
    if b.ndim < 2:
        raise ShapeError(f"linalg.lu_solve: expected B of shape (..., n, k), got shape {tuple(b.shape)}")
    try:
        np.broadcast_shapes(tuple(up.shape[:-2]), tuple(b.shape[:-2]))  # host: shapes are tuples
    except ValueError:
        raise ShapeError(
            f"linalg.lu_solve: the batch dims of LU of shape {tuple(up.shape)} and B of shape {tuple(b.shape)} "
            "do not broadcast"
        ) from None
    if not left:  # X op(A) = B  <=>  op(A)^H X^H = B^H (adjoint: op(A) = A^H; ^H is ^T for real values)
        return _h(lu_solve(LU, pivots, _h(b), left=True, adjoint=not adjoint))
    # triangular solves: a singular U gives LAPACK's inf and NaN, as PyTorch's, not an error; the
    # permutation moves rows (a product with P would turn an inf into NaN)
    ns = namespace_of(p.array)
    pivots_array = pivots.array if isinstance(pivots, Tensor) else ns.asarray(pivots)
    perm = _row_order(pivots_array, up.shape[-1])
    if not adjoint:  # A = P L U:  X = U^-1 L^-1 P^T B, and row i of P^T B is row perm[i] of B
        y = _solve_triangle(low, _rows(b, perm), False, True, False, "lu_solve")
        return _solve_triangle(up, y, True, True, False, "lu_solve")
    y = _solve_triangle(_h(up), b, False, True, False, "lu_solve")  # A^H = U^H L^H P^T
    return _rows(_solve_triangle(_h(low), y, True, True, False, "lu_solve"), ns.argsort(perm, axis=-1))


def _rows(b: Tensor, order: Any) -> Tensor:
    """``b`` (..., n, k) with row i taken from row ``order[..., i]`` (recorded), batch dims broadcast."""
    ns = namespace_of(order)
    batch = np.broadcast_shapes(order.shape[:-1], tuple(b.shape[:-2]))  # host: shapes are tuples
    if tuple(b.shape[:-2]) != batch:
        b = ops.broadcast_to(b, batch + tuple(b.shape[-2:]))
    index = ns.broadcast_to(ns.expand_dims(order, -1), batch + (order.shape[-1], b.shape[-1])).copy()
    return ops.take_along_dim(b, wrap_array(index), -2)


class CholeskyExResult(NamedTuple):
    L: Tensor
    info: Tensor


class InvExResult(NamedTuple):
    inverse: Tensor
    info: Tensor


class SolveExResult(NamedTuple):
    result: Tensor
    info: Tensor


def _cholesky_info(a: Any) -> Any:
    """Per matrix of a stack: 0 where the Cholesky factorization succeeds, else the order of the first
    leading minor that is not positive-definite, as LAPACK reports (found on the host: CuPy's Cholesky
    does not say where it failed). The whole stack is factored at once; only when that fails (or
    meets NaN) is the failing minor searched for, by an elimination over all matrices together."""
    host = _devices.to_host(a)  # host: see above
    flat = host.reshape((-1,) + host.shape[-2:])
    if _factors(flat):
        info = np.zeros(flat.shape[0], dtype=np.int32)
    else:
        info = _cholesky_search(flat)
    return namespace_of(a).asarray(info.reshape(host.shape[:-2]))


def _cholesky_search(flat: np.ndarray) -> np.ndarray:
    """LAPACK's ``info`` for each matrix of ``flat`` (count, n, n): the Cholesky-Crout elimination run
    on all of them at once, a column per step; a pivot that is not positive (or NaN) marks its order.
    Should rounding make a matrix found to factor fail in LAPACK, each is searched on its own."""
    count, n = flat.shape[0], flat.shape[-1]
    low = np.zeros_like(flat)
    info = np.zeros(count, dtype=np.int32)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(n):
            row = low[:, j, :j]
            pivot = flat[:, j, j] - np.einsum("bk,bk->b", row, row)
            fail = ~(pivot > 0)
            info = np.where(fail & (info == 0), j + 1, info).astype(np.int32)
            root = np.sqrt(np.where(fail, 1.0, pivot))
            below = flat[:, j + 1 :, j] - np.einsum("bik,bk->bi", low[:, j + 1 :, :j], row)
            low[:, j, j], low[:, j + 1 :, j] = root, below / root[:, None]
    ok = info == 0
    if not ok.any() or _factors(flat[ok]):
        return info
    for i in np.flatnonzero(ok):  # rounding disagreed with LAPACK: each matrix on its own
        if not _factors(flat[i]):
            info[i] = next(j for j in range(1, n + 1) if not _factors(flat[i, :j, :j]))
    return info


def _factors(m: np.ndarray) -> bool:
    """Whether every matrix of ``m`` has a Cholesky factor (NaN, which LAPACK lets through, has none)."""
    try:
        factor = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        return False
    return not bool(np.isnan(np.diagonal(factor, axis1=-2, axis2=-1)).any())


def cholesky_ex(A: Any, *, upper: bool = False, check_errors: bool = False) -> CholeskyExResult:
    """:func:`cholesky` and LAPACK's ``info`` (0, or the order of the leading minor that is not
    positive-definite; that matrix's factor is then NaN), raising only with ``check_errors=True``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.cholesky_ex(ds.tensor([[1.0, 2.0], [2.0, 1.0]])).info
        tensor(2, dtype=int32)
    """
    a = _matrix(A, "cholesky_ex")
    ns = namespace_of(a.array)
    info = _cholesky_info(a.array)
    if not bool(_devices.to_host(info).any()):  # host: whether any matrix failed decides the path
        return CholeskyExResult(cholesky(a, upper=upper), wrap_array(info))
    if check_errors:
        raise LinAlgError(
            f"linalg.cholesky_ex: a leading minor of order {int(_devices.to_host(info).max())} is not positive-definite"
        )
    bad = ns.expand_dims(ns.expand_dims(info != 0, -1), -1)
    safe = ns.where(bad, ns.eye(a.shape[-1], dtype=a.array.dtype), a.array)
    factor = cholesky(ops.where(bad, wrap_array(safe), a), upper=upper)
    return CholeskyExResult(
        ops.where(bad, wrap_array(ns.full(a.shape, np.nan, dtype=a.array.dtype)), factor), wrap_array(info)
    )


def inv_ex(A: Any, *, check_errors: bool = False) -> InvExResult:
    """:func:`inv` and LAPACK's ``info`` (0, or the 1-based index of the first zero pivot of a singular
    matrix, whose inverse then holds inf and NaN, as in PyTorch), raising only with ``check_errors=True``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.inv_ex(ds.tensor([[2.0, 0.0], [0.0, 4.0]])).info
        tensor(0, dtype=int32)
    """
    a = _matrix(A, "inv_ex", complex_ok=True)
    eye = wrap_array(
        namespace_of(a.array).broadcast_to(namespace_of(a.array).eye(a.shape[-1], dtype=a.array.dtype), a.shape).copy()
    )
    x, info = solve_ex(a, eye, check_errors=check_errors)
    return InvExResult(x, info)


def solve_ex(A: Any, B: Any, *, left: bool = True, check_errors: bool = False) -> SolveExResult:
    """:func:`solve` and LAPACK's ``info`` (0, or the 1-based index of the first zero pivot of a
    singular ``A``, whose solution then holds the inf and NaN LAPACK's substitutions reach, as in
    PyTorch, without a gradient), raising only with ``check_errors=True``.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.solve_ex(ds.tensor([[2.0, 0.0], [0.0, 4.0]]), ds.tensor([2.0, 4.0])).result
        tensor([1., 1.])
    """
    a = _matrix(A, "solve_ex", complex_ok=True)
    ns = namespace_of(a.array)
    if type(a.array) is np.ndarray:  # NumPy's solve refuses a singular matrix: factor only then
        try:
            return SolveExResult(solve(a, B, left=left), wrap_array(np.zeros(a.shape[:-2], dtype=np.int32)))
        except LinAlgError:
            pass
    info = _lu_packed(a.array, True)[3]
    largest = int(_devices.to_host(info).max())  # host: whether any matrix is singular decides the path
    if largest == 0:
        return SolveExResult(solve(a, B, left=left), wrap_array(info))
    if check_errors:
        raise LinAlgError(f"linalg.solve_ex: U[{largest - 1}, {largest - 1}] is zero: the matrix is singular")
    bad = ns.expand_dims(ns.expand_dims(info != 0, -1), -1)
    safe = ops.where(bad, wrap_array(ns.broadcast_to(ns.eye(a.shape[-1], dtype=a.array.dtype), a.shape).copy()), a)
    b = _operand(B)
    x = solve(safe, b, left=left)
    vector = left and _vector_rhs(a, b)
    bad_x = bad[..., 0] if vector else bad
    with no_grad():  # the singular matrices' results are LAPACK's getrs after a zero pivot: constants
        blown = _getrs(a, b, left)
    return SolveExResult(ops.where(bad_x, blown.detach(), x), wrap_array(info))


def _getrs(a: Tensor, b: Tensor, left: bool) -> Tensor:
    """``solve(a, b)`` the way LAPACK's getrf and getrs reach it (row-pivoted LU ``A = P L U``, then
    two substitutions; ``left=False`` solves ``A^T X^T = B^T`` with the same factors, as getrs's
    transposed mode) in plain IEEE arithmetic: at a singular matrix, the inf and NaN PyTorch returns."""
    vector = left and _vector_rhs(a, b)
    rhs = ops.unsqueeze(b, -1) if vector else (b if left else _t(b))
    lu, _, perm, _ = _lu_packed(a.array, True)
    ns = namespace_of(lu)
    batch = np.broadcast_shapes(lu.shape[:-2], tuple(rhs.shape[:-2]))  # host: shapes are tuples
    rhs = ops.broadcast_to(rhs, batch + tuple(rhs.shape[-2:]))
    factors = wrap_array(lu)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if left:  # L U X = P^T B, and row i of P^T B is row perm[i] of B
            permuted = _rows(rhs, perm)
            x = _substitute(factors, _substitute(factors, permuted, lower=True, unit=True), lower=False, unit=False)
        else:  # U^T L^T (P^T Y) = B, then Y's rows put back where P took them
            w = _substitute(_t(factors), _substitute(_t(factors), rhs, lower=True, unit=False), lower=False, unit=True)
            x = _rows(w, ns.argsort(perm, axis=-1))
    return ops.squeeze(x, -1) if vector else (x if left else _t(x))


def _substitute(t: Tensor, b: Tensor, *, lower: bool, unit: bool) -> Tensor:
    """The ``X`` with ``T X = B`` for the lower (or upper) triangle of ``T`` (..., n, n), by forward (or
    back) substitution, recorded, in plain IEEE arithmetic: a zero on the diagonal gives the inf and
    NaN of LAPACK's trsm (PyTorch's results) where a solver would refuse the matrix."""
    n = t.shape[-1]
    if n == 0:  # nothing to substitute: B (..., 0, k) itself, over the batch both broadcast to
        batch = np.broadcast_shapes(tuple(t.shape[:-2]), tuple(b.shape[:-2]))  # host: shapes are tuples
        return ops.broadcast_to(b, batch + tuple(b.shape[-2:]))
    rows: dict[int, Tensor] = {}
    for k in range(n) if lower else range(n - 1, -1, -1):
        acc = b[..., k, :]
        lo, hi = (0, k) if lower else (k + 1, n)
        if hi > lo:
            prior = ops.stack([rows[i] for i in range(lo, hi)], -2)
            acc = acc - (t[..., k : k + 1, lo:hi] @ prior)[..., 0, :]
        rows[k] = acc if unit else acc / t[..., k : k + 1, k]
    return ops.stack([rows[i] for i in range(n)], -2)


class EigResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


def eig(A: Any) -> EigResult:
    """Eigenvalues and eigenvectors (columns, each of unit norm) of a general square matrix, complex
    (complex64 for float32 or complex64 input, complex128 for float64 or complex128), as torch.linalg.eig.
    Gradients follow torch's linalg_eig_backward (a real input gets the real part); a loss that depends
    on the eigenvectors' phases (each is defined up to a factor e^{i phi}) has no meaningful gradient, as
    in torch. For a symmetric matrix (a Hessian, a covariance) :func:`eigh` gives real results.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eig(ds.tensor([[0.0, 1.0], [-1.0, 0.0]])).eigenvalues
        tensor([0.+1.j, 0.-1.j])
    """
    a = _matrix(A, "eig", complex_ok=True)
    if a.array.dtype == np.float16:
        raise DTypeError("linalg.eig: expected a float32, float64, complex64 or complex128 matrix, got float16")
    target = np.dtype(np.complex64) if a.array.dtype in (np.float32, np.complex64) else np.dtype(np.complex128)
    w, v = _call("eig", namespace_of(a.array).linalg.eig, a.array)
    w, v = w.astype(target, copy=False), v.astype(target, copy=False)  # NumPy gives real arrays for real spectra
    return EigResult(record_op(w, (a,), _eigvals_vjp, v), record_op(v, (a,), _eigvectors_vjp, w))


def eigvals(A: Any) -> Tensor:
    """The eigenvalues of a general square matrix, complex (see :func:`eig`), with torch's gradient.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.eigvals(ds.tensor([[2.0, 0.0], [0.0, 3.0]]))
        tensor([2.+0.j, 3.+0.j])
    """
    return eig(A).eigenvalues


def _eig_grad(inner: Any, v: Any, a: Any) -> Any:
    """``V^-H inner V^H`` (torch's linalg_eig_backward), the real part for a real input."""
    vh = v.conj().swapaxes(-1, -2)
    ga = namespace_of(v).linalg.solve(vh, inner @ vh)
    return ga if a.dtype.kind == "c" else np.real(ga).astype(a.dtype, copy=False)  # np.real: device arrays dispatch it


def _eigvals_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        raise DTypeError("linalg.eig: the double backward (create_graph=True) of eig/eigvals is not supported")
    inner = namespace_of(g).zeros(g.shape + g.shape[-1:], saved.dtype)
    idx = np.arange(g.shape[-1])  # host: the diagonal's positions
    inner[..., idx, idx] = g  # diag(gL)
    return (_eig_grad(inner, saved, args[0]),)


def _eigvectors_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        raise DTypeError("linalg.eig: the double backward (create_graph=True) of eig/eigvals is not supported")
    v, w = y, saved
    vh = v.conj().swapaxes(-1, -2)
    vhgv = vh @ g
    diag_re = np.real(np.diagonal(vhgv, axis1=-2, axis2=-1))
    inner = vhgv - vh @ (v * diag_re[..., None, :])
    wc = w.conj()
    gap = wc[..., None, :] - wc[..., :, None]  # conj(L_j) - conj(L_i)
    idx = np.arange(w.shape[-1])  # host: the diagonal's positions
    gap[..., idx, idx] = 1
    return (_eig_grad(inner / gap, v, args[0]),)


for _rule in (_eigvals_vjp, _eigvectors_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]  # V and L are saved; A's dtype only
    _complex.register(_rule)  # complex outputs: the rules follow torch's convention as written

# rules written with conjugate transposes (``_h``): they hold for complex values as they are
for _rule in (_inv_vjp, _det_vjp, _solve_vjp, _solve_tri_vjp, _cholesky_vjp, _eigenvectors_vjp, _svd_vjp, _qr_vjp):
    _complex.register(_rule)


def matrix_rank(
    A: Any, *, atol: float | None = None, rtol: float | None = None, hermitian: bool = False, tol: float | None = None
) -> Tensor:
    """The number of singular values above ``max(atol, rtol * largest)`` (``torch.linalg.matrix_rank``;
    the default ``rtol`` is ``max(m, n) * eps`` when ``atol`` is not given), as int64.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_rank(ds.tensor([[1.0, 2.0], [2.0, 4.0]]))
        tensor(1)
    """
    a = _matrix(A, "matrix_rank", square=False, complex_ok=True)
    ns = namespace_of(a.array)
    if hermitian:
        s = ns.abs(_call("matrix_rank", ns.linalg.eigvalsh, a.array))
    else:
        s = _call("matrix_rank", _singular_values, a.array)
    if tol is not None:
        atol, rtol = tol, 0.0
    return wrap_array((s > _threshold(s, atol, rtol, a.shape)).sum(-1).astype(np.int64))


def cond(A: Any, p: Any = None) -> Tensor:
    """The condition number of a matrix in the ``p`` norm (``torch.linalg.cond``; by default the ratio of
    the largest to the smallest singular value, the number that says how elongated a quadratic loss's
    valleys are, and so how slowly plain gradient descent crosses them), with gradients.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.cond(ds.tensor([[10.0, 0.0], [0.0, 1.0]]))
        tensor(10.)
    """
    a = _matrix(A, "cond", square=p not in (None, 2, -2), complex_ok=True)
    if p in (None, 2, -2):
        s = svdvals(a)
        big, small = s[..., 0], s[..., -1]
        return big / small if p != -2 else small / big
    ns = namespace_of(a.array)
    # a singular matrix has an infinite condition number, as PyTorch gives, and only that matrix of a
    # stack: the singular ones are swapped for the identity for the inverse, then marked inf
    singular = _lu_packed(a.array, True)[3] != 0
    if not bool(_devices.to_host(singular).any()):  # host: whether the masked path is needed
        return matrix_norm(a, p) * matrix_norm(inv(a), p)
    mask = wrap_array(ns.expand_dims(ns.expand_dims(singular, -1), -1))
    eye = wrap_array(ns.broadcast_to(ns.eye(a.shape[-1], dtype=a.array.dtype), a.shape).copy())
    finite = matrix_norm(a, p) * matrix_norm(inv(ops.where(mask, eye, a)), p)
    inf = ns.full(finite.shape, np.inf, dtype=finite.array.dtype)  # the norms' dtype: real for complex A
    return ops.where(wrap_array(singular), wrap_array(inf), finite)


def vander(x: Any, *, N: int | None = None) -> Tensor:
    """The Vandermonde matrix ``[1, x, x^2, ..., x^(N-1)]`` along a new last dim (``torch.linalg.vander``:
    increasing powers), the design matrix of polynomial regression.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.vander(ds.tensor([1.0, 2.0, 3.0]))
        tensor([[1., 1., 1.],
                [1., 2., 4.],
                [1., 3., 9.]])
    """
    t = ops._lift_float(x)
    if t.ndim < 1:
        raise ShapeError(f"linalg.vander: expected a tensor of at least one dim, got shape {tuple(t.shape)}")
    count = t.shape[-1] if N is None else N
    if count < 0:
        raise ArgumentError(f"linalg.vander: N must be at least 0, got {N}")
    if count == 0:
        return wrap_array(namespace_of(t.array).zeros(t.shape + (0,), dtype=t.array.dtype))
    columns = [wrap_array(namespace_of(t.array).ones_like(t.array))]
    for _ in range(count - 1):
        columns.append(columns[-1] * t)
    return ops.stack(columns, -1)


def tensorinv(A: Any, ind: int = 2) -> Tensor:
    """The inverse of ``A`` read as a linear map from its first ``ind`` dims to the rest
    (``torch.linalg.tensorinv``), with gradients.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.tensorinv(ds.eye(4).reshape(4, 2, 2), ind=1).shape
        downslope.Size([2, 2, 4])
    """
    a = ops._lift_float(A)
    if ind <= 0:
        raise ArgumentError(f"linalg.tensorinv: ind must be positive, got {ind}")
    out_shape, in_shape = a.shape[:ind], a.shape[ind:]
    rows, cols = int(np.prod(out_shape)), int(np.prod(in_shape))
    if rows != cols:
        raise ShapeError(
            f"linalg.tensorinv: the product of the first {ind} dims {tuple(out_shape)} must equal that of the rest {tuple(in_shape)}"
        )
    return inv(a.reshape(rows, cols)).reshape(*in_shape, *out_shape)


def tensorsolve(A: Any, B: Any, dims: Sequence[int] | None = None) -> Tensor:
    """The ``X`` with ``tensordot(A, X, X.ndim) = B`` (``torch.linalg.tensorsolve``), with gradients.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.tensorsolve(2 * ds.eye(6).reshape(2, 3, 6), ds.ones(2, 3)).shape
        downslope.Size([6])
    """
    a, b = ops._lift_float(A), ops._lift_float(B)
    if dims is not None:
        moved = [d % a.ndim for d in dims]
        a = ops.permute(a, [d for d in range(a.ndim) if d not in moved] + moved)
    x_shape = a.shape[b.ndim :]
    if a.shape[: b.ndim] != b.shape:
        raise ShapeError(
            f"linalg.tensorsolve: A's leading dims {tuple(a.shape[: b.ndim])} must equal B's shape {tuple(b.shape)}"
        )
    rows, cols = int(np.prod(b.shape)), int(np.prod(x_shape))
    if rows != cols:
        raise ShapeError(
            f"linalg.tensorsolve: A of shape {tuple(a.shape)} is not square as a map from {tuple(x_shape)} to {tuple(b.shape)}"
        )
    return solve(a.reshape(rows, cols), b.reshape(rows)).reshape(*x_shape)


# ---------------------------------------------------------------------- norms
def _floating_input(x: Any, where: str) -> None:
    """Refuse an integer or boolean tensor, as PyTorch's norms do (even with ``dtype=`` given)."""
    if isinstance(x, Tensor) and x.array.dtype.kind not in "fc":
        raise DTypeError(
            f"linalg.{where}: expected a floating point tensor as input, got {x.array.dtype}; cast it (e.g. x.float())"
        )


def _norm_dtype(x: Any, dtype: Any, where: str) -> None:
    """Refuse a ``dtype=`` PyTorch's norms refuse: not floating, real for a complex input (or complex for a
    real one), or narrower than the input (the cast would lose precision before the norm is taken)."""
    if dtype is None:
        return
    target = backend.as_dtype(dtype)
    given = (x if isinstance(x, Tensor) else ops._lift_float(x)).array.dtype
    if target.kind not in "fc":
        raise DTypeError(f"linalg.{where}: dtype should be floating point or complex, but got {target}")
    if given.kind == "c" and target.kind != "c":
        raise DTypeError(f"linalg.{where}: dtype should be complex for complex inputs, but got {target}")
    if given.kind != "c" and target.kind == "c":
        raise DTypeError(f"linalg.{where}: dtype should be real for real inputs, but got {target}")
    if not np.can_cast(given, target, "safe"):
        raise DTypeError(
            f"linalg.{where}: the input's dtype {given} should be convertible without narrowing to dtype {target}"
        )


def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements by default): see :func:`downslope.ops.vector_norm`.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.vector_norm(ds.tensor([3.0, -4.0]))
        tensor(5.)
    """
    _floating_input(x, "vector_norm")
    _norm_dtype(x, dtype, "vector_norm")
    if isinstance(ord, str):
        raise ArgumentTypeError(f"linalg.vector_norm: ord must be a number, got {ord!r}; use linalg.matrix_norm for it")
    return ops.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(
    A: Any, ord: Any = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """A matrix norm over the two dims ``dim``: ``'fro'``, ``'nuc'`` (sum of singular values), 2 / -2
    (largest / smallest singular value), 1 / -1 (largest / smallest column sum of ``|A|``),
    inf / -inf (largest / smallest row sum). ``dtype`` casts ``A`` first (no narrowing; complex for a
    complex ``A``), as PyTorch. Over an empty dim the largest of no values is 0 and the smallest is
    refused, as PyTorch's.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_norm(ds.tensor([[3.0, 0.0], [0.0, -4.0]]), ord=2)
        tensor(4.)
    """
    _floating_input(A, "matrix_norm")
    _norm_dtype(A, dtype, "matrix_norm")
    a = _matrix(A, "matrix_norm", square=False, complex_ok=True)  # 2 / 'nuc' through svdvals
    if dtype is not None:
        a = ops.astype(a, dtype)
    if isinstance(dim, (int, np.integer)) or len(dim) != 2:
        raise ArgumentError(f"linalg.matrix_norm: dim must be a pair of dims, got {dim!r}")
    d0, d1 = (ops._dim(d, a.ndim, "linalg.matrix_norm") for d in dim)
    if d0 == d1:
        raise ArgumentError(f"linalg.matrix_norm: dim must name two different dims, got {dim}")
    if ord == "fro":
        return ops.vector_norm(a, 2, (d0, d1), keepdim)
    moved = ops.movedim(a, (d0, d1), (-2, -1))
    if ord in ("nuc", 2, -2):
        s = svdvals(moved)
        out = ops.sum(s, -1) if ord == "nuc" else (_largest(s) if ord == 2 else ops.amin(s, -1))
    elif ord in (1, -1, np.inf, -np.inf):
        sums = ops.sum(ops.abs(moved), -2 if ord in (1, -1) else -1)
        out = _largest(sums) if ord in (1, np.inf) else ops.amin(sums, -1)
    else:
        raise ArgumentError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got {ord!r}")
    if keepdim:
        for d in sorted((d0, d1)):
            out = ops.unsqueeze(out, d)
    return out


def _largest(values: Tensor) -> Tensor:
    """The largest of the nonnegative ``values`` over the last dim; 0 when that dim is empty (PyTorch's
    max there is the inf-norm, which is 0 over no values; its smallest-value norms refuse)."""
    if values.shape[-1] == 0:
        return ops.sum(values, -1)  # zeros, recorded so that backward reaches A
    return ops.amax(values, -1)


def norm(x: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int or names one dim (or the input is
    1-D, or ``ord`` and ``dim`` are both None: the 2-norm of all elements), a matrix norm when it names
    two (or the input is 2-D) or ``ord`` is ``'fro'`` or ``'nuc'``. With ``ord`` given and ``dim`` not,
    the input must be 1-D or 2-D, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.linalg.norm(ds.tensor([[1.0, 2.0], [2.0, 4.0]]), ord="fro")
        tensor(5.)
    """
    _floating_input(x, "norm")
    _norm_dtype(x, dtype, "norm")
    t = x if isinstance(x, Tensor) and x.array.dtype.kind == "c" else ops._lift_float(x)  # |z|'s norms, real
    if dtype is not None:
        t = ops.astype(t, dtype)
    dims: tuple[int, ...] | None = None
    if dim is not None:
        dims = (int(dim),) if isinstance(dim, (int, np.integer)) else tuple(int(d) for d in dim)
        if len(dims) not in (1, 2):
            raise ArgumentError(f"linalg.norm: if dim is specified, it must be of length 1 or 2, got {list(dims)}")
    if dims is None:
        if ord is None:  # the 2-norm of all the elements
            return vector_norm(t, 2, None, keepdim)
        if t.ndim not in (1, 2):
            raise ShapeError(
                f"linalg.norm: if dim is not specified but ord is, the input must be 1-D or 2-D, got {t.ndim}-D "
                f"(shape {tuple(t.shape)})"
            )
        dims = tuple(range(t.ndim))
    if isinstance(ord, str):  # 'fro' and 'nuc' are matrix norms only, as in PyTorch
        return matrix_norm(t, ord, dims, keepdim)  # type: ignore[arg-type]
    if len(dims) == 1:
        return vector_norm(t, 2 if ord is None else ord, dims, keepdim)
    return matrix_norm(t, "fro" if ord is None else ord, (dims[0], dims[1]), keepdim)


# ---------------------------------------------------------------------- products and least squares
def matrix_power(A: Any, n: int) -> Tensor:
    """``A`` multiplied by itself ``n`` times (the identity for 0, the inverse's power for n < 0).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.matrix_power(ds.tensor([[1.0, 1.0], [0.0, 1.0]]), 3)
        tensor([[1., 3.],
                [0., 1.]])
    """
    a = _matrix(A, "matrix_power", complex_ok=True)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ArgumentError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    if n == 0:  # the identity, kept in A's graph with a zero gradient, as in PyTorch
        eye = namespace_of(a.array).eye(a.shape[-1], dtype=a.array.dtype)
        return ops.where(False, a, wrap_array(eye))
    base = inv(a) if n < 0 else a
    out = ops.clone(base) if n == 1 else base  # a new tensor for n == 1 too, as torch: never A itself
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
    items = [t if isinstance(t, Tensor) and t.array.dtype.kind == "c" else ops._lift_float(t) for t in tensors]
    if len(items) < 2:
        raise ArgumentError(f"linalg.multi_dot: expected at least 2 tensors, got {len(items)}")
    for i, t in enumerate(items):
        edge = i in (0, len(items) - 1)
        if t.ndim != 2 and not (edge and t.ndim == 1):
            which = "the first tensor" if i == 0 else "the last tensor" if i == len(items) - 1 else f"tensor {i}"
            raise ShapeError(
                f"linalg.multi_dot: {which} must be {'1-D or 2-D' if edge else '2-D'}, got {t.ndim}-D (shape {tuple(t.shape)})"
            )
        if t.array.dtype != items[0].array.dtype:
            raise DTypeError(
                f"linalg.multi_dot: all tensors must have the same dtype, but tensor 0 is {items[0].array.dtype} "
                f"and tensor {i} is {t.array.dtype}"
            )
    out = items[0]
    for t in items[1:]:
        out = out @ t
    return out


def pinv(
    A: Any,
    rcond: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
) -> Tensor:
    """The Moore-Penrose pseudo-inverse, as ``torch.linalg.pinv``: singular values at or below
    ``max(atol, rtol * largest)`` are taken as 0 (``rtol`` defaults to ``max(m, n) * eps`` when ``atol``
    is not given positive, else 0; ``rcond`` is the older name of ``rtol``; tolerances may be tensors,
    one per matrix of a stack). ``hermitian=True`` reads the lower triangle of a symmetric matrix.
    With Golub and Pereyra's gradient (exact where the rank does not change).

    Example:
        >>> import downslope as ds
        >>> ds.linalg.pinv(ds.tensor([[1.0, 0.0], [0.0, 0.0]]))
        tensor([[1., 0.],
                [0., 0.]])
    """
    a = _matrix(A, "pinv", square=hermitian, complex_ok=True)
    if rcond is not None:
        if rtol is not None:
            raise ArgumentError("linalg.pinv: give rtol or its older name rcond, not both")
        rtol = rcond
    return record_op(_call("pinv", _pinv_array, a.array, atol, rtol, hermitian), (a,), _pinv_vjp)


def _threshold(s: Any, atol: Any, rtol: Any, shape: tuple[int, ...]) -> Any:
    """PyTorch's cut-off for the singular values ``s`` (..., k) of matrices of ``shape``:
    ``max(atol, rtol * largest)``, shaped (..., 1); ``rtol`` defaults to ``max(m, n) * eps`` where
    ``atol`` is not given positive, else to 0. Tolerances may be numbers, arrays or tensors."""
    ns = namespace_of(s)
    atol, rtol = (v.array if isinstance(v, Tensor) else v for v in (atol, rtol))
    default = max(shape[-2:]) * float(np.finfo(s.dtype).eps)  # host: a Python number
    atol_a = ns.asarray(0.0 if atol is None else atol, dtype=s.dtype)
    if rtol is None:
        rtol = default if atol is None else ns.where(atol_a > 0, 0.0, default)
    rtol_a = ns.asarray(rtol, dtype=s.dtype)
    largest = s.max(-1, keepdims=True) if s.shape[-1] else ns.zeros(s.shape[:-1] + (1,), dtype=s.dtype)
    return ns.maximum(ns.expand_dims(atol_a, -1), ns.expand_dims(rtol_a, -1) * largest)


def _pinv_array(a: Any, atol: Any, rtol: Any, hermitian: bool) -> Any:
    ns = namespace_of(a)
    if hermitian:  # A = V diag(w) V^T: the pseudo-inverse inverts the eigenvalues above the cut-off
        w, v = ns.linalg.eigh(a)
        keep = ns.abs(w) > _threshold(ns.abs(w), atol, rtol, a.shape)
        with np.errstate(divide="ignore"):
            inv_w = ns.where(keep, 1.0 / ns.where(keep, w, 1.0), 0.0).astype(a.dtype)
        return (v * inv_w[..., None, :]) @ _h(v)
    u, s, vh = ns.linalg.svd(a, full_matrices=False)
    keep = s > _threshold(s, atol, rtol, a.shape)
    inv_s = ns.where(keep, 1.0 / ns.where(keep, s, 1.0), 0.0).astype(a.dtype)
    return (_h(vh) * inv_s[..., None, :]) @ _h(u)


def _pinv_vjp(g, y, args, saved, needs, xp):
    a, x = args[0], y
    ns = namespace_of(xp.data(a))
    m, n = a.shape[-2], a.shape[-1]
    eye_m, eye_n = ns.eye(m, dtype=xp.data(a).dtype), ns.eye(n, dtype=xp.data(a).dtype)
    g_t, x_t = _h(g), _h(x)  # complex: conjugate transposes
    return (-(x_t @ g @ x_t) + (eye_m - a @ x) @ g_t @ x @ x_t + x_t @ x @ g_t @ (eye_n - x @ a),)


_complex.register(_pinv_vjp)  # written with conjugate transposes


class LstsqResult(NamedTuple):
    solution: Tensor
    residuals: Tensor
    rank: Tensor
    singular_values: Tensor


def _singular_values(a: Any) -> Any:
    return namespace_of(a).linalg.svd(a, compute_uv=False)


_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A: Any, B: Any, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """The least-squares solution of ``A @ X = B`` (``pinv(A) @ B``, with its gradient): the weights
    that linear regression by gradient descent converges to.

    The other fields follow ``torch.linalg.lstsq`` on the CPU for each ``driver`` (default
    ``'gelsy'``): ``residuals`` (``||A X - B||^2`` per column of ``B``, differentiable) are filled
    only by ``'gelsd'``, ``'gelss'`` and ``'gels'``, when ``A`` has more rows than columns and (but for
    ``'gels'``, which assumes it) every matrix has full rank, else empty; ``rank`` (int64) is empty for ``'gels'``; ``singular_values`` are given by
    ``'gelsd'`` and ``'gelss'`` only. Singular values below ``rcond`` times the largest count as 0
    (default ``max(m, n) * eps``).

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])   # a column of ones: the intercept
        >>> ds.linalg.lstsq(x, ds.tensor([[1.0], [3.0], [5.0]])).solution
        tensor([[1.],
                [2.]])
    """
    if driver is None:
        driver = "gelsy"
    if driver not in _LSTSQ_DRIVERS:
        raise ArgumentError(f"linalg.lstsq: driver must be one of {_LSTSQ_DRIVERS}, got {driver!r}")
    a = _matrix(A, "lstsq", square=False, complex_ok=True)
    b = B if isinstance(B, Tensor) and _is_c(B) else ops._lift_float(B)
    if b.ndim > a.ndim or a.ndim - b.ndim > 1:
        raise ShapeError(
            f"linalg.lstsq: B must have as many dims as A (a matrix right-hand side) or one fewer (vectors), "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    # torch's rule: B is a (batch of) vector(s) when 1-D or shaped as A without its last dim; a B one dim
    # short of another shape is a matrix whose batch torch still broadcasts as B.shape[:-1] with A's.
    short = a.ndim - b.ndim == 1
    vector = b.ndim == 1 or (short and b.shape == a.shape[:-1])
    m, n = a.shape[-2:]
    rows = b.shape[-1] if vector else b.shape[-2]
    if rows != m:
        which = "last dim" if vector else "dim -2"
        reading = "vector" if vector else "matrix"
        raise ShapeError(
            f"linalg.lstsq: A has {m} rows but B's {which} is {rows} (shapes {tuple(a.shape)} and {tuple(b.shape)}; B is read as "
            f"a {reading} right-hand side, as torch reads it: a vector when it is 1-D or A's shape without its "
            "last dim, else a matrix)"
        )
    b_batch = b.shape[:-1] if short else b.shape[:-2]
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b_batch)
    except ValueError:
        raise ShapeError(
            f"linalg.lstsq: the batch dims of A {tuple(a.shape)} and B {tuple(b.shape)} do not broadcast ({tuple(a.shape[:-2])} and "
            f"{tuple(b_batch)}"
            + (
                "; a B with one dim fewer than A has its batch read as B.shape[:-1], as torch reads it)"
                if short
                else ")"
            )
        ) from None
    if vector:
        b = ops.unsqueeze(b, -1)
    elif short:  # a matrix B one dim short: torch expands it to the broadcast batch
        b = ops.broadcast_to(b, batch + tuple(b.shape[-2:]))
    ns = namespace_of(a.array)
    dtype = np.real(ns.zeros((0,), dtype=a.array.dtype)).dtype  # residuals and singular values: real, as torch's
    if rcond is None:
        rcond = max(m, n) * float(np.finfo(dtype).eps)  # host: a Python number
    fast = _lstsq_host(a, b, batch, rcond, driver)
    if fast is not None:
        return LstsqResult(ops.squeeze(fast.solution, -1) if vector else fast.solution, *fast[1:])
    solution = pinv(a, rtol=rcond) @ b
    empty = wrap_array(ns.zeros((0,), dtype=dtype))
    if driver == "gels":  # QR, which assumes full rank: no rank, no singular values
        rank = wrap_array(ns.zeros((0,), dtype=np.int64))
        full_rank = True
        sv = empty
    else:
        # rank and singular values are A's own (its batch, not the one broadcast with B's), as torch's
        s = _call("lstsq", _singular_values, a.array)
        largest = s[..., :1] if s.shape[-1] else ns.zeros(a.shape[:-2] + (1,), dtype=dtype)
        count = (s > rcond * largest).sum(-1).astype(np.int64)
        rank = wrap_array(count)
        full_rank = bool(_devices.to_host(count == min(m, n)).all())  # host: decides whether residuals exist
        sv = wrap_array(s) if driver in ("gelsd", "gelss") else empty
    if driver != "gelsy" and m > n and full_rank:
        diff = a @ solution - b
        residuals = ops.sum(_complex.real(diff * _c(diff)) if _is_c(diff) else diff * diff, -2)
    else:
        residuals = empty
    return LstsqResult(ops.squeeze(solution, -1) if vector else solution, residuals, rank, sv)


_LSTSQ_LOOP = 16  # the most matrices the host path solves one call each; a larger batch takes pinv's batched path


def _lstsq_host(a: Tensor, b: Tensor, batch: tuple[int, ...], rcond: float, driver: str) -> LstsqResult | None:
    """:func:`lstsq` for host float matrices that need no gradient: one LAPACK gelsd call per matrix
    (np.linalg.lstsq), which gives the solution, the rank and the singular values together, where
    pinv(A) @ B takes an SVD, a product and a second SVD for the rank (the same min-norm solution, so
    the same values to rounding). ``b`` is a matrix right-hand side. None where it does not apply."""
    x, y = a.array, b.array
    if is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return None  # the gradient is pinv's, recorded
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None
    if x.dtype.type not in _LAPACK_DTYPES or y.dtype.type not in _LAPACK_DTYPES or x.size == 0 or y.size == 0:
        return None
    count = math.prod(batch)
    if count > _LSTSQ_LOOP or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None  # many small matrices, or NaN/inf (whose results are pinv's): the batched path
    m, n = x.shape[-2:]
    out_dtype = np.result_type(x.dtype, y.dtype)
    real = np.finfo(x.dtype).dtype  # residuals and singular values: real, as torch's
    a_batch = tuple(x.shape[:-2])
    if batch:
        xs = np.broadcast_to(x, batch + (m, n)).reshape((count, m, n))
        ys = np.broadcast_to(y, batch + y.shape[-2:]).reshape((count, m, y.shape[-1]))
        # rank and singular values are A's own (over A's batch, not the one broadcast with B's), as torch's
        a_first = np.broadcast_to(np.arange(math.prod(a_batch), dtype=np.int64).reshape(a_batch), batch).reshape(-1)
    else:  # one matrix (the common case): no broadcasting to pay for
        xs, ys, a_first = x[None], y[None], np.zeros(1, dtype=np.int64)
    solutions = np.empty((count, n, y.shape[-1]), dtype=out_dtype)
    ranks = np.empty((math.prod(a_batch),), dtype=np.int64)
    svs = np.empty((math.prod(a_batch), min(m, n)), dtype=real)
    sl = _host_scipy_linalg()
    # torch's own LAPACK driver (gels: gelsy, the same solution for the full rank gels assumes), so the
    # rank is torch's too: gelsy's from its pivoted QR, gelsd's and gelss's from the SVD
    lapack = "gelsy" if driver == "gels" else driver
    for i in range(count):
        if sl is not None:
            sol, _, rank, sv = _call(
                "lstsq", lambda u, v: sl.lstsq(u, v, cond=rcond, lapack_driver=lapack, check_finite=False), xs[i], ys[i]
            )
        else:  # without SciPy: NumPy's gelsd, the same min-norm solution (to rounding)
            sol, _, rank, sv = _call("lstsq", lambda u, v: np.linalg.lstsq(u, v, rcond=rcond), xs[i], ys[i])
        solutions[i] = sol
        ranks[a_first[i]] = rank
        if sv is not None:
            svs[a_first[i]] = sv
    solution = wrap_array(solutions.reshape(batch + (n, y.shape[-1])))
    empty = wrap_array(np.zeros((0,), dtype=real))
    full_rank = bool((ranks == min(m, n)).all())
    rank_t = wrap_array(np.zeros((0,), dtype=np.int64)) if driver == "gels" else wrap_array(ranks.reshape(a_batch))
    sv_t = wrap_array(svs.reshape(a_batch + (min(m, n),))) if driver in ("gelsd", "gelss") else empty
    if driver != "gelsy" and m > n and (full_rank or driver == "gels"):
        diff = x @ solution.array - y
        residuals = wrap_array((np.real(diff * diff.conj()) if diff.dtype.kind == "c" else diff * diff).sum(-2))
    else:
        residuals = empty
    return LstsqResult(solution, residuals, rank_t, sv_t)


# ---------------------------------------------------------------------- torch.linalg's names for ops found elsewhere
def cross(a: Any, b: Any, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (``torch.linalg.cross``; its ``dim`` defaults to -1)."""
    return ops.cross(a, b, dim=dim)


def diagonal(A: Any, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices over the last two dims (``torch.linalg.diagonal``)."""
    return ops.diagonal(A, offset, dim1, dim2)


def vecdot(x: Any, y: Any, *, dim: int = -1) -> Tensor:
    """The dot product of ``x`` and ``y`` along ``dim`` (broadcast); both need one dtype, as in torch.
    Complex ``x`` is conjugated (``sum(conj(x) * y)``), as torch's."""
    x, y = _operand(x), _operand(y)
    if x.array.dtype != y.array.dtype:  # a product, which torch refuses to promote
        raise DTypeError(
            f"linalg.vecdot: expected x and y to have the same dtype, got {x.array.dtype} and {y.array.dtype}; "
            "cast one side to the other's dtype (e.g. y.to(x.dtype))"
        )
    return ops.sum(_c(x) * y, dim)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` (``torch.linalg.matmul``)."""
    return ops.matmul(a, b)


# ---------------------------------------------------------------------- torch's older top-level names for these
class _SVDOld(NamedTuple):
    U: Tensor
    S: Tensor
    V: Tensor


def svd_legacy(input: Any, some: bool = True, compute_uv: bool = True) -> _SVDOld:
    """``torch.svd``: ``(U, S, V)`` with ``V`` (not ``Vh``), reduced unless ``some=False``; with
    ``compute_uv=False``, ``U`` and ``V`` are zeros, as in PyTorch."""
    if not compute_uv:  # PyTorch's shapes: zero m x m and n x n matrices
        s = svdvals(input)
        ns, a = namespace_of(s.array), ops._lift_float(input)
        m, n, batch = a.shape[-2], a.shape[-1], a.shape[:-2]
        zeros = (wrap_array(ns.zeros(batch + (k, k), dtype=s.array.dtype)) for k in (m, n))
        return _SVDOld(next(zeros), s, next(zeros))
    u, s, vh = svd(input, full_matrices=not some)
    return _SVDOld(u, s, _t(vh))


def qr_legacy(input: Any, some: bool = True) -> QRResult:
    """``torch.qr``: :func:`qr` with ``some=False`` meaning ``mode='complete'``."""
    return qr(input, mode="reduced" if some else "complete")


def lu_solve_legacy(b: Any, LU_data: Any, LU_pivots: Any) -> Tensor:
    """``torch.lu_solve(b, LU_data, LU_pivots)``: :func:`lu_solve` with PyTorch's older argument order."""
    return lu_solve(LU_data, LU_pivots, b)


class _TriangularSolveResult(NamedTuple):
    solution: Tensor
    cloned_coefficient: Tensor


def triangular_solve(
    b: Any, A: Any, upper: bool = True, transpose: bool = False, unitriangular: bool = False
) -> _TriangularSolveResult:
    """``torch.triangular_solve``: ``(X, A)`` with ``op(A) @ X = b``, ``op`` the transpose when asked."""
    a = _matrix(A, "triangular_solve", complex_ok=True)
    tri = _triangle(a, upper, unitriangular)
    b = _operand(b)
    if b.ndim < 2:
        raise ShapeError(f"triangular_solve: expected b of shape (..., n, k), got shape {tuple(b.shape)}")
    if transpose:
        x = _solve_triangle(_t(tri), b, not upper, True, unitriangular, "triangular_solve")
    else:
        x = _solve_triangle(tri, b, upper, True, unitriangular, "triangular_solve")
    shape = tuple(x.shape[:-2]) + tuple(a.shape[-2:])  # broadcast over the batch, as PyTorch's
    # a recorded copy: its gradient reaches A whole (both triangles), as PyTorch's
    return _TriangularSolveResult(x, ops.clone(ops.broadcast_to(a, shape)))


def cholesky_solve(B: Any, L: Any, upper: bool = False) -> Tensor:
    """``torch.cholesky_solve``: the ``X`` with ``A @ X = B`` from ``A``'s Cholesky factor ``L``
    (``upper=True``: the upper factor; only that triangle is read), as two triangular solves, with
    gradients in both. ``L``'s gradient is PyTorch's, ``-(C + C^T) L`` with ``C = A^-1 g X^T``: it
    fills both triangles, as if ``A`` were ``L @ L.T`` of the whole matrix given.

    Example:
        >>> import downslope as ds
        >>> ds.cholesky_solve(ds.tensor([[4.0], [2.0]]), ds.tensor([[2.0, 0.0], [0.0, 1.0]]))
        tensor([[1.],
                [2.]])
    """
    factor = _matrix(L, "cholesky_solve", complex_ok=True)
    b = _operand(B)
    with no_grad():
        x = _cholesky_solve_values(b, factor, upper)
    return record_op(x.array, (b, factor), _cholesky_solve_vjp, upper)


def _cholesky_solve_values(b: Tensor, factor: Tensor, upper: bool) -> Tensor:
    # A = L L^H (L^T for real values)
    low = _h(ops.triu(factor)) if upper else ops.tril(factor)
    y = _solve_triangle(low, b, False, True, False, "cholesky_solve")  # a zero pivot: inf, NaN, as PyTorch
    return _solve_triangle(_h(low), y, True, True, False, "cholesky_solve")


def _cholesky_solve_vjp(g, y, args, saved, needs, xp):
    # PyTorch's cholesky_solve_backward: gB = A^-1 g, and with C = gB X^H, gL = -(C + C^H) L (lower)
    # or -U (C + C^H) (upper); ^H is ^T for real values
    upper = saved
    b, factor = args
    g_b: Any
    if xp.differentiable:
        g_b = cholesky_solve(g, factor, upper)
    else:
        with no_grad():
            g_b = _cholesky_solve_values(wrap_array(g), wrap_array(factor), upper).array
    g_factor = None
    if needs[1]:
        common = g_b @ _h(y)
        common = common + _h(common)
        g_factor = -(factor @ common) if upper else -(common @ factor)
        g_factor = xp.sum_to(_real_like(g_factor, factor), tuple(factor.shape))
    return (xp.sum_to(_real_like(g_b, b), tuple(b.shape)) if needs[0] else None, g_factor)


_complex.register(_cholesky_solve_vjp)  # written with conjugate transposes (torch's formula)


def cholesky_inverse(L: Any, upper: bool = False) -> Tensor:
    """``torch.cholesky_inverse``: ``A``'s inverse from its Cholesky factor (``(L L^T)^-1``), with
    PyTorch's gradient (see :func:`cholesky_solve`).

    Example:
        >>> import downslope as ds
        >>> ds.cholesky_inverse(ds.tensor([[2.0, 0.0], [0.0, 1.0]]))
        tensor([[0.25, 0.  ],
                [0.  , 1.  ]])
    """
    factor = _matrix(L, "cholesky_inverse", complex_ok=True)
    diag = namespace_of(factor.array).diagonal(factor.array, axis1=-2, axis2=-1)
    if bool(_devices.to_host((diag == 0).any())):  # host: PyTorch refuses a singular factor here
        raise LinAlgError("cholesky_inverse: a diagonal element of the factor is zero: the matrix is singular")
    eye = wrap_array(
        namespace_of(factor.array)
        .broadcast_to(namespace_of(factor.array).eye(factor.shape[-1], dtype=factor.array.dtype), factor.shape)
        .copy()
    )
    return cholesky_solve(eye, factor, upper)


def cholesky_legacy(input: Any, upper: bool = False) -> Tensor:
    """``torch.cholesky`` (deprecated there in favour of ``torch.linalg.cholesky``)."""
    return cholesky(input, upper=upper)


class _LUOld(NamedTuple):
    LU: Tensor
    pivots: Tensor


def lu_legacy(A: Any, pivot: bool = True, get_infos: bool = False) -> Any:
    """``torch.lu`` / ``Tensor.lu``: ``(LU, pivots)``, and LAPACK's ``info`` with ``get_infos=True``."""
    result = lu_factor_ex(A, pivot=pivot)
    return (result.LU, result.pivots, result.info) if get_infos else _LUOld(result.LU, result.pivots)


from .householder import householder_product  # noqa: E402  (it builds on this module's ops)
