"""The path a call takes through the optional compiled (numba) kernels depends on the call alone (its
sizes, dtypes and the DOWNSLOPE_JIT switch), never on what ran earlier in the process: a small call
gives the same bits before and after a large call has loaded the kernels.

The compiled kernels may round differently from the NumPy steps (their sums accumulate in another
order), so a gate that took them for small calls only once they were loaded would make a seeded run
give different bits the first time it runs in a process than the next time. Each gated layer, op and
optimizer runs its small call in a fresh process (nothing loaded), then large calls of every kind
load the kernels, then the small calls run again; the two results must be equal to the bit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,  # a fresh process that imports numba and loads every kernels module
    pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="needs numba (the jit extra)"),
]

# The small calls (below every size gate, otherwise eligible for their kernels) and the large calls
# (above the gates) of each gated path; the script prints, per small call, whether its results before
# and after the large calls are equal to the bit, the largest difference, and which kernels modules
# the large calls loaded.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import downslope as ds
    import downslope.nn.functional as F


    def rng(seed):
        return np.random.RandomState(seed)


    def backward_of(module, x):
        xt = ds.from_numpy(x).requires_grad_()
        y = module(xt)
        y.backward(ds.from_numpy(rng(9).randn(*y.shape).astype(np.float32)))
        out = [y.detach().numpy(), xt.grad.numpy()]
        out += [p.grad.numpy() for p in module.parameters() if p.grad is not None]
        return out


    def conv(n, c, hw, out):
        ds.manual_seed(0)
        return backward_of(ds.nn.Conv2d(c, out, 3, 1, 1), rng(1).rand(n, c, hw, hw).astype(np.float32))


    def batch_norm(n, c, hw):
        ds.manual_seed(0)
        return backward_of(ds.nn.BatchNorm2d(c), rng(2).randn(n, c, hw, hw).astype(np.float32))


    def layer_norm(rows, width):
        ds.manual_seed(0)
        return backward_of(ds.nn.LayerNorm(width), rng(3).randn(rows, width).astype(np.float32))


    def relu_max_pool_2x2(n, c, hw):
        net = ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2))
        return backward_of(net, rng(4).randn(n, c, hw, hw).astype(np.float32))


    def max_pool_3_2(n, c, hw):
        return backward_of(ds.nn.MaxPool2d(3, 2), rng(5).randn(n, c, hw, hw).astype(np.float32))


    def hard(fn, size, dtype):
        x = ds.from_numpy((rng(6).randn(size) * 4).astype(dtype)).requires_grad_()
        y = fn(x)
        y.backward(ds.from_numpy(rng(7).randn(size).astype(dtype)))
        return [y.detach().numpy(), x.grad.numpy()]


    def bag(indices, width, mode, grad):
        table = ds.from_numpy(rng(8).randn(100, width).astype(np.float32))
        if grad:
            table.requires_grad_()
        idx = ds.from_numpy(rng(10).randint(0, 100, indices))
        offsets = ds.from_numpy(np.arange(0, indices, 7))
        y = F.embedding_bag(idx, table, offsets, mode=mode)
        if not grad:
            return [y.numpy()]
        y.backward(ds.from_numpy(rng(11).randn(*y.shape).astype(np.float32)))
        return [y.detach().numpy(), table.grad.numpy()]


    def optimizer(name, sizes, dtype, **options):
        r = rng(12)
        params = [ds.from_numpy(r.randn(n).astype(dtype)).requires_grad_() for n in sizes]
        opt = getattr(ds.optim, name)(params, **options)
        for _ in range(3):
            for p in params:
                p.grad = ds.from_numpy(r.randn(*p.shape).astype(dtype))
            opt.step()
        return [p.detach().numpy() for p in params]


    def deterministic(call):
        # an LSTM's rent-or-buy start of its compiled loops depends on earlier passes by default (for
        # speed); use_deterministic_algorithms(True) makes its path the pass's own
        ds.use_deterministic_algorithms(True)
        try:
            return call()
        finally:
            ds.use_deterministic_algorithms(False)


    def lstm(batch, length, hidden, features):
        ds.manual_seed(0)
        layer = ds.nn.LSTM(features, hidden)
        x = ds.from_numpy(rng(13).randn(length, batch, features).astype(np.float32)).requires_grad_()
        y, (h, c) = layer(x)
        (y * y).sum().backward()
        return [y.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


    SMALL = {
        "conv2d": lambda: conv(16, 16, 4, 8),
        "batch_norm2d": lambda: batch_norm(4, 8, 8),
        "layer_norm": lambda: layer_norm(16, 32),
        "relu_max_pool2d_2x2": lambda: relu_max_pool_2x2(2, 8, 16),
        "max_pool2d_3_stride_2": lambda: max_pool_3_2(2, 8, 16),
        "hardswish_float32": lambda: hard(F.hardswish, 1000, np.float32),
        "hardsigmoid_float64": lambda: hard(F.hardsigmoid, 1000, np.float64),
        "embedding_bag_mean_no_graph": lambda: bag(100, 8, "mean", False),
        "embedding_bag_sum_backward": lambda: bag(100, 8, "sum", True),
        "adam_float32": lambda: optimizer("Adam", (5000, 6000), np.float32, lr=1e-3),
        "adamw_float64": lambda: optimizer("AdamW", (5000, 6000), np.float64, lr=1e-3, weight_decay=0.1),
        "nadam_float32": lambda: optimizer("NAdam", (5000, 6000), np.float32, lr=1e-3),
        "rmsprop_float32": lambda: optimizer("RMSprop", (5000, 6000), np.float32, lr=1e-3, centered=True),
        "adadelta_float32": lambda: optimizer("Adadelta", (5000, 6000), np.float32),
        "sgd_momentum_float32": lambda: optimizer("SGD", (5000, 6000), np.float32, lr=0.1, momentum=0.9),
        "lstm_under_use_deterministic_algorithms": lambda: deterministic(lambda: lstm(4, 10, 16, 8)),
    }
    LARGE = [
        lambda: conv(1, 16, 32, 16),
        lambda: batch_norm(4, 16, 32),
        lambda: layer_norm(64, 256),
        lambda: relu_max_pool_2x2(4, 16, 32),
        lambda: max_pool_3_2(4, 16, 32),
        lambda: hard(F.hardswish, 8192, np.float32),
        lambda: hard(F.hardsigmoid, 8192, np.float64),
        lambda: bag(1024, 8, "mean", False),
        lambda: bag(1024, 8, "sum", True),
        lambda: optimizer("Adam", (40000, 40000), np.float32, lr=1e-3),
        lambda: lstm(64, 100, 128, 16),
    ]

    before = {name: [a.copy() for a in call()] for name, call in SMALL.items()}
    for call in LARGE:
        call()
    after = {name: call() for name, call in SMALL.items()}
    report = {}
    for name in SMALL:
        pairs = list(zip(before[name], after[name]))
        same = len(before[name]) == len(after[name]) and all(
            a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True) for a, b in pairs
        )
        diff = max(float(np.nanmax(np.abs(a.astype(np.float64) - b))) if a.size else 0.0 for a, b in pairs)
        report[name] = {"same": same, "diff": diff}
    loaded = sorted(m for m in sys.modules if m.startswith("downslope.") and "_jit" in m)
    print(json.dumps({"cases": report, "loaded": loaded}))
    """
)

