"""A run whose status.json is not a small regular file (a FIFO, a link to /dev/zero, a huge file): never
read (a FIFO would block, /dev/zero never ends); listed as broken, refused in one line naming it."""

from __future__ import annotations

import os
import signal

import pytest

from downslope import runs
from downslope.errors import ConfigError


@pytest.fixture
def within_ten_seconds():
    def hung(signum, frame):
        raise AssertionError("hung reading a special file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _published(root, name="r"):
    run = runs.reserve(root / name)
    run.write_text(runs.CONFIG_FILE, 'data = "moons"\n')
    run.publish(runs.COMPLETE)
    return root / name


def test_a_status_file_linked_to_dev_zero_is_never_read(tmp_path):
    # in a child process with its address space capped: a reader without a bound would allocate until
    # the cap (a MemoryError there) instead of taking the test machine's memory
    import subprocess
    import sys

    run = _published(tmp_path)
    (run / runs.STATUS_FILE).unlink()
    (run / runs.STATUS_FILE).symlink_to("/dev/zero")
    code = f"""
import resource
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from downslope import runs
from downslope.errors import ConfigError
print(runs.read_status({str(run)!r}))
print([(r.name, r.status) for r in runs.list_runs({str(tmp_path)!r})])
try:
    runs.check_complete({str(run)!r})
except ConfigError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-1000:]
    lines = done.stdout.splitlines()
    assert lines[:2] == ["None", "[('r', 'broken')]"], lines
    assert "its status.json is a character device, not a regular file" in lines[2]


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_a_special_status_file_is_broken_and_refused_naming_it(tmp_path, within_ten_seconds, kind):
    run = _published(tmp_path)
    marker = run / runs.STATUS_FILE
    marker.unlink()
    if kind == "fifo":
        os.mkfifo(marker)
        said = r"is a named pipe \(FIFO\), not a regular file"
    else:
        with open(marker, "wb") as handle:
            handle.truncate(runs.STATUS_LIMIT + 1)
        said = "holds 1048577 bytes, far more than a status marker"
    assert runs.read_status(run) is None
    assert [(r.name, r.status) for r in runs.list_runs(tmp_path)] == [("r", "broken")]
    assert not runs.is_run_directory(run)
    with pytest.raises(ConfigError, match=rf"its status\.json {said}"):
        runs.check_complete(run)


def test_a_regular_status_file_still_reads(tmp_path):
    run = _published(tmp_path)
    assert runs.read_status(run)["status"] == runs.COMPLETE
    assert runs.check_complete(run) == run
