"""optim.swa_utils against torch.optim.swa_utils: averaged weights, EMA, SWALR's schedule, update_bn."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.devices import to_host
from downslope.errors import ShapeError
from downslope.optim import swa_utils

torch = pytest.importorskip("torch")
TS = torch.optim.swa_utils


def _pair():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)  # the same starting weights on every run
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _nudge(ours, theirs, seed):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    for p, t in zip(ours.parameters(), theirs.parameters()):
        delta = rng.standard_normal(p.shape).astype(np.float32)
        p.data += ds.tensor(delta)
        with torch.no_grad():
            t += torch.tensor(delta)


@pytest.mark.parametrize("kind", ["swa", "ema", "ema_multi", "ema_buffers"])
def test_averaged_model_matches_torch(kind: str) -> None:
    ours, theirs = _pair()
    kwargs_ours: dict = {}
    kwargs_theirs: dict = {}
    if kind == "ema":
        kwargs_ours["avg_fn"], kwargs_theirs["avg_fn"] = swa_utils.get_ema_avg_fn(0.8), TS.get_ema_avg_fn(0.8)
    if kind in ("ema_multi", "ema_buffers"):
        kwargs_ours["multi_avg_fn"] = swa_utils.get_ema_multi_avg_fn(0.7)
        kwargs_theirs["multi_avg_fn"] = TS.get_ema_multi_avg_fn(0.7)
    if kind == "ema_buffers":
        kwargs_ours["use_buffers"] = kwargs_theirs["use_buffers"] = True
    avg_ours = swa_utils.AveragedModel(ours, **kwargs_ours)
    avg_theirs = TS.AveragedModel(theirs, **kwargs_theirs)
    x = np.random.default_rng(9).standard_normal((5, 3)).astype(np.float32)
    for step in range(4):
        _nudge(ours, theirs, step)
        ours(ds.tensor(x)), theirs(torch.tensor(x))  # moves the BatchNorm running statistics
        avg_ours.update_parameters(ours)
        avg_theirs.update_parameters(theirs)
    sd_ours, sd_theirs = avg_ours.state_dict(), avg_theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs)
    for key in sd_theirs:
        # float32 rounding: the two libraries order the running-average arithmetic differently
        np.testing.assert_allclose(to_host(sd_ours[key]), sd_theirs[key].numpy(), rtol=1e-5, atol=1e-5, err_msg=key)
    avg_ours.eval(), avg_theirs.eval()
    np.testing.assert_allclose(
        avg_ours(ds.tensor(x)).detach().numpy(), avg_theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(("strategy", "epochs"), [("cos", 3), ("linear", 4), ("cos", 0)])
def test_swalr_matches_torch(strategy: str, epochs: int) -> None:
    w, tw = ds.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt, topt = optim.SGD([w], lr=0.5), torch.optim.SGD([tw], lr=0.5)
    sched = swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=epochs, anneal_strategy=strategy)
    tsched = TS.SWALR(topt, swa_lr=0.05, anneal_epochs=epochs, anneal_strategy=strategy)
    for _ in range(7):
        opt.step(), topt.step()
        sched.step(), tsched.step()
        np.testing.assert_allclose(opt.param_groups[0]["lr"], topt.param_groups[0]["lr"], rtol=1e-12)


def test_update_bn_matches_torch() -> None:
    ours, theirs = _pair()
    x = np.random.default_rng(3).standard_normal((24, 3)).astype(np.float32)
    # The data set holds host data; update_bn moves each batch to the model's device, as torch's does.
    loader = ds.data.DataLoader(ds.data.TensorDataset(ds.tensor(x, device="cpu")), batch_size=8)
    tloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x)), batch_size=8)
    swa_utils.update_bn(loader, ours, device=ours[0].weight.device)
    TS.update_bn(tloader, theirs)
    np.testing.assert_allclose(ours[1].running_mean.numpy(), theirs[1].running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours[1].running_var.numpy(), theirs[1].running_var.numpy(), rtol=1e-5)
    assert ours[1].momentum == theirs[1].momentum == 0.1 and ours.training


@pytest.mark.parametrize("decay", [0.9, 0.75, 0.999])
def test_ema_of_the_integer_batch_count_buffer_matches_torchs_arithmetic(decay: float) -> None:
    # num_batches_tracked is int64: torch computes ema * decay + model * (1 - decay) in float32 and truncates
    ours, theirs = _pair()
    avg_ours = swa_utils.AveragedModel(ours, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)
    avg_theirs = TS.AveragedModel(theirs, multi_avg_fn=TS.get_ema_multi_avg_fn(decay), use_buffers=True)
    for i in range(40):
        x = np.full((4, 3), float(i), np.float32)
        ours(ds.tensor(x))
        theirs(torch.tensor(x))
        avg_ours.update_parameters(ours)
        avg_theirs.update_parameters(theirs)
        assert int(avg_ours.module[1].num_batches_tracked) == int(avg_theirs.module[1].num_batches_tracked)
    assert avg_ours.module[1].num_batches_tracked.dtype == ds.int64


@pytest.mark.parametrize("use_buffers", [False, True])
def test_update_parameters_with_another_shape_names_the_tensor(use_buffers: bool) -> None:
    with pytest.raises(RuntimeError):  # PyTorch refuses it too (its copy_/lerp_ cannot broadcast)
        torch.optim.swa_utils.AveragedModel(torch.nn.Linear(2, 2)).update_parameters(torch.nn.Linear(3, 2))
    avg = swa_utils.AveragedModel(nn.Linear(2, 2), use_buffers=use_buffers)
    before = [p.detach().numpy().copy() for p in avg.parameters()]
    with pytest.raises(
        ShapeError, match=r"parameter 'weight' has shape \(2, 3\) in the model but \(2, 2\) in the average"
    ):
        avg.update_parameters(nn.Linear(3, 2))
    for p, b in zip(avg.parameters(), before):  # nothing written, no model counted
        np.testing.assert_array_equal(p.detach().numpy(), b)
    assert int(avg.n_averaged) == 0
    bn = swa_utils.AveragedModel(nn.BatchNorm1d(2), use_buffers=use_buffers)
    bn.update_parameters(nn.BatchNorm1d(2))
    with pytest.raises(ShapeError, match=r"parameter 'weight' has shape \(3,\) in the model but \(2,\)"):
        bn.update_parameters(nn.BatchNorm1d(3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ema_multi_avg_fn_rounds_as_torchs_lerp(dtype: str) -> None:
    # torch's multi-tensor EMA is _foreach_lerp_(ema, current, 1 - decay); decay = 0.5 takes lerp's
    # large-weight form, whose product by 0.5 is exact, so the two agree to the bit
    rng = np.random.default_rng(0)
    start = (rng.standard_normal(512) * 10.0 ** rng.integers(-4, 4, 512)).astype(dtype)
    current = (rng.standard_normal(512) * 10.0 ** rng.integers(-4, 4, 512)).astype(dtype)
    ours, theirs = ds.from_numpy(start.copy()), torch.tensor(start.copy())
    swa_utils.get_ema_multi_avg_fn(0.5)([ours], [ds.from_numpy(current)], ds.tensor(1))
    TS.get_ema_multi_avg_fn(0.5)([theirs], [torch.tensor(current)], torch.tensor(1))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
