"""Transforms' event-dim bookkeeping (ComposeTransform, TransformedDistribution) and the elementwise
fixes (integer values' dtype, stable entropies, Multinomial support, KL errors, sigmoid clamp,
Categorical zero-probability classes), against torch.distributions in float64."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions


def _d(a, grad=False):
    return ds.tensor(np.asarray(a, dtype=np.float64), dtype=ds.float64, requires_grad=grad)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _close(ours, theirs, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(
        np.asarray(ours.detach().numpy() if hasattr(ours, "detach") else ours),
        np.asarray(theirs.detach().numpy() if hasattr(theirs, "detach") else theirs),
        rtol=rtol,
        atol=atol,
    )


def _flows(lib, P):
    """The same compositions in either library (P makes a float64 tensor)."""
    return {
        "affine_ev1_tanh": lambda: lib.ComposeTransform(
            [lib.AffineTransform(P([0.1, 0.2]), P([2.0, 3.0]), event_dim=1), lib.TanhTransform()]
        ),
        "tanh_affine_ev1": lambda: lib.ComposeTransform(
            [lib.TanhTransform(), lib.AffineTransform(P([0.1, 0.2]), P([2.0, -3.0]), event_dim=1)]
        ),
        "exp": lambda: lib.ComposeTransform([lib.ExpTransform()]),
        "nested": lambda: lib.ComposeTransform(
            [lib.ComposeTransform([lib.ExpTransform(), lib.AffineTransform(1.0, 2.0)]), lib.SigmoidTransform()]
        ),
        "stickbreaking": lambda: lib.ComposeTransform([lib.AffineTransform(0.5, 2.0), lib.StickBreakingTransform()]),
        "empty": lambda: lib.ComposeTransform([]),
    }


@pytest.mark.parametrize("name", list(_flows(D, _d)))
def test_compose_transform_domain_codomain_event_dims_match_torch(name: str) -> None:
    ours, theirs = _flows(D, _d)[name](), _flows(TD, _t)[name]()
    assert ours.domain.event_dim == theirs.domain.event_dim
    assert ours.codomain.event_dim == theirs.codomain.event_dim
    assert ours.bijective == theirs.bijective
    assert ours.inv.domain.event_dim == theirs.inv.domain.event_dim
    assert ours.inv.inv is ours
    if ours.domain.event_dim == ours.codomain.event_dim:
        assert ours.event_dim == theirs.event_dim


def test_compose_transform_support_is_the_last_parts_codomain() -> None:
    ours = D.TransformedDistribution(D.Normal(_d(0.0), _d(1.0)), D.ComposeTransform([D.ExpTransform()]))
    theirs = TD.TransformedDistribution(TD.Normal(_t(0.0), _t(1.0)), TD.ComposeTransform([TD.ExpTransform()]))
    for v in (-0.5, 0.5):
        assert bool(ours.support.check(_d(v))) == bool(theirs.support.check(_t(v)))
    assert not bool(ours.support.check(_d(-0.5)))
    with pytest.raises(ValueError, match="support"):
        ours.log_prob(_d(-0.5))


@pytest.mark.parametrize("rows", [2, 3, 1])
def test_flow_with_an_event_dim_1_part_log_prob_and_gradients_match_torch(rows: int) -> None:
    """Independent Normal through Compose([Affine(event_dim=1), Tanh]): the Tanh term must be summed
    over the event, for any number of rows (rows == event size was silently wrong before)."""
    rng = np.random.default_rng(rows)
    loc, scale, aloc, ascale = rng.normal(size=2), rng.uniform(0.5, 2, 2), rng.normal(size=2), rng.uniform(0.5, 2, 2)
    value = np.tanh(rng.normal(size=(rows, 2)))
    ours_p = [_d(a, True) for a in (loc, scale, aloc, ascale)]
    theirs_p = [_t(a, True) for a in (loc, scale, aloc, ascale)]

    def build(lib, p):
        base = lib.Independent(lib.Normal(p[0], p[1]), 1)
        return lib.TransformedDistribution(
            base, lib.ComposeTransform([lib.AffineTransform(p[2], p[3], event_dim=1), lib.TanhTransform()])
        )

    ours, theirs = build(D, ours_p), build(TD, theirs_p)
    assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)
    lo, lt = ours.log_prob(_d(value)), theirs.log_prob(_t(value))
    assert tuple(lo.shape) == tuple(lt.shape) == (rows,)
    _close(lo, lt)
    lo.sum().backward()
    lt.sum().backward()
    for a, b in zip(ours_p, theirs_p):
        _close(a.grad, b.grad)
    x, y = _d(rng.normal(size=(rows, 2))), None
    t_ours = D.ComposeTransform([D.AffineTransform(_d(aloc), _d(ascale), event_dim=1), D.TanhTransform()])
    t_theirs = TD.ComposeTransform([TD.AffineTransform(_t(aloc), _t(ascale), event_dim=1), TD.TanhTransform()])
    y = t_ours(x)
    _close(t_ours.log_abs_det_jacobian(x, y), t_theirs.log_abs_det_jacobian(_t(x.numpy()), _t(y.numpy())))
    _close(t_ours.inv(y), x.numpy(), rtol=1e-9)


def test_flow_trains_with_an_event_coupling_composition() -> None:
    """The harness's failing flow (Independent + Compose(Affine ev1, Tanh)) takes Adam steps."""
    loc, scale = _d([0.0, 0.0], True), _d([0.0, 0.0], True)
    opt = ds.optim.Adam([loc, scale], lr=0.05)
    data = _d(np.tanh(np.random.default_rng(0).normal(0.5, 0.3, size=(128, 2))))
    losses = []
    for _ in range(15):
        base = D.Independent(D.Normal(_d([0.0, 0.0]), _d([1.0, 1.0])), 1)
        flow = D.TransformedDistribution(
            base, D.ComposeTransform([D.AffineTransform(loc, ds.exp(scale), event_dim=1), D.TanhTransform()])
        )
        loss = -flow.log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_transformed_distribution_reinterprets_batch_dims_and_changes_event_shape_as_torch() -> None:
    rng = np.random.default_rng(1)
    loc = rng.normal(size=(4, 3))
    cases = [
        (lambda lib: [lib.StickBreakingTransform()], rng.dirichlet(np.ones(4), size=4)),
        (lambda lib: [lib.AffineTransform(0.0, 2.0, event_dim=1)], rng.normal(size=(4, 3))),
        (lambda lib: [lib.ReshapeTransform((3,), (3, 1))], rng.normal(size=(4, 3, 1))),
    ]
    for make, value in cases:
        ours = D.TransformedDistribution(D.Normal(_d(loc), _d(1.0)), make(D))
        theirs = TD.TransformedDistribution(TD.Normal(_t(loc), _t(1.0)), make(TD))
        assert ours.batch_shape == tuple(theirs.batch_shape)
        assert ours.event_shape == tuple(theirs.event_shape)
        assert ours.base_dist.event_shape == tuple(theirs.base_dist.event_shape)
        assert ours.support.event_dim == theirs.support.event_dim
        _close(ours.log_prob(_d(value)), theirs.log_prob(_t(value)))
        assert tuple(ours.sample((5,)).shape) == tuple(theirs.sample((5,)).shape)
        ex_o, ex_t = ours.expand((2, 4)), theirs.expand((2, 4))
        assert ex_o.batch_shape == tuple(ex_t.batch_shape)
        _close(ex_o.log_prob(_d(value)), ex_t.log_prob(_t(value)))


