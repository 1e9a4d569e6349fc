"""The Distribution base against torch: the shapes it exposes are Size (``event_shape.numel()``), for
every kind of distribution, after ``expand`` and through transforms, and torch's pattern for a custom
``expand`` (``_get_checked_instance``, ``super().expand(batch_shape, _instance=new)``) works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _lib_dists(L: Any) -> dict[str, Any]:
    D = L.distributions
    eye = L.eye(3).expand(2, 3, 3)
    return {
        "Normal": D.Normal(L.zeros(4, 3), 1.0),
        "Independent": D.Independent(D.Normal(L.zeros(4, 3), 1.0), 1),
        "MultivariateNormal": D.MultivariateNormal(L.zeros(2, 3), scale_tril=eye),
        "LowRankMultivariateNormal": D.LowRankMultivariateNormal(L.zeros(2, 3), L.ones(2, 3, 1), L.ones(2, 3)),
        "Dirichlet": D.Dirichlet(L.ones(5, 4)),
        "Categorical": D.Categorical(logits=L.zeros(2, 6)),
        "OneHotCategorical": D.OneHotCategorical(logits=L.zeros(2, 6)),
        "LogNormal": D.LogNormal(L.zeros(3), 1.0),
        "Transformed": D.TransformedDistribution(D.Normal(L.zeros(2, 3), 1.0), [D.transforms.StickBreakingTransform()]),
        "Mixture": D.MixtureSameFamily(
            D.Categorical(logits=L.zeros(2, 5)), D.Independent(D.Normal(L.zeros(2, 5, 3), 1.0), 1)
        ),
        "Wishart": D.Wishart(L.tensor(4.0), covariance_matrix=L.eye(2)),
    }


@pytest.mark.parametrize("name", sorted(_lib_dists(ds)))
def test_shapes_are_size_as_torch(name: str) -> None:
    ours, ref = _lib_dists(ds)[name], _lib_dists(torch)[name]
    for d, r in ((ours, ref), (ours.expand((7, *ours.batch_shape)), ref.expand((7, *ref.batch_shape)))):
        for attr in ("batch_shape", "event_shape"):
            got = getattr(d, attr)
            assert isinstance(got, ds.Size), (name, attr, type(got))
            assert tuple(got) == tuple(getattr(r, attr)) and got.numel() == getattr(r, attr).numel()
        extended = d._extended_shape((2,))
        assert isinstance(extended, ds.Size) and tuple(extended) == tuple(r._extended_shape((2,)))
        assert tuple(d.sample((2,)).shape) == tuple(extended)


def test_the_reported_numel() -> None:
    d = ds.distributions.Independent(ds.distributions.Normal(ds.zeros(4, 3), 1.0), 1)
    assert (d.event_shape.numel(), d.batch_shape.numel()) == (3, 4)


def _transforms(L: Any) -> list[tuple[Any, tuple[int, ...]]]:
    T = L.distributions.transforms
    return [
        (T.ExpTransform(), (2, 3)),
        (T.AffineTransform(L.zeros(3), 2.0), (2, 1)),
        (T.PowerTransform(L.ones(2, 1)), (3,)),
        (T.StickBreakingTransform(), (2, 3)),
        (T.CorrCholeskyTransform(), (4, 6)),
        (T.SoftmaxTransform(), (5,)),
        (T.ReshapeTransform((2, 3), (6,)), (4, 2, 3)),
        (T.ComposeTransform([T.ExpTransform(), T.StickBreakingTransform()]), (2, 3)),
        (T.IndependentTransform(T.ExpTransform(), 1), (2, 3)),
        (T.StickBreakingTransform().inv, (2, 4)),
    ]


@pytest.mark.parametrize("i", range(len(_transforms(ds))))
def test_transform_shapes_are_size_as_torch(i: int) -> None:
    (t, shape), (r, _) = _transforms(ds)[i], _transforms(torch)[i]
    forward = t.forward_shape(shape)
    assert isinstance(forward, ds.Size) and tuple(forward) == tuple(r.forward_shape(torch.Size(shape)))
    back = t.inverse_shape(forward)
    assert isinstance(back, ds.Size) and tuple(back) == tuple(r.inverse_shape(torch.Size(tuple(forward))))


def _shifted(L: Any) -> type:
    """The custom distribution from the report: torch's expand idiom with its own __init__."""
    D = L.distributions

    class Shifted(D.Distribution):
        arg_constraints = {"loc": D.constraints.real}
        support = D.constraints.real

        def __init__(self, loc: Any, validate_args: Any = None) -> None:
            self.loc = loc
            super().__init__(loc.shape, validate_args=validate_args)

        def expand(self, batch_shape: Any, _instance: Any = None) -> Any:
            new = self._get_checked_instance(Shifted, _instance)
            new.loc = self.loc.expand(batch_shape)
            super(Shifted, new).__init__(batch_shape, validate_args=False)
            return new

        def log_prob(self, x: Any) -> Any:
            return -((x - self.loc) ** 2)

    return Shifted


