"""``arange`` and ``linspace`` give torch's CPU values bit for bit (float32, float64 and integer dtypes): torch
computes them with its own formulas (linspace from both ends with a fused multiply-add, arange in float64
per element and per 32-byte vector), so values on a grid compare equal in both libraries (a threshold or
``bucketize`` at ``linspace(-1, 1, 11)[5]``, -1.49e-8 in torch, falls on the same side)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


def _cases(seed: int, count: int) -> list[tuple[float, float, float, int]]:
    rng = np.random.default_rng(seed)
    cases = []
    for t in range(count):
        start = float(np.round(rng.uniform(-10, 10), int(rng.integers(0, 4))))
        step = float(np.round(rng.uniform(0.01, 2), int(rng.integers(2, 5)))) * (1 if t % 2 else -1)
        n = int(rng.integers(1, 3000)) if t % 25 else int(rng.integers(33000, 70000))  # a few span threads
        end = start + step * n * float(rng.uniform(0.5, 1.0))
        cases.append((start, end, step, int(rng.integers(0, 3000)) if t % 25 else n))
    cases += [(0.0, 4.0, 0.01, 401), (-1.0, 1.0, 0.2, 11), (-1e6, 1e-3, 0.5, 7), (1e6, 1e6 + 100, 0.1, 1001)]
    return cases


@pytest.fixture(autouse=True)
def _two_threads():
    # torch splits ranges over 32768 elements between its threads, each starting its own vectors
    before_torch, before_ds = torch.get_num_threads(), ds.get_num_threads()
    torch.set_num_threads(2)
    ds.set_num_threads(2)
    yield
    torch.set_num_threads(before_torch)
    ds.set_num_threads(before_ds)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linspace_is_bit_equal_to_torch(dtype: str) -> None:
    for start, end, _, steps in _cases(0, 300):
        theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype)).numpy()
        mine = ds.linspace(start, end, steps, dtype=getattr(ds, dtype)).numpy()
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs, err_msg=f"linspace({start}, {end}, {steps})")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arange_is_bit_equal_to_torch(dtype: str) -> None:
    for start, end, step, _ in _cases(1, 300):
        theirs = torch.arange(start, end, step, dtype=getattr(torch, dtype)).numpy()
        mine = ds.arange(start, end, step, dtype=getattr(ds, dtype)).numpy()
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs, err_msg=f"arange({start}, {end}, {step})")


def test_integer_and_default_dtypes_are_bit_equal_to_torch() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        a, b, steps = int(rng.integers(-100, 100)), int(rng.integers(-100, 100)), int(rng.integers(1, 400))
        np.testing.assert_array_equal(
            ds.linspace(a, b, steps, dtype=ds.int64).numpy(), torch.linspace(a, b, steps, dtype=torch.int64).numpy()
        )
        np.testing.assert_array_equal(ds.arange(a, b + 300, 7).numpy(), torch.arange(a, b + 300, 7).numpy())
    for args in [(5,), (0.5,), (1, 2.5), (-3, 3, 0.7)]:
        theirs, mine = torch.arange(*args).numpy(), ds.arange(*args).numpy()
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(
        ds.linspace(ds.tensor(-1.0), ds.tensor(2.0), 9).numpy(),
        torch.linspace(torch.tensor(-1.0), torch.tensor(2.0), 9).numpy(),
    )


def test_bucketize_on_a_linspace_grid_agrees_with_torch() -> None:
    theirs = torch.bucketize(torch.tensor([0.0, 0.2, -0.6]), torch.linspace(-1, 1, 11))
    mine = ds.bucketize(ds.tensor([0.0, 0.2, -0.6]), ds.linspace(-1, 1, 11))
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
