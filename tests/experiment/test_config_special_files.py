"""Config files as users hand them over: a UTF-8 BOM (Windows Notepad), a NUL in a value, a named FIFO,
a pipe from the shell's ``--config <(...)``, a device: read, or refused in one line naming the file."""

from __future__ import annotations

import argparse
import os

import pytest

from downslope.errors import ConfigError
from downslope.experiment.config import read_toml


def test_a_utf8_bom_is_read_as_the_toml_after_it(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfdata = 'moons'\nepochs = 2\n")
    settings, text = read_toml(path)
    assert settings == {"data": "moons", "epochs": 2} and text.startswith("data")


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('data = "moons"\nout = "runs/a\\u0000b"\n', r"nul\.toml, line 2: out holds a NUL character"),
        ('[train]\nepochs = 1\n[data]\nname = "x\\u0000"\n', r"nul\.toml, line 4: data\.name holds a NUL character"),
    ],
)
def test_a_nul_in_a_value_names_the_key_line_and_file(tmp_path, toml, said):
    path = tmp_path / "nul.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=said):
        read_toml(path)


def test_a_named_fifo_is_refused_as_one_not_as_missing(tmp_path):
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)  # no writer: reading would wait forever
    with pytest.raises(ConfigError, match=r"fifo\.toml: is a named pipe \(FIFO\), not a regular file"):
        read_toml(path)


def test_a_device_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"/dev/zero: is a character device"):
        read_toml("/dev/zero")


def test_a_pipe_given_as_dev_fd_is_read_once_for_every_use():
    # what bash's --config <(printf ...) passes: /dev/fd/N, a pipe whose writer is the substitution
    from downslope.cli.common import _batch_size_given, _config_from_args

    read, write = os.pipe()
    try:
        os.write(write, b'data = "moons"\nepochs = 3\nbatch_size = 16\n')
        os.close(write)
        args = argparse.Namespace(config=f"/dev/fd/{read}")
        cfg = _config_from_args(args)
        assert (cfg["data"], cfg["epochs"]) == ("moons", 3)
        assert _batch_size_given(args)  # the same settings again: the pipe is not read a second time
    finally:
        os.close(read)


def test_a_missing_file_is_still_no_such_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        read_toml(tmp_path / "absent.toml")
