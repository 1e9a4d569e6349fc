"""viz.show: a figure made outside pyplot shown in a window (handed to a pyplot manager), and a warning,
not a failure, where no window can be shown."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")


def test_show_hands_the_figure_to_a_pyplot_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    from downslope import viz
    from downslope.viz import _mpl

    shown: list[object] = []
    monkeypatch.setattr(_mpl, "_interactive_backend", lambda: True)  # as under TkAgg or QtAgg
    monkeypatch.setattr(plt, "show", lambda block=None: shown.append(block))
    fig = viz.plot_loss_curves({"loss": [1.0, 0.5, 0.3]})
    before = set(plt.get_fignums())
    try:
        viz.show(fig)
        (number,) = set(plt.get_fignums()) - before
        manager = fig.canvas.manager
        assert manager is not None and manager.num == number
        assert manager.canvas.figure is fig  # the window draws this figure, not a blank one
        assert shown == [None]
        assert viz.png_bytes(fig)[1:4] == b"PNG"  # still renders (save_path, png_bytes) after being shown
    finally:
        plt.close("all")


def test_show_without_a_display_warns_and_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    from downslope import viz

    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    fig = viz.plot_loss_curves({"loss": [1.0, 0.5]})
    before = plt.get_fignums()
    with pytest.warns(UserWarning, match="backend 'agg' is non-interactive, so no window can be shown"):
        viz.show(fig)
    assert plt.get_fignums() == before and getattr(fig.canvas, "manager", None) is None
