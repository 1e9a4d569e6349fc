"""Property-based fuzzing of the three file readers: CSV, config (TOML) and checkpoints.

Every input either loads or fails with the library's own exception and a message; never a raw
IndexError/KeyError/ValueError from deep inside, and never a silently wrong result.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope.data.tabular import read_csv
from downslope.errors import CheckpointError, ConfigError, DataError
from downslope.experiment import load_toml, normalize_config

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

cells = st.one_of(
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e309", "red", "blue", '"q,uoted"', "  7 ", "1,5", "?"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 5).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


@st.composite
def csv_texts(draw):
    n_cols = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["a", "b", "c", "y", "", "a "]), min_size=n_cols, max_size=n_cols))
    rows = draw(st.lists(st.lists(cells, min_size=max(0, n_cols - 1), max_size=n_cols + 1), max_size=8))
    sep = draw(st.sampled_from([",", ";"]))
    return "\n".join([sep.join(header)] + [sep.join(r) for r in rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))


@FUZZ
@given(text=csv_texts())
def test_csv_reader_loads_or_raises_data_error(tmp_path, text):
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    try:
        table, encoder = read_csv(path)
    except (DataError, ConfigError) as exc:
        assert str(exc)
        return
    # Loaded: it must be finite, consistent and exactly what the text says for plain numbers.
    assert np.isfinite(table.X).all()
    assert len(table.X) == len(table.y) > 0
    assert table.X.shape[1] == len(encoder.feature_names)


@FUZZ
@given(data=st.binary(max_size=300))
def test_csv_reader_survives_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "bytes.csv"
    path.write_bytes(data)
    try:
        read_csv(path)
    except (DataError, ConfigError) as exc:
        assert str(exc)


toml_values = st.one_of(
    st.integers(-3, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf").replace("nan", "nan")),
    st.sampled_from(
        ['"adam"', '"sgdd"', '"full"', '"-3"', "true", "[1, 2]", "[]", '"64"', "[0]", '"a,b"', "{}", "=", '"']
    ),
)
toml_keys = st.sampled_from(
    [
        "epochs",
        "lr",
        "optimizer",
        "batch_size",
        "hidden",
        "dropout",
        "seed",
        "data",
        "epoch",
        "[model]",
        "momentum",
        "batchnorm",
    ]
)


@FUZZ
@given(lines=st.lists(st.tuples(toml_keys, toml_values), max_size=6))
def test_config_reader_accepts_or_raises_config_error(tmp_path, lines):
    path = tmp_path / "run.toml"
    path.write_text("\n".join(k if k.startswith("[") else f"{k} = {v}" for k, v in lines) + "\n")
    try:
        cfg = normalize_config(load_toml(path), str(path))
    except ConfigError as exc:
        assert str(exc)
        return
    assert cfg["epochs"] >= 1 and (cfg["lr"] is None or cfg["lr"] > 0) and 0 <= cfg["dropout"] < 1


def _checkpoint_bytes() -> bytes:
    state = {
        "model": {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(4, np.float32)},
        "epoch": 5,
        "history": {"loss": [1.0, 0.5, 0.25]},
    }
    buffer = io.BytesIO()
    from downslope import serialization

    arrays: dict = {}
    tree = serialization.encode_tree(state, arrays, "state")
    blobs = {k: serialization._npy_bytes(a) for k, a in arrays.items()}
    import json

    meta = json.dumps(
        {
            "format": serialization.FORMAT,
            "version": serialization.VERSION,
            "tree": tree,
            "checksums": {k: serialization._digest(b) for k, b in blobs.items()},
        }
    ).encode()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("meta.json", meta)
        z.writestr("meta.sha256", serialization._digest(meta))
        for k, b in blobs.items():
            z.writestr(f"{k}.npy", b)
    return buffer.getvalue()


GOOD = _checkpoint_bytes()


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, len(GOOD))),
)
def test_checkpoint_reader_detects_every_corruption(tmp_path, edits, cut):
    data = bytearray(GOOD)
    for pos, value in edits:
        data[pos] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path / "c.ds"
    path.write_bytes(bytes(data))
    try:
        state = ds.load(path)
    except CheckpointError as exc:
        assert str(exc)
        return
    # Loaded despite the edits: then the content must be exactly the original (edits hit only
    # bytes that do not matter, e.g. zip timestamps), never a silently altered state.
    np.testing.assert_array_equal(state["model"]["w"], np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(state["model"]["b"], np.zeros(4, np.float32))
    assert state["epoch"] == 5 and state["history"] == {"loss": [1.0, 0.5, 0.25]}
