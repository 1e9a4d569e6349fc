"""Optimizers, learning-rate schedules and gradient clipping.

The update rules are small composable transforms (``optim.transforms``: ``scale_by_adam``,
``trace``, ``add_decayed_weights``, ``scale_by_lr``... joined by ``chain``, in the manner of Optax);
the PyTorch-named classes are thin wrappers that keep param groups and state dicts, and any chain
can be wrapped with ``Optimizer.from_transform``. Learning-rate schedules come two ways: PyTorch's
scheduler objects (``optim.lr_scheduler``) that write ``param_groups[i]['lr']``, and Optax's pure
functions of the step (``optim.schedules``) for ``transforms.scale_by_lr``.

Example:
    >>> import downslope as ds
    >>> from downslope import optim
    >>> w = ds.tensor([2.0], requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    >>> for _ in range(20):
    ...     opt.zero_grad(); (w * w).sum().backward(); opt.step(); sched.step()
    >>> sched.get_last_lr()
    [0.025]
"""

from __future__ import annotations

from . import lr_scheduler, schedules, swa_utils, transforms
from .adafactor import Adafactor
from .adam import Adam, Adamax, AdamW, Lion, NAdam, RAdam
from .adaptive import Adadelta, Adagrad, RMSprop, Rprop
from .clip import clip_grad_norm_, clip_grad_value_
from .groups import weight_decay_groups
from .lbfgs import LBFGS
from .muon import Muon
from .optimizer import Optimizer, required
from .sgd import ASGD, GD, SGD
from .sparse_adam import SparseAdam

__all__ = [
    "Optimizer", "required", "GD", "SGD", "Adagrad", "RMSprop", "Adadelta", "Rprop", "ASGD", "Adam", "AdamW", "Adamax", "NAdam",
    "RAdam", "Lion", "LBFGS", "Adafactor", "Muon", "SparseAdam", "clip_grad_norm_", "clip_grad_value_",
    "weight_decay_groups", "lr_scheduler", "swa_utils", "schedules", "transforms",
]  # fmt: skip
