"""History: as_dict, to_csv, best epoch, state_dict round trip and the error for a missing key."""

import csv
import io
import math

import pytest

from downslope.errors import StateDictError
from downslope.train import History


def _history() -> History:
    h = History()
    h.append(0, {"loss": 1.0, "lr": 0.1})
    h.append(1, {"loss": 0.5, "val_loss": 0.7, "accuracy": 0.8, "lr": 0.1})  # validation starts late
    h.append(2, {"loss": 1 / 3, "val_loss": 0.9, "accuracy": 0.85, "lr": 0.05, "note": "text is skipped"})
    return h


def test_as_dict_holds_every_column_with_none_where_an_epoch_lacks_it_and_is_a_copy():
    h = _history()
    table = h.as_dict()
    assert table == {
        "epoch": [1, 2, 3],
        "loss": [1.0, 0.5, 1 / 3],
        "lr": [0.1, 0.1, 0.05],
        "learning_rate": [0.1, 0.1, 0.05],  # Keras 3's name for the same numbers
        "val_loss": [None, 0.7, 0.9],
        "accuracy": [None, 0.8, 0.85],
    }
    table["loss"].append(99.0)
    table["epoch"].clear()
    assert h["loss"] == [1.0, 0.5, 1 / 3] and h["epoch"] == [1, 2, 3]


def test_to_csv_reads_back_to_the_same_numbers(tmp_path):
    h = _history()
    path = tmp_path / "history.csv"
    text = h.to_csv(path)
    assert path.read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == h.keys()
    table = h.as_dict()
    for key in h.keys():
        back = [None if r[key] == "" else float(r[key]) for r in rows]
        assert back == table[key], key  # repr() round-trips floats exactly
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporary file left behind


def test_best_epoch_uses_val_loss_then_loss_and_max_for_accuracy():
    h = _history()
    assert h.best_epoch == 2 and h.best() == (2, 0.7)
    assert h.best("loss") == (3, 1 / 3)
    assert h.best("accuracy") == (3, 0.85)
    assert h.best("accuracy", mode="min") == (2, 0.8)
    only_nan = History()
    only_nan.append(0, {"loss": math.nan})
    assert only_nan.best() == (None, None)


def test_state_dict_round_trip_and_missing_key_error():
    h = _history()
    h.stop_reason = "early stopping"
    again = History()
    again.load_state_dict(h.state_dict())
    assert again.as_dict() == h.as_dict() and again.stop_reason == "early stopping" and len(again) == 3
    with pytest.raises(
        StateDictError, match=r"History has no 'val_acc'; recorded: epoch, loss, lr, learning_rate, val_loss"
    ):
        h["val_acc"]
