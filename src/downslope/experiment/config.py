"""A run's settings: defaults, valid choices, validation of a flat config, TOML in and out."""

from __future__ import annotations

import codecs
import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ConfigError

DEFAULTS: dict[str, Any] = {
    # data
    "data": "digits",
    "target": "",
    "task": "auto",
    "test_split": 0.2,
    "val_split": 0.15,
    # random: rows shuffled (seeded) into train/validation/test; ordered: file order, the last rows are
    # the test rows and the ones before them validation (time-ordered data is scored on its future)
    "split": "random",
    "standardize": True,
    "scale_target": True,  # regression: standardize the target on the training split (undone for outputs)
    "missing": "error",  # files: error | drop | mean | median | most_frequent | constant
    "drop": [],  # CSV columns to leave out
    "categorical": [],  # CSV columns read as categories (one-hot) whatever they hold
    "numeric": [],  # CSV columns read as numbers (digit codes with leading zeros included)
    "sep": ",",  # CSV field separator: one character, or "tab"
    "decimal": ".",  # CSV numbers' decimal mark: "." or "," (pandas' decimal=)
    "thousands": "",  # CSV numbers' thousands separator: "", ",", ".", " ", "'" or "_" (pandas' thousands=)
    "max_categories": 100,  # CSV: text columns with more distinct values are refused
    # CSV/Parquet text: the cells read as missing values. None (left out): pandas' default markers (NA, N/A,
    # null, nan, ...) and a few more (?, none); a list replaces them (pandas' na_values with
    # keep_default_na=False): [] leaves only empty cells missing, so Namibia's country code NA stays a value.
    # Matched without case or surrounding spaces; an empty cell and 'nan' are always missing. Kept for predict
    "na_values": None,
    # CSV: the first line names the columns; false: it is data, the columns are col_0 .. col_{n-1} (pandas'
    # header=None numbers them 0 .. n-1; a name that is not a number reads as one in --target and --drop)
    "header": True,
    # classification: labels that differ only in case or surrounding spaces (yes, Yes , YES) are one class,
    # named by its most frequent spelling
    "merge_label_variants": False,
    # classification: "balanced" weights each class n_samples / (n_classes * count) in the loss
    # (scikit-learn's class_weight="balanced"), counted on the training split
    "class_weight": "none",
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
    "lr": None,  # None (left out): the optimizer's own default (0.01 for gd/sgd/momentum/nesterov)
    "momentum": None,  # None (left out): 0.9 for momentum/nesterov, 0 for sgd/rmsprop
    "weight_decay": 0.0,
    "clip_norm": 0.0,
    "schedule": "none",
    "batch_size": "64",  # left out: "full" for the optimizer gd
    "epochs": 100,
    "patience": 10,  # left out: 0 for the schedules of SPANS_EPOCHS
    "target_loss": 0.0,
    "max_time": 0.0,
    "seed": 0,
    "device": "cpu",  # cpu | cuda | cuda:N | auto (cuda when ds.cuda.is_available()); strict: the test stand-in
    "out": "",
    # the CLI's checkpoint.ckpt: written at most every this many seconds (always when training stops);
    # 0: after every epoch. A run recorded without it reads the default
    "checkpoint_seconds": 30.0,
    "verbose": 1,
}


CHOICES: dict[str, tuple[str, ...]] = {
    "missing": ("error", "drop", "mean", "median", "most_frequent", "constant"),
    "task": ("auto", "classification", "regression"),
    "split": ("random", "ordered"),
    "class_weight": ("none", "balanced"),
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


#: The learning-rate schedules whose shape spans all the epochs (an early stop leaves them unfinished).
SPANS_EPOCHS = ("onecycle", "cosine")

SECTIONS = ("data", "model", "optimizer", "training", "output")

# Where a run trains. "strict" (the CPU stand-in for a GPU, for tests) is accepted but not advertised.
DEVICES = ("cpu", "cuda", "auto")


def _check_device(value: str, where: str = "") -> None:
    name, _, index = value.partition(":")
    if (value in (*DEVICES, "strict")) or (name == "cuda" and index.isdigit()):
        return
    raise ConfigError(f"{where}unknown device {value!r}; choose one of: {', '.join(DEVICES)} (or cuda:N for GPU N)")


def check_separator(value: str, where: str = "sep") -> str:
    """A CSV field separator as given in a config or on the command line: one character, or ``tab``.

    Example:
        >>> check_separator(";"), check_separator("tab") == chr(9)
        (';', True)
    """
    if value.lower() in ("tab", "\\t"):
        return "\t"
    if len(value) != 1 or value in '"\r\n' or value.isalnum():
        raise ConfigError(
            f"{where}: bad CSV separator {value!r}; expected one character such as ',', ';' or '|', or 'tab'"
        )
    return value


def resolve_run_device(value: str) -> str:
    """The device a run trains on: ``auto`` is ``cuda`` when a GPU is usable, else ``cpu``; asking for
    ``cuda`` where none is usable is a one-line ConfigError naming the extra to install.

    Example:
        >>> resolve_run_device("cpu")
        'cpu'
    """
    from ..device import cuda

    if value == "auto":
        return "cuda" if cuda.is_available() else "cpu"
    if value.startswith("cuda") and not cuda.is_available():
        raise ConfigError(
            f"device {value!r}: no CUDA GPU is usable here (CuPy is not installed or sees no GPU); install the "
            'extra with pip install "downslope[cuda]" on a machine with an NVIDIA GPU, or use --device cpu '
            "(or auto: the GPU when there is one)"
        )
    return value


# The config keys each model architecture is built from: a stored run lacking one cannot be rebuilt as
# trained (a default filled in would build another architecture).
ARCHITECTURE_KEYS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", "activation", "dropout", "batchnorm"),
    "cnn": ("hidden", "activation", "dropout", "batchnorm", "channels"),
    "linear": (),
}


