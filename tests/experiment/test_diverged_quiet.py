"""A diverged run says so once: NumPy's overflow/invalid-value warnings from scoring the diverged model
are not printed after the clear message (a healthy run keeps them)."""

from __future__ import annotations

import warnings

import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


def test_no_numpy_warnings_after_the_diverged_message(tmp_path, capsys):
    args = ["train", "--data", "diabetes", "--optimizer", "sgd", "--lr", "50", "--epochs", "3"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([*args, "--out", str(tmp_path / "run")])
    said = capsys.readouterr()
    assert code != 0 and "training diverged" in said.err
    assert "encountered in" not in said.out + said.err
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
