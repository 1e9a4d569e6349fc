"""One training run from a flat config: data -> model -> optimizer -> fit -> run directory.

This is what ``downslope train`` (and ``compare``) run. Every choice is a plain config value, so a run
can be written to ``config.toml`` and repeated exactly (``downslope train --config RUN/config.toml``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArgumentError, ConfigError

DEFAULTS: dict[str, Any] = {
    # data
    "data": "digits",
    "target": "",
    "task": "auto",
    "test_split": 0.2,
    "val_split": 0.15,
    "standardize": True,
    "scale_target": True,  # regression: standardize the target on the training split (undone for outputs)
    "missing": "error",  # files: error | drop | mean | median | most_frequent
    "drop": [],  # CSV columns to leave out
    "max_categories": 100,  # CSV: text columns with more distinct values are refused
    # model
    "model": "mlp",
    "hidden": [128, 64],
    "activation": "relu",
    "dropout": 0.0,
    "batchnorm": False,
    "channels": [16],
    # training
    "loss": "auto",
    "optimizer": "adam",
    "lr": 0.0,  # 0 means: the optimizer's own default
    "momentum": 0.0,
    "weight_decay": 0.0,
    "clip_norm": 0.0,
    "schedule": "none",
    "batch_size": "64",
    "epochs": 100,
    "patience": 10,
    "target_loss": 0.0,
    "max_time": 0.0,
    "seed": 0,
    "out": "",
    "verbose": 1,
}

CHOICES: dict[str, tuple[str, ...]] = {
    "missing": ("error", "drop", "mean", "median", "most_frequent"),
    "task": ("auto", "classification", "regression"),
    "model": ("mlp", "cnn", "linear"),
    "activation": ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu"),
    "loss": ("auto", "cross_entropy", "mse", "l1", "huber"),
    "optimizer": (
        "gd",
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adadelta",
        "adam",
        "adamw",
        "adamax",
        "nadam",
        "radam",
        "lion",
    ),
    "schedule": ("none", "step", "exponential", "cosine", "onecycle", "plateau", "warmup"),
}

SECTIONS = ("data", "model", "optimizer", "training", "output")


def _check_choice(key: str, value: Any) -> None:
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"unknown {key} {value!r}; choose one of: {', '.join(CHOICES[key])}")


def normalize_config(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate a flat config (sections [data], [model], ... are flattened) and fill in defaults."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    unknown = sorted(set(flat) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {unknown}; valid settings: {', '.join(DEFAULTS)}")
    cfg = dict(DEFAULTS)
    for key, value in flat.items():
        default = DEFAULTS[key]
        try:
            if key == "hidden" or key == "channels":
                if isinstance(value, str):
                    value = [int(v) for v in value.split(",") if v.strip()] if value.strip() else []
                value = [int(v) for v in value]
                if any(v <= 0 for v in value):
                    raise ArgumentError("sizes must be positive")
            elif key == "drop":
                if isinstance(value, str):
                    value = value.split(",")
                if not isinstance(value, (list, tuple)):
                    raise ArgumentError("expected column names, e.g. id,name")
                value = [str(v).strip() for v in value if str(v).strip()]
            elif key == "batch_size":
                value = str(value).strip().lower()
                if value not in ("full", "none") and (not value.isdigit() or int(value) <= 0):
                    raise ArgumentError("expected a positive integer or 'full'")
            elif isinstance(default, bool):
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ArgumentError("expected true or false")
                    value = value.lower() in ("true", "1", "yes")
                value = bool(value)
            elif isinstance(default, int):
                if isinstance(value, float) and not value.is_integer():
                    raise ArgumentError("expected an integer")
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
                if not math.isfinite(value):
                    raise ArgumentError("expected a finite number")
            else:
                value = str(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: bad value {value!r} for {key!r} ({exc})") from None
        _check_choice(key, value)
        cfg[key] = value
    for key in ("lr", "momentum", "weight_decay", "clip_norm", "dropout", "target_loss", "max_time"):
        if cfg[key] < 0:
            raise ConfigError(f"{source}: {key} must be >= 0, got {cfg[key]}")
    if not 0 <= cfg["dropout"] < 1:
        raise ConfigError(f"{source}: dropout must be in [0, 1), got {cfg['dropout']}")
    if cfg["epochs"] < 1:
        raise ConfigError(f"{source}: epochs must be >= 1, got {cfg['epochs']}")
    if cfg["max_categories"] < 1:
        raise ConfigError(f"{source}: max_categories must be >= 1, got {cfg['max_categories']}")
    if not 0 < cfg["test_split"] < 1:  # the run is scored (and evaluate scores it) on its test rows
        raise ConfigError(f"{source}: test_split must be a fraction in (0, 1), got {cfg['test_split']}")
    if not 0 <= cfg["val_split"] < 1:
        raise ConfigError(f"{source}: val_split must be a fraction in [0, 1), got {cfg['val_split']}")
    if cfg["test_split"] + cfg["val_split"] >= 1:
        raise ConfigError(
            f"{source}: test_split + val_split must leave rows to train on (sum < 1), got "
            f"{cfg['test_split']} + {cfg['val_split']}"
        )
    return cfg


def to_toml(cfg: dict[str, Any]) -> str:
    """Write a flat config as TOML (strings, numbers, booleans and lists of ints only)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    return "".join(f"{k} = {value(v)}\n" for k, v in cfg.items())


