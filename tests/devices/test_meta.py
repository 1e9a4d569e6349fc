"""The "meta" device (downslope.devices.meta) against PyTorch's: tensors with a shape and a dtype
but no values, made by ``.to('meta')`` or ``device='meta'``; the model-ensembling recipe's
``copy.deepcopy(model).to('meta')`` run through ``functional_call``; reading values raises."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.devices import meta
from downslope.errors import DeviceUnavailableError, UnimplementedError
from downslope.func import functional_call, stack_module_state, vmap


def test_tensor_to_meta_keeps_shape_dtype_and_prints_as_torch():
    ours = ds.randn(2, 3).to("meta")
    theirs = torch.randn(2, 3).to("meta")
    assert ours.is_meta and theirs.is_meta
    assert str(ours.device) == str(theirs.device) == "meta"
    assert ours.shape == tuple(theirs.shape) and ours.dtype == ds.float32
    assert ours.stride() == theirs.stride() and ours.numel() == theirs.numel()
    assert repr(ours) == repr(theirs)
    assert not ds.zeros(2).is_meta


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.zeros(2, 3, device="meta"),
        lambda lib: lib.ones(4, dtype=lib.float64, device="meta"),
        lambda lib: lib.empty(3, 1, device="meta"),
        lambda lib: lib.randn(5, device="meta"),
        lambda lib: lib.full((2, 2), 7.0, device="meta"),
        lambda lib: lib.tensor([1, 2, 3], device="meta"),
    ],
)
def test_factories_on_meta(make):
    ours, theirs = make(ds), make(torch)
    assert ours.is_meta and ours.shape == tuple(theirs.shape)
    assert str(ours.dtype).removeprefix("torch.") == str(theirs.dtype).removeprefix("torch.")


def test_module_to_meta_then_functional_call_as_the_ensembling_recipe():
    """pytorch/tutorials ensembling.py: stack the models' states, move a copy of one to 'meta', vmap
    functional_call over the stacked parameters; each slice is that model's output (and torch's)."""
    rng = np.random.default_rng(0)
    ours = [ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.ReLU(), ds.nn.Linear(4, 2)) for _ in range(3)]
    theirs = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)) for _ in range(3)]
    for a, b in zip(ours, theirs):
        b.load_state_dict({k: torch.tensor(v.numpy()) for k, v in a.state_dict().items()})
    x = rng.standard_normal((5, 3)).astype(np.float32)

    params, buffers = stack_module_state(ours)
    base = copy.deepcopy(ours[0]).to("meta")
    assert all(p.is_meta and p.requires_grad for p in base.parameters())
    got = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)), in_dims=(0, 0, None))(
        params, buffers, ds.tensor(x)
    )

    t_params, t_buffers = torch.func.stack_module_state(theirs)
    t_base = copy.deepcopy(theirs[0]).to("meta")
    want = torch.vmap(lambda p, b, xx: torch.func.functional_call(t_base, (p, b), (xx,)), in_dims=(0, 0, None))(
        t_params, t_buffers, torch.tensor(x)
    )
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1].detach().numpy(), ours[1](ds.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "read",
    [
        lambda t: t + 1,
        lambda t: t.sum(),
        lambda t: t.cpu(),
        lambda t: t.to("cpu"),
        lambda t: t.tolist(),
        lambda t: t[0],
        lambda t: t.reshape(6),
        lambda t: ds.nn.functional.relu(t),
        lambda t: t.fill_(1.0),
        lambda t: ds.nn.Linear(3, 2).to("meta")(t),
    ],
)
def test_reading_a_meta_tensor_raises(read):
    t = ds.zeros(2, 3, device="meta")
    with pytest.raises(UnimplementedError, match=meta.NO_DATA):
        read(t)


@pytest.mark.host_only  # the strict stand-in's numpy() goes through its own copy to the host
def test_numpy_of_a_meta_tensor_raises_as_torch():
    with pytest.raises(TypeError, match="can't convert meta device type tensor to numpy"):
        ds.zeros(2, device="meta").numpy()
    with pytest.raises(TypeError, match="can't convert meta device type tensor to numpy"):
        torch.zeros(2, device="meta").numpy()


def test_a_module_on_meta_refuses_to_run():
    m = copy.deepcopy(ds.nn.Linear(3, 2)).to("meta")
    with pytest.raises(UnimplementedError, match=meta.NO_DATA):
        m(ds.randn(4, 3))


def test_copies_and_to_empty_read_no_values():
    m = ds.nn.Linear(3, 2).to("meta")
    twin = copy.deepcopy(m)
    assert twin.weight.is_meta and twin.weight is not m.weight
    m.to_empty(device="cpu")
    assert not m.weight.is_meta and m.weight.shape == (2, 3) and m.weight.requires_grad
    assert m(ds.randn(1, 3)).shape == (1, 2)


def test_meta_as_the_default_device_is_refused():
    """A layer built on a default 'meta' device would write its initial values into nothing."""
    with pytest.raises(DeviceUnavailableError, match="not as the default device"):
        ds.set_default_device("meta")
    assert ds.get_default_device() == ds.device("cpu")
