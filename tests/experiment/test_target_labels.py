"""A classification run's labels: ``open_run(dir).predict`` answers in the target column's own type
(int64, float64, bool, text), as recorded at training time; labels that differ only in case or spaces
are merged with ``--merge-label-variants``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.errors import DataError
from downslope.experiment.labels import kind_of_classes, merge_variants, typed_classes
from downslope.runs import open_run

FAST = ["--hidden", "8", "--epochs", "20", "--patience", "0", "--quiet", "--lr", "0.05"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return x, (x[:, 0] + x[:, 1] > 0)


def _write_csv(path: Path, x: np.ndarray, labels: list[str]) -> Path:
    rows = [f"{a:.4f},{b:.4f},{label}" for (a, b), label in zip(x, labels)]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    return path


SPELLINGS = {  # the target column as a file writes it: (False spelling, True spelling), the type predict answers in
    "int": (("0", "1"), np.int64, [0, 1]),
    "bool": (("False", "True"), np.bool_, [False, True]),
    "float": (("1.0", "2.0"), np.float64, [1.0, 2.0]),
    "text": (("no", "yes"), np.str_, ["no", "yes"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    x, truth = _separable(120, 0)
    new_x, new_truth = _separable(40, 1)
    made = {}
    for kind, ((low, high), _, _) in SPELLINGS.items():
        data = _write_csv(tmp / f"{kind}.csv", x, [high if t else low for t in truth])
        new = _write_csv(tmp / f"{kind}_new.csv", new_x, [high if t else low for t in new_truth])
        run = tmp / f"run_{kind}"
        assert main(["train", "--data", str(data), "--target", "y", "--out", str(run), *FAST]) == 0
        made[kind] = (run, new)
    return made, new_truth


def _predict_in_fresh_process(paths: dict[str, tuple[Path, Path]]) -> dict[str, dict[str, object]]:
    script = (
        "import json, sys\n"
        "from downslope import open_run\n"
        "out = {}\n"
        "for kind, (run, new) in json.loads(sys.argv[1]).items():\n"
        "    r = open_run(run)\n"
        "    p = r.predict(new)\n"
        "    out[kind] = {'dtype': p.dtype.kind, 'values': p.tolist(), 'classes_': r.classes_.tolist(),\n"
        "                 'classes_dtype': r.classes_.dtype.kind}\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    given = json.dumps({k: [str(run), str(new)] for k, (run, new) in paths.items()})
    done = subprocess.run([sys.executable, "-c", script, given], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_predict_answers_in_the_target_columns_type_in_a_fresh_process(runs):
    made, new_truth = runs
    found = _predict_in_fresh_process(made)
    for kind, (_, dtype, classes) in SPELLINGS.items():
        got = found[kind]
        assert got["dtype"] == np.dtype(dtype).kind, kind
        assert got["classes_dtype"] == np.dtype(dtype).kind, kind
        assert got["classes_"] == classes, kind
        truth = [classes[int(t)] for t in new_truth]
        agree = np.mean([p == t for p, t in zip(got["values"], truth)])
        assert agree >= 0.8, (kind, agree)  # the labels compare equal to the data's own values


def test_the_cli_output_file_keeps_text_labels(runs, tmp_path):
    made, _ = runs
    for kind, ((low, high), _, _) in SPELLINGS.items():
        run, new = made[kind]
        out = tmp_path / f"{kind}.csv"
        assert main(["predict", str(run), "--data", str(new), "--out", str(out)]) == 0
        header, *rows = out.read_text().splitlines()
        written = {line.split(",")[header.split(",").index("prediction")] for line in rows}
        # the class names as the run holds them: 1.0/2.0 are the classes '1' and '2' (numbers as numbers)
        names = {"float": {"1", "2"}}.get(kind, {low, high})
        assert written <= names, (kind, written)


def test_predict_proba_columns_follow_classes_(runs):
    made, _ = runs
    run = open_run(made["int"][0])
    proba = run.predict_proba(made["int"][1])
    labels = run.predict(made["int"][1])
    np.testing.assert_array_equal(run.classes_[proba.argmax(axis=1)], labels)
    assert run.classes == ["0", "1"]  # the names, as the CLI's p_<class> columns use them


def test_a_run_without_the_record_answers_with_text_as_before(runs):
    made, _ = runs
    run = open_run(made["int"][0])
    run.state.pop("target_kind")
    assert run.predict(made["int"][1]).dtype.kind == "U"


def test_parquet_and_npz_targets_take_their_stored_dtype(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x, truth = _separable(120, 2)
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "y": pa.array(np.where(truth, 2.0, 1.0))})
    pq.write_table(table, tmp_path / "f.parquet")
    assert (
        main(["train", "--data", str(tmp_path / "f.parquet"), "--target", "y", "--out", str(tmp_path / "pq"), *FAST])
        == 0
    )
    np.savez(tmp_path / "f.npz", X=x.astype(np.float32), y=truth.astype(np.int32))
    assert main(["train", "--data", str(tmp_path / "f.npz"), "--out", str(tmp_path / "npz"), *FAST]) == 0
    pq.write_table(table.set_column(2, "y", pa.array(truth)), tmp_path / "b.parquet")
    args = ["train", "--data", str(tmp_path / "b.parquet"), "--target", "y", "--out", str(tmp_path / "pqb"), *FAST]
    assert main(args) == 0
    assert open_run(tmp_path / "pqb").classes_.tolist() == [False, True]
    pq_run, npz_run = open_run(tmp_path / "pq"), open_run(tmp_path / "npz")
    assert pq_run.classes_.dtype == np.float64 and pq_run.classes_.tolist() == [1.0, 2.0]
    assert npz_run.classes_.dtype == np.int64 and npz_run.classes_.tolist() == [0, 1]
    assert npz_run.predict(x.astype(np.float32)).dtype == np.int64


def test_kinds_and_typed_classes_closed_forms():
    assert kind_of_classes(["0", "1", "2"], False) == "int"
    assert kind_of_classes(["-1", "1"], True) == "float"
    assert kind_of_classes(["0.5", "1.5"], False) == "float"
    assert kind_of_classes(["FALSE", "true"], False) == "bool"
    assert kind_of_classes(["1", "b"], False) == "text"
    assert typed_classes(["-1", "3"], "int").tolist() == [-1, 3]
    assert typed_classes(["0.5", "2"], "float").tolist() == [0.5, 2.0]
    assert typed_classes(["1", "2"], "text").dtype.kind == "U"
    assert typed_classes(["0", "1"], "bool").tolist() == [False, True]  # a Parquet boolean column's classes


# ---------------------------------------------------------------------- merging label variants
def test_merge_variants_keeps_the_most_frequent_spelling_ties_first_seen():
    # 'Yes' 3 times, 'yes' twice, 'YES' once -> 'Yes'; 'No' and 'no' once each -> the first seen, 'no'
    names = ["No", "YES", "Yes", "no", "yes"]
    y = np.array([3, 2, 2, 4, 0, 2, 4, 1])  # no, Yes, Yes, yes, No, Yes, yes, YES
    merged, codes, notes = merge_variants(names, y, "f.csv", "answer")
    assert merged == ["Yes", "no"]  # LabelEncoder order of the names kept
    assert codes.tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    assert "'YES', 'yes' into 'Yes'" in notes[0] and "'No' into 'no'" in notes[0] and "'answer'" in notes[0]
    same, same_y, none = merge_variants(["a", "b"], np.array([0, 1]), "f.csv")
    assert same == ["a", "b"] and same_y.tolist() == [0, 1] and none == []
    with pytest.raises(DataError, match="single class"):
        merge_variants(["YES", "yes"], np.array([0, 1]), "f.csv")


@pytest.fixture(scope="module")
def variant_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    x, truth = _separable(120, 3)
    spell_yes, spell_no = ["yes", "Yes ", "YES", "yes"], ["no", " No", "no"]
    labels = [spell_yes[i % 4] if t else spell_no[i % 3] for i, t in enumerate(truth)]
    data = _write_csv(tmp / "answers.csv", x, [f'"{v}"' for v in labels])
    new_x, new_truth = _separable(40, 4)
    new = _write_csv(tmp / "new.csv", new_x, ["yEs" if t else "NO" for t in new_truth])
    return tmp, data, new, new_truth


def test_without_the_option_variants_stay_classes_and_the_note_names_the_option(variant_files, capsys):
    tmp, data, _, _ = variant_files
    assert main(["train", "--data", str(data), "--target", "y", "--out", str(tmp / "plain"), *FAST[:-3]]) == 0
    said = capsys.readouterr()
    assert "--merge-label-variants" in said.out + said.err
    # surrounding spaces were stripped already; case still tells classes apart
    assert sorted(open_run(tmp / "plain").classes) == ["NO", "No", "YES", "Yes", "no", "yes"][1:]


def test_merge_label_variants_merges_and_evaluate_maps_new_spellings(variant_files, capsys):
    tmp, data, new, new_truth = variant_files
    run_dir = tmp / "merged"
    args = ["train", "--data", str(data), "--target", "y", "--out", str(run_dir), "--merge-label-variants", *FAST[:-3]]
    assert main(args) == 0
    said = capsys.readouterr()
    assert "merged labels of 'y'" in said.out + said.err
    assert "into 'yes'" in said.out + said.err and "into 'no'" in said.out + said.err
    run = open_run(run_dir)
    assert run.classes == ["no", "yes"]
    assert run.config["merge_label_variants"] is True
    predicted = run.predict(new)
    assert set(predicted.tolist()) <= {"no", "yes"}
    # evaluate reads the target column through the same comparison ('yEs', 'NO' are classes of the run)
    assert main(["evaluate", str(run_dir), "--data", str(new)]) == 0
    said = capsys.readouterr()
    assert "unknown class" not in said.err
    # its own test rows, read again from the training file with all its spellings
    assert main(["evaluate", str(run_dir)]) == 0


def test_a_long_quoted_cell_does_not_stop_the_second_look_at_the_labels(tmp_path):
    # a free-text cell over Python csv's default field limit (128 KiB), which the table readers take
    import csv

    from downslope.experiment.labels import _csv_written_as_float

    path = tmp_path / "notes.csv"
    rows = ["a,notes,y"] + [f"{i},short,{i % 2}" for i in range(5)]
    rows += ['1,"' + "lorem ipsum " * 12500 + '",1.0']
    path.write_text("\n".join(rows) + "\n")
    before = csv.field_size_limit()
    assert _csv_written_as_float(str(path), "y", ",", ".") is True
    assert csv.field_size_limit() == before  # the process-wide limit is put back
