"""Devices: ds.device, the cuda/accelerator/backends queries, and moving tensors (CPU only), against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("spec", ["cpu", "cuda", "cuda:1", "mps", "meta"])
def test_device_has_torchs_type_index_str_and_repr(spec):
    ours, theirs = ds.device(spec), torch.device(spec)
    assert (ours.type, ours.index, str(ours), repr(ours)) == (theirs.type, theirs.index, str(theirs), repr(theirs))


def test_device_equality_and_construction():
    assert ds.device("cuda", 0) == ds.device("cuda:0") and str(ds.device("cuda", 0)) == str(torch.device("cuda", 0))
    assert ds.device("cpu") == "cpu" and ds.device("cpu") != "cuda"  # strings too (torch: False for strings)
    assert ds.device(ds.device("cpu")) == ds.device("cpu")
    assert len({ds.device("cpu"), ds.device("cpu")}) == 1
    for bad in ("gpu", "cuda:x"):
        with pytest.raises(ValueError, match="device"):
            ds.device(bad)
    with pytest.raises(TypeError):
        ds.device(3.5)


def test_no_accelerator_is_reported():
    assert ds.cuda.is_available() is torch.cuda.is_available() is False
    assert ds.cuda.device_count() == torch.cuda.device_count() == 0
    assert ds.accelerator.is_available() is False and ds.accelerator.current_accelerator() is None
    assert ds.backends.mps.is_available() is False
    ds.cuda.manual_seed(0)
    ds.cuda.manual_seed_all(0)  # no-ops, as in torch without CUDA
    ds.backends.cudnn.deterministic = True
    with pytest.raises(RuntimeError, match="CPU"):
        ds.cuda.current_device()  # (CPU named in the message)


def test_gpu_programs_settings_and_queries_run_without_a_gpu_as_in_torch():
    """What PyTorch programs written for a GPU call around their training loop, on a machine without one:
    the same answers as torch's CPU build (memory figures 0, settings kept), errors where torch has them."""
    if ds.cuda.is_available():
        pytest.skip("a GPU is present")
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        assert getattr(ds.cuda, name)() == getattr(torch.cuda, name)() == 0, name
    ds.cuda.reset_peak_memory_stats()
    ds.backends.cuda.matmul.allow_tf32 = True
    ds.backends.cudnn.allow_tf32 = True
    assert ds.backends.cuda.is_built() is False
    ds.set_float32_matmul_precision("high")
    assert ds.get_float32_matmul_precision() == "high"
    ds.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="highest"):
        ds.set_float32_matmul_precision("fast")
    x = ds.ones(2)
    assert x.pin_memory() is x and not x.is_pinned()
    for query in (ds.cuda.get_device_name, ds.cuda.get_device_properties, ds.cuda.Event):
        with pytest.raises(RuntimeError, match="no CUDA device"):
            query()


def test_usual_device_selection_idiom_gives_the_cpu():
    dev = ds.device("cuda" if ds.cuda.is_available() else "cpu")
    x = ds.ones(2, 3, device=dev)
    assert x.device == dev == ds.device("cpu") and x.device.type == "cpu" and not x.is_cuda
    assert x.to(dev) is x and x.cpu() is x and x.to("cpu:0") is x


def test_to_takes_torchs_signatures():
    x = ds.tensor([1.5, -2.0])
    for args, kwargs, dtype in [
        ((ds.float64,), {}, np.float64),
        (("cpu", ds.int64), {}, np.int64),
        ((), {"device": "cpu", "dtype": ds.float16}, np.float16),
        ((ds.zeros(1, dtype="int32"),), {}, np.int32),
        ((ds.device("cpu"),), {"non_blocking": True}, np.float32),
    ]:
        ours = x.to(*args, **kwargs)
        assert ours.dtype == dtype
    copied = x.to("cpu", copy=True)
    assert copied is not x and not np.shares_memory(copied.numpy(), x.numpy())
    w = ds.tensor([1.0], requires_grad=True)
    (w.to(ds.float64) * 3).sum().backward()  # the cast is differentiable
    assert w.grad.tolist() == [3.0]


@pytest.mark.parametrize("move", [lambda t: t.cuda(), lambda t: t.to("cuda"), lambda t: t.to(ds.device("mps"))])
def test_moving_to_an_absent_accelerator_is_refused_clearly(move):
    if ds.cuda.is_available():
        pytest.skip("CuPy sees a GPU here")
    with pytest.raises(RuntimeError, match="is not available"):
        move(ds.zeros(2))
    with pytest.raises(RuntimeError, match="CuPy is not installed or sees no GPU"):
        ds.zeros(2, device="cuda")


