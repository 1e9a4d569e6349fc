"""benchmarks/attention.py runs end to end in quick mode (a smoke test: no timing is asserted; the
script checks its outputs and gradients against PyTorch before timing), as tests/test_benchmarks.py
runs the other scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow  # a subprocess running a benchmark: CI runs it, the everyday run does not


def test_attention_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    # smoke mode (benchmarks/_common.smoke()): every case once, at its smallest size
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_BENCH_SMOKE="1")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "attention.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, f"attention.py failed:\n{done.stdout}\n{done.stderr}"
    for text in ["CPU:", "BLAS:", "sdpa 2x8x256x32 causal", "MultiheadAttention 2x128 padding", "EncoderLayer 2x128"]:
        assert text in done.stdout, f"attention.py --quick did not print {text!r}:\n{done.stdout}"
