"""TensorBoard: per-epoch scalars written as TensorBoard event files, with no dependency.

An event file is a sequence of TFRecords (length, CRC, payload, CRC), each payload an ``Event``
protocol buffer. Scalars need only a handful of protobuf fields, encoded here by hand, so
``tensorboard --logdir <dir>`` can plot a run without TensorFlow, PyTorch or tensorboardX installed.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

from .callbacks import Callback, Logs


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses.

    Example:
        >>> hex(crc32c(b"123456789"))
        '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(
    wall_time: float, step: int | None = None, summary: bytes | None = None, version: str | None = None
) -> bytes:
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)  # Event.wall_time (double)
    if step is not None:
        out += _varint(2 << 3 | 0) + _varint(step)  # Event.step (int64)
    if version is not None:
        out += _field_bytes(3, version.encode())  # Event.file_version
    if summary is not None:
        out += _field_bytes(5, summary)  # Event.summary
    return out


def _scalar_summary(values: dict[str, float]) -> bytes:
    out = b""
    for tag, value in values.items():
        # Summary.Value: tag (1, string), simple_value (2, float)
        entry = _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)
        out += _field_bytes(1, entry)  # Summary.value (repeated)
    return out


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", _masked_crc(header)) + payload + struct.pack("<I", _masked_crc(payload))


class EventFileWriter:
    """Append scalar events to a new TensorBoard event file in ``log_dir``.

    Example:
        >>> import tempfile
        >>> writer = EventFileWriter(tempfile.mkdtemp())
        >>> writer.add_scalars({"loss": 0.5}, step=1); writer.close()
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.downslope"
        self.path = self.log_dir / name
        self._file: Any = open(self.path, "ab")
        self._write(_event(time.time(), version="brain.Event:2"))

    def _write(self, payload: bytes) -> None:
        self._file.write(_record(payload))
        self._file.flush()

    def add_scalars(self, values: dict[str, float], step: int) -> None:
        finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if finite:
            self._write(_event(time.time(), step=step, summary=_scalar_summary(finite)))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoard(Callback):
    """Write each epoch's numbers (loss, val_loss, metrics, lr, ...) to TensorBoard event files.

    ``step`` is the epoch number (from 1). View with ``tensorboard --logdir <log_dir>``.

    Example:
        >>> import tempfile
        >>> board = TensorBoard(tempfile.mkdtemp()); board.on_train_begin()
        >>> board.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.7}); board.on_train_end()
    """

    def __init__(self, log_dir: str | Path = "runs/tensorboard") -> None:
        self.log_dir = Path(log_dir)
        self.writer: EventFileWriter | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.writer = EventFileWriter(self.log_dir)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.writer is not None:
            self.writer.add_scalars({k: v for k, v in (logs or {}).items() if k not in ("size",)}, step=epoch + 1)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
