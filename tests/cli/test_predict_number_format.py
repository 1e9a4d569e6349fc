"""predict/evaluate --sep/--decimal/--thousands (and TrainedRun.predict's sep=/decimal=/thousands=): a new
file written with other marks than the training file is read by the rules given, not the training file's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from downslope.cli import main
from downslope.runs import open_run

pytest.importorskip("matplotlib")

FAST = ["--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet"]


def _rows(n: int, seed: int) -> list[tuple[float, float, str, float]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) * [1.0, 2000.0]
    kinds = rng.choice(["red", "blue"], size=n)
    return [(a, b, k, 3 * a - b / 1000 + (k == "red")) for (a, b), k in zip(X, kinds)]


def _european(rows, with_target: bool = True) -> str:
    """';'-separated, decimal commas, '.'-grouped thousands: 1.234,5"""

    def number(v: float) -> str:
        return f"{v:,.3f}".replace(",", "_").replace(".", ",").replace("_", ".")

    head = "a;b;kind" + (";y" if with_target else "")
    body = [f"{number(a)};{number(b)};{k}" + (f";{number(y)}" if with_target else "") for a, b, k, y in rows]
    return "\n".join([head, *body]) + "\n"


def _english(rows, with_target: bool = True) -> str:
    """','-separated, decimal points, ','-grouped thousands in quotes: "1,234.5" """
    head = "a,b,kind" + (",y" if with_target else "")
    body = [f'{a:.3f},"{b:,.3f}",{k}' + (f',"{y:,.3f}"' if with_target else "") for a, b, k, y in rows]
    return "\n".join([head, *body]) + "\n"


@pytest.fixture
def trained(tmp_path):
    data = tmp_path / "semi.csv"
    data.write_text(_european(_rows(120, 0)))
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--sep", ";", "--decimal", ",", "--thousands", ".", "--out", str(run)]
    assert main([*args, *FAST]) == 0
    return tmp_path, run


def test_predict_reads_a_file_written_with_other_marks_as_the_same_rows_written_the_training_way(trained, capsys):
    tmp_path, run = trained
    new = _rows(7, 1)
    same_way, other_way = tmp_path / "same.csv", tmp_path / "other.csv"
    same_way.write_text(_european(new, with_target=False))
    other_way.write_text(_english(new, with_target=False))
    assert main(["predict", str(run), "--data", str(same_way), "--out", str(tmp_path / "p1.csv")]) == 0
    # the training file's rules refuse the new file's numbers, and the advice names flags predict has
    assert main(["predict", str(run), "--data", str(other_way), "--sep", ",", "--out", str(tmp_path / "p.csv")]) == 2
    assert "--decimal" in capsys.readouterr().err
    args = ["--sep", ",", "--decimal", ".", "--thousands", ","]
    assert main(["predict", str(run), "--data", str(other_way), *args, "--out", str(tmp_path / "p2.csv")]) == 0
    expected = (tmp_path / "p1.csv").read_text()
    assert (tmp_path / "p2.csv").read_text() == expected and len(expected.splitlines()) == 8
    # the Python API takes the same rules
    opened = open_run(run)
    got = opened.predict(str(other_way), sep=",", decimal=".", thousands=",")
    np.testing.assert_array_equal(got, opened.predict(str(same_way)))
    # evaluate scores the file written the other way as the same rows written the training way
    scored = []
    for path, extra in [(tmp_path / "s.csv", []), (tmp_path / "o.csv", args)]:
        path.write_text((_european if not extra else _english)(new))
        capsys.readouterr()
        assert main(["evaluate", str(run), "--data", str(path), *extra]) == 0
        scored.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert scored[0] == scored[1] and scored[0]["rows"] == 7


def test_predict_number_format_flags_are_checked(trained, capsys):
    tmp_path, run = trained
    new = tmp_path / "new.csv"
    new.write_text(_english(_rows(3, 2), with_target=False))
    out = str(tmp_path / "p.csv")
    assert main(["predict", str(run), "--data", str(new), "--decimal", ";", "--out", out]) == 2
    assert "expected '.' or ',' as the decimal mark, got ';'" in capsys.readouterr().err
    assert main(["predict", str(run), "--data", str(new), "--decimal", ",", "--thousands", ",", "--out", out]) == 2
    assert "is also the decimal mark" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--decimal", "."]) == 2  # the run's own split is read as training read it
    assert "say how the --data file is written" in capsys.readouterr().err
    with pytest.raises(Exception, match="TrainedRun.predict: decimal: expected"):
        open_run(run).predict(str(new), sep=",", decimal="x")