def test_compose_transform_cache_and_sign() -> None:
    t = D.ComposeTransform([D.AffineTransform(0.0, -2.0), D.TanhTransform()], cache_size=1)
    x = _d([0.3, 40.0])
    y = t(x)
    assert t.inv(y) is x  # tanh(40) is 1.0: only the cache gets x back
    assert t.sign == TD.ComposeTransform([TD.AffineTransform(0.0, -2.0), TD.TanhTransform()]).sign == -1
    d = D.TransformedDistribution(D.Normal(_d(0.0), _d(1.0)), [D.AffineTransform(1.0, -2.0)])
    td = TD.TransformedDistribution(TD.Normal(_t(0.0), _t(1.0)), [TD.AffineTransform(1.0, -2.0)])
    _close(d.cdf(_d([0.0, 2.0])), td.cdf(_t([0.0, 2.0])))
    _close(d.icdf(_d([0.2, 0.7])), td.icdf(_t([0.2, 0.7])))


# ------------------------------------------------------------------ integer values in float64
def test_integer_values_are_promoted_to_the_parameters_dtype() -> None:
    import math

    exact = 1000003 * math.log(1e6) - 1e6 - math.lgamma(1000004)
    lp = D.Poisson(_d(1e6)).log_prob(ds.tensor(1000003))
    assert lp.dtype == ds.float64 and abs(lp.item() - exact) < 1e-8
    # torch takes lgamma of an integer tensor in its default dtype: compare with float64 as default
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _close(lp, TD.Poisson(_t(1e6)).log_prob(torch.tensor(1000003)), rtol=1e-9)
        lp = D.Binomial(_d(1000.0), _d(0.3)).log_prob(ds.tensor(290))
        assert lp.dtype == ds.float64
        _close(lp, TD.Binomial(_t(1000.0), _t(0.3)).log_prob(torch.tensor(290)))
    finally:
        torch.set_default_dtype(old)
    assert D.Poisson(ds.tensor(3.0)).log_prob(ds.tensor(2)).dtype == ds.float32


