"""An --out whose parent exists but cannot hold directories (/proc) is refused for what it is, not
blamed on other downslope processes racing for the name."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from downslope import runs
from downslope.errors import ConfigError


def test_a_parent_that_takes_no_directory_is_named_so(tmp_path, monkeypatch):
    tries = []

    def no_directories(*args, **kwargs):
        tries.append(kwargs.get("dir"))
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))

    monkeypatch.setattr(tempfile, "mkdtemp", no_directories)
    with pytest.raises(ConfigError) as caught:
        runs.reserve(tmp_path / "run1")
    said = str(caught.value)
    assert said.startswith(f"--out {tmp_path / 'run1'}: cannot create a run directory there (")
    assert os.strerror(errno.ENOENT) in said and "other downslope processes" not in said
    assert 1 < len(tries) < 10  # a few tries (a parent removed meanwhile is a race), not a hundred


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_out_under_proc():
    with pytest.raises(ConfigError, match=r"^--out /proc/downslope-run1: cannot create a run directory there \("):
        runs.reserve("/proc/downslope-run1")
