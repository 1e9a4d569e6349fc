"""pdist and cdist through ops.distances: the compiled kernels (numba; ``MIN_WORK`` lowered so that
small inputs take them) and the NumPy path (numba switched off), values and gradients against torch,
at ties and zeros, in float64 and float32, batched and broadcast, empty, with NaN, and their memory."""

from __future__ import annotations

import contextlib
import math
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate
from downslope.ops import distances as _distance

torch = pytest.importorskip("torch")

P_VALUES = [0, 0.5, 1, 1.5, 3, float("inf")]
PATHS = ["compiled", "numpy"]


def _compiled_available() -> bool:
    return jit_gate.kernels("downslope.ops._jit_distance", np.zeros(1)) is not None


@contextlib.contextmanager
def _path(path: str, monkeypatch: Any) -> Iterator[None]:
    if path == "numpy":
        with jit_gate.disabled():
            yield
        return
    if not _compiled_available():
        pytest.skip("numba is not installed or the compiled path is switched off")
    monkeypatch.setattr(_distance, "MIN_WORK", 0)  # small inputs take the kernels too
    yield


def _rows(n: int, m: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, m))
    x[3] = x[1]  # identical rows: a zero distance
    x[4, 0] = x[2, 0]  # a zero difference in one column (p < 1 and p = 1 care)
    x[5, :2] = x[0, :2] + [1.5, -1.5]  # for p = inf a tie between two columns
    x[5, 2:] = x[0, 2:] + 0.25
    return x


