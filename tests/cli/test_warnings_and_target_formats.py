"""What a CLI user is told: warnings about their data still reach stderr under --quiet; a money-formatted
target gets the advice a money-formatted feature gets; an exported classifier's ``label`` output is the
class name as a string, integer classes included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _with_totals_row(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal():.3f},{rng.normal():.3f},{10 + rng.normal():.3f}" for _ in range(40)]
    p = tmp_path / "totals.csv"
    p.write_text("a,b,price\n" + "\n".join(rows) + "\nTotal,,999.0\n")
    return str(p)


FAST = ["--epochs", "2", "--patience", "0", "--hidden", "4"]
TOTALS = "the last row looks like a totals row"


def test_quiet_still_prints_data_warnings_to_stderr(tmp_path, capsys, no_plots):
    assert main(["train", "--data", _with_totals_row(tmp_path), "--out", str(tmp_path / "q"), *FAST, "--quiet"]) == 0
    printed = capsys.readouterr()
    assert TOTALS in printed.err and printed.err.count(TOTALS) == 1
    assert TOTALS not in printed.out


def test_without_quiet_the_warning_is_printed_once(tmp_path, capsys, no_plots):
    assert main(["train", "--data", _with_totals_row(tmp_path), "--out", str(tmp_path / "v"), *FAST]) == 0
    printed = capsys.readouterr()
    assert (printed.out + printed.err).count(TOTALS) == 1


def test_quiet_help_says_warnings_are_kept(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--quiet no progress output" in text and "warnings about the data or the training still go to stderr" in text


def _money_target(tmp_path: Path) -> str:
    rng = np.random.default_rng(1)
    rows = [f'{rng.normal():.3f},{rng.normal():.3f},"${100000 + 60000 * rng.random():,.2f}"' for _ in range(60)]
    p = tmp_path / "money.csv"
    p.write_text("a,b,price\n" + "\n".join(rows) + "\n")
    return str(p)


@pytest.mark.parametrize("task", [[], ["--task", "regression"]])
def test_a_money_target_gets_the_money_advice(tmp_path, capsys, task):
    code = main(["train", "--data", _money_target(tmp_path), "--out", str(tmp_path / "m"), *FAST, "--quiet", *task])
    assert code != 0
    err = capsys.readouterr().err
    assert "look like money amounts" in err and "strip the currency sign" in err and "the target" in err


def test_target_format_hint_words():
    from downslope.data.encoding import many_classes_problem, target_format_hint

    assert "money amounts" in target_format_hint(["$1,000.00", "€20.50"])
    assert "accounting negatives" in target_format_hint(["(1,234.00)", "12.5"])
    assert "--thousands ' '" in target_format_hint(["1 234 567", "2 000"])
    assert target_format_hint(["red", "blue"]) == ""
    problem = many_classes_problem([f"${i},000.00" for i in range(100, 160)], 60)
    assert problem is not None and "money amounts" in problem and "--task regression" not in problem


def test_exported_label_is_the_class_name_string_for_integer_classes(tmp_path, capsys, no_plots):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 2))
    rows = [f"{a:.3f},{b:.3f},{int(a > 0)}" for a, b in x]
    data = tmp_path / "ints.csv"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "label", "--out", str(run), *FAST, "--quiet"]) == 0
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"a": np.array([[2.0], [-2.0]], np.float32), "b": np.zeros((2, 1), np.float32)}
    label, probabilities = session.run(None, feeds)
    assert label.dtype == object and set(label.tolist()) <= {"0", "1"}  # strings, as docs/deploy.md says
    assert probabilities.shape == (2, 2)