def load_toml(path: str | Path) -> dict[str, Any]:
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no such config file: {p}")
    try:
        with open(p, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: malformed TOML: {exc}") from None


# ---------------------------------------------------------------------- data
@dataclass
class Prepared:
    """The splits of one dataset, standardized with training statistics, as float32 arrays."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_features: int
    n_outputs: int
    name: str
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] = field(default_factory=dict)
    # which rows of the source went where: n_rows, seed, test/val fractions, test_indices, and a hash
    # of every training/validation row's features (to tell when other data overlaps training)
    split: dict[str, Any] = field(default_factory=dict)
    task_reason: str = ""
    notes: list[str] = field(default_factory=list)
    target_name: str = ""


def is_file_source(source: str) -> bool:
    return Path(source).suffix.lower() in (".csv", ".parquet", ".npz", ".npy")


def load_table(cfg: dict[str, Any]) -> tuple[Any, Any]:
    from .data import datasets
    from .data.tabular import read_table

    source = cfg["data"]
    task = None if cfg["task"] == "auto" else cfg["task"]
    if is_file_source(source):
        return read_table(
            source,
            target=cfg["target"] or None,
            task=task,
            missing=cfg.get("missing", "error"),
            drop=cfg.get("drop") or None,
            max_categories=cfg.get("max_categories", 100),
            progress=bool(cfg.get("verbose", 1)),  # a line on stderr when reading takes more than a second
        )
    if cfg.get("drop"):
        raise ConfigError(f"--drop names columns of a CSV file; {source!r} is a built-in dataset")
    table = datasets.load(source, seed=cfg["seed"])
    table.task_reason = "built-in dataset"
    if task is not None and task != table.task:
        raise ConfigError(f"dataset {source!r} is a {table.task} task, but task={task!r} was asked for")
    return table, None


def row_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's float32 values (FNV-1a over 32-bit words): equal rows, equal hashes.

    Example:
        >>> h = row_hashes(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    words = np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1).view(np.uint32).astype(np.uint64)
    h = np.full(len(X), 14695981039346656037, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * prime
    return h


def _rows(X: Any, index: np.ndarray) -> Any:
    """Rows of features: a copy for arrays, a lazy view for a memory-mapped source."""
    from .data.memmap import is_lazy

    return X.subset(index) if is_lazy(X) else X[index]


def _hashes(X: Any, index: np.ndarray) -> np.ndarray:
    """:func:`row_hashes` of the rows at ``index``, chunk by chunk for a memory-mapped source."""
    from .data.memmap import is_lazy

    if not is_lazy(X):
        return row_hashes(X[index])
    parts = [row_hashes(chunk) for chunk in X.raw().subset(index).chunks()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def training_data(X: Any, y: np.ndarray) -> Any:
    """What fit takes for features ``X`` and targets ``y``: the arrays, or for a memory-mapped source a
    :class:`~downslope.data.dataset.LazyDataset` (batches are read from the file, never all of it)."""
    from .data.dataset import LazyDataset
    from .data.memmap import is_lazy

    return LazyDataset(X, y) if is_lazy(X) else (X, y)


def prepare(cfg: dict[str, Any]) -> Prepared:
    """Load the data, split it (seeded; stratified for classes) and fit the preprocessing on the
    training split only: imputer (``missing``), feature standardizer, and for regression the target
    standardizer. Targets stay in the data's units here; :func:`model_targets` scales them."""
    from .data import train_test_split
    from .data.datasets import Standardizer
    from .data.tabular import IMPUTE, Imputer

    table, encoder = load_table(cfg)
    classify = table.task == "classification"
    X, y = table.X, table.y
    if len(X) < 10:
        raise ConfigError(f"{table.name}: only {len(X)} samples; need at least 10 to split into train/validation/test")
    stratify = y if classify and np.bincount(y).min() >= 2 else None
    index = np.arange(len(X))
    i_rest, i_test, y_rest, _ = train_test_split(
        index, y, test_size=cfg["test_split"] or 0.2, stratify=stratify, seed=cfg["seed"]
    )
    i_val = None
    if cfg["val_split"] > 0:
        strat_rest = y_rest if stratify is not None and np.bincount(y_rest).min() >= 2 else None
        frac = cfg["val_split"] / (1 - (cfg["test_split"] or 0.2))
        i_train, i_val, _, _ = train_test_split(
            i_rest, y_rest, test_size=frac, stratify=strat_rest, seed=cfg["seed"] + 1
        )
    else:
        i_train = i_rest
    X_train, y_train, X_test, y_test = _rows(X, i_train), y[i_train], _rows(X, i_test), y[i_test]
    X_val = _rows(X, i_val) if i_val is not None else None
    y_val = y[i_val] if i_val is not None else None
    seen = i_train if i_val is None else np.concatenate([i_train, i_val])
    split = {
        "n_rows": len(X),
        "seed": cfg["seed"],
        "test_split": cfg["test_split"] or 0.2,
        "val_split": cfg["val_split"],
        "test_indices": np.asarray(i_test, dtype=np.int64),
        "train_row_hashes": _hashes(X, seen),
    }
    del seen
    preprocess: dict[str, Any] = {"encoder": encoder.state_dict() if encoder is not None else None}
    if cfg.get("missing", "error") in IMPUTE:
        imputer = Imputer(cfg["missing"]).fit(X_train, encoder.blocks() if encoder is not None else None)
        X_train, X_test = imputer.transform(X_train), imputer.transform(X_test)
        X_val = imputer.transform(X_val) if X_val is not None else None
        preprocess["imputer"] = imputer.state_dict()
    if cfg["standardize"]:
        scaler = Standardizer().fit(X_train)  # training split only: no peeking at validation/test
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if X_val is not None:
            X_val = scaler.transform(X_val)
        preprocess["standardizer"] = scaler.state_dict()
    if not classify and cfg.get("scale_target", True):
        preprocess["target_scaler"] = Standardizer().fit(y_train).state_dict()
    n_outputs = table.n_classes if classify else table.y.shape[1]
    return Prepared(
        X_train,
        y_train,
        X_val,
        y_val,
        X_test,
        y_test,
        table.task,
        table.n_features,
        n_outputs,
        table.name,
        table.image_shape,
        table.feature_names,
        table.class_names,
        preprocess,
        split,
        table.task_reason,
        list(table.notes),
        table.target_name,
    )


def apply_preprocess(X: np.ndarray, preprocess: dict[str, Any], where: str = "data") -> np.ndarray:
    """Raw features -> model inputs, as in training: fill missing values, then standardize."""
    from .data.datasets import Standardizer
    from .data.tabular import Imputer
    from .errors import DataError

    X = np.asarray(X, dtype=np.float32)
    if preprocess.get("imputer"):
        X = Imputer.from_state_dict(preprocess["imputer"]).transform(X)
    elif np.isnan(X).any():
        r, c = np.argwhere(np.isnan(X))[0]
        raise DataError(
            f"{where}: missing value at row {r}, feature {c}; the model was trained without filling missing "
            "values (train with --missing mean|median|most_frequent to have them filled)"
        )
    if preprocess.get("standardizer"):
        scaler = Standardizer()
        scaler.load_state_dict(preprocess["standardizer"])
        return scaler.transform(X)
    return X


def model_targets(y: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    """Targets in the units the model is trained on (standardized for regression by default)."""
    state = preprocess.get("target_scaler")
    if not state:
        return y
    return (
        (np.asarray(y, np.float32) - np.asarray(state["mean"], np.float32)) / np.asarray(state["scale"], np.float32)
    ).astype(np.float32)


def data_units(outputs: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    """Model outputs back in the data's units (undoes the target standardization).

    Example:
        >>> pre = {"target_scaler": {"mean": np.array([1e5]), "scale": np.array([2e4])}}
        >>> data_units(np.array([[0.5]]), pre).tolist(), model_targets(np.array([[1.1e5]]), pre).tolist()
        ([[110000.0]], [[0.5]])
    """
    state = preprocess.get("target_scaler")
    if not state:
        return outputs
    return outputs * np.asarray(state["scale"], np.float32) + np.asarray(state["mean"], np.float32)


# ---------------------------------------------------------------------- model, loss, optimizer
def _image_model_class() -> Any:
    from . import nn

    class ImageModel(nn.Module):
        """Rows of flattened pixels (N, C*H*W) reshaped to images (N, C, H, W) for a CNN body."""

        def __init__(self, image_shape: tuple[int, ...], body: Any) -> None:
            super().__init__()
            self.image_shape = tuple(image_shape)
            self.body = body

        def forward(self, x: Any) -> Any:
            return self.body(x.reshape((x.shape[0],) + self.image_shape))

    return ImageModel


def ImageModel(image_shape: tuple[int, ...], body: Any) -> Any:  # noqa: N802 - reads like a class
    return _image_model_class()(image_shape, body)


def build_model(cfg: dict[str, Any], n_features: int, n_outputs: int, image_shape: tuple[int, ...] | None) -> Any:
    from . import nn

    if cfg["model"] == "linear":
        return nn.Sequential(nn.Linear(n_features, n_outputs))
    act = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "elu": nn.ELU,
    }[cfg["activation"]]
    layers: list[Any] = []
    if cfg["model"] == "cnn":
        if image_shape is None:
            raise ConfigError(
                f"model 'cnn' needs image data (e.g. digits); {cfg['data']!r} is tabular: use model 'mlp'"
            )
        channels, height, width = image_shape
        c_in = channels
        for c_out in cfg["channels"]:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), act(), nn.MaxPool2d(2)]
            c_in, height, width = c_out, height // 2, width // 2
            if height < 1 or width < 1:
                raise ConfigError(
                    f"too many conv blocks ({len(cfg['channels'])}) for {image_shape[1]}x{image_shape[2]} images"
                )
        layers.append(nn.Flatten())
        n_in = c_in * height * width
    else:
        n_in = n_features
    for width_ in cfg["hidden"]:
        layers.append(nn.Linear(n_in, width_))
        if cfg["batchnorm"]:
            layers.append(nn.BatchNorm1d(width_))
        layers.append(act())
        if cfg["dropout"] > 0:
            layers.append(nn.Dropout(cfg["dropout"]))
        n_in = width_
    layers.append(nn.Linear(n_in, n_outputs))
    body = nn.Sequential(*layers)
    return ImageModel(image_shape, body) if image_shape is not None and cfg["model"] == "cnn" else body


