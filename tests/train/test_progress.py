import io

import numpy as np
import pytest

from downslope import nn, optim
from downslope.train import fit
from downslope.train.callbacks import TrainingState
from downslope.train.progress import ProgressBar, format_logs


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def _run(bar, epochs=2):
    x, y = np.ones((12, 2)), np.zeros((12, 1))
    model = nn.Linear(2, 1)
    return fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=epochs, batch_size=4, callbacks=[bar]
    )


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    _run(ProgressBar(stream=out))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - loss ") and "\r" not in out.getvalue()


def test_tqdm_bar_on_a_terminal():
    pytest.importorskip("tqdm")
    out = FakeTerminal()
    _run(ProgressBar(stream=out))
    text = out.getvalue()
    assert "\r" in text  # a live bar was drawn during the epochs
    # then each epoch ends with its whole line, not a postfix cut at the terminal's width
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines() if "Epoch" in line and " - loss " in line]
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"], text
    assert all(" - lr " in line for line in lines), lines


def test_falls_back_to_lines_without_tqdm(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    out = FakeTerminal()
    _run(ProgressBar(stream=out))
    assert out.getvalue().splitlines()[1].startswith("Epoch 2/2 - loss")


def test_stop_reason_is_printed_and_format_skips_non_numbers():
    out = io.StringIO()
    bar = ProgressBar(stream=out)
    state = TrainingState(params={"epochs": 1})
    bar.set_trainer(state)
    bar.on_train_begin()
    state.stop_reason = "early stopping: because"
    bar.on_train_end()
    assert out.getvalue() == "Stopped: early stopping: because\n"
    assert format_logs({"loss": 0.5, "note": "x", "time": 3.0}) == "loss 0.5"
