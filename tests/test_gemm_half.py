"""float16 products through the float32 GEMM (PyTorch's CPU sums float16 products in float32 and
rounds once): torch's numbers to the last float16 rounding, at float32's speed."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import gemm

torch = pytest.importorskip("torch")


def _halves(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float16) for s in shapes]


def _agree_with_torch(ours: np.ndarray, theirs: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Both sum in float32 (in different orders) and round once to float16: apart by at most a
    float16 rounding plus the float32 summation error bound (k * 2**-24 * |a| @ |b|), and equal but
    for rare rounding ties."""
    assert ours.dtype == np.float16
    k = a.shape[-1]
    bound = np.spacing(np.abs(theirs)).astype(np.float64) + k * 2.0**-24 * (
        np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    )
    assert (np.abs(ours.astype(np.float64) - theirs) <= bound).all()
    assert (ours == theirs).mean() > 0.99


@pytest.mark.parametrize(("left", "right"), [((64, 512), (512, 48)), ((3, 40, 70), (3, 70, 20)), ((70,), (70, 5))])
def test_float16_matmul_matches_torch(left: tuple[int, ...], right: tuple[int, ...]) -> None:
    a, b = _halves(left, right)
    theirs = (torch.tensor(a) @ torch.tensor(b)).numpy()
    _agree_with_torch(gemm.matmul(a, b), theirs, a, b)
    _agree_with_torch((ds.tensor(a) @ ds.tensor(b)).numpy(), theirs, a, b)


def test_float16_matmul_into_out_and_accumulating() -> None:
    a, b, c = _halves((32, 64), (64, 16), (32, 16))
    out = np.empty((32, 16), np.float16)
    assert gemm.matmul(a, b, out) is out
    _agree_with_torch(out, (torch.tensor(a) @ torch.tensor(b)).numpy(), a, b)
    acc = c.copy()
    gemm.matmul(a, b, acc, accumulate=True)
    theirs = torch.addmm(torch.tensor(c), torch.tensor(a), torch.tensor(b)).numpy()
    _agree_with_torch(acc, theirs, np.hstack([a, c]), np.vstack([b, np.eye(16, dtype=np.float16)]))


def test_float16_linear_forward_and_backward_match_torch() -> None:
    x0, w0, b0, g0 = _halves((128, 96), (80, 96), (80,), (128, 80))
    x, w, b = (ds.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    y = ds.nn.functional.linear(x, w, b)
    ty = torch.nn.functional.linear(tx, tw, tb)
    ones = np.ones((128, 1), np.float16)
    _agree_with_torch(y.detach().numpy(), ty.detach().numpy(), np.hstack([x0, ones]), np.vstack([w0.T, b0[None]]))
    y.backward(ds.tensor(g0))
    ty.backward(torch.tensor(g0))
    assert x.grad is not None and w.grad is not None and tx.grad is not None and tw.grad is not None
    _agree_with_torch(x.grad.numpy(), tx.grad.numpy(), g0, w0)
    _agree_with_torch(w.grad.numpy(), tw.grad.numpy(), g0.T, x0)


def test_float16_products_run_on_the_float32_gemm(monkeypatch: pytest.MonkeyPatch) -> None:
    # NumPy's float16 matmul is a plain loop (about 100x slower than the float32 GEMM at this size): the
    # operands are widened and multiplied by the float32 GEMM instead (its speed is a benchmark's business,
    # not a unit test's on a shared machine)
    a, b = _halves((256, 512), (512, 256))
    seen: list[tuple[np.dtype, np.dtype]] = []
    original = gemm.matmul

    def spy(x: np.ndarray, y: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        seen.append((x.dtype, y.dtype))
        return original(x, y, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gemm, "matmul", spy)
    result = gemm.matmul(a, b)
    assert result.dtype == np.float16
    assert seen == [(np.dtype(np.float16), np.dtype(np.float16)), (np.dtype(np.float32), np.dtype(np.float32))]
