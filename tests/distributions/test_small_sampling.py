"""The direct draws of Gamma, Chi2, StudentT, Beta, Dirichlet, Poisson, Binomial and MultivariateNormal (``distribution.host_floats``):
``sample``, and ``rsample`` when nothing requires grad, compute on the arrays, and must give the same
numbers, and leave the library generator in the same state, as their tensor ops (run with a parameter
that requires grad) or NumPy's array samplers for the same seed; few elements are drawn one NumPy call
each (``draw_per_element``), which must not change a number either."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import backend
from downslope.distributions import distribution
from downslope.errors import ArgumentError

D = ds.distributions
RNG = np.random.default_rng(5)
SHAPES = [(), (1,), (3,), (64,)]
SAMPLE_SHAPES = [(), (2,), (2, 3)]


def _family(name: str, dtype: type, shape: tuple[int, ...]) -> Callable[[bool], Any]:
    """A maker of (the distribution from fixed parameters, its first parameter); with ``grad``, that
    parameter requires grad (so ``rsample`` goes through its tensor ops)."""
    c = RNG.uniform(0.3, 4.0, shape).astype(dtype)
    r = RNG.uniform(0.5, 3.0, shape).astype(dtype)
    x = RNG.normal(size=shape).astype(dtype)
    a = RNG.normal(size=(4, 4))
    cov = (a @ a.T + 4 * np.eye(4)).astype(dtype)
    covs = np.stack([cov, cov + np.eye(4, dtype=dtype)])  # a batch of two factors
    loc = RNG.normal(size=shape + (4,)).astype(dtype)
    conc = RNG.uniform(0.3, 4.0, shape + (3,)).astype(dtype)

    def make(grad: bool) -> Any:
        first = ds.from_numpy(
            np.array({"MultivariateNormal": loc, "MultivariateNormal(batched)": loc, "Dirichlet": conc}.get(name, c))
        )
        if grad:
            first.requires_grad_(True)
        t = ds.from_numpy
        made = {
            "Gamma": lambda: D.Gamma(first, t(r)),
            "Chi2": lambda: D.Chi2(first),
            "StudentT": lambda: D.StudentT(first, t(x), t(r)),
            "Beta": lambda: D.Beta(first, t(r)),
            "Dirichlet": lambda: D.Dirichlet(first),
            "MultivariateNormal": lambda: D.MultivariateNormal(first, covariance_matrix=t(cov)),
            "MultivariateNormal(batched)": lambda: D.MultivariateNormal(
                ds.unsqueeze(first, -2), covariance_matrix=t(covs)
            ),
        }[name]()
        return made, first

    return make


REPARAM = ["Gamma", "Chi2", "StudentT", "Beta", "Dirichlet", "MultivariateNormal", "MultivariateNormal(batched)"]


def _drawn(fn: Callable[[Any], Any], sample_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A seeded draw ``fn(sample_shape)``, and the generator's next draw (so its state after counts too)."""
    ds.manual_seed(2024)
    out = fn(sample_shape)
    return out.detach().numpy().copy(), ds.randn(3, dtype=ds.float64).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", REPARAM)
def test_direct_draws_match_the_tensor_ops(name: str, shape: tuple[int, ...], dtype: type) -> None:
    if name.startswith("MultivariateNormal") and shape == ():
        shape = (1,)
    make = _family(name, dtype, shape)
    plain, tracked = make(False)[0], make(True)[0]
    for sample_shape in SAMPLE_SHAPES:
        want, want_next = _drawn(tracked.rsample, sample_shape)  # the ops (a parameter requires grad)
        for call in ("sample", "rsample"):
            got, got_next = _drawn(getattr(plain, call), sample_shape)
            assert got.dtype == want.dtype == dtype and got.shape == want.shape, (name, call, sample_shape)
            np.testing.assert_array_equal(got, want, err_msg=f"{name}.{call}{sample_shape}")
            np.testing.assert_array_equal(got_next, want_next, err_msg=f"{name}.{call}: generator state after")


@pytest.mark.parametrize("name", REPARAM)
def test_direct_draws_record_nothing_and_rsample_keeps_its_gradient(name: str) -> None:
    make = _family(name, np.float32, (3,))
    d = make(False)[0]
    for call in ("sample", "rsample"):
        out = getattr(d, call)((2,))
        assert not out.requires_grad and out.grad_fn is None
    tracked, leaf = make(True)
    y = tracked.rsample((2,))
    assert y.requires_grad
    y.sum().backward()
    assert leaf.grad is not None and leaf.grad.shape == leaf.shape and np.isfinite(leaf.grad.numpy()).all()
    with ds.no_grad():  # sample() of a tracked distribution: the direct draw, without a graph
        assert not tracked.sample().requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 64])
