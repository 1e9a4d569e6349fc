"""ds.utils.benchmark (torch.utils.benchmark): Timer and Measurement against PyTorch's, and the
cudnn.flags context manager benchmarks toggle."""

from __future__ import annotations

import re

import numpy as np
import pytest

import downslope as ds
from downslope.utils import benchmark

torch = pytest.importorskip("torch")
import torch.utils.benchmark as tbenchmark  # noqa: E402


def _body(m):
    """A measurement's printout without its address and numbers."""
    text = repr(m).split("\n", 1)[1]
    return re.sub(r"\d+(\.\d+)?", "#", text)


def test_timeit_prints_and_measures_as_torch():
    for lib, bench in ((ds, benchmark), (torch, tbenchmark)):
        x = lib.ones(10)
        t = bench.Timer(stmt="x * 2", globals={"x": x}, label="mul", sub_label="ten", description="cpu", num_threads=1)
        m = t.timeit(50)
        assert m.number_per_run == 50 and len(m.times) == 1 and len(m.raw_times) == 1
        assert m.times[0] == pytest.approx(m.raw_times[0] / 50) and m.mean == m.median == m.times[0] and m.iqr == 0
    ours = benchmark.Timer("x + 1", setup="x = 3").timeit(10)
    theirs = tbenchmark.Timer("x + 1", setup="x = 3").timeit(10)
    assert _body(ours) == _body(theirs)
    assert repr(ours).startswith("<downslope.utils.benchmark.Measurement object at")


def test_blocked_and_adaptive_autorange():
    x = ds.ones(100)
    t = benchmark.Timer("x.sum()", globals={"x": x}, label="sum", description="ds")
    calls = []
    m = t.blocked_autorange(callback=lambda n, s: calls.append((n, s)), min_run_time=0.05)
    assert sum(m.raw_times) >= 0.05 and len(calls) == len(m.times) >= 1
    assert m.number_per_run >= 1 and all(t > 0 for t in m.times)
    assert m.median == pytest.approx(float(np.median(m.times))) and m.mean == pytest.approx(float(np.mean(m.times)))
    a = t.adaptive_autorange(threshold=0.5, max_run_time=2.0)
    assert len(a.times) >= 4 and a.iqr >= 0
    assert "IQR:" in repr(a) and "measurements," in repr(a) and 1 <= a.significant_figures <= 4
    lines = repr(a).splitlines()
    assert lines[1:3] == ["sum", "ds"] and lines[3].startswith("  Median: ")


def test_measurement_statistics_and_errors():
    m = benchmark.Measurement(2, [2.0, 4.0, 6.0, 8.0, 100.0], benchmark.TaskSpec("f()", "pass"))
    assert m.times == [1.0, 2.0, 3.0, 4.0, 50.0] and m.median == 3.0 and m.mean == 12.0 and m.iqr == 2.0
    assert not m.meets_confidence() and m.has_warnings and "WARNING: Interquartile range" in repr(m)
    assert benchmark.select_unit(3e-7) == tbenchmark.select_unit(3e-7)
    with pytest.raises(ValueError, match="only Python"):
        benchmark.Timer("x", language="c++")
    with pytest.raises(NotImplementedError):
        benchmark.Timer("pass").repeat()


def test_cudnn_flags_set_the_flags_for_the_block_only():
    for lib in (ds, torch):
        cudnn = lib.backends.cudnn
        before = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32)
        with pytest.raises(KeyError):
            with cudnn.flags(enabled=False, benchmark=True, deterministic=True, allow_tf32=False):
                assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (
                    False,
                    True,
                    True,
                    False,
                )
                raise KeyError("restored on an error too")
        assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == before
