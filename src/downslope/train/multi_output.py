"""Models with several outputs (Keras' multi-output models) in fit, evaluate and predict.

A model whose ``forward`` returns a tuple or list of Tensors, or a dict of them, is trained as Keras 3 trains
one: each output has its targets (``y`` given as a list in the outputs' order, or a dict by output name), its
loss (one loss for every output, a list, or a dict by name: an output without a loss is not trained on) and
its weight (``loss_weights``); the loss minimised is ``sum(weight_k * loss_k)``, each ``loss_k`` reduced over
the batch first. The logs hold that total as ``loss``, each output's unweighted loss as ``<name>_loss``
(when several outputs have a loss) and each metric as ``<name>_<metric>``.

Output names: a dict's keys; for a tuple or list, ``model.output_names`` when the model sets it (Keras'
attribute), else ``output_1``, ``output_2``, ... (tf.keras' names for a model that does not name its
outputs; Keras 3 gives such outputs no names, and its logs then mix them up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..tensor import Tensor
from .metrics import Metric, logged_as


def structured(value: Any) -> bool:
    """Whether ``value`` is one value per output: a dict, or a plain tuple or list whose items are arrays or
    Tensors (a list of numbers or of lists is one array's rows).

    Example:
        >>> import numpy as np
        >>> structured([np.zeros(3), np.ones(3)]), structured({"a": np.zeros(3)}), structured([[1.0], [2.0]])
        (True, True, False)
    """
    if isinstance(value, Mapping):
        return bool(value)
    if type(value) in (tuple, list):
        return len(value) >= 2 and all(_array_like(v) or v is None for v in value) and any(v is not None for v in value)
    return False


def per_output(value: Any, x: Any) -> bool:
    """Whether ``value`` (targets, sample weights) given beside the inputs ``x`` is one per output
    (:func:`structured`), and not a list of one row per sample (as many arrays as ``x`` has rows, all of
    one shape: one-hot rows given as a list, read as one array as before).

    Example:
        >>> import numpy as np
        >>> x = np.zeros((3, 2))
        >>> per_output([np.zeros(3), np.zeros((3, 2))], x), per_output([np.zeros(2)] * 3, x)
        (True, False)
    """
    if not structured(value):
        return False
    if isinstance(value, Mapping):
        return True
    from .inputs import input_rows

    try:
        rows = input_rows(x)
    except TypeError:
        return True
    shapes = {tuple(getattr(v, "shape", ())) for v in value}
    return not (len(value) == rows and len(shapes) == 1)


def _array_like(value: Any) -> bool:
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) >= 1


def arrays_of(value: Any) -> Any:
    """The arrays of a Tensor, or of each Tensor of a tuple, list or dict (the container kept); None as it is."""
    if isinstance(value, Tensor):
        return value.array
    if isinstance(value, Mapping):
        return {k: arrays_of(v) for k, v in value.items()}
    if type(value) in (tuple, list):
        return type(value)(arrays_of(v) for v in value)
    return value


def shapes_of(value: Any) -> str:
    """The shape of ``value``, or of each of its parts (a tuple, list or dict), for an error message.

    Example:
        >>> import numpy as np
        >>> shapes_of({"a": np.zeros((2, 1)), "b": np.zeros(2)}), shapes_of(np.zeros((4, 3)))
        ("{'a': (2, 1), 'b': (2,)}", '(4, 3)')
    """
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {shapes_of(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)) and not hasattr(value, "shape"):
        return "[" + ", ".join(shapes_of(v) for v in value) + "]"
    if value is None:
        return "None"
    return str(tuple(getattr(value, "shape", ())))


def positional_names(model: Any, count: int, where: str) -> tuple[str, ...]:
    """The names of ``count`` outputs returned as a tuple or list: ``model.output_names`` (Keras' attribute)
    when the model sets it, else ``output_1``, ``output_2``, ..."""
    names = getattr(model, "output_names", None)
    if names is None or isinstance(names, str) or not isinstance(names, Sequence):
        return tuple(f"output_{i + 1}" for i in range(count))
    names = tuple(names)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"{where}: model.output_names must be distinct, non-empty strings, got {list(names)}")
    if len(names) != count:
        raise ConfigError(
            f"{where}: model.output_names names {len(names)} outputs {list(names)}, but {count} are given (the "
            "model's outputs, or the targets, losses or metrics given per output)"
        )
    return names


def _keys(spec: Any) -> list[str]:
    return [str(k) for k in spec] if isinstance(spec, Mapping) else []


def _nested_metrics(metrics: Any) -> bool:
    """Whether ``metrics`` is given per output: a dict, or a list holding a list (Keras' list of lists)."""
    return isinstance(metrics, Mapping) or (
        isinstance(metrics, (list, tuple)) and any(isinstance(m, (list, tuple)) for m in metrics)
    )


def per_output_loss(loss: Any) -> bool:
    """Whether ``loss`` is given per output: a dict, or a list or tuple of losses (not fit's ``(name, options)``)."""
    if isinstance(loss, Mapping):
        return True
    if isinstance(loss, list):
        return True
    return isinstance(loss, tuple) and not (
        len(loss) == 2 and isinstance(loss[0], str) and isinstance(loss[1], Mapping)
    )


def own_names(model: Any) -> tuple[str, ...] | None:
    """``model.output_names`` (Keras' attribute) as a tuple, when the model sets it."""
    names = getattr(model, "output_names", None)
    if names is None or isinstance(names, str) or not isinstance(names, Sequence) or not names:
        return None
    return tuple(names)


def declared_names(
    model: Any, loss: Any, loss_weights: Any, metrics: Any, weighted_metrics: Any, targets: Any, where: str
) -> tuple[tuple[str, ...], bool] | None:
    """``(names, positional)``: the output names fit and evaluate know before the first batch, or None for a
    single-output model. They come from the targets (a dict's keys, a list's length), or else from a loss,
    ``loss_weights`` or metrics given per output, or from ``model.output_names``; ``positional``: they name
    outputs by position (a list's, or the model's own names), so a tuple of outputs can be read by them.
    ``targets``: the training targets when they are known (arrays, or a Dataset's first sample's), else None."""
    own = own_names(model)
    if own is not None:
        own = positional_names(model, len(own), where)  # (checked)
    if structured(targets):
        if not isinstance(targets, Mapping):
            return positional_names(model, len(targets), where), True
        keys = tuple(str(k) for k in targets)
        if own is not None and set(keys) <= set(own):
            return own, True
        return _by_default_names(keys)
    specs = [loss if per_output_loss(loss) else None, loss_weights]
    specs += [m if _nested_metrics(m) else None for m in (metrics, weighted_metrics)]
    given = [s for s in specs if isinstance(s, (Mapping, list, tuple))]
    if not given:
        return (own, True) if own is not None and len(own) > 1 else None
    for s in given:  # a list gives the count, in the outputs' order
        if not isinstance(s, Mapping):
            return positional_names(model, len(s), where), True
    if own is not None:
        return own, True
    names: list[str] = []
    for s in given:  # dicts only: their keys
        names += [k for k in _keys(s) if k not in names]
    return _by_default_names(tuple(names))


def _by_default_names(keys: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """Dict keys as output names: positional when they are the default names of a tuple's outputs
    (``output_1``...: a dict of targets for a model that returns a tuple), else names of a dict of outputs."""
    default = tuple(f"output_{i + 1}" for i in range(len(keys)))
    return (default, True) if set(keys) == set(default) else (keys, False)


class OutputLosses:
    """The loss of a model with several outputs (Keras 3's compiled loss): ``sum(weight_k * loss_k(out_k, y_k))``
    over the outputs that have a loss, each ``loss_k`` a scalar (its own reduction over the batch; with sample
    weights, fit's :func:`~downslope.train.evaluation.weighted_loss` of that output's weights).

    Args:
        loss: one loss for every output (a name, a function, a loss object: see fit), a list or tuple (one
            per output, in the outputs' order; None: that output has no loss) or a dict by output name
            (outputs left out have no loss: they are not trained on, as in Keras).
        loss_weights: None (1 each), a list (one per output) or a dict by output name (outputs left out
            weigh 1).
        names: the outputs' names in their order (see the module's docstring), or None to read them from
            the first outputs given.
        model: read for ``output_names`` when ``names`` is None.
        positional: ``names`` name the outputs by position (a tuple of outputs is read by them); False for
            names taken from dicts, which a tuple of outputs cannot be matched with.

    After each call, ``last`` holds each output's unweighted loss (a 0-d Tensor) by name: fit logs their
    means as ``<name>_loss``.

    Example:
        >>> import downslope as ds
        >>> loss = OutputLosses(["mse", "mae"], loss_weights=[1.0, 0.5])
        >>> total = loss((ds.ones(2, 1), ds.zeros(2, 1)), (ds.zeros(2, 1), ds.ones(2, 1)))
        >>> round(total.item(), 4), sorted(loss.last)
        (1.5, ['output_1', 'output_2'])
    """

    per_output = True  # read by weighted_loss, which hands the sample weights to each output's loss
    reduction = "mean"  # each batch counts its samples in the epoch's mean, as Keras' loss tracker does

    def __init__(
        self,
        loss: Any,
        loss_weights: Any = None,
        names: Sequence[str] | None = None,
        model: Any = None,
        where: str = "fit",
        positional: bool = True,
    ) -> None:
        if loss_weights is not None and not isinstance(loss_weights, (list, tuple, Mapping)):
            raise ConfigError(
                f"{where}: loss_weights must be a list (one weight per output) or a dict {{output name: weight}} "
                f"(Keras' multi-output form), got {type(loss_weights).__name__} {loss_weights!r}"
            )
        self.spec, self.weight_spec, self.model, self.where = loss, loss_weights, model, where
        self.positional = positional
        self.names: tuple[str, ...] | None = None
        self.losses: dict[str, Any] = {}
        self.weights: dict[str, float] = {}
        self.last: dict[str, Tensor] = {}
        self.__name__ = "loss per output"
        if names is not None:
            self.build(tuple(names))

    def __repr__(self) -> str:
        return f"OutputLosses({self.losses!r}, loss_weights={self.weights!r})"

    # ------------------------------------------------------------------ building
    def build(self, names: tuple[str, ...]) -> None:
        """Resolve each output's loss and weight, given the outputs' names in order."""
        from .evaluation import resolve_loss

        where = self.where
        self.names = names
        spec = self.spec
        if isinstance(spec, Mapping):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise ConfigError(
                    f"{where}: the loss dict has key(s) {unknown}, which name no output; the outputs are {list(names)}"
                )
            chosen = {n: spec.get(n) for n in names}
        elif per_output_loss(spec):
            if len(spec) != len(names):
                raise ConfigError(
                    f"{where}: the loss is a list of {len(spec)}, but the model has {len(names)} outputs "
                    f"{list(names)}: give one loss per output (None for an output not trained on), or a dict by name"
                )
            chosen = dict(zip(names, spec))
        else:
            chosen = dict.fromkeys(names, spec)  # one loss, applied to every output (and summed), as Keras
        self.losses = {n: None if fn is None else resolve_loss(fn, where) for n, fn in chosen.items()}
        if all(fn is None for fn in self.losses.values()):
            raise ConfigError(f"{where}: no output has a loss (the loss given: {spec!r}); give at least one")
        self.weights = self._weights(names)

    def _weights(self, names: tuple[str, ...]) -> dict[str, float]:
        where, spec = self.where, self.weight_spec
        if spec is None:
            return dict.fromkeys(names, 1.0)
        if isinstance(spec, Mapping):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise ConfigError(
                    f"{where}: loss_weights has key(s) {unknown}, which name no output; the outputs are {list(names)}"
                )
            values = {n: spec.get(n, 1.0) for n in names}
        else:
            if len(spec) != len(names):
                raise ConfigError(
                    f"{where}: loss_weights has {len(spec)} weights, but the model has {len(names)} outputs "
                    f"{list(names)}: give one per output, or a dict by name"
                )
            values = dict(zip(names, spec))
        checked = {}
        for n, v in values.items():
            try:
                checked[n] = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: loss_weights[{n!r}] must be a number, got {v!r}") from None
        return checked

    # ------------------------------------------------------------------ reading outputs and targets by name
    def named_outputs(self, outputs: Any) -> dict[str, Any]:
        """The model's outputs (a tuple, list or dict) by name; builds the losses at the first call when the
        names were not known before."""
        where = self.where
        if isinstance(outputs, Mapping):
            found = {str(k): v for k, v in outputs.items()}
            if self.names is None:
                self.build(tuple(found))
            missing = [n for n in self.names or () if n not in found]
            if missing:
                raise ConfigError(
                    f"{where}: the model returned outputs {list(found)}, but {missing} are expected (named by the "
                    "targets, the losses or the metrics given per output)"
                )
            return found
        if isinstance(outputs, (tuple, list)) and not isinstance(outputs, Tensor) and not hasattr(outputs, "shape"):
            if self.names is None:
                self.build(positional_names(self.model, len(outputs), where))
            names = self.names or ()
            if not self.positional:
                raise ConfigError(
                    f"{where}: the model returned a {type(outputs).__name__} of {len(outputs)} outputs, but the outputs "
                    f"are named {list(names)} by dicts (the targets, losses or metrics), and a {type(outputs).__name__} "
                    "has no names: set model.output_names = [...] (Keras' attribute, in the outputs' order), return a "
                    "dict from forward, or give the targets as a list"
                )
            if len(outputs) != len(names):
                raise ConfigError(
                    f"{where}: the model returned {len(outputs)} outputs (shapes {shapes_of(outputs)}), but "
                    f"{len(names)} are expected, named {list(names)} (by the targets, the losses or the metrics "
                    "given per output)"
                )
            return dict(zip(names, outputs))
        if self.names is not None and len(self.names) == 1:  # one output named by a list or dict of one
            return {self.names[0]: outputs}
        expected = f"{len(self.names)} outputs {list(self.names)}" if self.names else "several outputs"
        raise ConfigError(
            f"{where}: the model returned one output of shape {shapes_of(outputs)}, but {expected} are expected "
            "(the targets, losses or metrics are given per output): return a tuple or dict of Tensors from forward, "
            "or give one loss and one target array"
        )

    def named_parts(self, value: Any, what: str, outputs: Any) -> dict[str, Any] | None:
        """Targets or sample weights given per output (a list in the outputs' order, a dict by name) by
        name; one value (not per output) gives None."""
        names = self.names or ()
        if value is None:
            return None
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in names]
            if unknown:
                raise ConfigError(
                    f"{self.where}: {what} has key(s) {unknown}, which name no output; the outputs are {list(names)}"
                )
            return dict(value)
        if type(value) in (tuple, list):
            # a dict of outputs has no order of its own: a list maps onto its names sorted, as Keras flattens a dict
            order = sorted(names) if isinstance(outputs, Mapping) else list(names)
            if len(value) != len(order):
                raise ConfigError(
                    f"{self.where}: {what} is a list of {len(value)} (shapes {shapes_of(value)}), but the model has "
                    f"{len(order)} outputs {order}: give one per output, in that order, or a dict by name"
                )
            return dict(zip(order, value))
        return None

    def named_targets(self, targets: Any, outputs: Any) -> dict[str, Any]:
        """The targets by output name (see :meth:`named_parts`); one target array for several outputs is refused."""
        found = self.named_parts(targets, "the targets", outputs)
        if found is None and len(self.names or ()) == 1:
            return {(self.names or ())[0]: targets}
        if found is None:
            raise ConfigError(
                f"{self.where}: the model has {len(self.names or ())} outputs {list(self.names or ())}, but the "
                f"targets are one array of shape {shapes_of(targets)}: give them per output, as a list (in the outputs' "
                "order) or a dict {output name: targets}"
            )
        return found

    # ------------------------------------------------------------------ the loss
    def __call__(self, outputs: Any, targets: Any, sample_weight: Any = None) -> Tensor:
        from .evaluation import check_scalar_loss, weighted_loss
        from .inputs import target_column

        outs = self.named_outputs(outputs)
        ys = self.named_targets(targets, outputs)
        ws = self.named_parts(sample_weight, "sample_weight", outputs)
        total: Tensor | None = None
        self.last = {}
        for name, fn in self.losses.items():
            if fn is None:
                continue
            out = outs[name]
            if ys.get(name) is None:
                raise ConfigError(
                    f"{self.where}: output {name!r} has a loss but no targets (the targets are given for "
                    f"{[k for k, v in ys.items() if v is not None]}); give its targets, or no loss for it (None)"
                )
            y = target_column(out, ys[name])
            _check_rows(out, y, name, self.where)
            w = sample_weight if ws is None else ws.get(name)
            try:
                value = fn(out, y) if w is None else weighted_loss(fn, out, y, w, self.where)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(
                        f"({self.where}: the loss of output {name!r}, outputs {shapes_of(out)}, targets {shapes_of(y)})"
                    )
                raise
            check_scalar_loss(value, fn, f"{self.where} (output {name!r})")
            self.last[name] = value
            weight = self.weights[name]
            part = value if weight == 1.0 else value * weight
            total = part if total is None else total + part
        assert total is not None  # (build refuses a model without any loss)
        return total

    # ------------------------------------------------------------------ what the loops read
    @property
    def logged(self) -> list[str]:
        """The outputs whose loss is logged as ``<name>_loss``: every output with a loss when there are several
        (Keras 3 logs them only then)."""
        named = [n for n, fn in self.losses.items() if fn is not None]
        return named if len(named) > 1 else []

    def metric_inputs(self, outputs: Any, targets: Any, weights: Any) -> tuple[Any, Any, Any]:
        """A batch's outputs, targets and sample weights as arrays by output name, for the metrics."""
        from .inputs import target_column

        outs = self.named_outputs(outputs)
        ys = self.named_targets(targets, outputs)
        ws = self.named_parts(weights, "sample_weight", outputs)
        arrays = {n: arrays_of(o) for n, o in outs.items()}
        target_arrays = {n: arrays_of(target_column(outs[n], y)) if n in outs else arrays_of(y) for n, y in ys.items()}
        weight_arrays = arrays_of(weights) if ws is None else {n: arrays_of(w) for n, w in ws.items()}
        return arrays, target_arrays, weight_arrays


def _check_rows(out: Any, y: Any, name: str, where: str) -> None:
    rows = getattr(out, "shape", (None,))[:1]
    given = getattr(y, "shape", (None,))[:1]
    if rows and given and rows[0] is not None and given[0] is not None and rows[0] != given[0]:
        raise ShapeError(
            f"{where}: output {name!r} has {rows[0]} rows (shape {shapes_of(out)}), but its targets have {given[0]} "
            f"(shape {shapes_of(y)}); give one target row per sample"
        )


def keras_style(loss: Any) -> bool:
    """Whether ``loss`` is applied output by output when the targets come per output, as Keras applies one: a
    name, a list or dict of losses, a function written Keras' way (``fn(y_true, y_pred)``) or one of downslope's
    losses. A callable of the user's written PyTorch's way, ``fn(outputs, targets)``, gets the whole tuples or
    dicts instead, as a PyTorch loop gives them (fit's behaviour before multi-output models were read)."""
    from .metrics import keras_order

    if isinstance(loss, str) or per_output_loss(loss) or isinstance(loss, tuple):
        return True
    if keras_order(loss):
        return True
    module = getattr(loss, "__module__", None) or type(loss).__module__ or ""
    return module.startswith("downslope.")


def known_targets(data: Any) -> Any:
    """The targets of ``data`` when they can be read before training: ``(x, y[, w])`` arrays' ``y``, or the
    first sample's of a Dataset (a DataLoader's) that can be indexed; None otherwise (a stream, a generator)."""
    from ..data.dataset import Dataset, IterableDataset
    from ..data.loader import DataLoader

    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return data[1] if per_output(data[1], data[0]) else None
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if not isinstance(dataset, Dataset) or isinstance(dataset, IterableDataset):
        return None
    try:
        if len(dataset) == 0:
            return None
        sample = dataset[0]
        group = getattr(dataset, "group", None)
        if callable(group):  # an InputsDataset: its fields regrouped
            sample = group(list(sample))
    except Exception:  # noqa: BLE001 - a dataset that cannot be read ahead: told at the first batch instead
        return None
    target = None
    if isinstance(sample, Mapping):
        target = sample.get("y")
    elif isinstance(sample, (tuple, list)) and len(sample) in (2, 3):
        target = sample[1]
    # a sample's targets per output may be numbers (batched by the DataLoader into one array each): the
    # structure is what counts, so it is given as placeholders
    if isinstance(target, Mapping) and target:
        return {k: _PLACEHOLDER for k in target}
    if isinstance(target, (tuple, list)) and type(target) in (tuple, list) and len(target) >= 2:
        return [_PLACEHOLDER] * len(target)
    return None


_PLACEHOLDER = np.zeros(1)


def plan_outputs(
    model: Any, loss: Any, loss_weights: Any, metrics: Any, weighted_metrics: Any, data: Any, where: str
) -> OutputLosses | None:
    """The multi-output loss fit or evaluate trains or scores ``model`` with, when the outputs are several
    (see :func:`declared_names`; targets per output in a Dataset are read as per output only for a loss
    :func:`keras_style` reads); None for a single-output model."""
    targets = known_targets(data)
    if targets is not None and structured(targets) and not isinstance(data, (tuple, list)) and not keras_style(loss):
        targets = None  # a PyTorch-style loss of the user's, which reads the tuples itself
    found = declared_names(model, loss, loss_weights, metrics, weighted_metrics, targets, where)
    if found is None:
        if loss_weights is not None:
            raise ConfigError(
                f"{where}: loss_weights weigh the losses of several outputs (a list, or a dict by output name), but "
                f"nothing says the model has several: give the targets per output (a list or a dict), or a loss "
                f"per output; got loss_weights={loss_weights!r}"
            )
        return None
    names, positional = found
    return OutputLosses(loss, loss_weights, names, model, where, positional)


def refuse_unplanned(outputs: Any, loss_fn: Any, where: str) -> None:
    """A model that returns several outputs (a tuple, list or dict) to one of downslope's losses, which takes
    one Tensor, when nothing told fit so beforehand (data read batch by batch): refused, saying how to tell it."""
    if isinstance(outputs, Tensor) or getattr(loss_fn, "per_output", False) or not keras_style(loss_fn):
        return
    if not (isinstance(outputs, Mapping) or type(outputs) in (tuple, list)):
        return
    raise ConfigError(
        f"{where}: the model returned {len(outputs)} outputs ({shapes_of(outputs)}), but {where} was given one loss "
        "and no targets per output it could read before training (a generator, or a stream): give the loss per "
        "output (a list, or a dict by output name), so that each output is scored with its own targets"
    )


def pick(value: Any, metric: Metric) -> Any:
    """The part of a batch's outputs, targets or weights (by output name) that ``metric`` reads."""
    if metric.output is None:
        return value
    return value[metric.output]


def pick_weights(value: Any, metric: Metric) -> Any:
    """A batch's sample weights for ``metric``: its output's (weights given per output), or the one array."""
    if metric.output is None or not isinstance(value, Mapping):
        return value
    return value.get(metric.output)


def output_metrics(metrics: Any, weighted_metrics: Any, losses: OutputLosses, where: str = "fit") -> list[Metric]:
    """fit's ``metrics`` and ``weighted_metrics`` for a model with several outputs, as Keras 3 reads them: a list
    with one entry per output (a metric, or a list of them; None: none), or a dict by output name. Each is
    logged as ``<output>_<metric>`` (a name taken twice gets ``_1``, ``_2``...; a weighted metric whose name
    is taken, ``<output>_weighted_<metric>``), and reads its output's outputs, targets and weights.

    Example:
        >>> loss = OutputLosses("mse", names=("price", "kind"))
        >>> [m.name for m in output_metrics({"price": ["mae"], "kind": "mse"}, None, loss)]
        ['price_mae', 'kind_mse']
    """
    from .evaluation import resolve_metrics

    names = losses.names or ()
    taken: dict[str, int] = {}
    resolved: list[Metric] = []
    for given, weighted in ((metrics, False), (weighted_metrics, True)):
        argument = "weighted_metrics" if weighted else "metrics"
        for output, entries in _per_output(given, names, argument, where):
            # one by one: a name given twice is logged twice (``_1``), as Keras 3 logs it
            for m in (found for entry in entries for found in resolve_metrics([entry], losses.losses.get(output))):
                name = f"{output}_{m.name}"
                if name in taken and weighted:
                    name = f"{output}_weighted_{m.name}"
                if name in taken:
                    taken[name] += 1
                    name = f"{name}_{taken[name] - 1}"
                else:
                    taken[name] = 1
                bound = logged_as(m, name, weighted=weighted)  # (a copy: the name has the output's prefix)
                bound.output = output
                resolved.append(bound)
    return resolved


def _per_output(given: Any, names: tuple[str, ...], argument: str, where: str) -> list[tuple[str, list[Any]]]:
    """``(output name, its metrics)`` pairs from ``metrics`` given as Keras 3 takes them for several outputs."""
    if given is None:
        return []
    if isinstance(given, Mapping):
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ConfigError(
                f"{where}: in the dict argument {argument}, key(s) {unknown} name no output; the outputs are {list(names)}"
            )
        return [(n, _as_list(given[n])) for n in names if n in given]
    if isinstance(given, (list, tuple)):
        if len(given) != len(names):
            raise ConfigError(
                f"{where}: for a model with several outputs, {argument} given as a list needs one entry per output "
                f"(a metric or a list of them), as Keras 3 reads it: the model has {len(names)} outputs {list(names)}, "
                f"{argument} has {len(given)} entries ({list(given)!r}); to compute the same metrics on every output, "
                f"write {[list(given)] * len(names)!r}, or a dict by output name"
            )
        return [(n, _as_list(entry)) for n, entry in zip(names, given)]
    raise ConfigError(f"{where}: {argument} must be a list or a dict for a model with several outputs, got {given!r}")


def _as_list(entry: Any) -> list[Any]:
    if entry is None:
        return []
    return [m for m in entry if m is not None] if isinstance(entry, (list, tuple)) else [entry]


class PartLosses:
    """Each output's loss over an epoch (``<name>_loss``): the batches' unweighted losses weighted by their
    sizes, as Keras 3's per-output loss trackers; the numbers stay where they were computed until read."""

    def __init__(self, loss_fn: Any) -> None:
        from .placement import EpochLoss

        names = loss_fn.logged if isinstance(loss_fn, OutputLosses) else []
        self.totals = {n: EpochLoss() for n in names}
        self.count = 0.0

    def __bool__(self) -> bool:
        return bool(self.totals)

    def add(self, parts: Mapping[str, Any] | None, n: int) -> None:
        """One batch's losses by output (0-d arrays) and its number of samples."""
        if not self.totals or parts is None:
            return
        for name, total in self.totals.items():
            total.add(parts[name], n)
        self.count += n

    def so_far(self) -> dict[str, Any]:
        """The means so far, read only when asked (for batch logs)."""
        from .batch_logs import RunningDeviceMean

        return {f"{n}_loss": RunningDeviceMean(t, self.count) for n, t in self.totals.items()}

    def means(self) -> dict[str, float]:
        return {f"{n}_loss": t.mean(self.count) for n, t in self.totals.items()}


def part_arrays(loss_fn: Any) -> dict[str, Any] | None:
    """The last call's loss per logged output as 0-d arrays, or None for a single-output loss."""
    if not isinstance(loss_fn, OutputLosses) or not loss_fn.logged:
        return None
    return {n: loss_fn.last[n].array for n in loss_fn.logged}


def join_parts(chunks: list[Any]) -> Any:
    """predict's batches of outputs (each a tuple, list or dict of arrays) joined per output."""
    from ..backend import namespace_of

    first = chunks[0]

    def join(parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else namespace_of(parts[0]).concatenate(parts)

    if isinstance(first, Mapping):
        return {k: join([c[k] for c in chunks]) for k in first}
    return type(first)(join([c[i] for c in chunks]) for i in range(len(first)))


def host_tensors(value: Any, to_host: Any) -> Any:
    """predict's joined outputs as host Tensors, in the container the model returned."""
    from ..tensor import wrap_array

    if isinstance(value, Mapping):
        return {k: wrap_array(to_host(v)) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(wrap_array(to_host(v)) for v in value)
    return wrap_array(to_host(value))


def refuse_class_weight(where: str = "fit") -> None:
    """class_weight with several outputs: refused, as Keras refuses it."""
    raise ConfigError(
        f"{where}: class_weight is only supported for models with a single output (Keras' rule); weigh the samples "
        "of each output with sample_weight given per output (a list in the outputs' order, or a dict by name)"
    )


__all__ = [
    "OutputLosses",
    "structured",
    "per_output",
    "arrays_of",
    "shapes_of",
    "declared_names",
    "output_metrics",
    "per_output_loss",
    "positional_names",
    "PartLosses",
    "pick",
    "pick_weights",
    "plan_outputs",
    "keras_style",
    "known_targets",
    "refuse_unplanned",
    "own_names",
]
