"""A run's data: loading a table, the train/validation/test split, and the preprocessing (imputing,
standardizing features and target) that is fitted on the training split and replayed for new data."""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


@dataclass
class Prepared:
    """The splits of one dataset, standardized with training statistics, as float32 arrays."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_features: int
    n_outputs: int
    name: str
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] = field(default_factory=dict)
    # which rows of the source went where: n_rows, seed, test/val fractions, test_indices, and a hash
    # of every training/validation row's features (to tell when other data overlaps training)
    split: dict[str, Any] = field(default_factory=dict)
    task_reason: str = ""
    notes: list[str] = field(default_factory=list)
    target_name: str = ""
    # a classifier's target column's type ("int", "float", "bool", "text"; "" unknown): what predict answers in
    target_kind: str = ""


def is_file_source(source: str) -> bool:
    """Whether ``source`` names a file of a type downslope reads (else: a built-in dataset's name).

    Example:
        >>> is_file_source("data.csv.gz"), is_file_source("x.tsv"), is_file_source("iris")
        (True, True, False)
    """
    from ..data.csvfile import csv_suffix

    return csv_suffix(source) is not None or Path(source).suffix.lower() in (".parquet", ".npz", ".npy")


def _names_a_file(source: str) -> bool:
    """Whether ``source`` (not a readable file type) names a file rather than a dataset: it exists, or has an extension."""
    import os

    return os.path.exists(source) or bool(Path(source).suffix)


#: what names standard input: the Unix convention's "-", and the device file
STANDARD_INPUT = ("-", "/dev/stdin")


def unknown_source(source: str) -> ConfigError:
    """The refusal of a ``--data`` that is neither a file nor a built-in dataset, naming the datasets and,
    when some are close, the readable files of its directory it may have meant (``titanic`` for
    ``titanic.csv``).

    Example:
        >>> print(unknown_source("iriss"))  # doctest: +ELLIPSIS
        no such file or built-in dataset 'iriss' (did you mean 'iris'?); the built-in datasets are line, ...
    """
    import difflib
    import os

    from ..data import datasets

    folder = os.path.dirname(source) or "."
    try:
        files = sorted(f for f in os.listdir(folder) if is_file_source(f) and os.path.isfile(os.path.join(folder, f)))
    except OSError:  # the folder is gone or unreadable: no file to suggest
        files = []
    base = os.path.basename(source)
    # by the name before the extension: "titanic" for titanic.csv, "house" for houses.csv
    stems: dict[str, list[str]] = {}
    for f in files:
        stems.setdefault(f.split(".")[0], []).append(f)
    close_stems = [base] if base in stems else difflib.get_close_matches(base, list(stems), n=3, cutoff=0.75)
    close = [f for stem in close_stems for f in stems[stem]][:3]
    close_files = [os.path.join(folder, f) if folder != "." else f for f in close]
    guesses = close_files + difflib.get_close_matches(source, datasets.NAMES, n=2, cutoff=0.7)
    mean = f" (did you mean {' or '.join(repr(g) for g in guesses)}?)" if guesses else ""
    return ConfigError(
        f"no such file or built-in dataset {source!r}{mean}; the built-in datasets are {', '.join(datasets.NAMES)}, "
        "and a file is a .csv, .csv.gz, .tsv, .parquet, .npz or .npy"
    )


def load_table(cfg: dict[str, Any]) -> tuple[Any, Any]:
    from ..data import datasets
    from ..data.tabular import read_table

    source = cfg["data"]
    task = None if cfg["task"] == "auto" else cfg["task"]
    if is_file_source(source):
        from ..data.readers import missing_markers

        with missing_markers(cfg.get("na_values")):  # --na-values: the cells read as missing
            table, encoder = read_table(
                source,
                target=cfg["target"] or None,
                task=task,
                missing=cfg.get("missing", "error"),
                drop=cfg.get("drop") or None,
                categorical=cfg.get("categorical") or None,
                numeric=cfg.get("numeric") or None,
                delimiter=cfg.get("sep", ","),
                decimal=cfg.get("decimal", "."),
                thousands=cfg.get("thousands", ""),
                max_categories=cfg.get("max_categories", 100),
                progress=bool(cfg.get("verbose", 1)),  # a line on stderr when reading takes more than a second
                header_row=bool(cfg.get("header", True)),
            )
        return table, encoder
    if source in STANDARD_INPUT:
        raise ConfigError(
            f"--data {source}: standard input is not read (the split and the report need the rows by line, and "
            "`predict`/`evaluate` read the file again); save the data to a file and give that, e.g. "
            "`cat > data.csv` then --data data.csv"
        )
    if _names_a_file(source) and source not in datasets.NAMES:
        from ..data.csvfile import unsupported_file

        raise unsupported_file(source)
    if source not in datasets.NAMES:
        raise unknown_source(source)
    if cfg.get("drop"):
        raise ConfigError(f"--drop names columns of a CSV file; {source!r} is a built-in dataset")
    table = datasets.load(source, seed=cfg["seed"])
    table.task_reason = "built-in dataset"
    if task is not None and task != table.task:
        raise ConfigError(f"dataset {source!r} is a {table.task} task, but task={task!r} was asked for")
    return table, None


HASH_CHUNK_BYTES = 32 * 2**20


def row_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's float32 values (FNV-1a over 32-bit words): equal rows, equal hashes.

    Example:
        >>> h = row_hashes(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    n = len(X)
    X = X.reshape(n, -1) if isinstance(X, np.ndarray) and X.ndim != 2 else X
    width = X.shape[1] if n else 0
    h = np.full(n, 14695981039346656037, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    # rows in chunks of about HASH_CHUNK_BYTES, one column at a time: never a uint64 copy of the matrix
    # (20,000 rows of 20,000 one-hot features are 1.6 GB as float32, and were 3.2 GB more as uint64)
    step = max(1, HASH_CHUNK_BYTES // max(1, 4 * width))
    with np.errstate(over="ignore"):
        for begin in range(0, n, step):
            words = np.ascontiguousarray(X[begin : begin + step], dtype=np.float32).view(np.uint32)
            part = h[begin : begin + step]
            for j in range(width):
                part ^= words[:, j]
                part *= prime
    return h


def _rows(X: Any, index: np.ndarray) -> Any:
    """Rows of features: a copy for arrays, a lazy view for a memory-mapped source."""
    from ..data.memmap import is_lazy

    return X.subset(index) if is_lazy(X) else X[index]


def _hashes(X: Any, index: np.ndarray) -> np.ndarray:
    """:func:`row_hashes` of the rows at ``index``, chunk by chunk for a memory-mapped source."""
    from ..data.memmap import is_lazy

    if not is_lazy(X):
        step = max(1, HASH_CHUNK_BYTES // max(1, 4 * int(np.prod(X.shape[1:]))))
        parts = [row_hashes(X[index[i : i + step]]) for i in range(0, len(index), step)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    parts = [row_hashes(chunk) for chunk in X.raw().subset(index).chunks()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def training_data(X: Any, y: np.ndarray) -> Any:
    """What fit takes for features ``X`` and targets ``y``: the arrays, or for a memory-mapped source a
    :class:`~downslope.data.dataset.LazyDataset` (batches are read from the file, never all of it)."""
    from ..data.dataset import LazyDataset
    from ..data.memmap import is_lazy

    return LazyDataset(X, y) if is_lazy(X) else (X, y)


def split_indices(
    n: int, y: np.ndarray, stratify: np.ndarray | None, cfg: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Row indices of the training, validation (None without) and test splits.

    ``cfg["split"]`` is ``random`` (shuffled with ``cfg["seed"]``, stratified by ``stratify`` when
    given; scikit-learn's ``train_test_split``) or ``ordered``: the rows keep the file's order, the last
    ``test_split`` of them are the test rows and the ``val_split`` before them the validation rows
    (scikit-learn's ``TimeSeriesSplit`` idea: a model of time-ordered data is scored on its future).

    Example:
        >>> cfg = {"split": "ordered", "test_split": 0.2, "val_split": 0.2, "seed": 0}
        >>> train, val, test = split_indices(10, np.zeros(10), None, cfg)
        >>> train.tolist(), val.tolist(), test.tolist()
        ([0, 1, 2, 3, 4, 5], [6, 7], [8, 9])
    """
    from ..data import train_test_split

    test_frac = cfg["test_split"] or 0.2
    val_frac = cfg["val_split"]
    if cfg.get("split", "random") == "ordered":
        n_test = max(1, math.ceil(test_frac * n))  # train_test_split's rounding
        n_rest = n - n_test
        n_val = max(1, math.ceil(val_frac / (1 - test_frac) * n_rest)) if val_frac > 0 else 0
        index = np.arange(n)
        val = index[n_rest - n_val : n_rest] if n_val else None
        return index[: n_rest - n_val], val, index[n_rest:]
    index = np.arange(n)
    i_rest, i_test, y_rest, _ = train_test_split(index, y, test_size=test_frac, stratify=stratify, seed=cfg["seed"])
    if val_frac <= 0:
        return i_rest, None, i_test
    strat_rest = y_rest if stratify is not None and np.bincount(y_rest).min() >= 2 else None
    i_train, i_val, _, _ = train_test_split(
        i_rest, y_rest, test_size=val_frac / (1 - test_frac), stratify=strat_rest, seed=cfg["seed"] + 1
    )
    return i_train, i_val, i_test


def split_words(kind: str) -> str:
    """How a split kind is said in the console and the report.

    Example:
        >>> split_words("random"), split_words("ordered")
        ('random (shuffled) split', 'ordered split (the last rows are the test rows)')
    """
    if kind == "ordered":
        return "ordered split (the last rows are the test rows)"
    return "random (shuffled) split"


def prepare(cfg: dict[str, Any]) -> Prepared:
    """Load the data, split it (seeded; stratified for classes; or in file order with
    ``split = "ordered"``) and fit the preprocessing on the training split only: the one-hot
    vocabulary (a category met only in validation/test rows is unseen: all-zero, scikit-learn's
    ``handle_unknown='ignore'``), imputer (``missing``), feature standardizer (numeric columns only)
    and for regression the target standardizer. Targets stay in the data's units here;
    :func:`model_targets` scales them."""
    from ..data.readers import missing_markers

    # --na-values for every reading of the file (the table, and its labels read again as written)
    with missing_markers(cfg.get("na_values")):
        return _prepare(cfg)


def _prepare(cfg: dict[str, Any]) -> Prepared:
    """:func:`prepare` under the run's missing-value markers."""
    from ..data.datasets import Standardizer
    from ..data.tabular import IMPUTE, Imputer
    from .labels import keep_written_codes, merge_variants, written_labels
    from .labels import target_kind as labels_target_kind

    table, encoder = load_table(cfg)
    found = getattr(table, "number_format", None)
    if found is not None and (cfg.get("decimal", "."), cfg.get("thousands", "")) == (".", ""):
        # the number format the reader detected is the run's setting: its config.toml names it, and
        # repeating the run reads the numbers as given, not by detecting them again
        cfg["decimal"], cfg["thousands"] = found
    classify = table.task == "classification"
    notes = list(table.notes)
    notes.extend(_word_marker_notes(cfg, table, encoder))
    target_kind = ""
    if classify and table.class_names:
        if cfg.get("merge_label_variants"):
            table.class_names, table.y, merged = merge_variants(
                table.class_names, table.y, table.name, table.target_name
            )
            notes.extend(merged)
            if encoder is not None:  # new data's labels are read against the merged classes
                encoder.classes = list(table.class_names)
        # digit codes with leading zeros keep them (predict writes '02100', not '2100'); the encoder keeps
        # the readers' class keys, against which new data's labels are read
        written = written_labels(cfg, table) if all(str(n).isdigit() for n in table.class_names) else None
        table.class_names, said = keep_written_codes(table.class_names, written, table.name, table.target_name)
        notes.extend(said)
        target_kind = labels_target_kind(cfg, table, written)
    X, y = table.X, table.y
    if classify and table.class_names:
        _check_many_classes(cfg, table, notes)
    if len(X) < 10:
        raise ConfigError(
            f"{table.name}: only {len(X)} sample{'' if len(X) == 1 else 's'}; need at least 10 to split into "
            "train/validation/test"
        )
    kind = cfg.get("split", "random")
    stratify = None
    if classify and kind == "random":
        counts = np.bincount(y)
        single = [table.class_names[c] if c < len(table.class_names) else str(c) for c in np.flatnonzero(counts == 1)]
        if single:
            shown = ", ".join(repr(c) for c in single[:5]) + (", ..." if len(single) > 5 else "")
            notes.append(
                f"{table.name}: {len(single)} class(es) have a single row ({shown}): the split is not stratified "
                "(a class of one row cannot be in both the training and the test split), so the class proportions "
                "of the splits may differ, and such a class is never both trained on and tested"
            )
        else:
            stratify = y
    i_train, i_val, i_test = split_indices(len(X), y, stratify, cfg)
    if classify and table.class_names:
        notes.extend(_class_case_notes(table))
        single_rows = set() if kind != "random" else set(np.flatnonzero(np.bincount(y) == 1).tolist())
        notes.extend(_unseen_class_notes(table, y, i_train, [("validation", i_val), ("test", i_test)], single_rows))
    feature_names, n_features = table.feature_names, table.n_features
    if encoder is not None:
        X, encoder, said = _training_vocabulary(X, encoder, i_train, i_val, i_test, table.name)
        notes.extend(said)
        feature_names, n_features = encoder.feature_names, len(encoder.feature_names)
        notes.extend(_category_case_notes(encoder, table.name))
        if kind == "random":
            notes.extend(_ordered_column_notes(X, encoder, table.name))
    if not classify:
        notes.extend(_constant_target_notes(np.asarray(y)[i_train], table))
        splits = [("training", i_train), ("validation", i_val), ("test", i_test)]
        notes.extend(_target_outlier_notes(np.asarray(y), splits, table, cfg.get("missing", "error") == "drop"))
    notes.extend(_wide_table_notes(n_features, len(i_train), cfg, table.name))
    X_train, y_train, X_test, y_test = _rows(X, i_train), y[i_train], _rows(X, i_test), y[i_test]
    X_val = _rows(X, i_val) if i_val is not None else None
    y_val = y[i_val] if i_val is not None else None
    seen = i_train if i_val is None else np.concatenate([i_train, i_val])
    split = {
        "n_rows": len(X),
        "kind": kind,
        "seed": cfg["seed"],
        "test_split": cfg["test_split"] or 0.2,
        "val_split": cfg["val_split"],
        "test_indices": np.asarray(i_test, dtype=np.int64),
        "train_row_hashes": _hashes(X, seen),
    }
    if classify:  # a stored run's baseline (always the training majority) without its training rows
        split["train_class_counts"] = np.bincount(np.asarray(y)[i_train], minlength=table.n_classes).astype(np.int64)
    del seen
    if encoder is not None:  # its categories are the training rows' (see _training_vocabulary)
        encoder.training_split_vocabulary = True
    preprocess: dict[str, Any] = {"encoder": encoder.state_dict() if encoder is not None else None}
    ranges = training_ranges(X_train, encoder, table.image_shape)
    if ranges is not None:  # predict warns of new values far outside them (absent in older runs: no warning)
        preprocess["ranges"] = ranges
    if cfg.get("missing", "error") in IMPUTE:
        imputer = Imputer(cfg["missing"]).fit(X_train, encoder.blocks() if encoder is not None else None)
        if cfg["missing"] == "constant" and encoder is not None and encoder.offsets and imputer.fill is not None:
            # the constant is 0 in the data's units: a shifted column's 0 is -offset
            imputer.fill = (imputer.fill - encoder.feature_offsets()).astype(np.float32)
        if imputer.unseen:
            names = list(dict.fromkeys(_column_of(feature_names, encoder, j) for j in imputer.unseen))
            notes.append(
                f"{table.name}: column(s) {names} have no value in the training split: ignored (set to a constant, "
                "as if dropped like scikit-learn's SimpleImputer does); their values in new data do not change "
                "predictions"
            )
        notes.extend(_text_fill_notes(imputer, encoder, [X_train, X_val, X_test], table.name, cfg["missing"]))
        X_train, X_test = imputer.transform(X_train), imputer.transform(X_test)
        X_val = imputer.transform(X_val) if X_val is not None else None
        preprocess["imputer"] = imputer.state_dict()
    if cfg["standardize"]:
        # training split only (no peeking at validation/test), and numeric columns only: a one-hot
        # feature stays 0/1 (standardized, a category seen once in n rows would be about sqrt(n))
        one_hot = _one_hot_features(encoder)
        scaler = Standardizer().fit(X_train, passthrough=one_hot)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if X_val is not None:
            X_val = scaler.transform(X_val)
        preprocess["standardizer"] = scaler.state_dict()
    if not classify and cfg.get("scale_target", True):
        preprocess["target_scaler"] = target_scaler(y_train)
    n_outputs = table.n_classes if classify else table.y.shape[1]
    return Prepared(
        X_train,
        y_train,
        X_val,
        y_val,
        X_test,
        y_test,
        table.task,
        n_features,
        n_outputs,
        table.name,
        table.image_shape,
        feature_names,
        table.class_names,
        preprocess,
        split,
        table.task_reason,
        notes,
        table.target_name,
        target_kind,
    )


#: A table with at least this many encoded features per training row is wide: a model with a weight per
#: feature (and an MLP's many more) can fit the training rows' noise. On five tables of 1000-2000 numeric
#: columns and 780 training rows, weight decay 0.1 raised the default MLP's test r2 on every one (0.29 to
#: 0.51 on a sparse linear target), and a linear model with it did best on three of them.
WIDE_FEATURES_PER_ROW = 0.5

#: Below this many features a table is not called wide (a toy file of 8 rows and 4 columns).
WIDE_MIN_FEATURES = 10


def _wide_table_notes(n_features: int, n_train: int, cfg: dict[str, Any], name: str) -> list[str]:
    """A note when the encoded features number at least :data:`WIDE_FEATURES_PER_ROW` of the training
    rows, with what to try that the run does not already do.

    Example:
        >>> _wide_table_notes(1000, 780, {"model": "mlp", "weight_decay": 0.0}, "t.csv")  # doctest: +ELLIPSIS
        ['t.csv: 1000 features for 780 training rows: the model can fit noise; try --model linear --weight-decay 0.1 (or ...']
        >>> _wide_table_notes(100, 780, {"model": "mlp", "weight_decay": 0.0}, "t.csv")
        []
    """
    if n_features < max(WIDE_MIN_FEATURES, WIDE_FEATURES_PER_ROW * n_train):
        return []
    linear = cfg.get("model", "mlp") == "linear"
    decayed = float(cfg.get("weight_decay") or 0.0) > 0
    flags = ([] if linear else ["--model linear"]) + ([] if decayed else ["--weight-decay 0.1"])
    tried = f"try {' '.join(flags)}" if flags else "try a larger --weight-decay"
    if not linear and not decayed:  # weight decay alone helps the MLP too (better on a non-linear target)
        tried += " (or --weight-decay 0.1 with this model)"
    tried += ", or fewer columns"
    return [f"{name}: {n_features} features for {n_train} training rows: the model can fit noise; {tried}"]


#: A text column with more than this fraction of its cells empty is told to be left out or given a word
#: of its own for the blanks: one fill category would stand for most of its rows.
MOSTLY_EMPTY = 0.5


def _text_fill_notes(imputer: Any, encoder: Any, parts: list[Any], name: str, strategy: str) -> list[str]:
    """A note naming the text columns whose empty cells the imputer fills with the column's most frequent
    category (text has no mean or median: scikit-learn's SimpleImputer refuses it), and how many cells;
    for a column mostly empty, what to do instead."""
    from ..data.memmap import is_lazy

    if encoder is None or imputer.fill is None or any(is_lazy(p) for p in parts if p is not None):
        return []
    arrays = [np.asarray(p) for p in parts if p is not None and len(p)]
    if not arrays:
        return []
    n_rows = sum(len(a) for a in arrays)
    filled, empty = [], []
    for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns):
        if not categorical or any(j in imputer.unseen for j in range(start, stop)):
            continue  # (a column never seen in training has a note of its own)
        blank = sum(int(np.isnan(a[:, start:stop]).any(axis=1).sum()) for a in arrays)
        if not blank:
            continue
        category = encoder.feature_names[start + int(np.argmax(imputer.fill[start:stop]))].split("=", 1)[-1]
        filled.append(f"{col!r} ({blank} of {n_rows} cells, with {category!r})")
        if blank > MOSTLY_EMPTY * n_rows:
            empty.append(str(col))
    if not filled or (strategy == "most_frequent" and not empty):
        return []  # most_frequent asked for exactly this; say so only when the column is mostly empty
    notes = []
    if strategy != "most_frequent":
        notes.append(
            f"{name}: --missing {strategy} filled the empty cells of text column(s) {', '.join(filled)} with the "
            "column's most frequent category: text has no mean or median"
        )
    if empty:
        notes.append(
            f"{name}: text column(s) {empty} are mostly empty (over {MOSTLY_EMPTY:.0%} of the cells): filled with one "
            f"category, most rows look alike there; leave them out (--drop {shlex.quote(','.join(empty))}), or write a word of "
            "their own for the blanks (e.g. 'missing') in the file, if being blank means something"
        )
    return notes


