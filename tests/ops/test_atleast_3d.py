"""atleast_1d / atleast_2d / atleast_3d against torch: shapes, call forms, gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

SHAPES = [(), (3,), (2, 3), (2, 3, 4), (1, 2, 3, 2)]
NAMES = ["atleast_1d", "atleast_2d", "atleast_3d"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_values_and_gradients_match_torch(name: str, shape: tuple) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    t = torch.tensor(a, requires_grad=True)
    ref = getattr(torch, name)(t)
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    out = getattr(ds, name)(x)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    w = rng.standard_normal(tuple(ref.shape))
    (ref * torch.tensor(w)).sum().backward()
    (out * ds.tensor(w, dtype=ds.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_a_tensor_with_enough_dims_is_returned_itself_as_torch(name: str) -> None:
    x = ds.ones(2, 3, 4)
    assert getattr(ds, name)(x) is x
    t = torch.ones(2, 3, 4)
    assert getattr(torch, name)(t) is t


@pytest.mark.parametrize("name", NAMES)
def test_call_forms_match_torch(name: str) -> None:
    ours, theirs = getattr(ds, name), getattr(torch, name)
    a, b, c = (np.arange(float(np.prod(s))).reshape(s) for s in [(), (3,), (2, 3)])
    dt = [ds.tensor(v) for v in (a, b, c)]
    tt = [torch.tensor(v, dtype=torch.float32) for v in (a, b, c)]
    for form in (lambda f, xs: f(*xs), lambda f, xs: f(xs), lambda f, xs: f(tuple(xs)), lambda f, xs: f(xs[:1])):
        got, want = form(ours, dt), form(theirs, tt)
        assert isinstance(got, tuple) and isinstance(want, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert ours() == theirs() == ()
    assert isinstance(ours(dt[1]), ds.Tensor) and isinstance(theirs(tt[1]), torch.Tensor)


@pytest.mark.parametrize("name", NAMES)
def test_non_tensors_inside_a_list_are_refused_as_torch(name: str) -> None:
    for bad in ([1.0, 2.0], (ds.ones(2), 1.0)):
        theirs = [torch.ones(2) if isinstance(v, ds.Tensor) else v for v in bad]
        with pytest.raises(TypeError, match="expected Tensor as element"):
            getattr(torch, name)(type(bad)(theirs))
        with pytest.raises(ds.errors.ArgumentTypeError, match=f"{name}: expected a Tensor as element"):
            getattr(ds, name)(bad)
    with pytest.raises(ds.errors.ArgumentTypeError, match="element 1, but got list"):
        getattr(ds, name)(ds.ones(2), [ds.ones(2)])


def test_a_bare_number_is_made_a_tensor_as_the_other_ops_do() -> None:
    # torch refuses a number here; downslope lifts a lone non-tensor argument, as its other ops do
    assert ds.atleast_3d(2.0).shape == (1, 1, 1)
    assert ds.atleast_1d(2.0).tolist() == [2.0]
    assert ds.atleast_3d(np.ones(4, dtype=np.float32)).shape == (1, 4, 1)


def test_second_order_gradients_flow_through_atleast_3d() -> None:
    a = np.random.default_rng(1).standard_normal((2, 3))
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad((ds.atleast_3d(x) ** 3).sum(), [x], create_graph=True)
    (gg,) = ds.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), 6 * a, rtol=1e-12)


def test_atleast_3d_stays_on_the_strict_device() -> None:
    x = ds.tensor(np.arange(3.0), dtype=ds.float64, device="strict", requires_grad=True)
    y = ds.atleast_3d(x)
    (y * y).sum().backward()
    assert y.shape == (1, 3, 1) and str(y.device) == "strict" and str(x.grad.device) == "strict"
    np.testing.assert_array_equal(x.grad.cpu().numpy(), 2 * np.arange(3.0))
