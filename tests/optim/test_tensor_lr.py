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
