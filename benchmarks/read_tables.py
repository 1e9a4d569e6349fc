"""Reading tables: seconds and peak memory of downslope's CSV reader beside pandas, pyarrow and NumPy.

The files have N rows of 10 numeric columns (``x0`` ... ``x8`` and the target ``y``) plus one text
column (``colour``, 4 categories), N = 10^5, 10^6 (and 10^7 with ``--big``). Each reader runs in
its own fresh process, so the peaks do not mix: it reports the wall time of the read and the peak
resident memory (ru_maxrss) above what the process held just before reading (the interpreter and
the imported libraries), beside the file's size.

Readers:
- ``downslope``: ``downslope.data.tabular.read_table(path, target="y")``: the whole CLI path (type
  inference, one-hot encoding of ``colour``, float32 features), with the fast parser when installed.
- ``downslope (no pyarrow)``: the same with the fast parser switched off: NumPy's C parser where it reads
  the file as Python's csv module does (10^5 rows only unless ``--python-all``).
- ``pandas``: ``pandas.read_csv`` (C parser); ``pyarrow``: ``pyarrow.csv.read_csv``; both only parse.
- ``numpy``: ``numpy.loadtxt`` of the 10 numeric columns as float32 (it cannot read the text column).

Target: downslope reads 10^6 rows in <= 3 s with a peak <= 3x the file's size.

``--shapes`` times other shapes instead, in CPU seconds (medians of ``--repeats`` fresh processes) beside
pandas' C engine: 100,001 rows x 30 and 10^6 rows x 10 numeric columns, 10^6 rows x 30 numeric columns
(~220 MB), 2x10^5 rows x 30 mixed columns (numbers, categories, missing cells) and 2x10^5 rows with quoted
fields (separators and line ends inside quotes), 10^5 rows x 20 with quoted numbers ("1234.50") and the same
grouped by commas ("1,234.50": the format found in the file), 10^5 rows x 20 ';'-separated with decimal commas
("3,5", "-1.234,56": found in the file; pandas is given decimal=',' thousands='.'); each read by downslope with pyarrow (``downslope``) and
without it (``downslope-numpy``: NumPy's parser), and the ratios to pandas printed. Target: at most ~2x
pandas for the numeric and mixed files with pyarrow.
``--src DIR`` reads with another checkout's ``src`` (to compare before and after a change).

Run: python benchmarks/read_tables.py [--quick] [--big] [--python-all] [--dir DIR]
     python benchmarks/read_tables.py --shapes [--repeats 3] [--src DIR] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import smoke  # noqa: E402

SRC = os.path.join(os.path.dirname(HERE), "src")
COLUMNS = [f"x{i}" for i in range(9)] + ["y", "colour"]

READ = """
import json, os, resource, sys, time
sys.path.insert(0, {src!r})
kind, path = {kind!r}, {path!r}
if kind.startswith("downslope"):
    from downslope.data import tabular, readers
    if kind == "downslope-python":
        readers.FAST_CSV = False
    elif readers.fast_csv_available():
        import pyarrow.csv, pyarrow.compute  # imported before the start is measured, as in the pyarrow reader's process
    read = lambda: tabular.read_table(path, target="y")
elif kind == "pandas":
    import pandas
    read = lambda: pandas.read_csv(path)
elif kind == "pyarrow":
    import pyarrow.csv
    read = lambda: pyarrow.csv.read_csv(path)
