"""Pictures of gradient descent: loss curves, fitted lines, decision boundaries, optimizers on
loss surfaces, and a self-contained HTML run report.

matplotlib is optional (``pip install downslope[plot]``) and is imported only when a plot is
drawn; every plot function returns the matplotlib Figure and saves it when ``save_path`` is given.
The figures are made outside pyplot (headless, nothing to leak), so ``plt.show()`` does not know
them: ``viz.show(fig)`` shows one in a window under an interactive backend.
Names are loaded on first use, so ``import downslope.viz`` is cheap.

Example:
    >>> from downslope import viz
    >>> fig = viz.plot_loss_curves({"loss": [1.0, 0.6, 0.5], "val_loss": [1.2, 0.8, 0.9]})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "plot_loss_curves": "curves",
    "plot_learning_rate": "curves",
    "plot_gradient_norms": "curves",
    "plot_compare": "curves",
    "history_to_dict": "curves",
    "best_epoch_index": "curves",
    "per_layer_series": "curves",
    "plot_regression": "regression",
    "plot_regression_fit": "regression",
    "plot_decision_boundary": "boundary",
    "class_probabilities": "boundary",
    "Surface": "testfunctions",
    "SURFACES": "testfunctions",
    "get_surface": "testfunctions",
    "OptimizerPath": "landscape",
    "optimizer_paths": "landscape",
    "default_optimizers": "landscape",
    "plot_landscape": "landscape",
    "animate_landscape": "landscape",
    "named_optimizers": "landscape",
    "run_landscape": "landscape",
    "write_report": "report",
    "render_report": "report",
    "png_bytes": "_mpl",
    "show": "_mpl",
}


# The submodules, loaded as attributes on first use (``viz.landscape.run_landscape``), as after an import
# of ``downslope.viz.landscape``; none of them imports matplotlib when it is loaded.
_SUBMODULES = ("curves", "regression", "boundary", "testfunctions", "landscape", "report")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # the import binds it in this namespace
    raise AttributeError(f"module 'downslope.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))


__all__ = list(_EXPORTS)
