"""Data larger than memory: memory-mapped rows, batches gathered from the file, streaming statistics."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from downslope.cli import main
from downslope.data import ArrayDataset, DataLoader, LazyDataset, memmap, tabular
from downslope.data.datasets import Standardizer, chunked_moments
from downslope.data.memmap import RowSource
from downslope.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def test_row_source_reads_the_rows_and_columns_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memmap, "CHUNK_BYTES", 64)  # a few rows per chunk
    base = np.arange(60.0).reshape(12, 5)
    src = RowSource(base, 1, 4)
    assert src.shape == (12, 3) and len(src) == 12
    np.testing.assert_array_equal(src.take(np.array([7, 2, 7, -1])), base[[7, 2, 7, 11], 1:4].astype(np.float32))
    part = src.subset(np.array([9, 3, 5]))
    np.testing.assert_array_equal(part[0:2], base[[9, 3], 1:4])
    np.testing.assert_array_equal(np.concatenate(list(part.chunks())), base[[9, 3, 5], 1:4])
    np.testing.assert_array_equal(np.asarray(src), base[:, 1:4])
    scaled = part.standardized(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 8.0]))
    np.testing.assert_allclose(scaled.take(np.array([1])), [(base[3, 1:4] - [1, 2, 3]) / [2, 4, 8]], rtol=1e-6)
    assert np.asarray(scaled.raw()).tolist() == base[[9, 3, 5], 1:4].tolist()
    holes = base.copy()
    holes[3, 2] = np.nan
    filled = RowSource(holes, 1, 4).filled(np.array([-1.0, -2.0, -3.0]))
    assert filled.take(np.array([3]))[0].tolist() == [16.0, -2.0, 18.0]


@pytest.mark.parametrize("batch_size", [None, 1, 7])
@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_over_a_memory_map_gives_the_batches_of_the_arrays(tmp_path: Path, batch_size, shuffle) -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 4)).astype(np.float32)
    np.save(tmp_path / "d.npy", data)
    mapped = np.load(tmp_path / "d.npy", mmap_mode="r")
    y = np.arange(40)
    lazy = DataLoader(LazyDataset(RowSource(mapped, 0, 3), y), batch_size=batch_size, shuffle=shuffle, seed=3)
    eager = DataLoader(ArrayDataset(data[:, :3], y), batch_size=batch_size, shuffle=shuffle, seed=3)
    assert len(lazy) == len(eager) and lazy.method == eager.method
    for (xa, ya), (xb, yb) in zip(lazy, eager, strict=True):
        np.testing.assert_array_equal(xa.array, xb.array)
        np.testing.assert_array_equal(ya.array, yb.array)
        assert xa.array.dtype == np.float32


def test_streaming_standardizer_is_numerically_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    # mean 1e8, spread 1: a sum-of-squares formula would lose every digit of the variance
    x = np.random.default_rng(1).normal(1e8, 1.0, (5000, 3))
    n, mean, m2 = chunked_moments(x[i : i + 37] for i in range(0, 5000, 37))
    assert n == 5000
    exact_mean = np.array([math.fsum(col) / len(col) for col in x.T])
    exact_std = np.array([math.sqrt(math.fsum((col - m) ** 2) / len(col)) for col, m in zip(x.T, exact_mean)])
    np.testing.assert_allclose(mean, exact_mean, rtol=1e-14)
    np.testing.assert_allclose(np.sqrt(m2 / n), exact_std, rtol=1e-7)
    naive = np.sqrt(np.abs((x**2).mean(0) - x.mean(0) ** 2))  # what a one-pass sum of squares gives
    assert np.abs(naive - exact_std).max() > 1e-3
    monkeypatch.setattr(memmap, "CHUNK_BYTES", 3 * 4 * 100)  # 100 rows per chunk
    x = np.random.default_rng(2).normal(1e3, 5.0, (5000, 3)).astype(np.float32)  # features are float32
    lazy = Standardizer().fit(RowSource(x, 0, 3))
    whole = Standardizer().fit(x)  # one chunk: exactly NumPy's float64 mean and std
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(whole.mean, wide.mean(0).astype(np.float32))
    np.testing.assert_array_equal(whole.scale, wide.std(0).astype(np.float32))
    np.testing.assert_allclose(lazy.scale, whole.scale, rtol=1e-6)
    np.testing.assert_array_equal(lazy.mean, whole.mean)


def outcome(path: Path, lazy: bool, **options: object) -> tuple[object, ...]:
    saved = tabular.LAZY_BYTES
    tabular.LAZY_BYTES = 0 if lazy else 2**62
    try:
        table = tabular.read_arrays(path, **options)  # type: ignore[arg-type]
    except DataError as exc:
        return ("error", str(exc))
    finally:
        tabular.LAZY_BYTES = saved
    assert memmap.is_lazy(table.X) == lazy
    return ("table", repr(np.asarray(table.X).tolist()), table.y.tolist(), table.task, table.task_reason, table.notes)


@pytest.mark.parametrize(
    ("cells", "options"),
    [
        ([[1.0, 2.0, 0], [3.0, 4.0, 1], [5.0, 6.0, 0]], {}),
        ([[1.0, 2.0, 0.5], [3.0, 4.0, 1.5], [5.0, 6.0, 0.25]], {}),
        ([[1.0, np.nan, 0], [3.0, 4.0, 1], [5.0, 6.0, 0]], {}),
        ([[1.0, np.nan, 0], [3.0, 4.0, 1], [5.0, 6.0, 0], [1.0, 1.0, 1]], {"missing": "drop"}),
        ([[1.0, np.nan, 0], [3.0, 4.0, 1], [5.0, 6.0, 0]], {"missing": "mean"}),
        ([[1.0, np.inf, 0], [3.0, 4.0, 1], [np.inf, 6.0, 0]], {"missing": "mean"}),
        ([[1e39, 2.0, 0], [3.0, 4.0, 1]], {}),
        ([[1.0, 2.0, 7], [3.0, 4.0, 7]], {}),
        ([[1.0, 2.0, 1e39], [3.0, 4.0, 1]], {}),
    ],
)
def test_a_memory_mapped_npy_reads_like_a_loaded_one(tmp_path: Path, cells, options) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array(cells, dtype=np.float64))
    assert outcome(path, True, **options) == outcome(path, False, **options)


@pytest.mark.slow
def test_training_from_a_memory_map_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    X[5, 2] = np.nan
    np.save(tmp_path / "d.npy", np.c_[X, X[:, 0] * 2 + 0.1 * rng.standard_normal(300)])
    metrics = []
    for lazy in (False, True):
        monkeypatch.setattr(tabular, "LAZY_BYTES", 0 if lazy else 2**62)
        out = tmp_path / f"run{int(lazy)}"
        args = ["train", "--data", str(tmp_path / "d.npy"), "--epochs", "3", "--missing", "mean", "--out", str(out)]
        assert main([*args, "--quiet"]) == 0
        got = json.loads((out / "metrics.json").read_text())
        got.pop("seconds")
        metrics.append(got)
    assert metrics[0] == metrics[1]


SAMPLER = """
import subprocess, sys, time
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
peak = 0
while proc.poll() is None:
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.02)
err = proc.stderr.read()
print(proc.returncode, peak, err.replace(chr(10), " | ")[-2000:])
"""


@pytest.mark.slow
def test_training_from_a_big_memory_mapped_npy_keeps_anonymous_memory_small(tmp_path: Path) -> None:
    """One epoch from a 1 GB .npy (1.3M rows x 200 columns, float32): the training process's peak
    anonymous resident memory (not the file's cached pages), sampled from outside, stays < 200 MB,
    a fifth of the file (loading it would take all of it)."""
    rows, cols = 1_300_000, 201
    path = tmp_path / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(cols - 1).astype(np.float32)
    for start in range(0, rows, 50_000):
        block = rng.standard_normal((min(50_000, rows - start), cols - 1), dtype=np.float32)
        out[start : start + len(block), :-1] = block
        out[start : start + len(block), -1] = block @ w + 0.5
    out.flush()
    del out
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 950
    try:
        command = [sys.executable, "-m", "downslope", "train", "--data", str(path), "--epochs", "1"]
        command += ["--batch-size", "512", "--hidden", "32", "--out", str(tmp_path / "run")]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", SAMPLER, *command], capture_output=True, text=True, timeout=1200, env=env
        )
        code, peak_kb, err = done.stdout.strip().split(" ", 2)
        assert code == "0", err
        peak_mb = int(peak_kb) / 1024
        print(f"peak RssAnon {peak_mb:.0f} MB for a {size_mb:.0f} MB file ({time.perf_counter() - start:.0f} s)")
        assert 0 < peak_mb < 200, f"peak anonymous memory {peak_mb:.0f} MB for a {size_mb:.0f} MB file"
        assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 1
    finally:
        path.unlink(missing_ok=True)


def test_random_split_of_a_memory_mapped_dataset_stays_lazy(tmp_path: Path) -> None:
    from downslope.data import random_split

    data = np.arange(80.0, dtype=np.float32).reshape(20, 4)
    np.save(tmp_path / "d.npy", data)
    lazy = LazyDataset(RowSource(np.load(tmp_path / "d.npy", mmap_mode="r"), 0, 3), data[:, 3])
    train, val = random_split(lazy, [15, 5], seed=0)
    assert train.arrays is not None and memmap.is_lazy(train.arrays[0])
    x, y = next(iter(DataLoader(val, batch_size="full")))
    np.testing.assert_array_equal(x.array, data[val.indices, :3])
    np.testing.assert_array_equal(y.array, data[val.indices, 3])
