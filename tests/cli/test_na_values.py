"""``--na-values``: a country column with Namibia's code 'NA' is read as a category when asked (pandas'
``na_values`` with ``keep_default_na=False``), the run keeps the setting, and predict reads new data with it
(or with its own --na-values). Without the option, training says that 'NA' was taken as missing and names
the option: in a note when missing values are filled or dropped, in the error when they are refused."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope.cli import main

FAST = ["--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet", "--lr", "0.05"]
COUNTRIES = ["US", "DE", "NA", "ZA", "BW", "FR", "GB", "KE"]
HEADER = ["order_id", "amount", "country", "hour"]


def _orders(rng: np.random.Generator, n: int) -> list[list[object]]:
    return [
        [
            f"O{i:05d}",
            round(float(rng.gamma(2.0, 40.0)), 2),
            COUNTRIES[int(rng.integers(len(COUNTRIES)))],
            int(rng.integers(24)),
        ]
        for i in range(n)
    ]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def shipping(tmp_path_factory) -> Path:
    """400 orders; the shipping cost depends on the country (Namibia's NA the dearest)."""
    folder = tmp_path_factory.mktemp("shipping")
    rng = np.random.default_rng(2)
    rows = _orders(rng, 400)
    cost = {c: 5.0 + 3 * k for k, c in enumerate(COUNTRIES)}
    cost["NA"] = 60.0
    data = [[*r, round(cost[str(r[2])] + 0.05 * float(r[1]) + rng.normal(0, 1), 2)] for r in rows]  # type: ignore[arg-type]
    return _write(folder / "orders.csv", [*HEADER, "shipping"], data)


def _train(data: Path, run: Path, *extra: str) -> int:
    return main(
        ["train", "--data", str(data), "--target", "shipping", "--drop", "order_id", "--out", str(run), *FAST, *extra]
    )


def test_na_values_keeps_namibia_as_a_country_and_predict_reads_it_so(shipping, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(shipping, run, "--na-values", "") == 0
    assert "na_values = []" in (run / "config.toml").read_text().splitlines()
    state = ds.load(run / "model.ds")
    assert state["preprocess"]["encoder"]["categories"]["country"] == sorted(COUNTRIES)
    new = _orders(np.random.default_rng(9), 30)
    new[4][2] = "NA"
    data = _write(tmp_path / "new.csv", HEADER, new)
    out = tmp_path / "p.csv"
    capsys.readouterr()
    # the run's own setting: NA is Namibia (the run was trained with --missing error: a missing cell is refused)
    assert main(["predict", str(run), "--data", str(data), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 31
    # --na-values given to predict replaces the run's: NA is then missing, which this run refuses
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(out), "--na-values", "NA"]) == 2
    err = capsys.readouterr().err
    assert "new.csv:6:3 (column 'country'): missing value" in err


def test_a_config_file_sets_it_too(shipping, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[data]\nna_values = ["?"]\n')
    run = tmp_path / "run"
    assert _train(shipping, run, "--config", str(config)) == 0
    state = ds.load(run / "model.ds")
    assert state["config"]["na_values"] == ["?"]
    assert "NA" in state["preprocess"]["encoder"]["categories"]["country"]


def test_without_it_a_filled_na_is_noted_with_the_option(shipping, tmp_path, capsys):
    n_namibia = sum(1 for row in csv.reader(shipping.open()) if row[2] == "NA")
    assert n_namibia > 10
    for missing in ("most_frequent", "drop", "constant"):
        capsys.readouterr()
        assert _train(shipping, tmp_path / missing, "--missing", missing) == 0
        notes = [line for line in capsys.readouterr().err.splitlines() if "read as missing" in line]
        assert len(notes) == 1, notes
        assert f"column 'country': {n_namibia} cells 'NA' read as missing values" in notes[0]
        assert "among the categories 'BW', 'DE', 'FR', 'GB', 'KE', ..." in notes[0]
        assert "--na-values ''" in notes[0]


def test_without_it_a_refused_na_names_the_option(shipping, tmp_path, capsys):
    assert _train(shipping, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "(column 'country'): missing value" in err
    assert "the cell holds 'NA', which is read as a missing value" in err and "--na-values" in err


def test_a_run_without_the_setting_reads_new_data_with_the_defaults(shipping, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(shipping, run, "--missing", "most_frequent") == 0
    assert "na_values" not in (run / "config.toml").read_text()  # left out: the defaults
    new = _orders(np.random.default_rng(4), 12)
    new[1][2] = "NA"
    data = _write(tmp_path / "new.csv", HEADER, new)
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), "--data", str(data), "--out", str(out)]) == 0  # NA: missing, filled
    # as a category NA was never seen by this run: --na-values '' at predict makes it an unseen category
    capsys.readouterr()
    assert main(["predict", str(run), "--data", str(data), "--out", str(out), "--na-values", ""]) == 2
    assert "'NA'" in capsys.readouterr().err


def test_the_onnx_export_reads_the_runs_markers(shipping, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from downslope import runs
    from downslope.cli.features import _features_for

    run = tmp_path / "run"
    assert _train(shipping, run, "--na-values", "?", "--missing", "most_frequent") == 0  # an imputer in the graph
    path = tmp_path / "run.onnx"
    assert main(["export", str(run), "--onnx", str(path)]) == 0
    new = _orders(np.random.default_rng(3), 24)
    for i, country in ((0, "NA"), (1, "?")):  # Namibia, and a missing cell
        new[i][2] = country
    data = _write(tmp_path / "new.csv", HEADER, new)
    model, state = runs.load_run(str(run))
    X, _ = _features_for(state, str(data), None, need_target=False)  # what `downslope predict` feeds
    expected = ds.train.predict(model, X).numpy().reshape(-1)
    scaler = state["preprocess"]["target_scaler"]
    expected = expected * float(scaler["scale"][0]) + float(scaler["mean"][0])
    feeds = {
        "amount": np.array([[float(r[1])] for r in new], np.float32),
        "country": np.array([[str(r[2])] for r in new], dtype=object),
        "hour": np.array([[float(r[3])] for r in new], np.float32),
    }
    session = ort.InferenceSession(onnx.load(str(path)).SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0].reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    # Namibia's rows are Namibia's (the dearest country), not filled with the most frequent one
    assert got[0] > np.median(got) + 20
