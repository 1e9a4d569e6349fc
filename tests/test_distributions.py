"""downslope.distributions against torch.distributions: log_prob, entropy, KL and their gradients,
sample shapes and frequencies."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions


def _t(a, **kwargs):
    """A downslope tensor keeping a NumPy array's (or a float's: float64) dtype, as torch.tensor does for arrays."""
    if isinstance(a, float) and "dtype" not in kwargs:
        kwargs["dtype"] = ds.float64
    elif isinstance(a, np.ndarray) and a.dtype.kind == "f" and "dtype" not in kwargs:
        kwargs["dtype"] = a.dtype
    return ds.tensor(a, **kwargs)


def _pair(a: np.ndarray) -> tuple[ds.Tensor, object]:
    return _t(a, requires_grad=True), torch.tensor(a, requires_grad=True)


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


# ------------------------------------------------------------------------------------ special functions
def test_lgamma_digamma_polygamma_erfinv_match_torch_in_float64_with_gradients():
    from downslope.distributions import _special as S

    x = np.concatenate([np.linspace(-4.7, 0.45, 23), np.geomspace(1e-4, 1e4, 40)])
    cases = [
        (S.lgamma, torch.lgamma),
        (S.digamma, torch.digamma),
        (lambda t: S.polygamma(1, t), lambda t: torch.polygamma(1, t)),
    ]
    for ours_fn, torch_fn in cases:
        a, b = _pair(x)
        ours, theirs = ours_fn(a), torch_fn(b)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-12)
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-12)
    y = np.linspace(-0.999, 0.999, 41)
    a, b = _pair(y)
    ours, theirs = S.erfinv(a), torch.erfinv(b)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8)


# ------------------------------------------------------------------------------ univariate, against torch
R = np.random.default_rng(10)
_POS = lambda *s: R.uniform(0.5, 2.5, s)  # noqa: E731
_REAL = lambda *s: R.normal(size=s)  # noqa: E731

# name, parameters (broadcasting shapes), value, methods beyond log_prob/mean/variance
UNIVARIATE = [
    ("Normal", {"loc": _REAL(3, 1), "scale": _POS(4)}, _REAL(3, 4), ["entropy", "cdf", "icdf", "mode", "stddev"]),
    ("Uniform", {"low": _REAL(3, 1) - 3, "high": _POS(4) + 1}, R.uniform(-1, 1, (3, 4)), ["entropy", "cdf", "icdf"]),
    ("Exponential", {"rate": _POS(2, 3)}, _POS(5, 2, 3), ["entropy", "cdf", "icdf", "mode", "stddev"]),
    ("Laplace", {"loc": _REAL(4), "scale": _POS(2, 1)}, _REAL(2, 4), ["entropy", "cdf", "icdf", "mode", "stddev"]),
    ("Cauchy", {"loc": _REAL(4), "scale": _POS(4)}, _REAL(4), ["entropy", "cdf", "icdf", "mode"]),
    ("Gumbel", {"loc": _REAL(3), "scale": _POS(3)}, _REAL(2, 3), ["entropy", "cdf", "icdf", "mode", "stddev"]),
    ("HalfNormal", {"scale": _POS(3)}, _POS(2, 3), ["entropy", "cdf", "icdf", "mode"]),
    ("LogNormal", {"loc": _REAL(3), "scale": _POS(3)}, _POS(2, 3), ["entropy", "mode", "cdf", "icdf"]),
    ("StudentT", {"df": R.uniform(2.5, 6, 4), "loc": _REAL(4), "scale": _POS(1)}, _REAL(4), ["entropy", "mode"]),
    ("Gamma", {"concentration": _POS(3, 1), "rate": _POS(4)}, _POS(3, 4), ["entropy", "mode"]),
    (
        "Beta",
        {"concentration1": _POS(3) + 1, "concentration0": _POS(2, 1) + 1},
        R.uniform(0.1, 0.9, (2, 3)),
        ["entropy", "mode"],
    ),
    ("Poisson", {"rate": _POS(3) * 3}, R.integers(0, 6, (2, 3)).astype(float), ["mode"]),
    ("Geometric", {"probs": R.uniform(0.2, 0.8, 3)}, R.integers(0, 6, (2, 3)).astype(float), ["entropy", "mode"]),
    ("Bernoulli", {"probs": R.uniform(0.2, 0.8, 3)}, R.integers(0, 2, (2, 3)).astype(float), ["entropy", "mode"]),
]


def _build(name, params, lib):
    made = {
        k: (_t(v, requires_grad=True) if lib is D else torch.tensor(v, requires_grad=True)) for k, v in params.items()
    }
    return getattr(lib, name)(**made), made


@pytest.mark.parametrize("name,params,value,extra", UNIVARIATE, ids=[u[0] for u in UNIVARIATE])
def test_univariate_formulas_and_gradients_match_torch(name, params, value, extra):
    ours, op = _build(name, params, D)
    theirs, tp = _build(name, params, TD)
    assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)
    a, b = ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, f"{name}.log_prob")
    for prop in ["mean", "variance"] + [m for m in extra if m in ("mode", "stddev")]:
        _close(getattr(ours, prop), getattr(theirs, prop), f"{name}.{prop}")
    loss_ours, loss_theirs = a.sum(), b.sum()
    if "entropy" in extra:
        _close(ours.entropy(), theirs.entropy(), f"{name}.entropy")
        loss_ours, loss_theirs = loss_ours + ours.entropy().sum(), loss_theirs + theirs.entropy().sum()
    if "cdf" in extra:
        c1, c2 = ours.cdf(_t(value)), theirs.cdf(torch.tensor(value))
        _close(c1, c2, f"{name}.cdf")
        q = R.uniform(0.05, 0.95, c2.shape)
        i1, i2 = ours.icdf(_t(q)), theirs.icdf(torch.tensor(q))
        _close(i1, i2, f"{name}.icdf")
        loss_ours, loss_theirs = loss_ours + c1.sum() + i1.sum(), loss_theirs + c2.sum() + i2.sum()
    loss_ours.backward()
    loss_theirs.backward()
    for k in params:
        _close(op[k].grad, tp[k].grad, f"{name}: d/d{k}")


SAMPLED = [
    ("Normal", {"loc": [1.0, -2.0], "scale": [0.5, 3.0]}),
    ("Uniform", {"low": [0.0, -3.0], "high": [1.0, 5.0]}),
    ("Exponential", {"rate": [0.5, 4.0]}),
    ("Laplace", {"loc": [1.0, -1.0], "scale": [0.5, 2.0]}),
    ("Gumbel", {"loc": [1.0, -1.0], "scale": [0.5, 2.0]}),
    ("HalfNormal", {"scale": [0.5, 2.0]}),
    ("LogNormal", {"loc": [0.0, 0.5], "scale": [0.25, 0.5]}),
    ("StudentT", {"df": [5.0, 10.0], "loc": [1.0, 0.0], "scale": [1.0, 2.0]}),
    ("Gamma", {"concentration": [0.5, 4.0], "rate": [1.0, 2.0]}),
    ("Beta", {"concentration1": [0.5, 3.0], "concentration0": [2.0, 3.0]}),
    ("Poisson", {"rate": [0.5, 7.0]}),
    ("Geometric", {"probs": [0.3, 0.8]}),
    ("Binomial", {"total_count": [5.0, 20.0], "probs": [0.3, 0.8]}),
]


@pytest.mark.parametrize("name,params", SAMPLED, ids=[s[0] for s in SAMPLED])
def test_samples_have_the_distributions_mean_and_variance(name, params):
    ds.manual_seed(0)
    dist = getattr(D, name)(**{k: _t(np.array(v)) for k, v in params.items()})
    n = 20000
    draws = dist.sample((n,)).numpy().astype(np.float64)
    assert draws.shape == (n, 2)
    mean, var = dist.mean.numpy(), dist.variance.numpy()
    # the sample mean within 5 standard errors; the sample variance within 10% (heavy tails: StudentT's df=5)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-9)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.1)
    ds.manual_seed(0)
    again = getattr(D, name)(**{k: _t(np.array(v)) for k, v in params.items()}).sample((n,)).numpy()
    np.testing.assert_array_equal(again, draws.astype(again.dtype))


@pytest.mark.parametrize("name,param", [("Gamma", "concentration"), ("Beta", "concentration1"), ("StudentT", "df")])
def test_implicit_reparameterisation_gradients_are_unbiased(name, param):
    ds.manual_seed(1)
    params = {"Gamma": {"concentration": 2.0, "rate": 3.0}, "Beta": {"concentration1": 2.0, "concentration0": 3.0},
              "StudentT": {"df": 10.0, "loc": 0.0, "scale": 1.0}}[name]  # fmt: skip
    t = {k: _t(v, dtype=ds.float64, requires_grad=(k == param)) for k, v in params.items()}
    dist = getattr(D, name)(**t)
    assert dist.has_rsample
    if name == "StudentT":  # d E[x^2] / d df = d (df / (df - 2)) / d df = -2 / (df - 2)^2
        (dist.rsample((40000,)) ** 2).mean().backward()
        expected, tol = -2 / (10.0 - 2) ** 2, 0.1
    else:
        dist.rsample((40000,)).mean().backward()
        c = params[param]
        expected = (
            1 / params["rate"] if name == "Gamma" else params["concentration0"] / (c + params["concentration0"]) ** 2
        )
        tol = 0.03
    np.testing.assert_allclose(float(t[param].grad), expected, rtol=tol)


def test_dirichlet_log_prob_entropy_moments_and_samples_match_torch():
    c = R.uniform(0.5, 3, (2, 4))
    ours, op = _build("Dirichlet", {"concentration": c}, D)
    theirs, tp = _build("Dirichlet", {"concentration": c}, TD)
    assert ours.batch_shape == (2,) and ours.event_shape == (4,)
    value = R.dirichlet(np.ones(4), (3, 2))
    a, b = ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, "log_prob")
    for prop in ("mean", "variance", "mode"):
        _close(getattr(ours, prop), getattr(theirs, prop), prop)
    (a.sum() + ours.entropy().sum()).backward()
    (b.sum() + theirs.entropy().sum()).backward()
    _close(op["concentration"].grad, tp["concentration"].grad, "grad")
    ds.manual_seed(0)
    draws = D.Dirichlet(_t(c)).sample((20000,)).numpy()
    np.testing.assert_allclose(draws.sum(-1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(draws.mean(0), ours.mean.detach().numpy(), atol=0.01)


def test_binomial_log_prob_entropy_mode_match_torch():
    probs = R.uniform(0.1, 0.9, 3)
    ours, op = D.Binomial(8, probs=_t(probs, requires_grad=True)), None
    theirs = TD.Binomial(8, probs=torch.tensor(probs))
    value = R.integers(0, 9, (2, 3)).astype(float)
    _close(ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value)), "log_prob")
    _close(ours.entropy(), theirs.entropy(), "entropy")
    for prop in ("mean", "variance", "mode"):
        _close(getattr(ours, prop), getattr(theirs, prop), prop)
    lg = R.normal(size=3)
    _close(
        D.Binomial(_t([3.0, 5.0, 9.0]), logits=_t(lg)).log_prob(_t([1.0, 5.0, 2.0])),
        TD.Binomial(torch.tensor([3.0, 5.0, 9.0]), logits=torch.tensor(lg)).log_prob(torch.tensor([1.0, 5.0, 2.0])),
        "logits",
    )
    assert op is None


# -------------------------------------------------------------------------------------- multivariate
def _spd(rng, *batch, n=3):
    a = rng.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


@pytest.mark.parametrize("kind", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_matches_torch_with_gradients(kind):
    rng = np.random.default_rng(4)
    loc = rng.normal(size=(2, 1, 3))  # broadcasts against the matrix's batch (4,)
    m = _spd(rng, 4)
    if kind == "scale_tril":
        m = np.linalg.cholesky(m)
    (l1, l2), (m1, m2) = _pair(loc), _pair(m)
    ours, theirs = D.MultivariateNormal(l1, **{kind: m1}), TD.MultivariateNormal(l2, **{kind: m2})
    assert ours.batch_shape == tuple(theirs.batch_shape) == (2, 4) and ours.event_shape == (3,)
    value = rng.normal(size=(5, 2, 4, 3))
    a, b = ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, "log_prob")
    _close(ours.entropy(), theirs.entropy(), "entropy")
    for prop in ("mean", "variance", "covariance_matrix", "precision_matrix", "scale_tril"):
        _close(getattr(ours, prop), getattr(theirs, prop), prop)
    (a.sum() + ours.entropy().sum()).backward()
    (b.sum() + theirs.entropy().sum()).backward()
    _close(l1.grad, l2.grad, "loc grad")
    np.testing.assert_allclose(m1.grad.numpy(), m2.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg="matrix grad")


def test_multivariate_normal_rsample_has_the_covariance_and_trains_through():
    rng = np.random.default_rng(5)
    cov = _spd(rng)
    loc = _t([1.0, -1.0, 0.5], dtype=ds.float64, requires_grad=True)
    ds.manual_seed(0)
    draws = D.MultivariateNormal(loc, covariance_matrix=_t(cov)).rsample((20000,))
    assert draws.shape == (20000, 3)
    np.testing.assert_allclose(np.cov(draws.detach().numpy().T), cov, rtol=0.05, atol=0.1)
    draws.mean().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [1 / 3] * 3)
    assert D.MultivariateNormal(loc, scale_tril=_t(np.eye(3))).expand((2, 5)).sample().shape == (2, 5, 3)


# --------------------------------------------------------------------------------- categorical family
def test_categorical_onehot_and_bernoulli_modes_and_supports_match_torch():
    probs = R.uniform(0.1, 1, (2, 4))
    ours, theirs = D.Categorical(probs=_t(probs)), TD.Categorical(probs=torch.tensor(probs))
    assert ours.mode.tolist() == theirs.mode.tolist()
    assert ours.enumerate_support().tolist() == theirs.enumerate_support().tolist()
    assert tuple(ours.enumerate_support(False).shape) == tuple(theirs.enumerate_support(False).shape)
    oh, toh = D.OneHotCategorical(probs=_t(probs)), TD.OneHotCategorical(probs=torch.tensor(probs))
    assert oh.event_shape == (4,) and oh.batch_shape == (2,)
    _close(oh.mode, toh.mode, "one-hot mode")
    _close(oh.variance, toh.variance, "one-hot variance")
    _close(oh.enumerate_support(), toh.enumerate_support(), "one-hot support")
    value = np.eye(4)[[1, 3]]
    _close(oh.log_prob(_t(value)), toh.log_prob(torch.tensor(value)), "one-hot log_prob")
    _close(oh.entropy(), toh.entropy(), "one-hot entropy")
    ds.manual_seed(0)
    draws = oh.sample((20000,)).numpy()
    assert draws.shape == (20000, 2, 4) and set(np.unique(draws)) == {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(0), ours.probs.numpy(), atol=0.015)
    p = np.array([0.2, 0.5, 0.9])
    b, tb = D.Bernoulli(probs=_t(p)), TD.Bernoulli(probs=torch.tensor(p))
    np.testing.assert_array_equal(b.mode.numpy(), tb.mode.numpy())
    _close(b.enumerate_support(), tb.enumerate_support(), "bernoulli support")


# ------------------------------------------------------------------------------- transformed and mixtures
def test_transformed_distributions_match_torch():
    loc, scale = R.normal(size=3), R.uniform(0.5, 1.5, 3)
    value = R.uniform(-0.9, 0.9, (2, 3))
    for make in (
        lambda lib, l, s: lib.TransformedDistribution(lib.Normal(l, s), [lib.TanhTransform(cache_size=1)]),
        lambda lib, l, s: lib.TransformedDistribution(
            lib.Normal(l, s), [lib.SigmoidTransform(), lib.AffineTransform(-1.0, 2.0)]
        ),
        lambda lib, l, s: lib.TransformedDistribution(
            lib.Normal(l, s), [lib.AffineTransform(0.5, -2.0), lib.TanhTransform()]
        ),
    ):
        (l1, l2), (s1, s2) = _pair(loc), _pair(scale)
        ours, theirs = make(D, l1, s1), make(TD, l2, s2)
        a, b = ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value))
        _close(a, b, "log_prob")
        a.sum().backward()
        b.sum().backward()
        _close(l1.grad, l2.grad, "loc grad")
        _close(s1.grad, s2.grad, "scale grad")
    # SAC: a tanh-squashed action, its log-prob through the cached pre-image, and gradient to the policy
    ds.manual_seed(0)
    l1 = _t(loc, requires_grad=True)
    d = D.TransformedDistribution(D.Normal(l1, _t(scale)), [D.TanhTransform(cache_size=1)])
    action = d.rsample((4,))
    assert np.all(np.abs(action.detach().numpy()) < 1)
    d.log_prob(action).sum().backward()
    assert l1.grad is not None and np.all(np.isfinite(l1.grad.numpy()))
    gauss = D.TransformedDistribution(D.Normal(_t(loc), _t(scale)), [D.AffineTransform(1.0, -2.0)])
    tg = TD.TransformedDistribution(TD.Normal(torch.tensor(loc), torch.tensor(scale)), [TD.AffineTransform(1.0, -2.0)])
    _close(gauss.cdf(_t(value)), tg.cdf(torch.tensor(value)), "decreasing cdf")
    _close(gauss.icdf(_t(value * 0.5 + 0.5)), tg.icdf(torch.tensor(value * 0.5 + 0.5)), "decreasing icdf")


def test_relaxed_distributions_match_torch_and_sample_in_their_supports():
    t, p = _t(0.7, dtype=ds.float64), R.uniform(0.2, 0.8, 3)
    rb, trb = (
        D.RelaxedBernoulli(t, probs=_t(p)),
        TD.RelaxedBernoulli(torch.tensor(0.7, dtype=torch.float64), probs=torch.tensor(p)),
    )
    value = R.uniform(0.05, 0.95, (2, 3))
    _close(rb.log_prob(_t(value)), trb.log_prob(torch.tensor(value)), "relaxed bernoulli")
    lg = R.normal(size=(2, 4))
    l1 = _t(lg, requires_grad=True)
    rc = D.RelaxedOneHotCategorical(t, logits=l1)
    trc = TD.RelaxedOneHotCategorical(torch.tensor(0.7, dtype=torch.float64), logits=torch.tensor(lg))
    v = R.dirichlet(np.ones(4), 2)
    _close(rc.log_prob(_t(v)), trc.log_prob(torch.tensor(v)), "relaxed one-hot")
    ds.manual_seed(0)
    draws = rc.rsample((1000,))
    assert draws.shape == (1000, 2, 4)
    np.testing.assert_allclose(draws.detach().numpy().sum(-1), 1.0, rtol=1e-9)
    draws[..., 0].mean().backward()
    assert l1.grad is not None
    s = rb.rsample((1000,)).numpy()
    assert s.shape == (1000, 3) and np.all((s > 0) & (s < 1))


def test_mixture_same_family_matches_torch():
    w, loc, scale = R.uniform(0.2, 1, (2, 3)), R.normal(size=(2, 3)), R.uniform(0.5, 1.5, (2, 3))
    (w1, w2), (l1, l2) = _pair(w), _pair(loc)
    ours = D.MixtureSameFamily(D.Categorical(probs=w1), D.Normal(l1, _t(scale)))
    theirs = TD.MixtureSameFamily(TD.Categorical(probs=w2), TD.Normal(l2, torch.tensor(scale)))
    assert ours.batch_shape == (2,) and ours.event_shape == ()
    value = R.normal(size=(5, 2))
    a, b = ours.log_prob(_t(value)), theirs.log_prob(torch.tensor(value))
    _close(a, b, "log_prob")
    for prop in ("mean", "variance"):
        _close(getattr(ours, prop), getattr(theirs, prop), prop)
    _close(ours.cdf(_t(value)), theirs.cdf(torch.tensor(value)), "cdf")
    a.sum().backward()
    b.sum().backward()
    _close(w1.grad, w2.grad, "weights grad")
    _close(l1.grad, l2.grad, "loc grad")
    ds.manual_seed(0)
    draws = ours.sample((20000,)).numpy()
    assert draws.shape == (20000, 2)
    np.testing.assert_allclose(draws.mean(0), ours.mean.detach().numpy(), atol=0.05)
    mvn = D.MixtureSameFamily(
        D.Categorical(probs=ds.ones(3)), D.MultivariateNormal(ds.zeros(3, 2), scale_tril=ds.eye(2).expand(3, 2, 2))
    )
    assert mvn.event_shape == (2,) and mvn.sample((4,)).shape == (4, 2) and mvn.log_prob(ds.zeros(4, 2)).shape == (4,)


# ----------------------------------------------------------------------------------------------- KL
def _kl_pairs():
    rng = np.random.default_rng(7)
    pos = lambda *s: rng.uniform(0.5, 2.5, s)  # noqa: E731
    cov_p, cov_q = _spd(rng, 2), _spd(rng, 2)
    return [
        ("Uniform", {"low": -pos(3), "high": pos(3)}, {"low": -pos(3) - 3, "high": pos(3) + 3}),
        ("Exponential", {"rate": pos(3)}, {"rate": pos(3)}),
        ("Laplace", {"loc": rng.normal(size=3), "scale": pos(3)}, {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("Gamma", {"concentration": pos(3), "rate": pos(3)}, {"concentration": pos(3), "rate": pos(3)}),
        (
            "Beta",
            {"concentration1": pos(3), "concentration0": pos(3)},
            {"concentration1": pos(3), "concentration0": pos(3)},
        ),
        ("Dirichlet", {"concentration": pos(2, 4)}, {"concentration": pos(2, 4)}),
        ("Poisson", {"rate": pos(3)}, {"rate": pos(3)}),
        ("LogNormal", {"loc": rng.normal(size=3), "scale": pos(3)}, {"loc": rng.normal(size=3), "scale": pos(3)}),
        ("OneHotCategorical", {"probs": pos(2, 4)}, {"probs": pos(2, 4)}),
        (
            "MultivariateNormal",
            {"loc": rng.normal(size=(2, 3)), "covariance_matrix": cov_p},
            {"loc": rng.normal(size=3), "covariance_matrix": cov_q},
        ),
    ]


@pytest.mark.parametrize("name,p,q", _kl_pairs(), ids=[k[0] for k in _kl_pairs()])
def test_kl_divergence_pairs_match_torch_with_gradients(name, p, q):
    ours_p, op = _build(name, p, D)
    ours_q, oq = _build(name, q, D)
    theirs_p, tp = _build(name, p, TD)
    theirs_q, tq = _build(name, q, TD)
    a, b = D.kl_divergence(ours_p, ours_q), TD.kl_divergence(theirs_p, theirs_q)
    _close(a, b, f"{name} kl")
    a.sum().backward()
    b.sum().backward()
    for k in p:
        _close(op[k].grad, tp[k].grad, f"{name}: d/dp.{k}")
        _close(oq[k].grad, tq[k].grad, f"{name}: d/dq.{k}")


def test_kl_uniform_outside_support_is_infinite():
    kl = D.kl_divergence(D.Uniform(0.0, 2.0), D.Uniform(_t([0.5, -1.0]), _t([3.0, 3.0])))
    assert np.isinf(kl.numpy()[0]) and np.isfinite(kl.numpy()[1])


# ------------------------------------------------------------------------------------------ validate_args
@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: D.Normal(0.0, -1.0), "scale .*GreaterThan\\(lower_bound=0.0\\)"),
        (lambda: D.Exponential(_t([1.0, 0.0])), "rate .*GreaterThan"),
        (lambda: D.Gamma(-1.0, 1.0), "concentration .*GreaterThan"),
        (lambda: D.Beta(1.0, 0.0), "concentration0"),
        (lambda: D.Bernoulli(probs=1.5), "probs .*Interval\\(lower_bound=0.0, upper_bound=1.0\\)"),
        (lambda: D.Categorical(probs=_t([0.5, -0.1])), "probs .*Simplex"),
        (lambda: D.Uniform(1.0, 0.0), "Uniform"),
        (lambda: D.Dirichlet(_t([1.0, -1.0])), "concentration .*IndependentConstraint"),
        (lambda: D.MultivariateNormal(ds.zeros(2), covariance_matrix=_t([[1.0, 2.0], [2.0, 1.0]])), "PositiveDefinite"),
        (lambda: D.MultivariateNormal(ds.zeros(2), scale_tril=_t([[1.0, 1.0], [0.0, 1.0]])), "LowerCholesky"),
        (lambda: D.Poisson(-2.0), "rate .*GreaterThanEq"),
    ],
)
def test_invalid_parameters_raise_naming_distribution_parameter_and_constraint(make, needle):
    with pytest.raises(ds.errors.ArgumentError, match=needle) as info:
        make()
    assert isinstance(info.value, ValueError) and "distribution" in str(info.value)


def test_values_outside_the_support_raise_and_validation_can_be_turned_off():
    with pytest.raises(ValueError, match="support .*GreaterThanEq"):
        D.Exponential(1.0).log_prob(_t(-1.0))
    with pytest.raises(ValueError, match="support .*IntegerInterval"):
        D.Categorical(probs=ds.ones(3)).log_prob(_t(3))
    with pytest.raises(ValueError, match="support .*Boolean"):
        D.Bernoulli(probs=0.5).log_prob(_t(0.5))
    with pytest.raises(ValueError, match="support .*Simplex"):
        D.Dirichlet(ds.ones(3)).log_prob(_t([0.5, 0.6, 0.1]))
    assert np.isnan(D.Normal(0.0, -1.0, validate_args=False).scale.numpy()) == False  # noqa: E712
    with np.errstate(invalid="ignore"):
        assert np.isnan(float(D.Exponential(-1.0, validate_args=False).entropy()))
    D.Distribution.set_default_validate_args(False)
    try:
        D.Normal(0.0, -1.0)
        D.Exponential(1.0).log_prob(_t(-1.0))
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)


def test_expand_broadcasts_parameters_and_samples():
    d = D.Normal(_t([0.0, 1.0]), 1.0).expand((3, 2))
    assert d.batch_shape == (3, 2) and d.sample((4,)).shape == (4, 3, 2)
    g = D.Gamma(2.0, 3.0).expand((5,))
    assert g.batch_shape == (5,) and g.log_prob(ds.ones(5)).shape == (5,)
    c = D.Categorical(logits=ds.zeros(4)).expand((2,))
    assert c.batch_shape == (2,) and c.sample().shape == (2,)


@pytest.mark.parametrize("name", ["Categorical", "Bernoulli", "Geometric", "OneHotCategorical"])
def test_sampling_first_keeps_the_gradient_of_probs_as_torch(name):
    # sample() reads probs without recording; the kept probs must still carry the graph (RL code samples
    # an action, then adds an entropy bonus)
    torch = pytest.importorskip("torch")
    logits = np.array([0.2, -0.4, 1.1])
    grads = []
    for lib in (torch, ds):
        t = (
            lib.tensor(logits, requires_grad=True)
            if lib is torch
            else ds.tensor(logits, dtype=ds.float64, requires_grad=True)
        )
        dist = getattr(lib.distributions, name)(logits=t)
        dist.sample()
        (dist.entropy().sum() + dist.mean.sum()).backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10)


def _lowrank_pair(rng, batch=(2,), n=3, m=2):  # type: ignore[no-untyped-def]
    loc, w, d = rng.normal(size=(*batch, n)), rng.normal(size=(*batch, n, m)), rng.uniform(0.5, 1.5, (*batch, n))
    ours = [_t(a, requires_grad=True) for a in (loc, w, d)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (loc, w, d)]
    return ours, theirs, D.LowRankMultivariateNormal(*ours), TD.LowRankMultivariateNormal(*theirs)


def test_lowrank_multivariate_normal_matches_torch_with_gradients():
    rng = np.random.default_rng(11)
    ours, theirs, p, tp = _lowrank_pair(rng)
    assert p.batch_shape == tuple(tp.batch_shape) and p.event_shape == tuple(tp.event_shape)
    for name in ("covariance_matrix", "precision_matrix", "scale_tril", "variance", "mean", "mode", "stddev"):
        np.testing.assert_allclose(getattr(p, name).detach().numpy(), getattr(tp, name).detach().numpy(), atol=1e-12)
    x = rng.normal(size=(4, 2, 3))
    total = p.log_prob(_t(x)).sum() + p.entropy().sum() + p.precision_matrix.sum() + p.scale_tril.sum()
    ttotal = tp.log_prob(torch.tensor(x)).sum() + tp.entropy().sum() + tp.precision_matrix.sum() + tp.scale_tril.sum()
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-12)
    total.backward()
    ttotal.backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
    ds.manual_seed(0)
    draws = p.rsample((20000,))
    assert draws.shape == (20000, 2, 3)
    np.testing.assert_allclose(
        np.cov(draws.detach().numpy()[:, 0].T), tp.covariance_matrix[0].detach().numpy(), atol=0.1
    )
    draws.sum().backward()  # rsample is differentiable in every parameter
    assert all(a.grad is not None for a in ours)


def test_lowrank_kl_pairs_match_torch():
    rng = np.random.default_rng(12)
    _, _, p, tp = _lowrank_pair(rng)
    qs, tqs, q, tq = _lowrank_pair(rng, batch=(), m=1)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    mvn_loc = _t(rng.normal(size=3), requires_grad=True)
    m = D.MultivariateNormal(mvn_loc, covariance_matrix=_t(cov))
    tm = TD.MultivariateNormal(torch.tensor(mvn_loc.detach().numpy(), requires_grad=True), torch.tensor(cov))
    for ours, theirs in [
        ((p, q), (tp, tq)),
        ((q, p), (tq, tp)),
        ((m, p), (tm, tp)),
        ((p, m), (tp, tm)),
        ((p, p), (tp, tp)),
    ]:
        got, want = D.kl_divergence(*ours), TD.kl_divergence(*theirs)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    D.kl_divergence(p, q).sum().backward()
    TD.kl_divergence(tp, tq).sum().backward()
    for a, b in zip(qs, tqs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="cov_factor"):
        D.LowRankMultivariateNormal(ds.zeros(3), ds.zeros(2, 1), ds.ones(3))


def test_gamma_cdf_and_chi2_match_torch():
    rng = np.random.default_rng(13)
    conc, rate, df = rng.uniform(0.5, 3, 4), rng.uniform(0.5, 2, 4), rng.uniform(0.5, 6, 4)
    x = rng.uniform(0.1, 4, 4)
    (r1, r2), (x1, x2) = _pair(rate), _pair(x)
    got, want = D.Gamma(_t(conc), r1).cdf(x1), TD.Gamma(torch.tensor(conc), r2).cdf(x2)
    _close(got, want, "Gamma.cdf")
    got.sum().backward()
    want.sum().backward()
    _close(r1.grad, r2.grad, "d cdf / d rate")
    _close(x1.grad, x2.grad, "d cdf / d value")
    chi, tchi = D.Chi2(_t(df)), TD.Chi2(torch.tensor(df))
    for name in ("log_prob", "cdf"):
        _close(getattr(chi, name)(_t(x)), getattr(tchi, name)(torch.tensor(x)), f"Chi2.{name}")
    for name in ("mean", "variance", "df"):
        _close(getattr(chi, name), getattr(tchi, name), f"Chi2.{name}")
    _close(chi.entropy(), tchi.entropy(), "Chi2.entropy")
    with pytest.raises(ValueError, match="df"):
        D.Chi2(-1.0)


@pytest.mark.parametrize("name", ["Weibull", "Pareto"])
def test_weibull_and_pareto_match_torch(name: str):
    rng = np.random.default_rng(14)
    a, b = rng.uniform(0.5, 2, 4), rng.uniform(2.5, 4, 4)  # alpha > 2: Pareto's variance is finite
    x = rng.uniform(2.1, 5, 4)
    (a1, a2), (b1, b2) = _pair(a), _pair(b)
    ours, theirs = getattr(D, name)(a1, b1), getattr(TD, name)(a2, b2)
    total = ours.log_prob(_t(x)).sum() + ours.entropy().sum() + ours.cdf(_t(x)).sum() + ours.mean.sum()
    ttotal = theirs.log_prob(torch.tensor(x)).sum() + theirs.entropy().sum() + theirs.cdf(torch.tensor(x)).sum()
    ttotal = ttotal + theirs.mean.sum()
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-10)
    total.backward()
    ttotal.backward()
    _close(a1.grad, a2.grad, f"{name} grad 1")
    _close(b1.grad, b2.grad, f"{name} grad 2")
    for prop in ("variance", "mode"):
        _close(getattr(ours, prop), getattr(theirs, prop), f"{name}.{prop}")
    u = rng.uniform(0.1, 0.9, 4)
    _close(ours.icdf(_t(u)), theirs.icdf(torch.tensor(u)), f"{name}.icdf")
    ds.manual_seed(1)
    draws = ours.rsample((40000,)).detach().numpy()
    np.testing.assert_allclose(np.median(draws, 0), theirs.icdf(torch.tensor(0.5)).detach().numpy(), rtol=0.05)


def test_negative_binomial_and_multinomial_match_torch():
    rng = np.random.default_rng(15)
    n, p, v = rng.uniform(0.5, 4, 4), rng.uniform(0.1, 0.8, 4), np.array([0.0, 1.0, 3.0, 7.0])
    (p1, p2) = _pair(p)
    nb, tnb = D.NegativeBinomial(_t(n), probs=p1), TD.NegativeBinomial(torch.tensor(n), probs=p2)
    got, want = nb.log_prob(_t(v)), tnb.log_prob(torch.tensor(v))
    _close(got, want, "NegativeBinomial.log_prob")
    got.sum().backward()
    want.sum().backward()
    _close(p1.grad, p2.grad, "NegativeBinomial grad")
    for name in ("mean", "variance", "mode"):
        _close(getattr(nb, name), getattr(tnb, name), f"NegativeBinomial.{name}")
    ds.manual_seed(2)
    np.testing.assert_allclose(nb.sample((20000,)).numpy().mean(0), tnb.mean.detach().numpy(), rtol=0.1)
    logits = rng.normal(size=(2, 3))
    (l1, l2) = _pair(logits)
    counts = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 4.0]])
    mn, tmn = D.Multinomial(4, logits=l1), TD.Multinomial(4, logits=l2)
    got, want = mn.log_prob(_t(counts)), tmn.log_prob(torch.tensor(counts))
    _close(got, want, "Multinomial.log_prob")
    got.sum().backward()
    want.sum().backward()
    _close(l1.grad, l2.grad, "Multinomial grad")
    _close(mn.variance, tmn.variance, "Multinomial.variance")
    draws = mn.sample((3000,)).numpy()
    assert draws.shape == (3000, 2, 3) and (draws.sum(-1) == 4).all()
    np.testing.assert_allclose(draws.mean(0), tmn.mean.detach().numpy(), atol=0.1)
    with pytest.raises(ValueError, match="support"):
        mn.log_prob(_t(np.array([5.0, 0.0, 0.0])))


@pytest.mark.parametrize("n", [0, 1, 3, 7])
def test_multinomial_entropy_and_its_gradient_match_torch(n: int) -> None:
    # torch's sum over the support: n H(p) - log n! + sum_i E[log x_i!], x_i ~ Binomial(n, p_i)
    for probs in (np.array([0.2, 0.8]), np.array([[0.1, 0.3, 0.6], [0.0, 0.5, 0.5]]), np.array([1.0, 0.0])):
        p1, p2 = _pair(probs)
        ours, theirs = D.Multinomial(n, probs=p1).entropy(), TD.Multinomial(n, probs=p2).entropy()
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float64
        # torch takes log n! in float32 (lgamma of an integer tensor): agreement to its rounding
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            ours.detach().numpy(), _multinomial_entropy_by_enumeration(n, probs), rtol=1e-10, atol=1e-12
        )
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), rtol=1e-10, atol=1e-12)
    logits = np.random.default_rng(4).normal(size=(2, 3)).astype(np.float32)
    # the float32 run is checked against torch in float64 (torch's own float32 gradient is off by
    # more than ours from the exact value: its float32 rounding, not a reference)
    l1, l2 = _t(logits, requires_grad=True), torch.tensor(logits.astype(np.float64), requires_grad=True)
    ours, theirs = D.Multinomial(n, logits=l1).entropy(), TD.Multinomial(n, logits=l2).entropy()
    assert ours.dtype == np.float32
    _close(ours, theirs, "Multinomial.entropy from logits")
    ours.sum().backward()
    theirs.sum().backward()
    _close(l1.grad, l2.grad, "Multinomial.entropy logits grad")


def _multinomial_entropy_by_enumeration(n: int, probs: np.ndarray) -> np.ndarray:
    """-sum p(x) log p(x) over every count vector x (the definition), per batch row."""
    from itertools import product
    from math import lgamma, log

    rows = probs.reshape(-1, probs.shape[-1])
    out = []
    for p in rows:
        h = 0.0
        for x in product(range(n + 1), repeat=len(p)):
            if sum(x) != n or any(k and q == 0 for k, q in zip(x, p)):
                continue
            logp = lgamma(n + 1) - sum(lgamma(k + 1) for k in x) + sum(k * log(q) for k, q in zip(x, p) if k)
            h -= np.exp(logp) * logp
        out.append(h)
    return np.array(out).reshape(probs.shape[:-1])


def test_constraint_check_returns_a_bool_tensor_like_torch() -> None:
    v = np.array([[0.2, 0.8], [-1.0, 2.0], [0.0, 1.0]])
    C, TC = D.constraints, TD.constraints
    pairs = [(getattr(C, n), getattr(TC, n)) for n in ("real", "positive", "unit_interval", "simplex", "one_hot")]
    pairs += [(C.independent(C.nonnegative, 1), TC.independent(TC.nonnegative, 1))]
    pairs += [(C.integer_interval(0, 2), TC.integer_interval(0, 2))]
    for ours, theirs in pairs:
        got, want = ours.check(ds.tensor(v)), theirs.check(torch.tensor(v))
        assert isinstance(got, ds.Tensor) and got.dtype == np.bool_, ours
        assert got.shape == tuple(want.shape), ours
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert isinstance(D.Gamma(1.0, 1.0).support.check(ds.tensor([1.0])), ds.Tensor)

    class Even(C.Constraint):  # a user's constraint in torch's style: check returns a tensor
        def check(self, value):  # type: ignore[no-untyped-def]
            return value % 2 == 0

    np.testing.assert_array_equal(C.independent(Even(), 1).check(ds.tensor([[2.0, 4.0], [2.0, 3.0]])).numpy(), [1, 0])
    with pytest.raises(ValueError, match="support"):
        D.Multinomial(4, probs=ds.tensor([0.5, 0.5]), validate_args=True).log_prob(ds.tensor([5.0, -1.0]))
