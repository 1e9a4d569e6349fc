"""torch.profiler and F.grouped_mm, names ported code meets, say why they are missing and what to do
instead (downslope._unsupported), as torch.hub and torch.multiprocessing do."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import _unsupported
from downslope._unsupported import UnsupportedModuleError, UnsupportedNameError


def test_profiler_attribute_says_why_and_what_instead():
    # torch.profiler's record_function labels work (and record nothing); the profiler itself says why not
    with pytest.raises(UnsupportedNameError, match="cProfile") as info:
        ds.profiler.profile  # noqa: B018
    assert "downslope.utils.benchmark.Timer" in str(info.value)
    assert not hasattr(ds.profiler, "profile")
    with ds.profiler.record_function("forward"):
        pass


@pytest.mark.parametrize(
    "statement", ["from downslope.profiler import profile", "from downslope.profiler import schedule"]
)
def test_importing_a_left_out_profiler_name_fails(statement):
    # the from-import gets an ImportError with the attribute's reason (not Python's bare "cannot import name")
    with pytest.raises(UnsupportedModuleError, match="cProfile"):
        exec(statement, {})


def test_profiler_workaround_names_exist():
    timer = importlib.import_module("downslope.utils.benchmark").Timer
    assert timer("sum(range(3))").timeit(2).number_per_run == 2


def test_grouped_mm_message_names_a_workaround_that_matches_torch():
    text = _unsupported.message("torch.nn.functional", "grouped_mm")
    assert text is not None and text.startswith("downslope.nn.functional.grouped_mm (PyTorch's")
    with pytest.raises(UnsupportedNameError, match="grouped matrix products"):
        _unsupported.missing_module_attribute("grouped_mm", "torch.nn.functional")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((5, 8), np.float32), rng.standard_normal((2, 8, 4), np.float32)
    offs_np = np.array([2, 5], np.int32)
    # torch's grouped_mm wants the second operand's rows 16-byte aligned (column-major groups)
    b_t = torch.tensor(b_np).transpose(-2, -1).contiguous().transpose(-2, -1)
    expected = torch.nn.functional.grouped_mm(torch.tensor(a_np), b_t, offs=torch.tensor(offs_np))
    a, b, offs = ds.tensor(a_np), ds.tensor(b_np), ds.tensor(offs_np)
    way = text.split("multiply each group on its own: ", 1)[1]
    got = eval(way, {"ds": ds, "a": a, "b": b, "offs": offs})
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_grouped_mm_attribute_says_why():
    with pytest.raises(UnsupportedNameError, match="grouped matrix products"):
        F.grouped_mm  # noqa: B018
