"""The device API on a real CUDA GPU (CuPy), and the same checks on the strict stand-in on every run.

Tests marked ``gpu`` need CuPy and a GPU and skip cleanly without them (``pytest -m gpu`` runs them,
as benchmarks/gpu.py does). Each check runs for ``"strict"`` too, so it is exercised on every CI run.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.devices import device_of

GPU = [pytest.mark.gpu, pytest.mark.skipif(not ds.cuda.is_available(), reason="needs CuPy and a CUDA GPU")]
DEVICES = ["strict", pytest.param("cuda", marks=GPU)]


@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_keeps_values_dtype_and_reports_the_device(device):
    host = np.arange(12, dtype=np.float64).reshape(3, 4)
    t = ds.tensor(host, dtype=ds.float64, device=device)
    assert t.device.type == device and t.is_cuda == (device == "cuda")
    with pytest.raises(TypeError, match="can't convert .* device type tensor to numpy"):
        t.numpy()
    np.testing.assert_array_equal(t.cpu().numpy(), host)
    assert t.to("cpu").device == "cpu" and t.dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
def test_seeded_factories_on_the_device_repeat_the_cpus_draws(device):
    ds.manual_seed(11)
    on_device = [ds.randn(5, device=device), ds.rand(3, device=device), ds.randperm(6, device=device)]
    ds.manual_seed(11)
    on_host = [ds.randn(5), ds.rand(3), ds.randperm(6)]
    for a, b in zip(on_device, on_host):
        np.testing.assert_array_equal(a.cpu().numpy(), b.numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_on_the_device_match_the_cpu_and_checkpoints_load_on_either_side(device):
    ds.manual_seed(0)
    host_model = nn.Linear(4, 3)
    moved = nn.Linear(4, 3)
    moved.load_state_dict(host_model.state_dict())
    moved.to(device)
    opts = [optim.Adam(host_model.parameters(), lr=0.1), optim.Adam(moved.parameters(), lr=0.1)]
    for _ in range(10):
        for model, opt in zip((host_model, moved), opts):
            opt.zero_grad()
            for p in model.parameters():  # a fixed gradient rule computed on the host, moved to the device
                p.grad = ds.tensor(np.cos(p.detach().cpu().numpy()), device=p.device)
            opt.step()
    for a, b in zip(host_model.parameters(), moved.parameters()):
        np.testing.assert_allclose(b.detach().cpu().numpy(), a.detach().numpy(), rtol=1e-6, atol=1e-7)
    buffer = io.BytesIO()
    ds.save(opts[1].state_dict(), buffer)
    buffer.seek(0)
    saved = ds.load(buffer)
    assert all(  # host Tensors, as the optimizer's state_dict gives them
        isinstance(v, ds.Tensor) and type(v.array) is np.ndarray
        for entry in saved["state"].values()
        for v in entry.values()
    )
    buffer.seek(0)
    on_device = ds.load(buffer, map_location=device)
    assert device_of(on_device["state"][0]["exp_avg"].array).type == device
