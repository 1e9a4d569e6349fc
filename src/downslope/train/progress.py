"""Progress output: a tqdm bar on a terminal, plain epoch lines otherwise (tqdm is optional)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .callbacks import Callback, Logs
from .placement import DeviceScalar


def format_logs(logs: Logs, skip: tuple[str, ...] = ("time", "size")) -> str:
    """``'loss 0.1234 - val_loss 0.2345 - lr 0.01'`` from a logs dict."""
    parts = []
    for key, value in logs.items():
        if key in skip or not isinstance(value, (int, float)):
            continue
        parts.append(f"{key} {value:.4g}" if key != "epoch_time" else f"{value:.2f}s")
    return " - ".join(parts)


class ProgressBar(Callback):
    """Show training progress: a live bar per epoch on a terminal, one line per epoch otherwise.

    ``verbose=1`` draws a bar during each epoch when ``stream`` is a terminal and tqdm is installed,
    then replaces it with the epoch's line (every logged number, wrapped rather than cut at the
    terminal's width); ``verbose=2`` prints only the epoch lines. Nothing is redrawn when output
    goes to a file or a pipe, so logs stay readable. When training on a device the bar shows the
    batch loss about ten times per epoch (each read waits for the device), not after every batch.

    Example:
        >>> import io
        >>> from downslope.train.callbacks import TrainingState
        >>> out = io.StringIO(); bar = ProgressBar(stream=out)
        >>> bar.set_trainer(TrainingState(params={"epochs": 3, "steps": 1})); bar.on_train_begin()
        >>> bar.on_epoch_end(0, {"loss": 0.5, "epoch_time": 0.25}); out.getvalue()
        'Epoch 1/3 - loss 0.5 - 0.25s\\n'
    """

    def __init__(self, verbose: int = 1, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self.stream = stream
        self._bar: Any = None
        self._tqdm: Any = None
        self._every = 1  # on a device: show the batch loss every this many batches

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._bar = None
        self._tqdm = None
        out = self._out()
        if self.verbose == 1 and getattr(out, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm  # optional dependency

                self._tqdm = tqdm
            except ImportError:
                self._tqdm = None

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._tqdm is not None:
            total = self.trainer.params.get("epochs", "?")
            self._bar = self._tqdm(
                total=self.trainer.params.get("steps"),
                desc=f"Epoch {epoch + 1}/{total}",
                file=self._out(),
                leave=False,  # replaced by the epoch's full line (a bar's postfix is cut at the terminal's width)
                unit="batch",
            )
            self._every = max(1, int(self.trainer.params.get("steps") or 1) // 10)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._bar is not None:
            self._bar.update(1)
            loss = (logs or {}).get("loss")
            if isinstance(loss, DeviceScalar) and not loss.read and (batch + 1) % self._every:
                return  # on a device: read the loss only now and then (see the class docstring)
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        text = format_logs(logs or {})
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose:
            total = self.trainer.params.get("epochs", "?")
            print(f"Epoch {epoch + 1}/{total} - {text}", file=self._out(), flush=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        reason = getattr(self.trainer, "stop_reason", None)
        if self.verbose and reason:
            print(f"Stopped: {reason}", file=self._out(), flush=True)
