"""torch.conv_tbc at the top level: ds.conv_tbc is nn.functional's, with torch's values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_top_level_conv_tbc_matches_torch() -> None:
    assert "conv_tbc" in ds.__all__ and ds.conv_tbc is ds.nn.functional.conv_tbc
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((6, 2, 3), (3, 3, 4), (4,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dx, dw, db = (ds.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
    theirs, ours = torch.conv_tbc(tx, tw, tb, 1), ds.conv_tbc(dx, dw, db, 1)
    theirs.sum().backward()
    ours.sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    for o, t in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)
