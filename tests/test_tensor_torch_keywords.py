"""Tensor methods take torch's keywords: round_(decimals=), uniform_/random_(from=, to=)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("decimals", [0, 1, 2, -1])
def test_round_in_place_with_decimals_as_torch(decimals: int) -> None:
    x = np.array([1.234, 25.678, -3.14159, 0.5], dtype=np.float32)
    theirs = torch.tensor(x).round_(decimals=decimals)
    ours = ds.tensor(x).round_(decimals=decimals)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    w = ds.tensor(x, requires_grad=True)
    y = w * 1
    y.round_(decimals=decimals)
    y.sum().backward()  # rounding is flat almost everywhere: torch's gradient is 0 too
    assert w.grad.tolist() == [0.0] * 4


def test_uniform_and_random_take_torchs_from_and_to() -> None:
    ds.manual_seed(0)
    u = ds.empty(1000).uniform_(**{"from": 2.0, "to": 3.0}).numpy()
    assert 2.0 <= u.min() and u.max() < 3.0
    r = ds.empty(1000).random_(**{"from": 3, "to": 6}).numpy()
    assert set(np.unique(r)) == {3.0, 4.0, 5.0}
    assert ds.empty(1000).random_(**{"to": 2}).numpy().max() == 1.0
    assert ds.empty(1000, dtype=ds.int8).random_(**{"from": 100}).numpy().min() >= 100
    with pytest.raises(TypeError, match="unexpected keyword argument 'low_bound'"):
        ds.empty(2).uniform_(low_bound=1)