def training_ranges(X_train: Any, encoder: Any, image_shape: Any = None) -> dict[str, np.ndarray] | None:
    """Each numeric feature's smallest and largest value over the training rows, as encoded (float64;
    missing values ignored): ``features`` (their indices), ``min``, ``max``. None for images (a pixel is no
    column a user fills in), a memory-mapped source (read in chunks, never whole), or no numeric feature;
    one-hot features and features without any value in the training rows are left out.

    Example:
        >>> r = training_ranges(np.array([[18.0, 1.0], [65.0, np.nan], [40.0, 3.0]]), None)
        >>> r["features"].tolist(), r["min"].tolist(), r["max"].tolist()
        ([0, 1], [18.0, 1.0], [65.0, 3.0])
    """
    if image_shape is not None or not isinstance(X_train, np.ndarray) or X_train.ndim != 2 or not len(X_train):
        return None
    one_hot = set(_one_hot_features(encoder))
    wanted = np.array([j for j in range(X_train.shape[1]) if j not in one_hot], dtype=np.int64)
    if not len(wanted):
        return None
    low, high = np.full(len(wanted), np.nan), np.full(len(wanted), np.nan)
    # a block of columns at a time: a wide table's float64 copy would double its memory
    step = max(1, HASH_CHUNK_BYTES // max(1, 8 * len(X_train)))
    for begin in range(0, len(wanted), step):
        block = np.asarray(X_train[:, wanted[begin : begin + step]], dtype=np.float64)
        held = ~np.isnan(block).all(axis=0)
        if held.any():
            low[begin : begin + step][held] = np.nanmin(block[:, held], axis=0)
            high[begin : begin + step][held] = np.nanmax(block[:, held], axis=0)
    present = ~np.isnan(low)
    if not present.any():
        return None
    return {"features": wanted[present], "min": low[present], "max": high[present]}


#: With --missing drop every text column is read again for a word read as missing ('NA'), in files up to
#: this size (a second reading of a column of a bigger file costs seconds).
WORD_CHECK_BYTES = 64 * 2**20


def _word_marker_notes(cfg: dict[str, Any], table: Any, encoder: Any) -> list[str]:
    """A note for each text column where a default missing-value marker that is also a word or a code ('NA':
    Namibia's country code; 'None') was read as missing among the column's categories: how many cells, and
    the option that keeps them (``--na-values``). Only the columns with missing cells are read again, one by
    one (a CSV with a header row; the default markers only: a run that set them has chosen)."""
    import os

    from ..data.csvfile import csv_suffix, default_delimiter, read_column
    from ..data.encoding import FILL_TEXT, WORD_MARKERS, na_values_advice

    source = str(cfg["data"])
    if encoder is None or cfg.get("na_values") is not None or csv_suffix(source) is None or not cfg.get("header", True):
        return []
    X = table.X
    dropped = cfg.get("missing") == "drop"  # the rows are gone from X: any text column may have held one
    if dropped and os.path.getsize(source) > WORD_CHECK_BYTES:
        return []
    suspects = [
        col
        for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns)
        if categorical
        and stop > start
        # missing cells: NaN in the block, or --missing constant's category of their own
        and (dropped or FILL_TEXT in encoder.categories[col] or np.isnan(np.asarray(X[:, start], np.float32)).any())
    ]
    notes = []
    delimiter = default_delimiter(source, str(cfg.get("sep", ",")))
    for col in suspects:
        _, cells = read_column(source, col, delimiter)
        words: dict[str, int] = {}
        for cell in cells:
            word = cell.strip()
            if word.lower() in WORD_MARKERS:
                words[word] = words.get(word, 0) + 1
        for word, count in words.items():
            shown = ", ".join(repr(c) for c in encoder.categories[col][:5])
            more = ", ..." if len(encoder.categories[col]) > 5 else ""
            notes.append(
                f"{source}: column {col!r}: {count} cell{'s' if count != 1 else ''} {word!r} read as missing "
                f"values (a default missing-value marker) among the categories {shown}{more}; {na_values_advice(word)}"
            )
    return notes


