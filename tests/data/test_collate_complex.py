"""Complex data batches as real data does (torch's default_collate, DataLoader, TensorDataset), under
the library's dtype policy: complex128 NumPy data becomes complex64 as float64 becomes float32."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.utils.data import DataLoader, TensorDataset, default_collate, default_convert

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader as TorchLoader  # noqa: E402
from torch.utils.data import TensorDataset as TorchTensorDataset  # noqa: E402
from torch.utils.data import default_collate as torch_collate  # noqa: E402


def _samples(dtype: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(dtype) for _ in range(4)]


def _policy(dtype: Any) -> np.dtype:
    return ds.backend.complex_of(ds.get_default_dtype()) if np.dtype(dtype) == np.complex128 else np.dtype(dtype)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_default_collate_numpy_complex(dtype: Any) -> None:
    samples = _samples(dtype)
    ref = torch_collate(samples).numpy()
    ours = default_collate(samples)
    real = default_collate([s.real.copy() for s in samples])  # the float counterpart's policy, mirrored
    assert ours.dtype == _policy(dtype) == ds.backend.complex_of(real.dtype)
    np.testing.assert_array_equal(ours.numpy(), ref.astype(ours.dtype))


@pytest.mark.parametrize("name", ["complex64", "complex128"])
def test_default_collate_complex_tensors_and_fields(name: str) -> None:
    samples = _samples(np.dtype(name))
    batch = [(ds.tensor(s, dtype=getattr(ds, name)), i) for i, s in enumerate(samples)]
    ref = torch_collate([(torch.tensor(s, dtype=getattr(torch, name)), i) for i, s in enumerate(samples)])
    x, y = default_collate(batch)
    real_name = {"complex64": "float32", "complex128": "float64"}[name]
    real = default_collate([ds.tensor(s.real.copy(), dtype=getattr(ds, real_name)) for s in samples])
    assert x.dtype == ds.backend.complex_of(real.dtype)
    np.testing.assert_array_equal(x.numpy(), ref[0].numpy().astype(x.dtype))
    np.testing.assert_array_equal(y.numpy(), ref[1].numpy())


@pytest.mark.parametrize("name", ["complex64", "complex128"])
def test_dataloader_over_complex_tensor_dataset(name: str) -> None:
    data = np.stack(_samples(np.dtype(name)))
    labels = np.arange(4)
    ref = [
        [t.numpy() for t in b]
        for b in TorchLoader(
            TorchTensorDataset(torch.tensor(data, dtype=getattr(torch, name)), torch.tensor(labels)), batch_size=3
        )
    ]
    ours = [
        [t.numpy() for t in b]
        for b in DataLoader(TensorDataset(ds.tensor(data, dtype=getattr(ds, name)), ds.tensor(labels)), batch_size=3)
    ]
    assert len(ours) == len(ref) == 2
    for got, want in zip(ours, ref):
        assert got[0].dtype == want[0].dtype  # a tensor keeps the dtype it was made with, as in torch
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_dataloader_over_complex_numpy_samples() -> None:
    samples = _samples(np.complex128)
    (x,) = next(iter(DataLoader([(s,) for s in samples], batch_size=4)))
    assert x.dtype == ds.backend.complex_of(ds.get_default_dtype())
    np.testing.assert_array_equal(x.numpy(), np.stack(samples).astype(x.dtype))
    assert default_convert(samples[0]).dtype == np.complex128  # conversion without batching keeps the dtype