def _pdist_both(x: np.ndarray, p: float, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    ours = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, ref = F.pdist(ours, p), torch.nn.functional.pdist(theirs, p)
    (out * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    return [(out.detach().numpy(), ref.detach().numpy()), (ours.grad.numpy(), theirs.grad.numpy())]


def _cdist_both(x1: np.ndarray, x2: np.ndarray, p: float, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    a, b = ds.tensor(x1, dtype=x1.dtype, requires_grad=True), ds.tensor(x2, dtype=x2.dtype, requires_grad=True)
    ta, tb = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    out, ref = ds.cdist(a, b, p), torch.cdist(ta, tb, p)
    (out * ds.tensor(w, dtype=x1.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    pairs = [(out.detach().numpy(), ref.detach().numpy())]
    for ours, theirs in ((a, ta), (b, tb)):
        got = np.zeros_like(x1 if ours is a else x2) if ours.grad is None else ours.grad.numpy()
        pairs.append((got, theirs.grad.numpy()))  # p = 0: no gradient here, zeros in torch
    return pairs


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", P_VALUES)
def test_pdist_matches_torch_at_ties_and_zeros_in_float64(monkeypatch: Any, path: str, p: float) -> None:
    x = _rows(9, 4, 1)
    w = np.random.default_rng(2).standard_normal(9 * 8 // 2)
    with _path(path, monkeypatch):
        pairs = _pdist_both(x, p, w)
    for name, (got, want) in zip(("value", "gradient"), pairs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)
    assert pairs[0][0][1 * (2 * 9 - 1 - 1) // 2 + 3 - 1 - 1] == 0  # pair (1, 3): identical rows


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("shapes", [((7, 4), (6, 4)), ((2, 7, 4), (6, 4)), ((1, 7, 4), (3, 6, 4))])
def test_cdist_matches_torch_at_ties_and_zeros_in_float64(monkeypatch: Any, path: str, p: float, shapes: Any) -> None:
    rng = np.random.default_rng(3)
    base1, base2 = _rows(7, 4, 4), rng.standard_normal((6, 4))
    base2[0] = base1[1]  # a zero distance
    base2[1, 0] = base1[2, 0]  # a zero difference in one column
    base2[2, :2] = base1[0, :2] + [-0.75, 0.75]  # for p = inf a tie between two columns
    base2[2, 2:] = base1[0, 2:] - 0.125
    x1, x2 = np.broadcast_to(base1, shapes[0]).copy(), np.broadcast_to(base2, shapes[1]).copy()
    out_shape = np.broadcast_shapes(shapes[0][:-2], shapes[1][:-2]) + (shapes[0][-2], shapes[1][-2])
    w = rng.standard_normal(out_shape)
    with _path(path, monkeypatch):
        pairs = _cdist_both(x1, x2, p, w)
    for name, (got, want) in zip(("value", "x1 gradient", "x2 gradient"), pairs):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("p", [1, 0.5, 3, float("inf")])
def test_the_host_paths_match_torch_in_float32(monkeypatch: Any, p: float) -> None:
    # p = 1 and inf: the compiled kernels; other p: NumPy (pdist's blocks, cdist's blocks)
    if not _compiled_available():
        pytest.skip("numba is not installed or the compiled path is switched off")
    compiled = p in (1, float("inf"))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    assert (_distance.pdist_forward(x, p) is not None) == compiled
    pairs = _pdist_both(x, p, rng.standard_normal(300 * 299 // 2).astype(np.float32))
    x1, x2 = rng.standard_normal((4, 64, 32)).astype(np.float32), rng.standard_normal((4, 80, 32)).astype(np.float32)
    taken = _distance.cdist_forward(x1, x2, p)
    assert taken is not None and (taken[1][0] is not None) == compiled
    pairs += _cdist_both(x1, x2, p, rng.standard_normal((4, 64, 80)).astype(np.float32))
    for got, want in pairs:
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", [1, 3, float("inf")])
@pytest.mark.parametrize("shapes", [((0, 3), (4, 3)), ((3, 0), (4, 0)), ((2, 0, 3), (2, 4, 3))])
def test_cdist_of_empty_inputs_matches_torch(monkeypatch: Any, path: str, p: float, shapes: Any) -> None:
    x1, x2 = np.ones(shapes[0]), np.ones(shapes[1])
    w = np.ones(shapes[0][:-1] + (shapes[1][-2],))
    with _path(path, monkeypatch):
        pairs = _cdist_both(x1, x2, p, w)
    for got, want in pairs:
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", [1, float("inf")])
@pytest.mark.parametrize("shape", [(0, 3), (1, 3), (4, 0)])
def test_pdist_of_empty_inputs_matches_torch(monkeypatch: Any, path: str, p: float, shape: Any) -> None:
    # torch's backward of an empty pdist crashes (torch 2.13), so its gradient is the closed form: zeros
    x = np.ones(shape)
    ours = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    with _path(path, monkeypatch):
        out = F.pdist(ours, p)
        out.sum().backward()
    want = torch.nn.functional.pdist(torch.tensor(x), p).numpy()
    assert out.shape == want.shape
    np.testing.assert_array_equal(out.detach().numpy(), want)
    np.testing.assert_array_equal(ours.grad.numpy(), np.zeros(shape))


@pytest.mark.parametrize("p", [1, 3, float("inf")])
def test_nan_and_inf_inputs_keep_torchs_values(monkeypatch: Any, p: float) -> None:
    with _path("compiled", monkeypatch):
        x = np.random.default_rng(6).standard_normal((6, 3))
        x[2, 1] = np.nan
        x[4, 0] = np.inf
        assert _distance.pdist_forward(x, p) is None  # the NumPy path keeps NaN's and inf's rules
        got = F.pdist(ds.tensor(x, dtype=ds.float64), p).numpy()
        want = torch.nn.functional.pdist(torch.tensor(x), p).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        # torch's cdist max skips a NaN (its max keeps the running value), its pdist does not: both kept
        got = ds.cdist(ds.tensor(x, dtype=ds.float64), ds.tensor(x[:4], dtype=ds.float64), p).numpy()
        want = torch.cdist(torch.tensor(x), torch.tensor(x[:4]), p).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", [1, 1.5, 3, float("inf")])
def test_cdist_double_backward_matches_torchs_composite_norm(monkeypatch: Any, path: str, p: float) -> None:
    # torch's cdist has no double backward for these p; its norm of the pairs' differences has (no ties)
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    a, b = ds.tensor(x1, dtype=ds.float64, requires_grad=True), ds.tensor(x2, dtype=ds.float64, requires_grad=True)
    ta, tb = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    with _path(path, monkeypatch):
        ga, gb = ds.autograd.grad(ds.cdist(a, b, p).pow(3).sum(), (a, b), create_graph=True)
        ref = torch.linalg.vector_norm(ta[:, None] - tb[None], p, dim=-1)
        ref_ga, ref_gb = torch.autograd.grad(ref.pow(3).sum(), (ta, tb), create_graph=True)
        np.testing.assert_allclose(ga.detach().numpy(), ref_ga.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gb.detach().numpy(), ref_gb.detach().numpy(), rtol=1e-12, atol=1e-12)
        second = ds.autograd.grad((ga**2).sum() + (gb**2).sum(), (a, b))
        ref_second = torch.autograd.grad((ref_ga**2).sum() + (ref_gb**2).sum(), (ta, tb))
        for got, want in zip(second, ref_second):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.host_only  # the host kernels' memory; a device's arrays take the ops' path
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", [1, 3, float("inf")])
def test_cdist_never_holds_every_pairs_differences(monkeypatch: Any, path: str, p: float) -> None:
    # 400 x 400 pairs of 64 float64 features: their differences would be 82 MB, the distances 1.3 MB
    rng = np.random.default_rng(8)
    a = ds.tensor(rng.standard_normal((400, 64)), dtype=ds.float64, requires_grad=True)
    b = ds.tensor(rng.standard_normal((400, 64)), dtype=ds.float64, requires_grad=True)
    with _path(path, monkeypatch):
        ds.cdist(a, b, p).sum().backward()  # a first call may import numba and load the kernels
        tracemalloc.start()
        try:
            ds.cdist(a, b, p).sum().backward()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 24 << 20, f"cdist held {peak / 2**20:.0f} MiB"


@pytest.mark.host_only
@pytest.mark.parametrize("path", PATHS)
def test_pdist_of_many_rows_needs_about_its_output(monkeypatch: Any, path: str) -> None:
    # 3000 rows of 64 float32: every pair's differences would be 1.15 GB, the distances 18 MB
    x = ds.tensor(np.random.default_rng(9).standard_normal((3000, 64)).astype(np.float32), requires_grad=True)
    with _path(path, monkeypatch):
        if path == "numpy":
            x = ds.tensor(x.detach().numpy()[:1500], requires_grad=True)  # the NumPy path is slower: fewer rows
        F.pdist(x[:50], 1.0).sum().backward()  # a first call may import numba and load the kernels
        tracemalloc.start()
        try:
            F.pdist(x, 1.0).sum().backward()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    n = x.shape[0]
    out_bytes = n * (n - 1) // 2 * 4
    assert peak < 3 * out_bytes + (8 << 20), (
        f"pdist held {peak / 2**20:.0f} MiB for {out_bytes / 2**20:.0f} MiB of output"
    )


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
def test_float16_pdist_is_the_float32_distance_rounded_once(p: float) -> None:
    # torch's CPU pdist refuses float16; downslope computes it in float32 and rounds once, so distances
    # whose squares overflow float16 (300**2 + 400**2) stay finite
    a = np.array([[300, 0], [0, 400], [10, 20]], np.float16)
    half = ds.tensor(a, requires_grad=True)
    wide = ds.tensor(a.astype(np.float32), requires_grad=True)
    out, ref = F.pdist(half, p), F.pdist(wide, p)
    assert out.dtype == ds.float16
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy().astype(np.float16))
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(half.grad.numpy(), wide.grad.numpy(), rtol=2e-3, atol=1e-3)
