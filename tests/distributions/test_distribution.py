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
