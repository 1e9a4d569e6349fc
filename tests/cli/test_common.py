"""Run names: the data file's name without its whole ending, then the optimizer."""

from __future__ import annotations

import pytest

from downslope.cli.common import _default_stem


@pytest.mark.parametrize(
    ("data", "stem"),
    [
        ("/d/my.csv.gz", "my-adam"),
        ("my.CSV", "my-adam"),
        ("t.tsv", "t-adam"),
        ("x.npz", "x-adam"),
        ("digits", "digits-adam"),
    ],
)
def test_run_names_drop_the_whole_file_ending(data: str, stem: str) -> None:
    assert _default_stem({"data": data, "optimizer": "adam"}) == stem