def _check_choice(key: str, value: Any, where: str = "") -> None:
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{where}unknown {key} {value!r}; choose one of: {', '.join(CHOICES[key])}")


def _is_bool(value: Any) -> bool:
    """A boolean, Python's or NumPy's (a stored config read back may hold one)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def _kind(value: Any) -> str:
    """How a value reads in an error message: ``true (a boolean)``, ``1.9 (a number)``."""
    if _is_bool(value):
        return f"{str(bool(value)).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, numbers.Real):
        return f"{value!r} (a number)"
    if isinstance(value, (list, tuple)):
        return f"{list(value)!r} (a list)"
    if isinstance(value, dict):
        return "a table"
    return f"{value!r} (a {type(value).__name__})"


def _strict_int(value: Any) -> int:
    """An integer setting: an integer, or a number with no fractional part (never a boolean, never truncated)."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise ArgumentError("expected an integer")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not math.isfinite(float(value)) or not float(value).is_integer():
        raise ArgumentError("expected an integer (it would not be rounded)")
    return int(float(value))


def _sizes(value: Any) -> list[int]:
    if isinstance(value, str):  # from the command line: 128,64 ('' for none)
        parts = [v.strip() for v in value.split(",")] if value.strip() else []
        if "" in parts:  # '32,,16' is a typo, not [32, 16]: a list in a config file has no empty entry either
            raise ArgumentError("expected positive integers separated by commas, e.g. 128,64, with no empty entry")
        try:
            return [int(v) for v in parts]
        except ValueError:
            raise ArgumentError("expected positive integers, e.g. 128,64") from None
    if not isinstance(value, (list, tuple)):
        raise ArgumentError("expected a list of positive integers, e.g. [128, 64]")
    try:
        return [_strict_int(v) for v in value]
    except ArgumentError:
        raise ArgumentError("expected a list of positive integers, e.g. [128, 64]") from None


def key_lines(text: str) -> dict[str, int]:
    """The line (from 1) where each key of a TOML text is first set, found by scanning the text
    (tomllib gives no positions): ``key = ...`` or ``"key" = ...``, in any table.

    Example:
        >>> key_lines('data = "iris"\\n[model]\\nhidden = [8]\\n')
        {'data': 1, 'hidden': 3}
    """
    lines: dict[str, int] = {}
    pattern = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        match = pattern.match(line)
        if match:
            lines.setdefault(next(g for g in match.groups() if g is not None), number)
    return lines


#: Settings whose default is None (left out: the optimizer's own value); given, they are numbers.
OPTIONAL_NUMBERS = ("lr", "momentum")
#: Settings that are None when left out and are no numbers (TOML has no null: such a setting is not written).
OPTIONAL_SETTINGS = ("na_values",)


