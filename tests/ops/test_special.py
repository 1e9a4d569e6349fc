"""Special functions (downslope.ops.special) and the integer/bit ops against PyTorch: values and
float64 gradients (also under create_graph), torch's edge values, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, StateError

torch = pytest.importorskip("torch")

inf, nan = float("inf"), float("nan")
X = np.array([-20.5, -3.3, -0.7, 0.1, 0.5, 1.0, 2.5, 7.0, 15.0, 40.0, 300.0])
POSITIVE = X[3:]


def _compare(ours_fn, torch_fn, values, rtol=1e-12, grad_rtol=None, atol=0.0):
    x = ds.tensor(values, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y, ty = ours_fn(x), torch_fn(t)
    assert y.dtype == ds.float64
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=grad_rtol or rtol * 10, atol=atol)


@pytest.mark.parametrize(
    ("name", "values", "rtol", "grad_rtol"),
    [
        ("i0", X, 1e-13, None),
        ("i0e", X, 1e-13, None),
        ("i1", X, 1e-13, None),
        ("i1e", X, 1e-13, None),
        ("erfcx", np.array([-20.0, -3.3, -0.7, 0.0, 0.5, 2.5, 7.0, 24.9, 25.1, 40.0, 300.0]), 1e-13, 1e-9),
        ("log_ndtr", np.array([-300, -40.0, -5, -1.5, -1, -0.5, 0, 2, 5, 9]), 1e-13, 1e-10),
        ("ndtri", np.array([1e-300, 1e-20, 1e-5, 0.02, 0.3, 0.5, 0.7, 0.98, 1 - 1e-10]), 1e-13, None),
        ("ndtr", X[1:], 1e-13, None),  # far below (x = -20.5) torch's 1 + erf rounds to 0 where erfc does not
        ("entr", np.array([0.1, 0.5, 2.0]), 1e-13, None),
    ],
)
def test_torch_special_functions_match_in_values_and_gradients(name, values, rtol, grad_rtol):
    _compare(getattr(ds.special, name), getattr(torch.special, name), values, rtol, grad_rtol)


@pytest.mark.parametrize("name", ["lgamma", "digamma", "erfinv", "i0"])
def test_top_level_special_functions_match_torch(name):
    values = np.array([-0.999, -0.3, 0.0, 0.5, 0.9999]) if name == "erfinv" else X
    # digamma's gradient is torch's trigamma, itself accurate to about 5e-10
    _compare(getattr(ds, name), getattr(torch, name), values, rtol=1e-11, grad_rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_matches_torch(n):
    # torch's own trigamma is accurate to about 5e-10 (ours to ~1e-15 at pi^2/6)
    _compare(lambda x: ds.polygamma(n, x), lambda x: torch.polygamma(n, x), POSITIVE, rtol=1e-9)
    assert abs(ds.polygamma(1, ds.tensor([1.0], dtype=ds.float64)).item() - np.pi**2 / 6) < 1e-14


def test_mvlgamma_matches_torch_and_checks_p():
    _compare(lambda x: ds.mvlgamma(x, 3), lambda x: torch.mvlgamma(x, 3), np.array([1.1, 2.5, 7.0]), rtol=1e-11)
    _compare(lambda x: x.mvlgamma(1), lambda x: x.mvlgamma(1), np.array([1.1, 2.5, 7.0]), rtol=1e-11)
    with pytest.raises(ArgumentError):
        ds.mvlgamma(ds.tensor([2.0]), 0)
    with pytest.raises(ArgumentError):
        ds.polygamma(-1, ds.tensor([2.0]))


def test_integer_inputs_give_float32_like_torch():
    for name in ("lgamma", "digamma", "erfinv", "i0"):
        assert getattr(ds, name)(ds.tensor([1, 2])).dtype == ds.float32
    assert ds.polygamma(2, ds.tensor([1, 2])).dtype == ds.float32


def test_lgamma_digamma_edge_values_match_torch():
    edge = [0.0, -1.0, -2.5, inf, -inf, nan, 1.0, 2.0]
    for name in ("lgamma", "digamma"):
        np.testing.assert_allclose(
            getattr(ds, name)(ds.tensor(edge, dtype=ds.float64)).numpy(),
            getattr(torch, name)(torch.tensor(edge, dtype=torch.float64)).numpy(),
            rtol=1e-13,
        )


@pytest.mark.parametrize("name", ["igamma", "igammac"])
def test_igamma_matches_torch_and_differentiates_in_x(name):
    a = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 30.0, 1000.0, 3.0])
    x = np.array([0.05, 3.0, 1.0, 0.5, 5.0, 40.0, 1100.0, 60.0])
    ours = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y = getattr(ds, name)(ds.tensor(a, dtype=ds.float64), ours)
    ty = getattr(torch, name)(torch.tensor(a), theirs)
    # torch's own igamma is accurate to about 1e-9 for large a (ours to ~1e-14, checked against mpmath)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-300)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)
    # second derivative (create_graph) against torch's
    ours2 = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    theirs2 = torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad(getattr(ds, name)(ds.tensor(a, dtype=ds.float64), ours2).sum(), ours2, create_graph=True)
    (tg,) = torch.autograd.grad(getattr(torch, name)(torch.tensor(a), theirs2).sum(), theirs2, create_graph=True)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(ours2.grad.numpy(), theirs2.grad.numpy(), rtol=1e-10)


def test_igamma_edge_values_and_refusals_match_torch():
    a = [0.0, 0.0, 1.0, -1.0, 2.0, 2.0, inf, inf, 2.0, nan, 1e-3, 0.5]
    x = [0.0, 1.0, 0.0, 1.0, -1.0, inf, 1.0, inf, nan, 1.0, 0.0, 1e-20]
    for name in ("igamma", "igammac"):
        np.testing.assert_allclose(
            getattr(ds, name)(ds.tensor(a), ds.tensor(x)).numpy(),
            getattr(torch, name)(torch.tensor(a), torch.tensor(x)).numpy(),
            rtol=1e-6,
        )
    assert ds.igamma(ds.tensor([1.0]), ds.tensor([1.0], dtype=ds.float64)).dtype == ds.float64
    with pytest.raises(ArgumentTypeError):
        ds.igamma(ds.tensor([1, 2]), ds.tensor([1, 2]))
    a_grad = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(StateError, match="not implemented"):
        ds.igamma(a_grad, ds.tensor([1.0, 2.0])).sum().backward()


def test_special_gradients_hold_under_create_graph():
    for name in ("lgamma", "digamma", "i0", "erfinv"):
        values = np.array([0.2, 0.5]) if name == "erfinv" else np.array([0.7, 2.5, 6.0])
        x = ds.tensor(values, dtype=ds.float64, requires_grad=True)
        t = torch.tensor(values, requires_grad=True)
        (g,) = ds.autograd.grad(getattr(ds, name)(x).sum(), x, create_graph=True)
        (tg,) = torch.autograd.grad(getattr(torch, name)(t).sum(), t, create_graph=True)
        g.sum().backward()
        tg.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9)


def test_tensor_methods_and_in_place_forms():
    x = ds.tensor([1.5, 2.5])
    t = torch.tensor([1.5, 2.5])
    for name in ("lgamma", "digamma", "i0"):
        np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(t, name)().numpy(), rtol=1e-6, atol=1e-6)
        y = x.clone()
        assert getattr(y, name + "_")() is y
        np.testing.assert_allclose(y.numpy(), getattr(t, name)().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.polygamma(2).numpy(), t.polygamma(2).numpy(), rtol=1e-6)
    y = x.clone()
    y.polygamma_(1)
    np.testing.assert_allclose(y.numpy(), t.polygamma(1).numpy(), rtol=1e-6)
    z = ds.tensor([0.3]).erfinv_()
    np.testing.assert_allclose(z.numpy(), torch.tensor([0.3]).erfinv().numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        x.igamma(ds.tensor([1.0, 1.0])).numpy(), t.igamma(torch.tensor([1.0, 1.0])).numpy(), rtol=1e-6
    )


def test_distributions_special_still_exports_the_functions():
    from downslope.distributions import _special

    assert _special.lgamma is ds.lgamma and _special.igamma is ds.igamma
    assert callable(_special.standard_gamma_grad) and callable(_special.gammainc_array)


# ---------------------------------------------------------------- integer and bit ops


@pytest.mark.parametrize(
    "name", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm"]
)
def test_integer_binary_ops_match_torch(name):
    a, b = [12, -18, 0, 7, 5], [8, 12, 0, 3, 2]
    ours, theirs = getattr(ds, name), getattr(torch, name)
    np.testing.assert_array_equal(
        ours(ds.tensor(a), ds.tensor(b)).numpy(), theirs(torch.tensor(a), torch.tensor(b)).numpy()
    )
    small = ours(ds.tensor([4], dtype=ds.int8), ds.tensor([6])).dtype
    assert str(small) == str(theirs(torch.tensor([4], dtype=torch.int8), torch.tensor([6])).dtype).replace("torch.", "")
    with pytest.raises(ArgumentTypeError):
        ours(ds.tensor([1.0]), ds.tensor([2.0]))


def test_bit_operators_and_bitwise_not_match_torch():
    a = ds.tensor([1, 2])
    np.testing.assert_array_equal((3 << a).numpy(), (3 << torch.tensor([1, 2])).numpy())
    np.testing.assert_array_equal((16 >> a).numpy(), (16 >> torch.tensor([1, 2])).numpy())
    np.testing.assert_array_equal(ds.bitwise_not(ds.tensor([True, False])).numpy(), [False, True])
    np.testing.assert_array_equal(ds.bitwise_xor(5, a).numpy(), torch.bitwise_xor(5, torch.tensor([1, 2])).numpy())


def test_float_binary_ops_match_torch(check_op):
    a, b = np.array([1.0, -2.0, 30.0]), np.array([2.0, 1.5, -3.0])
    check_op(ds.logaddexp2, torch.logaddexp2, [a, b])
    check_op(lambda x, y: x.logaddexp2(y), lambda x, y: x.logaddexp2(y), [a.astype(np.float32), b.astype(np.float32)])
    # (non-negative exponents: torch's gradient for a negative integer one is 0, an integer 2^-1)
    check_op(lambda x: ds.ldexp(x, ds.tensor([2, 3, 0])), lambda x: torch.ldexp(x, torch.tensor([2, 3, 0])), [a])
    check_op(
        lambda x: ds.ldexp(x, ds.tensor([2.0, -3.0, 0.5])),
        lambda x: torch.ldexp(x, torch.tensor([2.0, -3.0, 0.5])),
        [a],
    )
    assert ds.ldexp(ds.tensor([1, 2]), ds.tensor([2, 3])).dtype == ds.float32
    check_op(ds.nextafter, torch.nextafter, [a, b], grad=False)
    check_op(ds.nextafter, torch.nextafter, [a.astype(np.float32), b.astype(np.float32)], grad=False)
    with pytest.raises(ArgumentTypeError):
        ds.nextafter(ds.tensor([1, 2]), ds.tensor([2, 1]))
    with pytest.raises(ArgumentTypeError):
        ds.logaddexp2(ds.tensor([1, 2]), ds.tensor([2, 1]))


def test_frexp_matches_torch_with_its_gradient(check_op):
    values = np.array([8.0, -0.3, 0.0, 1e-310, 5.5])
    ours, theirs = ds.frexp(ds.tensor(values, dtype=ds.float64)), torch.frexp(torch.tensor(values))
    np.testing.assert_array_equal(ours.mantissa.numpy(), theirs.mantissa.numpy())
    np.testing.assert_array_equal(ours.exponent.numpy(), theirs.exponent.numpy())
    assert ours.exponent.dtype == ds.int32
    check_op(lambda x: x.frexp().mantissa, lambda x: x.frexp().mantissa, [values])
    with pytest.raises(ArgumentTypeError):
        ds.frexp(ds.tensor([8, 3]))


def test_sgn_fix_positive_and_predicates_match_torch():
    np.testing.assert_array_equal(ds.sgn(ds.tensor([-2, 0, 3])).numpy(), [-1, 0, 1])
    np.testing.assert_array_equal(ds.fix(ds.tensor([-2.5, 0.0, 3.7])).numpy(), [-2.0, 0.0, 3.0])
    x = ds.tensor([1, -2])
    assert ds.positive(x) is x
    with pytest.raises(ArgumentTypeError):
        ds.positive(ds.tensor([True]))
    assert ds.is_nonzero(ds.tensor([0.5])) and not ds.is_nonzero(ds.tensor(0))
    assert ds.is_same_size(ds.zeros(2, 3), ds.ones(2, 3)) and not ds.is_same_size(ds.zeros(2), ds.zeros(3))
    for dtype, expected in [(ds.float32, True), (ds.int8, True), (ds.uint8, False), (ds.bool_, False)]:
        assert ds.is_signed(ds.zeros(1, dtype=dtype)) is expected
    assert ds.is_neg(ds.ones(2)) is False and ds.ones(2).is_neg() is False
    with pytest.raises(RuntimeError):
        ds.is_nonzero(ds.tensor([1, 2]))


@pytest.mark.parametrize("name", ["ndtr", "ndtri", "log_ndtr", "erfcx"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_functions_take_0d_tensors(name, dtype):
    # arithmetic on a 0-d NumPy array gives a NumPy scalar: the erfc helper must take those too
    for v in (0.3, -3.0, 0.9):
        ours = getattr(ds.special, name)(ds.tensor(v, dtype=getattr(ds, dtype)))
        theirs = getattr(torch.special, name)(torch.tensor(v, dtype=getattr(torch, dtype)))
        assert ours.shape == () and ours.dtype == getattr(ds, dtype)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5 if dtype == "float32" else 1e-13)
    x = ds.tensor(0.3, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    getattr(ds.special, name)(x).backward()
    getattr(torch.special, name)(t).backward()
    assert x.grad.item() == pytest.approx(t.grad.item(), rel=1e-12)


def test_digamma_at_signed_zero_follows_the_zeros_side_as_torch():
    values = [0.0, -0.0]
    for dtype in ("float32", "float64"):
        ours = ds.digamma(ds.tensor(values, dtype=getattr(ds, dtype))).tolist()
        assert ours == torch.digamma(torch.tensor(values, dtype=getattr(torch, dtype))).tolist() == [-inf, inf]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_polygamma_edge_values(n):
    edge = np.array([0.0, -0.0, -1.0, -3.0, -2.5, 1.0, nan, 1e-300, -1e-300, -100.5])
    ours = ds.polygamma(n, ds.tensor(edge, dtype=ds.float64)).numpy()
    theirs = torch.polygamma(n, torch.tensor(edge, dtype=torch.float64)).numpy()
    if n == 1:
        # torch's trigamma gives huge finite values at the negative integers; the poles are +inf
        assert np.isposinf(ours[[2, 3]]).all()
        ours, theirs = np.delete(ours, [2, 3]), np.delete(theirs, [2, 3])
    if n % 2 == 0:
        # at a half-integer the even orders reflect exactly (cot^(n)(pi/2) = 0): psi^(n)(-100.5) =
        # psi^(n)(101.5); torch's n = 4 is 2e-8 off there
        far = ds.polygamma(n, ds.tensor([101.5], dtype=ds.float64)).numpy()
        np.testing.assert_allclose(ours[-1:], far, rtol=1e-14)
        ours, theirs = ours[:-1], theirs[:-1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)  # torch's trigamma: ~5e-10
    # at +inf the limit is 0 (torch: NaN for n >= 2), and -inf has none
    far = ds.polygamma(n, ds.tensor([inf, -inf], dtype=ds.float64)).numpy()
    assert far[0] == 0.0 and np.isnan(far[1])


def test_igamma_and_igammac_match_scipy_for_every_shape_and_ratio():
    # a log grid of a in [1e-3, 1e7] and x / a in [1e-3, 1e3]: the series, the continued fraction, the
    # small-x series for Q and Temme's expansion (large a, x near a) each meet scipy's Cephes to 1e-12, but
    # where a is large: x^a e^-x / Gamma(a) carries the rounding of a log x - x - lgamma(a) (some 3e4 at
    # a = 4217, so 4e-12 relative: scipy's own value is 9e-12 off the exact one there)
    special = pytest.importorskip("scipy.special")
    a = np.logspace(-3, 7, 81)[:, None]
    x = a * np.logspace(-3, 3, 81)[None, :]
    for name, reference in (("igamma", special.gammainc), ("igammac", special.gammaincc)):
        ours = getattr(ds, name)(ds.tensor(a, dtype=ds.float64), ds.tensor(x, dtype=ds.float64)).numpy()
        theirs = reference(a, x)
        kept = theirs > 1e-300
        moderate = kept & (a < 500)
        np.testing.assert_allclose(ours[moderate], theirs[moderate], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(ours[kept], theirs[kept], rtol=2e-11, err_msg=name)
        np.testing.assert_array_less(ours[~kept], 1e-299)


def test_igamma_for_large_shape_matches_torch():
    # the series used to stop unconverged for a above a few thousand (P(1e5, 1e5) came out 0.44)
    a = np.array([7e3, 1e4, 1e5, 1e6, 1e7])
    for x in (a, a - 3 * np.sqrt(a), a + 2 * np.sqrt(a)):
        for name in ("igamma", "igammac"):
            ours = getattr(ds, name)(ds.tensor(a, dtype=ds.float64), ds.tensor(x, dtype=ds.float64)).numpy()
            theirs = getattr(torch, name)(torch.tensor(a), torch.tensor(x)).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-9)  # torch's own accuracy for large a
    chi2 = ds.distributions.Chi2(ds.tensor([2e5], dtype=ds.float64)).cdf(ds.tensor([2e5], dtype=ds.float64))
    expected = torch.distributions.Chi2(torch.tensor([2e5], dtype=torch.float64)).cdf(torch.tensor([2e5]))
    np.testing.assert_allclose(chi2.numpy(), expected.numpy(), rtol=1e-9)


def test_standard_gamma_grad_matches_the_inverse_cdfs_differences_and_torch():
    # d x / d alpha at a fixed quantile u is the derivative of x = P^-1(alpha, u) in alpha: five-point
    # differences of scipy's inverse (steps on the distribution's scale) against ours, which is torch's
    # approximation (accurate to ~1e-3 relative; the same values as torch's)
    special = pytest.importorskip("scipy.special")
    from downslope.ops.special import standard_gamma_grad

    alpha, u = np.meshgrid(np.logspace(-0.5, 6, 14), [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99], indexing="ij")
    x = special.gammaincinv(alpha, u)
    h = 1e-3 * np.minimum(alpha, np.sqrt(alpha))

    def inverse(k: int) -> np.ndarray:
        return special.gammaincinv(alpha + k * h, u)

    differences = (inverse(-2) - 8 * inverse(-1) + 8 * inverse(1) - inverse(2)) / (12 * h)
    ours = standard_gamma_grad(alpha, x)
    np.testing.assert_allclose(ours, differences, rtol=2e-3)
    theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_gamma_rsample_gradient_for_large_concentration_matches_torch():
    alpha = np.array([100.0, 1e4, 1e5, 1e6])
    a = ds.tensor(alpha, dtype=ds.float64, requires_grad=True)
    ds.manual_seed(0)
    x = ds.distributions.Gamma(a, 1.0).rsample()
    (g,) = ds.autograd.grad(x.sum(), [a])
    theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x.detach().numpy())).numpy()
    np.testing.assert_allclose(g.numpy(), theirs, rtol=1e-6)


def test_igamma_derivative_in_the_shape_is_not_implemented_as_in_torch():
    a = ds.tensor([1.5, 2.0], dtype=ds.float64, requires_grad=True)
    for fn in (ds.igamma, ds.igammac):
        with pytest.raises(NotImplementedError, match="first argument"):
            fn(a, ds.tensor([1.0, 2.0], dtype=ds.float64)).sum().backward()
    gamma = ds.distributions.Gamma(a, 1.0)
    with pytest.raises(NotImplementedError):
        gamma.cdf(ds.tensor([1.0, 2.0], dtype=ds.float64)).sum().backward()
    # torch raises NotImplementedError too
    ta = torch.tensor([1.5, 2.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(NotImplementedError):
        torch.igamma(ta, torch.tensor([1.0, 2.0], dtype=torch.float64)).sum().backward()
