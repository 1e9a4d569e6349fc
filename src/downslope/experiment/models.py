"""Building what a config names: the model, the loss, the optimizer and the learning-rate schedule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..optim.optimizer import Optimizer
from ..optim.protocols import SchedulerLike
from ..tensor import Tensor
from ..train.protocols import LossFn

if TYPE_CHECKING:
    from ..nn.module import Module


def _image_model_class() -> Any:
    from .. import nn

    class ImageModel(nn.Module):
        """Rows of flattened pixels (N, C*H*W) reshaped to images (N, C, H, W) for a CNN body."""

        def __init__(self, image_shape: tuple[int, ...], body: Any) -> None:
            super().__init__()
            self.image_shape = tuple(image_shape)
            self.body = body

        def forward(self, x: Any) -> Any:
            return self.body(x.reshape((x.shape[0],) + self.image_shape))

    return ImageModel


def ImageModel(image_shape: tuple[int, ...], body: Any) -> Module:  # noqa: N802 - reads like a class
    return _image_model_class()(image_shape, body)


def build_model(cfg: dict[str, Any], n_features: int, n_outputs: int, image_shape: tuple[int, ...] | None) -> Module:
    from .. import nn

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


def balanced_class_weights(y: Any, n_classes: int) -> Any:
    """scikit-learn's ``compute_class_weight("balanced")``: ``n_samples / (n_classes * count_c)``, over
    the classes present in ``y`` (a class absent from it gets weight 1; it never appears in the loss).

    Example:
        >>> balanced_class_weights([0, 0, 0, 1], 2).tolist()
        [0.6666666865348816, 2.0]
    """
    import numpy as np

    counts = np.bincount(np.asarray(y, dtype=np.int64).reshape(-1), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def build_loss(cfg: dict[str, Any], task: str, class_weights: Any = None) -> LossFn:
    """The loss a config names (``auto``: cross-entropy for classes, MSE for a regression);
    ``class_weights`` (one per class) weight the cross-entropy."""
    from .. import nn

    name = cfg["loss"]
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    if name == "cross_entropy" and task != "classification":
        raise ConfigError("loss 'cross_entropy' needs a classification task; this data is regression (try mse)")
    if name != "cross_entropy" and task == "classification":
        raise ConfigError(f"loss {name!r} is for regression; this data is classification (use cross_entropy)")
    if cfg.get("class_weight", "none") != "none" and task != "classification":
        raise ConfigError(f"class_weight {cfg['class_weight']!r} weights classes; this data is a regression")
    if name == "cross_entropy" and class_weights is not None:
        return nn.CrossEntropyLoss(weight=class_weights)
    return {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}[name]()


def build_optimizer(cfg: dict[str, Any], params: Iterable[Tensor]) -> Optimizer:
    from .. import optim

    name = cfg["optimizer"]
    kwargs: dict[str, Any] = {}
    if cfg["lr"] is not None:  # None: the optimizer's own default
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
        return optim.SGD(params, momentum=cfg["momentum"] or 0.0, **kwargs)
    if name in ("momentum", "nesterov"):
        momentum = 0.9 if cfg["momentum"] is None else cfg["momentum"]  # an explicit 0 is honoured
        return optim.SGD(params, momentum=momentum, nesterov=name == "nesterov", **kwargs)
    if name == "rmsprop" and cfg["momentum"]:
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


def build_scheduler(cfg: dict[str, Any], optimizer: Optimizer, steps_per_epoch: int) -> SchedulerLike | None:
    """Schedules step once per epoch, except onecycle and warmup which step per batch (see fit)."""
    from ..optim import lr_scheduler as sched

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
