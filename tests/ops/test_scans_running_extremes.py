"""cummax/cummin (src/downslope/ops/scans.py) against torch: values and indices over random shapes and
dims, with ties, signed zeros, NaN, integers and bools (torch's rule: ties and NaN go to the later
index, a NaN holds until the next NaN), and the gradient going to the index."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def _sample(rng: np.random.Generator, kind: int, shape: tuple[int, ...]) -> np.ndarray:
    if kind == 0:  # small integers as floats: many ties, signed zeros among them
        a = rng.integers(-3, 3, size=shape).astype(np.float32)
        a[rng.random(shape) < 0.2] = -0.0
        return a
    if kind == 1:
        a = rng.standard_normal(shape)
        a[rng.random(shape) < 0.2] = np.nan
        return a
    if kind == 2:
        return rng.integers(-3, 3, size=shape)
    return rng.random(shape) < 0.5


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_values_and_indices_match_torch(name: str, kind: int) -> None:
    rng = np.random.default_rng(kind)
    for _ in range(60):
        shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 4)))
        a = _sample(rng, kind, shape)
        dim = int(rng.integers(-len(shape), len(shape)))
        want_v, want_i = getattr(torch, name)(torch.from_numpy(a), dim)
        got_v, got_i = getattr(ds, name)(ds.from_numpy(a), dim)
        np.testing.assert_array_equal(to_host(got_v.array), want_v.numpy())
        np.testing.assert_array_equal(to_host(got_i.array), want_i.numpy())
        if kind == 0:  # the sign of a zero tells which element was taken
            np.testing.assert_array_equal(np.signbit(to_host(got_v.array)), np.signbit(want_v.numpy()))


def test_the_gradient_goes_to_the_index_as_torchs() -> None:
    a = np.array([[1.0, 3.0, 3.0, 2.0, 5.0], [np.nan, 1.0, np.nan, 0.0, 9.0]])
    g = np.arange(10.0).reshape(2, 5)
    t = torch.tensor(a, requires_grad=True)
    torch.cummax(t, 1).values.backward(torch.tensor(g))
    d = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    ds.cummax(d, 1).values.backward(ds.tensor(g, dtype=ds.float64))
    np.testing.assert_array_equal(to_host(d.grad.array), t.grad.numpy())


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_large_inputs_take_the_compiled_path_and_match_torch(name: str) -> None:
    # sizes past the compiled kernel's threshold (ops/_jit_scan.py), every dim, ties, NaN and integers
    rng = np.random.default_rng(7)
    for k in range(24):
        shape = (int(rng.integers(2, 30)), int(rng.integers(10, 60)), int(rng.integers(1, 12)))
        a = _sample(rng, k % 3, shape)
        dim = int(rng.integers(-3, 3))
        want_v, want_i = getattr(torch, name)(torch.from_numpy(a), dim)
        got_v, got_i = getattr(ds, name)(ds.from_numpy(a), dim)
        np.testing.assert_array_equal(to_host(got_v.array), want_v.numpy())
        np.testing.assert_array_equal(to_host(got_i.array), want_i.numpy())
        np.testing.assert_array_equal(np.signbit(to_host(got_v.array)), np.signbit(want_v.numpy()))
