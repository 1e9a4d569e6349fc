"""``downslope train`` on a CSV says how the rows were split (random, shuffled, by default; or in the
file's order with --split ordered), in the console, the report and the run's config."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main
from downslope.experiment import load_toml


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _series(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "series.csv"
    p.write_text("t,x,y\n" + "\n".join(f"{1000 + i},{rng.normal():.3f},{i / 10:.2f}" for i in range(60)) + "\n")
    return str(p)


FAST = ["--epochs", "2", "--patience", "0", "--hidden", "4", "--quiet"]


def test_train_says_the_split_is_random_and_shuffled(tmp_path, capsys, no_plots):
    out = tmp_path / "run"
    assert main(["train", "--data", _series(tmp_path), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "split: random (shuffled) split: 39 training, 9 validation, 12 test rows" in printed
    assert load_toml(out / "config.toml")["split"] == "random"
    report = (out / "report.html").read_text()
    assert "random (shuffled) split" in report and "column &#x27;t&#x27; increases with the row order" in report


def test_split_ordered_tests_on_the_last_rows_and_is_kept_in_the_config(tmp_path, capsys, no_plots):
    from downslope.runs import load_run

    out = tmp_path / "run"
    assert main(["train", "--data", _series(tmp_path), "--out", str(out), "--split", "ordered", *FAST]) == 0
    assert "split: ordered split (the last rows are the test rows)" in capsys.readouterr().out
    assert load_toml(out / "config.toml")["split"] == "ordered"
    _, state = load_run(str(out))
    assert np.asarray(state["split"]["test_indices"]).tolist() == list(range(48, 60))
    assert "row order" not in (out / "report.html").read_text()
    again = tmp_path / "again"  # the run's config.toml repeats the run, ordered split included
    assert main(["train", "--config", str(out / "config.toml"), "--out", str(again), "--quiet"]) == 0
    assert load_toml(again / "config.toml")["split"] == "ordered"


def test_split_rejects_an_unknown_kind(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--split", "time"])
    assert e.value.code == 2 and "invalid choice: 'time'" in capsys.readouterr().err
