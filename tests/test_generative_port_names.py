"""Names generative-model code (dVAE/VQ, Glow, device picks) reads from torch that are no op:
``torch.legacy_contiguous_format``, ``torch.mps``, ``torch.backends.mps`` and ``torch._C._get_tracing_state``,
each against torch's own answer."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_legacy_contiguous_format_is_contiguous_format_as_in_torch() -> None:
    assert (ds.legacy_contiguous_format is ds.contiguous_format) == (
        torch.legacy_contiguous_format is torch.contiguous_format
    )
    assert repr(ds.legacy_contiguous_format).replace("downslope", "torch") == repr(torch.legacy_contiguous_format)


def test_gumbel_softmax_body_copied_from_torch_runs() -> None:
    # the hard branch of torch's own F.gumbel_softmax, as dVAE/VQ repos copy it
    logits = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        y_soft = lib.tensor(logits).softmax(-1)
        index = y_soft.max(-1, keepdim=True)[1]
        y_hard = lib.zeros_like(y_soft, memory_format=lib.legacy_contiguous_format).scatter_(-1, index, 1.0)
        results.append((y_hard - y_soft.detach() + y_soft).detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_mps_queries_answer_as_torch_on_a_machine_without_metal() -> None:
    assert ds.mps.is_available() == torch.mps.is_available()
    assert ds.mps.device_count() == torch.mps.device_count()
    assert ds.backends.mps.is_available() == torch.backends.mps.is_available()
    assert ds.backends.mps.is_built() == torch.backends.mps.is_built()
    assert importlib.import_module("downslope.mps") is ds.mps


def test_device_pick_idiom_picks_cpu() -> None:
    code = (
        "import downslope as torch\n"
        "from downslope.mps import is_available\n"
        "device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.mps.is_available() else 'cpu'\n"
        "assert not is_available()\n"
        "print(device)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cpu"


def test_tracing_state_is_none_as_in_eager_torch() -> None:
    assert ds._C._get_tracing_state() is torch._C._get_tracing_state() is None