def normalize_config(
    raw: dict[str, Any], source: str = "config", *, text: str | None = None, stored: bool = False
) -> dict[str, Any]:
    """Validate a flat config (sections [data], [model], ... are flattened) and fill in defaults.

    ``stored``: the config was written by a run (its config.toml, its model file), where ``lr = 0.0``
    is how an older downslope wrote "the optimizer's default" (read as left out); given by a user, a
    learning rate must be positive.

    Types are strict: a boolean is not a number (``epochs = true`` is refused), a number is not a
    boolean (``standardize = 0``), a fraction is never truncated to an integer (``hidden = [1.9]``);
    an integer is accepted where a float is expected. ``text``, the file's text, lets errors name the
    line of the key (``c.toml, line 2: epochs: ...``).

    Example:
        >>> normalize_config({"epochs": True}, "c.toml")
        Traceback (most recent call last):
        ...
        downslope.errors.ConfigError: c.toml: epochs: expected an integer, got true (a boolean)
    """
    lines = key_lines(text) if text is not None else {}

    def where(key: str) -> str:
        return f"{source}, line {lines[key]}: {key}" if key in lines else f"{source}: {key}"

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
        if (key in OPTIONAL_NUMBERS or key in OPTIONAL_SETTINGS) and value is None:  # left out (normalized before)
            cfg[key] = None
            continue
        try:
            if key == "na_values":
                value = na_values(value)
                cfg[key] = value
                continue
            if key == "hidden" or key == "channels":
                value = _sizes(value)
                if any(v <= 0 for v in value):
                    raise ArgumentError("sizes must be positive")
            elif key in ("drop", "categorical", "numeric"):
                if isinstance(value, str):
                    value = value.split(",")
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise ArgumentError('expected column names, e.g. id,name or ["id", "name"]')
                value = [v.strip() for v in value if v.strip()]
            elif key == "batch_size":
                if _is_bool(value) or not isinstance(value, (str, numbers.Integral)):
                    raise ArgumentError("expected a positive integer or 'full'")
                value = str(value).strip().lower()
                if value not in ("full", "none") and (not value.isdigit() or int(value) <= 0):
                    raise ArgumentError("expected a positive integer or 'full'")
            elif isinstance(default, bool):
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ArgumentError("expected true or false")
                    value = value.lower() in ("true", "1", "yes")
                elif not _is_bool(value):
                    raise ArgumentError("expected true or false")
                value = bool(value)
            elif isinstance(default, int):
                value = _strict_int(value)
            elif isinstance(default, float) or key in OPTIONAL_NUMBERS:
                if _is_bool(value) or not isinstance(value, numbers.Real):
                    raise ArgumentError("expected a number")
                value = float(value)
                if not math.isfinite(value):
                    raise ArgumentError("expected a finite number")
            elif not isinstance(value, str):
                raise ArgumentError("expected a string (in quotes)")
        except ArgumentError as exc:
            raise ConfigError(f"{where(key)}: {exc}, got {_kind(value)}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{where(key)}: bad value {_kind(value)} ({exc})") from None
        _check_choice(key, value, f"{where(key)}: ")
        if key == "device":
            value = value.strip().lower()
            _check_device(value, f"{where(key)}: ")
        if key == "sep":
            value = check_separator(value, where(key))
        if key == "thousands" and value.lower() in ("none", "space"):
            value = {"none": "", "space": " "}[value.lower()]
        if key == "out" and value.startswith("~"):
            value = os.path.expanduser(value)  # as a shell would: "~/runs/x" is never a directory named ~
        cfg[key] = value
    if cfg["seed"] < 0:
        raise ConfigError(f"{where('seed')} must be >= 0, got {cfg['seed']}")
    if "patience" not in flat and cfg["schedule"] in SPANS_EPOCHS:
        # the schedule is shaped over all the epochs: early stopping only when asked for by --patience
        cfg["patience"] = 0
    if "batch_size" not in flat and cfg["optimizer"] == "gd":
        # "gd" reads as full-batch gradient descent: mini-batches only when a batch size is given
        cfg["batch_size"] = "full"
    if stored and cfg["lr"] == 0.0:
        cfg["lr"] = None
    if cfg["lr"] is not None and cfg["lr"] <= 0:
        nothing = " (a learning rate of 0 trains nothing)" if cfg["lr"] == 0 else ""
        raise ConfigError(
            f"{where('lr')} must be > 0{nothing}, got {cfg['lr']}; leave it out for the optimizer's default"
        )
    if stored and cfg["patience"] < 0:
        cfg["patience"] = 0  # recorded by a version that took a negative patience, which behaved as off
    if cfg["patience"] < 0:  # 0 is off; a negative count of epochs means nothing
        raise ConfigError(f"{where('patience')} must be >= 0 (0: no early stopping), got {cfg['patience']}")
    for key in ("momentum", "weight_decay", "clip_norm", "dropout", "target_loss", "max_time", "checkpoint_seconds"):
        if cfg[key] is not None and cfg[key] < 0:
            raise ConfigError(f"{where(key)} must be >= 0, got {cfg[key]}")
    if not 0 <= cfg["dropout"] < 1:
        raise ConfigError(f"{where('dropout')} must be in [0, 1), got {cfg['dropout']}")
    if cfg["epochs"] < 1:
        raise ConfigError(f"{where('epochs')} must be >= 1, got {cfg['epochs']}")
    if cfg["epochs"] > MAX_EPOCHS:  # stored as int64 in the history and checkpoints; none runs this long
        raise ConfigError(
            f"{where('epochs')} must be at most {MAX_EPOCHS}, got {cfg['epochs']}; to train until a stopping rule "
            "ends the run, give a large count with --patience, target_loss or max_time"
        )
    if (cfg["decimal"], cfg["thousands"]) != (".", ""):
        from ..data.csvfile import check_number_format

        try:
            check_number_format(cfg["decimal"], cfg["thousands"])
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if cfg["max_categories"] < 1:
        raise ConfigError(f"{where('max_categories')} must be >= 1, got {cfg['max_categories']}")
    if not 0 < cfg["test_split"] < 1:  # the run is scored (and evaluate scores it) on its test rows
        raise ConfigError(f"{where('test_split')} must be a fraction in (0, 1), got {cfg['test_split']}")
    if not 0 <= cfg["val_split"] < 1:
        raise ConfigError(f"{where('val_split')} must be a fraction in [0, 1), got {cfg['val_split']}")
    if cfg["test_split"] + cfg["val_split"] >= 1:
        raise ConfigError(
            f"{source}: test_split + val_split must leave rows to train on (sum < 1), got "
            f"{cfg['test_split']} + {cfg['val_split']}"
        )
    return cfg


