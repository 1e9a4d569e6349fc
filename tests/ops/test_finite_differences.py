"""ds.gradient (torch.gradient) against torch: spacings, dims, edge orders, dtypes, errors; and the
gradient of its result (it is linear in the values) against torch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((4, 5, 3))
COORDS = [np.array([0.0, 0.5, 1.75, 2.0]), np.array([-1.0, 0.0, 0.25, 2.0, 3.5]), np.array([1.0, 2.0, 4.0])]


def _both(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ours, theirs = dict(kwargs), dict(kwargs)
    spacing = kwargs.get("spacing")
    if isinstance(spacing, list) and spacing and isinstance(spacing[0], np.ndarray):
        ours["spacing"] = [ds.tensor(s, dtype=ds.float64) for s in spacing]
        theirs["spacing"] = [torch.tensor(s) for s in spacing]
    return ours, theirs


CASES = [
    {},
    {"dim": 1},
    {"dim": -1, "edge_order": 2},
    {"dim": (0, 2)},
    {"spacing": 2.5},
    {"spacing": [0.5, 2.0], "dim": [0, 2]},
    {"spacing": (1.0, 2.0, 3.0), "edge_order": 2},
    {"spacing": [COORDS[1]], "dim": 1},
    {"spacing": [COORDS[1]], "dim": 1, "edge_order": 2},
    {"spacing": COORDS},
    {"spacing": COORDS, "edge_order": 2},
]


@pytest.mark.parametrize("kwargs", CASES)
def test_matches_torch_values_and_gradient(kwargs: dict[str, Any]) -> None:
    ours_kw, theirs_kw = _both(kwargs)
    x = ds.tensor(X, dtype=ds.float64, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    out, tout = ds.gradient(x, **ours_kw), torch.gradient(tx, **theirs_kw)
    assert isinstance(out, tuple) and len(out) == len(tout)
    loss, tloss = 0, 0
    for i, (o, t) in enumerate(zip(out, tout)):
        assert o.dtype == ds.float64 and o.shape == tuple(t.shape)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)
        w = np.cos(np.arange(o.numel()) + i).reshape(o.shape)
        loss = loss + (o * ds.tensor(w, dtype=ds.float64)).sum()
        tloss = tloss + (t * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_integer_input_gives_the_default_float_dtype_and_float32_stays() -> None:
    (ours,) = ds.gradient(ds.tensor([1, 2, 4]), spacing=2)
    (theirs,) = torch.gradient(torch.tensor([1, 2, 4]), spacing=2)
    assert ours.dtype == ds.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    assert ds.gradient(ds.tensor([1.0, 2.0]))[0].dtype == ds.float32
    assert ds.gradient(ds.tensor(1.0)) == ()
    (s,) = ds.gradient(ds.tensor([1.0, 4.0, 9.0]), spacing=ds.tensor(0.5))
    np.testing.assert_allclose(s.numpy(), torch.gradient(torch.tensor([1.0, 4.0, 9.0]), spacing=torch.tensor(0.5))[0])


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((np.ones(1),), {}), ((np.ones(2),), {"edge_order": 2}), ((np.ones((2, 3)),), {"edge_order": 3}),
     ((np.ones((2, 3)),), {"spacing": [1.0, 2.0, 3.0]}), ((np.ones((2, 3)),), {"dim": [1, 1]}),
     ((np.ones((2, 3)),), {"dim": 2}), ((np.ones((2, 3)),), {"spacing": [np.array(2.0)], "dim": 1})],
)  # fmt: skip
def test_bad_arguments_raise_as_in_torch(args: Any, kwargs: dict[str, Any]) -> None:
    ours_kw, theirs_kw = dict(kwargs), dict(kwargs)
    if "spacing" in kwargs and isinstance(kwargs["spacing"][0], np.ndarray):
        ours_kw["spacing"] = [ds.tensor(s) for s in kwargs["spacing"]]
        theirs_kw["spacing"] = [torch.tensor(s) for s in kwargs["spacing"]]
    with pytest.raises((RuntimeError, IndexError, TypeError)):
        torch.gradient(torch.tensor(args[0]), **theirs_kw)
    with pytest.raises(ds.DownslopeError):
        ds.gradient(ds.tensor(args[0]), **ours_kw)


def test_coordinates_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ds.ShapeError, match="coordinates"):
        ds.gradient(ds.ones(2, 4), spacing=[ds.tensor([0.0, 1.0, 2.0])], dim=1)
