"""Per-coordinate adaptive step sizes: Adagrad, RMSprop, Adadelta, Rprop (PyTorch's names and defaults)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ..autograd import no_grad
from ..errors import ArgumentError
from ..row_grads import RowGrad
from ..tensor import mark_written
from . import _fused
from . import transforms as T
from .buckets import FlatBucket, state_slots
from .optimizer import Optimizer, OptimizerOptions, check_nonnegative, check_unit_interval
from .row_updates import rows_apart
from .transforms import from_group


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): ``sum += g**2; p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps)``.

    PyTorch's defaults: ``lr=1e-2``, ``initial_accumulator_value=0``, ``eps=1e-10``. Every sum starts
    at the constructor's ``initial_accumulator_value``, as in PyTorch: a param group's own value is
    kept in the group but not used (nor for a group added later, or a parameter whose state is reset).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0, -3.0], requires_grad=True)
        >>> opt = optim.Adagrad([w], lr=0.5)
        >>> (w * w).sum().backward(); opt.step()
        >>> w   # the first step has length lr in every coordinate
        tensor([ 0.5, -2.5], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)
        # PyTorch's Adagrad makes its state when it is built, so it shows before a step (a group
        # added later gets its state at its first step)
        for buckets in self._buckets:
            for bucket in buckets:
                bucket.started[:] = True

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_nonnegative("Adagrad", key, group[key])

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            # the sums start at the constructor's value, whatever a group says (PyTorch's defaults[...])
            T.scale_by_adagrad(from_group("lr_decay"), self.defaults["initial_accumulator_value"], from_group("eps")),
            T.scale_by_lr(from_group("lr")),
        )

    _fused_update = staticmethod(_fused.adagrad_step)
    _fused_transform = _make_transform

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if a closure is given."""
        clipping = self.clip_value is not None or self.clip_norm is not None or self.error_if_nonfinite
        if closure is not None or clipping:  # the gradients come later, or clipping reads them all: dense
            return super().step(closure)
        # a gradient still held as rows (Embedding(sparse=True)) moves only those rows and their sums, as
        # PyTorch's Adagrad on a sparse gradient (which refuses weight decay with one: dense here)
        with rows_apart(self.param_groups, lambda group: group["weight_decay"] == 0) as apart:
            super().step(None)
        where = {id(p): (b, i) for buckets in self._buckets for b in buckets for i, p in enumerate(b.params)}
        with no_grad():
            for gi, _, p, note in apart:
                _adagrad_rows(self.param_groups[gi], *where[id(p)], p.array, note)
        mark_written([p for _, _, p, _ in apart])
        return None


def _adagrad_rows(group: dict[str, Any], b: FlatBucket, i: int, param: Any, note: RowGrad) -> None:
    """PyTorch's sparse Adagrad step of parameter ``i`` of bucket ``b`` (its array ``param``): the
    coalesced rows' sums and values, with the parameter's own step count."""
    b.started[i] = True
    b.steps[i] += 1
    b.uniform = bool((b.steps == b.steps[0]).all())  # host: steps are host integers
    step = int(b.steps[i])  # host: a host integer
    (sums,) = [d["sum"] for d in state_slots(b.state) if "sum" in d]
    acc = sums[b.offsets[i] : b.offsets[i + 1]].reshape(b.shapes[i])
    rows, values = note.coalesced()
    values = (-values if group["maximize"] else values).astype(param.dtype, copy=False)
    acc[rows] += values * values
    std = np.sqrt(acc[rows]) + param.dtype.type(group["eps"])
    clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
    param[rows] += (values / std) * param.dtype.type(-clr)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), PyTorch's form: divide by a running RMS of the gradient, optionally
    centered (by a running mean) and with heavy-ball momentum on the scaled step::

        v = alpha v + (1 - alpha) g**2;  avg = sqrt(v - mean_g**2 if centered else v) + eps
        buf = momentum * buf + g / avg;  p -= lr * buf        (p -= lr * g / avg without momentum)

    PyTorch's defaults: ``lr=1e-2``, ``alpha=0.99``, ``eps=1e-8``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.RMSprop([w], lr=0.01, alpha=0.0, eps=0.0)
        >>> (w * w).sum().backward(); opt.step()
        >>> w   # with alpha=0, g / sqrt(g**2) = 1
        tensor([0.99], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "momentum", "weight_decay"):
            check_nonnegative("RMSprop", key, group[key])
        check_unit_interval("RMSprop", "alpha", group["alpha"], closed_right=True)

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            T.scale_by_rms(from_group("alpha"), from_group("eps"), from_group("centered")),
            T.trace(from_group("momentum")),
            T.scale_by_lr(from_group("lr")),
        )

    _fused_update = staticmethod(_fused.rmsprop_step)
    _fused_transform = _make_transform


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): step ``sqrt(u + eps) / sqrt(v + eps) * g`` from running averages of
    squared gradients (v) and squared steps (u), scaled by ``lr`` (PyTorch's default 1.0).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.Adadelta([w], rho=0.0, eps=1.0)
        >>> (w * w).sum().backward(); opt.step()
        >>> w   # v = 4, delta = sqrt(0 + 1) / sqrt(4 + 1) * 2
        tensor([0.1056], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay"):
            check_nonnegative("Adadelta", key, group[key])
        check_unit_interval("Adadelta", "rho", group["rho"], closed_right=True)

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.add_decayed_weights(from_group("weight_decay")),
            T.scale_by_adadelta(from_group("rho"), from_group("eps")),
            T.scale_by_lr(from_group("lr")),
        )

    _fused_update = staticmethod(_fused.adadelta_step)
    _fused_transform = _make_transform


class Rprop(Optimizer):
    """Rprop (Riedmiller and Braun, 1993): a step size per coordinate that grows by ``etas[1]`` while
    the gradient keeps its sign and shrinks by ``etas[0]`` when it flips; only the gradient's sign is
    used. Suited to full-batch training. PyTorch's defaults: ``lr=1e-2``, ``etas=(0.5, 1.2)``,
    ``step_sizes=(1e-6, 50)``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0, -3.0], requires_grad=True)
        >>> opt = optim.Rprop([w], lr=0.5)
        >>> for _ in range(3):
        ...     opt.zero_grad(); (w * w).sum().backward(); opt.step(); print([round(v, 4) for v in w.tolist()])
        [0.5, -2.5]
        [-0.1, -1.9]
        [-0.1, -1.18]

    Steps of 0.5 in both coordinates, then 0.6 (the sign held: x1.2); then the first coordinate's
    gradient changed sign, so it waits a step with its step size halved, while the second moves 0.72.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {"lr": lr, "etas": tuple(etas), "step_sizes": tuple(step_sizes), "maximize": maximize}
        super().__init__(
            params,
            defaults,
            **options,
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("Rprop", "lr", group["lr"])
        etas, sizes = group["etas"], group["step_sizes"]
        if len(etas) != 2 or not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ArgumentError(
                f"Rprop: invalid etas={etas!r}; expected (eta_minus, eta_plus) with 0 < eta_minus < 1 < eta_plus"
            )
        if len(sizes) != 2 or not 0.0 <= sizes[0] <= sizes[1]:
            raise ArgumentError(f"Rprop: invalid step_sizes={sizes!r}; expected (min, max) with 0 <= min <= max")

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.scale_by_rprop(from_group("lr"), from_group("etas"), from_group("step_sizes")),
        )
