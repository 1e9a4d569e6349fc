"""The callback protocol: :class:`Callback` (every hook a no-op), :class:`CallbackList`, and
:class:`TrainingState`, what a callback sees of the run (``self.trainer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ...errors import ArgumentError, ArgumentTypeError, StateError
from ...optim.protocols import OptimizerLike, SchedulerLike
from ..history import STOP_KINDS, History
from ..metrics import Metric
from ..protocols import ModelLike

Logs = dict[str, Any]


class TrainingState:
    """What callbacks see of a training run (``callback.trainer``); ``fit`` fills it.

    Attributes:
        model, optimizer, scheduler: the objects being trained (None where absent).
        history: the :class:`~downslope.train.history.History` being recorded.
        params: facts about the run: ``epochs``, ``steps`` (updates per epoch), ``batch_size``.
        metrics: the Metric objects fit computes, by name (monitors with ``mode='auto'`` read
            their ``greater_is_better``).
        epoch: the 0-based index of the current epoch.
        stop_training / stop_reason: set by :meth:`Callback.stop`.
        checkpoint_state: a function returning the full, resumable training state (set by fit).
        signal_received: the name of a signal fit received ('SIGINT'), which stops training once the
            epoch under way is finished (a checkpoint written less often than every epoch writes that one).
    """

    def __init__(
        self,
        model: ModelLike | None = None,
        optimizer: OptimizerLike | None = None,
        scheduler: SchedulerLike | None = None,
        history: History | None = None,
        params: dict[str, Any] | None = None,
        metrics: Iterable[Metric] = (),
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.history = history
        self.params: dict[str, Any] = dict(params or {})
        self.metrics: dict[str, Metric] = {m.name: m for m in metrics}
        self.epoch = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self.stop_kind: str | None = None
        self.checkpoint_state: Callable[[], dict[str, Any]] | None = None
        self.signal_received: str | None = None

    def parts(self) -> tuple[ModelLike, OptimizerLike, History]:
        """The model, optimizer and history being trained; a StateError outside a run (fit sets all three).

        Example:
            >>> from downslope import nn, optim
            >>> from downslope.train import History
            >>> model = nn.Linear(1, 1)
            >>> state = TrainingState(model, optim.SGD(model.parameters(), lr=0.1), history=History())
            >>> state.parts()[0] is model
            True
        """
        if self.model is None or self.optimizer is None or self.history is None:
            missing = [n for n in ("model", "optimizer", "history") if getattr(self, n) is None]
            raise StateError(f"TrainingState: no {', '.join(missing)} (a callback used outside fit?)")
        return self.model, self.optimizer, self.history

    def current_lr(self) -> float | None:
        """The first parameter group's learning rate, if there is an optimizer."""
        groups = getattr(self.optimizer, "param_groups", None)
        if groups:
            return float(groups[0]["lr"])
        return None