def test_get_checked_instance_in_a_custom_expand() -> None:
    ours = _shifted(ds)(ds.tensor([0.0, 1.0, 2.0])).expand((2, 3))
    ref = _shifted(torch)(torch.tensor([0.0, 1.0, 2.0])).expand((2, 3))
    assert type(ours).__name__ == "Shifted" and tuple(ours.batch_shape) == tuple(ref.batch_shape) == (2, 3)
    np.testing.assert_array_equal(ours.log_prob(ds.ones(2, 3)).numpy(), ref.log_prob(torch.ones(2, 3)).numpy())


def _scaled_normal(L: Any) -> type:
    """A subclass with an extra batched parameter that hands its half-built instance to the parent's
    expand (torch's pattern for subclasses of a library distribution)."""

    class ScaledNormal(L.distributions.Normal):
        def __init__(self, loc: Any, scale: Any, weight: Any) -> None:
            super().__init__(loc, scale)
            self.weight = weight

        def expand(self, batch_shape: Any, _instance: Any = None) -> Any:
            new = self._get_checked_instance(ScaledNormal, _instance)
            new.weight = self.weight.expand(batch_shape)
            return super().expand(batch_shape, _instance=new)

        def log_prob(self, value: Any) -> Any:
            return self.weight * super().log_prob(value)

    return ScaledNormal