def _one_hot_features(encoder: Any) -> list[int]:
    """The feature indices of an encoder's one-hot blocks (none without an encoder)."""
    if encoder is None:
        return []
    return [j for start, stop, categorical in encoder.blocks() if categorical for j in range(start, stop)]


def _training_vocabulary(
    X: np.ndarray,
    encoder: Any,
    i_train: np.ndarray,
    i_val: np.ndarray | None,
    i_test: np.ndarray,
    name: str,
) -> tuple[np.ndarray, Any, list[str]]:
    """The features and encoder with each one-hot column's categories cut to those of the training rows.

    The reader finds the categories in the whole file; a category met only in validation or test rows
    would become a feature whose weights never train, and would tell the model which rows are held out.
    Such rows get all zeros in that column's block (scikit-learn's ``handle_unknown='ignore'``); a note
    says how many. A column with no value at all in the training rows keeps its categories (the
    :class:`~downslope.data.encoding.Imputer` ignores it)."""
    from ..data.encoding import TabularEncoder

    keep = np.ones(X.shape[1], dtype=bool)
    categories = dict(encoder.categories)
    for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns):
        if not categorical or stop == start:
            continue
        block = np.nan_to_num(np.asarray(X[i_train, start:stop], dtype=np.float32))
        present = block.max(axis=0) > 0 if len(block) else np.zeros(stop - start, dtype=bool)
        if not present.any() or present.all():
            continue
        keep[start:stop] = present
        categories[col] = [c for c, p in zip(encoder.categories[col], present) if p]
    if keep.all():
        return X, encoder, []
    notes = []
    held = [("validation", i_val), ("test", i_test)]
    for split_name, rows in held:
        if rows is None or not len(rows):
            continue
        unseen_rows = np.zeros(len(rows), dtype=bool)
        by_column = []
        for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns):
            dropped = np.flatnonzero(~keep[start:stop]) + start
            if not categorical or not len(dropped):
                continue
            hit = np.nan_to_num(np.asarray(X[np.ix_(rows, dropped)], dtype=np.float32)).max(axis=1) > 0
            if hit.any():
                by_column.append(f"{col!r}: {int(hit.sum())}")
                unseen_rows |= hit
        if unseen_rows.any():
            notes.append(
                f"{name}: {int(unseen_rows.sum())} of the {len(rows)} {split_name} rows hold a category that is not "
                f"in the training split (rows by column: {', '.join(by_column)}); the categories are learned from "
                "the training rows only, so such a category is encoded as all zeros (scikit-learn's "
                "handle_unknown='ignore') in the reported metrics; 'downslope predict' and 'evaluate' refuse a "
                "category not seen in training unless given --unknown-categories ignore (which encodes it the same way)"
            )
    state = encoder.state_dict()
    state["categories"] = categories
    pruned = TabularEncoder.from_state_dict(state)
    return np.ascontiguousarray(X[:, keep]), pruned, notes


