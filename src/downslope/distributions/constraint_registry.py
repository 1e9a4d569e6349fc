"""``torch.distributions.constraint_registry``: from a constraint to the transform that maps the real
numbers into it, so a constrained parameter can be learned as an unconstrained one
(``scale = transform_to(constraints.positive)(raw)``).

``biject_to(c)`` is a bijection (with ``inv`` and ``log_abs_det_jacobian``: for HMC-style
reparametrization); ``transform_to(c)`` only needs to land in ``c`` (for optimization: softmax onto
the simplex, not stick-breaking). The registrations are PyTorch's, transform for transform, so
values and Jacobians agree with torch's. Look-up is by the constraint's class: ``positive`` is a
``greater_than(0.0)`` and takes that class's transform, ``exp`` then ``+ 0``, as in torch.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions import constraints, transform_to
    >>> transform_to(constraints.positive)(ds.tensor([0.0]))
    tensor([1.])
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from ..errors import ArgumentTypeError
from . import constraints, transforms

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]

Factory = Callable[[Any], transforms.Transform]


class ConstraintRegistry:
    """Constraint class -> a factory making the transform for one constraint of that class."""

    def __init__(self) -> None:
        self._registry: dict[type, Factory] = {}

    def register(self, constraint: Any, factory: Factory | None = None) -> Any:
        """Register ``factory`` for ``constraint`` (a Constraint subclass, or an instance: its class);
        without ``factory``, a decorator."""
        if factory is None:
            return lambda f: self.register(constraint, f)
        if isinstance(constraint, constraints.Constraint):
            constraint = type(constraint)
        if not isinstance(constraint, type) or not issubclass(constraint, constraints.Constraint):
            raise ArgumentTypeError(
                f"ConstraintRegistry.register: expected a Constraint subclass or instance, got {constraint!r}"
            )
        self._registry[constraint] = factory
        return factory

    def __call__(self, constraint: Any) -> transforms.Transform:
        """The transform onto ``constraint``; NotImplementedError (as torch) when its class has none."""
        factory = self._registry.get(type(constraint))
        if factory is None:
            raise NotImplementedError(
                f"Cannot transform {type(constraint).__name__} constraints: no transform is registered for "
                f"{constraint!r} (register one with .register({type(constraint).__name__}, factory))"
            )
        return factory(constraint)


biject_to = ConstraintRegistry()
transform_to = ConstraintRegistry()


def _real(constraint: Any) -> transforms.Transform:
    return transforms.identity_transform


def _biject_to_independent(constraint: Any) -> transforms.Transform:
    return transforms.IndependentTransform(biject_to(constraint.base_constraint), constraint.reinterpreted_batch_ndims)


def _transform_to_independent(constraint: Any) -> transforms.Transform:
    return transforms.IndependentTransform(
        transform_to(constraint.base_constraint), constraint.reinterpreted_batch_ndims
    )


def _greater_than(constraint: Any) -> transforms.Transform:
    return transforms.ComposeTransform(
        [transforms.ExpTransform(), transforms.AffineTransform(constraint.lower_bound, 1)]
    )


def _less_than(constraint: Any) -> transforms.Transform:
    return transforms.ComposeTransform(
        [transforms.ExpTransform(), transforms.AffineTransform(constraint.upper_bound, -1)]
    )


def _interval(constraint: Any) -> transforms.Transform:
    lo, hi = constraint.lower_bound, constraint.upper_bound
    # torch's special case: number bounds 0 and 1 give the sigmoid alone (no affine step)
    if isinstance(lo, numbers.Number) and lo == 0 and isinstance(hi, numbers.Number) and hi == 1:
        return transforms.SigmoidTransform()
    return transforms.ComposeTransform([transforms.SigmoidTransform(), transforms.AffineTransform(lo, hi - lo)])


def _biject_to_cat(constraint: Any) -> transforms.Transform:
    return transforms.CatTransform([biject_to(c) for c in constraint.cseq], constraint.dim, constraint.lengths)


def _transform_to_cat(constraint: Any) -> transforms.Transform:
    return transforms.CatTransform([transform_to(c) for c in constraint.cseq], constraint.dim, constraint.lengths)


def _biject_to_stack(constraint: Any) -> transforms.Transform:
    return transforms.StackTransform([biject_to(c) for c in constraint.cseq], constraint.dim)


def _transform_to_stack(constraint: Any) -> transforms.Transform:
    return transforms.StackTransform([transform_to(c) for c in constraint.cseq], constraint.dim)


for _registry in (biject_to, transform_to):
    _registry.register(constraints.real, _real)
    # positive/nonnegative share greater_than's classes, so greater_than's factory is theirs (as in torch)
    for _bound in (constraints.greater_than, constraints.greater_than_eq):
        _registry.register(_bound, _greater_than)
    _registry.register(constraints.less_than, _less_than)
    for _bounds in (constraints.interval, constraints.half_open_interval):
        _registry.register(_bounds, _interval)
    _registry.register(constraints.corr_cholesky, lambda c: transforms.CorrCholeskyTransform())
biject_to.register(constraints.independent, _biject_to_independent)
transform_to.register(constraints.independent, _transform_to_independent)
biject_to.register(constraints.simplex, lambda c: transforms.StickBreakingTransform())
transform_to.register(constraints.simplex, lambda c: transforms.SoftmaxTransform())
# lower_cholesky and positive (semi)definite: torch has no bijection for these, only transform_to
transform_to.register(constraints.lower_cholesky, lambda c: transforms.LowerCholeskyTransform())
for _definite in (constraints.positive_definite, constraints.positive_semidefinite):
    transform_to.register(_definite, lambda c: transforms.PositiveDefiniteTransform())
biject_to.register(constraints.cat, _biject_to_cat)
transform_to.register(constraints.cat, _transform_to_cat)
biject_to.register(constraints.stack, _biject_to_stack)
transform_to.register(constraints.stack, _transform_to_stack)
del _registry, _bound, _bounds, _definite
