"""Embedding's max_norm renormalization under every norm_type torch takes (inf, -inf, 0, negative,
fractional): the looked-up rows and the table written in place, against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn

torch = pytest.importorskip("torch")

INF = float("inf")
TABLE = np.array(
    [[3.0, -4.0, 0.5], [0.2, 0.0, 0.3], [0.2, 0.1, 0.3], [2.0, 3.0, 4.0], [0.0, 0.0, 0.0]], dtype=np.float32
)


@pytest.mark.parametrize("norm_type", [INF, -INF, 0.0, 0.5, 1.0, 2.0, 3.0, -1.0, -2.0])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 2.5])
def test_embedding_max_norm_matches_torch_for_every_norm_type(norm_type: float, max_norm: float) -> None:
    idx = np.array([[0, 1, 2], [3, 4, 0]])
    theirs = torch.tensor(TABLE)
    ref = torch.nn.functional.embedding(torch.tensor(idx), theirs, max_norm=max_norm, norm_type=norm_type)
    ours = ds.tensor(TABLE)
    out = F.embedding(ds.tensor(idx), ours, max_norm=max_norm, norm_type=norm_type)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=0)  # the table, renormed in place


@pytest.mark.parametrize("norm_type", [INF, -INF, 0.0])
def test_embedding_module_max_norm_with_limit_norms(norm_type: float) -> None:
    ours = nn.Embedding(5, 3, max_norm=1.0, norm_type=norm_type)
    theirs = torch.nn.Embedding(5, 3, max_norm=1.0, norm_type=norm_type)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(TABLE))
    ours.weight.data = ds.tensor(TABLE)
    idx = np.array([0, 3, 1])
    np.testing.assert_allclose(
        ours(ds.tensor(idx)).detach().numpy(), theirs(torch.tensor(idx)).detach().numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6)
