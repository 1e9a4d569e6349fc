"""Matrix products refuse an integer operand with a floating one, as torch does (NumPy would
promote it silently)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

CASES = {
    "matmul": (lambda T, a, b: T.matmul(a, b), (2, 2), (2, 2)),
    "operator": (lambda T, a, b: a @ b, (2, 2), (2, 2)),
    "mm": (lambda T, a, b: T.mm(a, b), (2, 2), (2, 2)),
    "bmm": (lambda T, a, b: T.bmm(a, b), (1, 2, 2), (1, 2, 2)),
    "mv": (lambda T, a, b: T.mv(a, b), (2, 2), (2,)),
    "dot": (lambda T, a, b: T.dot(a, b), (2,), (2,)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("int_side", ["left", "right"])
def test_integer_times_floating_is_a_dtype_error(name: str, int_side: str) -> None:
    fn, sa, sb = CASES[name]
    for T in (torch, ds):
        a = T.ones(*sa, dtype=T.int64 if int_side == "left" else T.float32)
        b = T.ones(*sb, dtype=T.float32 if int_side == "left" else T.int64)
        with pytest.raises(RuntimeError):
            fn(T, a, b)
    with pytest.raises(ds.errors.DTypeError, match=f"{'matmul' if name == 'operator' else name}: expected both"):
        fn(ds, a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_same_kind_operands_still_multiply_like_torch(name: str) -> None:
    fn, sa, sb = CASES[name]
    rng = np.random.default_rng(0)
    for dtype in ("int64", "float32"):
        a, b = (rng.integers(-3, 4, size=s).astype(dtype) for s in (sa, sb))
        ours = fn(ds, ds.tensor(a), ds.tensor(b))
        theirs = fn(torch, torch.tensor(a), torch.tensor(b))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")


# Products of two floating (or two integer) dtypes of different widths: torch refuses them too (float64 @
# float32 would lose the float64 side's precision in a silent float32 operand).
WIDTH_CASES = {
    **CASES,
    "vdot": (lambda T, a, b: T.vdot(a, b), (2,), (2,)),
    "inner": (lambda T, a, b: T.inner(a, b), (2, 2), (2, 2)),
    "inner_vectors": (lambda T, a, b: T.inner(a, b), (2,), (2,)),
    "inner_batched": (lambda T, a, b: T.inner(a, b), (1, 2, 2), (3, 2)),
    "matmul_batched": (lambda T, a, b: T.matmul(a, b), (3, 2, 2), (2,)),
    "tensordot": (lambda T, a, b: T.tensordot(a, b, 1), (2, 2), (2, 2)),
    "einsum_product": (lambda T, a, b: T.einsum("ij,jk->ik", a, b), (2, 2), (2, 2)),
    "einsum_dot": (lambda T, a, b: T.einsum("i,i->", a, b), (2,), (2,)),
    "einsum_third": (lambda T, a, b: T.einsum("ij,jk,kl->il", a, a, b), (2, 2), (2, 2)),
    "addmm_mat2": (lambda T, a, b: T.addmm(a, a, b), (2, 2), (2, 2)),
    "addmm_input": (lambda T, a, b: T.addmm(b, a, a), (2, 2), (2, 2)),
    "addmm_input_beta0": (lambda T, a, b: T.addmm(b, a, a, beta=0), (2, 2), (2, 2)),
    "addmv_input": (lambda T, a, b: T.addmv(b[0], a, a[0]), (2, 2), (2, 2)),
    "addbmm_input": (lambda T, a, b: T.addbmm(b, a[None], a[None]), (2, 2), (2, 2)),
    "baddbmm_batch2": (lambda T, a, b: T.baddbmm(a[None], a[None], b[None]), (2, 2), (2, 2)),
}


@pytest.mark.parametrize("name", list(WIDTH_CASES))
@pytest.mark.parametrize("dtypes", [("float64", "float32"), ("float32", "float64"), ("int32", "int64")])
def test_operands_of_different_widths_are_refused_as_torch_refuses_them(name: str, dtypes: tuple[str, str]) -> None:
    fn, sa, sb = WIDTH_CASES[name]
    if name.startswith("einsum") and dtypes[0].startswith("int"):
        pytest.skip("torch's einsum products take floating operands")
    for T in (torch, ds):
        a = T.ones(*sa, dtype=getattr(T, dtypes[0]))
        b = T.ones(*sb, dtype=getattr(T, dtypes[1]))
        with pytest.raises(RuntimeError):
            fn(T, a, b)
    with pytest.raises(ds.errors.DTypeError, match=f"{dtypes[0]}.*{dtypes[1]}|{dtypes[1]}.*{dtypes[0]}") as info:
        fn(ds, a, b)
    assert "cast" in str(info.value)


PROMOTING = {  # torch promotes these: no product of the two dtypes is taken
    "outer": (lambda T, a, b: T.outer(a, b), (2,), (2,)),
    "addr": (lambda T, a, b: T.addr(a[:, None] * a, a, b), (2,), (2,)),
    "kron": (lambda T, a, b: T.kron(a, b), (2, 2), (2, 2)),
    "inner_scalar": (lambda T, a, b: T.inner(a, b.sum()), (2, 2), (2,)),
    "einsum_elementwise": (lambda T, a, b: T.einsum("i,i->i", a, b), (2,), (2,)),
    "einsum_outer": (lambda T, a, b: T.einsum("i,j->ij", a, b), (2,), (2,)),
    "einsum_broadcast_one": (lambda T, a, b: T.einsum("i,i->", a[:1], b), (2,), (2,)),
    "einsum_multiplied_before_contracted": (lambda T, a, b: T.einsum("i,i,i->", a, b, a), (2,), (2,)),
}


@pytest.mark.parametrize("name", list(PROMOTING))
def test_the_products_torch_promotes_still_promote(name: str) -> None:
    fn, sa, sb = PROMOTING[name]
    rng = np.random.default_rng(1)
    xa, xb = rng.normal(size=sa), rng.normal(size=sb)
    ours = fn(ds, ds.tensor(xa, dtype=ds.float64), ds.tensor(xb, dtype=ds.float32))
    theirs = fn(torch, torch.tensor(xa, dtype=torch.float64), torch.tensor(xb, dtype=torch.float32))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_addbmm_of_int32_stays_int32_as_torch() -> None:
    rng = np.random.default_rng(2)
    x, b1, b2 = rng.integers(-5, 5, (2, 3)), rng.integers(-5, 5, (4, 2, 2)), rng.integers(-5, 5, (4, 2, 3))
    ours = ds.addbmm(*(ds.tensor(v, dtype=ds.int32) for v in (x, b1, b2)), beta=2)
    theirs = torch.addbmm(*(torch.tensor(v, dtype=torch.int32) for v in (x, b1, b2)), beta=2)
    assert ours.dtype == ds.int32 and theirs.dtype == torch.int32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
