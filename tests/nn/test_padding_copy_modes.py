"""reflect / replicate / circular padding (the slicing path for non-negative pads) against torch: values,
gradients (a border element's gradient added onto the element it copies, corners included), and the
gradient of the gradient (finite differences in float64); and that non-negative pads build no gather index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.ops import rearrange

torch = pytest.importorskip("torch")
TF = torch.nn.functional

CASES = [
    ("reflect", (2, 3, 7), (2, 3)),
    ("reflect", (2, 3, 5, 6), (1, 2, 3, 4)),
    ("reflect", (2, 3, 5, 6), (0, 5, 4, 0)),
    ("reflect", (1, 2, 4, 5, 6), (1, 2, 3, 0, 1, 2)),
    ("replicate", (2, 3, 7), (3, 0)),
    ("replicate", (2, 3, 1, 6), (2, 2, 3, 1)),
    ("replicate", (2, 3, 5, 6), (4, 1, 0, 7)),
    ("replicate", (1, 2, 4, 5, 6), (1, 2, 3, 0, 5, 2)),
    ("circular", (2, 3, 7), (7, 2)),
    ("circular", (2, 3, 5, 6), (1, 6, 5, 2)),
    ("circular", (1, 2, 4, 5, 6), (1, 2, 3, 0, 4, 4)),
    ("circular", (3, 5, 6), (1, 2, 3, 4)),  # unbatched
]


@pytest.mark.parametrize("mode, shape, pads", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_modes_match_torch_values_and_gradients(
    mode: str, shape: tuple[int, ...], pads: tuple[int, ...], dtype: Any
) -> None:
    rng = np.random.default_rng(len(shape) + sum(pads))
    x = rng.standard_normal(shape).astype(dtype)
    xd, xt = ds.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(x.copy()).requires_grad_()
    yd, yt = F.pad(xd, pads, mode=mode), TF.pad(xt, pads, mode=mode)
    assert yd.shape == tuple(yt.shape) and yd.dtype == xd.dtype
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    g = rng.standard_normal(yd.shape).astype(dtype)
    yd.backward(ds.from_numpy(g))
    yt.backward(torch.from_numpy(g))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_sum_backward_of_a_padded_tensor_counts_each_copy() -> None:
    x = ds.zeros(1, 1, 3, 4, requires_grad=True)
    F.pad(x, (1, 1, 2, 2), mode="replicate").sum().backward()  # a broadcast gradient
    t = torch.zeros(1, 1, 3, 4, requires_grad=True)
    TF.pad(t, (1, 1, 2, 2), mode="replicate").sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_copy_modes_double_backward_matches_finite_differences(mode: str) -> None:
    rng = np.random.default_rng(0)
    x = ds.from_numpy(rng.standard_normal((1, 2, 4, 5))).requires_grad_()
    w = ds.from_numpy(rng.standard_normal((1, 2, 7, 8)))

    def f(t: Any) -> Any:
        return (F.pad(t, (1, 2, 2, 1), mode=mode) ** 2 * w).sum()

    assert ds.autograd.gradcheck(f, (x,))
    assert ds.autograd.gradgradcheck(f, (x,))


def test_negative_pads_still_match_torch() -> None:
    x = np.arange(30, dtype=np.float32).reshape(1, 1, 5, 6)
    for mode in ("reflect", "replicate", "circular"):
        ours = F.pad(ds.from_numpy(x), (-1, 2, 1, -2), mode=mode).numpy()
        np.testing.assert_array_equal(ours, TF.pad(torch.from_numpy(x), (-1, 2, 1, -2), mode=mode).numpy())


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_non_negative_copy_mode_pads_build_no_gather_index(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forward copies the input and its borders by slices: the gather through an index it replaced
    cost 35-85 times torch's time (benchmarks/inference_paths.py times both libraries). Negative pads
    (a crop) still build that index, which shows the patch below is the one called."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("a gather index was built")

    monkeypatch.setattr(rearrange, "_pad_index", refuse)
    a = np.random.default_rng(0).standard_normal((2, 3, 5, 6)).astype(np.float32)
    x = ds.from_numpy(a).requires_grad_()
    y = F.pad(x, (3, 2, 1, 4), mode=mode)
    y.backward(ds.ones_like(y))
    t = torch.from_numpy(a.copy()).requires_grad_()
    ty = torch.nn.functional.pad(t, (3, 2, 1, 4), mode=mode)
    ty.backward(torch.ones_like(ty))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    with pytest.raises(AssertionError, match="gather index"):
        F.pad(x, (-1, 2, 1, 1), mode=mode)
