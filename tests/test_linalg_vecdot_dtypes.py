"""linalg.vecdot refuses operands of different dtypes as torch does (a product; no silent promotion)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


@pytest.mark.parametrize("dtypes", [("float64", "float32"), ("float32", "float64")])
def test_vecdot_of_different_dtypes_is_refused(dtypes: tuple[str, str]) -> None:
    x, y = np.ones((2, 3)), np.ones(3)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.linalg.vecdot(
            torch.tensor(x, dtype=getattr(torch, dtypes[0])), torch.tensor(y, dtype=getattr(torch, dtypes[1]))
        )
    with pytest.raises(ds.errors.DTypeError, match=f"vecdot.*{dtypes[0]} and {dtypes[1]}.*cast"):
        ds.linalg.vecdot(ds.tensor(x, dtype=getattr(ds, dtypes[0])), ds.tensor(y, dtype=getattr(ds, dtypes[1])))


def test_vecdot_of_one_dtype_matches_torch_with_its_gradient() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=3)
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    xd, yd = ds.tensor(x, dtype=ds.float64, requires_grad=True), ds.tensor(y, dtype=ds.float64, requires_grad=True)
    t, d = torch.linalg.vecdot(xt, yt), ds.linalg.vecdot(xd, yd)
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-12)
    t.sum().backward()
    d.sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(yd.grad.numpy(), yt.grad.numpy(), rtol=1e-12)
