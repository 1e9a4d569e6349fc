"""Order statistics and statistics added after torch (quantile, mode, nanmedian, searchsorted, isin,
histc, cov, trapezoid, dist, renorm...) against PyTorch: values, dtypes and float64 gradients."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError

torch = pytest.importorskip("torch")

nan = float("nan")
RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 5, 4))
X[0, 1, 2] = nan  # one NaN: torch's order among several NaNs (which one gets the gradient) is unspecified
X[2, 2, :] = 1.0  # ties


def _same(ours, theirs):
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_matches_torch_in_values_and_gradients(check_op, interpolation, dim, keepdim, name):
    for q in (0.3, np.array([0.0, 0.25, 0.5, 1.0]), np.array(0.7)):

        def ours(t, q=q):
            qq = q if isinstance(q, float) else ds.tensor(q, dtype=ds.float64)
            return getattr(ds, name)(t, qq, dim, keepdim, interpolation=interpolation)

        def theirs(t, q=q):
            qq = q if isinstance(q, float) else torch.tensor(q)
            return getattr(torch, name)(t, qq, dim, keepdim, interpolation=interpolation)

        check_op(ours, theirs, [X])


def test_nanquantile_of_an_all_nan_slice_is_nan_and_the_method_form_works(check_op):
    a = X.copy()
    a[1, :, 0] = nan
    check_op(lambda t: t.nanquantile(0.4, dim=1), lambda t: t.nanquantile(0.4, dim=1), [a])
    check_op(lambda t: t.quantile(0.4, dim=1), lambda t: t.quantile(0.4, dim=1), [a], grad=False)
    check_op(lambda t: t.quantile(0.4), lambda t: t.quantile(0.4), [X[2].astype(np.float32)])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ds.quantile(ds.tensor([1, 2]), 0.5), ArgumentTypeError),
        (lambda: ds.quantile(ds.tensor([1.0, 2.0]), 1.5), ArgumentError),
        (lambda: ds.quantile(ds.tensor([1.0, 2.0]), ds.tensor([0.5], dtype=ds.float64)), ArgumentTypeError),
        (lambda: ds.quantile(ds.zeros(0), 0.5), ShapeError),
        (lambda: ds.quantile(ds.tensor([1.0]), 0.5, interpolation="cubic"), ArgumentError),
        (lambda: ds.quantile(ds.tensor([1.0]), ds.full((2, 2), 0.5)), ShapeError),
        (lambda: ds.quantile(ds.tensor([1.0]), [0.5]), ArgumentTypeError),
    ],
)
def test_quantile_refuses_bad_arguments_in_one_line(call, error):
    with pytest.raises(error) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_mode_gives_the_smallest_most_frequent_value_and_its_last_index(check_op, dim, keepdim):
    b = RNG.integers(0, 3, (4, 7)).astype(np.float64)
    ours, theirs = ds.mode(ds.tensor(b, dtype=ds.float64), dim, keepdim), torch.mode(torch.tensor(b), dim, keepdim)
    _same(ours.values, theirs.values)
    _same(ours.indices, theirs.indices)
    check_op(lambda t: t.mode(dim, keepdim).values, lambda t: t.mode(dim, keepdim).values, [b])
    ints = RNG.integers(0, 3, (4, 7))
    _same(ds.mode(ds.tensor(ints), dim).indices, torch.mode(torch.tensor(ints), dim).indices)
    assert type(ours).__name__ == "mode" and ours._fields == ("values", "indices")


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_nanmedian_ignores_nans_like_torch(check_op, dim, keepdim):
    b = RNG.permutation(28).reshape(4, 7).astype(np.float64)  # distinct: torch's choice among ties is unspecified
    b[0, 1] = b[1, 3] = b[1, 4] = nan
    ours, theirs = (
        ds.nanmedian(ds.tensor(b, dtype=ds.float64), dim, keepdim),
        torch.nanmedian(torch.tensor(b), dim, keepdim),
    )
    _same(ours.values, theirs.values)
    _same(ours.indices, theirs.indices)
    check_op(lambda t: t.nanmedian(dim, keepdim).values, lambda t: t.nanmedian(dim, keepdim).values, [b])
    check_op(lambda t: t.nanmedian(), lambda t: t.nanmedian(), [b])
    assert np.isnan(ds.nanmedian(ds.tensor([nan, nan])).item()) and np.isnan(ds.nanmedian(ds.zeros(0)).item())


@pytest.mark.parametrize(
    ("seq", "values", "options"),
    [
        ([1, 3, 5, 7], [[3, 6, 9], [3, 6, 9]], {}),
        ([[1, 3, 5, 7], [2, 4, 6, 8]], [[3, 6, 9], [3, 6, 9]], {"right": True}),
        ([1.0, 3.0, 5.0], [3.0, 0.0, 9.0], {"side": "right"}),
        ([1.0, 3.0], [3.0], {"out_int32": True}),
    ],
)
def test_searchsorted_matches_torch(seq, values, options):
    _same(
        ds.searchsorted(ds.tensor(seq), ds.tensor(values), **options),
        torch.searchsorted(torch.tensor(seq), torch.tensor(values), **options),
    )


def test_searchsorted_with_a_sorter_a_number_and_bucketize_match_torch():
    _same(
        ds.searchsorted(ds.tensor([7, 1, 5, 3]), ds.tensor([3]), sorter=ds.tensor([1, 3, 2, 0])),
        torch.searchsorted(torch.tensor([7, 1, 5, 3]), torch.tensor([3]), sorter=torch.tensor([1, 3, 2, 0])),
    )
    _same(
        ds.searchsorted(ds.tensor([1, 3, 5]), 3, side="right"),
        torch.searchsorted(torch.tensor([1, 3, 5]), 3, side="right"),
    )
    for right in (False, True):
        _same(
            ds.bucketize(ds.tensor([[1, 5], [7, 9]]), ds.tensor([1, 5, 7]), right=right),
            torch.bucketize(torch.tensor([[1, 5], [7, 9]]), torch.tensor([1, 5, 7]), right=right),
        )


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ds.searchsorted(ds.tensor([1, 3]), 3, side="left", right=True), ArgumentError),
        (lambda: ds.searchsorted(ds.tensor([1, 3]), 3, side="middle"), ArgumentError),
        (lambda: ds.searchsorted(ds.tensor(1.0), ds.tensor([3.0])), ShapeError),
        (lambda: ds.searchsorted(ds.tensor([[1, 3], [2, 4]]), ds.tensor([3])), ShapeError),
        (lambda: ds.searchsorted(ds.tensor([1, 3]), ds.tensor([3]), sorter=ds.tensor([0, 5])), OutOfRangeError),
        (lambda: ds.bucketize(ds.tensor([1]), ds.tensor([[1, 5]])), ShapeError),
    ],
)
def test_searchsorted_refuses_bad_arguments(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize(
    "options", [{}, {"return_inverse": True}, {"return_counts": True}, {"return_inverse": True, "return_counts": True}]
)
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_unique_consecutive_matches_torch(options, dim):
    data = [[1, 1], [1, 1], [2, 3], [2, 3], [1, 1]]
    ours = ds.unique_consecutive(ds.tensor(data), dim=dim, **options)
    theirs = torch.unique_consecutive(torch.tensor(data), dim=dim, **options)
    for o, t in zip(ours if isinstance(ours, tuple) else [ours], theirs if isinstance(theirs, tuple) else [theirs]):
        _same(o, t)
    flat = ds.unique_consecutive(ds.tensor([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True, return_counts=True)
    tflat = torch.unique_consecutive(torch.tensor([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True, return_counts=True)
    for o, t in zip(flat, tflat):
        _same(o, t)


def test_isin_matches_torch():
    a, b = [[1, 2], [3, 4]], [2, 3]
    _same(ds.isin(ds.tensor(a), ds.tensor(b)), torch.isin(torch.tensor(a), torch.tensor(b)))
    _same(ds.isin(ds.tensor(a), 2, invert=True), torch.isin(torch.tensor(a), 2, invert=True))
    _same(ds.isin(2, ds.tensor(a)), torch.isin(2, torch.tensor(a)))
    _same(
        ds.isin(ds.tensor([nan, 1.0]), ds.tensor([nan, 1.0])),
        torch.isin(torch.tensor([nan, 1.0]), torch.tensor([nan, 1.0])),
    )
    with pytest.raises(ArgumentTypeError):
        ds.isin(1, 2)


@pytest.mark.parametrize(
    ("data", "options"),
    [
        ([1.0, 2.0, 1.0], {"bins": 4, "min": 0, "max": 3}),
        ([0.0, 1.0, 2.0, 3.0, 2.9999999], {"bins": 3}),
        ([1.0, 1.0], {}),
        ([[0.0, 1.0], [2.0, 3.0], [9.0, -1.0]], {"bins": 3, "min": 0, "max": 3}),
        ([], {"bins": 5}),
    ],
)
def test_histc_matches_torch(data, options):
    _same(ds.histc(ds.tensor(data), **options), torch.histc(torch.tensor(data), **options))
    _same(ds.tensor(data, dtype=ds.float64).histc(**options), torch.tensor(data, dtype=torch.float64).histc(**options))


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ds.histc(ds.tensor([1.0, nan])), ArgumentError),
        (lambda: ds.histc(ds.tensor([1, 2])), ArgumentTypeError),
        (lambda: ds.histc(ds.tensor([1.0]), bins=0), ArgumentError),
        (lambda: ds.histc(ds.tensor([1.0]), bins=3, min=3, max=1), ArgumentError),
        (lambda: ds.histc(ds.tensor([1.0]), bins=3, min=0, max=float("inf")), ArgumentError),
    ],
)
def test_histc_refuses_bad_arguments(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("options", [{}, {"dim": 1}, {"dim": 1, "correction": 0, "keepdim": True}, {"unbiased": False}])
@pytest.mark.parametrize("name", ["std_mean", "var_mean"])
def test_std_mean_and_var_mean_match_torch(options, name):
    y = RNG.standard_normal((3, 4))
    x, t = ds.tensor(y, dtype=ds.float64, requires_grad=True), torch.tensor(y, requires_grad=True)
    ours, theirs = getattr(ds, name)(x, **options), getattr(torch, name)(t, **options)
    for o, r in zip(ours, theirs):
        np.testing.assert_allclose(o.detach().numpy(), r.detach().numpy(), rtol=1e-12)
    (ours[0].sum() + 2 * ours[1].sum()).backward()
    (theirs[0].sum() + 2 * theirs[1].sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    for o, r in zip(
        getattr(ds, name)(ds.tensor(y), False), getattr(torch, name)(torch.tensor(y, dtype=torch.float32), False)
    ):
        np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=1e-6)
    with pytest.raises(ArgumentTypeError):
        getattr(ds, name)(ds.tensor([1, 2]))


def test_cov_and_corrcoef_match_torch_with_weights(check_op):
    x = np.array([[1.0, 2.0, 4.0], [0.0, 3.0, 9.5]])
    w = np.array([0.5, 1.0, 2.0])
    check_op(lambda t: ds.cov(t), lambda t: torch.cov(t), [x])
    check_op(lambda t: t[0].cov(), lambda t: t[0].cov(), [x])
    check_op(
        lambda t, a: ds.cov(t, fweights=ds.tensor([1, 2, 1]), aweights=a),
        lambda t, a: torch.cov(t, fweights=torch.tensor([1, 2, 1]), aweights=a),
        [x, w],
    )
    check_op(
        lambda t, a: ds.cov(t, correction=0, aweights=a), lambda t, a: torch.cov(t, correction=0, aweights=a), [x, w]
    )
    check_op(lambda t: ds.corrcoef(t), lambda t: torch.corrcoef(t), [RNG.standard_normal((3, 6))])
    check_op(lambda t: t.corrcoef(), lambda t: t.corrcoef(), [x[0]])
    assert ds.cov(ds.tensor([[1, 2, 4]])).dtype == ds.float32
    with pytest.warns(UserWarning, match="degrees of freedom"):
        ds.cov(ds.tensor(x), correction=3)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ds.cov(ds.zeros(2, 2, 2)), ShapeError),
        (lambda: ds.cov(ds.ones(2, 3), fweights=ds.tensor([1.0, 2.0, 1.0])), ArgumentTypeError),
        (lambda: ds.cov(ds.ones(2, 3), fweights=ds.tensor([1, 2])), ShapeError),
        (lambda: ds.cov(ds.ones(2, 3), fweights=ds.tensor([1, -2, 1])), ArgumentError),
        (lambda: ds.cov(ds.ones(2, 3), aweights=ds.tensor([1, 2, 1])), ArgumentTypeError),
        (lambda: ds.cov(ds.ones(2), aweights=ds.tensor([0.0, 0.0])), ArgumentError),
    ],
)
def test_cov_refuses_bad_weights(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("name", ["trapezoid", "trapz", "cumulative_trapezoid"])
def test_trapezoid_and_cumulative_trapezoid_match_torch(check_op, dim, name):
    y = RNG.standard_normal((3, 4))
    ours, theirs = getattr(ds, name), getattr(torch, name)
    check_op(lambda t: ours(t, dim=dim), lambda t: theirs(t, dim=dim), [y])
    check_op(lambda t: ours(t, dx=0.3, dim=dim), lambda t: theirs(t, dx=0.3, dim=dim), [y])
    xs = np.cumsum(np.abs(RNG.standard_normal(y.shape[dim])))
    check_op(lambda t, s: ours(t, s, dim=dim), lambda t, s: theirs(t, s, dim=dim), [y, xs])
    check_op(lambda t, s: ours(t, s, dim=dim), lambda t, s: theirs(t, s, dim=dim), [y, np.cumsum(np.abs(y), dim)])
    _same(ds.trapezoid(ds.tensor([1, 2, 4])), torch.trapezoid(torch.tensor([1, 2, 4])))
    _same(ds.trapezoid(ds.zeros(2, 0)), torch.trapezoid(torch.zeros(2, 0)))
    _same(ds.cumulative_trapezoid(ds.zeros(0)), torch.cumulative_trapezoid(torch.zeros(0)))
    with pytest.raises(ShapeError):
        ds.trapezoid(ds.tensor([1.0, 2.0, 4.0]), ds.tensor([0.0, 1.0]))
    with pytest.raises(ArgumentTypeError):
        ds.trapezoid(ds.tensor([True, False]))


@pytest.mark.parametrize("p", [2, 1, 3.5, float("inf")])
def test_dist_and_renorm_match_torch(check_op, p):
    y = RNG.standard_normal((3, 4))
    check_op(lambda a, b: ds.dist(a, b, p), lambda a, b: torch.dist(a, b, p), [y, y[::-1].copy()])
    check_op(lambda a: a.renorm(p, 1, 1.2), lambda a: a.renorm(p, 1, 1.2), [y])
    check_op(lambda a: ds.renorm(a, p, 0, 0.5), lambda a: torch.renorm(a, p, 0, 0.5), [y])
    z = ds.tensor(y)
    z.renorm_(p, 0, 1.0)
    np.testing.assert_allclose(z.numpy(), torch.tensor(y, dtype=torch.float32).renorm(p, 0, 1.0).numpy(), rtol=1e-6)


def test_renorm_and_dist_refuse_bad_arguments():
    for call, error in [
        (lambda: ds.renorm(ds.ones(3), 1, 0, 5), ShapeError),
        (lambda: ds.renorm(ds.ones(2, 3), -1, 0, 5), ArgumentError),
        (lambda: ds.renorm(ds.ones(2, 3), 1, 0, -5), ArgumentError),
        (lambda: ds.dist(ds.tensor([1, 2]), ds.tensor([3, 4])), ArgumentTypeError),
    ]:
        with pytest.raises(error):
            call()


def test_quantile_gradients_hold_under_create_graph():
    x = ds.tensor([3.0, 1.0, 4.0, 1.5, 9.0], dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad(ds.quantile(x, 0.3) ** 2, x, create_graph=True)
    t = torch.tensor([3.0, 1.0, 4.0, 1.5, 9.0], dtype=torch.float64, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.quantile(t, 0.3) ** 2, t, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
