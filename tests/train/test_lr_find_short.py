"""The range test's suggestion only names a rate whose effect the sweep saw to be good: never the
last rate, a fall credited to the rate that produced it, nothing read off a too-short sweep."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.train.lr_find import MIN_SWEEP, _suggest, lr_find


def _regression(n=512, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 2.0, 0.5])
    y = x @ np.array([[1.0], [-1.0], [2.0]]) + 0.1 * rng.normal(size=(n, 1))
    design = np.hstack([x, np.ones((n, 1))])
    largest_stable = 2 / np.linalg.eigvalsh(2 * design.T @ design / n).max()  # GD on MSE diverges above it
    return x, y, largest_stable


def _sweep(num_iter, **kwargs):
    x, y, _ = _regression()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    return lr_find(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), num_iter=num_iter, **kwargs)


def test_a_five_point_sweep_suggests_nothing_and_says_why():
    # It used to suggest 10.0: the last rate, whose effect no loss shows (it diverges here).
    with pytest.warns(UserWarning, match=r"lr_find: no suggestion: .*4 learning rate\(s\), fewer than the 10"):
        result = _sweep(5)
    assert result.suggestion is None
    assert "raise num_iter" in result.note and len(result.lrs) == 5


def test_the_minimum_sweep_is_documented_and_the_first_one_above_it_suggests():
    assert MIN_SWEEP == 10
    with pytest.warns(UserWarning, match="fewer than the 10"):
        assert _sweep(MIN_SWEEP).suggestion is None  # 10 rates: the effect of 9 seen
    result = _sweep(MIN_SWEEP + 1)
    assert result.suggestion is not None and result.note == ""


@pytest.mark.parametrize("num_iter", [11, 12, 15, 20, 30, 50])
def test_a_short_full_batch_sweep_suggests_a_rate_it_saw_lower_the_loss(num_iter):
    _, _, largest_stable = _regression()
    result = _sweep(num_iter, batch_size=None)
    i = result.lrs.index(result.suggestion)  # one of the rates tried, exactly
    assert i < len(result.lrs) - 1, "the last rate's effect was never seen"
    assert result.raw_losses[i + 1] < result.raw_losses[i] < result.raw_losses[0]  # its update lowered the loss
    assert result.suggestion < largest_stable


def test_the_last_rate_is_never_suggested_and_a_fall_is_credited_to_the_rate_that_produced_it():
    lrs = list(np.geomspace(1e-7, 10, 20))
    # flat, until the loss measured before the last update falls: the update at lrs[-2] made that fall
    raw = [2.0] * 19 + [0.5]
    assert _suggest(lrs, raw, 0, 0) == (lrs[-2], "")
    # a fall that the last loss (measured before the last update) does not show is not seen at all
    raw = [2.0] * 20
    suggestion, note = _suggest(lrs, raw, 0, 0)
    assert suggestion is None and "did not fall below where the sweep started" in note


def test_a_rate_after_which_the_loss_was_still_above_the_start_is_not_suggested():
    lrs = list(np.geomspace(1e-4, 1, 30))
    # a steep fall from a bump above the start (not progress) and, later, a gentler fall below it
    raw = [2.0] * 8 + [6.0, 6.0, 2.2] + [2.0] * 5 + list(np.linspace(2.0, 1.0, 14))
    suggestion, _ = _suggest(lrs, raw, 0, 0)
    i = lrs.index(suggestion)
    assert i >= 15 and raw[i + 1] < 2.0