def na_values(value: Any) -> list[str]:
    """The cells of a ``na_values`` setting: a comma-separated string (``--na-values "?,n/a"``) or a list of
    strings, stripped; empty ones left out (an empty cell is always missing), so ``""`` is ``[]``: only
    empty cells are missing.

    Example:
        >>> na_values("?, n/a"), na_values(""), na_values(["NULL", " "])
        (['?', 'n/a'], [], ['NULL'])
    """
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ArgumentError(
            'expected the cells read as missing, e.g. "?,n/a" or ["?", "n/a"] ("" for none but empty cells)'
        )
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def to_toml(cfg: dict[str, Any]) -> str:
    """Write a flat config as TOML (strings, numbers, booleans and lists of ints only); a setting that is
    None (left out: its default) is not written, TOML having no null."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    return "".join(f"{k} = {value(v)}\n" for k, v in cfg.items() if v is not None)


def load_toml(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file, or a one-line ConfigError naming the file (missing, not UTF-8,
    malformed, or nested too deeply to read)."""
    return read_toml(path)[0]


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """The settings of a TOML file and its text (for :func:`normalize_config`'s line numbers)."""
    import tomllib

    from ..serialization import read_small_file

    p = Path(path)
    if not os.path.exists(p):
        raise ConfigError(f"no such config file: {p}")
    try:
        # A pipe reached through a file descriptor (the shell's --config <(...), /dev/stdin) is read: the
        # user passed it on purpose and its writer is running. A named FIFO elsewhere, or a device, is
        # refused in one line: with no writer, reading it would wait forever.
        data = read_small_file(p, CONFIG_LIMIT, "a config file", pipes=_is_descriptor_path(p))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ConfigError(f"{exc} (a config file must be a regular file, or a pipe such as --config <(...))") from None
    if data.startswith(codecs.BOM_UTF8):  # Windows Notepad's "UTF-8": the mark is no part of the TOML
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x}); a config file must be saved as UTF-8"
        ) from None
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: malformed TOML: {exc}") from None
    except RecursionError:  # arrays or tables nested thousands deep (a crafted file)
        raise ConfigError(f"{p}: malformed TOML: nested too deeply to read") from None
    _refuse_nul(settings, text, p)
    return settings, text


#: The most epochs a run may ask for (a 32-bit count: ample for any run, and far from int64's end).
MAX_EPOCHS = 2**31 - 1

#: The most bytes a config file may hold (one is a few hundred): a device or a runaway pipe is not read on.
CONFIG_LIMIT = 1 << 20


def _is_descriptor_path(p: Path) -> bool:
    """Whether ``p`` names an open file descriptor (/dev/fd/N, /dev/stdin, /proc/self/fd/N): what the
    shell's process substitution gives."""
    text = os.path.abspath(p)
    return (
        text in ("/dev/stdin",)
        or text.startswith(("/dev/fd/", "/proc/self/fd/"))
        or bool(re.match(r"/proc/\d+/fd/", text))
    )


def _refuse_nul(settings: Any, text: str, p: Path, key: str = "") -> None:
    """A NUL character in a string setting (no path or name may hold one) refused naming the key, its
    line and the file, rather than a bare "embedded null byte" when the value is used."""
    if isinstance(settings, dict):
        for k, v in settings.items():
            _refuse_nul(v, text, p, f"{key}.{k}" if key else str(k))
    elif isinstance(settings, list):
        for v in settings:
            _refuse_nul(v, text, p, key)
    elif isinstance(settings, str) and "\0" in settings:
        name = key.rsplit(".", 1)[-1]
        found = re.search(rf"^[ \t]*[\"']?{re.escape(name)}[\"']?[ \t]*=", text, re.MULTILINE)
        line = f", line {text.count(chr(10), 0, found.start()) + 1}" if found else ""
        raise ConfigError(
            f"{p}{line}: {key} holds a NUL character (\\u0000 or \\x00), which no path or name may hold; remove it"
        )
