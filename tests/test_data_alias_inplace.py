"""A write into ``.data`` with an operand that requires grad (loralib's merge on eval():
``weight.data += (B @ A) * scaling``): PyTorch records the op on the alias alone and the parameter
shows the new values, untouched in the graph."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("frozen", [True, False])
def test_a_lora_merge_into_data_writes_the_parameter_as_torch(frozen: bool) -> None:
    rs = np.random.RandomState(0)
    w, a, b = rs.randn(2, 3), rs.randn(1, 3), rs.randn(2, 1)
    results = []
    for lib in (torch, ds):
        weight = lib.nn.Parameter(lib.tensor(w, dtype=lib.float64), requires_grad=not frozen)
        A, B = lib.nn.Parameter(lib.tensor(a, dtype=lib.float64)), lib.nn.Parameter(lib.tensor(b, dtype=lib.float64))
        alias = weight.data
        alias += (B @ A) * 0.5
        assert alias.requires_grad and weight.requires_grad is (not frozen) and weight.grad_fn is None
        alias.sum().backward()  # the alias's own graph reaches A and B, as torch's
        results.append([t.detach().numpy().copy() for t in (weight, A.grad, B.grad)])
    for ours, theirs in zip(*reversed(results)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(results[1][0], w + b @ a * 0.5, rtol=1e-12)


@pytest.mark.host_only  # about NumPy memory shared with the caller (the strict device copies it)
def test_a_numpy_view_shared_with_another_tensor_is_still_refused() -> None:
    base = np.zeros(4)
    t = ds.from_numpy(base[:2])
    other = ds.from_numpy(base[1:])  # noqa: F841  (shares memory with t, untracked)
    with pytest.raises(ds.errors.StateError, match="shares its storage"):
        t.add_(ds.ones(2, requires_grad=True))
