"""--numeric on a column of words is refused (it was one-hot encoded while the run recorded it as
numeric); quarters ('2015Q1') are refused as dates, with the same message every run."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from downslope.data.encoding import unit_suffix
from downslope.data.tabular import read_csv
from downslope.errors import ConfigError, DataError


def write(tmp_path, text: str, name: str = "d.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_numeric_on_a_text_column_is_refused_naming_it_and_its_words(tmp_path, csv_reader):
    r = np.random.default_rng(0)
    rows = [f"{r.normal():.3f},{r.choice(['red', 'blue', 'green', 'teal'])},{r.normal():.3f}" for _ in range(200)]
    p = write(tmp_path, "x,color,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ConfigError) as e:
        read_csv(p, target="y", numeric=["color"])
    said = str(e.value)
    assert said.startswith(f"{p}: --numeric names column 'color', which holds text ('blue', 'green', 'red', ...; 4 of")
    assert "--drop color" in said and "\n" not in said
    # the columns --numeric is for stay as they were: digit codes with leading zeros, numbers
    codes = [f"{r.normal():.3f},{i % 7:05d},{r.normal():.3f}" for i in range(70)]
    p2 = write(tmp_path, "x,zip,y\n" + "\n".join(codes) + "\n", "codes.csv")
    table, encoder = read_csv(p2, target="y", numeric=["zip"])
    assert "zip" not in encoder.categories and table.X.shape == (70, 2)
    assert read_csv(p, target="y", numeric=["x"])[1].categories["color"] == ["blue", "green", "red", "teal"]


def test_numeric_on_a_column_of_mostly_words_with_missing_constant(tmp_path, csv_reader):
    rows = [f"{i},{['a', 'b', ''][i % 3]},{i % 5}.5" for i in range(60)]
    p = write(tmp_path, "x,kind,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match=r"column 'kind', which holds text \('a', 'b'; 2 of its 2 distinct"):
        read_csv(p, target="y", numeric=["kind"], missing="constant")


@pytest.mark.parametrize("fmt", ["{y}Q{q}", "{y}-Q{q}", "Q{q} {y}", "{y} q{q}"])
def test_quarters_are_refused_as_dates_with_advice_for_quarters(tmp_path, csv_reader, fmt):
    r = np.random.default_rng(2)
    cells = [fmt.format(y=2015 + k // 4, q=k % 4 + 1) for k in r.integers(0, 20, 120)]
    rows = [f"{c},{x:.3f},{x + 0.1:.3f}" for c, x in zip(cells, r.normal(size=120), strict=True)]
    p = write(tmp_path, "quarter,x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as e:
        read_csv(p, target="y")
    said = str(e.value)
    assert "column 'quarter' holds dates or timestamps" in said and "year and quarter columns" in said, said
    assert "unit" not in said


def test_the_unit_named_is_the_same_every_run(tmp_path):
    # a tie between units ('Q1'..'Q4' each once) was broken by set order, which hash randomization changes
    assert unit_suffix(["1 kg", "2 lb", "3 kg", "4 lb"]) == "kg"
    code = "from downslope.data.encoding import unit_suffix; print(unit_suffix(['1 x', '2 y', '3 z', '4 w']))"
    said = set()
    for seed in range(6):
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        said.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)
    assert said == {"w\n"}
