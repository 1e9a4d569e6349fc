"""Plain gradient descent and SGD with momentum (PyTorch's names, arguments and defaults)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ..autograd import no_grad
from ..backend import namespace_of
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import mark_written
from . import _fused
from . import transforms as T
from .buckets import FlatBucket, state_slots
from .optimizer import Optimizer, OptimizerOptions, check_nonnegative, check_unit_interval, required
from .row_updates import add_rows, rows_apart
from .transforms import from_group
from .transforms.adaptive import _torch_scalar_type


class GD(Optimizer):
    """Gradient descent, the textbook rule ``p <- p - lr * grad`` (optionally with L2 weight decay).

    Used full-batch it is "gradient descent"; on mini-batches it is SGD without momentum.
    ``lr`` has no default on purpose: it is the one choice that matters.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> x = ds.tensor([3.0], requires_grad=True)
        >>> opt = optim.GD([x], lr=0.25)
        >>> for _ in range(3):
        ...     opt.zero_grad(); (x * x).sum().backward(); opt.step()
        >>> x   # each step halves x: x <- x - 0.25 * 2x
        tensor([0.375], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = required,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        if lr is required:
            raise ArgumentTypeError("GD: missing the learning rate; pass lr=... (e.g. GD(params, lr=0.1))")
        defaults = {"lr": lr, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults, **options)

    _keeps_step = False  # as PyTorch's SGD: a parameter's state is its momentum buffer only

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("GD", "lr", group["lr"])
        check_nonnegative("GD", "weight_decay", group["weight_decay"])

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            T.scale_by_lr(from_group("lr")),
        )

    _fused_update = staticmethod(_fused.sgd_step)
    _fused_transform = _make_transform


class SGD(Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum, PyTorch's form::

        g = grad + weight_decay * p
        buf = g (first step);  buf = momentum * buf + (1 - dampening) * g
        p <- p - lr * (g + momentum * buf  if nesterov else  buf)

    Defaults follow PyTorch 2.x (``lr=1e-3``, no momentum).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> w   # 1 - 0.1*2 = 0.8, then buf = 0.9*2 + 1.6 = 3.4, 0.8 - 0.34
        tensor([0.46], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)

    _keeps_step = False  # as PyTorch's SGD: a parameter's state is its momentum buffer only

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("SGD", "lr", group["lr"])
        check_nonnegative("SGD", "momentum", group["momentum"])
        check_unit_interval("SGD", "dampening", group["dampening"], closed_right=True)
        check_nonnegative("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ArgumentError(
                f"SGD: Nesterov momentum requires momentum > 0 and dampening = 0; got momentum={group['momentum']!r}, "
                f"dampening={group['dampening']!r}"
            )

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            T.trace(from_group("momentum"), from_group("dampening"), from_group("nesterov")),
            T.scale_by_lr(from_group("lr")),
        )

    _fused_update = staticmethod(_fused.sgd_step)
    _fused_transform = _make_transform

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if a closure is given."""
        clipping = self.clip_value is not None or self.clip_norm is not None or self.error_if_nonfinite
        if closure is not None or clipping:  # the gradients come later, or clipping reads them all: dense
            return super().step(closure)
        # plain SGD on a gradient still held as rows (Embedding(sparse=True)) moves only those rows, as
        # PyTorch's p.add_(sparse_grad, alpha=-lr); momentum and weight decay reach every row: dense
        with rows_apart(self.param_groups, _plain) as apart:
            super().step(None)
        with no_grad():
            for gi, _, p, note in apart:
                group = self.param_groups[gi]
                add_rows(p.array, note, group["lr"] if group["maximize"] else -group["lr"])
        mark_written([p for _, _, p, _ in apart])
        return None


def _plain(group: dict[str, Any]) -> bool:
    """Whether SGD's step for ``group`` is p <- p - lr * g: no momentum, no weight decay."""
    return group["momentum"] == 0 and group["weight_decay"] == 0


