"""downslope.amp against PyTorch's: GradScaler's dynamic loss scaling, step for step, and autocast's
checks (downslope computes in float32 inside autocast)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import amp, nn, optim

torch = pytest.importorskip("torch")


def _pair(seed: int = 0) -> tuple[nn.Module, object]:
    ds.manual_seed(seed)
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.detach().numpy().copy()))
    return ours, theirs


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's note on the poisoned steps
def test_grad_scaler_scales_skips_backs_off_and_grows_as_pytorchs():
    ours, theirs = _pair()
    opt_ours, opt_theirs = optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    kw = dict(init_scale=1024.0, growth_factor=2.0, backoff_factor=0.25, growth_interval=3)
    s_ours, s_theirs = amp.GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    poison = {2, 3, 9}  # steps whose loss is made infinite: the step is skipped and the scale backs off
    scales, results = [], []
    for step in range(12):
        for model, opt, scaler, lib in ((ours, opt_ours, s_ours, ds), (theirs, opt_theirs, s_theirs, torch)):
            opt.zero_grad()
            loss = model(lib.tensor(x)).square().mean()
            if step in poison:
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            if step % 2:  # unscale first (as before gradient clipping) on odd steps
                scaler.unscale_(opt)
            results.append(scaler.step(opt))
            scaler.update()
        scales.append((s_ours.get_scale(), s_theirs.get_scale()))
        assert s_ours.state_dict() == pytest.approx(s_theirs.state_dict()), step
    for a, b in scales:
        assert a == b
    assert scales[2][0] == 1024.0 * 0.25 and scales[-1][0] != scales[3][0]  # it backed off, then grew again
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_grad_scaler_refuses_what_pytorchs_refuses():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    scaler = amp.GradScaler("cpu")
    with pytest.raises(ds.DownslopeError, match="No inf checks"):
        scaler.update()
    scaler.scale(model(ds.ones(1, 2)).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(ds.DownslopeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(ds.DownslopeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(ds.DownslopeError, match="Closure"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(ds.DownslopeError, match="growth factor"):
        amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ds.DownslopeError, match="empty"):
        scaler.load_state_dict({})


def test_a_disabled_scaler_passes_through_and_cuda_without_a_gpu_disables_itself():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    off = amp.GradScaler("cpu", enabled=False)
    loss = model(ds.ones(1, 2)).sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    loss.backward()
    before = model.weight.detach().numpy().copy()
    off.step(opt)  # the optimizer's own step
    off.update()  # nothing to check when disabled
    assert not np.array_equal(model.weight.detach().numpy(), before)
    if not ds.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            scaler = ds.cuda.amp.GradScaler()
        assert not scaler.is_enabled()


def test_grad_scaler_state_round_trips_and_scales_lists():
    scaler = amp.GradScaler("cpu", init_scale=4.0, growth_interval=7)
    other = amp.GradScaler("cpu")
    other.load_state_dict(scaler.state_dict())
    assert other.state_dict() == scaler.state_dict() and other.get_growth_interval() == 7
    a, b = scaler.scale([ds.tensor(1.0), ds.tensor(2.0)])
    assert (a.item(), b.item()) == (4.0, 8.0)


def test_autocast_computes_in_float32_checks_its_arguments_and_warns_once():
    amp._warned[0] = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ds.autocast("cpu", dtype=ds.bfloat16):
            assert ds.is_autocast_enabled("cpu")
            y = ds.ones(2, 2) @ ds.ones(2, 2)
        with ds.autocast("cpu"):
            pass
    assert not ds.is_autocast_enabled("cpu")
    assert y.dtype == np.float32
    assert sum("computes in float32" in str(w.message) for w in caught) == 1
    with pytest.raises(ds.DownslopeError, match="device_type"):
        ds.autocast("gpu")

    @ds.autocast("cpu", enabled=False)
    def double(t: ds.Tensor) -> ds.Tensor:
        return t * 2

    assert double(ds.ones(1)).item() == 2.0
    if not ds.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            ctx = ds.cuda.amp.autocast()
        with ctx:
            assert not ds.is_autocast_enabled("cuda")


def test_bfloat16_can_be_named_but_no_tensor_holds_it():
    with pytest.raises(TypeError, match="bfloat16"):
        ds.zeros(2, dtype=ds.bfloat16)


def test_cpu_and_cuda_amp_spellings_map_to_autocast():
    amp._warned[0] = True  # (the float32 notice is tested above)
    with ds.cpu.amp.autocast() as ctx:
        assert ds.is_autocast_enabled("cpu")
    assert not ds.is_autocast_enabled("cpu")
    assert ctx.device == "cpu" and ctx.fast_dtype is ds.bfloat16  # torch.cpu.amp.autocast's default dtype
    with ds.cpu.amp.autocast(enabled=False):
        assert not ds.is_autocast_enabled("cpu")
    assert ds.cpu.amp.GradScaler(init_scale=8.0).get_scale() == 8.0
    assert ds.cpu.is_available() and ds.cpu.device_count() == 1 and ds.cpu.current_device() == "cpu"
    ds.cpu.synchronize()
    assert callable(ds.cuda.amp.autocast)
