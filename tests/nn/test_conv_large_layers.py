"""Wide convolution layers against torch, and the choices that keep them fast: a wide 3x3 layer on
few Winograd tiles (ResNet's 512 -> 512 on 4x4 at batch 1) takes im2col; a large layer's transformed
Winograd weight is kept between calls (and never served stale); and a large weight gradient comes
out in the weight's own layout (adding a transposed one into ``.grad`` took 100 ms for 1024x1024x5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.nn import _conv_kernels, _jit
from downslope.nn import convolution as C

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _forward_backward_match_torch(x: np.ndarray, w: np.ndarray, passes: int = 1, **kwargs: Any) -> None:
    xd, wd = ds.tensor(x, requires_grad=True), ds.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    g = np.random.default_rng(9).standard_normal(TF.conv2d(xt, wt, **kwargs).shape).astype(np.float32)
    for _ in range(passes):  # more than one: the gradients accumulate into .grad
        out_d, out_t = C.conv2d(xd, wd, **kwargs), TF.conv2d(xt, wt, **kwargs)
        scale = float(np.abs(out_t.detach().numpy()).max())
        np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), atol=1e-5 * scale)
        out_d.backward(ds.tensor(g))
        out_t.backward(torch.tensor(g))
    for ours, theirs in ((xd.grad, xt.grad), (wd.grad, wt.grad)):
        scale = float(np.abs(theirs.numpy()).max())
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5 * scale)


@pytest.mark.parametrize(("n", "size", "winograd"), [(1, 4, False), (3, 4, False), (1, 8, True), (4, 4, True)])
def test_a_wide_3x3_layer_takes_winograd_only_from_16_tiles(kernels: str, n: int, size: int, winograd: bool) -> None:
    rng = np.random.default_rng(n + size)
    c = 260  # C_in * C_out past WINOGRAD_FEW_TILES_MAX_WEIGHTS
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) / 50).astype(np.float32)
    geometry = ((1, 1), (1, 1, 1, 1), (1, 1), 1, (size, size))
    chosen = _conv_kernels._winograd_jit(x, w, geometry) is not None
    assert chosen == (winograd and kernels == "jit")
    _forward_backward_match_torch(x, w, padding=1)


def test_a_narrow_layer_on_few_tiles_still_takes_winograd(kernels: str) -> None:
    x = np.ones((1, 64, 4, 4), np.float32)
    w = np.ones((64, 64, 3, 3), np.float32)
    geometry = ((1, 1), (1, 1, 1, 1), (1, 1), 1, (4, 4))
    assert (_conv_kernels._winograd_jit(x, w, geometry) is not None) == (kernels == "jit")


def test_a_512_channel_layers_transformed_weight_is_kept_and_never_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    jit = _jit.kernels()
    if jit is None:
        pytest.skip("numba is not installed (the jit extra)")
    monkeypatch.setattr(_conv_kernels, "_weight_cache", type(_conv_kernels._weight_cache)())
    w = np.random.default_rng(0).standard_normal((512, 512, 3, 3)).astype(np.float32)  # 9.4 MB, U 16.8 MB
    u = _conv_kernels._transformed_weight(jit, w)
    assert _conv_kernels._transformed_weight(jit, w) is u  # kept: its transform costs 10-15 ms a call
    w[3, 2, 1, 0] += 1.0  # an in-place write (an optimizer step, load_state_dict): a fresh transform
    changed = _conv_kernels._transformed_weight(jit, w)
    assert changed is not u
    np.testing.assert_array_equal(changed, jit.winograd_weight(w))
    assert _conv_kernels._cache_bytes() <= _conv_kernels.WEIGHT_CACHE_BYTES


def test_a_wide_layers_eval_outputs_follow_in_place_weight_changes() -> None:
    rng = np.random.default_rng(1)
    theirs = torch.nn.Conv2d(272, 272, 3, padding=1).eval()
    ours = ds.nn.Conv2d(272, 272, 3, padding=1).eval()
    ours.load_state_dict({k: ds.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((1, 272, 8, 8)).astype(np.float32)
    for _ in range(2):
        with ds.no_grad():
            got = ours(ds.tensor(x)).numpy()
        with torch.no_grad():
            want = theirs(torch.tensor(x)).numpy()
            np.testing.assert_allclose(got, want, atol=1e-5 * float(np.abs(want).max()))
            theirs.weight.mul_(-0.5)
        with ds.no_grad():
            ours.weight.mul_(-0.5)


def test_a_large_weight_gradient_is_made_in_the_weights_layout_and_matches_torch(kernels: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 256, 4, 2)).astype(np.float32)
    w = (rng.standard_normal((256, 256, 5, 1)) / 30).astype(np.float32)  # 256 x 1280 >= WEIGHT_GRADIENT_DIRECT_MIN
    geometry = ((1, 1), (2, 2, 0, 0), (1, 1), 1, (4, 2))
    g = rng.standard_normal((1, 256, 4, 2)).astype(np.float32)
    _, gw = _conv_kernels._im2col_vjp(g, (x, w), geometry, (True, True))
    assert gw.flags.c_contiguous  # a transposed view made .grad's copy and accumulation 100x slower
    _forward_backward_match_torch(x, w, passes=2, padding=(2, 0))
