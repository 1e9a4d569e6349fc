"""downslope.linalg against torch.linalg where the two used to part: lstsq's fields and residual
gradients, determinants at singular matrices, norms' dims, batched shape errors, pinv's tolerances,
inf and NaN from singular solves, the vectorized cholesky_ex, and cholesky_solve's factor gradient.
Float64, values and gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host
from downslope.errors import ArgumentError, DTypeError, ShapeError

torch = pytest.importorskip("torch")

L, T = ds.linalg, torch.linalg
RNG = np.random.default_rng(0)


def _d(a):
    return ds.tensor(np.asarray(a, dtype=np.float64), dtype=ds.float64, requires_grad=True)


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _same(mine, ref, tol=1e-10):
    """Equal values, with inf and NaN in the same places."""
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    mine = to_host(mine.array) if hasattr(mine, "array") else np.asarray(mine)
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol, equal_nan=True)


def _grads(fn_t, fn_d, arrays, seed=1):
    rng = np.random.default_rng(seed)
    ts, dd = [_t(a) for a in arrays], [_d(a) for a in arrays]
    out_t, out_d = fn_t(*ts), fn_d(*dd)
    _same(out_d, out_t)
    g = rng.standard_normal(tuple(out_t.shape))
    (out_t * torch.tensor(g)).sum().backward()
    (out_d * ds.tensor(g, dtype=ds.float64)).sum().backward()
    for t, d in zip(ts, dd):
        _same(d.grad, t.grad, 1e-8)


# ---------------------------------------------------------------------- lstsq
A_TALL, B_TALL = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
A_BATCH, B_BATCH = RNG.standard_normal((2, 6, 3)), RNG.standard_normal((2, 6, 2))
RANK_DEF = RNG.standard_normal((6, 2)) @ RNG.standard_normal((2, 3))
MIXED = A_BATCH.copy()
MIXED[1] = RANK_DEF
CASES = {
    "tall": (A_TALL, B_TALL),
    "batch": (A_BATCH, B_BATCH),
    "wide": (A_TALL.T[:, :3], B_TALL[:3]),
    "rank_deficient": (RANK_DEF, B_TALL),
    "vector": (A_TALL, B_TALL[:, 0]),
    "batch_of_vectors": (A_BATCH, B_BATCH[..., 0]),
    "mixed_ranks": (MIXED, B_BATCH),
    "broadcast_b": (A_BATCH, B_BATCH[:1]),
    "square": (A_TALL[:3], B_TALL[:3]),
}


@pytest.mark.parametrize("driver", [None, "gelsy", "gelsd", "gelss", "gels"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_lstsq_fields_match_torch(driver, case):
    a, b = CASES[case]
    ref = T.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    mine = L.lstsq(ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64), driver=driver)
    garbage = driver == "gels" and case in ("rank_deficient", "mixed_ranks")  # QR assumes full rank
    for name in ("solution", "residuals", "rank", "singular_values"):
        r, m = getattr(ref, name), getattr(mine, name)
        assert tuple(m.shape) == tuple(r.shape), name
        assert str(m.array.dtype) == str(r.dtype).replace("torch.", ""), name
        if not garbage:
            _same(m, r, 1e-8)


@pytest.mark.parametrize("driver", ["gelsd", "gelss", "gels"])
@pytest.mark.parametrize("case", ["tall", "batch", "vector", "broadcast_b"])
def test_lstsq_residuals_are_differentiable(driver, case):
    def run(lib, lstsq):
        return lambda a, b: (lambda r: lib.cat([r.solution.reshape(-1), r.residuals.reshape(-1)]))(
            lstsq(a, b, driver=driver)
        )

    _grads(run(torch, T.lstsq), run(ds, L.lstsq), list(CASES[case]))


def test_lstsq_refuses_an_unknown_driver():
    with pytest.raises(ArgumentError, match="driver must be one of"):
        L.lstsq(ds.ones(3, 2), ds.ones(3, 1), driver="gelsx")


# ---------------------------------------------------------------------- determinants at singular matrices
SINGULAR = {
    "rank_1": [[1.0, 2.0], [2.0, 4.0]],
    "rank_2_of_3": [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 3.0]],
    "zero": np.zeros((3, 3)),
    "batch_one_singular": [np.eye(3) * 2, [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 3.0]]],
    "rank_1_of_3": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]],
    "zero_column": [[0.0, 1.0], [0.0, 1.0]],
}


@pytest.mark.parametrize("case", sorted(SINGULAR))
def test_det_gradient_at_a_singular_matrix_is_the_cofactor_matrix(case):
    # torch's SVD formula; its fast path (no create_graph) returns zeros there instead, an artifact
    m = np.asarray(SINGULAR[case], dtype=np.float64)
    t = _t(m)
    (ref,) = torch.autograd.grad(T.det(t).sum(), t, create_graph=True)
    d = _d(m)
    L.det(d).sum().backward()
    _same(d.grad, ref, 1e-12)


def test_det_gradient_of_a_rank_deficient_matrix_matches_the_adjugate():
    m = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]])
    m[2] = m[0] + m[1]  # exactly singular
    d = _d(m)
    L.det(d).backward()
    cof = np.array(
        [[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(m, i, 0), j, 1)) for j in range(3)] for i in range(3)]
    )
    np.testing.assert_allclose(to_host(d.grad.array), cof, atol=1e-10)


def test_det_hessian_at_a_singular_matrix():
    m = np.asarray(SINGULAR["rank_2_of_3"])
    ref = torch.autograd.functional.hessian(T.det, torch.tensor(m))
    mine = ds.autograd.functional.hessian(L.det, ds.tensor(m, dtype=ds.float64))
    _same(mine, ref, 1e-10)


def _skip_unless_lapack_rounds_alike(m):
    """Skip where this machine's LAPACK (NumPy's OpenBLAS) and torch's round the LU of the singular ``m``
    (or of its transpose) differently: which pivot comes out exactly 0 and which 1e-16 decides where inf
    and where NaN appear, and depends on the SIMD kernels (on AVX-512 one library gets 1.1e-16 where the
    other gets 0; on AVX2 both got 0)."""
    for a in (np.asarray(m, dtype=np.float64), np.asarray(m, dtype=np.float64).T.copy()):
        theirs = torch.linalg.lu_factor_ex(torch.tensor(a))[0].diagonal(dim1=-2, dim2=-1).numpy() == 0
        ours = to_host(L.lu_factor_ex(ds.tensor(a, dtype=ds.float64))[0].array).diagonal(axis1=-2, axis2=-1) == 0
        if not np.array_equal(theirs, ours):
            pytest.skip("the two LAPACKs round this singular matrix's LU differently on this machine")


@pytest.mark.parametrize("fn", ["slogdet", "logdet"])
@pytest.mark.parametrize("case", sorted(SINGULAR))
def test_slogdet_and_logdet_gradients_blow_up_as_torchs(fn, case):
    m = np.asarray(SINGULAR[case], dtype=np.float64)
    _skip_unless_lapack_rounds_alike(m)
    f_t = (lambda a: T.slogdet(a)[1]) if fn == "slogdet" else torch.logdet
    f_d = (lambda a: L.slogdet(a)[1]) if fn == "slogdet" else ds.logdet
    t, d = _t(m), _d(m)
    f_t(t).sum().backward()
    f_d(d).sum().backward()
    _same(d.grad, t.grad, 1e-12)  # inf and NaN in the same places (LAPACK's LU of A^T), with the same signs


def test_logdet_of_a_singular_matrix_keeps_its_graph():
    d = _d(SINGULAR["rank_1"])
    out = ds.logdet(d)
    assert out.item() == float("-inf") and out.requires_grad


def test_matrix_rank_of_nan_raises_linalg_error():
    m = np.eye(3)
    m[0, 0] = np.nan
    with pytest.raises(L.LinAlgError, match="matrix_rank"):
        L.matrix_rank(ds.tensor(m))


# ---------------------------------------------------------------------- norms
X34 = RNG.standard_normal((3, 4))


@pytest.mark.parametrize("ord_", [None, 2, 3, 1, float("inf"), -1])
@pytest.mark.parametrize("dim", [(0,), [1], (-1,)])
def test_norm_one_dim_tuple_is_a_vector_norm(ord_, dim):
    _grads(lambda a: T.norm(a, ord_, dim=dim), lambda a: L.norm(a, ord_, dim=dim), [X34])


@pytest.mark.parametrize("ord_", [2, "fro", "nuc", 1])
def test_norm_with_ord_and_no_dim_wants_one_or_two_dims(ord_):
    x = RNG.standard_normal((2, 3, 4))
    with pytest.raises(RuntimeError):
        T.norm(torch.tensor(x), ord_)
    with pytest.raises((ShapeError, ArgumentError)):
        L.norm(ds.tensor(x), ord_)


@pytest.mark.parametrize("ord_, dim", [(None, None), ("fro", (0, 1)), ("nuc", (1, 2)), (2, (0, 2)), (None, (0, 1))])
def test_norm_other_forms_match_torch(ord_, dim):
    x = RNG.standard_normal((2, 3, 4))
    _grads(lambda a: T.norm(a, ord_, dim=dim), lambda a: L.norm(a, ord_, dim=dim), [x])


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.linalg.norm(m.ones(2, 3), "fro", dim=(0,)),
        lambda m: m.linalg.norm(m.ones(2, 3), dim=()),
        lambda m: m.linalg.norm(m.ones(2, 3, 2), dim=(0, 1, 2)),
        lambda m: m.linalg.norm(m.ones(3), "fro"),
    ],
)
def test_norm_bad_dims_raise(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises((ArgumentError, ShapeError)):
        call(ds)


@pytest.mark.parametrize("fn", ["vector_norm", "norm", "matrix_norm"])
def test_norms_refuse_integer_input(fn):
    x = ds.ones(2, 2, dtype=ds.int64)
    with pytest.raises(DTypeError, match="floating point"):
        getattr(L, fn)(x)
    with pytest.raises(DTypeError):
        L.vector_norm(x, dtype=ds.float64)


# ---------------------------------------------------------------------- batched shapes
@pytest.mark.parametrize(
    "name, call",
    [
        ("linalg.solve", lambda m: m.linalg.solve(m.ones(2, 3, 3), m.ones(4, 3, 2))),
        ("linalg.solve", lambda m: m.linalg.solve(m.ones(2, 3, 3), m.ones(4, 2, 3), left=False)),
        ("linalg.solve", lambda m: m.linalg.solve_ex(m.ones(2, 3, 3), m.ones(4, 3, 2))),
        ("solve_triangular", lambda m: m.linalg.solve_triangular(m.ones(2, 3, 3), m.ones(4, 3, 2), upper=True)),
        ("lu_solve", lambda m: m.linalg.lu_solve(*m.linalg.lu_factor(m.ones(2, 3, 3) + 3 * m.eye(3)), m.ones(4, 3, 2))),
        ("cholesky_solve", lambda m: m.cholesky_solve(m.ones(4, 3, 2), m.ones(2, 3, 3))),
        ("triangular_solve", lambda m: m.triangular_solve(m.ones(4, 3, 2), m.ones(2, 3, 3))),
        ("lstsq", lambda m: m.linalg.lstsq(m.ones(2, 3, 3), m.ones(4, 3, 2))),
    ],
)
def test_batch_dims_that_do_not_broadcast_raise_a_shape_error(name, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError):
            call(torch)
    with pytest.raises(ShapeError, match=rf"{name}.*\(2, 3, 3\).*do not broadcast"):
        call(ds)


# ---------------------------------------------------------------------- pinv, eigh, matrix_power
DIAG = np.diag([4.0, 3.0, 1.0, 0.1])


@pytest.mark.parametrize(
    "kwargs",
    [{"atol": 2.0}, {"atol": 0.5, "rtol": 0.5}, {"rtol": 0.2}, {"atol": 0.0}, {"hermitian": True, "atol": 2.0}],
)
def test_pinv_tolerances(kwargs):
    _grads(lambda a: T.pinv(a, **kwargs), lambda a: L.pinv(a, **kwargs), [DIAG + 0.01 * RNG.standard_normal((4, 4))])
    _same(L.pinv(ds.tensor(DIAG, dtype=ds.float64), **kwargs), T.pinv(torch.tensor(DIAG), **kwargs))


def test_pinv_tensor_tolerance_per_matrix_and_rcond():
    stack = np.stack([DIAG, DIAG])
    _same(
        L.pinv(ds.tensor(stack, dtype=ds.float64), atol=ds.tensor([0.5, 3.5], dtype=ds.float64)),
        T.pinv(torch.tensor(stack), atol=torch.tensor([0.5, 3.5], dtype=torch.float64)),
    )
    _same(L.pinv(ds.tensor(DIAG, dtype=ds.float64), 0.2), T.pinv(torch.tensor(DIAG), 0.2))
    with pytest.raises(ArgumentError, match="not both"):
        L.pinv(ds.tensor(DIAG), 0.2, rtol=0.1)


@pytest.mark.parametrize("uplo", ["l", "u"])
def test_eigh_takes_lowercase_uplo(uplo):
    m = RNG.standard_normal((3, 3))
    _same(L.eigvalsh(ds.tensor(m, dtype=ds.float64), UPLO=uplo), T.eigvalsh(torch.tensor(m), UPLO=uplo))
    _same(L.eigh(ds.tensor(m, dtype=ds.float64), UPLO=uplo).eigenvalues, T.eigh(torch.tensor(m), UPLO=uplo).eigenvalues)


def test_matrix_power_zero_stays_in_the_graph():
    a = _d(RNG.standard_normal((2, 3, 3)))
    out = L.matrix_power(a, 0)
    assert out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(to_host(a.grad.array), np.zeros((2, 3, 3)))
    _same(out, np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_triangular_solve_cloned_coefficient_is_a_differentiable_copy():
    a = RNG.standard_normal((3, 3))
    b = RNG.standard_normal((2, 3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _grads(
            lambda x: torch.triangular_solve(torch.tensor(b), x).cloned_coefficient,
            lambda x: ds.triangular_solve(ds.tensor(b, dtype=ds.float64), x).cloned_coefficient,
            [a],
        )


# ---------------------------------------------------------------------- errors torch raises
@pytest.mark.parametrize(
    "tensors",
    [
        lambda m: [m.ones(2, 2, 2), m.ones(2, 2)],
        lambda m: [m.ones(2, 2), m.ones(2, 2, 2), m.ones(2, 2)],
        lambda m: [m.ones(2, 2), m.ones(2, 2, 2)],
        lambda m: [m.ones(2, 2), m.ones(2), m.ones(2, 2)],
        lambda m: [m.ones(()), m.ones(2)],
    ],
)
def test_multi_dot_refuses_what_torch_refuses(tensors):
    with pytest.raises(RuntimeError):
        T.multi_dot(tensors(torch))
    with pytest.raises(ShapeError, match="multi_dot"):
        L.multi_dot(tensors(ds))


def test_multi_dot_refuses_mixed_dtypes():
    with pytest.raises(DTypeError, match="same dtype"):
        L.multi_dot([ds.ones(2, 2), ds.ones(2, 2, dtype=ds.float64)])


@pytest.mark.parametrize("where", [(1, 1), (2, 0), (2, 2)])
def test_cholesky_of_nan_in_the_read_triangle_raises(where):
    m = np.eye(3)
    m[where] = np.nan
    with pytest.raises(RuntimeError):
        T.cholesky(torch.tensor(m))
    with pytest.raises(L.LinAlgError, match="cholesky"):
        L.cholesky(ds.tensor(m))
    assert L.cholesky_ex(ds.tensor(m)).info.item() == T.cholesky_ex(torch.tensor(m)).info.item()


def test_cholesky_ignores_nan_in_the_unread_triangle():
    m = np.eye(3)
    m[0, 2] = np.nan
    _same(L.cholesky(ds.tensor(m, dtype=ds.float64)), T.cholesky(torch.tensor(m)))


@pytest.mark.host_only  # on CUDA torch takes driver=, and so does downslope on a device
@pytest.mark.parametrize("fn", ["svd", "svdvals"])
def test_svd_driver_is_refused_on_the_cpu(fn):
    with pytest.raises(RuntimeError):
        getattr(T, fn)(torch.eye(2), driver="gesvd")
    with pytest.raises(ArgumentError, match="driver"):
        getattr(L, fn)(ds.eye(2), driver="gesvd")


# ---------------------------------------------------------------------- singular solves: inf and NaN
PAIR = [np.eye(2) * 2, [[1.0, 2.0], [2.0, 4.0]]]
SING3 = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    "call",
    [
        lambda m, c: m.linalg.solve_ex(c(PAIR), c(np.ones((2, 2, 1)))).result,
        lambda m, c: m.linalg.solve_ex(c(PAIR), c(np.ones((2, 2)))).result,
        lambda m, c: m.linalg.solve_ex(c(PAIR), c(np.arange(6.0).reshape(3, 1, 2, 1))).result,
        lambda m, c: m.linalg.solve_ex(c(np.zeros((3, 3))), c(np.ones(3))).result,
        lambda m, c: m.linalg.solve_ex(c(SING3), c([1.0, 0.0, 0.0])).result,
        lambda m, c: m.linalg.solve_ex(c(SING3), c(np.ones((2, 3))), left=False).result,
        lambda m, c: m.linalg.inv_ex(c(PAIR)).inverse,
        lambda m, c: (
            _skip_unless_lapack_rounds_alike(np.outer([1.0, 2.0, 3.0], [1.0, 1.0, 2.0])),
            m.linalg.inv_ex(c(np.outer([1.0, 2.0, 3.0], [1.0, 1.0, 2.0]))).inverse,
        )[1],
        lambda m, c: m.linalg.lu_solve(*m.linalg.lu_factor_ex(c(PAIR))[:2], c(np.ones((2, 2, 1)))),
        lambda m, c: m.linalg.lu_solve(*m.linalg.lu_factor_ex(c(PAIR))[:2], c(np.ones((2, 2, 1))), adjoint=True),
        lambda m, c: m.linalg.lu_solve(*m.linalg.lu_factor_ex(c(PAIR))[:2], c(np.ones((2, 1, 2))), left=False),
        lambda m, c: m.cholesky_solve(c(np.ones((2, 1))), c([[1.0, 0.0], [2.0, 0.0]])),
    ],
)
def test_singular_solves_give_torchs_inf_and_nan(call):
    mine = call(ds, lambda a: ds.tensor(np.asarray(a, dtype=np.float64), dtype=ds.float64))
    ref = call(torch, lambda a: torch.tensor(np.asarray(a, dtype=np.float64)))
    _same(mine, ref)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the division's backward meets the zero pivot
@pytest.mark.parametrize(
    "a, upper, left",
    [
        ([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]], True, True),
        ([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 2.0]], False, True),
        ([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]], True, False),
    ],
)
def test_solve_triangular_with_a_zero_diagonal_gives_inf_and_nan(a, upper, left):
    b = np.ones((3, 2)) if left else np.ones((2, 3))
    _grads(
        lambda x: T.solve_triangular(x, torch.tensor(b), upper=upper, left=left),
        lambda x: L.solve_triangular(x, ds.tensor(b, dtype=ds.float64), upper=upper, left=left),
        [a],
    )


# ---------------------------------------------------------------------- cholesky_ex, cholesky_solve
def test_cholesky_ex_info_over_a_large_mixed_stack():
    rng = np.random.default_rng(9)
    m = rng.standard_normal((2000, 4, 4))
    spd = m @ m.swapaxes(-1, -2) + 0.1 * np.eye(4)
    spd[::7, 3, 3] -= 100.0
    spd[::11, 1, 1] = -1.0
    spd[5, 2, 0] = np.nan
    ref = T.cholesky_ex(torch.tensor(spd))
    mine = L.cholesky_ex(ds.tensor(spd, dtype=ds.float64))
    np.testing.assert_array_equal(to_host(mine.info.array), ref.info.numpy())
    good = ref.info.numpy() == 0
    mine_l = to_host(mine.L.array)
    _same(mine_l[good], ref.L.numpy()[good])
    assert np.isnan(mine_l[~good]).all()


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse_factor_gradients_match_torch(upper):
    m = RNG.standard_normal((2, 4, 4))
    factor = np.linalg.cholesky(m @ m.swapaxes(-1, -2) + 4 * np.eye(4))
    factor = factor.swapaxes(-1, -2) if upper else factor
    b = RNG.standard_normal((4, 2))
    _grads(
        lambda x, y: torch.cholesky_solve(y, x, upper=upper),
        lambda x, y: ds.cholesky_solve(y, x, upper=upper),
        [factor, b],
    )
    _grads(lambda x: torch.cholesky_inverse(x, upper=upper), lambda x: ds.cholesky_inverse(x, upper=upper), [factor[0]])


def test_cholesky_solve_double_backward():
    m = RNG.standard_normal((3, 3))
    factor = np.linalg.cholesky(m @ m.T + 3 * np.eye(3))
    b = RNG.standard_normal((3, 1))

    def second(lib, x, y, grad):
        (g,) = grad((lib.cholesky_solve(y, x) ** 2).sum(), x, create_graph=True)
        return (g**2).sum()

    t = _t(factor)
    second(torch, t, torch.tensor(b), torch.autograd.grad).backward()
    d = _d(factor)
    second(ds, d, ds.tensor(b, dtype=ds.float64), ds.autograd.grad).backward()
    _same(d.grad, t.grad, 1e-8)
