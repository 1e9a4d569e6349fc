"""Edge cases a differential fuzzer against torch found: empty dims in prod's gradient and in
gather/scatter, 0-d tensors in masked_scatter/index_fill, rounded division's (zero) gradient,
nansum into an integer dtype, and integer division by a zero divisor with an empty result."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _both(fn):
    return fn(torch), fn(ds)


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((1, 0), {"dim": -1, "keepdim": True}),
        ((2, 0), {"dim": 1}),
        ((3, 0, 2), {"dim": 1}),
        ((3, 0, 2), {"dim": 1, "keepdim": True}),
        ((0, 3), {"dim": 0, "keepdim": True}),
        ((2, 0), {}),
    ],
)
def test_prod_backward_over_an_empty_dim_gives_an_empty_gradient(shape, kw):
    def run(lib):
        a = lib.zeros(*shape, dtype=lib.float64).requires_grad_()
        out = lib.prod(a, **kw)
        (out * 2).sum().backward()
        return out.detach().numpy(), tuple(a.grad.shape)

    (t_out, t_shape), (d_out, d_shape) = _both(run)
    np.testing.assert_array_equal(d_out, t_out)
    assert d_shape == t_shape


def test_prod_backward_nonempty_still_matches_torch():
    data = np.array([[1.5, 0.0, -2.0], [3.0, 0.5, 4.0]])

    def run(lib):
        a = lib.tensor(data, requires_grad=True)
        lib.prod(a, 1, keepdim=True).sum().backward()
        return a.grad.numpy()

    t, d = _both(run)
    np.testing.assert_allclose(d, t, rtol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.gather(L.zeros(0), 0, L.zeros(0, dtype=L.int64)),
        lambda L: L.gather(L.zeros(2, 0), 1, L.zeros(2, 0, dtype=L.int64)),
        lambda L: L.zeros(0).scatter(0, L.zeros(0, dtype=L.int64), L.zeros(0)),
        lambda L: L.zeros(0, 3).scatter_add(0, L.zeros(0, 3, dtype=L.int64), L.zeros(0, 3)),
        lambda L: L.zeros(0).scatter_reduce(0, L.zeros(0, dtype=L.int64), L.zeros(0), "amax"),
        lambda L: L.zeros(0).scatter(0, L.zeros(0, dtype=L.int64), 2.0, reduce="multiply"),
    ],
)
def test_empty_index_into_an_empty_dim_gives_the_empty_result(call):
    t, d = _both(call)
    assert tuple(d.shape) == tuple(t.shape)


def test_index_out_of_range_of_an_empty_dim_is_still_refused():
    with pytest.raises(IndexError):
        ds.gather(ds.zeros(0), 0, ds.zeros(1, dtype=ds.int64))
    with pytest.raises(IndexError):
        ds.zeros(0).scatter(0, ds.zeros(1, dtype=ds.int64), ds.ones(1))


def test_masked_scatter_on_a_zero_dim_tensor():
    for mask in (True, False):
        t, d = _both(lambda L, m=mask: L.tensor(1.0).masked_scatter(L.tensor(m), L.tensor([5.0, 6.0])))
        assert d.shape == () and d.item() == t.item()


def test_index_fill_on_a_zero_dim_tensor():
    t, d = _both(lambda L: L.tensor(2.0).index_fill(0, L.tensor([0]), -7.0))
    assert d.shape == () and d.item() == t.item()
    a = ds.tensor(2.0)
    a.index_fill_(-1, ds.tensor([0]), -7.0)
    assert a.shape == () and a.item() == -7.0
    with pytest.raises(IndexError):
        ds.tensor(2.0).index_fill(0, ds.tensor([1]), -7.0)


@pytest.mark.parametrize("mode", ["trunc", "floor"])
@pytest.mark.parametrize("divisor_is_tensor", [False, True])
def test_rounded_div_is_recorded_with_a_zero_gradient(mode, divisor_is_tensor):
    def run(lib):
        x = lib.tensor([1.5, -2.3, 4.0], requires_grad=True)
        s = lib.tensor([2.0, 1.5, -3.0], requires_grad=True) if divisor_is_tensor else 1.5
        y = lib.div(x, s, rounding_mode=mode)
        y.sum().backward()
        grads = (x.grad.numpy(), s.grad.numpy() if divisor_is_tensor else None)
        return y.requires_grad, y.detach().numpy(), grads

    (t_req, t_val, t_grads), (d_req, d_val, d_grads) = _both(run)
    assert d_req == t_req
    np.testing.assert_array_equal(d_val, t_val)
    for tg, dg in zip(t_grads, d_grads):
        if tg is not None:
            np.testing.assert_array_equal(dg, tg)


def test_rounded_div_of_integers_and_float16_keeps_torch_values():
    ints = np.array([7, -7, 5, -9])
    for mode in ("trunc", "floor"):
        t, d = _both(lambda L, m=mode: L.div(L.from_numpy(ints), 2, rounding_mode=m))
        np.testing.assert_array_equal(d.numpy(), t.numpy())
        assert d.requires_grad is False
    h = np.array([1.5, -2.3, 4.0], dtype=np.float16)
    for mode in ("trunc", "floor"):

        def run(L, m=mode):
            x = L.from_numpy(h.copy()).requires_grad_()
            y = L.div(x, 0.7, rounding_mode=m)
            y.float().sum().backward()
            return y.detach().numpy(), x.grad.numpy()

        (tv, tg), (dv, dg) = _both(run)
        np.testing.assert_array_equal(dv, tv)
        np.testing.assert_array_equal(dg, tg)


def test_nansum_into_an_integer_dtype_drops_nans_first():
    a = np.array([[1.5, np.nan, 2.7], [4.0, -1.2, 3.0]])
    for kw in ({"dim": 1, "dtype": "int64"}, {"dtype": "int32"}, {"dim": 0, "dtype": "int16"}):

        def run(L, kw=kw):
            return L.nansum(L.from_numpy(a.copy()), **{**kw, "dtype": getattr(L, kw["dtype"])}).numpy()

        t, d = _both(run)
        np.testing.assert_array_equal(d, t)
        assert d.dtype == t.dtype


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.zeros(0, 3, dtype=L.int32) % L.tensor(0),
        lambda L: L.zeros(0, dtype=L.int64) // L.tensor(False),
        lambda L: L.remainder(L.zeros(0, dtype=L.int64), L.zeros(0, dtype=L.int64)),
        lambda L: L.fmod(L.zeros(0, 2, dtype=L.int64), L.tensor([0, 1])),
        lambda L: L.div(L.zeros(0, dtype=L.int64), L.tensor(0), rounding_mode="trunc"),
        lambda L: L.div(L.zeros(0, dtype=L.int64), L.tensor(0), rounding_mode="floor"),
    ],
)
def test_integer_division_by_zero_with_an_empty_result_is_empty(call):
    t, d = _both(call)
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]


@pytest.mark.host_only  # the check reads the divisor, which on a device would make the host wait
def test_integer_division_by_zero_with_a_result_is_still_refused():
    with pytest.raises(ZeroDivisionError):
        ds.ones(2, dtype=ds.int64) % ds.tensor(0)
    with pytest.raises(ZeroDivisionError):
        ds.div(ds.ones(2, dtype=ds.int64), 0, rounding_mode="trunc")


_CLAMP_VALUES = np.array([np.nan, -1.0, 0.0, 1.0, 2.0, 0.5, np.inf, -np.inf, 3.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["both", "min", "max"])
def test_clamp_with_tensor_bounds_matches_torch_values_and_gradients(dtype, which):
    # NaN in x or a bound, lo > hi, ties and broadcasting: torch's values and its three gradient rules
    rng = np.random.default_rng(7)
    for shapes in [((4, 5), (5,), (4, 1)), ((4, 5), (4, 5), ()), ((3, 1), (1, 6), (3, 6))]:
        x, lo, hi = (rng.choice(_CLAMP_VALUES, size=s).astype(dtype) for s in shapes)
        lo = lo if which != "max" else None
        hi = hi if which != "min" else None

        def run(L, x=x, lo=lo, hi=hi):
            ts = [None if a is None else L.from_numpy(a.copy()).requires_grad_() for a in (x, lo, hi)]
            y = L.clamp(ts[0], min=ts[1], max=ts[2])
            (y * L.from_numpy(np.arange(1.0, 1.0 + y.numel()).reshape(tuple(y.shape)).astype(dtype))).sum().backward()
            return [y.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None]

        for t, d in zip(*_both(run)):
            np.testing.assert_array_equal(d, t)
            assert d.dtype == t.dtype


def test_clamp_with_integer_tensor_bounds_matches_torch():
    rng = np.random.default_rng(3)
    x, lo, hi = rng.integers(-3, 4, (3, 4)), rng.integers(-3, 4, (4,)), rng.integers(-3, 4, (3, 1))
    t, d = _both(lambda L: L.clamp(L.tensor(x), L.tensor(lo), L.tensor(hi)))
    np.testing.assert_array_equal(d.numpy(), t.numpy())
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]


@pytest.mark.parametrize(
    "indices",
    [
        lambda L: (L.tensor([0, 2, 0, -1, 2]),),  # whole rows, repeats and a negative row
        lambda L: (L.tensor([3, 0, 3]),),
        lambda L: (L.tensor([0, 1, 1]), L.tensor([2, -1, 2])),  # one element per index pair
        lambda L: (L.tensor([[0], [3]]), L.tensor([1, 1, 4])),  # broadcast index arrays
        lambda L: (L.tensor([True, False, True, True]),),  # a mask
    ],
)
def test_index_put_accumulate_matches_torch_values_and_gradients(indices):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 5))

    def run(L):
        idx = indices(L)
        base = L.from_numpy(x.copy()).requires_grad_()
        picked = L.from_numpy(x.copy())[idx]
        values = L.from_numpy(rng.standard_normal(tuple(picked.shape))).requires_grad_()
        out = base.index_put(idx, values, accumulate=True)
        (out * L.from_numpy(np.arange(20.0).reshape(4, 5))).sum().backward()
        return out.detach().numpy(), base.grad.numpy(), values.grad.numpy()

    rng_state = rng.bit_generator.state
    t = run(torch)
    rng.bit_generator.state = rng_state
    d = run(ds)
    for a, b in zip(t, d):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_index_put_accumulate_out_of_range_is_refused():
    with pytest.raises(IndexError):
        ds.zeros(3, 2).index_put_((ds.tensor([0, 3]),), ds.ones(2, 2), accumulate=True)


@pytest.mark.parametrize(
    ("shape", "shifts", "dims"),
    [((5,), 3, 0), ((5,), -7, 0), ((4, 6), (1, -2), (0, 1)), ((4, 6), (3, 3), (1, 1)), ((0, 3), 2, 0)]
    + [((2, 3, 4), 5, None), ((3, 4), 4, 1), ((3, 4), 0, 0), ((), 1, None)],
)
def test_roll_matches_torch_values_and_gradients(shape, shifts, dims):
    x = np.random.default_rng(2).standard_normal(shape)

    def run(L):
        t = L.from_numpy(x.copy()).requires_grad_()
        y = L.roll(t, shifts, dims) if dims is not None else L.roll(t, shifts)
        y.backward(L.from_numpy(np.arange(float(y.numel())).reshape(tuple(y.shape))))
        return y.detach().numpy(), t.grad.numpy()

    for a, b in zip(*_both(run)):
        np.testing.assert_array_equal(b, a)


def test_roll_double_backward_matches_torch():
    x = np.random.default_rng(2).standard_normal((3, 4))

    def run(L):
        t = L.from_numpy(x.copy()).requires_grad_()
        (g,) = L.autograd.grad((L.roll(t, (1, 2), (0, 1)) ** 3).sum(), t, create_graph=True)
        return L.autograd.grad((L.roll(g, 1, 1) * t).sum(), t)[0].numpy()

    t, d = _both(run)
    np.testing.assert_allclose(d, t, rtol=1e-12)


@pytest.mark.parametrize("fn", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (2, 3, 5), (0, 3), (1, 1)])
@pytest.mark.parametrize("diagonal", [-7, -1, 0, 2, 9])
def test_tril_triu_match_torch_with_nan_inf_and_integers(fn, shape, diagonal):
    x = np.random.default_rng(4).standard_normal(shape)
    if x.size:
        x.flat[0], x.flat[-1] = np.nan, np.inf

    def run(L):
        t = L.from_numpy(x.copy()).requires_grad_()
        y = getattr(L, fn)(t, diagonal)
        y.backward(L.from_numpy(np.arange(1.0, 1.0 + y.numel()).reshape(tuple(y.shape))))
        ints = getattr(L, fn)(L.from_numpy(np.arange(x.size).reshape(shape)), diagonal)
        flags = getattr(L, fn)(L.from_numpy(x > 0), diagonal)
        return y.detach().numpy(), t.grad.numpy(), ints.numpy(), flags.numpy()

    for a, b in zip(*_both(run)):
        np.testing.assert_array_equal(b, a)
        assert b.dtype == a.dtype


@pytest.mark.host_only  # torch's index among ties is reproduced on the host only (kthvalue's docstring)
@pytest.mark.parametrize("kind", ["ties", "nan", "int", "normal"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median_and_kthvalue_along_a_dim_match_torch_indices_and_gradients(kind, keepdim):
    rng = np.random.default_rng(9)
    for trial in range(12):
        shape = [(7,), (5, 9), (3, 4, 6), (6, 1)][trial % 4]
        if kind == "ties":
            x = rng.integers(-2, 3, shape).astype(np.float32)
        elif kind == "nan":
            x = rng.choice([np.nan, 0.0, -0.0, 1.0, 2.0], shape)
        elif kind == "int":
            x = rng.integers(-3, 3, shape)
        else:
            x = rng.standard_normal(shape)
        d = int(rng.integers(0, len(shape)))
        k = int(rng.integers(1, shape[d] + 1))
        for op in ("median", "kthvalue"):

            def run(L, x=x, d=d, k=k, op=op):
                t = L.from_numpy(x.copy())
                if x.dtype.kind == "f":
                    t.requires_grad_()
                res = L.median(t, d, keepdim=keepdim) if op == "median" else L.kthvalue(t, k, d, keepdim=keepdim)
                out = [res[0].detach().numpy(), res[1].numpy()]
                if x.dtype.kind == "f":
                    res[0].sum().backward()
                    out.append(t.grad.numpy())
                return out

            for a, b in zip(*_both(run)):
                np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_var_std_match_torch_values_and_gradients_in_float64(op, correction, dim, keepdim):
    x = np.random.default_rng(12).standard_normal((3, 4, 5)) * 3 + 7
    x[1, 2, 3] = x[1, 2, 2]  # a tie changes nothing, but keeps the data honest

    def run(L):
        t = L.from_numpy(x.copy()).requires_grad_()
        y = getattr(L, op)(t, dim=dim, correction=correction, keepdim=keepdim)
        y.backward(L.from_numpy(np.arange(1.0, 1.0 + y.numel()).reshape(tuple(y.shape))))
        return y.detach().numpy(), t.grad.numpy()

    for a, b in zip(*_both(run)):
        assert b.shape == a.shape
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_var_std_of_a_constant_row_and_nan_match_torch():
    x = np.array([[2.0, 2.0, 2.0, 2.0], [1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]])
    for op in ("var", "std"):

        def run(L, op=op):
            t = L.from_numpy(x.copy()).requires_grad_()
            y = getattr(L, op)(t, 1)
            y.sum().backward()
            return y.detach().numpy(), t.grad.numpy()

        for a, b in zip(*_both(run)):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_var_float32_small_and_double_backward_match_torch():
    x = np.random.default_rng(13).standard_normal((8, 16)).astype(np.float32)
    t, d = _both(lambda L: L.from_numpy(x.copy()).var(1).numpy())
    np.testing.assert_allclose(d, t, rtol=1e-6)
    assert d.dtype == np.float32
    x64 = x.astype(np.float64)

    def second(L):
        t = L.from_numpy(x64.copy()).requires_grad_()
        (g,) = L.autograd.grad(t.var(1).sum() + t.std(0, correction=0).sum(), t, create_graph=True)
        return L.autograd.grad((g**2).sum() + (g * t).sum(), t)[0].numpy()

    t2, d2 = _both(second)
    np.testing.assert_allclose(d2, t2, rtol=1e-10, atol=1e-12)
