"""Precision/recall/F1 with many classes: downslope's per-class counts (one pass over the samples, each
(predicted, true) pair counted by ``bincount``) against scikit-learn's ``f1_score(average='macro')`` and the
way it was (one comparison of the whole array per class, O(N * C)). N labels of C classes (C = 10 ... 1000),
given as labels; the values are checked to agree first.

Peers run in one process on the same data, taking turns (``_common.interleaved``: the first one rotating,
after two warm-up calls each), one thread; each line is the median CPU seconds of one call. Run:
python benchmarks/metrics_confusion.py [--quick]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np


def _per_class_loop(pred: np.ndarray, y: np.ndarray) -> float:
    """Macro F1 counted one class at a time (the former algorithm), for the comparison."""
    classes = np.union1d(pred, y)
    tp = np.array([np.sum((pred == c) & (y == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(pred == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
    den = predicted + actual
    return float(np.mean(np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)))


def main() -> None:
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 1_000_000
    class_counts = (10, 100) if quick else (10, 100, 1000)
    repeats = 1 if quick else 3
    import sklearn.metrics as skm

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import blas_report, cpu_model, interleaved

    from downslope.train.metrics import f1_score

    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_model()}; 1 thread")
    print(blas_report())
    print(f"{n:,} labels; macro F1; median CPU s per call")
    print(f"{'classes':>8} {'downslope':>10} {'sklearn':>10} {'per-class':>10} {'ds/sklearn':>11} {'per-class/ds':>13}")
    for classes in class_counts:
        y, pred = rng.integers(0, classes, n), rng.integers(0, classes, n)
        peers = {
            "downslope": lambda p=pred, t=y: f1_score(p, t, average="macro"),
            "sklearn": lambda p=pred, t=y: skm.f1_score(t, p, average="macro"),
            "per-class": lambda p=pred, t=y: _per_class_loop(p, t),
        }
        values = [peers[k]() for k in peers]
        assert np.allclose(values, values[0], rtol=1e-12), values
        t = interleaved(peers, slices=repeats, steps=1)
        print(f"{classes:>8} {t['downslope']:>10.3f} {t['sklearn']:>10.3f} {t['per-class']:>10.3f} "
              f"{t['downslope'] / t['sklearn']:>10.2f}x {t['per-class'] / t['downslope']:>12.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
