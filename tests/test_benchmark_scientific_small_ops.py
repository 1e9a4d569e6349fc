"""benchmarks/scientific_small_ops.py runs end to end in quick mode (a smoke test: no timing is
asserted; the script checks its values against PyTorch before timing), as tests/test_benchmarks.py
runs the other scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow  # a subprocess running a benchmark: CI runs it, the everyday run does not


def test_scientific_small_ops_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    # smoke mode (benchmarks/_common.smoke()): every case once, at its smallest size
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_BENCH_SMOKE="1")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scientific_small_ops.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, f"scientific_small_ops.py failed:\n{done.stdout}\n{done.stderr}"
    for text in ["CPU:", "BLAS:", "solve_triangular n=400", "lstsq 3000x41", "grid_sample 64x1x28x28"]:
        assert text in done.stdout, f"scientific_small_ops.py --quick did not print {text!r}:\n{done.stdout}"
    for text in ["conv1d 1x1x64 k=3", "int then mask index", "heat inverse problem", "ALS sweep", "geometric mean"]:
        assert text in done.stdout, f"scientific_small_ops.py --quick did not print {text!r}:\n{done.stdout}"
