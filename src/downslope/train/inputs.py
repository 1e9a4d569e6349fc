"""What ``fit``, ``evaluate``, ``lr_find`` and ``distributed.fit`` accept as data, turned into loaders.

``(x, y)`` arrays, a Dataset or a DataLoader become a DataLoader (integer feature arrays as the
model's floating dtype, as Keras reads them); ``validation_split`` holds out the last fraction of
the rows, as Keras does; every batch must be ``(inputs, targets)``; a seed of None is drawn from
the library's generator, so ``ds.manual_seed`` makes a run reproducible.

Several inputs (Keras' multi-input form): ``x`` given as a list or tuple of arrays reaches the model
as ``model(*xs)``, a dict of arrays as ``model(**xs)`` (Keras passes a dict by input name; keyword
arguments are the PyTorch module's equivalent). Their rows are batched and shuffled together; in a
batch they arrive as :class:`Inputs` / :class:`NamedInputs`, which :func:`call_model` spreads.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..data.dataset import ArrayDataset, Dataset, IterableDataset, dataset_arrays
from ..data.loader import DataLoader
from ..errors import ArgumentTypeError, ConfigError, ShapeError
from ..tensor import Tensor, wrap_array
from .multi_output import per_output


class Inputs(tuple[Any, ...]):
    """A batch's inputs for a model that takes several (one Tensor each): ``model(*inputs)``.

    Its own type (not a plain tuple) so that a single input that happens to be a tuple is never spread.

    Example:
        >>> import downslope as ds
        >>> call_model(lambda a, b: a + b, Inputs((ds.ones(2), ds.ones(2)))).tolist()
        [2.0, 2.0]
    """

    __slots__ = ()


class NamedInputs(dict[str, Any]):
    """A batch's inputs by name (x given as a dict, as Keras' named inputs): ``model(**inputs)``.

    Example:
        >>> import downslope as ds
        >>> call_model(lambda a, b: a - b, NamedInputs(b=ds.ones(2), a=ds.ones(2))).tolist()
        [0.0, 0.0]
    """


_GROUPED = (Inputs, NamedInputs)


def call_model(model: Any, x: Any) -> Any:
    """``model(x)``; ``model(*x)`` for :class:`Inputs` and ``model(**x)`` for :class:`NamedInputs`."""
    kind = type(x)
    if kind is Inputs:
        return model(*x)
    if kind is NamedInputs:
        return model(**x)
    return model(x)


def target_column(outputs: Any, targets: Any) -> Any:
    """``targets`` of shape (N,) as the one column (N, 1) when the model outputs (N, 1) and they are
    floating-point values; any other ``targets`` unchanged.

    A 1-D target array (or a pandas Series) holds a single target column; compared as they are, (N, 1)
    outputs and (N,) targets broadcast to (N, N), which the losses refuse. Keras squeezes the outputs;
    reshaping the targets instead keeps the outputs the model's own. Class-index (integer) targets of a
    classification loss are left as they are: their (N,) shape is the losses' own.

    Example:
        >>> import downslope as ds
        >>> target_column(ds.zeros(3, 1), ds.zeros(3)).shape, target_column(ds.zeros(3, 2), ds.zeros(3)).shape
        (downslope.Size([3, 1]), downslope.Size([3]))
    """
    if not (isinstance(outputs, Tensor) and isinstance(targets, Tensor)):
        return targets
    if targets.ndim != 1 or not targets.is_floating_point():
        return targets
    if outputs.ndim == 2 and outputs.shape[1] == 1 and outputs.shape[0] == targets.shape[0]:
        return targets.reshape(-1, 1)
    return targets


def input_rows(x: Any) -> int:
    """The number of samples in ``x``: its length, or the first input's of several.

    Example:
        >>> import downslope as ds
        >>> input_rows(ds.ones(3, 2)), input_rows(Inputs((ds.ones(4), ds.ones(4, 2))))
        (3, 4)
    """
    if isinstance(x, Tensor):  # (the common case first: this runs once per batch)
        return len(x)
    kind = type(x)
    if kind is Inputs:
        return len(x[0])
    if kind is NamedInputs:
        return len(next(iter(x.values())))
    if isinstance(x, (Mapping, list, tuple)) and multi_input(x):
        first = next(iter(x.values())) if isinstance(x, Mapping) else x[0]
        return _rows(first)
    return len(x)


def input_shapes(x: Any) -> str:
    """The shape of ``x`` (the shapes of several inputs) for an error message."""
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {tuple(getattr(v, 'shape', ()))}" for k, v in x.items()) + "}"
    if isinstance(x, tuple) and not hasattr(x, "shape"):
        return "(" + ", ".join(str(tuple(getattr(v, "shape", ()))) for v in x) + ")"
    return str(tuple(getattr(x, "shape", ())))


def model_input_count(model: Any) -> int | None:
    """How many positional inputs ``model`` requires (its ``forward``'s parameters without a default),
    or None when that cannot be told (``*args``, a callable without a signature).

    Example:
        >>> from downslope import nn
        >>> class Two(nn.Module):
        ...     def forward(self, a, b, mask=None): return a
        >>> model_input_count(Two()), model_input_count(nn.Linear(2, 1))
        (2, 1)
    """
    forward = getattr(model, "forward", None)
    target = forward if callable(forward) else model
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += p.default is inspect.Parameter.empty
    return count


def _array_like(value: Any) -> bool:
    """An array of samples (NumPy, a Tensor, a pandas frame or series): what one input of several is."""
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) >= 1 and hasattr(value, "__len__")


def multi_input(x: Any) -> bool:
    """Whether ``x`` is several inputs: a list or tuple of arrays, or a dict (of arrays, or lists).
    A list of lists or numbers is one input's rows, as before.

    Example:
        >>> import numpy as np
        >>> multi_input([np.zeros((2, 1)), np.zeros((2, 3))]), multi_input([[1.0], [2.0]])
        (True, False)
    """
    if isinstance(x, Mapping):
        return bool(x) and all(_array_like(v) or isinstance(v, list) for v in x.values())
    if isinstance(x, (list, tuple)) and not isinstance(x, Inputs):
        return bool(x) and all(_array_like(v) for v in x)
    return False


def _rows(value: Any) -> int:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if isinstance(shape, tuple) and shape else len(value)


def _text_columns(value: Any) -> list[str] | None:
    """The columns of ``value`` that hold text (or other non-numbers), named (a DataFrame's names, a
    Series' name, a 2-D array's column indices); None when ``value`` reads as numbers."""
    columns = getattr(value, "columns", None)
    dtypes = getattr(value, "dtypes", None)
    if columns is not None and dtypes is not None and hasattr(value, "iloc"):  # a pandas DataFrame
        found = []
        for i, (name, dtype) in enumerate(zip(columns, dtypes)):
            if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
                continue  # (a plain NumPy column: no need to read it)
            if np.asarray(value.iloc[:, i]).dtype.kind not in "fiub":
                found.append(f"column {name!r}")
        return found or None
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if isinstance(value, Tensor) or (isinstance(kind, str) and kind in "fiub"):
        return None  # (numbers: nothing to read, on the host or on a device)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None  # ragged data: the dataset says so
    if arr.dtype.kind in "fiub" or arr.ndim == 0:
        return None
    if hasattr(value, "dtype") and hasattr(value, "name") and arr.ndim == 1:  # a pandas Series
        return [f"column {getattr(value, 'name', None)!r}"]
    if arr.ndim != 2:
        return ["(the whole array)"]
    found = []
    for j in range(arr.shape[1]):
        try:
            arr[:, j].astype(np.float64)
        except (ValueError, TypeError):
            found.append(f"column {j}")
    return found or ["(the whole array)"]


def check_numeric(value: Any, what: str) -> None:
    """Refuse data with text columns, naming them (up to five) and saying how to encode them.

    Example:
        >>> try:
        ...     check_numeric(np.array([["a", 1.0]], dtype=object), "fit: inputs x")
        ... except TypeError as exc:
        ...     str(exc)[:50]
        'fit: inputs x: text (non-numeric) data in column 0'
    """
    found = _text_columns(value)
    if not found:
        return
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    raise ArgumentTypeError(
        f"{what}: text (non-numeric) data in {shown}; a model takes numbers: encode such columns first "
        "(one-hot: pandas.get_dummies(df, columns=[...], dtype=float); or integer codes, "
        "df[col].astype('category').cat.codes, for an nn.Embedding), or train from the table with the "
        "`downslope train --data FILE --target COLUMN` command, which one-hot encodes text columns itself"
    )


class InputsDataset(ArrayDataset):
    """An :class:`ArrayDataset` whose first arrays are several inputs of one model (or, with
    ``grouped=False``, its one input), and whose later fields may each be given per output: its batches
    are regrouped by :class:`InputsLoader` as ``(Inputs or NamedInputs, targets, ...)``.

    ``count`` inputs come first in ``arrays``; ``names`` are their keys when they were given as a dict.
    ``layout``: one entry per field after the inputs (targets, then sample weights): None (one array), an
    int ``k`` (``k`` arrays, regrouped as a list: one per output, in order) or a tuple of names (regrouped
    as a dict by output name); None: each field is one array.
    """

    def __init__(
        self,
        *arrays: Any,
        count: int,
        names: tuple[str, ...] | None = None,
        check_finite: bool = True,
        float_dtype: Any = None,
        grouped: bool = True,
        layout: tuple[Any, ...] | None = None,
    ) -> None:
        super().__init__(*arrays, check_finite=check_finite, float_dtype=float_dtype)
        self.count, self.names, self.grouped, self.layout = count, names, grouped, layout

    def like(self, *arrays: Any, float_dtype: Any = None) -> InputsDataset:
        """A dataset of other rows (``arrays``, as this one's) with this one's fields (the same inputs and layout)."""
        return InputsDataset(
            *arrays,
            count=self.count,
            names=self.names,
            check_finite=False,
            float_dtype=float_dtype,
            grouped=self.grouped,
            layout=self.layout,
        )

    def group(self, batch: Sequence[Any]) -> tuple[Any, ...]:
        """A flat batch (one field per array) as ``(inputs, *others)``."""
        k = self.count
        if not self.grouped:
            inputs = batch[0]
        elif self.names is not None:
            inputs = NamedInputs(zip(self.names, batch[:k]))
        else:
            inputs = Inputs(batch[:k])
        if self.layout is None:
            return (inputs, *batch[k:])
        fields: list[Any] = [inputs]
        at = k
        for spec in self.layout:
            if spec is None:
                fields.append(batch[at])
                at += 1
            elif isinstance(spec, int):
                fields.append(list(batch[at : at + spec]))
                at += spec
            else:
                fields.append(dict(zip(spec, batch[at : at + len(spec)])))
                at += len(spec)
        return tuple(fields)


class _Grouped:
    """An :class:`InputsLoader`'s epoch: the loader's flat batches, regrouped (with ``len()``, as
    ``iter(loader)`` has)."""

    def __init__(self, loader: DataLoader, dataset: InputsDataset, batches: Iterator[Any]) -> None:
        self._loader, self._group, self._batches = loader, dataset.group, batches

    def __iter__(self) -> _Grouped:
        return self

    def __next__(self) -> Any:
        return self._group(next(self._batches))

    def __len__(self) -> int:
        return len(self._loader)


class InputsLoader(DataLoader):
    """A DataLoader over an :class:`InputsDataset`: the same batches (one permutation for every input),
    each regrouped as ``(inputs, targets, ...)``."""

    dataset: InputsDataset

    def __iter__(self) -> Iterator[Any]:
        return _Grouped(self, self.dataset, super().__iter__())


def make_loader(dataset: Dataset, **options: Any) -> DataLoader:
    """``DataLoader(dataset, **options)``, an :class:`InputsLoader` over several inputs. ``batch_size=None``
    is fit's, evaluate's and predict's full batch (the DataLoader's own None turns batching off, as PyTorch's)."""
    if options.get("batch_size", 1) is None:
        options["batch_size"] = "full"
    return (InputsLoader if isinstance(dataset, InputsDataset) else DataLoader)(dataset, **options)


def known_length(loader: Any) -> int | None:
    """``len(loader)``, or None for a stream without a length (an IterableDataset without ``__len__``)."""
    try:
        return len(loader)
    except TypeError:
        return None


def check_has_batches(loader: DataLoader, where: str) -> None:
    """Refuse a loader that gives no batch at all (``drop_last=True`` with fewer samples than one batch):
    a loop over it would silently do nothing."""
    try:
        batches = len(loader)
    except TypeError:
        return  # a stream without a known length
    if batches == 0:
        raise ConfigError(
            f"{where}: the DataLoader gives no batches: {loader.num_samples} sample(s), batch_size "
            f"{loader.batch_size}, drop_last={loader.drop_last} (a full batch is never formed), so there is "
            f"nothing to run on; use batch_size <= {loader.num_samples} or drop_last=False"
        )


def model_float_dtype(model: Any) -> np.dtype[Any] | None:
    """The dtype of ``model``'s first floating parameter when it is not the default dtype (a model
    made ``.double()``), else None: fit, evaluate and predict then give the model its own dtype's data,
    as Keras follows the model's dtype. None (the common float32 case) changes nothing.

    Example:
        >>> from downslope import nn
        >>> model_float_dtype(nn.Linear(2, 1)), model_float_dtype(nn.Linear(2, 1).double())
        (None, dtype('float64'))
    """
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return None
    for p in parameters():
        dtype = getattr(getattr(p, "array", None), "dtype", None)
        if dtype is not None and dtype.kind == "f":
            return None if dtype == backend.get_default_dtype() else np.dtype(dtype)
    return None


def conform(value: Any, dtype: np.dtype[Any] | None) -> Any:
    """A floating Tensor cast to ``dtype`` (the model's, from :func:`model_float_dtype`); anything else,
    or any value when ``dtype`` is None, as it is.

    Example:
        >>> import downslope as ds
        >>> conform(ds.ones(2), np.dtype("float64")).dtype, conform(ds.tensor([1, 2]), np.dtype("float64")).dtype
        (dtype('float64'), dtype('int64'))
    """
    if dtype is None or not isinstance(value, Tensor):
        kind = type(value)
        if dtype is not None and kind is Inputs:  # several inputs: each its own dtype rule
            return Inputs(conform(v, dtype) for v in value)
        if dtype is not None and kind is NamedInputs:
            return NamedInputs((k, conform(v, dtype)) for k, v in value.items())
        if dtype is not None and kind in (tuple, list):  # targets per output
            return kind(conform(v, dtype) for v in value)
        if dtype is not None and kind is dict:
            return {k: conform(v, dtype) for k, v in value.items()}
        return value
    arr = value.array
    return wrap_array(arr.astype(dtype)) if arr.dtype.kind == "f" and arr.dtype != dtype else value


def _reads_indices(model: Any) -> bool:
    """Whether ``model`` holds a layer that takes integer indices as input (Embedding, EmbeddingBag)."""
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return False
    from ..nn import Embedding, EmbeddingBag

    return any(isinstance(m, (Embedding, EmbeddingBag)) for m in modules())


def features_as_float(x: Any, float_dtype: Any, model: Any) -> Any:
    """Integer or boolean feature arrays (a NumPy array, a list, a Tensor) as ``float_dtype`` (the default
    dtype when None), as Keras' layers read them; floating data, other values, and any input of a model
    that holds an Embedding (integer token ids) as they are.

    Example:
        >>> from downslope import nn
        >>> features_as_float(np.array([[1, 2]]), None, nn.Linear(2, 1)).dtype
        dtype('float32')
    """
    if model is None:
        return x
    if isinstance(x, Tensor):
        kind = x.array.dtype.kind
    elif isinstance(x, (np.ndarray, list)):
        x = np.asarray(x)
        kind = x.dtype.kind
    else:
        return x
    if kind not in "iub" or _reads_indices(model):
        return x
    dtype = float_dtype if float_dtype is not None else backend.get_default_dtype()
    return wrap_array(x.array.astype(dtype)) if isinstance(x, Tensor) else x.astype(dtype)


def as_dataset(data: Any, where: str, float_dtype: Any = None, model: Any = None) -> Dataset:
    """A Dataset as is, or ``(inputs, targets)`` (or Keras' ``(inputs, targets, sample_weights)``) as an
    :class:`ArrayDataset` (floating arrays as ``float_dtype``, the default dtype when None);
    ``where`` names the caller in errors. Given the ``model``, integer feature arrays become
    ``float_dtype`` too (:func:`features_as_float`); targets keep their dtype.

    Example:
        >>> len(as_dataset(([[1.0], [2.0]], [0, 1]), "fit(train=...)"))
        2
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ConfigError(
                f"{where}: expected (inputs, targets) or (inputs, targets, sample_weights), got a "
                f"{type(data).__name__} of {len(data)} items"
            )
        if multi_input(data[0]) or any(per_output(d, data[0]) for d in data[1:]):
            return inputs_dataset(data[0], data[1:], where, float_dtype, model)
        check_numeric(data[0], f"{where}: the inputs x")
        check_numeric(data[1], f"{where}: the targets y")
        return ArrayDataset(features_as_float(data[0], float_dtype, model), *data[1:], float_dtype=float_dtype)
    generator = (
        " (only fit's training data may be a Python generator of batches, with steps_per_epoch; give arrays, a "
        "Dataset or a DataLoader here)"
    )
    kind = type(data)
    if kind.__module__.split(".")[0] == "torch":  # a half-ported program: name PyTorch's class and ours
        raise ConfigError(
            f"{where}: expected downslope's DataLoader, Dataset or a tuple (inputs, targets), got PyTorch's "
            f"{kind.__module__}.{kind.__qualname__}; build it with downslope.utils.data (the same arguments: "
            "import downslope.utils.data instead of torch.utils.data), or give the arrays"
        )
    raise ConfigError(
        f"{where}: expected a DataLoader, a Dataset or a tuple (inputs, targets), got {kind.__name__}"
        + (generator if is_stream(data) else "")
    )


def is_stream(data: Any) -> bool:
    """Whether ``data`` is a Python generator or another iterator (``iter(data) is data``): Keras' way to feed
    fit batch by batch; not a Dataset, DataLoader, array or sequence."""
    if isinstance(data, (Dataset, DataLoader, Tensor, np.ndarray, tuple, list, dict, str, bytes)):
        return False
    try:
        return iter(data) is data
    except TypeError:
        return False


class GeneratorBatches(IterableDataset):
    """A Python generator (or iterator) of ``(x, y)`` or ``(x, y, sample_weight)`` batches, Keras' way to feed
    fit, as a stream fit reads ``steps_per_epoch`` batches of per epoch (``DataLoader(..., batch_size=None)``
    passes each batch through as it comes). It has no length, and cannot be rewound: one pass, read on
    across epochs."""

    endless = True  # no length: fit's steps_per_epoch reads it on, never restarting it

    def __init__(self, batches: Any) -> None:
        self.batches = batches

    def __iter__(self) -> Any:
        return self.batches


def inputs_dataset(
    x: Any, others: Sequence[Any], where: str, float_dtype: Any = None, model: Any = None
) -> InputsDataset:
    """Inputs ``x`` (several: a list or tuple of arrays, or a dict of them by name; or one array) and the
    ``others`` (targets, sample weights; each one array, or given per output: a list of arrays in the
    outputs' order, or a dict of them by output name) as one :class:`InputsDataset`. Each input follows
    the single-input rules on its own (:func:`features_as_float`: integer ids stay integers for a model
    with an Embedding); every array must have as many rows as the first input.

    Example:
        >>> data = inputs_dataset([np.zeros((4, 2), np.int64), np.zeros((4, 3))], [np.zeros(4)], "fit")
        >>> [a.dtype.name for a in data.arrays], data.count
        (['int64', 'float32', 'float32'], 2)
        >>> data = inputs_dataset(np.zeros((4, 2)), [{"a": np.zeros(4), "b": np.ones((4, 3))}], "fit")
        >>> x, y = data.group(data[0])
        >>> x.shape, sorted(y)
        ((2,), ['a', 'b'])
    """
    grouped = multi_input(x)
    if isinstance(x, Mapping) and grouped:
        for key in x:
            if not isinstance(key, str) or not key.isidentifier():
                raise ConfigError(
                    f"{where}: the inputs given as a dict reach the model as keyword arguments "
                    f"(model(**x)), so their keys must be parameter names; got {key!r}"
                )
        names: tuple[str, ...] | None = tuple(x)
        values, labels = list(x.values()), [f"input {k!r}" for k in x]
    elif grouped:
        names, values, labels = None, list(x), [f"input {i}" for i in range(len(x))]
    else:
        names, values, labels = None, [x], ["the inputs x"]
    rows = [_rows(v) for v in values]
    for label, value, n in zip(labels, values, rows):
        if n != rows[0]:
            raise ShapeError(
                f"{where}: every input needs one row per sample, as {labels[0]} has ({rows[0]} rows); "
                f"{label} has {n} rows (shape {tuple(getattr(value, 'shape', (n,)))})"
            )
    flat: list[Any] = []
    layout: list[Any] = []
    for what, other in zip(("the targets y", "the sample weights"), others):
        parts, spec = _flatten_field(other, what, where, x)
        layout.append(spec)
        for label, part in parts:
            if part is not None and _rows(part) != rows[0]:
                raise ShapeError(
                    f"{where}: the inputs have {rows[0]} rows but {label} has {_rows(part)} "
                    f"(shape {tuple(getattr(part, 'shape', (_rows(part),)))}); give one per sample"
                )
            if what == "the targets y":
                check_numeric(part, f"{where}: {label}")
            flat.append(part)
    for label, value in zip(labels, values):
        check_numeric(value, f"{where}: {label}")
    prepared = [features_as_float(v, float_dtype, model) for v in values]
    plain = all(spec is None for spec in layout)
    return InputsDataset(
        *prepared,
        *flat,
        count=len(prepared),
        names=names,
        float_dtype=float_dtype,
        grouped=grouped,
        layout=None if plain else tuple(layout),
    )


def _flatten_field(value: Any, what: str, where: str, x: Any) -> tuple[list[tuple[str, Any]], Any]:
    """A field given per output (a list of arrays, or a dict of them by output name) as its arrays, labelled,
    and its layout entry (see :class:`InputsDataset`); one array as itself and None."""
    if not per_output(value, x):
        return [(what, value)], None
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(f"{where}: {what} given as a dict are keyed by output name (a string), got {key!r}")
            if value[key] is None:
                raise ConfigError(f"{where}: {what}[{key!r}] is None; leave the output's key out instead")
        return [(f"{what}[{k!r}]", v) for k, v in value.items()], tuple(value)
    if any(v is None for v in value):
        raise ConfigError(
            f"{where}: {what} given as a list hold None at position(s) {[i for i, v in enumerate(value) if v is None]}; "
            "give an array for every output, or a dict by output name that leaves out the outputs without targets"
        )
    return [(f"{what}[{i}]", v) for i, v in enumerate(value)], len(value)


def as_loader(
    data: Any,
    batch_size: Any,
    shuffle: bool,
    seed: int | None,
    where: str,
    device: Any = None,
    float_dtype: Any = None,
    model: Any = None,
) -> DataLoader:
    """A DataLoader as is; anything :func:`as_dataset` takes, in a new DataLoader (its batches on
    ``device``, host memory when None; floating arrays as ``float_dtype``; integer features too,
    given the ``model``).

    Example:
        >>> as_loader(([[1.0], [2.0], [3.0]], [0, 1, 0]), 2, False, None, "evaluate").batch_size
        2
    """
    if isinstance(data, DataLoader):
        check_has_batches(data, where)
        return data
    dataset = as_dataset(data, where, float_dtype, model)
    return make_loader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, device=device)


def split_validation(
    dataset: Dataset, fraction: float, seed: int, where: str = "fit", shuffle: bool = True
) -> tuple[Dataset, Dataset]:
    """``(train, validation)``: the last rows of an array-backed dataset held out, in order, exactly as
    Keras' ``validation_split`` holds them out: the first ``floor(n * (1 - fraction))`` rows train, the
    others validate, before any shuffling (fit's ``shuffle`` then shuffles the training rows only).
    Shuffle the data yourself first if its order means something (sorted by class or time) and you
    want a random split. ``seed`` and ``shuffle`` no longer change the split (kept for callers; until
    this rule, ``shuffle=True`` held out a seeded random fraction).

    Example:
        >>> import numpy as np
        >>> train, val = split_validation(ArrayDataset(np.arange(10.0), np.zeros(10)), 0.25, seed=0)
        >>> len(train), [val[i][0].item() for i in range(len(val))]
        (7, [7.0, 8.0, 9.0])
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"{where}: validation_split must be a fraction in (0, 1), got {fraction!r}")
    arrays = dataset_arrays(dataset)
    if arrays is None:
        raise ConfigError(f"{where}: validation_split needs array data; pass validation=... for other datasets")
    n = len(arrays[0])
    cut = int(math.floor(n * (1.0 - float(fraction))))  # Keras' split_at, to the last rounding
    if cut == 0 or cut == n:
        raise ConfigError(
            f"{where}: validation_split={fraction!r} of {n} rows leaves {'no training' if cut == 0 else 'no validation'} "
            f"rows (the first floor({n} * (1 - {fraction!r})) = {cut} rows train); use a fraction that splits the data"
        )
    parts = [piece for a in arrays for piece in (a[:cut], a[cut:])]
    count = dataset.count if isinstance(dataset, InputsDataset) else 1  # the targets follow the inputs
    if len(arrays) > count:
        _warn_if_ordered_by_class(arrays[count], cut, where)
    # the data's own floating dtype carries over (a float64 model's data stays float64)
    floating = [d for d in (getattr(a, "dtype", None) for a in arrays) if d is not None and d.kind == "f"]
    float_dtype = max(floating, key=lambda d: d.itemsize) if floating else None
    if isinstance(dataset, InputsDataset):
        return dataset.like(*parts[0::2], float_dtype=float_dtype), dataset.like(*parts[1::2], float_dtype=float_dtype)
    train = ArrayDataset(*parts[0::2], check_finite=False, float_dtype=float_dtype)
    val = ArrayDataset(*parts[1::2], check_finite=False, float_dtype=float_dtype)
    return train, val


def _warn_if_ordered_by_class(targets: Any, cut: int, where: str) -> None:
    """Warn when class-label targets split at ``cut`` leave a class on one side only: rows sorted by class
    (a common layout, which a random split used to hide) would validate on classes never trained on."""
    labels = targets.array if isinstance(targets, Tensor) else targets
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.ndim > 2:
        return  # (regression targets, one-hot rows, device arrays: no cheap, reliable test)
    if labels.ndim == 2 and labels.shape[1] != 1:
        return
    seen, held = set(np.unique(labels[:cut]).tolist()), set(np.unique(labels[cut:]).tolist())
    if held <= seen:
        return
    import warnings

    warnings.warn(
        f"{where}: validation_split holds out the last rows (as Keras), and their classes {sorted(held - seen)} "
        "never occur in the training rows: the data looks ordered by class. Shuffle the arrays first "
        "(p = np.random.default_rng(0).permutation(len(x)); x, y = x[p], y[p]) or pass validation=(x_val, y_val)",
        RuntimeWarning,
        stacklevel=4,
    )


def unpack_batch(batch: Sequence[Any], where: str, weights: bool = False, inputs: int | None = None) -> Any:
    """``(inputs, targets)`` of a batch; any other number of fields is a ConfigError naming ``where``.
    With ``weights=True``, ``(inputs, targets, sample_weights)``: a batch of three fields carries
    per-sample weights (Keras' ``(x, y, sample_weight)``), one of two gives None for them.

    ``inputs``: how many inputs the model takes (:func:`model_input_count`). When it is above one, a
    batch of ``inputs + 1`` fields is ``(x1, ..., xk, targets)`` (a ``TensorDataset(x_cat, x_num, y)``),
    with ``weights=True`` one of ``inputs + 2`` fields ends with the sample weights, and a batch
    ``((x1, ..., xk), targets)`` has its inputs as a tuple: the inputs come as :class:`Inputs`.

    Example:
        >>> unpack_batch((1, 2), "fit"), unpack_batch((1, 2), "fit", weights=True)
        ((1, 2), (1, 2, None))
        >>> unpack_batch((1, 2, 3), "fit", weights=True, inputs=2)
        ((1, 2), 3, None)
    """
    if isinstance(batch, Mapping):
        batch = _dict_batch(batch, where, weights)
    if inputs is not None and inputs > 1 and isinstance(batch, (tuple, list)) and type(batch[0]) not in _GROUPED:
        extra = len(batch) - inputs
        if extra == 1 or (weights and extra == 2):
            x, rest = Inputs(batch[:inputs]), tuple(batch[inputs:])
            if weights:
                return x, rest[0], rest[1] if extra == 2 else None
            return x, rest[0]
        if isinstance(batch[0], (tuple, list)) and len(batch[0]) == inputs:
            batch = (Inputs(batch[0]), *batch[1:])
    if weights and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    if len(batch) != 2:
        expected = "(inputs, targets) or (inputs, targets, sample_weights)" if weights else "(inputs, targets)"
        raise ConfigError(f"{where}: expected batches of {expected}, got {len(batch)} field(s)")
    return (batch[0], batch[1], None) if weights else (batch[0], batch[1])


_DICT_FIELDS = ("x", "y", "sample_weight")


def _dict_batch(batch: Mapping[str, Any], where: str, weights: bool) -> tuple[Any, ...]:
    """A dict batch as ``(x, y[, sample_weight])``: the keys 'x' and 'y' (and 'sample_weight', Keras' name)
    are the fields; any other dict is refused, naming its keys (fit cannot tell inputs from targets)."""
    keys = list(batch)
    if "x" in batch and "y" in batch and set(keys) <= set(_DICT_FIELDS) and (weights or "sample_weight" not in batch):
        return tuple(batch[k] for k in _DICT_FIELDS if k in batch)
    expected = "'x', 'y' and optionally 'sample_weight'" if weights else "'x' and 'y'"
    raise ConfigError(
        f"{where}: expected batches of (inputs, targets) (a tuple, or a dict with the keys {expected}), got "
        f"a dict with keys {keys}; return (inputs, targets) from the dataset, or give the DataLoader a collate_fn "
        "that builds them"
    )


def batch_inputs(batch: Any, inputs: int | None = None) -> Any:
    """The inputs of a batch that ``predict`` runs: its first field, or (``inputs``, the model's input
    count, above one) its first ``inputs`` fields, or a first field that is a tuple of them, as
    :class:`Inputs`; fields after the inputs (targets) are left out.

    Example:
        >>> batch_inputs((1, 2)), batch_inputs((1, 2, 3), inputs=2)
        (1, (1, 2))
    """
    if isinstance(batch, Mapping):  # fit's dict batches: the inputs under 'x'
        if "x" not in batch:
            raise ConfigError(f"predict: expected the inputs of a dict batch under the key 'x', got keys {list(batch)}")
        return batch["x"]
    if not isinstance(batch, (tuple, list)):
        return batch[0]  # (what predict has always read)
    first = batch[0]
    if inputs is not None and inputs > 1 and type(first) not in _GROUPED:
        if len(batch) >= inputs:
            return Inputs(batch[:inputs])
        if isinstance(first, (tuple, list)) and len(first) == inputs:
            return Inputs(first)
    return first


def resolve_seed(seed: int | None, where: str = "fit") -> int:
    """``seed`` checked, or one drawn from the library's generator when None (``ds.manual_seed`` fixes it).

    Example:
        >>> resolve_seed(7)
        7
    """
    if seed is None:
        return int(backend.rng().integers(0, 2**63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{where}: seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


__all__ = [
    "Inputs",
    "NamedInputs",
    "InputsDataset",
    "InputsLoader",
    "call_model",
    "input_rows",
    "input_shapes",
    "target_column",
    "model_input_count",
    "multi_input",
    "inputs_dataset",
    "make_loader",
    "batch_inputs",
    "check_has_batches",
    "check_numeric",
    "as_dataset",
    "as_loader",
    "split_validation",
    "unpack_batch",
    "resolve_seed",
    "model_float_dtype",
    "conform",
    "features_as_float",
]
