"""nn.Embedding's first call in a process: a small lookup and its gradient run on NumPy without
importing numba (whose import and cached-kernel load took about 2 s, PyTorch's first call 1 ms);
lookups and gradients on both sides of the size gate match PyTorch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope.errors import OutOfRangeError
from downslope.nn import layers

_SMALL_STEP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import downslope as ds
    emb = ds.nn.Embedding(60, 32, padding_idx=0)
    idx = ds.tensor(np.random.default_rng(0).integers(0, 60, (12, 8)))
    emb(idx).sum().backward()
    assert emb.weight.grad is not None
    print("numba" in sys.modules)
    """
)


@pytest.mark.host_only  # numba runs on host arrays only: the question is the host's first call
def test_a_small_embedding_step_does_not_import_numba():
    done = subprocess.run([sys.executable, "-c", _SMALL_STEP], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "a 96-index lookup and its gradient imported numba"


@pytest.mark.parametrize("n", [96, layers.JIT_EMBEDDING_GRAD_MIN_SIZE // 8 + 5])  # below and above the gate
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lookup_and_gradient_match_torch_on_both_sides_of_the_gate(n, dtype):
    rng = np.random.default_rng(3)
    table = rng.standard_normal((40, 8)).astype(dtype)
    idx = rng.integers(0, 40, n)
    g = rng.standard_normal((n, 8)).astype(dtype)
    w = ds.tensor(table, dtype=dtype, requires_grad=True)
    tw = torch.tensor(table, requires_grad=True)
    out = F.embedding(ds.tensor(idx), w, padding_idx=3)
    ref = torch.nn.functional.embedding(torch.tensor(idx), tw, padding_idx=3)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    out.backward(ds.tensor(g, dtype=dtype))
    ref.backward(torch.tensor(g))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.host_only  # indices are range-checked on the host only
@pytest.mark.parametrize("bad", [40, -1, -40, -41])
def test_numpy_lookup_refuses_indices_out_of_range(bad):
    """np.take wraps negative indices: they are refused before it, as PyTorch refuses them."""
    table = ds.tensor(np.zeros((40, 3), np.float32))
    with pytest.raises(OutOfRangeError, match=f"index {bad} is out of range for a table of 40 rows"):
        F.embedding(ds.tensor([1, bad, 2]), table)


def test_strided_indices_and_table():
    rng = np.random.default_rng(4)
    table = rng.standard_normal((30, 12)).astype(np.float32)
    idx = rng.integers(0, 30, (6, 10))
    out = F.embedding(ds.tensor(idx).t(), ds.tensor(table)[:, ::2])
    ref = torch.nn.functional.embedding(torch.tensor(idx).t(), torch.tensor(table)[:, ::2])
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
