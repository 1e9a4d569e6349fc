"""atomic_write_bytes and save on a symlink or a FIFO: the link is followed and kept, the FIFO written into,
as torch.save and shell redirection do (a temp-file-and-rename would replace either with a regular file)."""

from __future__ import annotations

import os
import stat
import threading

import numpy as np
import pytest

import downslope as ds
from downslope.serialization import atomic_write_bytes

pytestmark = pytest.mark.host_only  # symlinks and FIFOs on the host file system


def test_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]  # no temp file left


def test_relative_symlink_into_another_directory(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "link").symlink_to(os.path.join("..", "b", "target"))  # dangling until written
    atomic_write_bytes(tmp_path / "a" / "link", b"x")
    assert (tmp_path / "a" / "link").is_symlink()
    assert (tmp_path / "b" / "target").read_bytes() == b"x"


def _drain(path, into):
    with open(path, "rb") as reader:
        into.append(reader.read())


@pytest.mark.parametrize("through_link", [False, True])
def test_fifo_is_written_into_not_replaced(tmp_path, through_link):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    given = fifo
    if through_link:  # as /dev/stdout -> /proc/self/fd/1 -> a pipe
        given = tmp_path / "out"
        given.symlink_to(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(fifo, got))
    reader.start()
    atomic_write_bytes(given, lambda handle: handle.write(b"streamed"))
    reader.join(timeout=30)
    assert got == [b"streamed"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not through_link or given.is_symlink()


def test_save_through_symlink_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    for name, saver, loader in [("pt", torch.save, torch.load), ("ds", ds.save, ds.load)]:
        real = tmp_path / f"real.{name}"
        link = tmp_path / f"link.{name}"
        link.symlink_to(real)
        saver({"w": ds.tensor([0.0, 1.0, 2.0]) if name == "ds" else torch.tensor([0.0, 1.0, 2.0])}, str(link))
        assert link.is_symlink() and real.is_file(), name
        np.testing.assert_array_equal(np.asarray(loader(str(real))["w"]), np.arange(3.0))