class Callback:
    """Base class: every hook is a documented no-op; override the ones you need.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch + 1}: loss {logs['loss']:.2f}")
        >>> cb = PrintLoss(); cb.set_trainer(TrainingState())
        >>> cb.on_epoch_end(0, {"loss": 0.5})
        epoch 1: loss 0.50
    """

    trainer: TrainingState

    def set_trainer(self, trainer: TrainingState) -> None:
        self.trainer = trainer

    @property
    def model(self) -> ModelLike | None:
        """The model being trained (None outside a run). It is the Module itself, not a Keras model: the
        optimizer is ``self.trainer.optimizer`` and the weights ``self.model.state_dict()``."""
        return self.trainer.model

    @property
    def params(self) -> dict[str, Any]:
        """Keras' ``Callback.params``: the run's ``epochs``, ``steps`` (updates per epoch) and ``verbose`` (and
        ``batch_size``), set by fit (``self.trainer.params``); ``{}`` outside a run, or what
        :meth:`set_params` set."""
        own = self.__dict__.get("_params")
        if own is not None:
            return own
        trainer = self.__dict__.get("trainer")
        return trainer.params if trainer is not None else {}

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        self.__dict__["_params"] = value

    def set_params(self, params: dict[str, Any]) -> None:
        """Keras' ``set_params``: sets :attr:`params` (fit's own numbers stay in ``self.trainer.params``)."""
        self.params = params

    def trained_model(self) -> ModelLike:
        """The model being trained; a StateError naming the callback when there is none (outside fit)."""
        model = self.trainer.model
        if model is None:
            raise StateError(f"{type(self).__name__}: the training state has no model (used outside fit?)")
        return model

    def stop(self, reason: str, kind: str = "callback") -> None:
        """Ask the loop to stop after the current batch; ``reason`` (words) ends up in
        ``History.stop_reason`` and ``kind`` (one of ``history.STOP_KINDS``) in ``History.stop_kind``."""
        if kind not in STOP_KINDS:
            raise ArgumentError(
                f"{type(self).__name__}.stop: kind must be one of {', '.join(STOP_KINDS)}; got {kind!r}"
            )
        self.trainer.stop_training = True
        if self.trainer.stop_reason is None:
            self.trainer.stop_reason = reason
            self.trainer.stop_kind = kind

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch. Reset per-run state here."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch (also after an early stop or a Ctrl-C)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called after an epoch's training and validation; ``logs`` holds its numbers."""

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before the update on batch ``batch`` of the epoch."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after the update on batch ``batch``. ``logs`` are Keras 3's: ``logs['loss']`` is the
        epoch's mean loss so far, and each metric so far is there when a callback of the user's overrides
        a batch-end hook; ``logs.batch_loss`` is this batch's own loss and ``logs.size`` its samples
        (see ``train/batch_logs.py``). On a device the losses are
        :class:`~downslope.train.placement.DeviceScalar`, copied to the host only if read, e.g. by
        ``float(logs['loss'])``: reading them every batch makes each step wait for the device."""

    # Keras 3's names. fit calls these; by default they call on_batch_begin/on_batch_end (Keras' older
    # names), so a callback overrides either name, as in Keras (overriding both: only these run, unless
    # they call super()).
    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before the update on training batch ``batch``; by default calls :meth:`on_batch_begin`."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after the update on training batch ``batch``; by default calls :meth:`on_batch_end`."""
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: Logs | None = None) -> None:
        """Called before evaluation: fit's validation after each epoch, or ``evaluate(callbacks=...)``."""

    def on_test_end(self, logs: Logs | None = None) -> None:
        """Called after evaluation; ``logs`` holds its loss and metrics (without the ``val_`` prefix)."""

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before evaluation batch ``batch`` (validation in fit, or ``evaluate``)."""

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after evaluation batch ``batch``; ``logs`` as :meth:`on_batch_end`'s: the loss so far (and
        each metric so far, for a callback of the user's), ``logs.batch_loss`` and ``logs.size``."""

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        """Called before ``predict(callbacks=...)`` runs its first batch."""

    def on_predict_end(self, logs: Logs | None = None) -> None:
        """Called after ``predict``'s last batch."""

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before ``predict`` runs batch ``batch``."""

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after ``predict`` runs batch ``batch``; ``logs``: ``{'outputs': its output array}``."""

    def state_dict(self) -> dict[str, Any]:
        """State to put in a checkpoint so that a resumed run behaves as an uninterrupted one."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def state_identity(self) -> dict[str, Any]:
        """The settings that make this callback's saved state its own (strings, numbers, None).

        A resumed run gives a checkpoint's state back to the callback of the same class and the same
        identity, wherever it now stands in the list: an EarlyStopping's best value means nothing to one
        that watches another quantity. Settings that may change on resume (a longer patience) are not
        part of it. The default, no settings, matches by class alone."""
        return {}

    def legacy_state_fits(self, state: dict[str, Any]) -> bool:
        """Whether a state saved by a checkpoint from before :meth:`state_identity` (which recorded only
        the position and the class) belongs to this callback, as far as the state itself tells."""
        return True


def _describe(name: str, identity: dict[str, Any]) -> str:
    """'EarlyStopping(monitor='val_loss', mode='auto')': a callback as a warning names it."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in sorted(identity.items()))})"


