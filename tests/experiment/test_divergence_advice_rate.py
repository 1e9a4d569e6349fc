"""The CLI names one rate to try after a divergence: the closing line repeats the "Stopped:" line's estimate
when that rate is already stable for the features (experiment/run.py's _divergence_advice)."""

from __future__ import annotations

import numpy as np

from downslope.experiment.advice import stable_lr
from downslope.experiment.run import _divergence_advice


class _History:
    def as_dict(self):
        return {"loss": [3.8e5, 4.0e17]}


class _Data:
    task = "regression"
    n_outputs = 1
    X_train = np.random.default_rng(0).uniform(600, 3500, (130, 1))  # raw house sizes: a tiny stable rate


CFG = {"model": "linear", "optimizer": "gd", "loss": "mse", "standardize": False}


def test_a_stable_estimate_of_the_guard_is_the_rate_the_closing_line_names():
    limit = stable_lr(_Data.X_train)
    guessed = float(f"{limit / 4:.1g}")  # below half the largest stable rate, as the guard's estimate was
    reason = (
        f"diverged: loss rose from 3.84e+05 before training to 4.04e+17 by epoch 2 at lr=0.1; the step size is "
        f"probably too large, try lr={guessed:g} or lower (an estimate from the loss growing about 1.1e+12-fold "
        "per update)"
    )
    said = _divergence_advice(reason, CFG, _Data(), 0.1, _History())
    assert f"try lr={guessed:g} or lower (the largest stable rate for these features is about {limit:.2g})" in said
    assert "an estimate from" not in said  # (the reason went with the estimate it explained)


def test_a_tenth_of_a_rate_far_above_the_stable_one_is_replaced_by_half_the_stable_one():
    limit = stable_lr(_Data.X_train)
    reason = "diverged: loss became inf at epoch 2 at lr=0.1; the step size is probably too large, try lr=0.01 or lower"
    said = _divergence_advice(reason, CFG, _Data(), 0.1, _History())
    assert f"try lr={limit / 2:.2g} or lower (the largest stable rate for these features is about {limit:.2g})" in said
