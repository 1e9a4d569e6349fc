"""Small softmaxes stay on NumPy: the first compiled call of every process costs over a second
(numba's import and the cached kernels' load, see jit_gate), which a small model's generation (4
heads of 32 x 32 scores) never earns back."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import jit_gate
from downslope.ops import reductions

pytestmark = pytest.mark.host_only  # the compiled kernels serve host arrays only


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kernels modules that ops asked jit_gate for."""
    names: list[str] = []
    real = jit_gate.kernels

    def spy(module: str, *arrays: object) -> object:
        names.append(module)
        return real(module, *arrays)

    monkeypatch.setattr(jit_gate, "kernels", spy)
    return names


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_generation_sized_softmax_asks_for_no_kernels(asked: list[str], op: str) -> None:
    a = np.random.default_rng(0).standard_normal((4, 32, 32)).astype(np.float32)  # 4096 scores
    got = getattr(ds, op)(ds.tensor(a), -1)
    want = getattr(torch, op)(torch.tensor(a), -1)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    assert "downslope.ops._jit_softmax" not in asked


def test_threshold_is_where_kernels_start(asked: list[str]) -> None:
    n = reductions.JIT_SOFTMAX_MIN_SIZE
    assert n >= 16384
    ds.softmax(ds.zeros(n // 64 - 1, 64), -1)
    assert "downslope.ops._jit_softmax" not in asked
    ds.softmax(ds.zeros(n // 64, 64), -1)
    assert asked.count("downslope.ops._jit_softmax") == 1  # asked (jit_gate says whether numba may run)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_small_rows_with_inf_and_nan_match_torch_without_warnings(op: str) -> None:
    inf, nan = float("inf"), float("nan")
    rows = [
        [-inf, -inf, -inf],
        [inf, 0.0, 1.0],
        [nan, 0.0, 1.0],
        [-inf, 0.0, 1.0],
        [1000.0, -1000.0, 0.0],
        [-3e38, 3e38, 0.0],
        [1.0, 1.0, 1.0],
    ]
    a = np.array(rows, np.float32)
    want = getattr(torch, op)(torch.tensor(a), -1).numpy()
    with np.errstate(all="raise"):  # the op sets what it ignores itself, whatever the caller's settings
        got = getattr(ds, op)(ds.tensor(a), -1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)  # NaN where torch's is; exp within an ulp
