"""Numbers written with commas or as Excel writes them ("1,234.50", '12, 12%, quoted or not) are read column by
column, without pyarrow too (NumPy's parser, Python's csv module for quoted fields), with the same tables, notes,
recorded number format and errors as the row-by-row reader (and pyarrow where installed); so are files read
with a number format given (--thousands ','), and new files for a run whose columns have formats."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from downslope.data import columns, csvfile, readers
from downslope.data.tabular import encode_csv, read_csv, read_rows
from downslope.errors import ConfigError, DataError

HOW = ["numpy", "rows"] + (["arrow"] if importlib.util.find_spec("pyarrow") is not None else [])


def outcome(path: Path, how: str, **options: object) -> tuple[object, ...]:
    """``how``: 'numpy' (NumPy's parser, the reader without pyarrow), 'rows' (the row-by-row reader) or 'arrow'."""
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    readers.FAST_CSV, readers.NUMPY_CSV = how == "arrow", how == "numpy"
    try:
        table, encoder = read_csv(path, **options)  # type: ignore[arg-type]
    except (DataError, ConfigError) as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    lines = table.line_of(list(range(len(table.X))))
    state = encoder.state_dict()
    return ("table", table.X, table.y, state, table.task, table.notes, lines, table.number_format)


def assert_same(path: Path, **options: object) -> tuple[object, ...]:
    found = {how: outcome(path, how, **options) for how in HOW}
    ours = found["numpy"]
    for how, peer in found.items():
        assert ours[0] == peer[0], f"numpy: {ours[:3]}\n{how}: {peer[:3]}"
        if ours[0] == "error":
            assert ours == peer, how
        else:
            np.testing.assert_array_equal(ours[1], peer[1], err_msg=how)
            np.testing.assert_array_equal(ours[2], peer[2], err_msg=how)
            assert ours[3:] == peer[3:], how
    return ours


@pytest.fixture
def column_wise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyarrow; the row-by-row reader refuses to run: a file read here was read column by column."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read by the row-by-row reader")

    monkeypatch.setattr(readers, "FAST_CSV", False)
    monkeypatch.setattr(readers, "NUMPY_CSV", True)
    monkeypatch.setattr(csvfile, "read_rows", refuse)


def grouped_file(path: Path, n: int = 120, seed: int = 0, quoted: bool = True) -> Path:
    """Prices grouped by commas (some under 1,000: no comma), a quoted place with a comma inside, a plain number,
    the target."""
    r = np.random.default_rng(seed)
    places = ['"New York, NY"', '"Oslo"', '"The ""Hub"", Leeds"']
    q = '"' if quoted else ""
    rows = [
        f"{q}{price:,.2f}{q},{places[k]},{x:.3f},{2 * x + price / 1e4:.4f}"
        for price, k, x in zip(r.random(n) * 20_000, r.integers(0, 3, n), r.normal(size=n), strict=True)
    ]
    path.write_text("price,place,x,y\n" + "\n".join(rows) + "\n")
    return path


def test_grouped_quoted_numbers_are_read_column_wise_without_pyarrow(tmp_path: Path, column_wise: None) -> None:
    path = grouped_file(tmp_path / "g.csv")
    table, encoder = read_csv(path, target="y")
    assert encoder.formats == {"price": (".", ",")} and table.number_format == (".", ",")
    cells = path.read_text().splitlines()[1:]
    first = next(c.split('"')[1] for c in cells if "," in c.split('"')[1])
    assert table.notes[0] == (
        f"{path}: column 'price' holds numbers written like {first!r}: read as numbers (as with --thousands ',')"
    )
    price = np.array([float(c.split('"')[1].replace(",", "")) for c in cells])
    np.testing.assert_allclose(table.X[:, encoder.feature_names.index("price")], price, rtol=1e-6)


@pytest.mark.parametrize("quoted", [True, False])
def test_grouped_numbers_read_as_the_row_reader_reads_them(tmp_path: Path, quoted: bool) -> None:
    path = grouped_file(tmp_path / "g.csv", quoted=quoted)
    if not quoted:  # unquoted, the commas split the cells: a file of another width, refused alike
        assert assert_same(path, target="y")[0] == "error"
        return
    ours = assert_same(path, target="y")
    assert ours[0] == "table" and ours[-1] == (".", ",")
    assert_same(path, target="y", thousands=",")  # the run's repeat: the format given
    assert_same(path, target="price")  # the target written with commas