def _case_variants(values: list[Any]) -> str:
    """The groups of ``values`` that differ only in case or spaces, in words ('' when there are none).

    Example:
        >>> _case_variants(["Cat", "cat", "Dog", "dog ", "cow"])
        "'Cat', 'cat'; and 1 more such group(s)"
    """
    groups: dict[str, list[str]] = {}
    for v in values:
        groups.setdefault(" ".join(str(v).split()).lower(), []).append(str(v))
    variants = [g for g in groups.values() if len(g) > 1]
    if not variants:
        return ""
    more = f"; and {len(variants) - 1} more such group(s)" if len(variants) > 1 else ""
    return ", ".join(repr(v) for v in variants[0][:4]) + more


def _category_case_notes(encoder: Any, name: str) -> list[str]:
    """A note for each one-hot column whose categories differ only in case or spaces (Red, RED, red)."""
    notes = []
    for col, cats in encoder.categories.items():
        example = _case_variants(list(cats))
        if example:
            notes.append(
                f"{name}: column {col!r} has categories that differ only in upper/lower case or spaces ({example}): "
                "each is a category of its own; write them alike in the file if they mean the same"
            )
    return notes


def _class_case_notes(table: Any) -> list[str]:
    """A note when the target's classes differ only in case or spaces (Cat, cat): separate classes."""
    example = _case_variants(list(table.class_names))
    if not example:
        return []
    target = f"{table.target_name!r} " if table.target_name else ""
    return [
        f"{table.name}: the target {target}has classes that differ only in upper/lower case or spaces ({example}): "
        f"each is a class of its own ({len(table.class_names)} classes); write them alike in the file if they "
        "mean the same, or merge them with --merge-label-variants (merge_label_variants = true in a config file)"
    ]


