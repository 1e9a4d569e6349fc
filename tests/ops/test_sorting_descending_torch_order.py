"""sort/argsort(descending=True, stable=False) order equal values as torch's CPU kernel does
(libstdc++'s std::sort past 16 values), on the compiled and the pure-Python steps; topk's fast path
for rows without ties gives torch's indices and values."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import jit_gate

# torch's CPU order among equal values is replayed for host arrays (device arrays keep index order)
pytestmark = pytest.mark.host_only


def _case(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    nd = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 40, nd))
    dtype = rng.choice([np.float32, np.float64, np.int64, np.int32, np.uint8])
    if np.dtype(dtype).kind == "f" and rng.random() < 0.5:
        a = (rng.standard_normal(shape) * 3).round(int(rng.integers(0, 3))).astype(dtype)
    else:
        a = rng.integers(0, int(rng.integers(1, 6)) if rng.random() < 0.7 else 10**6, shape).astype(dtype)
    if a.dtype.kind == "f":
        for value, share in ((np.nan, 0.2), (np.inf, 0.2), (-0.0, 0.2)):
            if rng.random() < 0.25:
                a[rng.random(shape) < share] = value
    return a, int(rng.integers(-nd, nd))


@pytest.mark.parametrize("compiled", [True, False])
def test_descending_sort_fuzz_matches_torch(compiled: bool) -> None:
    rng = np.random.default_rng(7 if compiled else 8)
    for _ in range(300):
        a, d = _case(rng)
        if compiled:
            got = ds.sort(ds.from_numpy(a.copy()), dim=d, descending=True)
            arg = ds.argsort(ds.from_numpy(a.copy()), dim=d, descending=True)
        else:
            with jit_gate.disabled():
                got = ds.sort(ds.from_numpy(a.copy()), dim=d, descending=True)
                arg = ds.argsort(ds.from_numpy(a.copy()), dim=d, descending=True)
        want = torch.sort(torch.from_numpy(a.copy()), dim=d, descending=True)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy(), err_msg=f"{a.shape} {a.dtype} {d}")
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(arg.numpy(), want.indices.numpy())


def test_nineteen_equal_values_in_torch_order() -> None:
    got = ds.sort(ds.tensor([2] * 19), descending=True).indices.tolist()
    want = torch.sort(torch.tensor([2] * 19), descending=True).indices.tolist()
    assert got == want
    assert got[:6] == [9, 18, 17, 16, 15, 14]


def test_stable_descending_sort_keeps_index_order() -> None:
    assert ds.sort(ds.tensor([2] * 19), descending=True, stable=True).indices.tolist() == list(range(19))


def test_descending_sort_gradient_follows_torch_order() -> None:
    a = np.repeat(np.arange(4, dtype=np.float64), 9)
    weights = np.arange(36, dtype=np.float64)
    x = ds.from_numpy(a.copy()).requires_grad_()
    (ds.sort(x, descending=True).values * ds.from_numpy(weights)).sum().backward()
    t = torch.from_numpy(a.copy()).requires_grad_()
    (torch.sort(t, descending=True).values * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("largest", [True, False])
def test_topk_fuzz_matches_torch(largest: bool) -> None:
    rng = np.random.default_rng(11 if largest else 12)
    for _ in range(300):
        a, d = _case(rng)
        k = int(rng.integers(0, a.shape[d] + 1))
        got = ds.topk(ds.from_numpy(a.copy()), k, dim=d, largest=largest)
        want = torch.topk(torch.from_numpy(a.copy()), k, dim=d, largest=largest)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy(), err_msg=f"{a.shape} {a.dtype} {d} {k}")
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


@pytest.mark.parametrize(
    "row",
    [
        [0.5, 3.0, -1.0, 2.0, 7.0, 1.0],  # distinct: the fast path
        [0.5, 3.0, 2.0, 2.0, 7.0, 1.0],  # equal values at the k-th place
        [0.5, 3.0, float("nan"), 2.0, 7.0, 1.0],  # NaN, the largest
        [0.0, 3.0, -0.0, 2.0, 7.0, -1.0],  # -0.0 == 0.0 at the k-th place for largest=False
    ],
)
def test_topk_small_rows_match_torch(row: list[float]) -> None:
    a = np.array([row, row[::-1]], np.float32)
    for k in range(len(row) + 1):
        for largest in (True, False):
            got = ds.topk(ds.tensor(a), k, largest=largest)
            want = torch.topk(torch.tensor(a), k, largest=largest)
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_topk_fast_path_gradient() -> None:
    a = np.random.default_rng(0).standard_normal((3, 65))
    x = ds.from_numpy(a.copy()).requires_grad_()
    ds.topk(x, 10).values.sum().backward()
    t = torch.from_numpy(a.copy()).requires_grad_()
    torch.topk(t, 10).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def _patterns() -> dict[str, np.ndarray]:
    n = 5000
    rng = np.random.default_rng(3)
    interleaved = np.zeros(n, np.int64)
    interleaved[::2], interleaved[1::2] = np.arange(n // 2) % 5, np.arange(n // 2)
    return {
        "equal": np.zeros(n, np.float32),
        "rising": np.arange(n) // 3,
        "falling": np.arange(n)[::-1] // 3,
        "organ pipe": np.concatenate([np.arange(n // 2), np.arange(n - n // 2)[::-1]]) // 2,
        "sawtooth": (np.arange(n) % 7).astype(np.int32),
        "interleaved": interleaved,
        "nan": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n)),
    }


@pytest.mark.parametrize("name", list(_patterns()))
@pytest.mark.parametrize("compiled", [True, False])
def test_long_patterned_rows_match_torch(name: str, compiled: bool) -> None:
    a = _patterns()[name]
    want = torch.sort(torch.from_numpy(a.copy()), descending=True).indices.numpy()
    if compiled:
        got = ds.sort(ds.from_numpy(a.copy()), descending=True).indices.numpy()
    else:
        with jit_gate.disabled():
            got = ds.sort(ds.from_numpy(a.copy()), descending=True).indices.numpy()
    np.testing.assert_array_equal(got, want)
