"""GradientDiagnostics: is every layer learning? Gradient norms, update sizes and dead ReLUs, per epoch.

Three numbers per layer, averaged over an epoch's (sampled) batches:

- the gradient norm ``||dL/dw||``: near zero means the layer has stopped learning (vanishing
  gradients); huge means updates may overshoot (exploding gradients);
- the update-to-weight ratio ``||w_after - w_before|| / ||w_before||``: about 1e-3 per step is a
  common healthy value; far above it the learning rate is probably too high, far below too low;
- the fraction of dead ReLU units: units whose output was zero for every sample the epoch showed
  them. A dead unit passes no gradient and will not recover by itself.

Problems are reported as warnings in plain words, once per layer and kind per run.

On a device (a model on CUDA or the strict test stand-in) the sums are kept there as 0-d arrays and
copied to the host in one piece at the end of the epoch, so measuring never waits for the device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import to_host
from ..errors import ConfigError
from .callbacks import Callback, Logs
from .placement import on_host


def _norm(a: np.ndarray) -> float:
    # float64 accumulation: float32 sums of many squares lose digits (and overflow sooner).
    flat = a.reshape(-1).astype(np.float64, copy=False)
    return float(math.sqrt(flat @ flat))


def _norm_on_device(a: Any, xp: Any) -> Any:
    """:func:`_norm` kept on ``a``'s device: a 0-d float64 array."""
    flat = a.reshape(-1).astype(np.float64)
    return xp.sqrt(flat @ flat)


# A run whose mean gradient norm has fallen to this fraction of its first epoch's has converged (full-batch
# GD on least squares reaches 1e-6 of it); a too-low learning rate leaves the norm near its start.
CONVERGED_GRAD_FRACTION = 1e-3


