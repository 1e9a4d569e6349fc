"""``downslope train`` says when the model it saves is not the last epoch's: --patience restores the best
epoch's weights at the end of training even when early stopping never fired."""

from __future__ import annotations

import csv

import pytest

from downslope.cli import main
from downslope.runs import load_run

LINE = ["train", "--data", "line", "--model", "linear", "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "full"]


def _best_epoch(out):
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val_loss"]) for r in rows]
    return 1 + min(range(len(val)), key=val.__getitem__), len(rows)


def test_restored_weights_are_named_when_the_run_reaches_the_epoch_limit(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*LINE, "--epochs", "60", "--patience", "60", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    best, epochs = _best_epoch(out)
    assert epochs == 60 and best < 60  # the run reached its limit; its best validation loss came earlier
    assert "stopped: reached the epoch limit (60)" in printed
    said = f"the model saved is epoch {best}'s, the best validation loss, not the last epoch's (60)"
    assert said in printed and "--patience 0 keeps the last epoch's" in printed
    assert said.replace("'", "&#x27;") in (out / "report.html").read_text()
    # and it is so: --patience 0 saves other (the last epoch's) weights
    last = tmp_path / "last"
    assert main([*LINE, "--epochs", "60", "--patience", "0", "--out", str(last), "--quiet"]) == 0
    assert "the model saved is" not in capsys.readouterr().out
    restored, kept = load_run(out)[1]["model"], load_run(last)[1]["model"]
    assert any(float(abs(restored[k].numpy() - kept[k].numpy()).max()) > 1e-4 for k in restored)


def test_patience_help_says_it_restores_the_best_weights(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "restores the best epoch's weights" in text
