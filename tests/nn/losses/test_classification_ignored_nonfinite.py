"""cross_entropy / nll_loss with ``ignore_index`` where an ignored row holds NaN or +-inf (padding after
masked attention): torch leaves ignored rows out, so the loss, its 'none' entries (0 there) and the
gradient of the kept rows stay finite. Checked against PyTorch, with weights and label smoothing, on
both the compiled-softmax and the NumPy paths."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

_NAN, _INF = float("nan"), float("inf")


def _logits(n_rows: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n_rows, 5))
    x[1] = _NAN
    x[2] = -_INF
    x[3, 2] = _INF
    return x


def _target(n_rows: int) -> np.ndarray:
    t = np.random.default_rng(4).integers(0, 5, n_rows)
    t[1:4] = -100
    return t


def _assert_kept_rows_grad(g_ds: np.ndarray, g_torch: np.ndarray, t: np.ndarray, rtol: float, atol: float) -> None:
    """The kept rows' gradient matches torch's; an ignored row's is 0 in downslope (torch's is NaN for a
    non-finite ignored row under cross_entropy, from log_softmax's backward: downslope keeps it out of the
    weights' gradients on purpose, see _cross_entropy_vjp)."""
    kept = t != -100
    np.testing.assert_allclose(g_ds[kept], g_torch[kept], rtol=rtol, atol=atol)
    np.testing.assert_array_equal(g_ds[~kept], 0.0)


@pytest.mark.parametrize("n_rows", [6, 4000])  # 4000 x 5: past the compiled softmax kernels' size threshold
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_ignored_nonfinite_rows_match_torch(
    n_rows: int, reduction: str, weighted: bool, smoothing: float, dtype: str
) -> None:
    x, t = _logits(n_rows).astype(dtype), _target(n_rows)
    w = np.array([1.0, 2.0, 0.5, 1.5, 3.0], dtype=dtype)
    kw_ds = {
        "weight": ds.tensor(w, dtype=getattr(ds, dtype)) if weighted else None,
        "reduction": reduction,
        "label_smoothing": smoothing,
    }
    kw_t = {"weight": torch.tensor(w) if weighted else None, "reduction": reduction, "label_smoothing": smoothing}
    xd, xt = ds.tensor(x, dtype=getattr(ds, dtype), requires_grad=True), torch.tensor(x, requires_grad=True)
    assert xd.dtype == getattr(ds, dtype)
    out_d, out_t = F.cross_entropy(xd, ds.tensor(t), **kw_ds), TF.cross_entropy(xt, torch.tensor(t), **kw_t)
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    out_d.sum().backward()
    out_t.sum().backward()
    _assert_kept_rows_grad(xd.grad.numpy(), xt.grad.numpy(), t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_ignored_nonfinite_rows_match_torch(reduction: str, weighted: bool) -> None:
    x, t = _logits(6), _target(6)
    w = np.array([1.0, 2.0, 0.5, 1.5, 3.0])
    xd, xt = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_d = F.nll_loss(
        xd, ds.tensor(t), weight=ds.tensor(w, dtype=ds.float64) if weighted else None, reduction=reduction
    )
    out_t = TF.nll_loss(xt, torch.tensor(t), weight=torch.tensor(w) if weighted else None, reduction=reduction)
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-12)
    out_d.sum().backward()
    out_t.sum().backward()
    _assert_kept_rows_grad(xd.grad.numpy(), xt.grad.numpy(), t, rtol=1e-12, atol=0.0)


def test_nll_loss_of_log_softmax_ignored_nan_row_matches_torch() -> None:
    """The fuzzer's case: the forward through log_softmax is finite (the gradient of the NaN row is NaN
    in both, from log_softmax's own backward)."""
    x, t = _logits(6), _target(6)
    out_d = F.nll_loss(ds.tensor(x, dtype=ds.float64).log_softmax(1), ds.tensor(t))
    out_t = TF.nll_loss(torch.tensor(x).log_softmax(1), torch.tensor(t))
    np.testing.assert_allclose(out_d.item(), out_t.item(), rtol=1e-12)
