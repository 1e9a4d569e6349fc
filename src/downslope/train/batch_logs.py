"""The logs a batch hook gets (``on_train_batch_end``, ``on_test_batch_end``), as Keras 3 gives them.

Keras 3's batch logs hold the epoch's numbers *so far*: ``loss`` is the running mean of the batch losses
(weighted as the epoch's loss is, so that the last batch's value is the epoch's loss), and each compiled metric
is its value over the batches seen so far. fit computes the metrics so far only when a callback of the user's
overrides a batch-end hook (a mean over samples costs one metric call on the batch, and on a device a copy of
it to the host; any other metric, AUC or F1, is computed over the epoch so far only if the callback reads it);
otherwise the logs hold the loss alone, and nothing is read per batch that was not read before.
This batch's own loss, and its number of samples, are the attributes ``logs.batch_loss`` and ``logs.size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import to_host
from .callbacks import Callback, CallbackList
from .metrics import Metric
from .placement import DeviceScalar, EpochLoss

#: The hooks that receive a training batch's logs, and an evaluation batch's.
TRAIN_BATCH_END = ("on_train_batch_end", "on_batch_end")
TEST_BATCH_END = ("on_test_batch_end",)


class BatchLogs(dict[str, Any]):
    """A batch's logs: Keras 3's keys (``loss`` so far, each metric so far); ``batch_loss`` is this batch's
    own loss and ``size`` its number of samples (attributes, not keys, as Keras' logs have neither).
    ``scored`` is False for a batch with nothing to score, such as one whose targets are all the loss's
    ``ignore_index``: its loss is NaN (PyTorch's mean over no targets) and weighs nothing in the epoch's
    loss, so the divergence checks pass over it."""

    batch_loss: Any = None
    size: int = 0
    scored: bool = True


def reads_batch_logs(callback: Callback, hooks: tuple[str, ...]) -> bool:
    """Whether ``callback`` (or one in a CallbackList) runs code of the user's in one of ``hooks``: a hook its
    class overrides outside downslope, or a function given to a LambdaCallback. downslope's own callbacks
    read only the loss, so the metrics so far are not computed for them."""
    if isinstance(callback, CallbackList):
        return any(reads_batch_logs(cb, hooks) for cb in callback)
    for hook in hooks:
        if hook in vars(callback):  # a function set on the instance (LambdaCallback)
            return True
        method = getattr(type(callback), hook, None)
        module = getattr(method, "__module__", None) or ""
        if method is not None and not module.startswith("downslope."):
            return True
    return False


class RunningMetrics:
    """Each metric over the batches seen so far in an epoch. A per-sample mean (``Metric.sample_mean``) comes
    from its batches' values weighted by their sizes (the same number as over the samples together), one
    metric call per batch; any other metric (AUC, F1, a function of the user's, a weighted metric) needs the
    outputs and targets seen so far, so its value is a :class:`MetricSoFar`: for a built-in metric that adds
    up over batches (F1, precision, recall, AUC, average precision: ``Metric.running``) fed this batch only;
    for any other, the batches joined and computed when read (a read at every batch costs a pass over the
    epoch so far each time)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics
        self.sums = {m.name: 0.0 for m in metrics if m.sample_mean}
        self.count = 0
        self.running = {m.name: m.running() for m in metrics if m.running is not None and not m.weighted}

    def update(self, outputs: list[Any], targets: list[Any], weights: list[Any] | None = None) -> dict[str, Any]:
        """The metrics so far, given the epoch's outputs, targets and sample weights so far (the last entries:
        this batch)."""
        from .evaluation import metric_value
        from .multi_output import pick

        host: dict[str | None, tuple[Any, Any]] = {}  # each output's batch, read once (one for a single output)
        for m in self.metrics:
            if m.output not in host:  # host: a callback asked for the numbers
                host[m.output] = to_host(pick(outputs[-1], m)), to_host(pick(targets[-1], m))
        n = len(next(iter(host.values()))[0])
        self.count += n
        values: dict[str, Any] = {}
        for m in self.metrics:
            preds, target = host[m.output]
            if m.sample_mean and not m.weighted:
                self.sums[m.name] += metric_value(m, preds, target) * n
                values[m.name] = self.sums[m.name] / self.count
            else:
                values[m.name] = MetricSoFar(m, outputs, targets, weights, self._fed(m.name, preds, target))
        return values

    def _fed(self, name: str, preds: Any, target: Any) -> Any:
        """The value so far (a function) of the running metric ``name`` fed this batch, or None: no running
        metric, or one that cannot give the joined batches' number (then the batches are joined from now
        on, and a batch it refuses raises, when read, as the joined batches do)."""
        running = self.running.get(name)
        if running is None:
            return None
        try:
            if running.add(preds, target):
                return running.so_far()
        except Exception:  # noqa: BLE001 - the joined batches raise it when the value is read
            pass
        del self.running[name]
        return None


class MetricSoFar(DeviceScalar):
    """A metric over an epoch's first batches (those in the lists when it was made), computed when first read
    (``float(v)``, formatting, comparisons), as a DeviceScalar is read."""

    __slots__ = ("_metric", "_outputs", "_targets", "_weights", "_batches", "_so_far")

    def __init__(
        self,
        metric: Metric,
        outputs: list[Any],
        targets: list[Any],
        weights: list[Any] | None,
        so_far: Any = None,
    ) -> None:
        self._metric, self._outputs, self._targets, self._weights = metric, outputs, targets, weights
        self._batches = len(outputs)  # (the lists grow as the epoch goes on: only these batches count)
        self._so_far = so_far  # the running metric's value over these batches (a function), if it has one
        self._value = None

    @property
    def array(self) -> Any:
        return np.asarray(float(self))  # host: the number, computed once

    def __float__(self) -> float:
        if self._value is None and self._so_far is not None:
            self._value = self._so_far()
        if self._value is None:
            from .evaluation import join_weights, metric_value
            from .multi_output import pick, pick_weights

            k, m = self._batches, self._metric
            outputs = [to_host(pick(o, m)) for o in self._outputs[:k]]
            targets = [to_host(pick(t, m)) for t in self._targets[:k]]
            weights = join_weights(
                None if self._weights is None else [pick_weights(w, m) for w in self._weights[:k]], outputs
            )
            self._value = metric_value(
                self._metric,
                np.concatenate(outputs),
                np.concatenate(targets),
                weights if self._metric.weighted else None,
            )
        return self._value

    def __repr__(self) -> str:
        return f"MetricSoFar({float(self)!r})" if self.read else f"MetricSoFar({self._metric.name!r}, not read)"


class CountedLoss:
    """The epoch's loss on a device for a mean loss whose batch mean is over the targets it does not ignore
    (``CrossEntropyLoss``/``NLLLoss``: ``ignore_index``, class weights): each batch's mean times its count of
    such targets (their total class weight) and the counts stay on the device, as 0-d arrays, so no batch
    is read; the mean over the epoch, ``sum(count * mean) / sum(count)``, is read once (two numbers). A
    batch with nothing counted (all its targets ignored: a NaN mean) adds 0, as one full batch would.

    The sums run in float64 on the device; on the host the same numbers are Python floats (see fit).
    """

    def __init__(self) -> None:
        self.sums: list[Any] = []
        self.counts: list[Any] = []

    def add(self, loss: Any, count: Any) -> None:
        """Keeps one batch's mean ``loss`` (a 0-d device array) and its ``count`` (a 0-d device array, or a
        number: a batch whose loss is weighted by sample, which counts its samples)."""
        from ..backend import namespace_of
        from ..devices import device_of, to_device

        xp = namespace_of(loss)
        if not hasattr(count, "shape"):
            count = to_device(np.asarray(float(count), np.float64), device_of(loss))  # host: a number, sent
        count = count.astype(np.float64)
        self.sums.append(xp.where(count > 0, loss.astype(np.float64) * count, 0.0))
        self.counts.append(count)

    def mean(self, batches: int | None = None) -> float:
        """The mean over the first ``batches`` batches (all: None), read from the device once; 0.0 when empty."""
        k = len(self.sums) if batches is None else batches
        if k == 0:
            return 0.0
        from ..backend import namespace_of

        xp = namespace_of(self.sums[0])
        both = xp.stack([xp.sum(xp.stack(self.sums[:k])), xp.sum(xp.stack(self.counts[:k]))])
        total, count = (float(v) for v in to_host(both))  # host: once per epoch (or per read of a batch's logs)
        return total / (count or 1)


class RunningDeviceMean(DeviceScalar):
    """The epoch's loss so far on a device: the weighted sum of its first ``batches`` losses over ``count``,
    computed (on the device, then one copy) only when read, so a loop whose callbacks never read it does no
    work for it."""

    __slots__ = ("_total", "_batches", "_count")

    def __init__(self, total: EpochLoss | CountedLoss, count: float = 0.0) -> None:
        batches = len(total.sums) if isinstance(total, CountedLoss) else len(total.losses)
        self._total, self._batches, self._count = total, batches, count
        self._value = None

    @property
    def array(self) -> Any:
        return np.asarray(float(self))  # host: the number, read once

    def __float__(self) -> float:
        if self._value is None and isinstance(self._total, CountedLoss):
            self._value = self._total.mean(self._batches)
        if self._value is None and isinstance(self._total, EpochLoss):
            partial = EpochLoss()
            partial.losses = self._total.losses[: self._batches]
            partial.weights = self._total.weights[: self._batches]
            self._value = partial.mean(self._count)
        assert self._value is not None
        return self._value

    def __repr__(self) -> str:
        return f"RunningDeviceMean({float(self)!r})" if self.read else "RunningDeviceMean(not read)"


__all__ = [
    "BatchLogs",
    "RunningMetrics",
    "MetricSoFar",
    "RunningDeviceMean",
    "CountedLoss",
    "reads_batch_logs",
    "TRAIN_BATCH_END",
    "TEST_BATCH_END",
]
