"""oneDNN's GEMM shares GNU OpenMP with torch: loading it must leave torch's thread count alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from downslope import gemm

pytest.importorskip("torch")

_SCRIPT = textwrap.dedent(
    """
    import torch

    torch.set_num_threads(1)
    x = torch.randn(8, 8)
    (x @ x).sum()  # torch's OpenMP runtime set up on this thread
    assert torch.get_num_threads() == 1

    import numpy as np

    import downslope as ds
    from downslope import gemm

    a = np.ones((256, 256), dtype=np.float32)
    y = ds.tensor(a) @ ds.tensor(a)  # big enough for oneDNN (gemm.MIN_MULTIPLY_ADDS)
    assert gemm.available()
    print(torch.get_num_threads(), gemm.get_num_threads(), float(y[0, 0]))
    """
)


@pytest.mark.skipif(not gemm.available(), reason="oneDNN (the onednn extra) is not installed")
def test_loading_onednn_keeps_torchs_thread_count() -> None:
    # a fresh process: the load happens once per process, and torch must be imported first
    env = {**os.environ, "DOWNSLOPE_ONEDNN": "1"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    torch_threads, onednn_threads, value = done.stdout.split()
    assert torch_threads == "1"
    assert onednn_threads == "1"  # oneDNN follows the shared runtime's count the user chose
    assert float(value) == 256.0
