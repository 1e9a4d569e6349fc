"""benchmarks/inference_layers.py runs end to end in quick mode (a smoke test: no timing is asserted),
as tests/test_benchmarks.py runs the other scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow  # a subprocess running a benchmark: CI runs it, the everyday run does not


def test_inference_layers_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    # smoke mode (benchmarks/_common.smoke()): every case once, at its smallest size
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_BENCH_SMOKE="1")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "inference_layers.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, f"inference_layers.py failed:\n{done.stdout}\n{done.stderr}"
    for text in ["CPU:", "BLAS:", "LSTM B1 H128 seq 50 infer", "TransformerEncoder B8 S64 D128", "Conv2d 64->64 3x3"]:
        assert text in done.stdout, f"inference_layers.py --quick did not print {text!r}:\n{done.stdout}"