CASES = [
    "conv2d",
    "batch_norm2d",
    "layer_norm",
    "relu_max_pool2d_2x2",
    "max_pool2d_3_stride_2",
    "hardswish_float32",
    "hardsigmoid_float64",
    "embedding_bag_mean_no_graph",
    "embedding_bag_sum_backward",
    "adam_float32",
    "adamw_float64",
    "nadam_float32",
    "rmsprop_float32",
    "adadelta_float32",
    "sgd_momentum_float32",
    "lstm_under_use_deterministic_algorithms",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: Any) -> dict[str, Any]:
    script = Path(tmp_path_factory.mktemp("jit_determinism")) / "script.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "DOWNSLOPE_JIT"}  # the compiled path switched on
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_large_calls_loaded_the_kernels(report: dict[str, Any]) -> None:
    # otherwise the comparison below would show nothing: every gated kernels module is loaded
    assert {
        "downslope.nn._jit_kernels",
        "downslope.nn._jit_volumetric",
        "downslope.nn._jit_hard_kernels",
        "downslope.nn._jit_embedding",
        "downslope.optim._jit_updates",
    } <= set(report["loaded"]), report["loaded"]


@pytest.mark.parametrize("case", CASES)
def test_a_small_call_gives_the_same_bits_after_a_large_call_loaded_the_kernels(
    report: dict[str, Any], case: str
) -> None:
    assert report["cases"][case]["same"], (case, report["cases"][case])