def build_loss(cfg: dict[str, Any], task: str) -> Any:
    from . import nn

    name = cfg["loss"]
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    if name == "cross_entropy" and task != "classification":
        raise ConfigError("loss 'cross_entropy' needs a classification task; this data is regression (try mse)")
    if name != "cross_entropy" and task == "classification":
        raise ConfigError(f"loss {name!r} is for regression; this data is classification (use cross_entropy)")
    return {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}[name]()


def build_optimizer(cfg: dict[str, Any], params: Any) -> Any:
    from . import optim

    name = cfg["optimizer"]
    kwargs: dict[str, Any] = {}
    if cfg["lr"] > 0:
        kwargs["lr"] = cfg["lr"]
    elif name in ("gd", "sgd", "momentum", "nesterov"):
        kwargs["lr"] = 0.01  # PyTorch has no default for SGD; Keras uses 0.01
    if cfg["weight_decay"] > 0:
        kwargs["weight_decay"] = cfg["weight_decay"]
    if cfg["clip_norm"] > 0:
        kwargs["clip_norm"] = cfg["clip_norm"]
    if name == "gd":
        return optim.GD(params, **kwargs)
    if name == "sgd":
        return optim.SGD(params, momentum=cfg["momentum"], **kwargs)
    if name in ("momentum", "nesterov"):
        return optim.SGD(params, momentum=cfg["momentum"] or 0.9, nesterov=name == "nesterov", **kwargs)
    if name == "rmsprop" and cfg["momentum"] > 0:
        kwargs["momentum"] = cfg["momentum"]
    classes = {
        "adagrad": "Adagrad",
        "rmsprop": "RMSprop",
        "adadelta": "Adadelta",
        "adam": "Adam",
        "adamw": "AdamW",
        "adamax": "Adamax",
        "nadam": "NAdam",
        "radam": "RAdam",
        "lion": "Lion",
    }
    return getattr(optim, classes[name])(params, **kwargs)


