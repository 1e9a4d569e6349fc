"""Learning-rate schedules with PyTorch's names, arguments and values (``torch.optim.lr_scheduler``).

Every scheduler, ReduceLROnPlateau included, is an :class:`LRScheduler`: ``step()``,
``get_last_lr()``, ``last_epoch``, ``state_dict()``/``load_state_dict()`` (JSON-able values). A
scheduler writes the new learning rate into ``optimizer.param_groups[i]['lr']``, which the
optimizer reads at every step. The formulas are PyTorch's recursive ("chainable") forms, so the
sequences match torch's to the last bit and schedulers can be stacked.

One deliberate difference: ReduceLROnPlateau's relative threshold is measured against ``|best|``
(``a < best - threshold * |best|`` in min mode), so it also works for negative metrics (a
log-likelihood, a negative score); PyTorch's ``a < best * (1 - threshold)`` makes any small
worsening count as an improvement when ``best < 0``. For positive metrics the two agree.

Example:
    >>> import downslope as ds
    >>> from downslope import optim
    >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    >>> lrs = []
    >>> for _ in range(5):
    ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

from .base import LRScheduler
from .composite import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR, OneCycleLR
from .decay import ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR, MultiStepLR, PolynomialLR, StepLR
from .plateau import ReduceLROnPlateau

_LRScheduler = LRScheduler  # PyTorch's old name, which custom schedulers still subclass

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
    "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
]  # fmt: skip