# ---------------------------------------------------------------------------- entropies
def test_geometric_entropy_is_accurate_for_small_probabilities() -> None:
    for logit in (-30.0, -10.0, 0.0, 3.0):
        p = 1 / (1 + np.exp(-logit))
        exact = (-(1 - p) * np.log1p(-p) - p * np.log(p)) / p
        ours = D.Geometric(logits=_d(logit)).entropy().item()
        assert abs(ours - exact) <= 1e-9 * exact, (logit, ours, exact)
        if logit > -20:  # torch's own formula cancels further out
            assert abs(ours - TD.Geometric(logits=_t(logit)).entropy().item()) <= 1e-9 * exact


def test_bernoulli_and_geometric_values_and_gradients_match_torch() -> None:
    logits = np.array([-4.0, -0.5, 0.0, 0.7, 5.0])
    for family in ("Bernoulli", "Geometric"):
        a, b = _d(logits, True), _t(logits, True)
        ours, theirs = getattr(D, family)(logits=a), getattr(TD, family)(logits=b)
        value = np.array([1.0, 0.0, 1.0, 0.0, 1.0]) if family == "Bernoulli" else np.array([0.0, 3.0, 1.0, 2.0, 0.0])
        lo = ours.log_prob(_d(value)) + ours.entropy()
        lt = theirs.log_prob(_t(value)) + theirs.entropy()
        _close(lo, lt)
        lo.sum().backward()
        lt.sum().backward()
        _close(a.grad, b.grad)
    exact = 31 / (1 + np.exp(30.0))  # -p log p - (1-p) log(1-p) ~ p (1 - log p) for p = sigmoid(-30)
    assert abs(D.Bernoulli(logits=_d(-30.0)).entropy().item() - exact) <= 1e-6 * exact


# ---------------------------------------------------------------------------- Multinomial support
def test_multinomial_support_is_torchs_multinomial_constraint() -> None:
    p = [0.2, 0.3, 0.5]
    for value in ([3.0, 3.0, 3.0], [-1.0, 2.0, 1.0]):
        with pytest.raises(ValueError):
            D.Multinomial(4, _d(p)).log_prob(_d(value))
        with pytest.raises(ValueError):
            TD.Multinomial(4, _t(p)).log_prob(_t(value))
    _close(
        D.Multinomial(4, _d(p)).log_prob(_d([1.0, 1.5, 1.5])), TD.Multinomial(4, _t(p)).log_prob(_t([1.0, 1.5, 1.5]))
    )
    assert D.constraints.multinomial(4).check(_d([[1.0, 1.0, 1.0], [3.0, 3.0, 0.0]])).tolist() == [True, False]


# ---------------------------------------------------------------------------- KL errors
def test_kl_for_an_unregistered_pair_raises_not_implemented_with_the_registered_pairs() -> None:
    with pytest.raises(NotImplementedError, match=r"Gumbel and q type Cauchy.*available: .*Normal-Normal"):
        D.kl_divergence(D.Gumbel(_d(0.0), _d(1.0)), D.Cauchy(_d(0.0), _d(1.0)))
    with pytest.raises(NotImplementedError):
        TD.kl_divergence(TD.Gumbel(_t(0.0), _t(1.0)), TD.Cauchy(_t(0.0), _t(1.0)))


# ---------------------------------------------------------------------------- clamps
def test_sigmoid_transform_clamps_at_tiny_as_torch() -> None:
    x = np.array([-40.0, -745.0, 0.3, 40.0])
    for dtype, tdtype in ((ds.float64, torch.float64), (ds.float32, torch.float32)):
        a, b = ds.tensor(x, dtype=dtype), torch.tensor(x, dtype=tdtype)
        t_o, t_t = D.SigmoidTransform(), TD.SigmoidTransform()
        y_o, y_t = t_o(a), t_t(b)
        np.testing.assert_allclose(y_o.numpy(), y_t.numpy(), rtol=1e-6 if dtype == ds.float32 else 1e-12)
        np.testing.assert_allclose(t_o.inv(y_o).numpy(), t_t.inv(y_t).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            t_o.log_abs_det_jacobian(a, y_o).numpy(), t_t.log_abs_det_jacobian(b, y_t).numpy(), rtol=1e-6
        )


# ---------------------------------------------------------------------------- Categorical
def test_categorical_never_draws_a_zero_probability_class() -> None:
    rng = np.random.RandomState(0)
    for _ in range(1000):  # a float32 probability vector whose float32 cumulative sum ends below 1
        q = np.append(rng.rand(7).astype(np.float32), np.float32(0))
        if np.cumsum(q / q.sum(), dtype=np.float32)[-1] < 1:
            break
    ds.manual_seed(0)
    draws = D.Categorical(probs=ds.tensor(q.tolist())).sample((400_000,)).numpy()
    assert draws.dtype == np.int64 and draws.max() <= 6
    freq = np.bincount(draws, minlength=8)[:7] / draws.size
    np.testing.assert_allclose(freq, q[:7] / q.sum(), atol=0.005)
    probs = ds.tensor([[0.0, 0.5, 0.0, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    s = D.Categorical(probs=probs).sample((20_000,)).numpy()
    assert set(np.unique(s[:, 0])) == {1, 3} and set(np.unique(s[:, 1])) == {0}
