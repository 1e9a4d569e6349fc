"""ds.histogram / ds.histogramdd / Tensor.histogram against torch: counts, weights, densities, the
bin edges bit for bit (torch's linspace), explicit edges and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_histograms_match_torch_exactly(dtype: str) -> None:
    rng = np.random.default_rng(0)
    for trial in range(150):
        x = rng.standard_normal(int(rng.integers(1, 60))).astype(dtype)
        if trial % 3 == 0:
            x = np.round(x * 4) / 4  # values on the bin edges
        bins = int(rng.integers(1, 40))
        kwargs: dict[str, Any] = {"density": bool(trial % 2)}
        if trial % 4 == 1:
            kwargs["range"] = (-1.0, 1.5)
        ours_kw, theirs_kw = dict(kwargs), dict(kwargs)
        if trial % 5 == 2:
            w = rng.random(x.shape).astype(dtype)
            ours_kw["weight"], theirs_kw["weight"] = ds.tensor(w, dtype=getattr(ds, dtype)), torch.tensor(w)
        hist, edges = ds.histogram(ds.tensor(x, dtype=getattr(ds, dtype)), bins, **ours_kw)
        t_hist, t_edges = torch.histogram(torch.tensor(x), bins, **theirs_kw)
        assert hist.dtype == np.dtype(dtype) and edges.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(edges.numpy(), t_edges.numpy())
        np.testing.assert_allclose(hist.numpy(), t_hist.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("data", "bins", "kwargs"),
    [([1.0, 2, 1, 2.5, 4], [0.0, 1.0, 2.0, 5.0], {}), ([1.0, 2, 1, 2.5, 4], [0.0, 1.0, 2.0, 5.0], {"density": True}),
     ([], 3, {}), ([2.0, 2.0], 3, {}), ([1.0, 2, 1, 2.5, 4], 2, {"range": (1.0, 1.0)}), ([[1.0, 1.0], [1.0, 1.0]], 2, {}),
     ([0.5, 7.0], 4, {"range": (1.0, 5.0)})],
)  # fmt: skip
def test_edge_cases_match_torch(data: Any, bins: Any, kwargs: dict[str, Any]) -> None:
    ours_bins = ds.tensor(bins) if isinstance(bins, list) else bins
    theirs_bins = torch.tensor(bins) if isinstance(bins, list) else bins
    hist, edges = ds.histogram(ds.tensor(data, dtype=ds.float32), ours_bins, **kwargs)
    t_hist, t_edges = torch.histogram(torch.tensor(data, dtype=torch.float32), theirs_bins, **kwargs)
    np.testing.assert_array_equal(edges.numpy(), t_edges.numpy())
    np.testing.assert_allclose(hist.numpy(), t_hist.numpy(), rtol=1e-6)


def test_method_named_fields_and_no_gradient() -> None:
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    result = x.histogram(2)
    assert result.hist.tolist() == [1.0, 2.0] and result.bin_edges.tolist() == [1.0, 2.0, 3.0]
    assert not result.hist.requires_grad
    bins = ds.tensor([0.0, 2.0, 4.0])
    edges = ds.histogram(ds.tensor([1.0]), bins).bin_edges
    edges.fill_(9.0)
    assert bins.tolist() == [0.0, 2.0, 4.0]  # the edges returned are a copy


@pytest.mark.parametrize(
    ("call", "error"),
    [("histogram(x, 0)", ds.errors.ArgumentError), ("histogram(x, 3, range=(3.0, 1.0))", ds.errors.ArgumentError),
     ("histogram(x, 3, weight=L.tensor([1.0, 2.0]))", ds.ShapeError),
     ("histogram(L.tensor([1.0, float('nan')]), 2)", ds.errors.ArgumentError),
     ("histogram(L.tensor([1.0, float('inf')]), 2)", ds.errors.ArgumentError),
     ("histogram(L.tensor([1, 2]), 3)", TypeError), ("histogramdd(x, bins=2)", ds.ShapeError),
     ("histogramdd(L.ones(4, 2), bins=[2, 2, 2])", ds.errors.ArgumentError)],
)  # fmt: skip
def test_errors_where_torch_raises(call: str, error: type[Exception]) -> None:
    with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
        eval("L." + call, {"L": torch, "x": torch.tensor([1.0, 2.0, 4.0])})
    with pytest.raises(error):
        eval("L." + call, {"L": ds, "x": ds.tensor([1.0, 2.0, 4.0])})


def test_decreasing_edges_are_refused() -> None:
    """torch bins silently into non-monotonic edges; a count there means nothing, so it is refused."""
    with pytest.raises(ds.errors.ArgumentError, match="non-decreasing"):
        ds.histogram(ds.tensor([1.0]), ds.tensor([0.0, 3.0, 2.0]))


Y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [2.0, 2.0]])


@pytest.mark.parametrize(
    ("bins", "kwargs"),
    [([3, 3], {"weight": [1.0, 2.0, 4.0, 8.0]}), ([2, 2], {"range": [0.0, 1.0, 0.0, 1.0]}), (2, {}), ((2, 3), {}),
     ([[0.0, 1, 2], [0.0, 3]], {}), ([2, 2], {"density": True}), ([2, 3], {"weight": [1.0, 2.0, 4.0, 8.0], "density": True})],
)  # fmt: skip
def test_histogramdd_matches_torch(bins: Any, kwargs: dict[str, Any]) -> None:
    def conv(lib: Any, value: Any) -> Any:
        return [lib.tensor(b) for b in value] if isinstance(value, list) and isinstance(value[0], list) else value

    ours_kw = {k: ds.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    theirs_kw = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    hist, edges = ds.histogramdd(ds.tensor(Y, dtype=ds.float32), bins=conv(ds, bins), **ours_kw)
    t_hist, t_edges = torch.histogramdd(torch.tensor(Y, dtype=torch.float32), bins=conv(torch, bins), **theirs_kw)
    np.testing.assert_allclose(hist.numpy(), t_hist.numpy(), rtol=1e-6)
    assert isinstance(edges, tuple) and len(edges) == len(t_edges)
    for e, t in zip(edges, t_edges):
        np.testing.assert_array_equal(e.numpy(), t.numpy())


def test_random_histogramdd_matches_torch() -> None:
    rng = np.random.default_rng(3)
    for trial in range(40):
        points = rng.standard_normal((int(rng.integers(1, 30)), 2, 3)).astype(np.float32)
        bins = [int(v) for v in rng.integers(1, 6, 3)]
        hist, edges = ds.histogramdd(ds.tensor(points), bins=bins, density=bool(trial % 2))
        t_hist, t_edges = torch.histogramdd(torch.tensor(points), bins=bins, density=bool(trial % 2))
        np.testing.assert_allclose(hist.numpy(), t_hist.numpy(), rtol=1e-5)
        for e, t in zip(edges, t_edges):
            np.testing.assert_array_equal(e.numpy(), t.numpy())