def test_other_ways_of_writing_numbers_match(tmp_path: Path) -> None:
    cases = {
        # Excel's percent signs and apostrophes: read as the numbers shown, with their note
        "pct": ["a,b,y"] + [f"{i}%,'{i * 2},{i % 3}" for i in range(40)],
        # the Unicode minus sign
        "minus": ["a,y"] + [f"\u2212{i}.5,{i}" for i in range(30)],
        # commas that are not all grouping thousands ('3,5'): refused, naming the column
        "ambiguous": ["a,y"] + [f'"{i},{"500" if i % 2 else "5"}",{i}' for i in range(30)],
        # grouped numbers beside words: text, so categories
        "words": ["a,y"] + [f'"{["1,200", "red", "2,400"][i % 3]}",{i}' for i in range(30)],
        # grouped numbers and padded plain numbers in another column: the format is still the file's
        "padded": ["a,b,y"] + [f'"{i},{i % 10}00", {i} ,{i % 4}' for i in range(1, 40)],
        # a number written with an underscore beside grouped ones: Python's syntax only, refused in place
        "underscore": ["a,y"] + [f'"{i},000",{i}' for i in range(1, 30)] + ["1_000,5"],
        # a missing value, and a grouped target
        "gaps": ["a,y"] + [f'"{i},250",' + ("NA" if i == 7 else f'"{i * 3},000"') for i in range(1, 40)],
        # a ';'-separated file: its decimal commas decided by the row-by-row reader
        "semicolon": ["a;b;y"] + [f"{i},5;{i}.207;{i}" for i in range(1, 30)],
        # a wide file of tabs with grouped numbers
        "tabs": ["a\tb\ty"] + [f"{i},{i % 10}00\t{i * 0.5}\t{i % 2}" for i in range(1, 40)],
    }
    for name, lines in cases.items():
        suffix = ".tsv" if name == "tabs" else ".csv"
        path = tmp_path / f"{name}{suffix}"
        path.write_text("\n".join(lines) + "\n")
        options: dict[str, object] = {"delimiter": ";"} if name == "semicolon" else {}
        for missing in ("error", "mean"):
            assert_same(path, missing=missing, **options)


def test_a_format_given_is_read_column_wise_without_pyarrow(tmp_path: Path, column_wise: None) -> None:
    path = grouped_file(tmp_path / "g.csv")
    table, encoder = read_csv(path, target="y", thousands=",")
    assert set(encoder.formats.values()) == {(".", ",")} and table.number_format is None
    path = tmp_path / "eu.csv"
    path.write_text("a;b;y\n" + "\n".join(f"{i}.250,5;{i},5;{i % 3}" for i in range(1, 40)) + "\n")
    table, _ = read_csv(path, target="y", delimiter=";", decimal=",", thousands=".")
    np.testing.assert_array_equal(table.X[:3, 0], [1250.5, 2250.5, 3250.5])


def test_a_number_not_in_the_format_given_is_refused_as_the_row_reader_does(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("a;y\n" + "\n".join(f"{i},5;{i}" for i in range(1, 30)) + "\n2.5;7\n")
    ours = assert_same(path, target="y", delimiter=";", decimal=",", thousands=".")
    assert ours[0] == "error" and f"{path}:31:1 (column 'a')" in str(ours[2])


def test_new_files_of_a_run_with_formats_are_read_column_wise(tmp_path: Path, column_wise: None) -> None:
    train = grouped_file(tmp_path / "g.csv")
    _, encoder = read_csv(train, target="y")
    assert encoder.formats == {"price": (".", ",")}
    encoder.stage = "predict"
    new = grouped_file(tmp_path / "new.csv", n=50, seed=3)
    got = encode_csv(new, encoder, need_target=True)
    assert got is not None
    header, rows = read_rows(new)
    np.testing.assert_array_equal(got[1], encoder.encode_features(header, rows, str(new)))


@pytest.mark.parametrize("how", HOW[:1] + HOW[2:])
def test_a_mistyped_grouped_number_in_new_data_is_named_by_line_and_column(tmp_path: Path, how: str) -> None:
    saved = readers.FAST_CSV, readers.NUMPY_CSV
    try:
        readers.FAST_CSV, readers.NUMPY_CSV = how == "arrow", how == "numpy"
        _, encoder = read_csv(grouped_file(tmp_path / "g.csv"), target="y")
        encoder.stage = "predict"
        new = tmp_path / "new.csv"
        new.write_text('price,place,x\n"1,950",Oslo,1\n"1,95",Oslo,2\n')
        with pytest.raises(DataError) as fast:
            columns.encode_csv(new, encoder)
        header, rows = read_rows(new)
        with pytest.raises(DataError) as slow:
            encoder.encode_features(header, rows, str(new))
    finally:
        readers.FAST_CSV, readers.NUMPY_CSV = saved
    assert str(fast.value) == str(slow.value) and f"{new}:3:1 (column 'price')" in str(fast.value)


def test_excel_numbers_under_a_format_given_are_noted_alike(tmp_path: Path) -> None:
    path = tmp_path / "pct.csv"
    path.write_text("a,b,y\n" + "\n".join(f'"{i},000",{i}%,{i % 3}' for i in range(1, 40)) + "\n")
    ours = assert_same(path, thousands=",")
    assert ours[0] == "table" and "(the apostrophe or % sign stripped)" in ours[5][0]  # type: ignore[index]
