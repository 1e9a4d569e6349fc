"""Every optimizer and scheduler the library offers satisfies the Protocols that train/ and the
packages after it are typed with (checked at run time here; mypy checks the call sites)."""

from __future__ import annotations

import inspect

import pytest

import downslope as ds
from downslope import nn, optim
from downslope.distributed.optimizer import DistributedOptimizer
from downslope.optim import lr_scheduler
from downslope.optim.protocols import OptimizerLike, SchedulerLike

OPTIMIZERS = [
    cls
    for cls in vars(optim).values()
    if inspect.isclass(cls) and issubclass(cls, optim.Optimizer) and cls is not optim.Optimizer
]


def _params() -> list[ds.Tensor]:
    return list(nn.Linear(2, 1).parameters())


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_every_optimizer_is_optimizer_like(cls: type) -> None:
    # Muon orthogonalizes matrices and refuses other shapes, as PyTorch's does.
    params = [p for p in _params() if p.ndim == 2] if cls is optim.Muon else _params()
    assert isinstance(cls(params, lr=0.01), OptimizerLike)


def test_the_distributed_wrapper_is_optimizer_like() -> None:
    assert isinstance(DistributedOptimizer(optim.SGD(_params(), lr=0.1)), OptimizerLike)


def test_an_object_without_step_is_not_optimizer_like() -> None:
    class NoStep:
        param_groups: list[dict[str, object]] = []

        def zero_grad(self, set_to_none: bool = True) -> None: ...

    assert not isinstance(NoStep(), OptimizerLike)


def _schedulers(opt: optim.Optimizer) -> list[object]:
    return [
        lr_scheduler.StepLR(opt, step_size=2),
        lr_scheduler.MultiStepLR(opt, milestones=[1]),
        lr_scheduler.ExponentialLR(opt, gamma=0.9),
        lr_scheduler.LambdaLR(opt, lambda e: 1.0),
        lr_scheduler.CosineAnnealingLR(opt, T_max=4),
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2),
        lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1),
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10),
        lr_scheduler.ReduceLROnPlateau(opt),
        optim.swa_utils.SWALR(opt, swa_lr=0.05),
    ]


def test_every_scheduler_is_scheduler_like() -> None:
    opt = optim.SGD(_params(), lr=0.1, momentum=0.9)
    for sched in _schedulers(opt):
        assert isinstance(sched, SchedulerLike), type(sched).__name__
