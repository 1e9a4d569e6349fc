"""A run whose training loss rises steadily to its epoch limit (gradient descent a little above its
stability limit) says so in its warnings, and is not told it was crawling and should train longer."""

from __future__ import annotations

import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("lr, rising", [(1.01, True), (0.5, False)])
def test_a_steadily_rising_loss_is_said_instead_of_train_longer(tmp_path, capsys, lr, rising):
    # standardized 1-feature data: the linear model's curvature is 2 on both weights, so GD's limit is lr = 1
    argv = ["train", "--data", "line", "--model", "linear", "--optimizer", "gd", "--lr", str(lr), "--epochs", "100"]
    assert main([*argv, "--patience", "0", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert ("the loss is rising steadily and the learning rate may be too large" in said) == rising
    if rising:
        assert "train longer" not in said and "crawling" not in said
