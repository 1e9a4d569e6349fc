"""2-D fractional max pooling on its separable path (a sliding pick along W, then along H) against torch:
values, indices and gradients with ties, NaNs and -inf, several kernels; the gradient of the gradient by
finite differences; and that this case no longer goes through the general window gather."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.nn import pooling_windows

torch = pytest.importorskip("torch")


def _pool(lib: Any, x: np.ndarray, samples: np.ndarray, kernel: Any, out: Any, g: np.ndarray) -> tuple[Any, ...]:
    make = torch.from_numpy if lib is torch else ds.from_numpy
    t = make(x.copy()).requires_grad_()
    y, idx = lib.nn.functional.fractional_max_pool2d(
        t, kernel, output_size=out, return_indices=True, _random_samples=make(samples.copy())
    )
    y.backward(make(g))
    return y.detach().numpy(), idx.numpy(), t.grad.numpy()


@pytest.mark.parametrize("kernel, out", [(3, 7), (2, (5, 6)), ((2, 3), 4), (3, (1, 12)), (1, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data", ["normal", "ties", "nan", "inf"])
def test_fractional_max_pool2d_matches_torch(kernel: Any, out: Any, dtype: Any, data: str) -> None:
    rng = np.random.default_rng(hash((str(kernel), str(out), data)) % 2**32)
    x = rng.standard_normal((2, 3, 13, 14)).astype(dtype)
    if data == "ties":
        x = np.round(x).astype(dtype)  # many equal values per window: the first one in scan order wins
    elif data == "nan":
        x[rng.random(x.shape) < 0.15] = np.nan  # the last NaN of a window wins
    elif data == "inf":
        x[:, :, :6] = -np.inf  # windows of -inf only keep their first element
    samples = rng.random((2, 3, 2)).astype(dtype)
    outs = (out, out) if isinstance(out, int) else out
    g = rng.standard_normal((2, 3, *outs)).astype(dtype)
    ty, ti, tg = _pool(torch, x, samples, kernel, out, g)
    dy, di, dg = _pool(ds, x, samples, kernel, out, g)
    np.testing.assert_array_equal(di, ti)
    np.testing.assert_array_equal(dy, ty)
    np.testing.assert_array_equal(dg, tg)  # summed in torch's order and dtype


def test_fractional_max_pool2d_unbatched_matches_torch() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 9, 9)).astype(np.float32)
    samples = rng.random((1, 3, 2)).astype(np.float32)
    ours = ds.nn.functional.fractional_max_pool2d(
        ds.from_numpy(x), 2, output_size=4, _random_samples=ds.from_numpy(samples)
    )
    theirs = torch.nn.functional.fractional_max_pool2d(
        torch.from_numpy(x), 2, output_size=4, _random_samples=torch.from_numpy(samples)
    )
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_fractional_max_pool2d_double_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    x = ds.from_numpy(rng.standard_normal((1, 2, 7, 8))).requires_grad_()
    samples = ds.from_numpy(rng.random((1, 2, 2)))

    def f(t: Any) -> Any:
        return (ds.nn.functional.fractional_max_pool2d(t, 2, output_size=4, _random_samples=samples) ** 2).sum()

    assert ds.autograd.gradcheck(f, (x,))
    assert ds.autograd.gradgradcheck(f, (x,))


@pytest.mark.host_only  # the separable path is the host's
def test_fractional_max_pool2d_takes_the_separable_path_not_the_window_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general window gather was 3-12 times slower here (benchmarks/inference_paths.py times both
    libraries); 3-D fractional pooling still uses it, which shows the patch below is the one called."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("the general window gather was called")

    monkeypatch.setattr(pooling_windows, "_max_over_windows", refuse)
    rng = np.random.default_rng(0)
    x = ds.from_numpy(rng.standard_normal((2, 3, 12, 12)).astype(np.float32)).requires_grad_()
    samples = ds.from_numpy(rng.random((2, 3, 2)).astype(np.float32))
    ds.nn.functional.fractional_max_pool2d(x, 3, output_ratio=0.5, _random_samples=samples).sum().backward()
    assert x.grad is not None
    with pytest.raises(AssertionError, match="general window gather"):
        ds.nn.functional.fractional_max_pool3d(x[:, :, None].expand(2, 3, 4, 12, 12), 2, output_size=2)
