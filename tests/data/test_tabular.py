"""CSV / NPZ / NPY reading: encoding, task inference and errors that say where."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.data.tabular import TabularEncoder, read_arrays, read_csv, read_rows, read_table
from downslope.errors import DataError


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_categorical_columns_are_one_hot_and_target_is_picked_by_name(tmp_path):
    p = write(tmp_path, "label,size,colour\nyes,1.5,red\nno,2.0,blue\nyes,0.5,green\n")
    table, enc = read_csv(p, target="label")
    assert enc.feature_names == ["size", "colour=blue", "colour=green", "colour=red"]
    np.testing.assert_array_equal(table.X, [[1.5, 0, 0, 1], [2.0, 1, 0, 0], [0.5, 0, 1, 0]])
    assert table.task == "classification" and table.class_names == ["no", "yes"]
    np.testing.assert_array_equal(table.y, [1, 0, 1])


def test_task_inference(tmp_path):
    reg, _ = read_csv(write(tmp_path, "a,y\n1,0.5\n2,1.7\n3,2.2\n"))
    assert reg.task == "regression" and reg.y.shape == (3, 1)
    cls, _ = read_csv(write(tmp_path, "a,y\n1,0\n2,1\n3,2\n", "c.csv"))
    assert cls.task == "classification" and list(cls.y) == [0, 1, 2]
    forced, _ = read_csv(write(tmp_path, "a,y\n1,0\n2,1\n3,2\n", "f.csv"), task="regression")
    assert forced.task == "regression"


def test_missing_value_is_reported_with_file_line_and_column(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,0\n3,,1\n4,5,1\n")
    with pytest.raises(DataError, match=r"d\.csv:3:2 \(column 'b'\): missing value; choose what to do with --missing"):
        read_csv(p)
    table, _ = read_csv(p, missing="drop")
    assert len(table) == 2


def test_malformed_files_fail_with_one_clear_line(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv:3: expected 2 fields"):
        read_rows(write(tmp_path, "a,y\n1,0\n1,2,3\n"))
    with pytest.raises(DataError, match="empty"):
        read_rows(write(tmp_path, "", "e.csv"))
    with pytest.raises(DataError, match="no data rows"):
        read_rows(write(tmp_path, "a,y\n", "h.csv"))
    with pytest.raises(DataError, match="unique, non-empty column names"):
        read_rows(write(tmp_path, "a,a\n1,2\n", "dup.csv"))
    with pytest.raises(DataError, match="no target column 'z'"):
        read_csv(write(tmp_path, "a,y\n1,0\n", "t.csv"), target="z")
    with pytest.raises(DataError, match="non-finite"):
        read_csv(write(tmp_path, "a,y\ninf,0\n1,1\n", "inf.csv"))
    with pytest.raises(DataError, match="no such file"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="not a UTF-8"):
        (tmp_path / "bin.csv").write_bytes(b"a,y\n\xff\xfe,1\n")
        read_csv(tmp_path / "bin.csv")


def test_encoder_reuses_training_columns_for_prediction_files(tmp_path):
    _, enc = read_csv(write(tmp_path, "x,c,y\n1,u,0\n2,v,1\n"))
    enc2 = TabularEncoder.from_state_dict(enc.state_dict())
    X = enc2.encode_features(["c", "x"], [["v", "5"]], "new.csv")
    np.testing.assert_array_equal(X, [[5, 0, 1]])
    with pytest.raises(DataError, match=r"new\.csv:2:1 \(column 'c'\): category 'w' was not seen"):
        enc2.encode_features(["c", "x"], [["w", "5"]], "new.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) \['c'\]"):
        enc2.encode_features(["x"], [["5"]], "new.csv")


def test_npz_and_npy(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 1, 0])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    t = read_arrays(tmp_path / "d.npz")
    assert t.task == "classification" and t.X.dtype == np.float32
    np.save(tmp_path / "d.npy", np.c_[X, np.linspace(0, 1, 6)])
    r, enc = read_table(tmp_path / "d.npy")
    assert r.task == "regression" and enc is None and r.X.shape == (6, 2)
    np.savez(tmp_path / "bad.npz", A=X)
    with pytest.raises(DataError, match="arrays named 'X' and 'y'"):
        read_arrays(tmp_path / "bad.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="refused"):
        read_arrays(tmp_path / "obj.npy")
    Xn = X.copy()
    Xn[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, y=y)
    with pytest.raises(DataError, match="row 3, column 1"):
        read_arrays(tmp_path / "nan.npz")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(tmp_path / "d.txt")
