"""The fused products (addmm, addmv, addr, baddbmm, addbmm and their in-place forms) with beta or
alpha 0, einsum's sublist form and repeated indices, and trace's dims: values and gradients against
torch in float64."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")

SHAPES = {
    "addmm": ((2, 3), (2, 4), (4, 3)),
    "addmv": ((2,), (2, 4), (4,)),
    "addr": ((2, 3), (2,), (3,)),
    "baddbmm": ((5, 2, 3), (5, 2, 4), (5, 4, 3)),
    "addbmm": ((2, 3), (5, 2, 4), (5, 4, 3)),
}


def _compare(fn_t, fn_d, arrays, seed=0):
    """Values and the gradients of every input of fn against torch's, float64."""
    rng = np.random.default_rng(seed)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    dd = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    out_t, out_d = fn_t(*ts), fn_d(*dd)
    assert tuple(out_t.shape) == tuple(out_d.shape)
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)
    g = rng.standard_normal(tuple(out_t.shape))
    (out_t * torch.tensor(g)).sum().backward()
    (out_d * ds.tensor(g, dtype=ds.float64)).sum().backward()
    for t, d in zip(ts, dd):
        assert d.grad is not None
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("beta, alpha", [(0, 1), (0, 2.5), (0.0, 0.5)])
def test_beta_zero_ignores_nan_and_inf_input(name, beta, alpha):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in SHAPES[name]]
    arrays[0][...] = np.nan
    arrays[0].flat[0] = np.inf
    _compare(
        lambda *t: getattr(torch, name)(*t, beta=beta, alpha=alpha),
        lambda *d: getattr(ds, name)(*d, beta=beta, alpha=alpha),
        arrays,
    )


@pytest.mark.parametrize("name", ["addmm", "addmv", "addbmm"])
def test_alpha_zero_drops_the_product(name):
    # torch's CPU kernels drop it here (BLAS's rule); downslope drops it for every one of the family
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in SHAPES[name]]
    arrays[1].flat[0] = np.nan
    _compare(
        lambda *t: getattr(torch, name)(*t, beta=0.5, alpha=0),
        lambda *d: getattr(ds, name)(*d, beta=0.5, alpha=0),
        arrays,
    )


@pytest.mark.parametrize("name", ["addr", "baddbmm"])
def test_alpha_zero_drops_the_product_everywhere(name):
    x, a, b = (np.ones(s) for s in SHAPES[name])
    a.flat[0] = np.nan
    out = getattr(ds, name)(ds.tensor(x), ds.tensor(a), ds.tensor(b), beta=2, alpha=0)
    np.testing.assert_array_equal(out.numpy(), 2 * np.ones(out.shape))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_general_beta_alpha_match_torch(name):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in SHAPES[name]]
    _compare(
        lambda *t: getattr(torch, name)(*t, beta=0.5, alpha=-2),
        lambda *d: getattr(ds, name)(*d, beta=0.5, alpha=-2),
        arrays,
    )


def test_beta_zero_grad_of_input_is_zeros_not_none():
    x = ds.full((2, 2), float("nan"), dtype=ds.float64, requires_grad=True)
    ds.addmm(x, ds.ones(2, 3, dtype=ds.float64), ds.ones(3, 2, dtype=ds.float64), beta=0).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2)))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_inplace_forms_ignore_the_input_at_beta_zero(name):
    x, a, b = (np.ones(s, dtype=np.float32) for s in SHAPES[name])
    x[...] = np.nan
    ref = torch.tensor(x)
    getattr(ref, name + "_")(torch.tensor(a), torch.tensor(b), beta=0)
    mine = ds.tensor(x)
    assert getattr(mine, name + "_")(ds.tensor(a), ds.tensor(b), beta=0) is mine
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())


def test_toplevel_addmv_inplace_beta_zero():
    x = ds.full((2,), float("nan"))
    ds.addmv_(x, ds.ones(2, 3), ds.ones(3), beta=0)
    np.testing.assert_array_equal(x.numpy(), [3.0, 3.0])


