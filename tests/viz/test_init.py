"""downslope.viz loads matplotlib only when a picture is drawn, and says how to install it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest


def test_importing_viz_does_not_import_matplotlib() -> None:
    code = (
        "import sys, downslope, downslope.viz, downslope.viz.curves, downslope.viz.landscape, "
        "downslope.viz.report, downslope.viz.boundary, downslope.viz.regression\n"
        "from downslope.viz import get_surface, optimizer_paths\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from downslope.viz import _mpl
    from downslope.viz.curves import plot_loss_curves

    # None in sys.modules makes `import matplotlib` raise ImportError, as when it is not installed.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install downslope\[plot\]"):
        _mpl.require_matplotlib()
    with pytest.raises(ImportError, match=r"pip install downslope\[plot\]"):
        plot_loss_curves({"loss": [1.0]})


def test_lazy_names() -> None:
    from downslope import viz

    assert callable(viz.plot_landscape) and "write_report" in dir(viz)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        viz.nope  # noqa: B018


def test_plots_do_not_use_pyplot() -> None:
    """Figures are built on an Agg canvas without pyplot (no global figure list, no GUI backend)."""
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from downslope.viz.curves import plot_loss_curves

    fig = plot_loss_curves({"loss": [1.0, 0.5]})
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert getattr(fig.canvas, "manager", None) is None  # not registered with pyplot


def test_submodules_are_attributes_loaded_on_first_use() -> None:
    code = (
        "import sys, downslope.viz as viz\n"
        "assert 'downslope.viz.landscape' not in sys.modules\n"
        "assert viz.landscape is sys.modules['downslope.viz.landscape']\n"
        "assert callable(viz.landscape.run_landscape) and callable(viz.curves.plot_loss_curves)\n"
        "assert {'curves', 'regression', 'boundary', 'testfunctions', 'landscape', 'report'} <= set(dir(viz))\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.host_only  # a plot reads its values on the host
def test_every_public_example_imports_what_it_calls(examples_failing_as_copied: Any) -> None:
    """help(...)'s examples run as copied: in an empty namespace, not the module's own."""
    pytest.importorskip("matplotlib")
    parts = ("curves", "regression", "boundary", "testfunctions", "landscape", "report", "_mpl")
    assert examples_failing_as_copied("downslope.viz", *(f"downslope.viz.{name}" for name in parts)) == []
