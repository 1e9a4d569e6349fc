"""Products (downslope.ops.linalg): einsum's rule under create_graph."""

from __future__ import annotations

import downslope as ds


def test_einsum_gradient_over_an_index_only_one_operand_has_is_differentiable_again():
    # in "ij,k->k" the rule for the first operand broadcasts over i and j with a constant of ones
    # (xp.constant), which must be a recorded operand under create_graph
    def first_gradient(a: ds.Tensor, b: ds.Tensor) -> ds.Tensor:
        ga, gb = ds.autograd.grad((ds.einsum("ij,k->k", a, b) ** 2).sum(), [a, b], create_graph=True)
        return ga.sum() + (gb * gb).sum()

    a, b = ds.randn(2, 3, dtype=ds.float64), ds.randn(4, dtype=ds.float64)
    assert ds.gradcheck(first_gradient, [a, b]).passed