class ASGD(Optimizer):
    """Averaged SGD (Polyak and Juditsky, 1992): SGD with a decaying step size that also keeps the
    running average of the iterates in ``optimizer.state[p]["ax"]`` (see
    :func:`downslope.optim.transforms.scale_by_asgd`). PyTorch's defaults: ``lr=1e-2``,
    ``lambd=1e-4``, ``alpha=0.75``, ``t0=1e6``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.ASGD([w], lr=0.1, lambd=0.0)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([0.8], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(
            params,
            defaults,
            **options,
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "lambd", "alpha", "t0", "weight_decay"):
            check_nonnegative("ASGD", key, group[key])

    # PyTorch keeps ``eta`` and ``mu`` as one 0-d tensor per parameter. The transform keeps them per
    # element of the flat buffer (every element of a parameter holds its parameter's number), and
    # ``state`` and ``state_dict`` give them 0-d, as PyTorch's. The ``state`` view's is a view of the
    # parameter's first element, which is spread over the parameter's elements before each step
    # once such views were handed out, so that writing into one changes the next step, as in PyTorch.
    _PER_PARAMETER = ("eta", "mu")

    def _param_state(self, b: FlatBucket, j: int, names: dict[str, tuple[int, str]], copy: bool) -> dict[str, Any]:
        entry = super()._param_state(b, j, names, copy)
        for key in self._PER_PARAMETER:
            value = entry.get(key)
            if value is None:
                continue
            # a complex parameter's bucket holds each number twice (its real and imaginary slots) and gives
            # the state as complex; PyTorch's eta and mu are real: the real slot is the number
            complex_slots = value.dtype.kind == "c"
            if value.size == 0:
                # an empty parameter: no element holds its number, so it is computed as PyTorch computes
                # it at each step, from the step count and the group's hyperparameters
                real = namespace_of(value).real(value) if complex_slots else value
                entry[key] = np.full_like(real, self._empty_parameter_number(b, j, key, real.dtype), shape=())
                continue
            first = value.reshape(-1)[:1].reshape(())  # a view of the first element
            if complex_slots:
                first = namespace_of(first).real(first)  # a view of the real slot
            if copy:
                entry[key] = first.copy()
            else:
                entry[key] = first
                self.__dict__["_number_views"] = True
        return entry

    def _empty_parameter_number(self, b: FlatBucket, j: int, key: str, dtype: np.dtype) -> Any:
        """PyTorch's ``eta`` or ``mu`` after parameter ``j`` of bucket ``b`` took its steps (the last
        step's formula, with the group's current hyperparameters), rounded as PyTorch rounds it."""
        group = next(self.param_groups[gi] for gi, buckets in enumerate(self._buckets) if any(x is b for x in buckets))
        t = float(b.steps[j])  # host: a step count is host bookkeeping
        scalar = _torch_scalar_type(np.dtype(dtype))
        hypers = ("lr", "lambd", "alpha", "t0")
        lr, lambd, alpha, t0 = (float(group[k]) for k in hypers)  # host: hyperparameters, read once
        if key == "mu":
            return scalar(1.0 / max(1.0, t - t0))
        return scalar(lr / (1 + lambd * lr * t) ** alpha)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if a closure is given."""
        if self.__dict__.get("_number_views"):
            for buckets in self._buckets:
                for b in buckets:
                    for slot in state_slots(b.state):
                        for key in self._PER_PARAMETER:
                            arr = slot.get(key)
                            if arr is None or arr.shape != b.flat.shape:
                                continue
                            for start, stop in zip(b.offsets, b.offsets[1:]):
                                if stop > start + 1:
                                    arr[start + 1 : stop] = arr[start]
        return super().step(closure)

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            T.scale_by_asgd(from_group("lr"), from_group("lambd"), from_group("alpha"), from_group("t0")),
        )
