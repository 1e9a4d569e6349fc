"""``downslope lr-find`` with a sweep too short to read a rate off: no suggestion, one line saying why
in the options' own names, no Python warning on top of it."""

from __future__ import annotations

import warnings

from downslope.cli import main


def test_a_five_point_sweep_says_why_there_is_no_suggestion(tmp_path, capsys):
    out = tmp_path / "lrf"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI says it once, on stdout, not again as a warning
        assert main(["lr-find", "--data", "moons", "--num-iter", "5", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    said = [line for line in captured.out.splitlines() if line.startswith("no suggestion")]
    assert said == [
        "no suggestion: the sweep showed the effect of 4 learning rate(s), fewer than the 10 needed to read a "
        "rate off it (raise --num-iter, or lower --start-lr if it diverged early)"
    ]
    assert "suggested learning rate" not in captured.out
    assert (out / "lr_find.csv").read_text().count("\n") == 1 + 5
