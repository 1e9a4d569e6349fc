"""cdist's matrix-product form for p = 2 (torch's compute_mode: used past 25 rows or when asked):
values and first and second derivatives against torch's same mode, the cancellation that form
has (as torch's), zero distances, batches, and its memory (no P x R x M array)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.errors import ArgumentError

MODES = ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"]


def _pair(lib: Any, x1: np.ndarray, x2: np.ndarray) -> tuple[Any, Any]:
    kw = {"dtype": lib.float64} if x1.dtype == np.float64 else {"dtype": lib.float32}
    return lib.tensor(x1, requires_grad=True, **kw), lib.tensor(x2, requires_grad=True, **kw)


def _run(lib: Any, x1: np.ndarray, x2: np.ndarray, w: np.ndarray, v: np.ndarray, mode: str) -> list[np.ndarray]:
    a, b = _pair(lib, x1, x2)
    d = lib.cdist(a, b, p=2.0, compute_mode=mode)
    ga, gb = lib.autograd.grad((d * lib.tensor(w, dtype=d.dtype)).sum(), (a, b), create_graph=True)
    # a second derivative (torch has one for the product form only: its exact form's backward has none)
    products = mode == MODES[1] or (mode == MODES[0] and max(x1.shape[-2], x2.shape[-2]) > 25)
    second = (
        []
        if not products
        else list(lib.autograd.grad((ga * lib.tensor(v, dtype=d.dtype)).sum() + (gb**2).sum(), (a, b)))
    )
    return [t.detach().numpy() for t in (d, ga, gb, *second)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "shapes", [((30, 5), (40, 5)), ((4, 5), (3, 5)), ((2, 30, 4), (30, 4)), ((1, 26, 3), (3, 7, 3))]
)
def test_values_and_derivatives_match_torch_in_each_mode(mode: str, shapes: Any) -> None:
    rng = np.random.default_rng(len(shapes[0]) + shapes[1][0])
    x1, x2 = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    # a zero distance (a zero gradient there, not NaN), of values whose squares and products are exact,
    # so that it is 0 in any summation order
    x1[..., 0, :] = np.arange(shapes[0][-1]) * 0.5 - 1
    x2[..., 1, :] = np.arange(shapes[0][-1]) * 0.5 - 1
    out_shape = np.broadcast_shapes(shapes[0][:-2], shapes[1][:-2]) + (shapes[0][-2], shapes[1][-2])
    w, v = rng.standard_normal(out_shape), rng.standard_normal(shapes[0])
    ours, theirs = _run(ds, x1, x2, w, v, mode), _run(torch, x1, x2, w, v, mode)
    assert len(ours) == len(theirs)
    for name, o, t in zip(("value", "x1 grad", "x2 grad", "x1 2nd", "x2 2nd"), ours, theirs):
        assert o.shape == t.shape, name
        assert np.isfinite(o).all(), name
        np.testing.assert_allclose(o, t, rtol=1e-10, atol=1e-12, err_msg=name)


def test_float32_matches_torch_in_the_product_form() -> None:
    rng = np.random.default_rng(5)
    x1 = rng.standard_normal((64, 16)).astype(np.float32)
    x2 = rng.standard_normal((100, 16)).astype(np.float32)
    out = []
    for lib in (ds, torch):
        a, b = _pair(lib, x1, x2)
        d = lib.cdist(a, b)
        d.sum().backward()
        out.append([t.detach().numpy() for t in (d, a.grad, b.grad)])
    for o, t in zip(*out):
        assert o.dtype == t.dtype
        np.testing.assert_allclose(o, t, rtol=1.3e-6, atol=1e-5)


def test_the_product_form_cancels_as_torchs() -> None:
    # 2^27 and 2^27 + 1 are 1 apart, but |x2|^2 rounds the 1 away in float64: the product form gives
    # 0 in any summation order (each partial sum is exact), the difference form gives 1
    x1 = np.full((26, 1), 2.0**27)
    x2 = np.full((2, 1), 2.0**27 + 1)
    for mode, want in (("use_mm_for_euclid_dist_if_necessary", 0.0), ("donot_use_mm_for_euclid_dist", 1.0)):
        got = []
        for lib in (ds, torch):
            a, b = _pair(lib, x1, x2)
            d = lib.cdist(a, b, compute_mode=mode)
            d.sum().backward()
            got.append((d.detach().numpy(), a.grad.numpy()))
        np.testing.assert_array_equal(got[0][0], np.full((26, 2), want))
        np.testing.assert_array_equal(got[0][0], got[1][0])
        np.testing.assert_array_equal(got[0][1], got[1][1])


def test_the_product_form_never_makes_the_difference_array() -> None:
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((200, 64)), rng.standard_normal((300, 64))
    a, b = _pair(ds, x1, x2)
    tracemalloc.start()
    try:
        d = ds.cdist(a, b)
        d.sum().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the differences would be 200 * 300 * 64 float64s (31 MB); the products need a few P x R arrays
    assert peak < 8 * d.numel() * 8, peak


def test_an_unknown_compute_mode_is_refused_as_torch_does() -> None:
    with pytest.raises(ValueError, match="not a valid value"):
        torch.cdist(torch.ones(2, 3), torch.ones(2, 3), compute_mode="fast")
    with pytest.raises(ArgumentError, match=r"compute_mode must be None or one of .*got 'fast'"):
        ds.cdist(ds.ones(2, 3), ds.ones(2, 3), compute_mode="fast")