else:
    import numpy
    read = lambda: numpy.loadtxt(path, delimiter=",", skiprows=1, usecols=range(10), dtype=numpy.float32)
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
base = rss()
start = time.perf_counter()
out = read()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "base_kb": base, "peak_kb": peak}}))
"""


def write_csv(path: str, n: int, seed: int = 0) -> None:
    """N rows x (10 numbers + 1 text column), written in chunks (NumPy's savetxt)."""
    rng = np.random.default_rng(seed)
    fmt = ",".join(["%.6f"] * 10) + ",c%d"
    with open(path, "w") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for start in range(0, n, 200_000):
            m = min(200_000, n - start)
            block = np.empty((m, 11))
            block[:, :9] = rng.standard_normal((m, 9))
            block[:, 9] = block[:, :9] @ np.linspace(-1, 1, 9) + 0.1 * rng.standard_normal(m)
            block[:, 10] = rng.integers(0, 4, m)
            np.savetxt(handle, block, fmt=fmt)


def measure(kind: str, path: str, timeout: float) -> dict[str, float] | str:
    code = READ.format(src=SRC, kind=kind, path=path)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


SHAPE_READ = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
kind, path, sep = {kind!r}, {path!r}, {sep!r}
if kind.startswith("downslope"):
    from downslope.data import tabular, readers
    if kind == "downslope-numpy":
        readers.FAST_CSV = False  # NumPy's parser (the reader without pyarrow)
    elif kind == "downslope-rows":
        readers.FAST_CSV = readers.NUMPY_CSV = False  # the row-by-row reader (Python's csv module)
    elif readers.fast_csv_available():
        import pyarrow.csv, pyarrow.compute  # imported before the start, as pandas is
    read = lambda: tabular.read_table(path, target="y", missing="mean", delimiter=sep)
else:
    import pandas
    european = dict(decimal=",", thousands=".") if sep == ";" else {{}}
    read = lambda: pandas.read_csv(path, engine="c", sep=sep, **european)
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
base = rss()
cpu, wall = time.process_time(), time.perf_counter()
out = read()
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"cpu": cpu, "wall": wall, "extra_mb": (peak - base) / 1024}}))
"""


def write_numeric(path: str, n: int, width: int = 30, seed: int = 0) -> None:
    """N rows x ``width`` numbers written with 4 decimals (the last column, ``y``, the target)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        handle.write(",".join([f"x{i}" for i in range(width - 1)] + ["y"]) + "\n")
        for start in range(0, n, 100_000):
            np.savetxt(handle, rng.standard_normal((min(100_000, n - start), width)), fmt="%.4f", delimiter=",")


def write_mixed(path: str, n: int, seed: int = 0) -> None:
    """N rows x 30 columns: 20 numbers (5% missing: empty or NA), 9 categories (c0..c19), the numeric target."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        handle.write(",".join([f"x{i}" for i in range(20)] + [f"k{i}" for i in range(9)] + ["y"]) + "\n")
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            numbers = np.char.mod("%.3f", rng.standard_normal((m, 20)))
            gaps = rng.random((m, 20))
            numbers[gaps < 0.05] = "NA"
            numbers[gaps < 0.025] = ""
            categories = np.char.add("c", rng.integers(0, 20, (m, 9)).astype(str))
            target = np.char.mod("%.3f", rng.standard_normal((m, 1)))
            rows = np.concatenate([numbers, categories, target], axis=1)
            handle.write("\n".join(",".join(row) for row in rows.tolist()) + "\n")


def write_quoted(path: str, n: int, seed: int = 0) -> None:
    """N rows: 6 numbers, a quoted note (a comma inside; every 50th spans two lines), a category, the target."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        handle.write("a,b,c,d,e,f,note,kind,y\n")
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            numbers = np.char.mod("%.3f", rng.standard_normal((m, 6))).tolist()
            notes = rng.integers(0, 40, m).tolist()
            lines = []
            for i, (row, note) in enumerate(zip(numbers, notes)):
                text = f'"note {note}, see ""{note % 7}""' + ('\nsecond line"' if (start + i) % 50 == 0 else '"')
                lines.append(",".join(row) + f",{text},k{note % 5},{(start + i) % 3 * 0.5}")
            handle.write("\n".join(lines) + "\n")