def test_parent_expand_keeps_what_the_subclass_set_on_its_instance() -> None:
    results = []
    for L in (ds, torch):
        d = _scaled_normal(L)(L.zeros(3), L.ones(3), L.tensor([1.0, 2.0, 3.0])).expand((2, 3))
        assert type(d).__name__ == "ScaledNormal" and tuple(d.weight.shape) == (2, 3)
        results.append(d.log_prob(L.full((2, 3), 0.5)).numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def _log_normal_subclass(L: Any) -> type:
    class TaggedLogNormal(L.distributions.LogNormal):
        def expand(self, batch_shape: Any, _instance: Any = None) -> Any:
            new = self._get_checked_instance(TaggedLogNormal, _instance)
            new.tag = "expanded"
            return super().expand(batch_shape, _instance=new)

    return TaggedLogNormal


def test_transformed_distribution_expand_keeps_the_subclass_instance() -> None:
    for L in (ds, torch):
        d = _log_normal_subclass(L)(L.zeros(3), 1.0).expand((4, 3))
        assert type(d).__name__ == "TaggedLogNormal" and d.tag == "expanded"
        assert tuple(d.batch_shape) == (4, 3) and tuple(d.sample().shape) == (4, 3)


@pytest.mark.parametrize("lib", ["downslope", "torch"])
def test_get_checked_instance_refuses_a_custom_init_without_expand(lib: str) -> None:
    L = ds if lib == "downslope" else torch

    class WithInit(L.distributions.Normal):
        def __init__(self, loc: Any) -> None:
            super().__init__(loc, 1.0)

    check: Callable[..., Any] = WithInit(L.zeros(2))._get_checked_instance
    with pytest.raises(NotImplementedError, match="custom .expand"):
        check(L.distributions.Normal)


# every family of torch.distributions, built from the same float64 leaves in both libraries
_A, _B = np.array([0.7, 1.6]), np.array([1.3, 0.4])
_P = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
_L = np.array([[[1.0, 0.0], [0.3, 1.2]], [[0.8, 0.0], [-0.2, 0.5]]])


def _families(L: Any, leaf: Callable[[np.ndarray], Any]) -> dict[str, Callable[[], Any]]:
    D = L.distributions
    lrb = D.LogitRelaxedBernoulli if L is ds else D.relaxed_bernoulli.LogitRelaxedBernoulli
    erc = D.ExpRelaxedCategorical if L is ds else D.relaxed_categorical.ExpRelaxedCategorical
    a, b, p, tril, temp = leaf(_A), leaf(_B), leaf(_P), leaf(_L), leaf(np.array(0.7))
    return {
        "Normal": lambda: D.Normal(a, b),
        "Uniform": lambda: D.Uniform(a - 2, a + b),
        "Exponential": lambda: D.Exponential(a),
        "Laplace": lambda: D.Laplace(a, b),
        "Cauchy": lambda: D.Cauchy(a, b),
        "Gumbel": lambda: D.Gumbel(a, b),
        "HalfNormal": lambda: D.HalfNormal(b),
        "HalfCauchy": lambda: D.HalfCauchy(b),
        "StudentT": lambda: D.StudentT(a + 2, a, b),
        "Gamma": lambda: D.Gamma(a, b),
        "Chi2": lambda: D.Chi2(a + 2),
        "Beta": lambda: D.Beta(a, b),
        "Dirichlet": lambda: D.Dirichlet(p * 3),
        "Kumaraswamy": lambda: D.Kumaraswamy(a, b),
        "LogNormal": lambda: D.LogNormal(a, b),
        "Weibull": lambda: D.Weibull(b, a),
        "Pareto": lambda: D.Pareto(b, a + 2),
        "InverseGamma": lambda: D.InverseGamma(a + 2, b),
        "FisherSnedecor": lambda: D.FisherSnedecor(a + 4, b + 4),
        "VonMises": lambda: D.VonMises(a, b),
        "ContinuousBernoulli": lambda: D.ContinuousBernoulli(b / 2),
        "GeneralizedPareto": lambda: D.GeneralizedPareto(a, b, a / 4),
        "LogisticNormal": lambda: D.LogisticNormal(p[:, :2], p[:, 1:] + 0.5),
        "Bernoulli": lambda: D.Bernoulli(b / 2),
        "Geometric": lambda: D.Geometric(b / 2),
        "Binomial": lambda: D.Binomial(5, b / 2),
        "NegativeBinomial": lambda: D.NegativeBinomial(3.0, b / 2),
        "Poisson": lambda: D.Poisson(a),
        "Categorical": lambda: D.Categorical(p),
        "OneHotCategorical": lambda: D.OneHotCategorical(p),
        "OneHotCategoricalStraightThrough": lambda: D.OneHotCategoricalStraightThrough(p),
        "Multinomial": lambda: D.Multinomial(4, p),
        "RelaxedBernoulli": lambda: D.RelaxedBernoulli(temp, b / 2),
        "LogitRelaxedBernoulli": lambda: lrb(temp, b / 2),
        "RelaxedOneHotCategorical": lambda: D.RelaxedOneHotCategorical(temp, p),
        "ExpRelaxedCategorical": lambda: erc(temp, p),
        "MultivariateNormal": lambda: D.MultivariateNormal(p[:, :2], scale_tril=tril),
        "LowRankMultivariateNormal": lambda: D.LowRankMultivariateNormal(
            p[:, :2], p[:, :2, None], b[:, None] + p[:, :2]
        ),
        "Wishart": lambda: D.Wishart(a + 3, scale_tril=tril),
        "LKJCholesky": lambda: D.LKJCholesky(2, b + 0.5),
        "Independent": lambda: D.Independent(D.Normal(p, p + 1), 1),
        "MixtureSameFamily": lambda: D.MixtureSameFamily(D.Categorical(p), D.Normal(p, p + 1)),
        "TransformedDistribution": lambda: D.TransformedDistribution(D.Normal(a, b), [D.transforms.ExpTransform()]),
    }


_EXPANDED = ("mean", "mode", "variance", "stddev", "entropy", "temperature", "probs", "logits", "total_count")


@pytest.mark.parametrize("name", sorted(_families(torch, torch.tensor)))
def test_expand_broadcasts_every_parameter_and_property_as_torch(name: str) -> None:
    # every parameter and property after expand (twice, the second on an expanded one) has torch's shape
    # and values, and the entropy's gradients reach the leaves the same (they were 4x too small for
    # Kumaraswamy, whose own concentrations were left unexpanded)
    leaves: dict[str, list[Any]] = {"torch": [], "downslope": []}

    def leaf_of(lib: str) -> Callable[[np.ndarray], Any]:
        def leaf(x: np.ndarray) -> Any:
            t = (
                torch.tensor(x, dtype=torch.float64, requires_grad=True)
                if lib == "torch"
                else ds.tensor(x, dtype=ds.float64, requires_grad=True)
            )
            leaves[lib].append(t)
            return t

        return leaf

    def value(d: Any, attr: str) -> Any:
        v = getattr(d, attr)
        return v() if callable(v) else v

    theirs = _families(torch, leaf_of("torch"))[name]()
    ours = original = _families(ds, leaf_of("downslope"))[name]()
    assert ours.has_rsample == theirs.has_rsample
    for batch in ((3,) + tuple(theirs.batch_shape), (2, 3) + tuple(theirs.batch_shape)):
        theirs, ours = theirs.expand(batch), ours.expand(batch)
        assert tuple(ours.batch_shape) == tuple(theirs.batch_shape)
        assert tuple(ours.event_shape) == tuple(theirs.event_shape)
        assert ours.has_rsample == theirs.has_rsample
        for attr in list(theirs.arg_constraints) + list(_EXPANDED):
            try:
                expected = value(theirs, attr)
            except (NotImplementedError, AttributeError):
                continue  # torch has none (or its own expand loses it: Multinomial's entropy)
            if not isinstance(expected, torch.Tensor):
                continue
            got = value(ours, attr)
            assert tuple(got.shape) == tuple(expected.shape), (name, attr)
            # the values: those of the unexpanded distribution, broadcast; torch's to its approximations'
            # accuracy (VonMises' Bessel ratios ~1e-8)
            before = value(original, attr).detach().numpy()
            np.testing.assert_array_equal(got.detach().numpy(), np.broadcast_to(before, got.shape), err_msg=attr)
            np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-7, err_msg=attr)
    try:
        expected_entropy = theirs.entropy().sum()
    except (NotImplementedError, AttributeError):
        return
    expected_grads = torch.autograd.grad(expected_entropy, leaves["torch"], allow_unused=True)
    grads = ds.autograd.grad(ours.entropy().sum(), leaves["downslope"], allow_unused=True)
    for g, e in zip(grads, expected_grads, strict=True):
        if e is None or g is None:
            assert (e is None or not e.numpy().any()) and (g is None or not g.numpy().any()), name
            continue
        # torch's trigamma (in the entropies' gradients through digamma) is accurate to ~5e-10
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)
