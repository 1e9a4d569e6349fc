"""The notes cli/results.py draws on a run's pictures name the descent that ran."""

from __future__ import annotations

from types import SimpleNamespace

from downslope.cli.results import _stopped_note


class _History:
    def __init__(self, epochs: int, stop_kind: str | None) -> None:
        self._losses = {"loss": [1.0] * epochs, "val_loss": [1.0] * epochs}
        self.stop_kind = stop_kind

    def as_dict(self) -> dict[str, list[float]]:
        return self._losses


def _result(optimizer: str, batch_size: object, epochs: int, stop_kind: str | None, best: int | None) -> object:
    cfg = {"optimizer": optimizer, "batch_size": batch_size}
    return SimpleNamespace(history=_History(epochs, stop_kind), weights_epoch=best, cfg=cfg)


def test_the_fitted_line_note_names_the_optimizer_and_batching_that_ran():
    # a mini-batch SGD run was called "GD" on its fitted-line picture
    note = _stopped_note(_result("sgd", "64", 23, "early_stopping", 13))
    assert (
        note
        == "sgd (batch size 64) stopped at epoch 23 (early stopping); weights restored to epoch 13 (best validation loss)"
    )
    assert _stopped_note(_result("gd", "full", 30, None, 12)).startswith("gd (full batch) ran 30 epochs; ")
    assert _stopped_note(_result("adam", 32, 30, None, None)) is None