def _unseen_class_notes(
    table: Any, y: np.ndarray, i_train: np.ndarray, held: list[tuple[str, np.ndarray | None]], skip: set[int]
) -> list[str]:
    """A note for each held-out split holding classes that no training row has: the model never saw them
    (an ordered split whose last rows bring a new class), so every such row is an error in its metrics.
    Classes in ``skip`` are left out (already named by another note)."""
    y = np.asarray(y).reshape(-1)
    trained = set(np.unique(y[i_train]).tolist())
    names = list(table.class_names)
    notes = []
    for split_name, rows in held:
        if rows is None or not len(rows):
            continue
        values = y[rows]
        unseen = [c for c in np.unique(values).tolist() if c not in trained and c not in skip]
        if not unseen:
            continue
        count = int(np.isin(values, unseen).sum())
        shown = ", ".join(repr(names[c] if c < len(names) else str(c)) for c in unseen[:5])
        shown += ", ..." if len(unseen) > 5 else ""
        notes.append(
            f"{table.name}: class(es) {shown} appear in {count} of the {len(rows)} {split_name} rows but in no "
            "training row: the model never saw them in training and cannot predict them, so those rows count as "
            "errors in its metrics"
        )
    return notes


_ID_NAME = re.compile(r"(^|[_\s.-])(id|idx|index|row|rownum|rowid|row_id|no|nr)$", re.IGNORECASE)


