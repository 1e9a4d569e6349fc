"""Weight averaging with PyTorch's names (``torch.optim.swa_utils``): stochastic weight averaging
(SWA) and exponential moving averages (EMA) of a model's parameters.

* :class:`AveragedModel` keeps a copy of a model whose parameters are the running average of the
  model's over the calls to ``update_parameters`` (equal weights by default; ``get_ema_avg_fn``
  for an exponential moving average).
* :class:`SWALR` anneals each group's learning rate to a constant ``swa_lr`` over ``anneal_epochs``.
* :func:`update_bn` recomputes BatchNorm running statistics for the averaged weights with one pass
  over the data.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    >>> model = nn.Linear(2, 1)
    >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    >>> ema.update_parameters(model); int(ema.n_averaged)
    1
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..backend import get_default_dtype
from ..devices import to_host
from ..errors import ArgumentError, ShapeError
from ..nn.module import Module, Parameter
from ..nn.normalization import BatchNormBase
from ..tensor import Tensor, mark_written, wrap_array
from .lr_scheduler import LRScheduler
from .lr_scheduler.base import _warn_get_lr_called_within_step
from .optimizer import Optimizer
from .per_param import torch_lerp

__all__ = [
    "AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_swa_avg_fn", "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
]  # fmt: skip


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """avg = decay * avg + (1 - decay) * current, one parameter at a time."""

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Any], Tensor]:
    """avg = avg + (current - avg) / (n + 1): the running mean, one parameter at a time."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return averaged_param + (current_param - averaged_param) / (float(num_averaged) + 1)

    return swa_update


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """The EMA update written in place over lists of parameters."""

    def ema_update(ema_param_list: list[Tensor], current_param_list: list[Tensor], num_averaged: Any) -> None:
        for ema, cur in zip(ema_param_list, current_param_list):
            if ema.array.dtype.kind in "fc":
                # PyTorch's _foreach_lerp_(ema, current, 1 - decay), rounded as its lerp rounds
                ema.array[...] = torch_lerp(ema.array, cur.array, 1 - decay)
            else:
                # an integer buffer (BatchNorm's num_batches_tracked): torch computes
                # ema * decay + cur * (1 - decay) in the default float dtype and truncates on the copy back
                dtype = get_default_dtype()
                scaled = ema.array.astype(dtype) * dtype.type(decay) + cur.array.astype(dtype) * dtype.type(1 - decay)
                ema.array[...] = scaled.astype(ema.array.dtype)

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """The running-mean update written in place over lists of parameters."""

    def swa_update(averaged_param_list: list[Tensor], current_param_list: list[Tensor], num_averaged: Any) -> None:
        n = float(num_averaged)
        for avg, cur in zip(averaged_param_list, current_param_list):
            avg.array[...] = avg.array + (cur.array - avg.array) / (n + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters average the model's over ``update_parameters`` calls.

    ``avg_fn(averaged, current, n)`` returns the new average of one parameter; ``multi_avg_fn``
    updates lists in place; without either, the average is the plain running mean (SWA).
    ``use_buffers=True`` averages the buffers too; otherwise they are copied from the model.
    Calling the AveragedModel calls the averaged copy.
    """

    n_averaged: Tensor  # a buffer: how many models have been averaged

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable[[Tensor, Tensor, Any], Tensor] | None = None,
        multi_avg_fn: Callable[[list[Tensor], list[Tensor], Any], None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ArgumentError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        if device is not None:
            from ..device import check_cpu

            check_cpu(device, "AveragedModel")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", wrap_array(np.zeros((), dtype=np.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _pairs(self, model: Module) -> tuple[list[Tensor], list[Tensor]]:
        if self.use_buffers:
            ours = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            ours, theirs = list(self.module.parameters()), list(model.parameters())
        if len(ours) != len(theirs):
            raise ArgumentError(
                f"AveragedModel.update_parameters: the model has {len(theirs)} tensors, the average {len(ours)}"
            )
        self._check_shapes(model)
        return ours, theirs

    def _check_shapes(self, model: Module) -> None:
        """Refuse, before anything is written, a model whose parameters or buffers have other shapes
        than the average's, naming the first such tensor."""
        pairs = zip(
            itertools.chain(self.module.named_parameters(), self.module.named_buffers()),
            itertools.chain(model.named_parameters(), model.named_buffers()),
        )
        for (name, a), (_, b) in pairs:
            if a.shape != b.shape:
                kind = "parameter" if isinstance(a, Parameter) else "buffer"
                raise ShapeError(
                    f"AveragedModel.update_parameters: {kind} {name!r} has shape {tuple(b.shape)} in the model "
                    f"but {tuple(a.shape)} in the average; average models of one architecture"
                )

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters into the average."""
        ours, theirs = self._pairs(model)
        n = int(to_host(self.n_averaged.array))  # host: the count of models averaged, read once per update
        with no_grad():
            if n == 0:
                for a, b in zip(ours, theirs):
                    a.array[...] = b.array
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(ours, [t.detach() for t in theirs], wrap_array(np.asarray(n, dtype=np.int64)))
            else:
                fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for a, b in zip(ours, theirs):
                    a.array[...] = fn(a.detach(), b.detach(), wrap_array(np.asarray(n, dtype=np.int64))).array
            if not self.use_buffers:
                for a, b in zip(self.module.buffers(), model.buffers()):
                    a.array[...] = b.array
                mark_written(list(self.module.buffers()))
        # in-place writes, as PyTorch's copy_: a graph that saved the old averages refuses them
        mark_written(ours)
        self.n_averaged.array[...] = n + 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader`` (the
    first element of each batch is the input), as an average over all batches. With ``device``, each
    input is moved there first (as in torch), so a host data set can feed a model on a GPU."""
    momenta: dict[Any, Any] = {}
    for module in model.modules():
        if isinstance(module, BatchNormBase):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(x if device is None else x.to(device))
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate from its current value to ``swa_lr`` over ``anneal_epochs``
    steps (``'cos'`` or ``'linear'``), then hold it (PyTorch's formula).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = SWALR(opt, swa_lr=0.1, anneal_epochs=2, anneal_strategy="linear")
        >>> [round(g, 3) for g in [opt.param_groups[0]["lr"]] + [(sched.step(), sched.get_last_lr()[0])[1] for _ in range(3)]]
        [1.0, 0.55, 0.1, 0.1]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(optimizer.param_groups)
        if len(swa_lrs) != len(optimizer.param_groups):
            raise ArgumentError(f"SWALR: {len(swa_lrs)} swa_lr values for {len(optimizer.param_groups)} param groups")
        for value, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ArgumentError(f"SWALR: anneal_epochs must be a non-negative int, got {anneal_epochs!r}")
        # stored under PyTorch's attribute name, so the state dicts of the two libraries carry it in one key
        self._anneal_strategy, self.anneal_epochs = anneal_strategy, anneal_epochs
        super().__init__(optimizer, last_epoch)

    @property
    def anneal_strategy(self) -> str:
        """``'cos'`` or ``'linear'`` (kept in the state dict as PyTorch's ``_anneal_strategy``)."""
        return self._anneal_strategy

    @anneal_strategy.setter
    def anneal_strategy(self, value: str) -> None:
        self._anneal_strategy = value

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: PyTorch's, or an older downslope one that saved the strategy as
        ``anneal_strategy``."""
        state = dict(state_dict)
        if "anneal_strategy" in state:
            state.setdefault("_anneal_strategy", state.pop("anneal_strategy"))
        strategy = state.get("_anneal_strategy", self._anneal_strategy)
        if strategy not in ("cos", "linear"):
            raise ArgumentError(f"SWALR.load_state_dict: _anneal_strategy must be 'cos' or 'linear', got {strategy!r}")
        super().load_state_dict(state)

    def _anneal(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_strategy == "cos" else t

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self._anneal(max(0.0, min(1.0, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self._anneal(max(0.0, min(1.0, step / max(1, self.anneal_epochs))))
        out = []
        for group in self.optimizer.param_groups:
            swa = group["swa_lr"]
            start = swa if prev_alpha == 1 else (group["lr"] - prev_alpha * swa) / (1 - prev_alpha)
            out.append(swa * alpha + start * (1 - alpha))
        return out
