"""Config validation is type-strict and its errors name the file, the line and the key."""

from __future__ import annotations

import pytest

from downslope.errors import ConfigError
from downslope.experiment import load_toml, normalize_config
from downslope.experiment.config import key_lines, read_toml


@pytest.mark.parametrize(
    "line, said",
    [
        ("epochs = true", "epochs: expected an integer, got true (a boolean)"),
        ("epochs = 2.5", "epochs: expected an integer (it would not be rounded), got 2.5"),
        ("lr = true", "lr: expected a number, got true (a boolean)"),
        ("standardize = 0", "standardize: expected true or false, got 0 (a number)"),
        ("batchnorm = 1", "batchnorm: expected true or false"),
        ("hidden = [1.9]", "hidden: expected a list of positive integers"),
        ("hidden = [true]", "hidden: expected a list of positive integers"),
        ("channels = 16", "channels: expected a list of positive integers"),
        ("batch_size = true", "batch_size: expected a positive integer or 'full'"),
        ("batch_size = 32.0", "batch_size: expected a positive integer or 'full'"),
        ("optimizer = 7", "optimizer: expected a string (in quotes), got 7 (a number)"),
        ("drop = [1]", "drop: expected column names"),
        ("seed = -1", "seed must be >= 0, got -1"),
        ('optimizer = "adamm"', "optimizer: unknown optimizer 'adamm'; choose one of"),
        ('activation = "swish"', "activation: unknown activation 'swish'"),
        ('device = "tpu"', "device: unknown device 'tpu'"),
        ("epochs = 0", "epochs must be >= 1, got 0"),
    ],
)
def test_a_bad_value_is_refused_naming_file_line_and_key(tmp_path, line, said):
    path = tmp_path / "c.toml"
    path.write_text(f'data = "iris"\n# a comment\n{line}\n')
    settings, text = read_toml(path)
    with pytest.raises(ConfigError) as caught:
        normalize_config(settings, str(path), text=text)
    assert str(caught.value).startswith(f"{path}, line 3: ") and said in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_values_of_the_right_type_pass_and_ints_are_floats():
    cfg = normalize_config(
        {"epochs": 3, "lr": 1, "hidden": [8, 4], "standardize": False, "batch_size": 32, "seed": 7, "dropout": 0}
    )
    assert cfg["lr"] == 1.0 and isinstance(cfg["lr"], float) and cfg["hidden"] == [8, 4]
    assert cfg["batch_size"] == "32" and cfg["standardize"] is False and cfg["seed"] == 7
    assert normalize_config({"epochs": 3.0})["epochs"] == 3  # a whole number loses nothing
    # from the command line: sizes and booleans as text
    assert normalize_config({"hidden": "16,8", "batchnorm": "true"}, "command line")["hidden"] == [16, 8]


def test_key_lines_find_keys_in_tables_and_quoted_keys():
    assert key_lines('[model]\n"hidden" = [3]\n  lr = 0.1\n# epochs = 2\n') == {"hidden": 2, "lr": 3}


def test_unreadable_config_files_are_one_line_errors(tmp_path):
    latin = tmp_path / "l.toml"
    latin.write_bytes(b'data = "iris"\n# caf\xe9\n')
    with pytest.raises(ConfigError, match=r"l\.toml, line 2: not UTF-8 text .*must be saved as UTF-8"):
        load_toml(latin)
    deep = tmp_path / "d.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_toml(deep)


def test_the_split_kind_is_validated_and_round_trips_through_toml(tmp_path):
    from downslope.experiment import to_toml

    assert normalize_config({})["split"] == "random"
    cfg = normalize_config({"data": {"split": "ordered"}}, "c.toml")
    assert cfg["split"] == "ordered"
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert normalize_config(load_toml(path), str(path)) == cfg
    with pytest.raises(ConfigError, match="unknown split 'time'; choose one of: random, ordered"):
        normalize_config({"split": "time"}, "c.toml")