def test_poisson_sample_matches_numpys_array_sampler(size: int, dtype: type) -> None:
    rate = RNG.uniform(0.0, 30.0, size).astype(dtype)
    rate[: min(size, 1)] = 0.0  # a zero rate draws 0
    d = D.Poisson(ds.from_numpy(rate))
    for sample_shape in SAMPLE_SHAPES:
        got, got_next = _drawn(d.sample, sample_shape)
        ds.manual_seed(2024)
        want = backend.rng().poisson(np.broadcast_to(rate, sample_shape + rate.shape)).astype(dtype)
        want_next = ds.randn(3, dtype=ds.float64).numpy()
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_next, want_next)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 64])
@pytest.mark.parametrize("given", ["probs", "logits"])
def test_binomial_sample_matches_numpys_array_sampler(given: str, size: int, dtype: type) -> None:
    counts = RNG.integers(0, 60, size).astype(dtype)
    probs = RNG.uniform(0.0, 1.0, size).astype(dtype)
    probs[: min(size, 2)] = [0.0, 1.0][: min(size, 2)]  # the edges: no trials succeed, all do
    if given == "probs":
        d = D.Binomial(ds.from_numpy(counts), probs=ds.from_numpy(probs))
    else:
        d = D.Binomial(ds.from_numpy(counts), logits=ds.from_numpy(probs - dtype(0.5)))
    p = d.probs.numpy()
    for sample_shape in SAMPLE_SHAPES:
        got, got_next = _drawn(d.sample, sample_shape)
        ds.manual_seed(2024)
        full = sample_shape + counts.shape
        want = backend.rng().binomial(
            np.broadcast_to(counts, full).astype(np.int64), np.broadcast_to(p, full).astype(np.float64)
        )
        want_next = ds.randn(3, dtype=ds.float64).numpy()
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want.astype(dtype))
        np.testing.assert_array_equal(got_next, want_next)


@pytest.mark.parametrize("size", [1, 8, 9, 30])
def test_per_element_draws_are_numpys_array_draws(size: int) -> None:
    """Both sides of the per-element threshold against NumPy's own array call from the same state."""
    params = RNG.uniform(0.01, 5.0, (size,))
    for method in ("standard_gamma", "poisson"):
        rng = np.random.Generator(np.random.PCG64(7))
        got = distribution.draw_per_element(getattr(rng, method), params, (2, size))
        after = rng.random()
        ref = np.random.Generator(np.random.PCG64(7))
        want = getattr(ref, method)(np.broadcast_to(params, (2, size)))
        assert got.shape == want.shape == (2, size) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        assert after == ref.random()


def test_scalar_parameters_draw_zero_dimensional_tensors() -> None:
    for d in (D.Gamma(2.0, 3.0), D.Chi2(3.0), D.StudentT(3.0), D.Poisson(2.5), D.Binomial(10, probs=0.3)):
        out = d.sample()
        assert out.shape == () and out.dtype == ds.float32, type(d).__name__
        assert d.sample((4,)).shape == (4,)


@pytest.mark.parametrize(
    "d",
    [
        D.Gamma(2.0, 3.0),
        D.StudentT(3.0),
        D.Dirichlet(ds.ones(3)),
        D.Poisson(2.0),
        D.Binomial(4, probs=0.5),
        D.MultivariateNormal(ds.zeros(2), ds.eye(2)),
    ],
    ids=["Gamma", "StudentT", "Dirichlet", "Poisson", "Binomial", "MultivariateNormal"],
)
def test_negative_sample_shape_is_refused_by_name(d: Any) -> None:
    with pytest.raises(
        ArgumentError, match=rf"{type(d).__name__}: expected a sample_shape of non-negative sizes, got \(2, -1\)"
    ):
        d.sample((2, -1))


def test_a_subclass_with_its_own_rsample_samples_from_it() -> None:
    class Shifted(D.Gamma):
        def rsample(self, sample_shape: Any = ()) -> Any:
            return super().rsample(sample_shape) + 100.0

    out = Shifted(ds.tensor([2.0]), ds.tensor([3.0])).sample((5,))
    assert out.shape == (5, 1) and bool((out.numpy() > 100.0).all())
