"""torch.profiler / torch.autograd.profiler in downslope: record_function labels run the code they
wrap (as torch's, when no profiler is on); the profiler itself is refused with the reason."""

from __future__ import annotations

import importlib

import pytest

import downslope as ds
from downslope.errors import DownslopeError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_record_function_is_a_context_manager_and_a_decorator_in_both_paths(lib):
    assert lib.autograd.profiler.record_function is lib.profiler.record_function
    assert importlib.import_module(f"{lib.__name__}.autograd.profiler").record_function is lib.profiler.record_function
    seen = []
    with lib.profiler.record_function("forward") as label:
        seen.append(float((lib.ones(2) * 3).sum()))
    assert isinstance(label, lib.profiler.record_function)

    @lib.autograd.profiler.record_function("step")
    def step(x):
        return x + 1

    assert step(1) == 2 and seen == [6.0]
    with pytest.raises(KeyError), lib.profiler.record_function("failing"):  # an error passes through
        raise KeyError("inside")


def test_record_function_checks_its_name():
    with pytest.raises(TypeError, match="record_function: expected a str name, got int 3"):
        ds.profiler.record_function(3)


def test_the_profiler_itself_is_refused_with_the_reason():
    with pytest.raises(AttributeError, match="downslope.profiler.profile .*PyTorch's torch.profiler.profile") as info:
        ds.profiler.profile  # noqa: B018
    assert isinstance(info.value, DownslopeError) and "cProfile" in str(info.value)
    assert not hasattr(ds.autograd.profiler, "schedule")
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        ds.profiler.no_such_name  # noqa: B018
