"""The whole-array paths of sign, logaddexp, nextafter, fmod / remainder / floor_divide / div(floor),
cummax / cummin and gather (the NumPy calls they replace are scalar loops, 10-25x torch's time): each
result equal to torch's, and to the NumPy result it replaces, bit for bit on the hard cases (signed
zeros, inf, NaN, y = 0, quotients past 2^24, ties), and the gradients equal to torch's."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")

_BITS = {2: np.int16, 4: np.int32, 8: np.int64}


def _assert_same_bits(expected: np.ndarray, got: np.ndarray) -> None:
    """Equal bit for bit (signed zeros included), any NaN matching any NaN."""
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    bits = _BITS[expected.itemsize]
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    same = np.ascontiguousarray(expected).view(bits) == np.ascontiguousarray(got).view(bits)
    bad = ~same & ~nan
    assert not bad.any(), f"{bad.sum()} elements differ, e.g. expected {expected[bad][:4]}, got {got[bad][:4]}"


def _hard_values(dtype: Any) -> np.ndarray:
    info = np.finfo(dtype)
    return np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 3.0, -3.0, 0.7, -7.0, 2.0, info.max, -info.max]
        + [info.tiny, -info.tiny, info.smallest_subnormal, -info.smallest_subnormal, 2.0**24, 2.0**25 + 2, 1e4],
        dtype,
    )


def _hard_pairs(dtype: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair of hard values, random values of several scales (quotients up to 1e35), exact multiples
    (zero remainders) with quotients around 2^24, and a broadcast pair."""
    rng = np.random.default_rng(7)
    hard = _hard_values(dtype)
    pairs = [tuple(grid.ravel() for grid in np.meshgrid(hard, hard))]
    for scale_a, scale_b in [(1, 1), (1e6, 1e-3), (1e8, 1), (1e30, 1e-5), (1, 1e-30), (100, 0.1)]:
        a = (rng.standard_normal(4000) * scale_a).astype(dtype)
        b = (rng.standard_normal(4000) * scale_b).astype(dtype)
        pairs.append((a, b))
    divisor = rng.choice(np.array([0.5, 3.0, -0.75, 1.0, 7.0], dtype), 4000)
    quotient = rng.integers(-(2**26), 2**26, 4000).astype(dtype)
    pairs.append(((quotient * divisor).astype(dtype), divisor))
    pairs.append(((np.asarray(2.0**24, dtype) * divisor + rng.integers(-3, 3, 4000)).astype(dtype), divisor))
    pairs.append(((rng.standard_normal((30, 1)) * 100).astype(dtype), rng.standard_normal((1, 20)).astype(dtype)))
    return pairs


def _quiet(fn: Any, *args: Any) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = fn(*args)
    return out.detach().numpy() if hasattr(out, "detach") else np.asarray(out.numpy())


# --- sign ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sign_of_hard_values_matches_torch_bit_for_bit(dtype):
    values = np.concatenate([_hard_values(dtype), -_hard_values(dtype)])
    _assert_same_bits(torch.sign(torch.from_numpy(values)).numpy(), ds.sign(ds.from_numpy(values)).numpy())


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_sign_of_integers_matches_torch(dtype):
    values = np.array([0, 1, 5, 100], dtype)
    if np.dtype(dtype).kind == "i":
        values = np.concatenate([values, -values])
    np.testing.assert_array_equal(ds.sign(ds.from_numpy(values)).numpy(), torch.sign(torch.from_numpy(values)).numpy())


def test_sign_gradient_is_zero_like_torch():
    x = ds.tensor([-2.0, 0.0, 3.0, float("nan")], requires_grad=True)
    ds.sign(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4, np.float32))


@pytest.mark.host_only  # NumPy's own sign is what the host path no longer calls
def test_float_sign_does_not_go_through_numpys_sign(monkeypatch):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("np.sign called")

    monkeypatch.setattr(np, "sign", refused)
    np.testing.assert_array_equal(ds.sign(ds.tensor([-2.0, 0.0, 3.0])).numpy(), [-1.0, 0.0, 1.0])


