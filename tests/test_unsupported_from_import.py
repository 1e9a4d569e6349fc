"""A name a module refuses on purpose keeps its reason in a from-import too: Python turns an AttributeError
raised by a module's ``__getattr__`` during ``from m import name`` into a bare "cannot import name", so
there the refusal is the ImportError subclass a refused submodule gets (UnsupportedModuleError), while an
attribute read still gives the AttributeError (``hasattr`` False, as feature-detection code expects of a
name that is not there)."""

from __future__ import annotations

import pytest

import downslope as ds
from downslope._unsupported import UnsupportedModuleError, UnsupportedNameError

CASES = [
    ("downslope.profiler", "profile", "cProfile"),
    ("downslope.autograd.profiler", "profile", "cProfile"),
    ("downslope.profiler", "ProfilerActivity", "cProfile"),
    ("downslope.fx", "symbolic_trace", "symbolic tracer"),
    ("downslope.fx", "GraphModule", "symbolic tracer"),
    ("downslope.nn.functional", "grouped_mm", "grouped matrix products"),
]


@pytest.mark.parametrize(("module", "name", "reason"), CASES)
def test_from_import_keeps_the_reason(module: str, name: str, reason: str) -> None:
    with pytest.raises(UnsupportedModuleError, match=reason) as info:
        exec(f"from {module} import {name}", {})
    assert isinstance(info.value, ImportError)
    assert "cannot import name" not in str(info.value)


def test_the_working_names_of_the_same_line_import() -> None:
    # the profiler recipe's line names a working label beside the refused profiler
    with pytest.raises(UnsupportedModuleError, match="torch.profiler.profile"):
        exec("from downslope.profiler import record_function, profile", {})
    namespace: dict[str, object] = {}
    exec("from downslope.profiler import record_function", namespace)
    assert namespace["record_function"] is ds.profiler.record_function


@pytest.mark.parametrize(("module", "name", "reason"), CASES)
def test_attribute_reads_stay_attribute_errors(module: str, name: str, reason: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    with pytest.raises(UnsupportedNameError, match=reason):
        getattr(mod, name)
    assert not hasattr(mod, name)
    assert getattr(mod, name, "default") == "default"


def test_an_unknown_name_is_pythons_plain_import_error() -> None:
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'") as info:
        exec("from downslope.profiler import no_such_name", {})
    assert not isinstance(info.value, UnsupportedModuleError)