def test_inplace_gradient_flows_through_beta_zero_write():
    base = ds.full((2, 2), float("nan"), dtype=ds.float64, requires_grad=True)
    w = ds.ones(2, 3, dtype=ds.float64, requires_grad=True)
    c = base * 1
    c.addmm_(w, ds.ones(3, 2, dtype=ds.float64), beta=0)
    c.sum().backward()
    np.testing.assert_array_equal(base.grad.numpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 2.0))


def test_input_that_does_not_broadcast_to_the_product_is_refused():
    with pytest.raises(ShapeError, match="addmm"):
        ds.addmm(ds.ones(5), ds.ones(2, 3), ds.ones(3, 2), beta=0)


# ---------------------------------------------------------------------- einsum
A34, B45 = np.random.default_rng(4).standard_normal((3, 4)), np.random.default_rng(5).standard_normal((4, 5))


@pytest.mark.parametrize(
    "args",
    [
        lambda a, b: (a, [0, 1], b, [1, 2], [0, 2]),
        lambda a, b: (a, [30, 1], b, [1, 2]),  # implicit output: 2 ('C') before 30 ('e')
        lambda a, b: (a, [0, 1], b, [1, 2], []),
    ],
)
def test_einsum_sublist_form(args):
    _compare(lambda a, b: torch.einsum(*args(a, b)), lambda a, b: ds.einsum(*args(a, b)), [A34, B45])


def test_einsum_sublist_with_ellipsis():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    args = lambda a, b: (a, [Ellipsis, 0, 1], b, [Ellipsis, 1, 2], [Ellipsis, 0, 2])  # noqa: E731
    _compare(lambda a, b: torch.einsum(*args(a, b)), lambda a, b: ds.einsum(*args(a, b)), [x, y])


@pytest.mark.parametrize(
    "equation, shapes",
    [
        ("ii->i", [(3, 3)]),
        ("ii", [(3, 3)]),
        ("bii->bi", [(2, 3, 3)]),
        ("bii->b", [(2, 3, 3)]),
        ("iij->j", [(3, 3, 4)]),
        ("iii->i", [(3, 3, 3)]),
        ("iji->j", [(3, 4, 3)]),
        ("ij,jj->i", [(3, 3), (3, 3)]),
        ("ii,i->i", [(3, 3), (3,)]),
        ("...ii->...i", [(2, 3, 3)]),
    ],
)
def test_einsum_repeated_index_takes_the_diagonal(equation, shapes):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in shapes]
    _compare(lambda *t: torch.einsum(equation, *t), lambda *d: ds.einsum(equation, *d), arrays)


def test_einsum_repeated_index_double_backward():
    x = ds.tensor(np.random.default_rng(8).standard_normal((3, 3)), dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad((ds.einsum("ii->i", x) ** 3).sum(), x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.diag(6 * np.diag(x.detach().numpy())))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ds.einsum("ii->i", ds.ones(2, 3)), ShapeError, "sizes don't match"),
        (lambda: ds.einsum("ij->ii", ds.ones(2, 2)), ArgumentError, "more than once"),
        (lambda: ds.einsum(ds.ones(2), [60]), ArgumentError, r"\[0, 52\)"),
        (lambda: ds.einsum(ds.ones(2), 0), TypeError, "list of subscripts"),
    ],
)
def test_einsum_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------- trace
@pytest.mark.parametrize("shape", [(2, 2, 2), (3,), ()])
def test_trace_refuses_other_than_a_matrix(shape):
    with pytest.raises(ShapeError, match="trace: expected a matrix"):
        ds.trace(ds.ones(shape))
    with pytest.raises(RuntimeError):
        torch.trace(torch.ones(shape))


def test_trace_of_a_rectangular_matrix():
    _compare(torch.trace, ds.trace, [A34])