def _ordered_column_notes(X: np.ndarray, encoder: Any, name: str) -> list[str]:
    """A note when a numeric feature rises (or falls) with the row order: a time stamp, in a file sorted
    by time, split at random."""
    for (start, stop, categorical), col in zip(encoder.blocks(), encoder.columns):
        if categorical or stop - start != 1:
            continue
        values = np.asarray(X[:, start], dtype=np.float64)
        values = values[~np.isnan(values)]
        if len(values) < 10:
            continue
        step = np.diff(values)
        if not ((step >= 0).all() or (step <= 0).all()) or len(np.unique(values)) < 10:
            continue
        rises = "increases" if step.sum() > 0 else "decreases"
        time_order = (
            "if the rows are in time order, a random split puts test rows between training rows in time and the "
            "test score is optimistic for predicting later data: --split ordered gives an honest score (split = "
            '"ordered" in a config file)'
        )
        counter = (
            f"if {col!r} is a row number or an id, it tells nothing about new rows: leave it out with "
            f"--drop {shlex.quote(str(col))}"
        )
        by_one = bool((np.abs(step) == 1).all())
        if by_one or _ID_NAME.search(str(col)):  # most likely a counter: that advice first
            how = ", by one per row" if by_one else ""
            return [f"{name}: column {col!r} {rises} with the row order{how} (a row counter?): {counter}; {time_order}"]
        return [
            f"{name}: column {col!r} {rises} with the row order: {time_order}; {counter}; if the file is merely "
            "sorted by this column, nothing needs to change"
        ]
    return []