def test_utils_dlpack_round_trips_and_shares_memory_with_torch():
    torch = pytest.importorskip("torch")
    from downslope.utils.dlpack import from_dlpack, to_dlpack

    t = ds.tensor([1.0, 2.0, 3.0])
    back = from_dlpack(to_dlpack(t))
    t[0] = 9.0
    assert back.tolist() == [9.0, 2.0, 3.0]
    theirs = torch.utils.dlpack.from_dlpack(to_dlpack(t))
    assert theirs.tolist() == [9.0, 2.0, 3.0]
    capsule = torch.utils.dlpack.to_dlpack(torch.arange(4.0))
    assert from_dlpack(capsule).tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="read already"):
        from_dlpack(capsule)  # a capsule is consumed once
    assert from_dlpack(torch.ones(2)).tolist() == [1.0, 1.0]
    assert ds.utils.dlpack.from_dlpack is from_dlpack
    with pytest.raises(RuntimeError, match="requires grad"):
        to_dlpack(ds.ones(2, requires_grad=True))


@pytest.fixture
def restore_default_device():
    yield
    ds.set_default_device(None)


def test_default_device_is_torchs_cpu_and_cpu_changes_nothing(restore_default_device):
    assert repr(ds.get_default_device()) == repr(torch.get_default_device())
    ds.set_default_device("cpu")
    torch.set_default_device("cpu")
    try:
        assert repr(ds.get_default_device()) == repr(torch.get_default_device())
        assert type(ds.zeros(2).array) is np.ndarray and type(ds.nn.Linear(2, 2).weight.array) is np.ndarray
    finally:
        torch.set_default_device(None)


def test_a_default_device_places_factories_and_layers_but_not_like_factories(restore_default_device):
    ds.manual_seed(0)
    on_cpu = ds.randn(3).numpy()
    ds.set_default_device("strict")  # the test stand-in for a GPU
    assert ds.get_default_device() == "strict"
    ds.manual_seed(0)
    made = [ds.randn(3), ds.zeros(2), ds.ones(2), ds.full((2,), 3.0), ds.tensor([1.0]), ds.arange(3), ds.eye(2)]
    assert all(t.device == "strict" for t in made)
    np.testing.assert_array_equal(made[0].cpu().numpy(), on_cpu)  # drawn on the host: the same numbers
    layer = ds.nn.Linear(2, 3)
    assert all(p.device == "strict" for p in layer.parameters())
    assert ds.zeros(2, device="cpu").device == "cpu"  # an explicit device wins
    host = ds.zeros(2, device="cpu")
    assert ds.zeros_like(host).device == "cpu" and ds.randn_like(host).device == "cpu"
    ds.set_default_device(None)
    assert ds.zeros(1).device == "cpu" and ds.get_default_device() == "cpu"


def test_the_default_device_is_per_thread_and_with_device_sets_it_for_a_block(restore_default_device):
    import threading

    ds.set_default_device("strict")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(ds.zeros(1).device))
    worker.start()
    worker.join()
    assert seen == ["cpu"]  # as torch's thread-local default
    ds.set_default_device(None)
    with ds.device("strict"):
        assert ds.ones(1).device == "strict"
        with ds.device("cpu"):
            assert ds.ones(1).device == "cpu"
        assert ds.ones(1).device == "strict"
    assert ds.ones(1).device == "cpu"


@pytest.mark.skipif(ds.cuda.is_available(), reason="checks the message given without a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "meta"])
def test_an_unusable_default_device_is_refused_with_a_clear_error(spec, restore_default_device):
    with pytest.raises(ds.DownslopeError, match="not available"):
        ds.set_default_device(spec)
    assert ds.get_default_device() == "cpu"


def test_deterministic_algorithms_flags_round_trip_like_torch():
    for mode, warn_only in ((True, False), (True, True), (False, False)):
        ds.use_deterministic_algorithms(mode, warn_only=warn_only)
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        assert ds.are_deterministic_algorithms_enabled() == torch.are_deterministic_algorithms_enabled() == mode
        assert (
            ds.is_deterministic_algorithms_warn_only_enabled() == torch.is_deterministic_algorithms_warn_only_enabled()
        )
    with pytest.raises(TypeError):
        ds.use_deterministic_algorithms("yes")
