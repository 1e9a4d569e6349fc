"""benchmarks/generation.py runs end to end in quick mode (a smoke test: no timing is asserted; the
script checks its greedy tokens and beams against PyTorch's before timing), as tests/test_benchmarks.py
runs the other scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow  # a subprocess running a benchmark: CI runs it, the everyday run does not


def test_generation_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    # smoke mode (benchmarks/_common.smoke()): every case once, at its smallest size
    env = dict(os.environ, OMP_NUM_THREADS="1", DOWNSLOPE_BENCH_SMOKE="1")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "generation.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, f"generation.py failed:\n{done.stdout}\n{done.stderr}"
    for text in ["CPU:", "BLAS:", "checked: 100 greedy tokens", "greedy, 100 tokens", "beam search, 5 beams"]:
        assert text in done.stdout, f"generation.py --quick did not print {text!r}:\n{done.stdout}"
