"""Devices: moving tensors and modules between the CPU and a device (the strict stand-in here), torch's API."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import downslope as ds
from downslope import devices, nn
from downslope.devices.strict import StrictArray


def test_tensor_on_the_strict_device_keeps_values_dtype_and_reports_its_device():
    host = np.array([[1.5, -2.0]], np.float32)
    t = ds.tensor(host, device="strict")
    assert isinstance(t.array, StrictArray) and t.device == ds.device("strict") and not t.is_cuda
    assert t.dtype == np.float32 and t.shape == (1, 2)
    np.testing.assert_array_equal(t.cpu().numpy(), host)
    assert t.tolist() == host.tolist() and "device='strict'" in repr(t)


def test_numpy_of_a_device_tensor_raises_like_torch():
    t = ds.zeros(2, device="strict")
    with pytest.raises(TypeError, match=r"can't convert strict device type tensor to numpy\. Use Tensor\.cpu\(\)"):
        t.numpy()
    with pytest.raises(TypeError, match="can't convert"):
        np.asarray(t)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: ds.zeros(2, 3, device=d),
        lambda d: ds.ones(2, 3, device=d),
        lambda d: ds.empty(2, 3, device=d),
        lambda d: ds.full((2, 3), 0.5, device=d),
        lambda d: ds.eye(2, 3, device=d),
        lambda d: ds.arange(6, device=d),
        lambda d: ds.linspace(0, 1, 4, device=d),
        lambda d: ds.randint(0, 5, (3,), device=d),
        lambda d: ds.randperm(4, device=d),
        lambda d: ds.tensor([1, 2], device=d),
        lambda d: ds.as_tensor([1.0], device=d),
    ],
)
def test_factories_take_device_and_give_the_cpus_values(make):
    ds.manual_seed(3)
    on_device = make("strict")
    ds.manual_seed(3)
    on_host = make(None)
    assert on_device.device == "strict" and on_host.device == "cpu"
    np.testing.assert_array_equal(on_device.cpu().numpy(), on_host.numpy())
    assert on_device.dtype == on_host.dtype


def test_seeded_random_factories_give_the_same_draws_on_every_device():
    ds.manual_seed(7)
    a = ds.randn(4, 3, device="strict")
    b = ds.rand(4, device="strict")
    ds.manual_seed(7)
    np.testing.assert_array_equal(a.cpu().numpy(), ds.randn(4, 3).numpy())
    np.testing.assert_array_equal(b.cpu().numpy(), ds.rand(4).numpy())


def test_like_factories_follow_their_tensors_device():
    t = ds.ones(2, 2, device="strict")
    for made in (ds.zeros_like(t), ds.ones_like(t), ds.full_like(t, 3.0), ds.randn_like(t), ds.rand_like(t)):
        assert made.device == "strict" and made.shape == (2, 2)
    assert ds.zeros_like(t, device="cpu").device == "cpu"
    for made in (t.new_zeros(3), t.new_ones(3), t.new_empty(3), t.new_full((3,), 2.0), t.new_tensor([1.0])):
        assert made.device == "strict"
    assert t.new_zeros(2, device="cpu").device == "cpu"


def test_to_cpu_and_back_is_a_copy_and_returns_self_when_nothing_moves():
    t = ds.tensor([1.0, 2.0])
    moved = t.to("strict")
    assert moved is not t and moved.to("strict") is moved and moved.to(ds.device("strict")) is moved
    back = moved.cpu()
    assert back.device == "cpu" and not np.shares_memory(back.numpy(), t.numpy())
    assert t.cpu() is t and moved.to("cpu", ds.float64).dtype == np.float64
    assert moved.to(ds.float64).device == "strict"
    like = t.to(ds.zeros(1, dtype=ds.float64, device="strict"))  # another tensor's dtype and device
    assert like.device == "strict" and like.dtype == np.float64


def test_moving_is_recorded_so_the_gradient_moves_back():
    w = ds.tensor([1.0, -2.0], requires_grad=True)
    d = w.to("strict")
    assert d.requires_grad and d.grad_fn is not None
    (g,) = d._vjp(devices.to_device(np.array([3.0, 4.0], np.float32), "strict"), d.array, (w,), d._saved, (True,), None)
    assert type(g) is np.ndarray and g.tolist() == [3.0, 4.0]


def test_an_op_recording_inputs_from_two_devices_names_both():
    from downslope.tensor import record_op

    a = ds.tensor([1.0, 2.0], requires_grad=True)
    b = ds.tensor([1.0, 2.0], device="strict")
    with pytest.raises(RuntimeError, match="same device, but found at least two devices, strict and cpu"):
        record_op(b.array + b.array, (a, b), lambda *args: None)
    scalar = ds.tensor(2.0, requires_grad=True)  # a 0-d host tensor may join a device op, as in torch
    assert record_op(b.array * 2.0, (scalar, b), lambda *args: None).requires_grad


def test_cuda_is_refused_clearly_without_cupy_and_cupy_is_never_imported_by_import_downslope():
    if ds.cuda.is_available():
        pytest.skip("a GPU is present: the refusal cannot be seen here")
    for move in (lambda: ds.zeros(2).cuda(), lambda: ds.zeros(2).to("cuda:0"), lambda: ds.ones(2, device="cuda")):
        with pytest.raises(RuntimeError, match=r"not available: CuPy is not installed or sees no GPU"):
            move()
    import subprocess

    code = "import sys, downslope; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_to_moves_parameters_buffers_and_grads_in_place_keeping_identity():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    params = list(model.parameters())
    before = [p.detach().numpy().copy() for p in params]
    params[0].grad = ds.ones(4, 3)
    assert model.to("strict") is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.device == "strict" for p in model.parameters()) and params[0].grad.device == "strict"
    assert all(b.device == "strict" for b in model.buffers())
    assert model.cpu() is model and all(p.device == "cpu" for p in model.parameters())
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b)


def test_like_moves_host_data_to_the_arrays_device_and_keeps_arrays_already_there():
    on_strict = devices.to_device(np.zeros(2, np.float32), "strict")
    moved = devices.like([1.0, 2.0], on_strict)
    assert isinstance(moved, StrictArray) and moved.get().tolist() == [1.0, 2.0]
    assert devices.like(on_strict, on_strict) is on_strict
    host = np.ones(2)
    assert devices.like(host, np.zeros(2)) is host


@pytest.mark.parametrize("where", ["cpu", "strict"])
def test_full_makes_the_array_directly_on_its_device(where):
    made = devices.full((2, 3), 1.5, np.float32, where)
    assert str(devices.device_of(made)) == where and made.shape == (2, 3) and made.dtype == np.float32
    np.testing.assert_array_equal(devices.to_host(made), np.full((2, 3), 1.5, np.float32))


def test_as_array_turns_numpy_scalars_into_0d_arrays_and_passes_arrays_through():
    from downslope.backend import as_array

    assert type(as_array(np.float32(2.0))) is np.ndarray and as_array(np.float32(2.0)).shape == ()
    on_strict = devices.to_device(np.zeros(()), "strict")
    assert as_array(on_strict) is on_strict


def test_a_view_of_a_strict_array_has_the_owner_itself_as_base_like_cupy():
    owner = devices.to_device(np.arange(6.0).reshape(2, 3), "strict")
    assert owner.base is None
    assert owner[0].base is owner and owner[0][1:].base is owner and owner.T.base is owner
    assert (owner * 2).base is None


def test_a_graph_of_core_ops_gives_the_same_values_and_gradients_on_the_strict_device():
    # numbers, masks, 0-d results, indexing and reductions all meet device arrays here
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal((6, 6)).astype(np.float32), rng.standard_normal((6, 6)).astype(np.float32)
    results = {}
    for where in ("cpu", "strict"):
        a = ds.tensor(a0, device=where, requires_grad=True)
        b = ds.tensor(b0, device=where, requires_grad=True)
        h = ((a * b + a).tanh() * 0.5 - b).exp() / (b * b + 1)
        h = (h.relu() @ a).sigmoid()[np.array([0, 2, 2, 5])].sum(0) * 2.0 + 1.0
        h = ds.where(h > 1.5, h, h * 0.1).log().reshape(2, 3).T.mean(1)
        h = ds.where(np.array([True, False, True]), h, 0.0) + h.max() * h.std() + ds.logsumexp(h, 0)
        out = (h.neg() ** 2).sum() * 1.0
        out.backward()
        assert str(out.device) == where and str(a.grad.device) == where
        results[where] = (out.item(), a.grad.cpu().numpy(), b.grad.cpu().numpy())
    np.testing.assert_allclose(results["strict"][0], results["cpu"][0], rtol=1e-6)
    for got, want in zip(results["strict"][1:], results["cpu"][1:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