def _same_identity(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _canonical(a) == _canonical(b)


def _canonical(identity: dict[str, Any]) -> dict[str, str]:
    # a checkpoint may give a number back as another type (1 for 1.0): compare numbers as floats
    def text(v: Any) -> str:
        return repr(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else repr(v)

    return {str(k): text(v) for k, v in identity.items()}


#: The "format" entry of :meth:`CallbackList.state_dict`: states matched by class and identity. Checkpoints
#: without it key each state by "{position}:{class name}".
_BY_IDENTITY = "class+identity"


class CallbackList(Callback):
    """Calls each hook on a list of callbacks, in order.

    Example:
        >>> cbs = CallbackList([Callback(), Callback()])
        >>> len(cbs)
        2
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None) -> None:
        self.callbacks: list[Callback] = []
        for cb in callbacks or []:
            if not isinstance(cb, Callback):
                raise ArgumentTypeError(_not_a_callback(cb, f"callbacks[{len(self.callbacks)}]"))
            self.callbacks.append(cb)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_trainer(self, trainer: TrainingState) -> None:
        self.trainer = trainer
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)

    def on_test_begin(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_end(logs)

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_test_batch_end(batch, logs)

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_end(logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_batch_begin(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_predict_batch_end(batch, logs)

    def state_dict(self) -> dict[str, Any]:
        """Each callback's state with its class and :meth:`~Callback.state_identity`, so that a resumed run
        gives it back to the matching callback even when the list was reordered or added to."""
        return {
            "format": _BY_IDENTITY,
            "entries": [
                {"class": type(cb).__name__, "identity": cb.state_identity(), "state": cb.state_dict()}
                for cb in self.callbacks
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Give each callback the saved state of its class and identity (not its position: a list built in
        another order, or with a callback inserted, restores every state). A callback whose settings
        changed keeps its new settings and starts fresh, and a saved state no callback matches is left
        out, each with a warning naming it."""
        if state.get("format") == _BY_IDENTITY:
            entries = [(str(e["class"]), dict(e["identity"]), e["state"]) for e in state["entries"]]
            self._load_matched(entries)
        else:
            self._load_positional(state)

    def _load_matched(self, entries: list[tuple[str, dict[str, Any], Any]]) -> None:
        used = [False] * len(entries)
        unmatched: list[Callback] = []
        for cb in self.callbacks:
            name, identity = type(cb).__name__, cb.state_identity()
            found = next(
                (
                    j
                    for j, (n, ident, _) in enumerate(entries)
                    if not used[j] and n == name and _same_identity(ident, identity)
                ),
                None,
            )
            if found is None:
                unmatched.append(cb)
                continue
            used[found] = True
            cb.load_state_dict(entries[found][2])
        for cb in unmatched:  # a saved state of the same class but other settings: the settings changed
            name, identity = type(cb).__name__, cb.state_identity()
            j = next(
                (j for j, (n, _, st) in enumerate(entries) if not used[j] and n == name and _holds_anything(st)), None
            )
            if j is None:
                continue  # a callback new to this run: it starts fresh, as it would in any run
            used[j] = True
            _warn(
                f"fit(resume_from=...): {_describe(name, identity)} starts fresh: the checkpoint's {name} was "
                f"{_describe(name, entries[j][1])}, so its saved state (its best value, its count) is not this "
                "one's; it keeps its own settings"
            )
        for j, (name, identity, saved) in enumerate(entries):
            if not used[j] and _holds_anything(saved):
                _warn(
                    f"fit(resume_from=...): the checkpoint holds the state of {_describe(name, identity)}, which "
                    "no callback of this run matches; it is not restored (pass the same callback to continue it)"
                )

    def _load_positional(self, state: dict[str, Any]) -> None:
        """A checkpoint keyed "{position}:{class name}": restored where that is unambiguous, that is a class
        saved once and present once, or the same classes in the same order as saved."""
        saved = sorted(((int(k.split(":", 1)[0]), k.split(":", 1)[1], v) for k, v in state.items()), key=lambda e: e[0])
        same_list = [n for _, n, _ in saved] == [type(cb).__name__ for cb in self.callbacks]
        told: set[str] = set()
        for cb_index, cb in enumerate(self.callbacks):
            name = type(cb).__name__
            of_class = [(i, st) for i, n, st in saved if n == name]
            present = sum(type(other).__name__ == name for other in self.callbacks)
            if same_list:
                candidate = next((st for i, st in of_class if i == cb_index), None)
            elif len(of_class) == 1 and present == 1:
                candidate = of_class[0][1]
            else:
                if any(_holds_anything(st) for _, st in of_class) and name not in told:
                    told.add(name)
                    _warn(
                        f"fit(resume_from=...): {name} starts fresh: the checkpoint (written by an older version, "
                        f"which recorded callbacks by position) holds {len(of_class)} {name} state(s) and this run "
                        f"has {present} {name} callback(s) in another order, so which is whose cannot be told"
                    )
                continue
            if candidate is None:
                continue
            if not cb.legacy_state_fits(candidate):
                _warn(
                    f"fit(resume_from=...): {_describe(name, cb.state_identity())} starts fresh: the checkpoint's "
                    f"{name} state was saved for other settings; it keeps its own settings"
                )
                continue
            cb.load_state_dict(candidate)


def _holds_anything(state: Any) -> bool:
    """Whether a saved state records anything (a ModelCheckpoint that never compared holds only Nones):
    losing one that does not is not worth a warning."""
    if state is None:
        return False
    if isinstance(state, dict):
        return any(_holds_anything(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return any(_holds_anything(v) for v in state)
    size = getattr(state, "size", None)
    return size is None or bool(size)


def _warn(message: str) -> None:
    import warnings

    # 7: the user's fit call (above this, the matching, load_state_dict, restore, _resume and fit)
    warnings.warn(message, RuntimeWarning, stacklevel=7)


def as_callback_list(callbacks: Sequence[Callback] | CallbackList | None) -> CallbackList:
    """fit's ``callbacks`` argument (None, a list or tuple of Callbacks, or a CallbackList) as a CallbackList."""
    if isinstance(callbacks, CallbackList):
        return callbacks
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        if isinstance(callbacks, Callback):
            raise ArgumentTypeError(
                f"callbacks: expected a list of Callback objects, got one {kind_of(callbacks)}; wrap it in a list: "
                f"callbacks=[{type(callbacks).__name__}(...)]"
            )
        if _is_scheduler(callbacks):
            raise ArgumentTypeError(_not_a_callback(callbacks, "callbacks"))
        raise ArgumentTypeError(f"callbacks: expected a list of Callback objects, got {kind_of(callbacks)}")
    return CallbackList(callbacks)


def class_name(value: Any) -> str:
    """``value``'s class for a message: its qualified name, with its module when not downslope's or builtins."""
    kind = type(value)
    module = kind.__module__ or ""
    return (
        kind.__qualname__ if module.startswith("downslope") or module == "builtins" else f"{module}.{kind.__qualname__}"
    )


def kind_of(value: Any) -> str:
    """What ``value`` is, for a message: its class (:func:`class_name`), and a string's or a number's value;
    never the object's repr, which can be long and says nothing useful."""
    name = class_name(value)
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else f"a string of {len(value)} characters"
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    if isinstance(value, (bool, int, float)):
        return f"{name} {value!r}"
    return name


def _is_scheduler(value: Any) -> bool:
    """A learning-rate scheduler (downslope's or PyTorch's): it steps and holds the optimizer it steps."""
    return callable(getattr(value, "step", None)) and hasattr(value, "optimizer") and not hasattr(value, "param_groups")


def _not_a_callback(value: Any, where: str) -> str:
    """The message for something in ``callbacks`` that is not a Callback; a scheduler is sent to
    ``scheduler=``, where fit steps it."""
    if _is_scheduler(value):
        name = type(value).__name__
        message = (
            f"{where} is a learning-rate scheduler ({kind_of(value)}), not a Callback; pass it as "
            f"fit(..., scheduler=...), which steps it after each "
            f"{'batch' if getattr(value, 'steps_per_batch', False) else 'epoch'}"
        )
        if getattr(value, "needs_metric", False) or name == "ReduceLROnPlateau":
            message += " with the monitored value (val_loss, or loss without validation)"
        if name == "ReduceLROnPlateau":
            message += "; Keras' callback of that name, for callbacks=[...], is ds.train.ReduceLROnPlateau(...)"
        return message
    message = f"callbacks: expected Callback instances, got {kind_of(value)} as {where}"
    if isinstance(value, type) and issubclass(value, Callback):
        message += f"; pass an instance: {value.__name__}(...)"
    elif callable(value) and not isinstance(value, type):
        message += " (a function becomes one as ds.train.LambdaCallback(on_epoch_end=fn))"
    return message
