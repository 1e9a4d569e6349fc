"""biject_to / transform_to (torch.distributions.constraint_registry) against PyTorch: the same transform
for each constraint, its values, inverse, log|det J| and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.distributions import biject_to, constraints, transform_to

torch = pytest.importorskip("torch")

# name -> (constraint from a distributions module, input shape)
CASES = {
    "real": (lambda D: D.constraints.real, (3,)),
    "real_vector": (lambda D: D.constraints.real_vector, (2, 3)),
    "positive": (lambda D: D.constraints.positive, (3,)),
    "nonnegative": (lambda D: D.constraints.nonnegative, (3,)),
    "greater_than": (lambda D: D.constraints.greater_than(1.5), (3,)),
    "greater_than_eq": (lambda D: D.constraints.greater_than_eq(-2.0), (3,)),
    "less_than": (lambda D: D.constraints.less_than(0.5), (3,)),
    "unit_interval": (lambda D: D.constraints.unit_interval, (3,)),
    "interval": (lambda D: D.constraints.interval(-1.0, 3.0), (3,)),
    "half_open_interval": (lambda D: D.constraints.half_open_interval(0.5, 2.0), (3,)),
    "simplex": (lambda D: D.constraints.simplex, (2, 3)),
    "corr_cholesky": (lambda D: D.constraints.corr_cholesky, (2, 3)),
    "independent_positive": (lambda D: D.constraints.independent(D.constraints.positive, 1), (2, 3)),
    "cat": (lambda D: D.constraints.cat([D.constraints.positive, D.constraints.real], 0, [2, 1]), (3,)),
    "stack": (lambda D: D.constraints.stack([D.constraints.unit_interval, D.constraints.less_than(1.0)], 1), (3, 2)),
}
TRANSFORM_ONLY = {
    "lower_cholesky": (lambda D: D.constraints.lower_cholesky, (2, 3, 3)),
    "positive_definite": (lambda D: D.constraints.positive_definite, (2, 3, 3)),
    "positive_semidefinite": (lambda D: D.constraints.positive_semidefinite, (2, 3, 3)),
}


def _compare(registry_name: str, make, shape) -> None:
    x = np.random.default_rng(0).normal(size=shape)
    t_tr = getattr(torch.distributions, registry_name)(make(torch.distributions))
    d_tr = getattr(ds.distributions, registry_name)(make(ds.distributions))
    assert type(d_tr).__name__ == type(t_tr).__name__
    tx = torch.tensor(x, requires_grad=True)
    dx = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    ty, dy = t_tr(tx), d_tr(dx)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert bool(make(ds.distributions).check(dy.detach()).all())
    np.testing.assert_allclose(d_tr.inv(dy).detach().numpy(), t_tr.inv(ty).detach().numpy(), rtol=1e-8, atol=1e-10)
    if not t_tr.bijective:
        return
    t_ladj = t_tr.log_abs_det_jacobian(tx, ty)
    d_ladj = d_tr.log_abs_det_jacobian(dx, dy)
    np.testing.assert_allclose(d_ladj.detach().numpy(), t_ladj.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(1).normal(size=tuple(ty.shape))
    ((ty * torch.tensor(w)).sum() + t_ladj.sum()).backward()
    ((dy * ds.tensor(w, dtype=ds.float64)).sum() + d_ladj.sum()).backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("registry_name", ["biject_to", "transform_to"])
def test_registry_matches_torch(registry_name: str, name: str) -> None:
    make, shape = CASES[name]
    _compare(registry_name, make, shape)


@pytest.mark.parametrize("name", sorted(TRANSFORM_ONLY))
def test_transform_to_matrix_constraints_matches_torch(name: str) -> None:
    make, shape = TRANSFORM_ONLY[name]
    _compare("transform_to", make, shape)
    with pytest.raises(NotImplementedError, match="Cannot transform"):
        biject_to(make(ds.distributions))


def test_unregistered_constraint_and_registration() -> None:
    with pytest.raises(NotImplementedError, match="_Boolean"):
        transform_to(constraints.boolean)

    class Custom(constraints.Constraint):
        pass

    registry = type(biject_to)()
    registry.register(Custom, lambda c: ds.distributions.ExpTransform())
    assert isinstance(registry(Custom()), ds.distributions.ExpTransform)
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        registry.register(int, lambda c: None)


def test_learned_positive_scale_gradient() -> None:
    # the constrained-parameter use: a raw parameter through transform_to, trained by its gradient
    raw_t = torch.tensor([-0.3, 0.8], dtype=torch.float64, requires_grad=True)
    raw_d = ds.tensor([-0.3, 0.8], dtype=ds.float64, requires_grad=True)
    torch.distributions.Normal(
        0.0, torch.distributions.transform_to(torch.distributions.constraints.positive)(raw_t)
    ).log_prob(torch.tensor([0.5, -1.0], dtype=torch.float64)).sum().backward()
    ds.distributions.Normal(0.0, transform_to(constraints.positive)(raw_d)).log_prob(
        ds.tensor([0.5, -1.0], dtype=ds.float64)
    ).sum().backward()
    np.testing.assert_allclose(raw_d.grad.numpy(), raw_t.grad.numpy(), rtol=1e-12)
