"""--data names a file or a built-in dataset: standard input ('-') and a name that is neither are refused
in those words (not as 'a built-in dataset'), with the datasets and a file of that name suggested."""

from __future__ import annotations

import pytest

from downslope.errors import ConfigError
from downslope.experiment import normalize_config
from downslope.experiment.inputs import load_table


@pytest.mark.parametrize("drop", [None, "a"])
@pytest.mark.parametrize("source", ["-", "/dev/stdin"])
def test_standard_input_is_refused_as_such(source, drop):
    cfg = normalize_config({"data": source, **({"drop": drop} if drop else {})}, "test")
    with pytest.raises(ConfigError) as caught:
        load_table(cfg)
    message = str(caught.value)
    assert "standard input is not read" in message and "save the data to a file" in message
    assert "built-in dataset" not in message


@pytest.mark.parametrize("drop", [None, "Name"])
def test_an_unknown_name_is_neither_a_file_nor_a_dataset_and_a_close_file_is_suggested(tmp_path, monkeypatch, drop):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "titanic.csv").write_text("a,y\n1,0\n")
    (tmp_path / "notes.txt").write_text("not data\n")
    cfg = normalize_config({"data": "titanic", **({"drop": drop} if drop else {})}, "test")
    with pytest.raises(ConfigError) as caught:
        load_table(cfg)
    message = str(caught.value)
    assert message.startswith("no such file or built-in dataset 'titanic' (did you mean 'titanic.csv'?); ")
    assert "moons" in message and "notes.txt" not in message and "is a built-in dataset" not in message
    cfg = normalize_config({"data": "mnist"}, "test")
    with pytest.raises(ConfigError, match=r"^no such file or built-in dataset 'mnist'; the built-in datasets are "):
        load_table(cfg)
    with pytest.raises(ConfigError, match=r"'irs' \(did you mean 'iris'\?\)"):
        load_table(normalize_config({"data": "irs"}, "test"))
    sub = tmp_path / "data"
    sub.mkdir()
    (sub / "houses.csv").write_text("a,y\n1,0\n")
    with pytest.raises(ConfigError, match=r"did you mean 'data/houses.csv'\?"):
        load_table(normalize_config({"data": "data/house"}, "test"))
