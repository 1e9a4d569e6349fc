"""Ops on edge values (sqrt(-1), log(0), inf - inf in a sum, inf * 0 in a product, ...) give torch's
inf/NaN without NumPy's RuntimeWarnings, so ``python -W error`` (CI) does not turn them into crashes.

Run in a fresh interpreter under ``-W error``: NumPy's warnings raised from its own modules (ndarray.sum,
np.prod, cumsum) pass backend's filter on downslope's modules, and used to escape."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import downslope as ds, downslope.nn.functional as F
    inf, nan = float("inf"), float("nan")
    cases = {
        "sqrt(-1)": lambda: ds.sqrt(ds.tensor([-1.0])),
        "log(0)": lambda: ds.log(ds.tensor([0.0])),
        "exp(100)": lambda: ds.exp(ds.tensor([100.0])),
        "x / 0": lambda: ds.tensor([1.0]) / ds.tensor([0.0]),
        "0 * inf": lambda: ds.tensor([0.0]) * ds.tensor([inf]),
        "rsqrt(0)": lambda: ds.rsqrt(ds.tensor([0.0])),
        "softsign(inf)": lambda: F.softsign(ds.tensor([inf])),
        "gaussian_nll eps=0": lambda: F.gaussian_nll_loss(ds.tensor([0.0]), ds.tensor([1.0]), ds.tensor([0.0]), eps=0.0),
        "poisson_nll eps=0": lambda: F.poisson_nll_loss(ds.tensor([0.0]), ds.tensor([1.0]), log_input=False, eps=0.0),
        "vector_norm(-1) of zeros": lambda: ds.linalg.vector_norm(ds.zeros(3), -1),
        "vector_norm(3) overflow": lambda: ds.linalg.vector_norm(ds.tensor([3e30, 3e30]), 3),
        "prod([inf, 0])": lambda: ds.prod(ds.tensor([inf, 0.0])),
        "prod(dim) [inf, 0]": lambda: ds.tensor([[inf, 0.0]]).prod(1),
        "sum([inf, -inf])": lambda: ds.tensor([inf, -inf]).sum(),
        "sum(dim) [inf, -inf]": lambda: ds.tensor([[inf, -inf]]).sum(1),
        "sum overflow": lambda: ds.tensor([3e38, 3e38]).sum(),
        "mean([inf, -inf])": lambda: ds.tensor([inf, -inf]).mean(),
        "cumsum([inf, -inf])": lambda: ds.tensor([inf, -inf]).cumsum(0),
        "cumprod([inf, 0])": lambda: ds.tensor([inf, 0.0]).cumprod(0),
        "matmul inf * 0": lambda: ds.tensor([[inf, 1.0]]) @ ds.tensor([[0.0], [1.0]]),
        "backward of inf - inf": lambda: (ds.tensor([inf, 1.0], requires_grad=True) * ds.tensor([1.0, 1.0]))
        .sum()
        .backward(ds.tensor(inf)),
        "sqrt(0) backward": lambda: ds.sqrt(ds.zeros(2, requires_grad=True)).sum().backward(),
    }
    for name, call in cases.items():
        call()  # -W error: a warning raises here
    print(len(cases), "silent")
    """
)


@pytest.mark.host_only
def test_edge_values_are_silent_under_w_error() -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "22 silent" in done.stdout


def test_results_are_torchs_values() -> None:
    torch = pytest.importorskip("torch")
    import downslope as ds

    inf = float("inf")
    for make in (
        lambda L: L.tensor([inf, -inf]).sum(),
        lambda L: L.tensor([[inf, -inf], [1.0, 2.0]]).sum(1),
        lambda L: L.tensor([inf, -inf]).mean(),
        lambda L: L.tensor([[3e38, 3e38], [1.0, 2.0]]).mean(0),
        lambda L: L.prod(L.tensor([inf, 0.0])),
        lambda L: L.tensor([inf, -inf, 1.0]).cumsum(0),
        lambda L: L.linalg.vector_norm(L.zeros(3), -1),
        lambda L: L.linalg.vector_norm(L.tensor([3e30, 3e30]), 3),
    ):
        ours, theirs = make(ds).numpy(), make(torch).numpy()
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)  # NaN where torch has NaN