def write_quoted_wide(path: str, n: int, seed: int = 0, grouped: bool = False) -> None:
    """N rows x 20: 10 quoted numbers ("1234.50"), 5 quoted places with a comma inside ("New York, NY"), 4
    plain numbers, the target. ``grouped=True`` groups the quoted numbers' thousands by commas ("31,848.08",
    some under 1,000): the reader must find that format in the file (as with --thousands ',')."""
    rng = np.random.default_rng(seed)
    places = ["New York, NY", "Paris, France", "Oslo", 'The "Hub", Leeds', "Lagos, NG"]
    with open(path, "w", newline="") as handle:
        handle.write(",".join([f"q{i}" for i in range(10)] + [f"p{i}" for i in range(5)] + [f"x{i}" for i in range(4)]))
        handle.write(",y\n")
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            if grouped:
                numbers = [f'"{v:,.2f}"' for v in (rng.random(m * 10) * 50_000).tolist()]
                quoted = np.array(numbers, dtype=object).reshape(m, 10)
            else:
                quoted = np.char.add(np.char.add('"', np.char.mod("%.2f", rng.random((m, 10)) * 5000)), '"')
            where = np.array(['"' + p.replace('"', '""') + '"' for p in places])[rng.integers(0, 5, (m, 5))]
            plain = np.char.mod("%.4f", rng.standard_normal((m, 5)))
            rows = np.concatenate([quoted.astype(object), where.astype(object), plain.astype(object)], axis=1)
            handle.write("\n".join(",".join(row) for row in rows.tolist()) + "\n")


