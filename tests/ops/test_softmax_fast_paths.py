"""softmax and log_softmax (downslope.ops.reductions) against PyTorch on inputs that take each path
(softmax: exp(x) unshifted where the totals are in range, else the shift by the row max: large,
very negative or non-finite rows), other dims, float16/float64, 0-d and empty tensors; the
in-place VJPs leave g and y alone; cross_entropy's fused paths on large and small logits; a root
gradient passed to backward is not copied, and no .grad shares it."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
_BASE = _RNG.standard_normal((6, 7)) * 3
_INPUTS = {
    "plain": _BASE,
    "large": _BASE + 200.0,  # exp overflows: shifted
    "very negative": _BASE - 300.0,  # every exp underflows: shifted
    "one large row": np.vstack([_BASE[:5], _BASE[5:] + 95.0]),
    "one tiny row": np.vstack([_BASE[:5], _BASE[5:] - 120.0]),
    "wide range": _BASE * 20.0,  # some elements' exp is subnormal, their rows are fine
    "-inf entries": np.where(_BASE > 2.0, -np.inf, _BASE),
}
_NON_FINITE = {
    "row of -inf": np.vstack([_BASE[:5], np.full((1, 7), -np.inf)]),
    "+inf entry": np.where(_BASE == _BASE.max(), np.inf, _BASE),
    "nan entry": np.where(_BASE == _BASE.min(), np.nan, _BASE),
}


def _ref(name: str, a: np.ndarray, dim: int) -> np.ndarray:
    return getattr(torch, name)(torch.tensor(a, dtype=torch.float64), dim).numpy()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", list(_INPUTS))
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_values_match_torch_in_float32_on_every_path(name: str, case: str, dim: int) -> None:
    a = _INPUTS[case].astype(np.float32)
    ours = getattr(ds, name)(ds.tensor(a), dim).numpy()
    ref = _ref(name, a.astype(np.float64), dim)
    assert ours.dtype == np.float32
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    if name == "softmax":  # every probability to float32 precision, the tiny ones too (where not subnormal)
        normal = finite & (ref > 1e-30)
        np.testing.assert_allclose(ours[normal], ref[normal], rtol=2e-6, atol=0)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=2e-6, atol=1e-30)
    else:  # relative to the row's largest |x| (torch's float32 rounds max + log(total) at that size too)
        big = np.abs(np.where(np.isfinite(a), a, 0.0)).max(axis=dim, keepdims=True)
        scale = np.broadcast_to(np.maximum(1.0, big), a.shape)
        np.testing.assert_allclose((ours / scale)[finite], (ref / scale)[finite], rtol=0, atol=4e-7)
        theirs = getattr(torch, name)(torch.tensor(a), dim).numpy()  # ours is no further off than torch's
        assert np.abs(ours[finite] - ref[finite]).max() <= 4 * np.abs(theirs[finite] - ref[finite]).max() + 1e-6


def test_log_softmax_of_a_dominant_class_is_exactly_zero_as_in_torch() -> None:
    # shifted by the max as torch: the largest term of the sum is exactly 1, so a row whose other
    # terms vanish in float32 gives exactly 0 (and so does a 0-d tensor), whatever the logits' size
    a = np.array([[1.5, -20.0, -21.0], [60.5, 30.0, 29.0], [-80.25, -100.0, -100.5]], dtype=np.float32)
    ours = ds.log_softmax(ds.tensor(a), 1).numpy()
    np.testing.assert_array_equal(ours, torch.log_softmax(torch.tensor(a), 1).numpy())
    assert ours[0, 0] == 0.0 and ds.log_softmax(ds.tensor(1.5), 0).item() == 0.0


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", list(_NON_FINITE))
def test_non_finite_rows_give_torchs_nans_without_warnings(name: str, case: str) -> None:
    a = _NON_FINITE[case].astype(np.float32)
    with np.errstate(all="raise"):  # a NumPy warning here would raise
        ours = getattr(ds, name)(ds.tensor(a), 1).numpy()
    ref = getattr(torch, name)(torch.tensor(a), 1).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", ["plain", "large", "one tiny row", "-inf entries"])
@pytest.mark.parametrize("dim", [0, -1])
def test_gradients_match_torch_in_float64(name: str, case: str, dim: int) -> None:
    a = _INPUTS[case]
    g = _RNG.standard_normal(a.shape)
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    getattr(ds, name)(x, dim).backward(ds.tensor(g, dtype=ds.float64))
    t = torch.tensor(a, requires_grad=True)
    getattr(torch, name)(t, dim).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_second_derivatives_match_torch(name: str) -> None:
    a = _BASE[:3, :4]
    g = _RNG.standard_normal(a.shape)
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    (gx,) = ds.autograd.grad(getattr(ds, name)(x, 1), x, ds.tensor(g, dtype=ds.float64), create_graph=True)
    (gx * gx).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(getattr(torch, name)(t, 1), t, torch.tensor(g), create_graph=True)
    (gt * gt).sum().backward()
    np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_float16_is_computed_in_float32_and_rounded_once_as_torch(name: str) -> None:
    a = (_BASE * 2).astype(np.float16)
    g = _RNG.standard_normal(a.shape).astype(np.float16)
    x = ds.tensor(a, dtype=ds.float16, requires_grad=True)
    out = getattr(ds, name)(x, 1)
    out.backward(ds.tensor(g, dtype=ds.float16))
    t = torch.tensor(a, requires_grad=True)
    ref = getattr(torch, name)(t, 1)
    ref.backward(torch.tensor(g))
    assert out.dtype == ds.float16 and x.grad.dtype == ds.float16  # type: ignore[union-attr]
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_the_vjp_writes_into_neither_g_nor_the_output(name: str) -> None:
    a = _BASE.astype(np.float32)
    g = _RNG.standard_normal(a.shape).astype(np.float32)
    x = ds.tensor(a.copy(), requires_grad=True)
    out = getattr(ds, name)(x, -1)
    y_before = out.detach().numpy().copy()
    gt = ds.tensor(g.copy())
    out.backward(gt, retain_graph=True)
    np.testing.assert_array_equal(gt.numpy(), g)
    np.testing.assert_array_equal(out.detach().numpy(), y_before)
    np.testing.assert_array_equal(x.detach().numpy(), a)
    first = x.grad.numpy().copy()  # type: ignore[union-attr]
    x.grad = None
    out.backward(gt)  # the same graph again: the same gradient
    np.testing.assert_array_equal(x.grad.numpy(), first)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [((3, 0), 1), ((3, 0), 0), ((0, 4), 1), ((), 0), ((), -1)])
def test_empty_and_0d_tensors_as_torch(name: str, shape: tuple, dim: int) -> None:
    a = np.full(shape, 1.5, dtype=np.float32)
    x = ds.tensor(a, requires_grad=True)
    out = getattr(ds, name)(x, dim)
    ref = getattr(torch, name)(torch.tensor(a), dim)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.numpy())
    out.sum().backward()
    assert x.grad.shape == shape  # type: ignore[union-attr]
    np.testing.assert_allclose(x.grad.numpy(), 0.0, atol=1e-6)  # type: ignore[union-attr]


@pytest.mark.parametrize("shift", [0.0, 150.0, -150.0])
@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"reduction": "sum", "ignore_index": 2}])
def test_cross_entropy_on_either_side_of_the_shift_matches_torch(shift: float, kwargs: dict) -> None:
    logits = (_BASE + shift).astype(np.float32)
    target = np.array([0, 2, 1, 4, 6, 3])
    x = ds.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, ds.tensor(target), **kwargs)
    loss.backward()
    t = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(target), **kwargs)
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)  # type: ignore[union-attr]


def test_backward_with_a_gradient_leaves_the_callers_array_alone() -> None:
    # the root gradient is not copied any more: a leaf's .grad must still be its own array
    g = ds.tensor([1.0, 2.0, 3.0])
    x = ds.tensor([0.5, 0.5, 0.5], requires_grad=True)
    (x + 0).backward(g)  # add's rule hands g itself to x
    x.grad.add_(10.0)  # type: ignore[union-attr]
    np.testing.assert_array_equal(g.numpy(), [1.0, 2.0, 3.0])
    x.backward(g)  # the leaf itself as the root
    assert not np.shares_memory(x.grad.numpy(), g.numpy())  # type: ignore[union-attr]
    y = ds.tensor([0.0, 0.0, 0.0], requires_grad=True)
    ds.autograd.backward([x + 0, y * 1], [g, g])  # two roots, one array
    assert not np.shares_memory(x.grad.numpy(), g.numpy())  # type: ignore[union-attr]
    assert not np.shares_memory(y.grad.numpy(), g.numpy())  # type: ignore[union-attr]
    x.grad = None
    ds.autograd.backward(x + 0, g, inputs=[x])
    assert not np.shares_memory(x.grad.numpy(), g.numpy())  # type: ignore[union-attr]
    np.testing.assert_array_equal(g.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("shape", [(300, 500), (3, 70, 700), (2, 5, 40000)])
def test_log_softmax_of_large_inputs_summed_in_blocks_matches_torch(shape: tuple) -> None:
    # from 2 * 65536 elements the exponentials are summed block by block (a partial block last)
    a = (np.random.default_rng(1).standard_normal(shape) * 4).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x = ds.tensor(a, requires_grad=True)
    out = ds.log_softmax(x, -1)
    out.backward(ds.tensor(g))
    t = torch.tensor(a, requires_grad=True)
    ref = torch.log_softmax(t, -1)
    ref.backward(torch.tensor(g))
    # the values against float64's: torch's own float32 sum of 40000 exponentials is off by up to 1.2e-5 on
    # its AVX2 kernel (a few float32 ulps of the row's log-sum-exp), so torch's float32 is no reference here
    exact = torch.log_softmax(torch.tensor(a, dtype=torch.float64), -1).numpy()
    np.testing.assert_allclose(out.detach().numpy(), exact, rtol=1e-5, atol=5e-6)
    # float32 sums of g over up to 40000 elements differ in their last digits: atol at that size
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=2e-5)  # type: ignore[union-attr]
    np.testing.assert_array_equal(x.detach().numpy(), a)
