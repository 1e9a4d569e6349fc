"""Validate a stored run (``RUN/model.ds``) before anything is built from it.

:func:`downslope.load` bounds what reading a file can cost, but a run's file also holds the
*config* the model is rebuilt from. A crafted config (``hidden = [300000, 300000]``) would make
``build_model`` allocate gigabytes before the stored weights are ever compared with the model.
:func:`check_run_state` closes that gap: the stored config passes the same validation as a user's
(:func:`downslope.experiment.normalize_config`), and the shapes the config implies are computed
arithmetically, without allocating a layer, and compared with the stored arrays' shapes. When they
agree, building the model allocates exactly as much as the (already loaded) arrays hold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..tensor import Tensor
from ..train.resume import CHECKPOINT_KIND
from .config import ARCHITECTURE_KEYS, DEFAULTS, normalize_config

_TASKS = ("classification", "regression")


def _positive_int(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CheckpointError(f"{where}: {what} must be a positive integer, the file has {value!r}")
    return int(value)


def expected_parameter_shapes(
    cfg: dict[str, Any], n_features: int, n_outputs: int, image_shape: tuple[int, ...] | None
) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` shapes of ``experiment.build_model(cfg, ...)``, computed without building it.

    Mirrors ``build_model`` layer by layer (a test compares the two for every model kind). Raises
    :class:`ConfigError` where ``build_model`` would (a CNN without image data, too many conv blocks).

    Example:
        >>> from downslope.experiment import normalize_config
        >>> expected_parameter_shapes(normalize_config({"hidden": [3]}), 4, 2, None)
        {'0.weight': (3, 4), '0.bias': (3,), '2.weight': (2, 3), '2.bias': (2,)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    if cfg["model"] == "linear":
        return {"0.weight": (n_outputs, n_features), "0.bias": (n_outputs,)}
    index, prefix = 0, ""
    if cfg["model"] == "cnn":
        if image_shape is None:
            raise ConfigError(
                f"model 'cnn' needs image data (e.g. digits); {cfg['data']!r} is tabular: use model 'mlp'"
            )
        prefix = "body."
        c_in, height, width = image_shape
        for c_out in cfg["channels"]:
            shapes[f"{prefix}{index}.weight"] = (c_out, c_in, 3, 3)
            shapes[f"{prefix}{index}.bias"] = (c_out,)
            index += 3  # Conv2d, activation, MaxPool2d
            c_in, height, width = c_out, height // 2, width // 2
            if height < 1 or width < 1:
                raise ConfigError(
                    f"too many conv blocks ({len(cfg['channels'])}) for {image_shape[1]}x{image_shape[2]} images"
                )
        index += 1  # Flatten
        n_in = c_in * height * width
    else:
        n_in = n_features
    for width_ in cfg["hidden"]:
        shapes[f"{prefix}{index}.weight"] = (width_, n_in)
        shapes[f"{prefix}{index}.bias"] = (width_,)
        index += 1
        if cfg["batchnorm"]:
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}{index}.{name}"] = (width_,)
            shapes[f"{prefix}{index}.num_batches_tracked"] = ()
            index += 1
        index += 1  # activation
        if cfg["dropout"] > 0:
            index += 1
        n_in = width_
    shapes[f"{prefix}{index}.weight"] = (n_outputs, n_in)
    shapes[f"{prefix}{index}.bias"] = (n_outputs,)
    return shapes


def check_run_state(state: Any, where: str = "model.ds") -> None:
    """Refuse a stored run whose config or arrays do not describe one consistent model.

    Checks, in order and without allocating anything the size of a layer: the entries the run
    needs are present with the right types (a standardizer's mean and scale hold one float per
    feature); the stored config passes
    :func:`~downslope.experiment.normalize_config` (``state["config"]`` is replaced by the
    normalized config, so what is built is exactly what was checked); the parameter shapes that
    config implies equal the stored arrays' shapes, key by key. Raises :class:`CheckpointError`
    naming the file (``where``) and the first problem.

    Example:
        >>> import numpy as np
        >>> state = {"config": {"model": "linear"}, "task": "regression", "n_features": 2, "n_outputs": 1,
        ...          "image_shape": None, "preprocess": {},
        ...          "model": {"0.weight": np.zeros((1, 2), np.float32), "0.bias": np.zeros(1, np.float32)}}
        >>> check_run_state(state)
        >>> state["model"]["0.weight"] = np.zeros((1, 3), np.float32)
        >>> check_run_state(state)
        Traceback (most recent call last):
        ...
        downslope.errors.CheckpointError: model.ds: the stored config implies '0.weight' of shape (1, 2), the stored array has shape (1, 3)
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: not a run's model file (it holds a {type(state).__name__}, not a dict)")
    if state.get("kind") == CHECKPOINT_KIND:
        raise CheckpointError(
            f"{where}: this is a training checkpoint of fit (epoch {state.get('epoch')}), not a run's model file; "
            "evaluate and predict take a run directory written by 'downslope train'"
        )
    needed = ("model", "config", "task", "n_features", "n_outputs", "image_shape", "preprocess")
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(f"{where}: not a run's model file (missing {missing}); write one with 'downslope train'")
    if not isinstance(state["config"], dict):
        raise CheckpointError(f"{where}: the stored config is a {type(state['config']).__name__}, expected a table")
    kind = state["config"].get("model", DEFAULTS["model"])
    lacking = [k for k in ("model", *ARCHITECTURE_KEYS.get(kind, ())) if k not in state["config"]]
    if lacking:  # a default filled in here would build another architecture than the one trained
        raise CheckpointError(
            f"{where}: the stored config lacks {lacking}, which the model's architecture needs; retrain the run"
        )
    try:
        cfg = normalize_config(state["config"], f"{where}: stored config", stored=True)
    except (ConfigError, ArithmeticError) as exc:  # int(inf) in a width is an OverflowError
        message = str(exc)
        raise CheckpointError(message if message.startswith(where) else f"{where}: stored config: {message}") from None
    if state["task"] not in _TASKS:
        raise CheckpointError(f"{where}: task must be one of {_TASKS}, the file has {state['task']!r}")
    n_features = _positive_int(state["n_features"], "n_features", where)
    n_outputs = _positive_int(state["n_outputs"], "n_outputs", where)
    image_shape = state["image_shape"]
    if image_shape is not None:
        if not isinstance(image_shape, (list, tuple)) or len(image_shape) != 3:
            raise CheckpointError(
                f"{where}: image_shape must be [channels, height, width], the file has {image_shape!r}"
            )
        image_shape = tuple(_positive_int(n, "each image_shape entry", where) for n in image_shape)
        if math.prod(image_shape) != n_features:
            raise CheckpointError(
                f"{where}: image_shape {list(image_shape)} holds {math.prod(image_shape)} values, "
                f"but n_features is {n_features}"
            )
    if not isinstance(state["preprocess"], dict):
        raise CheckpointError(f"{where}: preprocess must be a table, the file has {type(state['preprocess']).__name__}")
    scaler = state["preprocess"].get("standardizer")
    if scaler:  # applied to every input row: a mean of another shape would broadcast to a huge array
        for key in ("mean", "scale"):
            value = scaler.get(key) if isinstance(scaler, dict) else None
            if not isinstance(value, np.ndarray) or value.shape != (n_features,) or value.dtype.kind != "f":
                got = (
                    f"shape {tuple(value.shape)} {value.dtype}"
                    if isinstance(value, np.ndarray)
                    else type(value).__name__
                )
                raise CheckpointError(
                    f"{where}: the stored standardizer's {key} must be {n_features} floats (one per feature), "
                    f"the file has {got}"
                )
    _check_ranges(state["preprocess"].get("ranges"), n_features, where)
    arrays = state["model"]
    if isinstance(arrays, dict):  # a run saved by this version holds tensors (what state_dict() gives)
        arrays = {k: (v.array if isinstance(v, Tensor) else v) for k, v in arrays.items()}
    if not isinstance(arrays, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in arrays.items()
    ):
        raise CheckpointError(f"{where}: the stored model must map parameter names to arrays")
    try:
        expected = expected_parameter_shapes(cfg, n_features, n_outputs, image_shape)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: stored config: {exc}") from None
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: the stored config implies parameters the stored arrays do not match "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}); refused before building the model"
        )
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise CheckpointError(
                f"{where}: the stored config implies {key!r} of shape {shape}, "
                f"the stored array has shape {tuple(arrays[key].shape)}"
            )
    state["config"] = cfg


def _check_ranges(ranges: Any, n_features: int, where: str) -> None:
    """The training ranges predict compares new values with (absent in older runs): ``features`` (indices of
    the model's features), ``min`` and ``max``, one finite float per feature; anything else would give an
    index error or a wrong warning deep in predict."""
    if ranges is None:
        return
    problem = ""
    if not isinstance(ranges, dict) or not all(
        isinstance(ranges.get(k), np.ndarray) for k in ("features", "min", "max")
    ):
        problem = "a table of three arrays (features, min, max)"
    else:
        index, low, high = ranges["features"], ranges["min"], ranges["max"]
        if (
            index.ndim != 1
            or index.dtype.kind not in "iu"
            or (len(index) and not 0 <= index.min() <= index.max() < n_features)
        ):
            problem = f"features: indices of the model's {n_features} features"
        elif low.shape != index.shape or high.shape != index.shape or low.dtype.kind != "f" or high.dtype.kind != "f":
            problem = "min and max: one float per feature in features"
        elif not (np.isfinite(low).all() and np.isfinite(high).all() and (low <= high).all()):
            problem = "min and max: finite, with min <= max"
    if problem:
        raise CheckpointError(f"{where}: the stored training ranges must be {problem}; retrain the run")
