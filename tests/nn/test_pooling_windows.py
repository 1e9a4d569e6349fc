"""Fractional, adaptive and 3-D max pooling with indices, LPPool3d, MaxUnpool3d, CrossMapLRN2d and
F.multi_head_attention_forward, against torch: values, indices and float64 gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _both(ds_fn: Callable[[Any], Any], torch_fn: Callable[[Any], Any], x: np.ndarray, seed: int = 0) -> None:
    """Same values, same indices and the same gradient (float64 torch reference)."""
    xt = torch.tensor(x, requires_grad=True)
    xd = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    (ot, it), (od, id_) = torch_fn(xt), ds_fn(xd)
    assert tuple(od.shape) == tuple(ot.shape)
    np.testing.assert_array_equal(od.detach().numpy(), ot.detach().numpy())
    np.testing.assert_array_equal(id_.numpy(), it.numpy())
    assert id_.dtype == np.int64
    g = np.random.default_rng(seed).standard_normal(ot.shape).astype(x.dtype)
    (ot * torch.tensor(g)).sum().backward()
    (od * ds.tensor(g, dtype=x.dtype)).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


RNG = np.random.default_rng(0)
X2 = RNG.standard_normal((2, 3, 11, 9))
X3 = RNG.standard_normal((2, 2, 7, 8, 9))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kernel", "out"), [(2, (5, 4)), (3, (4, 6)), ((2, 3), (7, 7)), (2, (10, 8))])
def test_fractional_max_pool2d_with_samples_matches_torch(dtype: Any, kernel: Any, out: Any) -> None:
    x = X2.astype(dtype)
    u = np.random.default_rng(1).random((2, 3, 2)).astype(dtype)
    _both(
        lambda t: F.fractional_max_pool2d(
            t, kernel, out, return_indices=True, _random_samples=ds.tensor(u, dtype=dtype)
        ),
        lambda t: TF.fractional_max_pool2d(t, kernel, out, return_indices=True, _random_samples=torch.tensor(u)),
        x,
    )


def test_fractional_max_pool2d_ratio_and_module_match_torch() -> None:
    u = np.full((2, 3, 2), 0.7)
    _both(
        lambda t: nn.FractionalMaxPool2d(2, output_ratio=(0.5, 0.5), return_indices=True, _random_samples=ds.tensor(u))(
            t
        ),
        lambda t: torch.nn.FractionalMaxPool2d(
            2, output_ratio=(0.5, 0.5), return_indices=True, _random_samples=torch.tensor(u)
        )(t),
        X2,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fractional_max_pool3d_with_samples_matches_torch(dtype: Any) -> None:
    u = np.random.default_rng(2).random((2, 2, 3)).astype(dtype)
    _both(
        lambda t: F.fractional_max_pool3d_with_indices(
            t, (2, 3, 2), (3, 4, 5), _random_samples=ds.tensor(u, dtype=dtype)
        ),
        lambda t: TF.fractional_max_pool3d(
            t, (2, 3, 2), (3, 4, 5), return_indices=True, _random_samples=torch.tensor(u)
        ),
        X3.astype(dtype),
    )


def test_fractional_max_pool_draws_from_downslopes_generator() -> None:
    x = ds.randn(2, 3, 9, 9)
    ds.manual_seed(5)
    a = F.fractional_max_pool2d(x, 2, output_size=4)
    ds.manual_seed(5)
    b = F.fractional_max_pool2d(x, 2, output_size=4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert nn.FractionalMaxPool3d(2, output_ratio=0.5)(ds.randn(3, 6, 6, 6)).shape == (3, 3, 3, 3)


def test_fractional_max_pool_errors() -> None:
    with pytest.raises(ValueError, match="output_size or an output_ratio"):
        F.fractional_max_pool2d(ds.randn(1, 1, 5, 5), 2)
    with pytest.raises(ValueError, match="too large"):
        F.fractional_max_pool2d(ds.randn(1, 1, 5, 5), 3, output_size=4)
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        F.fractional_max_pool2d(ds.randn(1, 1, 5, 5), 2, output_size=2, _random_samples=ds.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="output_ratio"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)


@pytest.mark.parametrize("out", [(3, 2), 1, (5, None), (11, 9), (4, 7)])
def test_adaptive_max_pool2d_indices_match_torch(out: Any) -> None:
    _both(
        lambda t: F.adaptive_max_pool2d(t, out, return_indices=True),
        lambda t: TF.adaptive_max_pool2d(t, out, return_indices=True),
        X2,
    )


def test_adaptive_max_pool1d_indices_and_modules_match_torch() -> None:
    x = RNG.standard_normal((2, 3, 13))
    _both(lambda t: F.adaptive_max_pool1d_with_indices(t, 5), lambda t: TF.adaptive_max_pool1d(t, 5, True), x)
    _both(
        lambda t: nn.AdaptiveMaxPool1d(4, return_indices=True)(t[0]),
        lambda t: torch.nn.AdaptiveMaxPool1d(4, return_indices=True)(t[0]),
        x,
    )
    _both(
        lambda t: nn.AdaptiveMaxPool2d(3, return_indices=True)(t), lambda t: torch.nn.AdaptiveMaxPool2d(3, True)(t), X2
    )


@pytest.mark.parametrize("out", [3, (2, 3, 4), (None, 1, 5), 1])
def test_adaptive_max_pool3d_matches_torch(out: Any) -> None:
    _both(lambda t: F.adaptive_max_pool3d(t, out, True), lambda t: TF.adaptive_max_pool3d(t, out, True), X3)
    _both(
        lambda t: nn.AdaptiveMaxPool3d(out, return_indices=True)(t[0]),
        lambda t: torch.nn.AdaptiveMaxPool3d(out, return_indices=True)(t[0]),
        X3,
    )
    ours = nn.AdaptiveMaxPool3d(out)(ds.tensor(X3, dtype=ds.float64))
    np.testing.assert_array_equal(ours.numpy(), TF.adaptive_max_pool3d(torch.tensor(X3), out).numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": (2, 3, 2), "stride": (1, 2, 3), "padding": (1, 1, 0), "dilation": (2, 1, 2), "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    ],
)
def test_max_pool3d_with_indices_matches_torch(kwargs: dict[str, Any]) -> None:
    _both(
        lambda t: F.max_pool3d_with_indices(t, **kwargs), lambda t: TF.max_pool3d(t, return_indices=True, **kwargs), X3
    )
    _both(
        lambda t: nn.MaxPool3d(return_indices=True, **kwargs)(t),
        lambda t: torch.nn.MaxPool3d(return_indices=True, **kwargs)(t),
        X3,
    )


def test_max_pool_ties_and_nan_follow_torch() -> None:
    x = np.zeros((1, 1, 4, 4, 4))
    _both(lambda t: F.max_pool3d_with_indices(t, 2), lambda t: TF.max_pool3d(t, 2, return_indices=True), x)
    y = np.ones((1, 1, 4, 4))
    _both(lambda t: F.adaptive_max_pool2d(t, 3, True), lambda t: TF.adaptive_max_pool2d(t, 3, True), y)
    z = X2.copy()
    z[0, 0, 0, 0] = np.nan
    out = F.adaptive_max_pool2d(ds.tensor(z), 2, return_indices=True)[0]
    assert np.isnan(out.numpy()[0, 0, 0, 0]) and not np.isnan(out.numpy()[0, 0, 1, 1])


def test_max_unpool3d_inverts_max_pool3d_like_torch() -> None:
    x = X3[:, :, :6, :6, :6]
    out_t, idx_t = TF.max_pool3d(torch.tensor(x), 2, return_indices=True)
    out_d, idx_d = F.max_pool3d(ds.tensor(x, dtype=ds.float64), 2, return_indices=True)
    expected = TF.max_unpool3d(out_t, idx_t, 2)
    np.testing.assert_array_equal(F.max_unpool3d(out_d, idx_d, 2).numpy(), expected.numpy())
    np.testing.assert_array_equal(nn.MaxUnpool3d(2)(out_d, idx_d).numpy(), expected.numpy())
    sized = nn.MaxUnpool3d(2)(out_d, idx_d, output_size=(7, 7, 7))
    np.testing.assert_array_equal(sized.numpy(), TF.max_unpool3d(out_t, idx_t, 2, output_size=(7, 7, 7)).numpy())


@pytest.mark.parametrize(("norm", "kernel", "stride"), [(2, 2, None), (1, (2, 3, 2), 1), (3.0, 3, 2)])
def test_lp_pool3d_matches_torch(norm: float, kernel: Any, stride: Any) -> None:
    x = np.abs(X3) + 0.1
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, dtype=ds.float64, requires_grad=True)
    ot = TF.lp_pool3d(xt, norm, kernel, stride)
    od = nn.LPPool3d(norm, kernel, stride)(xd)
    np.testing.assert_allclose(od.detach().numpy(), ot.detach().numpy(), rtol=1e-12)
    ot.sum().backward()
    od.sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("channels", [2, 5, 7])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_cross_map_lrn2d_forward_matches_torch_and_gradient_is_exact(channels: int, size: int) -> None:
    x = np.random.default_rng(channels).standard_normal((2, channels, 3, 3))
    ref = torch.nn.CrossMapLRN2d(size, 0.3, 0.75, 1.5)(torch.tensor(x))
    layer = nn.CrossMapLRN2d(size, 0.3, 0.75, 1.5)
    np.testing.assert_allclose(layer(ds.tensor(x, dtype=ds.float64)).numpy(), ref.numpy(), rtol=1e-13)
    assert ds.autograd.gradcheck(lambda t: layer(t), (ds.tensor(x, dtype=ds.float64, requires_grad=True),))


def test_cross_map_lrn2d_needs_4d_input() -> None:
    with pytest.raises(ValueError, match="Expected input to be 4D"):
        nn.CrossMapLRN2d(3)(ds.ones(2, 3, 4))


def _f64(T: Any, a: np.ndarray, requires_grad: bool = False) -> Any:
    return T.tensor(a, dtype=T.float64, requires_grad=requires_grad)


def _mha_case(T: Any, sep: bool, bias_kv: bool, zero_attn: bool, need_weights: bool, average: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    e, h, l_len, s_len, n = 8, 2, 3, 4, 2
    arrays = {
        "q": rng.standard_normal((l_len, n, e)),
        "k": rng.standard_normal((s_len, n, e)),
        "v": rng.standard_normal((s_len, n, e)),
        "in_w": rng.standard_normal((3 * e, e)) * 0.3,
        "in_b": rng.standard_normal(3 * e) * 0.1,
        "out_w": rng.standard_normal((e, e)) * 0.3,
        "out_b": rng.standard_normal(e) * 0.1,
        "qw": rng.standard_normal((e, e)) * 0.3,
        "kw": rng.standard_normal((e, e)) * 0.3,
        "vw": rng.standard_normal((e, e)) * 0.3,
        "bk": rng.standard_normal((1, 1, e)),
        "bv": rng.standard_normal((1, 1, e)),
    }
    t = {k: _f64(T, a, requires_grad=True) for k, a in arrays.items()}
    kpm = np.zeros((n, s_len), bool)
    kpm[0, -1] = True
    mask = _f64(T, np.triu(np.full((l_len, s_len), -np.inf), 1))
    fn = TF if T is torch else F
    out, weights = fn.multi_head_attention_forward(
        t["q"], t["k"], t["v"], e, h, None if sep else t["in_w"], t["in_b"],
        t["bk"] if bias_kv else None, t["bv"] if bias_kv else None, zero_attn, 0.0, t["out_w"], t["out_b"],
        key_padding_mask=T.tensor(kpm), need_weights=need_weights, attn_mask=mask,
        use_separate_proj_weight=sep, q_proj_weight=t["qw"] if sep else None, k_proj_weight=t["kw"] if sep else None,
        v_proj_weight=t["vw"] if sep else None, average_attn_weights=average,
    )  # fmt: skip
    loss = (out * _f64(T, np.linspace(-1, 1, out.numel()).reshape(out.shape))).sum()
    if weights is not None:
        loss = loss + (weights**2).sum()
    loss.backward()
    found = [out.detach().numpy(), np.zeros(0) if weights is None else weights.detach().numpy()]
    return found + [np.zeros(arrays[k].shape) if t[k].grad is None else t[k].grad.numpy() for k in sorted(t)]


@pytest.mark.parametrize("sep", [False, True])
@pytest.mark.parametrize("bias_kv", [False, True])
@pytest.mark.parametrize("zero_attn", [False, True])
@pytest.mark.parametrize(("need_weights", "average"), [(True, True), (True, False), (False, True)])
def test_multi_head_attention_forward_matches_torch(
    sep: bool, bias_kv: bool, zero_attn: bool, need_weights: bool, average: bool
) -> None:
    ours = _mha_case(ds, sep, bias_kv, zero_attn, need_weights, average)
    ref = _mha_case(torch, sep, bias_kv, zero_attn, need_weights, average)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_multi_head_attention_forward_matches_the_module_unbatched() -> None:
    mha = nn.MultiheadAttention(4, 2).eval()
    x = ds.randn(5, 4)
    ref, w_ref = mha(x, x, x)
    out, w = F.multi_head_attention_forward(
        x, x, x, 4, 2, mha.in_proj_weight, mha.in_proj_bias, None, None, False, 0.1,
        mha.out_proj.weight, mha.out_proj.bias, training=False,
    )  # fmt: skip
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), w_ref.detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="static_k"):
        F.multi_head_attention_forward(
            x, x, x, 4, 2, mha.in_proj_weight, None, None, None, False, 0.0, mha.out_proj.weight, None, static_k=x
        )
    with pytest.raises(ValueError, match="embedding dimension of 6"):
        F.multi_head_attention_forward(
            x, x, x, 6, 2, mha.in_proj_weight, None, None, None, False, 0.0, mha.out_proj.weight, None
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.nn.AdaptiveMaxPool2d(3),
        lambda T: T.nn.AdaptiveMaxPool1d((4,)),
        lambda T: T.nn.AdaptiveMaxPool3d((1, 2, 3)),
        lambda T: T.nn.AdaptiveAvgPool3d(2),
        lambda T: T.nn.LPPool2d(2, 3),
        lambda T: T.nn.LPPool1d(1.5, 2, 1),
        lambda T: T.nn.LPPool3d(2, 3, ceil_mode=False),
        lambda T: T.nn.MaxPool3d(3),
        lambda T: T.nn.MaxPool3d(2, 1, 1, 2, ceil_mode=True),
        lambda T: T.nn.AvgPool3d(3),
        lambda T: T.nn.MaxUnpool1d(3),
        lambda T: T.nn.MaxUnpool2d((2, 3), 1),
        lambda T: T.nn.MaxUnpool3d(2),
        lambda T: T.nn.CrossMapLRN2d(5, 2e-4),
    ],
)
def test_pooling_reprs_match_torch(make: Callable[[Any], Any]) -> None:
    assert repr(make(ds)) == repr(make(torch))
