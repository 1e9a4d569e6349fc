"""What several subcommands share: the settings from flags and a config file, and default run names."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _read_config(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The --config file's settings and text, read once per command: a pipe (--config <(...)) can be
    read only once, and a second reading would find it empty."""
    from ..experiment.config import read_toml

    found = getattr(args, "_config_read", None)
    if found is None:
        found = read_toml(args.config)
        args._config_read = found
    return found


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from ..experiment import DEFAULTS, normalize_config

    raw: dict[str, Any] = {}
    source = "command line"
    if getattr(args, "config", None):
        settings, text = _read_config(args)
        source = f"{args.config} + command line"
        raw = dict(normalize_config(settings, args.config, text=text))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            raw[key] = value
    return normalize_config(raw, source)


def _batch_size_given(args: argparse.Namespace) -> bool:
    """Whether --batch-size or the --config file set the batch size (left out, gd runs full-batch)."""
    from ..experiment.config import SECTIONS

    if getattr(args, "batch_size", None) is not None:
        return True
    if not getattr(args, "config", None):
        return False
    settings, _ = _read_config(args)
    sections = [v for k, v in settings.items() if k in SECTIONS and isinstance(v, dict)]
    return "batch_size" in settings or any("batch_size" in v for v in sections)


def _default_stem(cfg: dict[str, Any], kind: str = "", with_optimizer: bool = True) -> str:
    from ..data.tabular import csv_suffix

    name = Path(cfg["data"]).name
    suffix = csv_suffix(name)  # the whole ending of "my.csv.gz", not just ".gz"
    stem = name[: -len(suffix)] if suffix else Path(name).stem
    return kind + stem + (f"-{cfg['optimizer']}" if with_optimizer else "")
