"""autograd.graph.increment_version: a write the graph did not see, counted so backward refuses the
saved old values, as PyTorch's does."""

from __future__ import annotations

import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")


@pytest.mark.host_only  # writes through the host array numpy() shares
@pytest.mark.parametrize("as_list", [False, True])
def test_an_unseen_write_counted_by_increment_version_is_refused_at_backward_as_torch(as_list: bool) -> None:
    for lib, error in ((torch, RuntimeError), (ds, StateError)):
        x = lib.ones(2, requires_grad=True)
        y = x * 1
        z = (y * y).sum()
        y.detach().numpy()[:] = 5
        lib.autograd.graph.increment_version([y] if as_list else y)
        with pytest.raises(error, match="modified by an inplace operation"):
            z.backward()
    x = ds.ones(2, requires_grad=True)
    y = x * 1
    (y * y).sum().backward()  # nothing counted: the graph runs
    assert x.grad.tolist() == [2.0, 2.0]
