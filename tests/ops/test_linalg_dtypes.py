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
