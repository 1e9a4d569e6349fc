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
    for key in ("test_split", "val_split"):
        if not 0 <= cfg[key] < 1:
            raise ConfigError(f"{source}: {key} must be a fraction in [0, 1), got {cfg[key]}")
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


def load_table(cfg: dict[str, Any]) -> tuple[Any, Any]:
    from .data import datasets
    from .data.tabular import read_table

    source = cfg["data"]
    task = None if cfg["task"] == "auto" else cfg["task"]
    if Path(source).suffix.lower() in (".csv", ".npz", ".npy"):
        return read_table(source, target=cfg["target"] or None, task=task)
    table = datasets.load(source, seed=cfg["seed"])
    if task is not None and task != table.task:
        raise ConfigError(f"dataset {source!r} is a {table.task} task, but task={task!r} was asked for")
    return table, None


def prepare(cfg: dict[str, Any]) -> Prepared:
    from .data import train_test_split
    from .data.datasets import Standardizer

    table, encoder = load_table(cfg)
    classify = table.task == "classification"
    X, y = table.X, table.y
    if len(X) < 10:
        raise ConfigError(f"{table.name}: only {len(X)} samples; need at least 10 to split into train/validation/test")
    stratify = y if classify and np.bincount(y).min() >= 2 else None
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=cfg["test_split"] or 0.2, stratify=stratify, seed=cfg["seed"]
    )
    X_val = y_val = None
    if cfg["val_split"] > 0:
        strat_rest = y_rest if stratify is not None and np.bincount(y_rest).min() >= 2 else None
        frac = cfg["val_split"] / (1 - (cfg["test_split"] or 0.2))
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=frac, stratify=strat_rest, seed=cfg["seed"] + 1
        )
    else:
        X_train, y_train = X_rest, y_rest
    preprocess: dict[str, Any] = {"encoder": encoder.state_dict() if encoder is not None else None}
    if cfg["standardize"]:
        scaler = Standardizer().fit(X_train)  # training split only: no peeking at validation/test
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if X_val is not None:
            X_val = scaler.transform(X_val)
        preprocess["standardizer"] = scaler.state_dict()
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
    )


def apply_preprocess(X: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    from .data.datasets import Standardizer

    if preprocess.get("standardizer"):
        scaler = Standardizer()
        scaler.load_state_dict(preprocess["standardizer"])
        return scaler.transform(X)
    return np.asarray(X, dtype=np.float32)


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

    act = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "elu": nn.ELU,
    }[cfg["activation"]]
    layers: list[Any] = []
    if cfg["model"] == "linear":
        return nn.Sequential(nn.Linear(n_features, n_outputs))
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


def test_metrics(model: Any, data: Prepared, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from .train import metrics as m
    from .train import predict

    out = predict(model, X)
    preds = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
    if data.task == "classification":
        return {
            "accuracy": float(m.accuracy(preds, y)),
            "f1_macro": float(m.f1_score(preds, y)),
            "precision_macro": float(m.precision(preds, y)),
            "recall_macro": float(m.recall(preds, y)),
        }
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
    validation = (data.X_val, data.y_val) if has_val else None
    start = time.perf_counter()
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # kept for the report, shown once below
        warnings.simplefilter("always", RuntimeWarning)
        history = fit_fn(
            model,
            loss_fn,
            optimizer,
            (data.X_train, data.y_train),
            validation=validation,
            epochs=cfg["epochs"],
            batch_size=bs,
            metrics=metrics,
            callbacks=callbacks,
            scheduler=scheduler,
            verbose=cfg["verbose"],
            seed=cfg["seed"],
        )
    seconds = time.perf_counter() - start
    results = {"test_" + k: v for k, v in test_metrics(model, data, data.X_test, data.y_test).items()}
    final = {k: (v[-1] if v else None) for k, v in history.as_dict().items() if isinstance(v, list)}
    results.update({"final_" + k: v for k, v in final.items() if k in ("loss", "val_loss")})
    results["epochs"] = len(history.as_dict().get("loss", []))
    results["seconds"] = round(seconds, 3)
    # batch_size in the config is per process: the run must say how many processes shared an update
    results["processes"] = world_size
    stop_reason = getattr(history, "stop_reason", None) or f"reached the epoch limit ({cfg['epochs']})"
    notes = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)))
    if cfg["verbose"] and (world_size == 1 or is_main()):  # under mpiexec: rank 0 only
        for note in notes:
            print(f"warning: {note}")
    return RunResult(cfg, history, results, stop_reason, seconds, model, data, diagnostics=notes, gradients=gradients)