def write_decimal_commas(path: str, n: int, seed: int = 0) -> None:
    """N rows x 20, ';'-separated, numbers written as much of Europe writes them: decimal commas, '.' grouping
    thousands ("3,5", "-1.234,56"; 10 columns under 10, 9 in the thousands, the target): the reader must find
    that format in the file (as with --decimal ',' --thousands '.')."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        handle.write(";".join([f"x{i}" for i in range(19)] + ["y"]) + "\n")
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            values = rng.standard_normal((m, 20)) * np.array([1.0] * 10 + [3000.0] * 9 + [1.0])
            cells = [f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") for v in values.ravel().tolist()]
            rows = np.array(cells, dtype=object).reshape(m, 20)
            handle.write("\n".join(";".join(row) for row in rows.tolist()) + "\n")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def shapes(args: argparse.Namespace) -> None:
    src = os.path.abspath(args.src) if args.src else SRC
    print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs); reading with {src}")
    print(
        f"each reader in a fresh process, {args.repeats} times; median CPU seconds (one thread) and peak RSS above the start"
    )
    readers = ["downslope"] + (["downslope-numpy"] if installed("pyarrow") else []) + ["downslope-rows"]
    readers += ["pandas"] if installed("pandas") or args.pandas_path else []
    folder = args.dir or tempfile.mkdtemp(prefix="downslope-read-")
    os.makedirs(folder, exist_ok=True)
    files = [
        ("100,001 x 30 numeric", "numeric_100k.csv", lambda p: write_numeric(p, 10_000 if args.quick else 100_001)),
        (
            "1,000,000 x 10 numeric",
            "numeric_1m_10.csv",
            lambda p: write_numeric(p, 10_000 if args.quick else 10**6, 10),
        ),
        ("1,000,000 x 30 numeric", "numeric.csv", lambda p: write_numeric(p, 10_000 if args.quick else 1_000_000)),
        ("200,000 x 30 mixed", "mixed.csv", lambda p: write_mixed(p, 10_000 if args.quick else 200_000)),
        ("200,000 x 9 quoted fields", "quoted.csv", lambda p: write_quoted(p, 10_000 if args.quick else 200_000)),
        ("100,000 x 20 quoted", "quoted_20.csv", lambda p: write_quoted_wide(p, 10_000 if args.quick else 100_000)),
        (
            "100,000 x 20 grouped quoted",
            "grouped_20.csv",
            lambda p: write_quoted_wide(p, 10_000 if args.quick else 100_000, grouped=True),
        ),
        (
            "100,000 x 20 ';' decimal commas",
            "decimal_comma_20.csv",
            lambda p: write_decimal_commas(p, 10_000 if args.quick else 100_000),
        ),
    ]
    if args.only:
        files = [f for f in files if args.only in f[0]]
    try:
        for label, name, write in files:
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                write(path)
            print(f"\n{label}: {os.path.getsize(path) / 2**20:.0f} MiB")
            print(f"  {'reader':<17}{'CPU s':>8}{'wall s':>8}{'peak MB':>9}{'vs pandas':>11}")
            medians: dict[str, float] = {}
            for kind in readers:
                runs = []
                for _ in range(args.repeats):
                    code = SHAPE_READ.format(src=src, kind=kind, path=path, sep=";" if "';'" in label else ",")
                    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
                    if kind == "pandas" and args.pandas_path:
                        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.pandas_path, env.get("PYTHONPATH")]))
                    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
                    if done.returncode != 0:
                        print(f"  {kind:<17}failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
                        break
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                if not runs:
                    continue
                cpu = statistics.median(r["cpu"] for r in runs)
                wall = statistics.median(r["wall"] for r in runs)
                peak = statistics.median(r["extra_mb"] for r in runs)
                medians[kind] = cpu
                print(f"  {kind:<17}{cpu:>8.2f}{wall:>8.2f}{peak:>9.0f}")
            if "pandas" in medians:  # (pandas runs last: the ratios once its time is known)
                for kind in medians:
                    if kind != "pandas":
                        print(f"  {kind} / pandas (CPU): {medians[kind] / medians['pandas']:.2f}x")
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 rows only (a smoke run)")
    parser.add_argument("--big", action="store_true", help="also 10^7 rows (a ~1 GB file)")
    parser.add_argument("--python-all", action="store_true", help="run the pure-Python fallback on every size")
    parser.add_argument("--dir", default=None, help="where to write the CSV files (default: a temporary folder)")
    parser.add_argument("--shapes", action="store_true", help="numeric, mixed and quoted files beside pandas")
    parser.add_argument("--repeats", type=int, default=3, help="runs per reader with --shapes (the median is shown)")
    parser.add_argument("--src", default=None, help="with --shapes: the src folder of the downslope to time")
    parser.add_argument("--pandas-path", default=None, help="with --shapes: a folder holding pandas (pip --target)")
    parser.add_argument("--only", default=None, help="with --shapes: the files whose label holds this text")
    args = parser.parse_args()
    if args.shapes:
        shapes(args)
        return
    # the smoke run: one size, every reader (the 10^4 file takes no path the 10^5 one does not)
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000] + ([10_000_000] if args.big else [])
    if smoke():
        sizes = [100_000]
    readers = ["downslope", "downslope-python"]
    readers += [name for name in ("pandas", "pyarrow") if installed(name)]
    readers.append("numpy")
    fast = installed("pyarrow")
    print(f"fast CSV parser (pyarrow) installed: {'yes' if fast else 'no: pip install downslope[fast]'}")
    print(f"machine: {os.cpu_count()} CPUs; each reader in a fresh process; memory = peak RSS above the start")
    folder = args.dir or tempfile.mkdtemp(prefix="downslope-read-")
    results: dict[tuple[str, int], dict[str, float] | str] = {}
    try:
        for n in sizes:
            path = os.path.join(folder, f"table_{n}.csv")
            write_csv(path, n)
            size_mb = os.path.getsize(path) / 2**20
            print(f"\n{n:>10,} rows x 11 columns: {size_mb:.1f} MB")
            print(f"  {'reader':<26}{'seconds':>9}{'peak MB':>10}{'peak/file':>11}")
            for kind in readers:
                if kind == "downslope-python" and n > 100_000 and not args.python_all:
                    print(f"  {'downslope (no pyarrow)':<26}  skipped (slow; --python-all runs it)")
                    continue
                got = measure(kind, path, timeout=max(120.0, n / 5_000))
                results[(kind, n)] = got
                label = "downslope (no pyarrow)" if kind == "downslope-python" else kind
                if isinstance(got, str):
                    print(f"  {label:<26}  {got}")
                    continue
                extra = (got["peak_kb"] - got["base_kb"]) / 1024
                print(f"  {label:<26}{got['seconds']:>9.2f}{extra:>10.0f}{extra / size_mb:>10.2f}x")
            os.remove(path)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    ours = results.get(("downslope", 1_000_000))
    if isinstance(ours, dict):
        size_mb = None
        print(
            f"\ntarget: downslope reads 10^6 rows in <= 3 s and <= 3x the file's size: "
            f"{ours['seconds']:.2f} s, {(ours['peak_kb'] - ours['base_kb']) / 1024:.0f} MB above the start"
        )
        del size_mb
    else:
        print("\ntarget: downslope reads 10^6 rows in <= 3 s and <= 3x the file's size (not measured in --quick)")


if __name__ == "__main__":
    main()
