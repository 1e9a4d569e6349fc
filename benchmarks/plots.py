"""Plot speed on long histories: ``viz.plot_loss_curves`` on one curve of 1,000,000 per-step losses (a list
of floats, as a History holds) against the same figure drawn with matplotlib directly (the line, the best
point and its vertical line, a log y axis, a legend), both rendered to the Agg canvas; and
``best_epoch_index`` on that list against ``np.argmin(np.asarray(list))``.

Peers run in one process on the same data, interleaved (the order rotating), one thread; each line is the
median wall time and the ratio is downslope's over the peer's. The best epoch is checked to agree first.
Run: python benchmarks/plots.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import numpy as np


def main() -> None:
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from downslope.viz import plot_loss_curves
    from downslope.viz.curves import best_epoch_index

    rng = np.random.default_rng(0)
    losses = (np.exp(-np.arange(n) / (n / 5)) + 0.01 * rng.random(n)).tolist()

    def ours() -> None:
        fig = plot_loss_curves({"loss": losses})
        fig.canvas.draw()

    def matplotlib_alone() -> None:
        fig = Figure(figsize=(5.0, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        values = np.asarray(losses)
        epochs = np.arange(1, n + 1)
        best = int(np.argmin(values))
        ax.plot(epochs, values, "-", lw=1.8, label="training")
        ax.plot([epochs[best]], [values[best]], "o", color="black")
        ax.axvline(epochs[best], ls=":", color="gray", label="best epoch")
        ax.set_yscale("log")
        ax.legend(loc="upper right")
        fig.canvas.draw()

    assert best_epoch_index(losses) == int(np.argmin(np.asarray(losses)))
    pairs = {
        "plot_loss_curves, drawn": (ours, matplotlib_alone),
        "best_epoch_index": (lambda: best_epoch_index(losses), lambda: int(np.argmin(np.asarray(losses)))),
    }
    print(f"{n:,} points, {repeats} interleaved rounds, median wall time")
    for name, (a, b) in pairs.items():
        a(), b()  # warm-up (imports, font cache)
        times: dict[str, list[float]] = {"downslope": [], "peer": []}
        for r in range(repeats):
            order = [("downslope", a), ("peer", b)][:: 1 if r % 2 == 0 else -1]
            for label, fn in order:
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
        ours_s, peer_s = statistics.median(times["downslope"]), statistics.median(times["peer"])
        print(f"{name:26s} downslope {ours_s:8.3f} s   peer {peer_s:8.3f} s   ratio {ours_s / peer_s:5.2f}x")


if __name__ == "__main__":
    main()
