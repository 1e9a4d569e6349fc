"""Command-line values are as strict as a config file's: a negative --patience and an empty entry in
--hidden are refused, not recorded (patience = -1) or dropped silently (32,,16 as [32, 16])."""

from __future__ import annotations

import pytest

from downslope.cli import main
from downslope.errors import ConfigError
from downslope.experiment import normalize_config
from downslope.experiment.config import read_toml


@pytest.mark.parametrize(
    "args, said",
    [
        (["--patience", "-1"], "command line: patience must be >= 0 (0: no early stopping), got -1"),
        (["--hidden", "32,,16"], "command line: hidden: expected positive integers separated by commas"),
        (["--hidden", "32,"], "with no empty entry, got '32,'"),
        (["--hidden", "0"], "hidden: sizes must be positive"),
    ],
)
def test_the_command_line_refuses_what_a_config_file_refuses(tmp_path, capsys, args, said):
    out = tmp_path / "run"
    assert main(["train", "--data", "moons", "--epochs", "1", "--quiet", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert not (out / "config.toml").exists()


def test_a_config_file_refuses_a_negative_patience_naming_its_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('data = "iris"\npatience = -3\n')
    settings, text = read_toml(path)
    with pytest.raises(ConfigError, match=rf"^{path}, line 2: patience must be >= 0 \(0: no early stopping\), got -3$"):
        normalize_config(settings, str(path), text=text)


def test_hidden_from_the_command_line():
    assert normalize_config({"hidden": "32, 16"}, "command line")["hidden"] == [32, 16]
    assert normalize_config({"hidden": ""}, "command line")["hidden"] == []  # '' is no hidden layer
    assert normalize_config({"patience": 0}, "command line")["patience"] == 0


def test_a_run_recorded_with_a_negative_patience_still_loads_as_off():
    # an earlier version recorded --patience -1 (it behaved as 0, off): such a run resumes and evaluates
    assert normalize_config({"patience": -1}, "config.toml", stored=True)["patience"] == 0