def build_scheduler(cfg: dict[str, Any], optimizer: Any, steps_per_epoch: int) -> Any:
    """Schedules step once per epoch, except onecycle and warmup which step per batch (see fit)."""
    from .optim import lr_scheduler as sched

    name, epochs = cfg["schedule"], cfg["epochs"]
    if name == "none":
        return None
    if name == "step":
        return sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "exponential":
        return sched.ExponentialLR(optimizer, gamma=0.95)
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "plateau":
        return sched.ReduceLROnPlateau(optimizer, patience=max(1, cfg["patience"] // 2))
    if name == "onecycle":
        max_lr = optimizer.param_groups[0]["lr"]
        return sched.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=max(1, steps_per_epoch))
    return sched.LinearLR(optimizer, start_factor=0.1, total_iters=max(1, epochs // 10))


def batch_size_of(cfg: dict[str, Any]) -> int | None:
    return None if cfg["batch_size"] in ("full", "none") else int(cfg["batch_size"])


# ---------------------------------------------------------------------- a run
@dataclass
class RunResult:
    cfg: dict[str, Any]
    history: Any
    metrics: dict[str, Any]
    stop_reason: str
    seconds: float
    model: Any
    data: Prepared
    out_dir: Path | None = None
    diagnostics: list[str] = field(default_factory=list)  # plain-words warnings from training
    gradients: Any = None  # the GradientDiagnostics callback (per-layer norms per epoch)


def score_model(model: Any, data: Prepared, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics of ``model`` on preprocessed features ``X`` and targets ``y`` in the data's units."""
    from .data.dataset import LazyDataset
    from .data.memmap import is_lazy
    from .train import metrics as m
    from .train import predict

    out = predict(model, LazyDataset(X) if is_lazy(X) else X)
    preds = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
    if data.task == "classification":
        return {
            "accuracy": float(m.accuracy(preds, y)),
            "f1_macro": float(m.f1_score(preds, y)),
            "precision_macro": float(m.precision(preds, y)),
            "recall_macro": float(m.recall(preds, y)),
        }
    preds = data_units(preds, data.preprocess)  # metrics in the data's own units
    return {
        "mse": float(m.mean_squared_error(preds, y)),
        "rmse": float(m.root_mean_squared_error(preds, y)),
        "mae": float(m.mean_absolute_error(preds, y)),
        "r2": float(m.r2_score(preds, y)),
    }


def run_training(
    cfg: dict[str, Any],
    data: Prepared | None = None,
    initial_state: dict[str, Any] | None = None,
    extra_callbacks: list[Any] | None = None,
    resume_from: str | Path | None = None,
) -> RunResult:
    """Train once as ``cfg`` says; ``initial_state`` makes several runs start from identical weights."""
    from . import backend
    from .distributed import is_main, launched_size
    from .train import callbacks as cb
    from .train import fit

    world_size = launched_size() or 1
    if world_size > 1:  # started by mpiexec/srun: data-parallel over the job's ranks
        from . import distributed as dist

        dist.init()
        dist.check_same_config(cfg, ignore=("out", "verbose"))  # only rank 0 writes and prints
        fit_fn: Any = dist.fit
    else:
        fit_fn = fit
    backend.manual_seed(cfg["seed"])
    data = prepare(cfg) if data is None else data
    model = build_model(cfg, data.n_features, data.n_outputs, data.image_shape)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    loss_fn = build_loss(cfg, data.task)
    optimizer = build_optimizer(cfg, model.parameters())
    optimizer_lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    bs = batch_size_of(cfg)
    # batch_size is per process: an update sees batch_size * world_size samples (see docs/distributed.md)
    steps = math.ceil(len(data.X_train) / (bs * world_size)) if bs else 1
    scheduler = build_scheduler(cfg, optimizer, steps)
    has_val = data.X_val is not None
    callbacks: list[Any] = [cb.DivergenceGuard()]
    if cfg["patience"] > 0:
        callbacks.append(
            cb.EarlyStopping(
                monitor="val_loss" if has_val else "loss", patience=cfg["patience"], restore_best_weights=True
            )
        )
    if cfg["target_loss"] > 0:
        callbacks.append(cb.StopAtLoss(cfg["target_loss"], monitor="val_loss" if has_val else "loss"))
    if cfg["max_time"] > 0:
        callbacks.append(cb.MaxTime(cfg["max_time"]))
    from .train.diagnostics import GradientDiagnostics

    gradients = GradientDiagnostics(every_n_batches=10)
    callbacks.append(gradients)
    callbacks += extra_callbacks or []
    metrics = ["accuracy"] if data.task == "classification" else ["mae"]
    pre = data.preprocess
    validation = None
    if data.X_val is not None and data.y_val is not None:
        validation = training_data(data.X_val, model_targets(data.y_val, pre))
    start = time.perf_counter()
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # kept for the report, shown once below
        warnings.simplefilter("always", RuntimeWarning)
        history = fit_fn(
            model,
            loss_fn,
            optimizer,
            training_data(data.X_train, model_targets(data.y_train, pre)),
            validation=validation,
            epochs=cfg["epochs"],
            batch_size=bs,
            metrics=metrics,
            callbacks=callbacks,
            scheduler=scheduler,
            verbose=cfg["verbose"],
            seed=cfg["seed"],
            resume_from=resume_from,
        )
    seconds = time.perf_counter() - start
    results: dict[str, Any] = {"test_" + k: v for k, v in score_model(model, data, data.X_test, data.y_test).items()}
    final = {k: (v[-1] if v else None) for k, v in history.as_dict().items() if isinstance(v, list)}
    results.update({"final_" + k: v for k, v in final.items() if k in ("loss", "val_loss")})
    scaler = data.preprocess.get("target_scaler")
    if scaler:  # the logged losses are not in the data's units: say in which they are
        mean = ", ".join(f"{v:.6g}" for v in np.ravel(scaler["mean"]))
        std = ", ".join(f"{v:.6g}" for v in np.ravel(scaler["scale"]))
        results["loss_units"] = f"standardized target (training split mean {mean}, standard deviation {std})"
    results["epochs"] = len(history.as_dict().get("loss", []))
    results["seconds"] = round(seconds, 3)
    # batch_size in the config is per process: the run must say how many processes shared an update
    results["processes"] = world_size
    stop_reason = getattr(history, "stop_reason", None) or f"reached the epoch limit ({cfg['epochs']})"
    notes = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)))
    scale_note = _target_scale_note(data, history)
    if scale_note:  # the loss is large because of the target's units: learning-rate advice would mislead
        notes = [scale_note] + [n for n in notes if "learning rate" not in n]
    notes = list(data.notes) + notes
    if cfg["verbose"] and (world_size == 1 or is_main()):  # under mpiexec: rank 0 only
        for note in notes:
            print(f"warning: {note}")
    used = resolved_config(cfg, data, optimizer_lr, loss_fn)
    return RunResult(used, history, results, stop_reason, seconds, model, data, diagnostics=notes, gradients=gradients)


def _target_scale_note(data: Prepared, history: Any) -> str:
    """Plain words when a regression loss is large because the target is in large units."""
    if data.task != "regression" or data.preprocess.get("target_scaler"):
        return ""
    std = float(np.asarray(data.y_train, np.float64).std())
    losses = [v for v in history.as_dict().get("loss", []) if v is not None and math.isfinite(v)]
    if std < 100 or (losses and min(losses) < 1e3):
        return ""
    return (
        f"the target is in large units (standard deviation {std:.3g}), so the mean squared error is of order "
        f"{std**2:.1g} and its gradients are huge: the loss is large because of the target's scale, not the "
        "learning rate. Standardize the target (the default: drop --no-scale-target)"
    )


def resolved_config(cfg: dict[str, Any], data: Prepared, lr: float | None, loss_fn: Any) -> dict[str, Any]:
    """The settings a run actually used, for config.toml and the report: defaults resolved (the
    learning rate, momentum, task, loss, target column) and settings that do not apply left out
    (e.g. ``channels`` for an MLP, ``momentum`` for Adam). Loading it repeats the run."""
    used = dict(cfg)
    used["task"] = data.task
    used["loss"] = {"CrossEntropyLoss": "cross_entropy", "MSELoss": "mse", "L1Loss": "l1", "HuberLoss": "huber"}.get(
        type(loss_fn).__name__, cfg["loss"]
    )
    if lr is not None:
        used["lr"] = float(lr)
    name = cfg["optimizer"]
    if name in ("momentum", "nesterov"):
        used["momentum"] = cfg["momentum"] or 0.9
    elif name not in ("sgd", "rmsprop"):
        used.pop("momentum", None)
    if cfg["model"] != "cnn":
        used.pop("channels", None)
    if cfg["model"] == "linear":
        for key in ("hidden", "activation", "dropout", "batchnorm"):
            used.pop(key, None)
    for key in ("clip_norm", "target_loss", "max_time"):  # 0 means off
        if not used.get(key):
            used.pop(key, None)
    if data.task != "regression":
        used.pop("scale_target", None)
    file_source = is_file_source(cfg["data"])
    if file_source and cfg["data"].lower().endswith(".csv"):
        used["target"] = data.target_name or cfg["target"]
        if not used.get("drop"):
            used.pop("drop", None)
    else:
        for key in ("target", "drop", "max_categories"):
            used.pop(key, None)
    if not file_source:
        used.pop("missing", None)
    used.pop("verbose", None)
    return used


def run_state(result: RunResult) -> dict[str, Any]:
    """What a run directory's ``model.ds`` holds: weights, the settings used, what the data looked like
    (task, sizes, class and feature names), the fitted preprocessing (``encoder``, ``imputer``,
    ``standardizer``, ``target_scaler``, each a plain state dict) and the split (test rows' indices,
    hashes of the training rows)."""
    data = result.data
    return {
        "model": result.model.state_dict(),
        "config": result.cfg,
        "task": data.task,
        "n_features": data.n_features,
        "n_outputs": data.n_outputs,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "class_names": data.class_names,
        "feature_names": data.feature_names,
        "preprocess": data.preprocess,
        "split": data.split,
    }


_ARCHITECTURE = {
    "mlp": ("hidden", "activation", "dropout", "batchnorm"),
    "cnn": ("hidden", "activation", "dropout", "batchnorm", "channels"),
    "linear": (),
}


def model_from_state(state: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """The trained model of a run's loaded ``model.ds`` and its state, checked: a training checkpoint
    or a file missing what the model needs is a one-line :class:`ConfigError` naming ``where``."""
    from .train.fit import CHECKPOINT_KIND

    if not isinstance(state, dict):
        raise ConfigError(f"{where}: not a run's model file (expected a dict of arrays and settings)")
    if state.get("kind") == CHECKPOINT_KIND:
        raise ConfigError(
            f"{where}: this is a training checkpoint of fit (epoch {state.get('epoch')}), not a run's model file; "
            "evaluate and predict take a run directory written by 'downslope train'"
        )
    lacking = [k for k in ("model", "config", "task", "n_features", "n_outputs") if k not in state]
    if lacking:
        raise ConfigError(f"{where}: not a run's model file; it lacks {lacking} (written by 'downslope train'?)")
    raw = state["config"]
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the stored config is not a table of settings")
    kind = raw.get("model", DEFAULTS["model"])
    needed = [k for k in ("model", *_ARCHITECTURE.get(kind, ())) if k not in raw]
    if needed:
        raise ConfigError(
            f"{where}: the stored config lacks {needed}, which the model's architecture needs; retrain the run"
        )
    from .checkpoint_checks import check_run_state

    state = dict(state)
    state.setdefault("preprocess", {})
    state.setdefault("class_names", [])
    state.setdefault("image_shape", None)
    state.setdefault("split", {})
    if state["task"] not in ("classification", "regression"):
        raise ConfigError(f"{where}: unknown task {state['task']!r}")
    # the stored config passes the user-config validation (and is replaced by its normalized form) and
    # the parameter shapes it implies match the stored arrays, before any layer is allocated
    check_run_state(state, where)
    cfg = state["config"]
    shape = tuple(state["image_shape"]) if state["image_shape"] else None
    model = build_model(cfg, int(state["n_features"]), int(state["n_outputs"]), shape)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
