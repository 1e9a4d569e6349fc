"""predict on a headerless file with one column more than the model's features refuses it (a leading id
column would otherwise shift every feature by one, silently, for a regression)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    where = tmp_path_factory.mktemp("houses")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = 2.5e5 + 6e4 * X[:, 0] - 3e4 * X[:, 1] ** 2
    data = where / "houses.csv"
    np.savetxt(data, np.c_[X, y], delimiter=",", header="rooms,age,distance,size,price", comments="", fmt="%.3f")
    run = where / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--epochs", "2", "--out", str(run), "--quiet"]) == 0
    return run, X[:5]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_headerless_extra_column_is_refused(houses, tmp_path, capsys, suffix):
    run, X = houses
    with_id = np.c_[np.arange(1, 6) * 100.0, X]
    data = tmp_path / f"ids{suffix}"
    if suffix == ".npy":
        np.save(data, with_id)
    else:
        np.savetxt(data, with_id, delimiter=",")
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    if suffix == ".npy":
        assert "expected 4 feature columns, got 5" in err and "drop the extra column" in err, err
    else:  # a CSV-trained model reads a CSV by its header, and says that one is missing
        assert "the header row seems to be missing" in err, err
    assert not (tmp_path / "p.csv").exists()


def test_exact_features_and_named_extra_column_still_predict(houses, tmp_path):
    run, X = houses
    np.save(tmp_path / "f.npy", X)
    assert main(["predict", str(run), "--data", str(tmp_path / "f.npy"), "--out", str(tmp_path / "a.csv")]) == 0
    named = tmp_path / "named.csv"
    np.savetxt(named, np.c_[np.arange(5), X], delimiter=",", header="id,rooms,age,distance,size", comments="")
    assert main(["predict", str(run), "--data", str(named), "--out", str(tmp_path / "b.csv")]) == 0
    a = np.loadtxt(tmp_path / "a.csv", skiprows=1)
    b = np.loadtxt(tmp_path / "b.csv", skiprows=1)
    np.testing.assert_allclose(a, b, rtol=1e-6)