class GradientDiagnostics(Callback):
    """Per-layer gradient norms, update-to-weight ratios and dead-ReLU fractions, with plain warnings.

    Args:
        every_n_batches: measure one batch in this many (measuring copies the weights first).
        vanishing / exploding: gradient-norm thresholds for the warnings.
        ratio_low / ratio_high: update-to-weight ratio thresholds for the warnings.
        dead_fraction: warn when more than this fraction of a ReLU layer's units is dead.
        warn: emit warnings (the numbers are recorded either way).
        clip_hint: how the exploding-gradients warning names gradient clipping (the CLI names its
            ``--clip-norm`` option).

    Very large gradients are reported only once the loss has stopped falling (from the second epoch on):
    gradients that are large while the loss falls steadily come from the units of the inputs (features in
    the thousands, not standardized), not from a step that overshoots, and lowering the learning rate or
    clipping would only slow such a run further.

    After each epoch ``self.history`` gains a dict with ``grad_norm``, ``update_ratio`` (both
    ``{parameter name: value}``) and ``dead_relu`` (``{module name: fraction}``); ``logs`` gains
    ``grad_norm``, the mean global gradient norm of the epoch. An update ratio averages the batches
    where the parameter was not all zeros (NaN if it always was, as a fresh zero bias is); the
    learning-rate warnings from it are given for weight matrices and kernels only, since biases and
    normalization parameters start at 0 or 1 and their relative change says little about the rate.

    Example:
        >>> import numpy as np, downslope as ds
        >>> from downslope import nn, optim
        >>> _ = ds.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> diag = GradientDiagnostics()
        >>> _ = ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01),
        ...            (np.ones((8, 2)), np.zeros((8, 1))), epochs=1, callbacks=[diag], verbose=0)
        >>> sorted(diag.history[0]["grad_norm"])
        ['0.bias', '0.weight', '2.bias', '2.weight']
    """

    def __init__(
        self,
        every_n_batches: int = 1,
        vanishing: float = 1e-7,
        exploding: float = 1e3,
        ratio_low: float = 1e-7,
        ratio_high: float = 1e-1,
        dead_fraction: float = 0.5,
        warn: bool = True,
        clip_hint: str = "the optimizer's clip_norm=1.0",
    ) -> None:
        if isinstance(every_n_batches, bool) or not isinstance(every_n_batches, int) or every_n_batches < 1:
            raise ConfigError(
                f"GradientDiagnostics: every_n_batches must be a positive integer, got {every_n_batches!r}"
            )
        self.every_n_batches = every_n_batches
        self.vanishing = vanishing
        self.exploding = exploding
        self.ratio_low = ratio_low
        self.ratio_high = ratio_high
        self.dead_fraction = dead_fraction
        self.warn = warn
        self.clip_hint = clip_hint
        self.history: list[dict[str, dict[str, float]]] = []
        self._wrapped: list[Any] = []
        self._recording = False
        self._tables = _Tables()
        self._warned: set[tuple[str, str]] = set()
        self._said: list[str] = []  # the warnings given, in order: a resumed run gives them again
        self._kinds: set[str] = set()  # the model's kinds of activation (see _activation_kinds)
        self._first_loss = math.nan  # the first epoch's training loss: a tenth of it counts as converged
        self._first_grad = math.nan  # the first epoch's gradient norm: a run whose norm fell far below it converged
        self._prev_loss = math.nan

    # ------------------------------------------------------------------ setup
    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.history = []
        self._warned = set()
        self._said = []
        self._first_loss = math.nan
        self._first_grad = math.nan
        self._prev_loss = math.nan
        model = self.model
        self._params = (
            list(model.named_parameters()) if model is not None and hasattr(model, "named_parameters") else []
        )
        self._matrices = {name for name, p in self._params if p.ndim >= 2}
        self._kinds = _activation_kinds(model)
        self._xp = (
            None if not self._params or on_host(self._params[0][1].array) else namespace_of(self._params[0][1].array)
        )
        self._reset_epoch()
        self._wrap_relus()

    def _wrap_relus(self) -> None:
        from ..nn.activation import ReLU

        self._wrapped = []
        self._active: dict[str, np.ndarray] = {}
        model = self.model
        if model is None or not hasattr(model, "named_modules"):
            return
        for name, module in model.named_modules():
            if isinstance(module, ReLU):
                original = module.forward
                object.__setattr__(module, "forward", self._watch(name or type(module).__name__, original))
                self._wrapped.append(module)

    def _watch(self, name: str, forward: Callable[..., Any]) -> Callable[..., Any]:
        def watched(x: Any) -> Any:
            out = forward(x)
            if self._recording:
                data = out.array
                # A unit is a feature (last axis of 2-D outputs) or a channel (axis 1 of images).
                axes = tuple(i for i in range(data.ndim) if i != (1 if data.ndim > 1 else 0))
                fired = np.any(data > 0, axis=axes) if axes else data > 0
                seen = self._active.get(name)
                self._active[name] = fired if seen is None or seen.shape != fired.shape else (seen | fired)
            return out

        return watched

    def on_train_end(self, logs: Logs | None = None) -> None:
        for module in self._wrapped:
            module.__dict__.pop("forward", None)
        self._wrapped = []

    def _reset_epoch(self) -> None:
        self._grad_sums: dict[str, float] = {}
        self._ratio_sums: dict[str, float] = {}
        self._ratio_counts: dict[str, int] = {}
        self._global_sum = 0.0
        self._count = 0
        self._active = {}
        self._before: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ measuring
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._reset_epoch()

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        if batch % self.every_n_batches == 0:
            self._before = {name: p.array.copy() for name, p in self._params}
            self._recording = True

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._recording = False
        if self._before is None:
            return
        if self._xp is not None:
            self._measure_on_device(self._xp)
            return
        total = 0.0
        for name, p in self._params:
            grad = 0.0 if p.grad is None else _norm(p.grad.array)
            total += grad * grad
            before = self._before[name]
            size = _norm(before)
            change = _norm(p.array.astype(np.float64) - before)
            self._grad_sums[name] = self._grad_sums.get(name, 0.0) + grad
            if size > 0:  # the ratio of a parameter that is all zeros (a fresh bias) is undefined: skip it
                self._ratio_sums[name] = self._ratio_sums.get(name, 0.0) + change / size
                self._ratio_counts[name] = self._ratio_counts.get(name, 0) + 1
        self._global_sum += math.sqrt(total)
        self._count += 1
        self._before = None

    def _measure_on_device(self, xp: Any) -> None:
        """:meth:`on_batch_end`'s sums as 0-d arrays on the device (nothing is read back here)."""
        total: Any = 0.0
        for name, p in self._params:
            grad = xp.zeros((), np.float64) if p.grad is None else _norm_on_device(p.grad.array, xp)
            total = total + grad * grad
            before = self._before[name]  # type: ignore[index]
            size = _norm_on_device(before, xp)
            change = _norm_on_device(p.array.astype(np.float64) - before, xp)
            self._grad_sums[name] = self._grad_sums.get(name, 0.0) + grad
            nonzero = size > 0  # the ratio of an all-zero parameter (a fresh bias) is undefined: not counted
            ratio = xp.where(nonzero, change / xp.where(nonzero, size, 1.0), 0.0)
            self._ratio_sums[name] = self._ratio_sums.get(name, 0.0) + ratio
            self._ratio_counts[name] = self._ratio_counts.get(name, 0) + nonzero.astype(np.int64)
        self._global_sum = self._global_sum + xp.sqrt(total)
        self._count += 1
        self._before = None

    def _read_device_sums(self, xp: Any) -> dict[str, float]:
        """Copies the epoch's device sums to the host in one piece (replacing them with floats) and returns
        the dead-ReLU fractions."""
        names = list(self._grad_sums)
        dead_names = [k for k, v in self._active.items() if v.size]
        values = (
            [self._grad_sums[k] for k in names]
            + [self._ratio_sums[k] for k in names]
            + [self._ratio_counts[k] for k in names]
            + [1.0 - v.astype(np.float64).mean() for k, v in self._active.items() if v.size]
            + [self._global_sum]
        )
        host = to_host(xp.stack([xp.asarray(v, dtype=np.float64) for v in values])).tolist()
        n = len(names)
        self._grad_sums = dict(zip(names, host[:n]))
        self._ratio_sums = {k: v for k, v, c in zip(names, host[n : 2 * n], host[2 * n : 3 * n]) if c > 0}
        self._ratio_counts = {k: int(c) for k, c in zip(names, host[2 * n : 3 * n]) if c > 0}
        self._global_sum = host[-1]
        return dict(zip(dead_names, host[3 * n : -1]))

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self._count == 0:
            return
        device_dead = self._read_device_sums(self._xp) if self._xp is not None else None
        grads = {k: v / self._count for k, v in self._grad_sums.items()}
        ratios = {
            k: self._ratio_sums[k] / self._ratio_counts[k] if k in self._ratio_counts else math.nan for k in grads
        }
        dead = (
            device_dead
            if device_dead is not None
            else {k: float(1.0 - v.mean()) for k, v in self._active.items() if v.size}
        )
        self.history.append({"grad_norm": grads, "update_ratio": ratios, "dead_relu": dead})
        if logs is not None:
            logs["grad_norm"] = self._global_sum / self._count
        if self.warn:
            loss = (logs or {}).get("loss")
            loss = float(loss) if isinstance(loss, (int, float, np.floating)) else math.nan
            grad_norm = self._global_sum / self._count
            if epoch == 0 or not math.isfinite(self._first_grad):
                if epoch == 0:
                    self._first_loss = loss
                self._first_grad = grad_norm
            converged = self._converged(loss, grad_norm)
            # Large steps are a problem only while they do not pay: a loss that still falls says the rate is
            # not too high (a freshly initialized weight, small next to its answer, moves by a lot at first).
            improving = math.isfinite(loss) and math.isfinite(self._prev_loss) and loss < self._prev_loss
            self._prev_loss = loss
            self._explain(epoch, grads, ratios, dead, converged, improving)

    def _converged(self, loss: float, grad_norm: float) -> bool:
        """Whether small gradients and small steps are what convergence looks like, not a problem.

        Converged: the gradient's norm has fallen to :data:`CONVERGED_GRAD_FRACTION` of the first epoch's
        (at a minimum the gradient vanishes, whatever loss the data's noise leaves: least squares on noisy
        data keeps most of its first loss), or the loss has fallen to a tenth of the first epoch's. A
        learning rate that is too low moves the weights too little for either: its gradient stays about
        as large as at the start.
        """
        if math.isfinite(loss) and math.isfinite(self._first_loss) and loss <= 0.1 * self._first_loss:
            return True
        return (
            math.isfinite(grad_norm)
            and math.isfinite(self._first_grad)
            and grad_norm <= CONVERGED_GRAD_FRACTION * self._first_grad
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The per-epoch record and the warnings already given, so a resumed run reports as an uninterrupted one.

        The record is stored as one float64 table per kind (epochs x names, see :class:`_Tables`): a dict per
        epoch would be re-encoded number by number at every epoch's checkpoint, a cost growing with the run.
        (The tables follow ``self.history`` as the callback appends to it; a record edited in place
        afterwards is not seen.)
        """
        return {
            "history": self._tables.pack(self.history),
            "warned": [list(k) for k in sorted(self._warned)],
            # what the next warnings depend on (convergence is judged against the first epoch's loss)
            "first_loss": float(self._first_loss),
            "first_grad": float(self._first_grad),
            "prev_loss": float(self._prev_loss),
            "said": list(self._said),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s record and gives again the warnings given before it was saved,
        so that whatever collects warnings (a run's report) holds the same ones as an uninterrupted run's."""
        record = state["history"]
        # Checkpoints written before the tables held the list of per-epoch dicts itself.
        self.history = [dict(epoch) for epoch in record] if isinstance(record, list) else _unpack(record)
        self._warned = {(str(kind), str(name)) for kind, name in state["warned"]}
        # older checkpoints lack these: the losses stay unknown and earlier warnings are not repeated
        self._first_loss = float(state.get("first_loss", math.nan))
        self._first_grad = float(state.get("first_grad", math.nan))
        self._prev_loss = float(state.get("prev_loss", math.nan))
        self._said = [str(message) for message in state.get("said", [])]
        if self.warn:
            for message in self._said:
                warnings.warn(message, RuntimeWarning, stacklevel=2)

    # ------------------------------------------------------------------ plain words
    def _say(self, kind: str, name: str, message: str) -> None:
        if (kind, name) in self._warned:
            return
        self._warned.add((kind, name))
        self._said.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def _explain(
        self,
        epoch: int,
        grads: dict[str, float],
        ratios: dict[str, float],
        dead: dict[str, float],
        converged: bool = False,
        improving: bool = False,
    ) -> None:
        when = f"in epoch {epoch + 1}"
        # dead ReLUs first: in the same epoch they are the cause of the vanishing gradients named below
        for name, fraction in dead.items():
            if fraction > self.dead_fraction:
                self._say(
                    "dead",
                    name,
                    f"{fraction:.0%} of the units after ReLU {name!r} never fired {when} (dead ReLUs pass no "
                    "gradient and do not recover); lower the learning rate, check the initialization, or try "
                    "LeakyReLU",
                )
        cause = self._vanishing_cause()
        for name, g in grads.items():
            if not math.isfinite(g):
                self._say("nonfinite", name, f"gradients of {name!r} are not finite {when}: training has diverged")
            elif g < self.vanishing and not converged and self._can_vanish(name):
                self._say(
                    "vanishing",
                    name,
                    f"gradients of {name!r} are vanishingly small {when} (mean norm {g:.1e}), so this layer has "
                    f"almost stopped learning; {cause}",
                )
            elif g > self.exploding and epoch > 0 and not improving:
                self._say(
                    "exploding",
                    name,
                    f"gradients of {name!r} are very large {when} (mean norm {g:.1e}), so updates may overshoot; "
                    f"lower the learning rate or clip gradients (e.g. {self.clip_hint})",
                )
        for name, r in ratios.items():
            if name not in self._matrices:
                continue  # biases and norm parameters start at 0 or 1: their relative change says little about lr
            if r > self.ratio_high and epoch > 0 and not improving:
                self._say(
                    "ratio_high",
                    name,
                    f"each update changes {name!r} by {r:.0%} of its size {when}; about 0.1% is typical, so the "
                    "learning rate is probably too high",
                )
            elif 0 < r < self.ratio_low and not converged:
                self._say(
                    "ratio_low",
                    name,
                    f"each update changes {name!r} by only {r:.1e} of its size {when}; about 1e-3 is typical, so "
                    "the learning rate is probably too low",
                )

    def _can_vanish(self, name: str) -> bool:
        """Vanishing gradients are the chain rule's product shrinking through a stack of layers: only a
        weight matrix with another one in the model can have them. A bias's gradient is the mean residual,
        near 0 whenever the outputs' mean fits (a linear regression's bias at its optimum), and a
        one-layer model has no stack."""
        return name in self._matrices and len(self._matrices) > 1

    def _vanishing_cause(self) -> str:
        """The likely causes of vanishing gradients in this model: dead ReLUs once they were reported
        (a unit that never fires passes no gradient back), else those its activations can have."""
        dead = sorted(name for kind, name in self._warned if kind == "dead")
        if dead:
            after = ", ".join(repr(n) for n in dead)
            return (
                f"the dead ReLUs reported (after ReLU {after}) are the likely cause: units that never fire pass "
                "no gradient back; lower the learning rate or try LeakyReLU"
            )
        causes = []
        if "saturating" in self._kinds:
            causes.append("saturated sigmoid/tanh units")
        if "relu" in self._kinds:
            causes.append("ReLU units that rarely fire")
        causes += ["a deep stack without normalization", "a too-small initialization"]
        return ", ".join(causes[:-1]) + " or " + causes[-1] + " are the usual causes"


def _activation_kinds(model: Any) -> set[str]:
    """Which kinds of activation ``model`` holds: 'saturating' (sigmoid, tanh and their kin, whose
    gradient vanishes for large inputs) and 'relu' (ReLU and ReLU6, zero for negative inputs)."""
    from ..nn import activation as act

    if model is None or not hasattr(model, "modules"):
        return set()
    saturating = (act.Sigmoid, act.Tanh, act.Hardsigmoid, act.Hardtanh, act.Softsign, act.LogSigmoid)
    kinds = set()
    for module in model.modules():
        if isinstance(module, saturating):
            kinds.add("saturating")
        elif isinstance(module, (act.ReLU, act.ReLU6)):
            kinds.add("relu")
    return kinds


_KINDS = ("grad_norm", "update_ratio", "dead_relu")


class _Tables:
    """GradientDiagnostics' per-epoch record as tables, kept up to date one epoch at a time.

    For each kind: the names seen (in the order first seen), a float64 array ``values[epoch, name]`` and,
    when some epoch lacks a name (a ReLU that saw no batch), a bool array ``present`` of the same shape.
    Only the epochs added since the last call are converted, so a checkpoint per epoch costs a copy of the
    tables (C speed), not a walk over every epoch's dicts. The record is rebuilt from scratch when
    ``history`` is not the list the tables were made from (replaced, shortened, or loaded).
    """

    def __init__(self) -> None:
        self.count = 0
        self.last: Any = None  # the last record converted: identifies the list the tables follow
        self.names: dict[str, dict[str, int]] = {kind: {} for kind in _KINDS}
        self.values = {kind: np.full((0, 0), np.nan) for kind in _KINDS}
        self.present = {kind: np.zeros((0, 0), dtype=bool) for kind in _KINDS}

    def pack(self, history: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
        if len(history) < self.count or (self.count and history[self.count - 1] is not self.last):
            self.__init__()  # type: ignore[misc]
        for record in history[self.count :]:
            self._add(record)
        self.last = history[-1] if history else None
        n = self.count
        packed: dict[str, Any] = {"epochs": n}
        for kind in _KINDS:
            k = len(self.names[kind])
            present = self.present[kind][:n, :k]
            packed[kind] = {"names": list(self.names[kind]), "values": self.values[kind][:n, :k].copy()}
            if not present.all():
                packed[kind]["present"] = present.copy()
        return packed

    def _add(self, record: dict[str, dict[str, float]]) -> None:
        row = self.count
        for kind in _KINDS:
            names = self.names[kind]
            entries = record.get(kind, {})
            for name in entries:
                names.setdefault(name, len(names))
            self._ensure(kind, row + 1, len(names))
            values, present = self.values[kind], self.present[kind]
            for name, value in entries.items():
                values[row, names[name]] = value
                present[row, names[name]] = True
        self.count += 1

    def _ensure(self, kind: str, rows: int, columns: int) -> None:
        """Grow ``kind``'s buffers to at least ``rows`` x ``columns`` (rows doubling)."""
        values = self.values[kind]
        if rows <= values.shape[0] and columns <= values.shape[1]:
            return
        height = max(2 * rows, 16) if rows > values.shape[0] else values.shape[0]
        shape = (height, max(values.shape[1], columns))
        grown = np.full(shape, np.nan)
        grown[: values.shape[0], : values.shape[1]] = values
        present = np.zeros(shape, dtype=bool)
        present[: values.shape[0], : values.shape[1]] = self.present[kind]
        self.values[kind], self.present[kind] = grown, present


def _unpack(packed: dict[str, Any]) -> list[dict[str, dict[str, float]]]:
    """The inverse of :meth:`_Tables.pack`."""
    history: list[dict[str, dict[str, float]]] = [{} for _ in range(int(packed["epochs"]))]
    for kind in _KINDS:
        table = packed[kind]
        names = list(table["names"])
        values = np.asarray(table["values"], dtype=np.float64).reshape(len(history), len(names)).tolist()
        present = table.get("present")
        shown = None if present is None else np.asarray(present, dtype=bool).reshape(len(history), len(names)).tolist()
        for i, record in enumerate(history):
            row = values[i]
            if shown is None:
                record[kind] = dict(zip(names, row))
            else:
                record[kind] = {name: v for name, v, here in zip(names, row, shown[i]) if here}
    return history


class RisingLossWarning(UserWarning):
    """fit's warning that the training loss rose steadily to the end (a slow divergence the
    divergence guard's limits did not stop)."""


#: A run whose training loss rose in each of its last k epochs (k = half its epochs, at most this
#: many and at least :data:`RISING_MIN_EPOCHS`) ...
RISING_MAX_EPOCHS = 10
RISING_MIN_EPOCHS = 3
#: ... and ends this many times above its lowest loss is said to be rising steadily.
RISING_FACTOR = 10.0


def rising_loss_note(losses: list[Any], epochs: list[int] | None = None) -> str | None:
    """The sentence fit warns with when the training loss rose in each of the last k epochs and ends at
    least :data:`RISING_FACTOR` times above its lowest (None otherwise); ``epochs`` are the 1-based
    epoch numbers of ``losses`` (1, 2, ... by default).

    Example:
        >>> print(rising_loss_note([4.0, 2.0, 1.0, 2.0, 4.0, 8.0, 16.0]).split(":")[1])
         the training loss rose in each of the last 3 epochs, from its lowest 1 (epoch 3) to 16 (epoch 7, 16x the lowest)
        >>> rising_loss_note([4.0, 5.0, 2.0, 3.0, 1.0, 1.5, 0.5]) is None
        True
    """
    numbers = [float(v) if v is not None else math.nan for v in losses]
    numbers_epochs = list(epochs) if epochs is not None else list(range(1, len(numbers) + 1))
    k = max(RISING_MIN_EPOCHS, min(RISING_MAX_EPOCHS, len(numbers) // 2))
    if len(numbers) < k + 1 or not all(math.isfinite(v) for v in numbers[-k - 1 :]):
        return None
    tail = numbers[-k - 1 :]
    if not all(later > earlier for earlier, later in zip(tail, tail[1:])):
        return None
    finite = [(v, e) for v, e in zip(numbers, numbers_epochs) if math.isfinite(v)]
    lowest, lowest_epoch = min(finite, key=lambda pair: pair[0])
    last, last_epoch = numbers[-1], numbers_epochs[-1]
    if not (lowest > 0 and last >= RISING_FACTOR * lowest):
        return None  # (a loss that may go negative, an NLL, has no ratio to judge by)
    return (
        f"fit: the training loss rose in each of the last {k} epochs, from its lowest {lowest:.4g} "
        f"(epoch {lowest_epoch}) to {last:.4g} (epoch {last_epoch}, {last / lowest:.3g}x the lowest): the loss "
        "is rising steadily and the learning rate may be too large (try a smaller one)"
    )


class LossAboveStartWarning(UserWarning):
    """fit's warning that training ended far above the loss it started from and never came back below it
    (a blow-up below the divergence guard's limits: the weights were thrown off and stayed off)."""


#: A run whose every epoch's loss, and the typical batch loss of its last epoch, are at least this many
#: times the loss before training ended above where it started (see :func:`loss_above_start_note`).
ABOVE_START_FACTOR = 10.0


def loss_above_start_note(
    losses: list[Any], before: float | None, last_batches: list[float], epochs: list[int] | None = None
) -> str | None:
    """The sentence fit warns with when training never came back below :data:`ABOVE_START_FACTOR` times
    ``before``, the loss before training (the first batch's, taken before any update): every epoch's loss is
    that far above it, and so is the median of ``last_batches``, the last epoch's batch losses. The median
    tells a run thrown off from a first batch that was merely easy (a target that is mostly zeros, a first
    batch of zeros): there the typical batch stays near the first one and only a few hard batches lift the
    epoch's mean. None otherwise, and None without batch losses (on a device they are not read back).

    Example:
        >>> print(loss_above_start_note([9713.0, 32400.0, 11.2, 13.3], 0.61, [12.0, 9.0, 15.0]))  # doctest: +ELLIPSIS
        fit: training ended with the loss at 13.3, 21.8x the loss before training (0.61, the first batch's)...
        >>> loss_above_start_note([1.0, 1.1, 1.0], 0.003, [0.004, 0.004, 30.0]) is None  # an easy first batch
        True
    """
    numbers = [float(v) if v is not None else math.nan for v in losses]
    values = np.array([float(v) for v in last_batches], dtype=np.float64)
    values = values[np.isfinite(values)]
    if before is None or not (math.isfinite(before) and before > 0) or not numbers or not len(values):
        return None  # (a loss that may go negative, an NLL, has no ratio to judge by)
    if not all(math.isfinite(v) for v in numbers):
        return None
    limit = ABOVE_START_FACTOR * before
    if min(numbers) < limit or float(np.median(values)) < limit:
        return None
    numbers_epochs = list(epochs) if epochs is not None else list(range(1, len(numbers) + 1))
    peak = max(range(len(numbers)), key=numbers.__getitem__)
    last = numbers[-1]
    return (
        f"fit: training ended with the loss at {last:.4g}, {last / before:.3g}x the loss before training "
        f"({before:.4g}, the first batch's), and no epoch came back below {ABOVE_START_FACTOR:g}x it (the "
        f"epoch losses peaked at {numbers[peak]:.4g} in epoch {numbers_epochs[peak]}): an early blow-up threw "
        "the weights far off and training did not recover; the learning rate is probably too large (try a "
        "smaller one)"
    )


# ---------------------------------------------------------------------- the curvature of a linear model's loss
# For the mean squared error of a linear model, the loss is a quadratic whose Hessian is ``2/(n k) [X 1]^T [X 1]``
# (n rows, k outputs): its largest eigenvalue L sets the largest learning rate plain gradient descent survives
# (2 / L), and the target plays no part in it. Inputs in large units (an area of 600-3500 sq ft) make L large and
# that rate tiny; standardized inputs keep it near 1. The same quadratic has a closed-form minimum (least squares),
# which tells a crawl from convergence. fit and the CLI (downslope.experiment.advice) both judge runs with these.

#: Above this many feature columns the d x d products are not computed (the judgement is skipped).
MAX_FEATURES = 2048

#: The curvature is estimated from at most this many rows (evenly spaced): a float64 copy of millions of rows
#: would cost more memory than the advice is worth; the least-squares optimum, which must be the training rows'
#: own, is not computed above it.
MAX_ROWS = 200_000


def _design(X: Any, sample: bool = True) -> np.ndarray | None:
    """The training features with a column of ones (the bias), in float64; None for lazy or huge data
    (``sample``: more than :data:`MAX_ROWS` rows are thinned to that many, else refused)."""
    from ..data.memmap import is_lazy

    if is_lazy(X):
        return None
    if len(X) > MAX_ROWS:
        if not sample:
            return None
        X = X[:: -(-len(X) // MAX_ROWS)]
    x = np.asarray(X, np.float64)
    x = x.reshape(len(x), -1)
    if not len(x) or x.shape[1] > MAX_FEATURES or not np.isfinite(x).all():
        return None
    return np.hstack([x, np.ones((len(x), 1))])


def stable_lr(X: Any, n_outputs: int = 1, momentum: float = 0.0) -> float | None:
    """The largest learning rate at which full-batch gradient descent on the mean squared error of a
    linear model (with bias) of ``X`` does not diverge: ``2 (1 + momentum) / L`` with ``L = 2 lambda_max /
    n_outputs``, ``lambda_max`` the largest eigenvalue of ``[X 1]^T [X 1] / n`` (heavy-ball momentum
    widens the stable range by ``1 + momentum``); None when it cannot be computed.

    Example:
        >>> x = np.array([[1.0], [-1.0]])  # [X 1]^T [X 1] / n is the identity: lambda_max = 1
        >>> stable_lr(x)
        1.0
    """
    a = _design(X)
    if a is None:
        return None
    top = float(np.linalg.eigvalsh(a.T @ a / len(a))[-1])
    if not top > 0:
        return None
    return (1.0 + momentum) * n_outputs / top


def least_squares_loss(X: Any, y: Any) -> float | None:
    """The smallest mean squared error a linear model (with bias) reaches on rows ``X``, targets ``y``
    (the mean over rows and outputs, as MSELoss); None when it cannot be computed.

    Example:
        >>> least_squares_loss(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])) < 1e-20
        True
    """
    a = _design(X, sample=False)
    if a is None:
        return None
    t = np.asarray(y, np.float64).reshape(len(a), -1)
    w = np.linalg.lstsq(a, t, rcond=None)[0]
    return float(np.mean((a @ w - t) ** 2))


def standardized(X: Any) -> np.ndarray:
    """``X``'s columns as ``(x - mean) / std`` (a constant column is only centred), in float64."""
    x = np.asarray(X, np.float64).reshape(len(X), -1)
    scale = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def condition_number(X: Any) -> float | None:
    """The ratio of the loss's largest curvature to its smallest (the Hessian's condition number) for a
    linear model of ``X`` under the mean squared error; None when it cannot be computed."""
    a = _design(X)
    if a is None:
        return None
    values = np.linalg.eigvalsh(a.T @ a / len(a))
    return float(values[-1] / values[0]) if values[0] > 0 else None


#: A run that ends at its epoch limit crawled when its best training loss is this fraction above the
#: least-squares optimum, and this fraction of the way from it up to the loss of predicting the mean.
CRAWL_EXCESS = 0.1
CRAWL_LEFT = 0.01


def unconverged_loss(X: Any, y: Any, losses: list[Any]) -> tuple[float, float] | None:
    """(the best training loss of ``losses``, the least-squares optimum) when a linear model of ``X`` trained
    on targets ``y`` under the mean squared error stopped far from the optimum it can reach (see
    :data:`CRAWL_EXCESS`, :data:`CRAWL_LEFT`); None for a converged run, a short one (under 10 epochs) or one
    that cannot be judged.

    Example:
        >>> x = np.array([[100.0], [200.0], [300.0]])
        >>> unconverged_loss(x, np.array([1.0, 2.0, 3.1]), [4.0 - 0.1 * e for e in range(10)])  # doctest: +ELLIPSIS
        (3.1, 0.000555...)
    """
    seen = [float(v) for v in losses if v is not None and math.isfinite(v)]
    if len(seen) < 10:  # short runs are not judged
        return None
    best = least_squares_loss(X, y)
    if best is None:
        return None
    last = min(seen)
    # how far the optimum is below a model that learned only the mean (not below the first epoch's
    # loss: unscaled features can start that orders of magnitude higher)
    t = np.asarray(y, np.float64)
    t = t.reshape(len(t), -1)
    spread = float(np.mean((t - t.mean(axis=0)) ** 2))
    excess = last - best
    if excess <= CRAWL_EXCESS * best or excess <= CRAWL_LEFT * (spread - best):
        return None
    return last, best


#: Inputs whose loss is this many times worse conditioned than the same inputs standardized have scales
#: that differ hugely (one feature in thousands, another in units, or all of them far from 0).
SCALE_CONDITION_RATIO = 100.0


class UnscaledInputsWarning(UserWarning):
    """fit's warning that gradient descent crawled because the inputs are not standardized."""


def unscaled_inputs_note(X: Any, y: Any, losses: list[Any], n_outputs: int = 1, momentum: float = 0.0) -> str | None:
    """The sentence fit warns with when gradient descent on a linear model under the mean squared error ended
    far from its least-squares optimum (:func:`unconverged_loss`) because of the inputs' scales: standardizing
    them would make the loss :data:`SCALE_CONDITION_RATIO` times better conditioned or more. None otherwise.

    Example:
        >>> x = np.array([[1000.0], [2000.0], [3000.0]])
        >>> losses = [4.0 - 0.1 * e for e in range(10)]
        >>> unscaled_inputs_note(x, np.array([1.0, 2.0, 3.1]), losses)[:27]
        'fit: training had not conve'
    """
    if len([v for v in losses if v is not None and math.isfinite(v)]) < 10:
        return None  # (as unconverged_loss: before the products over the rows)
    scaled_x = standardized(X)
    raw, scaled = condition_number(X), condition_number(scaled_x)
    if raw is None or scaled is None or raw < SCALE_CONDITION_RATIO * scaled:
        return None
    gap = unconverged_loss(X, y, losses)  # (the least-squares solve, the dearest part, last)
    if gap is None:
        return None
    last, best = gap
    limit = stable_lr(X, n_outputs, momentum)
    better = stable_lr(scaled_x, n_outputs, momentum)
    rates = ""
    if limit is not None:
        with_std = f" (about {better:.2g} with standardized inputs)" if better else ""
        rates = f" their scale makes the largest stable learning rate of gradient descent tiny, about {limit:.2g}{with_std}, and"
    above = f"{100 * (last - best) / best:.3g}% above" if best > 0 else "above"
    return (
        f"fit: training had not converged: its best training loss {last:.4g} is {above} {best:.4g}, the least-squares "
        f"optimum a linear model reaches on these rows; gradient descent was crawling, not finished: the inputs are "
        f"not standardized:{rates} at such a rate the loss's flat directions (its curvature differs {raw:.2g}-fold "
        "between directions) take very many steps. Standardize the inputs, e.g. x = (x - mean) / std with the "
        "training rows' mean and std (and the same mean and std for new inputs)"
    )
