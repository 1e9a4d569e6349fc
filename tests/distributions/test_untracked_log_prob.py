"""The untracked ``log_prob`` of Gamma, Chi2, Beta, Dirichlet, StudentT, Poisson and Binomial
(``distribution.untracked_host``): when nothing requires grad they compute on the arrays, and give the
same bits as their tensor ops (run with a parameter that requires grad), torch's values, and no graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.distributions import continuous, discrete

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)


def _cases(dtype: type, shape: tuple[int, ...]) -> dict[str, tuple[Callable[[Any, Any], Any], np.ndarray]]:
    """name -> (a function of (library, tensor maker) giving the distribution, the value to score)."""
    c, r = (RNG.uniform(0.5, 4.0, shape).astype(dtype) for _ in range(2))
    u = RNG.uniform(0.05, 0.95, shape).astype(dtype)
    k = RNG.integers(0, 10, shape).astype(dtype)
    logits = (RNG.normal(size=shape) * 4).astype(dtype)
    conc = RNG.uniform(0.5, 3.0, shape + (5,)).astype(dtype)
    simplex = RNG.dirichlet(np.ones(5), shape).astype(dtype)
    if shape:  # the edges of xlogy: a zero rate with a zero count, a unit concentration at 0
        r.flat[0], k.flat[0] = 0.0, 0.0
        c.flat[-1] = 1.0
    return {
        "Gamma": (lambda D, T: D.Gamma(T(c), T(r + 0.5)), np.where(c == 1, 0.0, u).astype(dtype)),
        "Chi2": (lambda D, T: D.Chi2(T(c)), u),
        "Beta": (lambda D, T: D.Beta(T(c), T(r + 0.5)), u),
        "Dirichlet": (lambda D, T: D.Dirichlet(T(conc)), simplex),
        "StudentT": (lambda D, T: D.StudentT(T(c), T(u), T(r + 0.5)), k - 4),
        "Poisson": (lambda D, T: D.Poisson(T(r)), k),
        "Binomial": (lambda D, T: D.Binomial(10, probs=T(u)), k),
        "Binomial(logits)": (lambda D, T: D.Binomial(T(np.full(shape, 12.0, dtype)), logits=T(logits)), k),
    }


NAMES = list(_cases(np.float32, (1,)))


def _maker(lib: Any, grad: bool) -> Callable[[np.ndarray], Any]:
    """Tensors of ``lib`` from arrays; with ``grad``, the first one made requires grad."""
    made: list[int] = []

    def make(a: np.ndarray) -> Any:
        wants = grad and not made
        made.append(1)
        t = lib.from_numpy(np.array(a))  # (from_numpy: a 0-d array keeps its dtype)
        return t.requires_grad_(True) if wants else t

    return make


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (1,), (64,), (3, 4)])
def test_untracked_log_prob_is_the_tracked_ones_bits_and_torchs(name: str, dtype: type, shape: tuple) -> None:
    build, value = _cases(dtype, shape)[name]
    fast = build(ds.distributions, _maker(ds, False)).log_prob(ds.from_numpy(np.array(value)))
    tracked = build(ds.distributions, _maker(ds, True)).log_prob(ds.from_numpy(np.array(value)))
    assert not fast.requires_grad and tracked.requires_grad
    assert fast.dtype == tracked.dtype and tuple(fast.shape) == tuple(tracked.shape)
    np.testing.assert_array_equal(fast.numpy(), tracked.detach().numpy())
    theirs = build(torch.distributions, _maker(torch, False)).log_prob(torch.from_numpy(np.array(value))).numpy()
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast.numpy(), theirs, rtol=rtol, atol=rtol)


def test_untracked_log_prob_broadcasts_a_value_against_the_batch() -> None:
    c = ds.tensor(RNG.uniform(0.5, 3.0, 3).astype(np.float32))
    v = ds.tensor(RNG.uniform(0.1, 0.9, (2, 1)).astype(np.float32))
    for d in (ds.distributions.Beta(c, c + 1), ds.distributions.Gamma(c, c + 1)):
        fast = d.log_prob(v)
        tracked = type(d)(*(ds.tensor(p.numpy(), requires_grad=True) for p in (c, c + 1))).log_prob(v)
        assert tuple(fast.shape) == (2, 3)
        np.testing.assert_array_equal(fast.numpy(), tracked.detach().numpy())


def test_untracked_log_prob_skips_the_tensor_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any) -> Any:
        raise AssertionError("the tensor ops ran where nothing requires grad")

    for module in (continuous, discrete):
        monkeypatch.setattr(module, "lgamma", refused)
    x = ds.tensor([0.5, 2.0])
    D = ds.distributions
    for d in (D.Gamma(x, x), D.Beta(x, x), D.StudentT(x)):
        d.log_prob(ds.tensor([0.25, 0.75]))
    for d in (D.Poisson(x), D.Binomial(10, probs=x / 4)):
        d.log_prob(ds.tensor([0.0, 3.0]))
    D.Dirichlet(ds.tensor([[1.0, 2.0, 3.0]])).log_prob(ds.tensor([[0.2, 0.3, 0.5]]))
    with pytest.raises(AssertionError, match="tensor ops ran"):  # a parameter that requires grad: the ops
        D.Gamma(ds.tensor([2.0], requires_grad=True), x[:1]).log_prob(ds.tensor([1.0]))


def test_untracked_log_prob_under_no_grad_and_its_gradient_outside() -> None:
    c = ds.tensor([1.5, 3.0], requires_grad=True)
    v = ds.tensor([0.5, 2.0])
    with ds.no_grad():
        quiet = ds.distributions.Gamma(c, 2.0).log_prob(v)
    assert not quiet.requires_grad
    loud = ds.distributions.Gamma(c, 2.0).log_prob(v)
    np.testing.assert_array_equal(quiet.numpy(), loud.detach().numpy())
    loud.sum().backward()
    t = torch.tensor([1.5, 3.0], requires_grad=True)
    torch.distributions.Gamma(t, 2.0).log_prob(torch.tensor([0.5, 2.0])).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-5)
