"""compose.py's distributions against torch.distributions: Independent's enumeration when no dims are
reinterpreted, and the relaxations' has_rsample and temperature."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_independent_with_no_reinterpreted_dims_enumerates_through_its_base():
    for lib in (ds, torch):
        D = lib.distributions
        d = D.Independent(D.Bernoulli(lib.tensor([0.3, 0.4])), 0)
        assert d.has_enumerate_support
    ours = ds.distributions.Independent(ds.distributions.Bernoulli(ds.tensor([0.3, 0.4])), 0)
    theirs = torch.distributions.Independent(torch.distributions.Bernoulli(torch.tensor([0.3, 0.4])), 0)
    for expand in (True, False):
        np.testing.assert_array_equal(
            ours.enumerate_support(expand=expand).numpy(), theirs.enumerate_support(expand=expand).numpy()
        )
    # with dims reinterpreted it would be the cartesian product: refused, as torch refuses it
    one = ds.distributions.Independent(ds.distributions.Bernoulli(ds.tensor([0.3, 0.4])), 1)
    assert not one.has_enumerate_support
    with pytest.raises(NotImplementedError, match="reinterpreted_batch_ndims=1"):
        one.enumerate_support()
    # a base without an enumerable support stays without one
    assert not ds.distributions.Independent(ds.distributions.Normal(ds.zeros(2), 1.0), 0).has_enumerate_support


def test_relaxed_distributions_say_has_rsample_as_torch():
    D, T = ds.distributions, torch.distributions
    pairs = [
        (D.LogitRelaxedBernoulli(ds.tensor(0.5), probs=ds.tensor([0.3])), T.relaxed_bernoulli.LogitRelaxedBernoulli),
        (D.RelaxedBernoulli(ds.tensor(0.5), probs=ds.tensor([0.3])), T.RelaxedBernoulli),
        (
            D.ExpRelaxedCategorical(ds.tensor(0.5), probs=ds.tensor([0.3, 0.7])),
            T.relaxed_categorical.ExpRelaxedCategorical,
        ),
        (D.RelaxedOneHotCategorical(ds.tensor(0.5), probs=ds.tensor([0.3, 0.7])), T.RelaxedOneHotCategorical),
    ]
    for ours, cls in pairs:
        theirs = cls(torch.tensor(0.5), probs=torch.tensor(ours.probs.numpy()))
        assert ours.has_rsample == theirs.has_rsample, type(ours).__name__
    # the relaxed Bernoulli still draws with gradients through its base
    p = ds.tensor([0.3], requires_grad=True)
    ds.manual_seed(0)
    D.RelaxedBernoulli(ds.tensor(0.5), probs=p).rsample().sum().backward()
    assert p.grad is not None and bool(ds.isfinite(p.grad).all())


def test_relaxed_temperature_keeps_its_shape_through_expand():
    for lib, D in ((ds, ds.distributions), (torch, torch.distributions)):
        lrb = D.LogitRelaxedBernoulli if lib is ds else D.relaxed_bernoulli.LogitRelaxedBernoulli
        erc = D.ExpRelaxedCategorical if lib is ds else D.relaxed_categorical.ExpRelaxedCategorical
        made = [
            lrb(lib.tensor(0.5), probs=lib.tensor([0.3, 0.6])),
            D.RelaxedBernoulli(lib.tensor(0.5), probs=lib.tensor(0.3)),
            erc(lib.tensor(0.5), probs=lib.tensor([0.3, 0.7])),
        ]
        shapes = [
            (tuple(d.temperature.shape), tuple(d.expand((4,) + tuple(d.batch_shape)).temperature.shape)) for d in made
        ]
        assert shapes == [((), ()), ((), ()), ((), ())], lib.__name__
