"""downslope.distributions against torch.distributions: log_prob, entropy, KL and their gradients,
sample shapes and frequencies."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions


def _pair(a: np.ndarray) -> tuple[ds.Tensor, object]:
    return ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _close(ours: ds.Tensor, theirs: object, what: str) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=what)


def test_normal_log_prob_entropy_cdf_and_their_gradients_match_torch():
    rng = np.random.default_rng(0)
    loc, scale = rng.normal(size=(3, 4)).astype(np.float32), rng.uniform(0.5, 2, (4,)).astype(np.float32)
    value = rng.normal(size=(3, 4)).astype(np.float32)
    (l1, l2), (s1, s2) = _pair(loc), _pair(scale)
    for name in ("log_prob", "cdf"):
        ours, theirs = D.Normal(l1, s1), TD.Normal(l2, s2)
        assert ours.batch_shape == tuple(theirs.batch_shape) == (3, 4)
        a, b = getattr(ours, name)(ds.tensor(value)), getattr(theirs, name)(torch.tensor(value))
        _close(a, b, name)
        (a.sum() + ours.entropy().sum()).backward()
        (b.sum() + theirs.entropy().sum()).backward()
        _close(l1.grad, l2.grad, f"{name}: loc grad")
        _close(s1.grad, s2.grad, f"{name}: scale grad")
        for t in (l1, l2, s1, s2):
            t.grad = None
    _close(ours.stddev, theirs.stddev, "stddev")
    _close(ours.variance, theirs.variance, "variance")


def test_normal_rsample_is_loc_plus_scale_times_noise_and_trains_through():
    ds.manual_seed(0)
    loc, scale = ds.tensor([1.0, -2.0], requires_grad=True), ds.tensor([0.5, 3.0], requires_grad=True)
    draws = D.Normal(loc, scale).rsample((20000,))
    assert draws.shape == (20000, 2)
    np.testing.assert_allclose(draws.detach().numpy().mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(draws.detach().numpy().std(0), [0.5, 3.0], rtol=0.03)
    draws[:10].mean().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [0.5, 0.5], rtol=1e-6)  # d mean / d loc
    assert not D.Normal(loc, scale).sample((3,)).requires_grad


@pytest.mark.parametrize("source", ["probs", "logits"])
def test_categorical_log_prob_entropy_and_gradients_match_torch(source):
    rng = np.random.default_rng(1)
    param = (rng.uniform(0.1, 1, (5, 4)) if source == "probs" else rng.normal(size=(5, 4))).astype(np.float32)
    value = rng.integers(0, 4, 5)
    p1, p2 = _pair(param)
    ours, theirs = D.Categorical(**{source: p1}), TD.Categorical(**{source: p2})
    _close(ours.probs, theirs.probs, "probs")
    _close(ours.logits, theirs.logits, "logits")
    a, b = ours.log_prob(ds.tensor(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, "log_prob")
    _close(ours.entropy(), theirs.entropy(), "entropy")
    (a.sum() - ours.entropy().sum()).backward()
    (b.sum() - theirs.entropy().sum()).backward()
    _close(p1.grad, p2.grad, "gradient")
    # a value broadcast against the batch, as REINFORCE code does with one action per row
    _close(
        ours.log_prob(ds.tensor(value[:, None]).expand(5, 5)),
        theirs.log_prob(torch.tensor(value[:, None]).expand(5, 5)),
        "broadcast",
    )


def test_categorical_samples_follow_the_probabilities():
    ds.manual_seed(0)
    probs = ds.tensor([[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]])
    draws = D.Categorical(probs=probs).sample((30000,))
    assert draws.shape == (30000, 2) and draws.dtype == np.int64
    counts = np.stack([np.bincount(draws.numpy()[:, i], minlength=3) / 30000 for i in range(2)])
    np.testing.assert_allclose(counts, [[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], atol=0.01)


@pytest.mark.parametrize("source", ["probs", "logits"])
def test_bernoulli_log_prob_entropy_and_samples_match_torch(source):
    rng = np.random.default_rng(2)
    param = (rng.uniform(0.05, 0.95, (6,)) if source == "probs" else rng.normal(size=(6,))).astype(np.float32)
    value = rng.integers(0, 2, 6).astype(np.float32)
    p1, p2 = _pair(param)
    ours, theirs = D.Bernoulli(**{source: p1}), TD.Bernoulli(**{source: p2})
    a, b = ours.log_prob(ds.tensor(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, "log_prob")
    _close(ours.entropy(), theirs.entropy(), "entropy")
    (a.sum() + ours.entropy().sum()).backward()
    (b.sum() + theirs.entropy().sum()).backward()
    np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), rtol=1e-4, atol=1e-5)
    ds.manual_seed(0)
    draws = D.Bernoulli(probs=ds.tensor([0.2, 0.9])).sample((20000,))
    assert draws.dtype == np.float32
    np.testing.assert_allclose(draws.numpy().mean(0), [0.2, 0.9], atol=0.01)


def test_kl_divergences_and_independent_match_torch():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    c, d = rng.normal(size=(2, 3)).astype(np.float32), rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    ours = D.kl_divergence(D.Normal(ds.tensor(a), ds.tensor(b)), D.Normal(ds.tensor(c), ds.tensor(d)))
    theirs = TD.kl_divergence(TD.Normal(torch.tensor(a), torch.tensor(b)), TD.Normal(torch.tensor(c), torch.tensor(d)))
    _close(ours, theirs, "normal kl")
    ind_ours = D.Independent(D.Normal(ds.tensor(a), ds.tensor(b)), 1)
    ind_theirs = TD.Independent(TD.Normal(torch.tensor(a), torch.tensor(b)), 1)
    assert ind_ours.batch_shape == (2,) and ind_ours.event_shape == (3,)
    _close(ind_ours.log_prob(ds.tensor(c)), ind_theirs.log_prob(torch.tensor(c)), "independent log_prob")
    _close(ind_ours.entropy(), ind_theirs.entropy(), "independent entropy")
    p, q = rng.uniform(0.1, 1, (4, 5)).astype(np.float32), rng.uniform(0.1, 1, (4, 5)).astype(np.float32)
    p[0, 0] = 0.0  # 0 log 0 = 0
    _close(
        D.kl_divergence(D.Categorical(probs=ds.tensor(p)), D.Categorical(probs=ds.tensor(q))),
        TD.kl_divergence(TD.Categorical(probs=torch.tensor(p)), TD.Categorical(probs=torch.tensor(q))),
        "categorical kl",
    )
    x, y = rng.uniform(0.1, 0.9, 5).astype(np.float32), rng.uniform(0.1, 0.9, 5).astype(np.float32)
    _close(
        D.kl_divergence(D.Bernoulli(probs=ds.tensor(x)), D.Bernoulli(probs=ds.tensor(y))),
        TD.kl_divergence(TD.Bernoulli(probs=torch.tensor(x)), TD.Bernoulli(probs=torch.tensor(y))),
        "bernoulli kl",
    )
    with pytest.raises(TypeError, match="no formula"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Bernoulli(probs=0.5))
    with pytest.raises(ValueError, match="either probs or logits"):
        D.Categorical()
