"""ds.poisson, ds.binomial and Tensor.bernoulli: their distributions (drawn from downslope's
generator, so other numbers than torch's), seeding, generator=, dtypes, gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_poisson_distribution_dtype_and_seed() -> None:
    rates = ds.tensor(np.repeat([0.5, 4.0, 30.0], 4000).reshape(3, 4000))
    ds.manual_seed(0)
    draws = ds.poisson(rates)
    assert draws.dtype == ds.float32 and draws.shape == rates.shape
    values = draws.numpy()
    assert (values == np.round(values)).all() and (values >= 0).all()
    np.testing.assert_allclose(values.mean(axis=1), [0.5, 4.0, 30.0], rtol=0.06)
    np.testing.assert_allclose(values.var(axis=1), [0.5, 4.0, 30.0], rtol=0.12)
    ds.manual_seed(0)
    np.testing.assert_array_equal(ds.poisson(rates).numpy(), values)
    assert ds.poisson(ds.tensor([1.0], dtype=ds.float64)).dtype == ds.float64
    assert ds.poisson(ds.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_poisson_generator_keyword() -> None:
    rates = ds.full((50,), 3.0)
    a = ds.poisson(rates, generator=ds.Generator().manual_seed(7))
    b = ds.poisson(rates, generator=ds.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_poisson_gradient_is_zero_as_torch() -> None:
    rates = ds.tensor([1.0, 2.0], requires_grad=True)
    y = ds.poisson(rates)
    assert y.requires_grad
    (y * 3).sum().backward()
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    (torch.poisson(t) * 3).sum().backward()
    np.testing.assert_array_equal(rates.grad.numpy(), t.grad.numpy())


def test_poisson_errors() -> None:
    for bad in (ds.tensor([-1.0]), ds.tensor([float("nan")])):
        with pytest.raises(ds.errors.ArgumentError, match="rate"):
            ds.poisson(bad)
    with pytest.raises(TypeError):
        ds.poisson(ds.tensor([1, 2]))


def test_binomial_distribution_and_edges() -> None:
    ds.manual_seed(1)
    count = ds.tensor(np.repeat([10.0, 50.0], 5000).reshape(2, 5000))
    prob = ds.tensor([[0.3], [0.8]])
    draws = ds.binomial(count, prob).numpy()
    assert draws.dtype == np.float32 and draws.shape == (2, 5000)
    np.testing.assert_allclose(draws.mean(axis=1), [3.0, 40.0], rtol=0.03)
    np.testing.assert_allclose(draws.var(axis=1), [2.1, 8.0], rtol=0.1)
    # torch's sampler: a probability above 1 always succeeds, a negative count draws 0
    assert (
        ds.binomial(ds.tensor([10.0, -1.0]), ds.tensor([1.5, 0.5])).tolist()
        == torch.binomial(torch.tensor([10.0, -1.0]), torch.tensor([1.5, 0.5])).tolist()
    )
    assert not ds.binomial(ds.tensor([3.0], requires_grad=True), ds.tensor([0.5])).requires_grad


def test_binomial_errors() -> None:
    with pytest.raises(TypeError):
        ds.binomial(ds.tensor([10, 5]), ds.tensor([0.5, 0.1]))
    with pytest.raises(TypeError):
        ds.binomial(ds.tensor([10.0]), ds.tensor([0.5], dtype=ds.float64))
    with pytest.raises(ds.ShapeError):
        ds.binomial(ds.ones(3), ds.full((2,), 0.5))


def test_tensor_bernoulli_method() -> None:
    ds.manual_seed(2)
    p = ds.full((20000,), 0.25)
    draws = p.bernoulli()
    assert draws.dtype == ds.float32 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert abs(draws.numpy().mean() - 0.25) < 0.02
    assert abs(ds.zeros(20000).bernoulli(0.75).numpy().mean() - 0.75) < 0.02
    assert ds.tensor([0.0, 1.0]).bernoulli().tolist() == [0.0, 1.0]
    g1, g2 = ds.Generator().manual_seed(3), ds.Generator().manual_seed(3)
    np.testing.assert_array_equal(p.bernoulli(generator=g1).numpy(), p.bernoulli(generator=g2).numpy())
    with pytest.raises(ds.errors.ArgumentError):
        ds.tensor([1.5]).bernoulli()
    with pytest.raises(TypeError):
        ds.tensor([1, 0]).bernoulli()
