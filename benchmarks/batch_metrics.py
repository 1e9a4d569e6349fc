"""The metrics so far in the batch logs (what a callback reading ``logs["auc"]`` after every batch gets): one
epoch of 20,000 binary scores in B batches (B = 10 ... 1000), AUC, F1 and average precision read after every
batch. 'running' feeds each metric one batch (counts, the Mann-Whitney statistic, the sorted scores);
'joined' is the way it was: the batches so far joined and the metric computed again at every read, whose
cost grows with B^2. scikit-learn's roc_auc_score + f1_score + average_precision_score, called once on the
whole epoch, is the scale. The values are checked to agree first.

Peers run in one process on the same data, taking turns (``_common.interleaved``: the first one rotating,
after two warm-up calls each), one thread; each line is the median CPU seconds per epoch. Run:
python benchmarks/batch_metrics.py [--quick]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np


def main() -> None:
    quick = "--quick" in sys.argv
    n = 2_000 if quick else 20_000
    batch_counts = (10, 100) if quick else (10, 50, 250, 1000)
    repeats = 1 if quick else 3
    import sklearn.metrics as skm

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import blas_report, cpu_model, interleaved

    from downslope.train.batch_logs import RunningMetrics
    from downslope.train.metrics import as_metric, logged_as

    rng = np.random.default_rng(0)
    scores = rng.random((n, 1)).astype(np.float32)
    labels = (rng.random(n) < scores[:, 0] * 0.8).astype(np.float32)
    running = [as_metric(name) for name in ("auc", "f1", "average_precision")]
    joined = []
    for metric in running:
        copy = logged_as(metric, metric.name + "_joined")
        copy.running = None  # the metric over the batches joined at every read
        joined.append(copy)

    def epoch(metrics, batches: int) -> list[float]:
        state = RunningMetrics(metrics)
        outputs, targets, last = [], [], []
        for p, t in zip(np.array_split(scores, batches), np.array_split(labels, batches)):
            outputs.append(p)
            targets.append(t)
            logs = state.update(outputs, targets)
            last = [float(logs[m.name]) for m in metrics]  # a callback reads each one
        return last

    def sklearn_once() -> list[float]:
        cut = (scores[:, 0] > 0.5).astype(int)
        return [skm.roc_auc_score(labels, scores[:, 0]), skm.f1_score(labels, cut),
                skm.average_precision_score(labels, scores[:, 0])]  # fmt: skip

    for batches in batch_counts:
        a, b = epoch(running, batches), epoch(joined, batches)
        assert a == b, (a, b)
        assert np.allclose(a, sklearn_once(), rtol=1e-6), (a, sklearn_once())
    print(f"CPU: {cpu_model()}; 1 thread")
    print(blas_report())
    print(f"{n:,} binary scores per epoch; AUC, F1, average precision read after every batch; median CPU s per epoch")
    print(f"{'batches':>8} {'running':>10} {'joined':>10} {'joined/running':>15} {'sklearn once':>13}")
    for batches in batch_counts:
        peers = {"running": lambda b=batches: epoch(running, b), "joined": lambda b=batches: epoch(joined, b),
                 "sklearn": sklearn_once}  # fmt: skip
        t = interleaved(peers, slices=repeats, steps=1)
        print(f"{batches:>8} {t['running']:>10.3f} {t['joined']:>10.3f} {t['joined'] / t['running']:>14.1f}x "
              f"{t['sklearn']:>13.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
