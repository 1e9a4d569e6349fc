"""A pytest plugin that reruns existing tests with every tensor on the strict device (a measuring tool).

Loaded with ``-p``, it makes ``ds.tensor``, ``ds.as_tensor`` and ``ds.from_numpy`` (and so the factories:
``ds.zeros``, ``ds.randn``...) put their data on the ``"strict"`` stand-in for a GPU, moves a module there on its first call, and lets ``.numpy()``
copy to the host (so the tests' comparisons still work). Every op, layer and loss a test runs then
meets device arrays, and each failure is logged with the last line of downslope's code it passed
through, which is where the data's namespace was bypassed:

    PYTHONPATH=$PWD/src:$PWD/tests/devices STRICT_LOG=/tmp/strict.tsv \\
        python -m pytest -p strict_everywhere -m "not slow" --tb=no tests/test_ops.py tests/nn

``STRICT_LOG`` gets one line per test: file, outcome and (for failures) the source line. Hypothesis
runs few examples and does not shrink, so failing property tests stay quick. Importing this module
changes nothing; only loading it as a plugin does.

CI runs the parity suite (ops, layers, losses, optimizers, autograd) through this plugin (.ci/run),
so every failure here fails the build. A test that is about host behaviour by design is marked
``@pytest.mark.host_only`` (registered in pyproject.toml) and skipped here: the value checks that
read the data (an index out of range, a probability outside [0, 1]) run on host arrays only, since
on a GPU they would wait for the device on every step; such a test keeps its device-independent
checks in a test of its own. The marker changes nothing in an ordinary run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np


def pytest_configure(config: Any) -> None:
    import downslope as ds
    from downslope import nn
    from downslope.devices import to_device, to_host

    tensor_module = sys.modules["downslope.tensor"]
    make_tensor, make_as_tensor = tensor_module.tensor, tensor_module.as_tensor

    def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **kw: Any) -> Any:
        return make_tensor(data, dtype=dtype, device=device or "strict", requires_grad=requires_grad, **kw)

    def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Any:
        return make_as_tensor(data, dtype=dtype, device=device or "strict")

    def from_numpy(array: Any, requires_grad: bool = False) -> Any:
        t = tensor_module.wrap_array(to_device(array, "strict"))
        return t.requires_grad_(True) if requires_grad else t

    for module in (ds, tensor_module):
        module.tensor, module.as_tensor = tensor, as_tensor
    ds.from_numpy = tensor_module.from_numpy = from_numpy

    def fresh_leaf(array: Any, requires_grad: bool) -> Any:
        return from_numpy(array, requires_grad)

    tensor_module._fresh_leaf = fresh_leaf  # the factories (zeros, randn...) place their host arrays through it
    tensor_module.Tensor.numpy = lambda self: to_host(self.array)
    tensor_module.Tensor.__array__ = lambda self, dtype=None, copy=None: np.asarray(to_host(self.array), dtype=dtype)
    call = nn.Module.__call__
    from downslope.nn.parameter import is_lazy

    def on_host(t: Any) -> bool:
        # a lazy module's uninitialized parameters have no values to read, only the device that the
        # first forward will make them on (torch's rule): moving them makes the weights on the device
        return t.device.type == "cpu" if is_lazy(t) else type(t.array) is np.ndarray

    def on_strict(self: Any, *args: Any, **kwargs: Any) -> Any:
        if any(on_host(t) for t in [*self.parameters(), *self.buffers()]):
            self.to("strict")
        return call(self, *args, **kwargs)

    nn.Module.__call__ = on_strict
    try:
        from hypothesis import Phase, settings

        settings.register_profile("strict_everywhere", max_examples=3, phases=[Phase.explicit, Phase.generate])
        settings.load_profile("strict_everywhere")
    except ImportError:
        pass


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    import pytest

    skip = pytest.mark.skip(reason="host_only: checks host-only behaviour (skipped with every tensor on a device)")
    for item in items:
        if item.get_closest_marker("host_only") is not None:
            item.add_marker(skip)


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    log = os.environ.get("STRICT_LOG")
    if call.when != "call" or not log:
        return
    where = ""
    if call.excinfo is not None:
        for entry in call.excinfo.traceback:
            path = str(entry.path)
            if "/src/downslope/" in path and "/devices/strict.py" not in path:
                where = f"{path.split('/src/downslope/')[1]}:{entry.lineno + 1}"
    outcome = "passed" if call.excinfo is None else "failed"
    with open(log, "a") as f:
        f.write(f"{item.nodeid.split('::')[0]}\t{outcome}\t{where}\n")
