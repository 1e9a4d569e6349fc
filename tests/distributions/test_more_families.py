"""The families, transforms and KL pairs added to match torch.distributions: values, gradients and
shapes in float64 against torch; draws (from downslope's generator) compared by their moments."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import downslope as ds
from downslope import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions


@pytest.fixture(autouse=True)
def _torch_float64():
    # torch's GeneralizedPareto compares with a default-dtype zero, and its Poisson/Binomial take
    # lgamma of integer tensors in the default dtype: compare with float64 as both defaults.
    old, old_ds = torch.get_default_dtype(), ds.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    ds.set_default_dtype(ds.float64)
    yield
    torch.set_default_dtype(old)
    ds.set_default_dtype(old_ds)


def _pd(a, store=None):
    t = ds.tensor(np.asarray(a, np.float64), dtype=ds.float64, requires_grad=True)
    if store is not None:
        store.append(t)
    return t


def _pt(a, store=None):
    t = torch.tensor(np.asarray(a, np.float64), requires_grad=True)
    if store is not None:
        store.append(t)
    return t


def _grads_match(ours, theirs, po, pt, rtol=1e-8):
    go = ds.autograd.grad(ours.sum(), po, allow_unused=True, retain_graph=True)
    gt = torch.autograd.grad(theirs.sum(), pt, allow_unused=True, retain_graph=True)
    for a, b in zip(go, gt):
        np.testing.assert_allclose(
            0.0 if a is None else a.numpy(), 0.0 if b is None else b.numpy(), rtol=rtol, atol=1e-10
        )


FAMILIES = {
    "HalfCauchy": ([[0.5, 2.0]], [0.3, 1.7]),
    "VonMises": ([[0.3, -1.0], [0.5, 4.0]], [0.1, 2.5]),
    "Kumaraswamy": ([[2.0, 0.7], [3.0, 1.5]], [0.3, 0.8]),
    "FisherSnedecor": ([[3.0, 6.0], [5.0, 9.0]], [0.7, 2.0]),
    "ContinuousBernoulli": ([[0.3, 0.4995, 0.9]], [0.2, 0.6, 0.99]),
    "InverseGamma": ([[2.0, 3.5], [3.0, 1.0]], [0.7, 2.0]),
    "GeneralizedPareto": ([[0.0, 0.5], [1.0, 2.0], [0.5, -0.2]], [0.3, 1.7]),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_new_family_values_and_gradients_match_torch(name: str) -> None:
    params, value = FAMILIES[name]
    po, pt = [_pd(p) for p in params], [_pt(p) for p in params]
    ours, theirs = getattr(D, name)(*po), getattr(TD, name)(*pt)
    assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)
    # VonMises: torch's log I0 is a polynomial approximation, ours is exact through i0e
    rtol = 1e-6 if name == "VonMises" else 1e-9
    q = np.linspace(0.2, 0.7, len(value))
    for method in ("log_prob", "cdf", "icdf", "entropy", "mean", "variance", "mode"):
        try:
            if method in ("log_prob", "cdf"):
                a, b = (
                    getattr(ours, method)(ds.tensor(value, dtype=ds.float64)),
                    getattr(theirs, method)(torch.tensor(value)),
                )
            elif method == "icdf":
                a, b = ours.icdf(ds.tensor(q, dtype=ds.float64)), theirs.icdf(torch.tensor(q))
            elif method == "entropy":
                a, b = ours.entropy(), theirs.entropy()
            else:
                a, b = getattr(ours, method), getattr(theirs, method)
        except NotImplementedError:
            continue
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-12, equal_nan=True)
        finite = np.all(np.isfinite(b.detach().numpy()))
        if finite and b.requires_grad and not (name == "InverseGamma" and method == "cdf"):
            _grads_match(a, b, po, pt, rtol=1e-5 if name == "VonMises" else 1e-8)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_new_family_draws_have_torchs_distribution(name: str) -> None:
    params, _ = FAMILIES[name]
    ours = getattr(D, name)(*[ds.tensor(p, dtype=ds.float64) for p in params])
    theirs = getattr(TD, name)(*[torch.tensor(p) for p in params])
    ds.manual_seed(0)
    torch.manual_seed(0)
    a, b = ours.sample((100_000,)).numpy(), theirs.sample((100_000,)).numpy()
    assert a.shape == b.shape and a.dtype == np.float64
    support = ours.support
    assert bool(support.check(ds.tensor(a[:1000])).all())
    # medians exist for all of these (HalfCauchy and FisherSnedecor have heavy tails)
    np.testing.assert_allclose(np.median(a, 0), np.median(b, 0), rtol=0.03, atol=0.02)
    if getattr(ours, "has_rsample", False):
        po = [_pd(p) for p in params]
        ds.autograd.grad(getattr(D, name)(*po).rsample((3,)).sum(), po, allow_unused=True)


def test_von_mises_draws_match_its_circular_moments() -> None:
    loc, kappa = np.array([0.3, -2.5, 3.0]), np.array([0.5, 4.0, 1e-6])
    ds.manual_seed(1)
    x = D.VonMises(ds.tensor(loc, dtype=ds.float64), ds.tensor(kappa, dtype=ds.float64)).sample((100_000,)).numpy()
    assert (np.abs(x) <= np.pi).all()
    from scipy.special import i0e, i1e

    resultant = i1e(kappa) / i0e(kappa)  # E[cos(x - loc)]
    np.testing.assert_allclose(np.cos(x - loc).mean(0), resultant, atol=0.01)
    np.testing.assert_allclose(np.sin(x - loc).mean(0), 0.0, atol=0.01)


def test_logistic_normal_and_lkj_cholesky_match_torch() -> None:
    lo, sc = np.array([[0.1, -0.3], [0.5, 0.2]]), np.array([0.8, 1.3])
    po, pt = [], []
    ours, theirs = D.LogisticNormal(_pd(lo, po), _pd(sc, po)), TD.LogisticNormal(_pt(lo, pt), _pt(sc, pt))
    assert (ours.batch_shape, ours.event_shape) == (tuple(theirs.batch_shape), tuple(theirs.event_shape))
    v = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    a, b = ours.log_prob(ds.tensor(v, dtype=ds.float64)), theirs.log_prob(torch.tensor(v))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)
    _grads_match(a, b, po, pt)
    scalar = D.LogisticNormal(0.0, 1.0)
    assert scalar.batch_shape == () and scalar.event_shape == (2,)
    for dim, conc in ((2, 0.5), (3, np.array([0.5, 2.0])), (4, 1.0)):
        po, pt = [], []
        ours, theirs = D.LKJCholesky(dim, _pd(conc, po)), TD.LKJCholesky(dim, _pt(conc, pt))
        torch.manual_seed(0)
        value = theirs.sample((3,))
        a, b = ours.log_prob(ds.tensor(value.numpy(), dtype=ds.float64)), theirs.log_prob(value)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)
        _grads_match(a, b, po, pt)
        ds.manual_seed(0)
        s = ours.sample((20_000,)).numpy()
        assert s.shape == (20_000, *np.shape(conc), dim, dim)
        assert bool(D.constraints.corr_cholesky.check(ds.tensor(s[:100])).all())
        st = theirs.sample((20_000,)).numpy()
        corr, corr_t = s @ np.swapaxes(s, -1, -2), st @ np.swapaxes(st, -1, -2)
        np.testing.assert_allclose(corr.var(0), corr_t.var(0), atol=0.02)


def test_straight_through_one_hot_and_exponential_family_entropy() -> None:
    lg = np.array([0.1, 1.0, -0.5])
    a, b = _pd(lg), _pt(lg)
    ds.manual_seed(1)
    r = D.OneHotCategoricalStraightThrough(logits=a).rsample((4,))
    assert r.shape == (4, 3) and np.allclose(r.detach().numpy().sum(-1), 1)
    (r * ds.tensor([1.0, 2.0, 3.0], dtype=ds.float64)).sum().backward()
    (TD.OneHotCategoricalStraightThrough(logits=b).rsample((4,)) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10)
    p = np.array([0.2, 0.4995, 0.8])
    cb = D.ContinuousBernoulli(probs=ds.tensor(p, dtype=ds.float64))
    np.testing.assert_allclose(
        D.ExponentialFamily.entropy(cb).detach().numpy(),
        TD.ExponentialFamily.entropy(TD.ContinuousBernoulli(probs=torch.tensor(p))).detach().numpy(),
        rtol=1e-9,
    )


# ---------------------------------------------------------------------------------- transforms
TRANSFORMS = {
    "Softplus": (lambda L: L.SoftplusTransform(), [[-3.0, 0.2, 25.0]]),
    "Power": (lambda L: L.PowerTransform(2.5), [[0.3, 2.0]]),
    "Abs": (lambda L: L.AbsTransform(), [[-0.3, 2.0]]),
    "StickBreaking": (lambda L: L.StickBreakingTransform(), [[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]]),
    "Softmax": (lambda L: L.SoftmaxTransform(), [[0.3, -1.0, 2.0]]),
    "CorrCholesky": (lambda L: L.CorrCholeskyTransform(), [[0.3, -1.0, 2.0], [0.1, 0.5, -0.2]]),
    "LowerCholesky": (lambda L: L.LowerCholeskyTransform(), [[[0.3, -1.0], [2.0, 0.4]]]),
    "PositiveDefinite": (lambda L: L.PositiveDefiniteTransform(), [[[0.3, -1.0], [2.0, 0.4]]]),
    "Independent": (lambda L: L.IndependentTransform(L.ExpTransform(), 1), [[0.3, -1.0, 2.0]]),
    "Reshape": (lambda L: L.ReshapeTransform((4,), (2, 2)), [[0.3, -1.0, 2.0, 0.5]]),
    "Cat": (lambda L: L.CatTransform([L.ExpTransform(), L.SoftplusTransform()], 0, [1, 2]), [0.3, -1.0, 2.0]),
    "CatEvent": (
        lambda L: L.CatTransform([L.IndependentTransform(L.ExpTransform(), 1), L.ExpTransform()], -1, [2, 1]),
        [[0.3, -1.0, 2.0]],
    ),
    "Stack": (lambda L: L.StackTransform([L.ExpTransform(), L.SigmoidTransform()], 1), [[0.3, -1.0], [0.4, 0.2]]),
    "CDF": (lambda L: L.CumulativeDistributionTransform(L.Normal(0.0, 1.0)), [[0.3, -1.0]]),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_new_transforms_match_torch(name: str) -> None:
    make, x = TRANSFORMS[name]
    to, tt = make(D), make(TD)
    xo, xt = _pd(x), _pt(x)
    yo, yt = to(xo), tt(xt)
    np.testing.assert_allclose(yo.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert to.domain.event_dim == tt.domain.event_dim and to.codomain.event_dim == tt.codomain.event_dim
    assert to.bijective == tt.bijective
    assert to.forward_shape(np.shape(x)) == tuple(tt.forward_shape(torch.Size(np.shape(x))))
    assert to.inverse_shape(tuple(yo.shape)) == tuple(tt.inverse_shape(yt.shape))
    try:
        in_codomain = bool(tt.codomain.check(yt.detach()).all())
    except RuntimeError:  # torch's cat constraint cannot check parts of different event dims
        with pytest.raises(ValueError):
            to.codomain.check(yo.detach())
    else:
        assert bool(to.codomain.check(yo.detach()).all()) == in_codomain
    inv_o = to.inv(ds.tensor(yt.detach().numpy(), dtype=ds.float64))
    np.testing.assert_allclose(inv_o.numpy(), tt.inv(yt.detach()).numpy(), rtol=1e-8, atol=1e-10)
    _grads_match(yo, yt, [xo], [xt])
    if tt.bijective:
        lo, lt = to.log_abs_det_jacobian(xo, yo), tt.log_abs_det_jacobian(xt, yt)
        assert tuple(lo.shape) == tuple(lt.shape)
        np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-9, atol=1e-12)
        if lt.requires_grad:
            _grads_match(lo, lt, [xo], [xt])


def test_new_constraints_match_torch() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    mats = [a @ a.T, a + a.T, np.tril(a), np.eye(3), -np.eye(3), rng.normal(size=(3, 2))]
    for name in ("square", "symmetric", "positive_semidefinite", "positive_definite", "lower_triangular"):
        for m in mats:
            ours = getattr(D.constraints, name).check(ds.tensor(m, dtype=ds.float64))
            theirs = getattr(TD.constraints, name).check(torch.tensor(m))
            assert bool(ours.all()) == bool(theirs.all()), (name, m)
    chol = TD.CorrCholeskyTransform()(torch.tensor([0.3, -1.0, 2.0]))
    assert bool(D.constraints.corr_cholesky.check(ds.tensor(chol.numpy(), dtype=ds.float64)))
    assert not bool(D.constraints.corr_cholesky.check(ds.tensor(2 * chol.numpy(), dtype=ds.float64)))
    v = np.array([[0.5, -1.0, 2.0], [0.2, 3.0, 0.1]])
    for lib, P in ((D.constraints, lambda z: ds.tensor(z, dtype=ds.float64)), (TD.constraints, torch.tensor)):
        cat = lib.cat([lib.positive, lib.real], dim=-1, lengths=[2, 1])
        stack = lib.stack([lib.positive, lib.unit_interval], dim=0)
        assert cat.check(P(v)).tolist() == [[True, False, True], [True, True, True]]
        assert stack.check(P(v)).tolist() == [[True, False, True], [True, False, True]]


# ------------------------------------------------------------------------------------------- KL
def _family(lib, name, P):
    return {
        "Normal": lambda: lib.Normal(P([0.3, -0.5]), P([1.2, 0.7])),
        "Laplace": lambda: lib.Laplace(P([0.3, -0.5]), P([1.2, 0.7])),
        "Gumbel": lambda: lib.Gumbel(P([0.3, -0.5]), P([1.2, 0.7])),
        "Cauchy": lambda: lib.Cauchy(P([0.3, -0.5]), P([1.2, 0.7])),
        "Exponential": lambda: lib.Exponential(P([1.5, 0.6])),
        "Gamma": lambda: lib.Gamma(P([2.5, 0.8]), P([1.5, 0.6])),
        "Beta": lambda: lib.Beta(P([2.5, 0.8]), P([1.5, 3.6])),
        "Uniform": lambda: lib.Uniform(P([0.1, 0.2]), P([0.7, 0.9])),
        "UniformWide": lambda: lib.Uniform(P([1.1, -0.2]), P([1.7, 3.9])),
        "UniformAt0": lambda: lib.Uniform(P([0.0, 0.2]), P([1.0, 0.9])),
        "Pareto": lambda: lib.Pareto(P([1.0, 0.4]), P([2.5, 3.6])),
        "ParetoNear0": lambda: lib.Pareto(P([0.05, 0.04]), P([2.5, 3.6])),
        "HalfNormal": lambda: lib.HalfNormal(P([1.2, 0.7])),
        "Geometric": lambda: lib.Geometric(P([0.3, 0.7])),
        "Binomial": lambda: lib.Binomial(P([5.0, 5.0]), P([0.3, 0.7])),
        "Bernoulli": lambda: lib.Bernoulli(P([0.3, 0.7])),
        "Poisson": lambda: lib.Poisson(P([1.3, 0.7])),
        "ContinuousBernoulli": lambda: lib.ContinuousBernoulli(P([0.3, 0.8])),
        "Transformed": lambda: lib.TransformedDistribution(
            lib.Normal(P([0.3, -0.5]), P([1.2, 0.7])), [lib.ExpTransform()]
        ),
    }[name]()


_KL_NAMES = [
    "Normal", "Laplace", "Gumbel", "Cauchy", "Exponential", "Gamma", "Beta", "Uniform", "UniformWide", "UniformAt0", "Pareto",
    "ParetoNear0", "HalfNormal", "Geometric", "Binomial", "Bernoulli", "Poisson", "ContinuousBernoulli", "Transformed",
]  # fmt: skip


def test_kl_registry_covers_torchs_pairs() -> None:
    ours = {(a.__name__, b.__name__) for a, b in D.kl._KL_REGISTRY}
    theirs = {(a.__name__, b.__name__) for a, b in TD.kl._KL_REGISTRY}
    assert theirs <= ours


@pytest.mark.parametrize("p_name", _KL_NAMES)
def test_kl_values_and_gradients_match_torch_for_every_pair(p_name: str) -> None:
    compared = 0
    for q_name in _KL_NAMES:
        po, pt = [], []
        try:
            theirs = TD.kl_divergence(
                _family(TD, p_name, partial(_pt, store=pt)), _family(TD, q_name, partial(_pt, store=pt))
            )
        except NotImplementedError:
            with pytest.raises(NotImplementedError):
                D.kl_divergence(_family(D, p_name, _pd), _family(D, q_name, _pd))
            continue
        ours = D.kl_divergence(_family(D, p_name, partial(_pd, store=po)), _family(D, q_name, partial(_pd, store=po)))
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
        if np.all(np.isfinite(theirs.detach().numpy())):
            _grads_match(ours, theirs, po, pt)
        compared += 1
    assert compared >= 1


def test_kl_cross_family_pairs_the_harness_asked_for() -> None:
    pairs = [("Exponential", "Gamma"), ("Beta", "Uniform"), ("Uniform", "Normal"), ("Gamma", "Normal")]
    pairs += [("Normal", "Gumbel"), ("Normal", "Laplace"), ("Gumbel", "Gumbel"), ("Cauchy", "Cauchy")]
    for p_name, q_name in pairs:
        ours = D.kl_divergence(_family(D, p_name, _pd), _family(D, q_name, _pd))
        theirs = TD.kl_divergence(_family(TD, p_name, _pt), _family(TD, q_name, _pt))
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-9)