# --- logaddexp ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logaddexp_of_infinities_nan_and_zeros_matches_torch(dtype):
    hard = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, 100.0, 1e30], dtype)
    a, b = (grid.ravel() for grid in np.meshgrid(hard, hard))
    expected = torch.logaddexp(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = _quiet(ds.logaddexp, ds.from_numpy(a), ds.from_numpy(b))
    # the same infinity on both sides gives it back (not the NaN of inf - inf); -inf with anything gives the other
    finite = np.isfinite(expected) & (np.abs(expected) > 1e-30)
    _assert_same_bits(np.where(finite, 0, expected).astype(dtype), np.where(finite, 0, got).astype(dtype))
    np.testing.assert_allclose(got[finite], expected[finite], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("scale", [1.0, 5.0, 50.0])
def test_logaddexp_float32_lies_within_an_ulp_of_the_exact_value_as_torch(scale):
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((2, 20000)) * scale).astype(np.float32)
    exact = np.logaddexp(a.astype(np.float64), b.astype(np.float64))
    got = ds.logaddexp(ds.from_numpy(a), ds.from_numpy(b)).numpy().astype(np.float64)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    torch_error = np.abs(torch.logaddexp(torch.from_numpy(a), torch.from_numpy(b)).numpy() - exact) / ulp
    error = np.abs(got - exact) / ulp
    # torch's own float32 error reaches a few ulps where the result is near 0 (cancellation): no more than it
    assert np.quantile(error, 0.99) <= max(1.0, np.quantile(torch_error, 0.99))
    assert error.mean() <= torch_error.mean() * 1.5


def test_logaddexp_float64_random_matches_torch_closely():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 5000)) * 10
    expected = torch.logaddexp(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = ds.logaddexp(ds.from_numpy(a), ds.from_numpy(b)).numpy()
    # a few ulps of the larger input, where the result cancels to near 0
    assert np.all(np.abs(got - expected) <= 4 * np.finfo(np.float64).eps * np.maximum(np.abs(a), np.abs(b)))


def test_logaddexp_gradients_match_torch_with_broadcasting():
    rng = np.random.default_rng(5)
    a_np, b_np = rng.standard_normal((3, 1)), rng.standard_normal((1, 4))
    a, b = ds.from_numpy(a_np).requires_grad_(), ds.from_numpy(b_np).requires_grad_()
    ta, tb = torch.from_numpy(a_np).requires_grad_(), torch.from_numpy(b_np).requires_grad_()
    ds.logaddexp(a, b).sum().backward()
    torch.logaddexp(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-13)


@pytest.mark.host_only  # the host path no longer calls NumPy's scalar logaddexp loop
def test_float_logaddexp_does_not_go_through_numpys_loop(monkeypatch):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("np.logaddexp called")

    monkeypatch.setattr(np, "logaddexp", refused)
    assert float(ds.logaddexp(ds.tensor(0.0), ds.tensor(0.0))) == pytest.approx(np.log(2.0))


# --- nextafter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nextafter_matches_torch_and_numpy_bit_for_bit(dtype):
    for a, b in _hard_pairs(dtype):
        got = _quiet(ds.nextafter, ds.from_numpy(a), ds.from_numpy(b))
        _assert_same_bits(np.nextafter(a, b), got)
        _assert_same_bits(torch.nextafter(torch.from_numpy(a), torch.from_numpy(b)).numpy(), got)


def test_nextafter_float16_keeps_numpys_result():
    hard = _hard_values(np.float16)
    a, b = (grid.ravel() for grid in np.meshgrid(hard, hard))
    _assert_same_bits(np.nextafter(a, b), _quiet(ds.nextafter, ds.from_numpy(a), ds.from_numpy(b)))


@pytest.mark.host_only  # the host path no longer calls NumPy's per-element nextafter
def test_float32_nextafter_does_not_go_through_numpys_loop(monkeypatch):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("np.nextafter called")

    monkeypatch.setattr(np, "nextafter", refused)
    out = ds.nextafter(ds.tensor([1.0, 0.0, -1.0]), ds.tensor([2.0, -1.0, -1.0])).numpy()
    np.testing.assert_array_equal(out, [1.0 + 2.0**-23, -(2.0**-149), -1.0])


# --- fmod, remainder, floor_divide, div(rounding_mode="floor") ---------------------------------


def _previous_remainder(a: np.ndarray, b: Any) -> np.ndarray:
    """The NumPy formulation the whole-array path replaces (torch's kernel: fmod moved by b where the signs differ)."""
    mod = np.fmod(a, b)
    return np.where((mod != 0) & ((b < 0) != (mod < 0)), mod + b, mod)


_DIVISIONS = {
    "fmod": (lambda lib, a, b: lib.fmod(a, b), np.fmod),
    "remainder": (lambda lib, a, b: lib.remainder(a, b), _previous_remainder),
    "floor_divide": (lambda lib, a, b: lib.floor_divide(a, b), np.floor_divide),
    "div_floor": (lambda lib, a, b: lib.div(a, b, rounding_mode="floor"), np.floor_divide),
    "remainder_by_number": (
        lambda lib, a, b: lib.remainder(a, 0.7),
        lambda a, b: _previous_remainder(a, np.float32(0.7)),
    ),
    "fmod_by_number": (lambda lib, a, b: lib.fmod(a, -2.5), lambda a, b: np.fmod(a, np.float32(-2.5))),
}


@pytest.mark.parametrize("name", sorted(_DIVISIONS))
def test_float32_division_family_equals_numpys_result_bit_for_bit(name):
    op, numpy_op = _DIVISIONS[name]
    for a, b in _hard_pairs(np.float32):
        with np.errstate(all="ignore"):
            expected = numpy_op(a, b)
        _assert_same_bits(expected, _quiet(op, ds, ds.from_numpy(a), ds.from_numpy(b)))


@pytest.mark.parametrize("name", sorted(_DIVISIONS))
def test_float32_division_family_matches_torch_bit_for_bit(name):
    # torch's float32 fmod gives NaN where x / y overflows or the quotient passes float32's integers
    # (NumPy's and downslope's stay exact there): compared where the quotient is below 2^24
    op, _ = _DIVISIONS[name]
    for a, b in _hard_pairs(np.float32):
        expected = _quiet(op, torch, torch.from_numpy(a), torch.from_numpy(b))
        got = _quiet(op, ds, ds.from_numpy(a), ds.from_numpy(b))
        with np.errstate(all="ignore"):
            divisor = b if "number" not in name else (0.7 if "remainder" in name else -2.5)
            quotient = np.broadcast_to(np.abs(a.astype(np.float64) / divisor), got.shape)
        modest = ~(quotient >= 2.0**24)  # NaN quotients (0 / 0, inf / inf) kept: both give NaN
        _assert_same_bits(expected[modest], got[modest])


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_fmod_and_remainder_gradients_match_torch(name):
    rng = np.random.default_rng(9)
    a_np = (rng.standard_normal((4, 5)) * 10).astype(np.float32)
    b_np = (rng.standard_normal((1, 5)) * 3).astype(np.float32)
    a, b = ds.from_numpy(a_np).requires_grad_(), ds.from_numpy(b_np).requires_grad_()
    ta, tb = torch.from_numpy(a_np).requires_grad_(), torch.from_numpy(b_np).requires_grad_()
    getattr(ds, name)(a, b).sum().backward()
    getattr(torch, name)(ta, tb).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


@pytest.mark.host_only  # the host path no longer calls NumPy's per-element fmod on ordinary float32 values
@pytest.mark.parametrize("name", ["fmod", "remainder", "floor_divide", "div_floor"])
def test_float32_division_family_does_not_go_through_numpys_fmod(monkeypatch, name):
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("NumPy's scalar fmod loop called")

    a = np.array([[5.5, -5.5, 7.0], [0.25, -0.0, 3.0]], np.float32)
    b = np.array([2.0, 2.0, -3.0], np.float32)
    op, numpy_op = _DIVISIONS[name]
    expected = numpy_op(a, b)
    for refused_name in ("fmod", "remainder", "floor_divide"):
        monkeypatch.setattr(np, refused_name, refused)
    _assert_same_bits(expected, op(ds, ds.from_numpy(a), ds.from_numpy(b)).numpy())


# --- cummax / cummin ----------------------------------------------------------------------------


def _scan_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    special = np.array([0.0, -0.0, np.nan, 1.0, -np.inf, np.inf, 1.0, -1.0], np.float32)
    return [
        rng.standard_normal((5, 700)).astype(np.float32),  # above the compiled kernel's size threshold
        rng.integers(-3, 3, (7, 300)).astype(np.float64),  # many ties
        rng.choice(special, (6, 400)),  # signed zeros, NaN and infinities
        np.sort(rng.standard_normal((3, 500)), axis=-1),  # a new extreme at every step
        rng.integers(-5, 5, (9, 300)).astype(np.int64),
        rng.choice(special, (4, 7)),  # a small one: the NumPy formulation
    ]


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("compiled", [True, False])
def test_running_extremes_match_torch_bit_for_bit(name, compiled):
    for values in _scan_inputs():
        for dim in (0, 1, -1):
            expected_values, expected_indices = getattr(torch, name)(torch.from_numpy(values), dim)
            if compiled:
                got_values, got_indices = getattr(ds, name)(ds.from_numpy(values), dim)
            else:
                with jit_gate.disabled():
                    got_values, got_indices = getattr(ds, name)(ds.from_numpy(values), dim)
            np.testing.assert_array_equal(got_indices.numpy(), expected_indices.numpy())
            if values.dtype.kind == "f":
                _assert_same_bits(expected_values.numpy(), got_values.numpy())
            else:
                np.testing.assert_array_equal(got_values.numpy(), expected_values.numpy())


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1])
def test_running_extreme_gradients_match_torch(name, dim):
    rng = np.random.default_rng(12)
    values = rng.integers(-3, 3, (20, 30)).astype(np.float32)  # ties: the gradient goes to the later index
    weights = rng.standard_normal((20, 30)).astype(np.float32)
    x, tx = ds.from_numpy(values).requires_grad_(), torch.from_numpy(values).requires_grad_()
    (getattr(ds, name)(x, dim)[0] * ds.from_numpy(weights)).sum().backward()
    (getattr(torch, name)(tx, dim)[0] * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


# --- gather -------------------------------------------------------------------------------------


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_gather_matches_torch(index_dtype, dim):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((6, 7, 8)).astype(np.float32)
    size = x.shape[dim]
    index_shape = [4, 5, 6]  # smaller than x along the other dims, as torch allows
    index_shape[dim] = 9  # and longer along dim: repeats
    index = rng.integers(0, size, index_shape).astype(index_dtype)
    expected = torch.gather(torch.from_numpy(x), dim, torch.from_numpy(index.astype(np.int64))).numpy()
    np.testing.assert_array_equal(ds.gather(ds.from_numpy(x), dim, ds.from_numpy(index)).numpy(), expected)


def test_gather_of_a_strided_view_and_a_broadcast_index_matches_torch():
    rng = np.random.default_rng(14)
    base = rng.standard_normal((8, 10)).astype(np.float32)
    index = rng.integers(0, 4, (1, 5)).astype(np.int64)
    ds_view = ds.from_numpy(base).t()[:, ::2]  # not contiguous
    torch_view = torch.from_numpy(base).t()[:, ::2]
    np.testing.assert_array_equal(
        ds.gather(ds_view, 1, ds.from_numpy(np.broadcast_to(index, (6, 5)))).numpy(),
        torch.gather(torch_view, 1, torch.from_numpy(index).expand(6, 5)).numpy(),
    )


def test_gather_gradient_matches_torch_with_repeated_indices():
    rng = np.random.default_rng(15)
    values = rng.standard_normal((5, 6)).astype(np.float32)
    index = rng.integers(0, 6, (5, 9)).astype(np.int64)
    weights = rng.standard_normal((5, 9)).astype(np.float32)
    x, tx = ds.from_numpy(values).requires_grad_(), torch.from_numpy(values).requires_grad_()
    (ds.gather(x, 1, ds.from_numpy(index)) * ds.from_numpy(weights)).sum().backward()
    (torch.gather(tx, 1, torch.from_numpy(index)) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_gather_out_of_range_is_still_refused():
    with pytest.raises(IndexError):
        ds.gather(ds.zeros(2, 3), 1, ds.tensor([[0, 3]]))


@pytest.mark.parametrize(
    "op",
    [
        lambda lib, a, b: lib.fmod(a, b),
        lambda lib, a, b: lib.remainder(a, b),
        lambda lib, a, b: lib.floor_divide(a, b),
        lambda lib, a, b: lib.nextafter(a, b),
        lambda lib, a, b: lib.logaddexp(a, b),
    ],
)
@pytest.mark.parametrize("shapes", [((), ()), ((), (3,)), ((3,), ()), ((0,), (1,))])
def test_zero_dim_and_empty_operands_match_torch(op, shapes):
    rng = np.random.default_rng(16)
    a = np.asarray(rng.standard_normal(shapes[0]) * 5, np.float32)
    b = np.asarray(rng.standard_normal(shapes[1]) + 3, np.float32)
    expected = op(torch, torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = op(ds, ds.from_numpy(a), ds.from_numpy(b)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6)
