"""A target written in German number format (340.824,30) is read by that rule in a ';' file, and refused
with the flags that read it (--decimal ',' --thousands '.') where the file does not say so."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main
from downslope.data.encoding import target_format_hint
from downslope.runs import open_run

pytest.importorskip("matplotlib")


def _german(value: float) -> str:
    return f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


def test_the_hint_names_the_number_format_flags():
    assert "--decimal ',' --thousands '.'" in target_format_hint(["340.824,30", "99,50", "1.000,00"])
    assert "--thousands '.'" not in target_format_hint(["2,75", "3,5"])
    assert "--thousands ','" in target_format_hint(["1,200.50", "3,400.00"])
    assert target_format_hint(["2.75", "3.5"]) == ""


def test_train_on_german_prices_suggests_the_flags_that_read_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    area = rng.uniform(50, 150, 200)
    path = tmp_path / "t.csv"
    path.write_text("flaeche;preis\n" + "".join(f"{_german(a)[:-1]};{_german(3000 * a)}\n" for a in area))
    base = ["train", "--data", str(path), "--sep", ";", "--quiet"]
    # in a ';' file a column written 340.824,30 shows its own decimal comma: it is read by that rule (noted),
    # as --decimal ',' --thousands '.' read it; a ',' file's such target gets the advice (target_format_hint)
    for extra in ([], ["--task", "regression"]):
        out = tmp_path / f"r{len(extra)}"
        assert main([*base, *extra, "--epochs", "1", "--out", str(out)]) == 0
        formats = open_run(out).state["preprocess"]["encoder"]["formats"]
        assert [tuple(f) for f in formats.values()] == [(",", "."), (",", ".")]
    assert main([*base, "--decimal", ",", "--thousands", ".", "--epochs", "2", "--out", str(tmp_path / "ok")]) == 0
