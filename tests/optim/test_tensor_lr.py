"""A learning rate given as a Tensor (``Adam(params, lr=torch.tensor(1e-3))``) stays that Tensor in the
param groups, as in PyTorch: ``group['lr'].fill_()`` changes the next step, the schedulers write into it,
and ``get_last_lr()`` gives Tensors."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def _params(lib: Any) -> list[Any]:
    return [
        lib.nn.Parameter(lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=lib.float64)),
        lib.nn.Parameter(lib.tensor([0.5, -1.5], dtype=lib.float64)),
    ]


def _loss(ps: list[Any]) -> Any:
    return sum(((p - 0.2) ** 4).sum() + p.sum() for p in ps)


def _values(lib: Any, ps: list[Any]) -> list[np.ndarray]:
    return [np.asarray(to_host(p.detach().numpy()) if lib is ds else p.detach().numpy()) for p in ps]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adafactor"])
def test_a_tensor_lr_stays_the_users_tensor_and_fill_changes_the_next_step(name: str) -> None:
    if not hasattr(torch.optim, name):
        pytest.skip(f"this torch has no {name}")

    def run(lib: Any) -> tuple[list[np.ndarray], float]:
        ps = _params(lib)
        lr = lib.tensor(0.05, dtype=lib.float64)
        opt = getattr(lib.optim, name)(ps, lr=lr)
        assert opt.param_groups[0]["lr"] is lr
        for i in range(4):
            if i == 2:
                opt.param_groups[0]["lr"].fill_(0.01)
            opt.zero_grad()
            _loss(ps).backward()
            opt.step()
        return _values(lib, ps), opt.param_groups[0]["lr"].item()

    (ours, our_lr), (theirs, their_lr) = run(ds), run(torch)
    assert our_lr == their_lr == 0.01
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _scheduler(lib: Any, name: str, opt: Any) -> Any:
    S = lib.optim.lr_scheduler
    return {
        "StepLR": lambda: S.StepLR(opt, 2, 0.5),
        "ExponentialLR": lambda: S.ExponentialLR(opt, 0.9),
        "CosineAnnealingLR": lambda: S.CosineAnnealingLR(opt, 5),
        "LambdaLR": lambda: S.LambdaLR(opt, lambda e: 1 / (1 + e)),
        "CyclicLR": lambda: S.CyclicLR(opt, 0.01, 0.1, 2, cycle_momentum=False),
        "ReduceLROnPlateau": lambda: S.ReduceLROnPlateau(opt, patience=0, factor=0.5),
        "SequentialLR": lambda: S.SequentialLR(opt, [S.ConstantLR(opt, 0.5, 2), S.ExponentialLR(opt, 0.9)], [2]),
    }[name]()


@pytest.mark.parametrize(
    "name",
    ["StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR", "CyclicLR", "ReduceLROnPlateau", "SequentialLR"],
)
def test_schedulers_write_into_a_tensor_lr_as_torchs(name: str) -> None:
    def run(lib: Any) -> tuple[list[np.ndarray], list[float], list[float]]:
        ps = _params(lib)
        lr = lib.tensor(0.05, dtype=lib.float64)
        opt = lib.optim.SGD(ps, lr=lr, momentum=0.9)
        sched = _scheduler(lib, name, opt)
        lrs, last = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(6):
                opt.zero_grad()
                _loss(ps).backward()
                opt.step()
                if name == "ReduceLROnPlateau":
                    sched.step(1.0)
                else:
                    sched.step()
                assert opt.param_groups[0]["lr"] is lr  # written into, never replaced
                got = sched.get_last_lr()[0]
                assert isinstance(got, lib.Tensor) and got is not lr  # a clone, as torch's
                lrs.append(lr.item())
                last.append(got.item())
        return _values(lib, ps), lrs, last

    (ours, our_lrs, our_last), (theirs, their_lrs, their_last) = run(ds), run(torch)
    np.testing.assert_allclose(our_lrs, their_lrs, rtol=1e-12)
    np.testing.assert_allclose(our_last, their_last, rtol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_a_tensor_lr_survives_a_state_dict_round_trip() -> None:
    ps = _params(ds)
    lr = ds.tensor(0.05, dtype=ds.float64)
    opt = ds.optim.Adam(ps, lr=lr)
    saved = opt.state_dict()
    lr.fill_(0.2)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.05


def _one(lib: Any) -> list[Any]:
    return [lib.nn.Parameter(lib.ones(2))]


def _outcome(make: Any) -> type[BaseException] | None:
    try:
        make()
    except (ValueError, RuntimeError, TypeError) as e:
        return type(e)
    return None


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
@pytest.mark.parametrize(("fused", "foreach"), [(True, True), (True, None), (None, True), (False, True), (True, False)])
def test_fused_with_foreach_is_refused_as_torch(name: str, fused: Any, foreach: Any) -> None:
    def make(lib: Any) -> Any:
        return lambda: getattr(lib.optim, name)(_one(lib), lr=0.1, fused=fused, foreach=foreach)

    theirs, ours = _outcome(make(torch)), _outcome(make(ds))
    assert (ours is None) == (theirs is None) == (not (fused and foreach))
    if theirs is not None:
        assert issubclass(ours, theirs)  # RuntimeError, as torch's
        with pytest.raises(RuntimeError, match=r"`fused` and `foreach` cannot be `True` together, got fused=True"):
            make(ds)()


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("which", ["lr", "betas"])
@pytest.mark.parametrize(
    "flags", [{"foreach": True}, {"foreach": True, "capturable": True}, {"foreach": None}, {"foreach": False}]
)
def test_a_tensor_lr_or_betas_with_foreach_is_refused_as_torch(name: str, which: str, flags: dict[str, Any]) -> None:
    def make(lib: Any) -> Any:
        kw = {"lr": lib.tensor(0.01)} if which == "lr" else {"betas": (lib.tensor(0.9), lib.tensor(0.99))}
        return lambda: getattr(lib.optim, name)(_one(lib), **kw, **flags)

    theirs, ours = _outcome(make(torch)), _outcome(make(ds))
    refused = flags["foreach"] is True and not flags.get("capturable")
    assert (theirs is not None) == (ours is not None) == refused
    if refused:
        assert theirs is ValueError and ours is not None and issubclass(ours, ValueError)
        label = "lr" if which == "lr" else r"betas\[0\]"
        with pytest.raises(
            ValueError, match=label + " as a Tensor is not supported for capturable=False and foreach=True"
        ):
            make(ds)()


def test_state_dict_keeps_a_tensor_lr_as_a_tensor_copy_as_torch() -> None:
    def saved(lib: Any) -> tuple[Any, Any]:
        ps = _params(lib)
        lr = lib.tensor(0.05, dtype=lib.float64)
        opt = lib.optim.Adam(ps, lr=lr)
        opt.zero_grad()
        _loss(ps).backward()
        opt.step()
        return opt.state_dict()["param_groups"][0]["lr"], lr

    (ours, our_lr), (theirs, _) = saved(ds), saved(torch)
    assert isinstance(theirs, torch.Tensor) and isinstance(ours, ds.Tensor)
    assert ours.shape == tuple(theirs.shape) and ours.item() == theirs.item() == 0.05
    assert ours is not our_lr and ours.dtype == our_lr.dtype
    our_lr.fill_(0.5)  # the dict is a snapshot (documented): later edits of the group's Tensor leave it
    assert ours.item() == 0.05


def test_a_tensor_lr_in_the_state_dict_survives_save_and_load_and_loads_into_torch(tmp_path: Any) -> None:
    ps = _params(ds)
    opt = ds.optim.Adam(ps, lr=ds.tensor(0.05, dtype=ds.float64))
    opt.zero_grad()
    _loss(ps).backward()
    opt.step()
    ds.save(opt.state_dict(), tmp_path / "opt.ckpt")
    back = ds.load(tmp_path / "opt.ckpt")
    lr = back["param_groups"][0]["lr"]
    assert isinstance(lr, ds.Tensor) and lr.item() == 0.05
    # into a downslope Adam built with a float lr: the group takes the Tensor, as torch's load does
    fresh = ds.optim.Adam(_params(ds), lr=0.1)
    fresh.load_state_dict(back)
    assert isinstance(fresh.param_groups[0]["lr"], ds.Tensor) and fresh.param_groups[0]["lr"].item() == 0.05
    # into torch, its tensors converted: torch keeps a Tensor lr
    tps = _params(torch)
    topt = torch.optim.Adam(tps, lr=0.1)
    state = {k: {n: torch.tensor(v.numpy()) for n, v in e.items()} for k, e in back["state"].items()}
    groups = [
        {k: torch.tensor(v.numpy()) if isinstance(v, ds.Tensor) else v for k, v in g.items()}
        for g in back["param_groups"]
    ]
    topt.load_state_dict({"state": state, "param_groups": groups})
    assert isinstance(topt.param_groups[0]["lr"], torch.Tensor) and topt.param_groups[0]["lr"].item() == 0.05


@pytest.mark.parametrize("ours_lr", ["float", "tensor"])
def test_a_torch_state_with_a_tensor_lr_resumes_here_as_in_torch(ours_lr: str) -> None:
    tps = _params(torch)
    topt = torch.optim.Adam(tps, lr=torch.tensor(0.05, dtype=torch.float64), betas=(0.8, 0.9))
    for _ in range(2):
        topt.zero_grad()
        _loss(tps).backward()
        topt.step()
    saved = topt.state_dict()
    dps = [ds.nn.Parameter(ds.from_numpy(p.detach().numpy().copy())) for p in tps]
    mine = ds.tensor(0.3, dtype=ds.float64)
    dopt = ds.optim.Adam(dps, lr=0.3 if ours_lr == "float" else mine, betas=(0.8, 0.9))
    dopt.load_state_dict(saved)
    group_lr = dopt.param_groups[0]["lr"]
    assert isinstance(group_lr, ds.Tensor) and group_lr.item() == 0.05
    if ours_lr == "tensor":
        assert group_lr is mine  # the user's Tensor, filled
    for _ in range(2):
        topt.zero_grad()
        _loss(tps).backward()
        topt.step()
        dopt.zero_grad()
        _loss(dps).backward()
        dopt.step()
    for a, b in zip(_values(ds, dps), _values(torch, tps)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_torch_state_with_tensor_betas_loads_as_numbers() -> None:
    tps = _params(torch)
    topt = torch.optim.Adam(tps, lr=0.05, betas=(torch.tensor(0.8), torch.tensor(0.9)))
    topt.zero_grad()
    _loss(tps).backward()
    topt.step()
    dps = _params(ds)
    dopt = ds.optim.Adam(dps, lr=0.05)
    dopt.load_state_dict(topt.state_dict())
    betas = dopt.param_groups[0]["betas"]
    assert type(betas) is tuple and betas == pytest.approx((0.8, 0.9)) and all(isinstance(b, float) for b in betas)
    dopt.zero_grad()
    _loss(dps).backward()
    dopt.step()  # steps with the numbers (a torch tensor left in the group would break the update)
