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
        read_table(tmp_path / "d.xlsx")  # (a .txt of delimited text is read as CSV)


def test_class_names_follow_label_encoder_semantics(tmp_path):
    from downslope.data.tabular import class_key, sorted_classes

    assert [class_key(v) for v in ("1", "1.0", " 01 ", 2.5, "cat")] == ["1", "1", "1", "2.5", "cat"]
    assert sorted_classes(["10", "9", "1"]) == ["1", "9", "10"]  # numbers sorted as numbers
    table, enc = read_csv(write(tmp_path, "x,y\n1,2\n2,1.0\n3,2.0\n4,1\n"))
    assert enc.classes == ["1", "2"] and table.y.tolist() == [1, 0, 1, 0]
    with pytest.raises(DataError, match="single class"):
        read_csv(write(tmp_path, "x,y\n1,a\n2,a\n", "one.csv"))


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (["a", "b"], "classification"),
        ([str(i % 25) for i in range(300)], "classification"),  # 25 integer classes, 12 rows each
        ([str(i) for i in range(300)], "regression"),  # every row its own integer: a quantity
        (["0.5", "1", "2"], "regression"),
        ([str(i % 3) for i in range(3)], "classification"),
    ],
)
def test_task_rule(labels, task):
    from downslope.data.tabular import infer_task

    assert infer_task(labels)[0] == task


def test_stray_word_high_cardinality_and_overflow_say_where_and_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv:3:1 \(column 'a'\): expected a number, got 'oops'.*--drop a"):
        read_csv(write(tmp_path, "a,y\n1,0\noops,1\n3,0\n4,1\n"))
    ids = "\n".join(f"id{i},{i % 2}" for i in range(30))
    with pytest.raises(DataError, match=r"column 'k' is text with 30 distinct values.*--drop k"):
        read_csv(write(tmp_path, "k,y\n" + ids + "\n", "ids.csv"), max_categories=20)
    table, enc = read_csv(
        write(tmp_path, "k,a,y\n" + "\n".join(f"id{i},{i},{i % 2}" for i in range(30)), "d2.csv"), drop=["k"]
    )
    assert enc.columns == ["a"] and enc.dropped == ["k"]
    with pytest.raises(DataError, match=r"big\.csv:2:1 \(column 'a'\): '1e39' overflows float32.*--drop a"):
        read_csv(write(tmp_path, "a,y\n1e39,0\n1,1\n", "big.csv"))


def test_imputer_fills_with_training_statistics_and_categories_with_the_most_frequent():
    from downslope.data.tabular import Imputer

    X = np.array([[1.0, 1, 0], [np.nan, 0, 1], [3.0, 0, 1], [8.0, np.nan, np.nan]], dtype=np.float32)
    blocks = [(0, 1, False), (1, 3, True)]
    for strategy, number in (("mean", 4.0), ("median", 3.0), ("most_frequent", 1.0)):
        imp = Imputer(strategy).fit(X, blocks)
        np.testing.assert_array_equal(imp.fill, [number, 0, 1])  # category 2 of 2 is the most frequent
        again = Imputer.from_state_dict(imp.state_dict())
        np.testing.assert_array_equal(again.transform(X)[[1, 3]], [[number, 0, 1], [8, 0, 1]])


def test_missing_values_become_nan_for_an_imputer(tmp_path):
    table, enc = read_csv(write(tmp_path, "a,c,y\n1,u,0\n,v,1\n3,,0\n4,u,\n"), missing="mean")
    assert len(table) == 3 and table.notes  # the row without a target is dropped, and said so
    assert np.isnan(table.X[1, 0]) and np.isnan(table.X[2, 1:]).all()


def test_npz_errors_and_labels(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.savez(tmp_path / "ok.npz", X=X, y=np.array(["b", "a", "b", "a", "a", "b"]))
    t = read_arrays(tmp_path / "ok.npz")
    assert t.class_names == ["a", "b"] and t.y.tolist() == [1, 0, 1, 0, 0, 1]
    np.savez(tmp_path / "big.npz", X=X, y=np.array([0, 1e9] * 3))
    t = read_arrays(tmp_path / "big.npz")
    assert t.n_classes == 2 and t.class_names == ["0", "1000000000"]
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) - 40])
    with pytest.raises(DataError, match="truncated"):
        read_arrays(tmp_path / "cut.npz")
    np.savez(tmp_path / "over.npz", X=np.array([[1e39, 0.0]] * 6), y=np.arange(6) % 2)
    with pytest.raises(DataError, match="row 0, column 0 overflows float32"):
        read_arrays(tmp_path / "over.npz")


def test_read_features_takes_features_only_or_features_and_target(tmp_path):
    from downslope.data.tabular import read_features

    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")
    X, y = read_features(tmp_path / "h.csv", 2)
    assert X.tolist() == [[1, 2], [3, 4]] and y is None
    X, y = read_features(tmp_path / "n.csv", 2)
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    with pytest.raises(DataError, match="3 columns, but the model takes 5 features"):
        read_features(tmp_path / "n.csv", 5)


def test_read_features_for_predict_refuses_an_unnamed_extra_column(tmp_path):
    """A headerless file with one column more than the features: the extra one may be an id in front, which
    taking the last as a target would shift every feature by one; predict refuses rather than guess."""
    from downslope.data.tabular import read_features

    (tmp_path / "n.csv").write_text("100,1,2\n200,3,4\n")
    np.save(tmp_path / "n.npy", np.array([[100.0, 1, 2], [200, 3, 4]]))
    for name in ("n.csv", "n.npy"):
        with pytest.raises(DataError, match=r"expected 2 feature columns, got 3.*\['a', 'b'\] or drop the extra"):
            read_features(tmp_path / name, 2, feature_names=["a", "b"], allow_target=False)
    # a header naming the features says which column is extra: taken by name, as before
    (tmp_path / "h.csv").write_text("id,a,b\n100,1,2\n200,3,4\n")
    X, _ = read_features(tmp_path / "h.csv", 2, feature_names=["a", "b"], allow_target=False)
    assert X.tolist() == [[1, 2], [3, 4]]
    # exactly the features: fine
    (tmp_path / "f.csv").write_text("1,2\n3,4\n")
    X, y = read_features(tmp_path / "f.csv", 2, allow_target=False)
    assert X.tolist() == [[1, 2], [3, 4]] and y is None