def _constant_target_notes(y_train: np.ndarray, table: Any) -> list[str]:
    """A note when a regression target holds a single value in the training split: nothing to learn."""
    wide = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    if not len(wide):
        return []
    constant = [j for j in range(wide.shape[1]) if (wide[:, j] == wide[0, j]).all()]
    if not constant:
        return []
    target = f"{table.target_name!r} " if table.target_name else ""
    value = ", ".join(f"{wide[0, j]:.6g}" for j in constant)
    return [
        f"{table.name}: the target {target}has a single value ({value}) in all {len(wide)} training rows "
        "(standard deviation 0): there is nothing to learn, and every prediction is that value at best"
    ]


#: A regression target value more than this many robust standard deviations (1.4826 x the median absolute
#: deviation, the standard deviation for normal data) from the median is an extreme outlier: for normal
#: data one in about 10^23 values is that far out.
OUTLIER_SCALES = 10.0


def target_outliers(y: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Which rows of a regression target ``y`` hold an extreme value in any column: more than
    :data:`OUTLIER_SCALES` robust standard deviations of ``reference`` (``y`` itself by default) from its
    median. A column whose median absolute deviation is 0 (mostly one value) has no robust scale: none
    of its values is called an outlier.

    Example:
        >>> y = np.r_[np.linspace(1e5, 3e5, 50), 6.5e6].reshape(-1, 1)
        >>> np.flatnonzero(target_outliers(y)).tolist()
        [50]
    """
    wide = np.asarray(y, np.float64).reshape(len(y), -1)
    ref = wide if reference is None else np.asarray(reference, np.float64).reshape(len(reference), -1)
    if not len(wide) or not len(ref):
        return np.zeros(len(wide), dtype=bool)
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(ref, axis=0)
        scale = 1.4826 * np.nanmedian(np.abs(ref - median), axis=0)
        far = np.abs(wide - median) > OUTLIER_SCALES * np.where(scale > 0, scale, np.inf)
    return np.asarray(far.any(axis=1), dtype=bool)


def _target_outlier_notes(
    y: np.ndarray, splits: list[tuple[str, np.ndarray | None]], table: Any, rows_dropped: bool
) -> list[str]:
    """A note naming a regression target's extreme outliers (see :func:`target_outliers`): with squared
    errors a few such rows dominate the loss, the validation loss that early stopping watches, and r2."""
    far = np.flatnonzero(target_outliers(y))
    if not len(far):
        return []
    wide = np.asarray(y, np.float64).reshape(len(y), -1)
    target = f"{table.target_name!r} " if table.target_name else ""
    values = ", ".join(f"{v:.4g}" for v in wide[far[:5], 0]) + (", ..." if len(far) > 5 else "")
    more = ", ..." if len(far) > 5 else ""
    lines = table.line_of([int(r) for r in far[:5]]) if getattr(table, "line_of", None) is not None else []
    if lines and None not in lines:  # a CSV: its file lines, as every other message names rows
        rows = f"file line(s) {', '.join(str(n) for n in lines)}{more}"
    else:
        counted = "of the rows kept, " if rows_dropped else ""
        rows = f"data row(s) {', '.join(str(int(r) + 1) for r in far[:5])}{more}, {counted}counted from the first row after the header"
    where = ", ".join(
        f"{int(np.isin(far, idx).sum())} in {name}"
        for name, idx in splits
        if idx is not None and np.isin(far, idx).any()
    )
    median = ", ".join(f"{v:.4g}" for v in np.median(wide, axis=0))
    return [
        f"{table.name}: the target {target}has {len(far)} extreme value(s), more than {OUTLIER_SCALES:g} robust "
        f"standard deviations (1.4826 x the median absolute deviation) from its median {median}: {values} ({rows}; "
        f"{where}). With squared errors a few "
        "such rows drive the loss, early stopping and the model: check them, leave them out, or try --loss huber"
    ]


def _column_of(feature_names: list[str], encoder: Any, j: int) -> str:
    """The column a feature index belongs to (a one-hot feature's column, not ``col=value``)."""
    if encoder is not None:
        for (start, stop, _), col in zip(encoder.blocks(), encoder.columns):
            if start <= j < stop:
                return str(col)
    return feature_names[j] if j < len(feature_names) else f"feature {j}"


def _check_many_classes(cfg: dict[str, Any], table: Any, notes: list[str]) -> None:
    """Refuse an inferred classification target with many classes for its rows (a warning when
    --task classification was given): see :func:`~downslope.data.encoding.many_classes_problem`."""
    from ..data.encoding import many_classes_problem
    from ..errors import DataError

    problem = many_classes_problem(list(table.class_names), len(table.y))
    if problem is None:
        return
    target = f"{table.target_name!r} " if table.target_name else ""
    if cfg.get("task", "auto") == "auto":
        raise DataError(f"{table.name}: the target {target}was read as class labels: {problem}")
    notes.append(f"{table.name}: the target {target}has {problem}")


def apply_preprocess(X: np.ndarray, preprocess: dict[str, Any], where: str = "data") -> np.ndarray:
    """Raw features -> model inputs, as in training: fill missing values, then standardize."""
    from ..data.datasets import Standardizer
    from ..data.tabular import Imputer
    from ..errors import DataError

    X = np.asarray(X, dtype=np.float32)
    if preprocess.get("imputer"):
        X = Imputer.from_state_dict(preprocess["imputer"]).transform(X)
    elif np.isnan(X).any():
        r, c = np.argwhere(np.isnan(X))[0]
        raise DataError(
            f"{where}: missing value at row {r}, feature {c}; the model was trained without filling missing "
            "values (train with --missing mean|median|most_frequent to have them filled)"
        )
    if preprocess.get("standardizer"):
        scaler = Standardizer()
        scaler.load_state_dict(preprocess["standardizer"])
        return scaler.transform(X)
    return X


def feature_offsets(preprocess: dict[str, Any], n_features: int) -> np.ndarray:
    """Per feature, what the encoder subtracted (in float64) before the float32 cast (0 where nothing):
    a feature in the data's units is the encoded value plus its offset.

    Example:
        >>> enc = {"columns": ["t", "c"], "target": "y", "categories": {"c": ["a", "b"]}, "task": "regression",
        ...        "classes": [], "offsets": {"t": 1.7e9}}
        >>> feature_offsets({"encoder": enc}, 3).tolist()
        [1700000000.0, 0.0, 0.0]
    """
    from ..data.encoding import TabularEncoder

    state = preprocess.get("encoder")
    if not state or not state.get("offsets"):
        return np.zeros(n_features)
    return TabularEncoder.from_state_dict(state).feature_offsets()


def target_scaler(y: np.ndarray) -> dict[str, np.ndarray]:
    """The target standardizer's state (``mean``, ``scale``: a Standardizer's format) fitted in float64:
    a target of 1e9 + N(10, 3.6) keeps its spread (in float32, 1e9 + 10 is 1e9).

    Example:
        >>> s = target_scaler(np.array([[1e9 + 7.0], [1e9 + 13.0]]))
        >>> float(s["mean"][0]) - 1e9, float(s["scale"][0])
        (10.0, 3.0)
    """
    wide = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean = wide.mean(axis=0)
    std = np.sqrt(((wide - mean) ** 2).mean(axis=0))
    return {"mean": mean, "scale": np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)}


def model_targets(y: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    """Targets in the units the model is trained on (standardized for regression by default), float32
    for a regression (the standardization itself is computed in float64)."""
    state = preprocess.get("target_scaler")
    y = np.asarray(y)
    if not state:
        return y.astype(np.float32) if y.dtype.kind == "f" else y
    wide = np.asarray(y, np.float64)
    return ((wide - np.asarray(state["mean"], np.float64)) / np.asarray(state["scale"], np.float64)).astype(np.float32)


def data_units(outputs: np.ndarray, preprocess: dict[str, Any]) -> np.ndarray:
    """Model outputs back in the data's units (undoes the target standardization).

    Example:
        >>> pre = {"target_scaler": {"mean": np.array([1e5]), "scale": np.array([2e4])}}
        >>> data_units(np.array([[0.5]]), pre).tolist(), model_targets(np.array([[1.1e5]]), pre).tolist()
        ([[110000.0]], [[0.5]])
    """
    state = preprocess.get("target_scaler")
    if not state:
        return outputs
    if not isinstance(outputs, (np.ndarray, np.generic, float, int, list)):  # a Tensor (a plot's model): float32
        return outputs * np.asarray(state["scale"], np.float32) + np.asarray(state["mean"], np.float32)
    # float64: a mean of 1e9 plus outputs of order 1 keeps the outputs' digits
    return np.asarray(outputs, np.float64) * np.asarray(state["scale"], np.float64) + np.asarray(
        state["mean"], np.float64
    )
