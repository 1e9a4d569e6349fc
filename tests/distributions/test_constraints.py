"""constraints.py against torch.distributions.constraints: dependent_property and dependent in their
decorator-factory and call forms."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("lib", ["downslope", "torch"])
def test_dependent_property_as_a_decorator_factory(lib):
    L = ds if lib == "downslope" else torch
    C = L.distributions.constraints

    class Shifted(L.distributions.Distribution):
        arg_constraints: dict = {}

        def __init__(self, shift):
            self.shift = shift
            super().__init__(L.Size(()), validate_args=False)

        @C.dependent_property(is_discrete=True, event_dim=1)
        def support(self):
            return C.greater_than(self.shift)

        @C.dependent_property
        def plain(self):
            return C.real

    assert Shifted.support.is_discrete is True and Shifted.support.event_dim == 1
    assert C.is_dependent(Shifted.support) and C.is_dependent(Shifted.plain)
    d = Shifted(L.tensor(2.0))
    assert float(d.support.lower_bound) == 2.0
    assert d.plain is C.real
    dep = C.dependent(is_discrete=True, event_dim=2)
    assert C.is_dependent(dep) and dep.is_discrete is True and dep.event_dim == 2


def test_dependent_property_on_a_family_is_dependent_on_the_class_as_torch():
    for name in ("Uniform", "Binomial", "Categorical", "Independent", "MixtureSameFamily"):
        assert ds.distributions.constraints.is_dependent(getattr(ds.distributions, name).support)
        assert torch.distributions.constraints.is_dependent(getattr(torch.distributions, name).support)
    assert repr(ds.distributions.Uniform(0.0, 1.0).support).startswith("Interval")
