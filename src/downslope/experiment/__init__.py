"""One training run from a flat config: data -> model -> optimizer -> fit -> run directory.

This is what ``downslope train`` (and ``compare``) run. Every choice is a plain config value, so a run
can be written to ``config.toml`` and repeated exactly (``downslope train --config RUN/config.toml``).

Modules: config (defaults, choices, validation, TOML), inputs (loading, splitting and preprocessing
the data), models (model, loss, optimizer and schedule from the config), run (``run_training``, the
scores and the state a run directory keeps).
"""

from __future__ import annotations

from .checks import check_run_state, expected_parameter_shapes
from .config import ARCHITECTURE_KEYS, CHOICES, DEFAULTS, SECTIONS, load_toml, normalize_config, to_toml
from .inputs import (
    Prepared,
    apply_preprocess,
    data_units,
    feature_offsets,
    is_file_source,
    load_table,
    model_targets,
    prepare,
    row_hashes,
    training_data,
)
from .models import (
    ImageModel,
    batch_size_of,
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
)
from .run import RunResult, model_from_state, resolved_config, run_state, run_training, score_model

__all__ = [
    "ARCHITECTURE_KEYS",
    "CHOICES",
    "DEFAULTS",
    "SECTIONS",
    "ImageModel",
    "Prepared",
    "RunResult",
    "apply_preprocess",
    "batch_size_of",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "check_run_state",
    "data_units",
    "expected_parameter_shapes",
    "feature_offsets",
    "is_file_source",
    "load_table",
    "load_toml",
    "model_from_state",
    "model_targets",
    "normalize_config",
    "prepare",
    "resolved_config",
    "row_hashes",
    "run_state",
    "run_training",
    "score_model",
    "to_toml",
    "training_data",
]
