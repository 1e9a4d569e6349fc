"""cross_entropy's double backward (a Hessian-vector product, a gradient penalty) when targets are
ignore_index: with every target ignored, mean reduction divides by a total weight of 0, and the
second derivative is 0 in torch, not NaN. Partly ignored batches, class weights, label smoothing
and a spatial (N, C, d) input are compared with torch 2.13 in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

X0 = np.array([[0.3, -1.2, 0.4], [0.5, 0.1, -0.7], [1.5, -0.2, 0.0]])
W0 = np.array([0.5, 2.0, 1.0])


def _hvp(L, targets, weighted: bool, smoothing: float, reduction: str, spatial: bool):
    x0 = np.stack([X0, X0[::-1] * 0.5], axis=-1) if spatial else X0
    t0 = np.stack([targets, targets[::-1]], axis=-1) if spatial else np.array(targets)
    x = L.tensor(x0, dtype=L.float64, requires_grad=True)
    weight = L.tensor(W0, dtype=L.float64) if weighted else None
    loss = L.nn.functional.cross_entropy(
        x, L.tensor(t0), weight=weight, ignore_index=1, label_smoothing=smoothing, reduction=reduction
    )
    (g,) = L.autograd.grad(loss, x, create_graph=True)
    v = L.tensor(np.linspace(-1.0, 1.0, x0.size).reshape(x0.shape), dtype=L.float64)
    (h,) = L.autograd.grad((g * v).sum(), x)
    return g.detach().numpy(), h.numpy()


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets", [[1, 1, 1], [0, 1, 2]], ids=["all_ignored", "one_ignored"])
def test_double_backward_with_ignored_targets_matches_torch(targets, weighted, smoothing, reduction, spatial):
    expected = _hvp(torch, targets, weighted, smoothing, reduction, spatial)
    got = _hvp(ds, targets, weighted, smoothing, reduction, spatial)
    for e, d in zip(expected, got):
        np.testing.assert_allclose(d, e, rtol=1e-12, atol=1e-14)
