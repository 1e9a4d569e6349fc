"""A run's inputs read back for ``evaluate``, ``predict`` and ``export``: the reading lives in
:mod:`downslope.experiment.features` (``TrainedRun.predict`` uses it too, for rows in memory); these
are the names the command line's modules use, imported lazily so that ``downslope --help`` stays quick."""

from __future__ import annotations

from typing import Any


def _raw_features(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A run's inputs read back, encoded but not scaled (:func:`downslope.experiment.features.raw_features`)."""
    from ..experiment.features import raw_features

    return raw_features(*args, **kwargs)


def _features_for(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A run's model inputs, as ``TrainedRun.predict`` reads them (:func:`downslope.experiment.features.run_features`)."""
    from ..experiment.features import run_features

    return run_features(*args, **kwargs)
